-- crm 0.6 -> 0.7: ALTER EXTENSION crm UPDATE TO '0.7'.
-- Every schema change made in sql/install/ since 0.6 is repeated here, so
-- that an updated database has the same objects as a fresh install
-- (test/scripts/upgrade.sh checks it).
--
-- 0.7 requires the contrib extensions pg_trgm and unaccent: create them
-- (in any schema) before the update, or ALTER EXTENSION refuses with
-- "required extension ... is not installed".

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION crm UPDATE TO '0.7'" to load this file. \quit

-- == matching keys: folded text and phone keys (src/text_fold.c, src/normalize.c) ==
CREATE FUNCTION crm.phone_key(phone text) RETURNS text
    AS 'MODULE_PATHNAME', 'crm_phone_key'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.phone_key(text) IS 'Digits that identify a phone number: punctuation, a leading international 00 and an extension (x12, ext. 12, #12) dropped, the last nine digits of a longer number; NULL under seven digits. "+1 (555) 014-2000" and "555.014.2000 x12" share a key';

CREATE FUNCTION crm.fold_text(t text) RETURNS text
    AS 'MODULE_PATHNAME', 'crm_fold_text'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.fold_text(text) IS 'Text folded for matching and search: accents removed (unaccent), lower case, white space runs made one space and trimmed. "  Müller   GmbH" folds to "muller gmbh"';

-- == duplicates: candidate pairs (sql/install/87_duplicates.sql) ==
CREATE TABLE crm.duplicate_candidate (
    kind            text NOT NULL
                    CONSTRAINT duplicate_candidate_kind_check CHECK (kind IN ('lead', 'account', 'contact')),
    id              bigint NOT NULL,
    duplicate_kind  text NOT NULL
                    CONSTRAINT duplicate_candidate_duplicate_kind_check CHECK (duplicate_kind IN ('lead', 'account', 'contact')),
    duplicate_of    bigint NOT NULL,
    rule            text NOT NULL,
    score           real NOT NULL
                    CONSTRAINT duplicate_candidate_score_range CHECK (score > 0 AND score <= 1),
    found_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    status          text NOT NULL DEFAULT 'open'
                    CONSTRAINT duplicate_candidate_status_check CHECK (status IN ('open', 'merged', 'dismissed')),
    resolved_by     regrole,
    resolved_at     timestamptz,
    PRIMARY KEY (kind, id, duplicate_kind, duplicate_of),
    CONSTRAINT duplicate_candidate_not_self CHECK (kind <> duplicate_kind OR id <> duplicate_of),
    CONSTRAINT duplicate_candidate_resolved CHECK ((status = 'open') = (resolved_at IS NULL AND resolved_by IS NULL))
);
COMMENT ON TABLE crm.duplicate_candidate IS 'Possible duplicates found when a lead, account or contact was written (policy warn, and every similar-name match): one row per pair, open until merged or dismissed';
COMMENT ON COLUMN crm.duplicate_candidate.kind IS 'Kind of the record that was written: lead, account or contact';
COMMENT ON COLUMN crm.duplicate_candidate.id IS 'Id of the record that was written';
COMMENT ON COLUMN crm.duplicate_candidate.duplicate_kind IS 'Kind of the existing record it resembles';
COMMENT ON COLUMN crm.duplicate_candidate.duplicate_of IS 'Id of the existing record it resembles';
COMMENT ON COLUMN crm.duplicate_candidate.rule IS 'The matching rule that found the pair (the strongest one when several did), e.g. email, phone, company_key, domain, similar_name';
COMMENT ON COLUMN crm.duplicate_candidate.score IS 'How sure the match is, from 0 (exclusive) to 1';
COMMENT ON COLUMN crm.duplicate_candidate.found_at IS 'When the pair was found';
COMMENT ON COLUMN crm.duplicate_candidate.status IS 'open (waiting), merged (the records were merged), dismissed (not duplicates)';
COMMENT ON COLUMN crm.duplicate_candidate.resolved_by IS 'Who merged or dismissed the pair';
COMMENT ON COLUMN crm.duplicate_candidate.resolved_at IS 'When the pair was merged or dismissed';
CREATE INDEX duplicate_candidate_duplicate_of_idx ON crm.duplicate_candidate (duplicate_kind, duplicate_of);
SELECT pg_catalog.pg_extension_config_dump('crm.duplicate_candidate', '');

-- == an index behind every foreign key (test/sql/foreign_key_indexes.sql) ==
CREATE INDEX lead_source_idx ON crm.lead (source);
COMMENT ON INDEX crm.lead_source_idx IS 'Leads by source: renaming or deleting a lead source finds its leads without reading every lead; conversion rates by source group from it';

-- == merging: crm.merge_accounts, merge_contacts, merge_leads (sql/install/89_merge.sql) ==
CREATE TABLE crm.merge_record (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind           text NOT NULL
                   CONSTRAINT merge_record_kind_check CHECK (kind OPERATOR(pg_catalog.=) ANY (ARRAY['account', 'contact', 'lead'])),
    survivor_id    bigint NOT NULL,
    merged_id      bigint NOT NULL,
    merged_values  jsonb NOT NULL,
    taken          text[] NOT NULL DEFAULT '{}',
    merged_by      regrole NOT NULL,
    merged_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE crm.merge_record IS 'One row per merge of two accounts, contacts or leads: the record that was merged away (with all its values), the one it was merged into, who and when; written only by the merge functions';
COMMENT ON COLUMN crm.merge_record.id IS 'Entry id, in order of merging';
COMMENT ON COLUMN crm.merge_record.kind IS 'account, contact or lead';
COMMENT ON COLUMN crm.merge_record.survivor_id IS 'The record that remains (when it is itself merged later, the record it was merged into)';
COMMENT ON COLUMN crm.merge_record.merged_id IS 'The record that was merged into the survivor and deleted';
COMMENT ON COLUMN crm.merge_record.merged_values IS 'Every field of the merged record as it was just before the merge (JSON object, column name to value)';
COMMENT ON COLUMN crm.merge_record.taken IS 'Fields taken from the merged record although the survivor had them set (the take argument)';
COMMENT ON COLUMN crm.merge_record.merged_by IS 'Role that merged';
COMMENT ON COLUMN crm.merge_record.merged_at IS 'When the merge was made (transaction time)';
CREATE INDEX merge_record_survivor_idx ON crm.merge_record (kind, survivor_id);
CREATE INDEX merge_record_merged_idx ON crm.merge_record (kind, merged_id);

-- Admins read every merge; managers and reps those they (or their team)
-- made, or whose survivor they (or their team) own.  Seeing the survivor
-- through the sharing rule is not enough: the merged record's values were
-- never theirs to read.
ALTER TABLE crm.merge_record ENABLE ROW LEVEL SECURITY;
CREATE POLICY crm_admin_all ON crm.merge_record TO crm_admin USING (true) WITH CHECK (true);
CREATE POLICY crm_survivor_select ON crm.merge_record FOR SELECT TO crm_manager, crm_sales
    USING (merged_by::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))
           OR CASE kind
           WHEN 'account' THEN EXISTS (SELECT 1 FROM crm.account AS p WHERE p.id OPERATOR(pg_catalog.=) survivor_id
                                         AND p.owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles())))
           WHEN 'contact' THEN EXISTS (SELECT 1 FROM crm.contact AS p WHERE p.id OPERATOR(pg_catalog.=) survivor_id
                                         AND p.owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles())))
           ELSE EXISTS (SELECT 1 FROM crm.lead AS p WHERE p.id OPERATOR(pg_catalog.=) survivor_id
                          AND p.owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))) END);
GRANT SELECT ON crm.merge_record TO crm_admin, crm_manager, crm_sales;

CREATE FUNCTION crm.merge_accounts(survivor bigint, merged bigint, take text[] DEFAULT NULL)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'crm_merge_accounts'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.merge_accounts(bigint, bigint, text[]) IS
'Merges account merged into account survivor and returns survivor: every row pointing at merged (contacts, links, leads, deals, quotes, orders, activities, any foreign key) is re-pointed, empty fields of survivor are filled from merged (the columns in take are taken even when set), the merge is recorded in crm.merge_record and merged is deleted. The caller must be able to update both. See README "Merging".';

CREATE FUNCTION crm.merge_contacts(survivor bigint, merged bigint, take text[] DEFAULT NULL)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'crm_merge_contacts'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.merge_contacts(bigint, bigint, text[]) IS
'Merges contact merged into contact survivor and returns survivor: every row pointing at merged is re-pointed (duplicate account links, campaign memberships and meeting participations folded into one), empty fields of survivor are filled from merged (the columns in take are taken even when set), the merge is recorded in crm.merge_record and merged is deleted. See README "Merging".';

CREATE FUNCTION crm.merge_leads(survivor bigint, merged bigint, take text[] DEFAULT NULL)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'crm_merge_leads'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.merge_leads(bigint, bigint, text[]) IS
'Merges lead merged into lead survivor and returns survivor: its activities, campaign memberships and status history move to survivor, empty fields of survivor are filled from merged (the columns in take are taken even when set), the merge is recorded in crm.merge_record and merged is deleted. A converted lead cannot be the merged one (ZC702). See README "Merging".';

REVOKE ALL ON FUNCTION crm.merge_accounts(bigint, bigint, text[]), crm.merge_contacts(bigint, bigint, text[]),
    crm.merge_leads(bigint, bigint, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.merge_accounts(bigint, bigint, text[]), crm.merge_contacts(bigint, bigint, text[]),
    crm.merge_leads(bigint, bigint, text[]) TO crm_admin, crm_manager, crm_sales;
SELECT pg_catalog.pg_extension_config_dump('crm.merge_record', '');
SELECT pg_catalog.pg_extension_config_dump('crm.merge_record_id_seq', '');

-- == search: crm.search() and its trigram indexes (sql/install/92_search.sql) ==
-- Adding the stored searchable text (search_text) rewrites the accounts,
-- contacts, leads and opportunities, and building the four GIN indexes reads
-- them all: on large tables the update takes a while (README "Search").
CREATE FUNCTION crm.search_document(fields text[], phone text) RETURNS text
    AS 'MODULE_PATHNAME', 'crm_search_document'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.search_document(text[], text) IS 'The searchable text of a row, as crm.search() matches it: the fields that are not NULL, folded (accents removed, lower case) and joined by spaces, then every digit of the phone number. Backs the trigram search indexes';

CREATE FUNCTION crm.search(query text, kinds text[] DEFAULT NULL, max_results integer DEFAULT 20)
    RETURNS TABLE (kind text, id bigint, title text, subtitle text, score real)
    AS 'MODULE_PATHNAME', 'crm_search'
    LANGUAGE C STABLE
    SET search_path = pg_catalog, pg_temp
    SET pg_trgm.word_similarity_threshold = 0.7;
COMMENT ON FUNCTION crm.search(text, text[], integer) IS 'Finds accounts (name, website, phone), contacts (name, e-mail, phone, account name), leads (name, company, e-mail, phone) and opportunities (name, account name) the caller may see: case- and accent-insensitive, typo-tolerant, prefixes, e-mail and phone fragments. kinds limits the kinds (NULL: all); best first by score (1 = the name is the query)';
REVOKE ALL ON FUNCTION crm.search(text, text[], integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.search(text, text[], integer) TO crm_admin, crm_manager, crm_sales;

-- The searchable text of each row is stored and kept by a trigger (see
-- sql/install/92_search.sql).  The existing rows get it by adding the column
-- as a generated one (computed while the table is rewritten, no trigger
-- fires), which then becomes a plain column that the trigger keeps.
CREATE FUNCTION crm.search_text_fill() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_search_text_fill'
    LANGUAGE C;
COMMENT ON FUNCTION crm.search_text_fill() IS 'BEFORE INSERT OR UPDATE OF the searched columns trigger on crm.account, crm.contact, crm.lead, crm.opportunity: sets search_text, the row''s searchable text (crm.search_document of its fields)';
REVOKE ALL ON FUNCTION crm.search_text_fill() FROM PUBLIC;
ALTER TABLE crm.account ADD COLUMN search_text text
    GENERATED ALWAYS AS (crm.search_document(ARRAY[name, website], phone)) STORED;
ALTER TABLE crm.contact ADD COLUMN search_text text
    GENERATED ALWAYS AS (crm.search_document(ARRAY[name, email], phone)) STORED;
ALTER TABLE crm.lead ADD COLUMN search_text text
    GENERATED ALWAYS AS (crm.search_document(ARRAY[name, company, email], phone)) STORED;
ALTER TABLE crm.opportunity ADD COLUMN search_text text
    GENERATED ALWAYS AS (crm.search_document(ARRAY[name], NULL)) STORED;
ALTER TABLE crm.account ALTER COLUMN search_text DROP EXPRESSION;
ALTER TABLE crm.contact ALTER COLUMN search_text DROP EXPRESSION;
ALTER TABLE crm.lead ALTER COLUMN search_text DROP EXPRESSION;
ALTER TABLE crm.opportunity ALTER COLUMN search_text DROP EXPRESSION;
CREATE TRIGGER search_text_fill BEFORE INSERT OR UPDATE OF name, website, phone, search_text ON crm.account
    FOR EACH ROW EXECUTE FUNCTION crm.search_text_fill();
CREATE TRIGGER search_text_fill BEFORE INSERT OR UPDATE OF name, email, phone, search_text ON crm.contact
    FOR EACH ROW EXECUTE FUNCTION crm.search_text_fill();
CREATE TRIGGER search_text_fill BEFORE INSERT OR UPDATE OF name, company, email, phone, search_text ON crm.lead
    FOR EACH ROW EXECUTE FUNCTION crm.search_text_fill();
CREATE TRIGGER search_text_fill BEFORE INSERT OR UPDATE OF name, search_text ON crm.opportunity
    FOR EACH ROW EXECUTE FUNCTION crm.search_text_fill();
ALTER TABLE crm.account ENABLE ALWAYS TRIGGER search_text_fill;
ALTER TABLE crm.contact ENABLE ALWAYS TRIGGER search_text_fill;
ALTER TABLE crm.lead ENABLE ALWAYS TRIGGER search_text_fill;
ALTER TABLE crm.opportunity ENABLE ALWAYS TRIGGER search_text_fill;
COMMENT ON COLUMN crm.account.search_text IS 'What crm.search() searches in an account: its name and website (no accents, lower case) and the digits of its phone number. Filled in by the database';
COMMENT ON COLUMN crm.contact.search_text IS 'What crm.search() searches in a contact: its name and e-mail (no accents, lower case) and the digits of its phone number. Filled in by the database';
COMMENT ON COLUMN crm.lead.search_text IS 'What crm.search() searches in a lead: its name, company and e-mail (no accents, lower case) and the digits of its phone number. Filled in by the database';
COMMENT ON COLUMN crm.opportunity.search_text IS 'What crm.search() searches in an opportunity: its name (no accents, lower case). Filled in by the database';

-- The trigram operator class lives in pg_trgm's schema, whichever it is.
DO $search_indexes$
DECLARE
    trgm text := (SELECT e.extnamespace::pg_catalog.regnamespace::pg_catalog.text
                    FROM pg_catalog.pg_extension AS e
                   WHERE e.extname OPERATOR(pg_catalog.=) 'pg_trgm');
BEGIN
    EXECUTE pg_catalog.format('CREATE INDEX account_search_idx ON crm.account USING gin (search_text %s.gin_trgm_ops)', trgm);
    EXECUTE pg_catalog.format('CREATE INDEX contact_search_idx ON crm.contact USING gin (search_text %s.gin_trgm_ops)', trgm);
    EXECUTE pg_catalog.format('CREATE INDEX lead_search_idx ON crm.lead USING gin (search_text %s.gin_trgm_ops)', trgm);
    EXECUTE pg_catalog.format('CREATE INDEX opportunity_search_idx ON crm.opportunity USING gin (search_text %s.gin_trgm_ops)', trgm);
END
$search_indexes$;
COMMENT ON INDEX crm.account_search_idx IS 'Search (crm.search): trigrams of the folded name and website and the phone digits';
COMMENT ON INDEX crm.contact_search_idx IS 'Search (crm.search): trigrams of the folded name and e-mail and the phone digits';
COMMENT ON INDEX crm.lead_search_idx IS 'Search (crm.search): trigrams of the folded name, company and e-mail and the phone digits';
COMMENT ON INDEX crm.opportunity_search_idx IS 'Search (crm.search): trigrams of the folded name';

-- == privacy: consent, access requests, erasure, retention (sql/install/97_privacy.sql) ==
-- The group role of privacy officers (as in sql/install/10_roles_domains.sql).
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'crm_privacy_officer') THEN
        CREATE ROLE crm_privacy_officer NOLOGIN;
    END IF;
    IF NOT pg_catalog.pg_has_role('crm_admin', 'crm_privacy_officer', 'MEMBER') THEN
        GRANT crm_privacy_officer TO crm_admin;
    END IF;
END
$roles$;
GRANT USAGE ON SCHEMA crm TO crm_privacy_officer;

-- Consent on leads and contacts (the same six columns on both).
DO $consent$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['lead', 'contact']
    LOOP
        EXECUTE pg_catalog.format(
            'ALTER TABLE crm.%1$I'
            ' ADD COLUMN email_opt_out boolean NOT NULL DEFAULT false,'
            ' ADD COLUMN phone_opt_out boolean NOT NULL DEFAULT false,'
            ' ADD COLUMN do_not_contact boolean NOT NULL DEFAULT false,'
            ' ADD COLUMN consent_basis text CONSTRAINT %1$s_consent_basis_valid CHECK (consent_basis OPERATOR(pg_catalog.=) ANY'
            '     (ARRAY[''consent'', ''contract'', ''legitimate interest'', ''legal obligation''])),'
            ' ADD COLUMN consent_at timestamptz,'
            ' ADD COLUMN consent_source text CONSTRAINT %1$s_consent_source_not_blank'
            '     CHECK (pg_catalog.btrim(consent_source) OPERATOR(pg_catalog.<>) ''''),'
            ' ADD CONSTRAINT %1$s_consent_recorded CHECK (consent_at IS NULL OR consent_basis IS NOT NULL)', t);
    END LOOP;
END
$consent$;
COMMENT ON COLUMN crm.lead.email_opt_out IS 'The person asked not to be e-mailed (marketing e-mail); carried to the contact on conversion';
COMMENT ON COLUMN crm.lead.phone_opt_out IS 'The person asked not to be called; carried to the contact on conversion';
COMMENT ON COLUMN crm.lead.do_not_contact IS 'The person must not be contacted at all, by any channel; carried to the contact on conversion';
COMMENT ON COLUMN crm.lead.consent_basis IS 'Lawful basis for processing the person''s data: consent, contract, legitimate interest or legal obligation; NULL = unknown';
COMMENT ON COLUMN crm.lead.consent_at IS 'When the basis was recorded (e.g. when the person ticked the consent box); needs a basis';
COMMENT ON COLUMN crm.lead.consent_source IS 'Where the basis was recorded: form, campaign, call, contract number';
COMMENT ON COLUMN crm.contact.email_opt_out IS 'The person asked not to be e-mailed (marketing e-mail)';
COMMENT ON COLUMN crm.contact.phone_opt_out IS 'The person asked not to be called';
COMMENT ON COLUMN crm.contact.do_not_contact IS 'The person must not be contacted at all, by any channel';
COMMENT ON COLUMN crm.contact.consent_basis IS 'Lawful basis for processing the person''s data: consent, contract, legitimate interest or legal obligation; NULL = unknown';
COMMENT ON COLUMN crm.contact.consent_at IS 'When the basis was recorded; needs a basis';
COMMENT ON COLUMN crm.contact.consent_source IS 'Where the basis was recorded: form, campaign, call, contract number';
-- A person's leads are found by e-mail (export and erasure), as contacts are
-- by contact_email_lower_idx.
CREATE INDEX lead_email_lower_idx ON crm.lead (pg_catalog.lower(email)) WHERE email IS NOT NULL;
COMMENT ON INDEX crm.lead_email_lower_idx IS 'Leads by e-mail address in lower case: the duplicate search, and an access request or an erasure, find a person''s leads without reading every lead';

-- Who may be e-mailed or called.
CREATE VIEW crm.contactable WITH (security_invoker = true) AS
    SELECT 'lead'::text AS record_type, l.id AS record_id, l.name,
           CASE WHEN NOT l.email_opt_out THEN l.email::text END AS email,
           CASE WHEN NOT l.phone_opt_out THEN l.phone::text END AS phone,
           l.consent_basis, l.owner
      FROM crm.lead AS l
     WHERE NOT l.do_not_contact
       AND l.status OPERATOR(pg_catalog.<>) 'Converted'::crm.lead_status
       AND ((NOT l.email_opt_out AND l.email IS NOT NULL) OR (NOT l.phone_opt_out AND l.phone IS NOT NULL))
    UNION ALL
    SELECT 'contact'::text, c.id, c.name,
           CASE WHEN NOT c.email_opt_out THEN c.email::text END,
           CASE WHEN NOT c.phone_opt_out THEN c.phone::text END,
           c.consent_basis, c.owner
      FROM crm.contact AS c
     WHERE NOT c.do_not_contact
       AND ((NOT c.email_opt_out AND c.email IS NOT NULL) OR (NOT c.phone_opt_out AND c.phone IS NOT NULL));
COMMENT ON VIEW crm.contactable IS 'Leads (not yet converted) and contacts that may be contacted, for campaign and dialling tools: not do-not-contact, with an e-mail or phone they did not opt out of; an opted-out channel shows as NULL. Row-level security applies';
COMMENT ON COLUMN crm.contactable.record_type IS 'lead or contact';
COMMENT ON COLUMN crm.contactable.record_id IS 'Id of the lead or contact';
COMMENT ON COLUMN crm.contactable.name IS 'Name of the person';
COMMENT ON COLUMN crm.contactable.email IS 'E-mail address that may be used; NULL when there is none or the person opted out of e-mail';
COMMENT ON COLUMN crm.contactable.phone IS 'Phone number that may be called; NULL when there is none or the person opted out of calls';
COMMENT ON COLUMN crm.contactable.consent_basis IS 'Lawful basis recorded for the person (NULL = unknown)';
COMMENT ON COLUMN crm.contactable.owner IS 'Owner of the lead or contact';

-- Campaign members who had opted out when they were added.
ALTER TABLE crm.campaign_member ADD COLUMN opted_out boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN crm.campaign_member.opted_out IS 'Set by the database: the lead or contact was do-not-contact, or had opted out of e-mail (Email campaign) or calls (Telemarketing campaign), when added; adding such a member raises a WARNING';

-- The privacy officers' record of erasures.
CREATE TABLE crm.erasure_log (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    erased_at           timestamptz NOT NULL DEFAULT pg_catalog.now(),
    erased_by           regrole NOT NULL,
    reason              text NOT NULL
                        CONSTRAINT erasure_log_reason_not_blank CHECK (pg_catalog.btrim(reason) OPERATOR(pg_catalog.<>) ''),
    email_hash          text NOT NULL
                        CONSTRAINT erasure_log_email_hash_shape CHECK (email_hash OPERATOR(pg_catalog.~) '^[0-9a-f]{64}$'),
    leads               integer NOT NULL,
    contacts            integer NOT NULL,
    related_rows        integer NOT NULL,
    change_log_entries  integer NOT NULL
);
COMMENT ON TABLE crm.erasure_log IS 'One row per erasure made by crm.erase_person(): who, when, why, a salted hash of the e-mail address and how many rows were touched; append-only, cannot be erased';
COMMENT ON COLUMN crm.erasure_log.id IS 'Erasure number; the erased records are renamed "Erased person <id>"';
COMMENT ON COLUMN crm.erasure_log.erased_at IS 'When the erasure was made (transaction time)';
COMMENT ON COLUMN crm.erasure_log.erased_by IS 'Privacy officer who made it';
COMMENT ON COLUMN crm.erasure_log.reason IS 'Why: the request or its reference';
COMMENT ON COLUMN crm.erasure_log.email_hash IS 'Hex SHA-256 of a secret salt followed by the e-mail address in lower case: tells whether an address was erased, without holding it';
COMMENT ON COLUMN crm.erasure_log.leads IS 'Leads pseudonymised';
COMMENT ON COLUMN crm.erasure_log.contacts IS 'Contacts pseudonymised';
COMMENT ON COLUMN crm.erasure_log.related_rows IS 'Other rows redacted: accounts named after the person, opportunity names, activities about the person';
COMMENT ON COLUMN crm.erasure_log.change_log_entries IS 'Change-log entries whose stored values were replaced by "[erased]"';
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON crm.erasure_log
    FOR EACH ROW EXECUTE FUNCTION crm.audit_append_only();
CREATE TRIGGER audit_append_only_truncate BEFORE TRUNCATE ON crm.erasure_log
    FOR EACH STATEMENT EXECUTE FUNCTION crm.audit_append_only();
ALTER TABLE crm.erasure_log ENABLE ALWAYS TRIGGER audit_append_only;
ALTER TABLE crm.erasure_log ENABLE ALWAYS TRIGGER audit_append_only_truncate;

-- The salt of erasure_log.email_hash: random, made at CREATE EXTENSION,
-- readable only by the extension owner.  It is dumped (so hashes stay
-- comparable after a restore); under a restore (session_replication_role =
-- replica) the dump brings it, so none is made here.
CREATE TABLE crm.erasure_salt (
    single_row boolean PRIMARY KEY DEFAULT true CONSTRAINT erasure_salt_single_row CHECK (single_row),
    salt bytea NOT NULL CONSTRAINT erasure_salt_length CHECK (pg_catalog.octet_length(salt) BETWEEN 16 AND 64)
);
COMMENT ON TABLE crm.erasure_salt IS 'Internal: the random salt of crm.erasure_log.email_hash; readable by the extension owner only';
COMMENT ON COLUMN crm.erasure_salt.single_row IS 'Always true: the table holds one row';
COMMENT ON COLUMN crm.erasure_salt.salt IS 'Random bytes (244 random bits) made at CREATE EXTENSION';
DO $salt$
BEGIN
    IF pg_catalog.current_setting('session_replication_role') OPERATOR(pg_catalog.<>) 'replica' THEN
        INSERT INTO crm.erasure_salt (salt)
        VALUES (pg_catalog.decode(pg_catalog.replace(pg_catalog.gen_random_uuid()::pg_catalog.text
                                                     OPERATOR(pg_catalog.||) pg_catalog.gen_random_uuid()::pg_catalog.text,
                                                     '-', ''), 'hex'));
    END IF;
END
$salt$;

-- Retention of the change log, and its purge summary entries.
ALTER TABLE crm.settings ADD COLUMN change_log_retention interval
    CONSTRAINT settings_change_log_retention_positive CHECK (change_log_retention OPERATOR(pg_catalog.>) '0'::interval);
COMMENT ON COLUMN crm.settings.change_log_retention IS 'How long change-log entries are kept: crm.purge_change_log() removes older ones; NULL = keep forever';
ALTER TABLE crm.change_log DROP CONSTRAINT change_log_operation_valid;
ALTER TABLE crm.change_log ADD CONSTRAINT change_log_operation_valid
    CHECK (operation OPERATOR(pg_catalog.=) ANY (ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'PURGE']));
COMMENT ON COLUMN crm.change_log.operation IS 'INSERT, UPDATE, DELETE or TRUNCATE; PURGE for the summary entry of crm.purge_change_log() (table crm.change_log)';
COMMENT ON COLUMN crm.change_log.changes IS 'UPDATE: {"column": {"old": text, "new": text}} for each changed column; DELETE: {"column": text} of the removed row; INSERT and TRUNCATE: {}; PURGE: {"cut_off": timestamp, "rows_removed": n}. A value longer than 2000 bytes is kept as {"truncated": its first characters (up to 2000 bytes), "bytes": its length in bytes, "sha256": hex SHA-256 of its bytes}. A value crm.erase_person() erased reads "[erased]"';

-- Functions.
CREATE FUNCTION crm.export_person(email text) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'crm_export_person'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.export_person(text) IS 'Access request: one JSON document with every row crm holds about the person with this e-mail address (case-insensitive): leads, contacts, their activities, participation, campaign memberships, and the change-log and history entries about them; {} when there is none (privacy officers)';

CREATE FUNCTION crm.erase_person(email text, reason text) RETURNS crm.erasure_log
    AS 'MODULE_PATHNAME', 'crm_erase_person'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.erase_person(text, text) IS 'Erasure: pseudonymises every lead and contact with this e-mail address ("Erased person <n>", contact data and free text cleared), redacts rows and change-log entries holding their values, and records the erasure in crm.erasure_log (privacy officers)';

CREATE FUNCTION crm.purge_change_log(older_than timestamptz DEFAULT NULL) RETURNS bigint
    AS 'MODULE_PATHNAME', 'crm_purge_change_log'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.purge_change_log(timestamptz) IS 'Retention: deletes change-log entries older than the cut-off (default now() - crm.settings.change_log_retention; nothing when that is NULL), writes one PURGE summary entry, returns the number removed (admins)';

CREATE FUNCTION crm.erased_value(value jsonb, needles text[]) RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT CASE pg_catalog.jsonb_typeof(value)
        WHEN 'string' THEN
            CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.unnest(needles) AS n
                               WHERE pg_catalog.strpos(pg_catalog.lower(value OPERATOR(pg_catalog.#>>) '{}'), n) OPERATOR(pg_catalog.>) 0)
                 THEN '"[erased]"'::pg_catalog.jsonb ELSE value END
        WHEN 'object' THEN
            CASE WHEN value OPERATOR(pg_catalog.?) 'sha256'
                      AND crm.erased_value(value OPERATOR(pg_catalog.->) 'truncated', needles)
                          OPERATOR(pg_catalog.=) '"[erased]"'::pg_catalog.jsonb
                 THEN '"[erased]"'::pg_catalog.jsonb
                 ELSE (SELECT COALESCE(pg_catalog.jsonb_object_agg(e.key, crm.erased_value(e.value, needles)), '{}'::pg_catalog.jsonb)
                         FROM pg_catalog.jsonb_each(value) AS e) END
        WHEN 'array' THEN
            (SELECT COALESCE(pg_catalog.jsonb_agg(crm.erased_value(e.value, needles) ORDER BY e.n), '[]'::pg_catalog.jsonb)
               FROM pg_catalog.jsonb_array_elements(value) WITH ORDINALITY AS e (value, n))
        ELSE value END
    $$;
COMMENT ON FUNCTION crm.erased_value(jsonb, text[]) IS 'Internal (crm.erase_person): the JSON value with every string that contains one of the needles (lower case) replaced by "[erased]"; a long value kept with its SHA-256 is replaced whole';

CREATE FUNCTION crm.erased_text(value text, needles text[], replacement text) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT CASE WHEN value IS NULL OR COALESCE(pg_catalog.cardinality(needles), 0) OPERATOR(pg_catalog.=) 0 THEN value
        ELSE crm.erased_text(
                 pg_catalog.regexp_replace(value,
                     pg_catalog.regexp_replace(needles[pg_catalog.array_lower(needles, 1)], '([^[:alnum:][:space:]])', '\\\1', 'g'),
                     replacement, 'gi'),
                 needles[pg_catalog.array_lower(needles, 1) OPERATOR(pg_catalog.+) 1:], replacement) END
    $$;
COMMENT ON FUNCTION crm.erased_text(text, text[], text) IS 'Internal (crm.erase_person): the text with every occurrence of each needle (case-insensitive) replaced by the replacement';

-- Rights: privacy officers (and admins, who are members) only; the change
-- log's retention is the admins'.
REVOKE ALL ON FUNCTION crm.export_person(text), crm.erase_person(text, text),
    crm.purge_change_log(timestamptz), crm.erased_value(jsonb, text[]), crm.erased_text(text, text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.export_person(text), crm.erase_person(text, text) TO crm_privacy_officer;
GRANT EXECUTE ON FUNCTION crm.purge_change_log(timestamptz) TO crm_admin;
GRANT SELECT ON crm.erasure_log TO crm_privacy_officer;
GRANT SELECT ON crm.contactable TO crm_admin, crm_manager, crm_sales;

-- Column privileges on the new columns, as sql/install/99_privileges.sql
-- grants them on a fresh install (INSERT and UPDATE column by column).
GRANT INSERT (email_opt_out, phone_opt_out, do_not_contact, consent_basis, consent_at, consent_source),
      UPDATE (email_opt_out, phone_opt_out, do_not_contact, consent_basis, consent_at, consent_source)
    ON crm.lead, crm.contact TO crm_admin, crm_manager, crm_sales;
GRANT INSERT (opted_out), UPDATE (opted_out) ON crm.campaign_member TO crm_admin, crm_manager, crm_sales;
GRANT UPDATE (change_log_retention) ON crm.settings TO crm_admin;
-- Dumped like every other table of the extension.
SELECT pg_catalog.pg_extension_config_dump('crm.erasure_log', '');
SELECT pg_catalog.pg_extension_config_dump('crm.erasure_log_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('crm.erasure_salt', '');

-- == duplicates: finding them, checking on entry (sql/install/87_duplicates.sql, src/duplicates.c, src/duplicate_check.c) ==
-- The duplicate policy of each kind of record (src/duplicate_check.c).
ALTER TABLE crm.settings
    ADD COLUMN duplicate_policy_lead text NOT NULL DEFAULT 'warn'
        CONSTRAINT settings_duplicate_policy_lead_check CHECK (duplicate_policy_lead IN ('allow', 'warn', 'block')),
    ADD COLUMN duplicate_policy_account text NOT NULL DEFAULT 'warn'
        CONSTRAINT settings_duplicate_policy_account_check CHECK (duplicate_policy_account IN ('allow', 'warn', 'block')),
    ADD COLUMN duplicate_policy_contact text NOT NULL DEFAULT 'warn'
        CONSTRAINT settings_duplicate_policy_contact_check CHECK (duplicate_policy_contact IN ('allow', 'warn', 'block'));
COMMENT ON COLUMN crm.settings.duplicate_policy_lead IS 'What happens when a new or changed lead looks like an existing lead, contact or account: allow (nothing), warn (a WARNING, and the pair is queued in crm.duplicate_candidate; the default) or block (refused with SQLSTATE ZC701 when the same e-mail, phone, company or domain; similar names are only queued)';
COMMENT ON COLUMN crm.settings.duplicate_policy_account IS 'What happens when a new or changed account looks like an existing account: allow, warn (default) or block, as for duplicate_policy_lead';
COMMENT ON COLUMN crm.settings.duplicate_policy_contact IS 'What happens when a new or changed contact looks like an existing contact or lead: allow, warn (default) or block, as for duplicate_policy_lead';

-- Keys compared by the matching rules (README "Duplicates").
CREATE FUNCTION crm.name_key(name text) RETURNS text
    AS 'MODULE_PATHNAME', 'crm_name_key'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.name_key(text) IS 'A name as the duplicate search compares it by similarity: German umlauts and ß written out (ä -> ae, ö -> oe, ü -> ue, ß -> ss), then folded like crm.fold_text. "Müller" and "Mueller" both give "mueller"';
CREATE FUNCTION crm.match_domain(website text, email text) RETURNS text
    AS 'MODULE_PATHNAME', 'crm_match_domain'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.match_domain(text, text) IS 'The company domain a record is matched under: the web site''s domain, else the e-mail''s; NULL for domains many companies share (gmail.com, wixsite.com, ...)';

-- The indexes the rules search through (accounts by company key and web
-- domain, contacts by e-mail are in 20_core.sql).
CREATE INDEX lead_phone_key_idx ON crm.lead (crm.phone_key(phone)) WHERE phone IS NOT NULL;
COMMENT ON INDEX crm.lead_phone_key_idx IS 'Leads by phone key: the duplicate search';
CREATE INDEX lead_company_match_key_idx ON crm.lead (crm.company_match_key(pg_catalog."left"(company, 256))) WHERE company IS NOT NULL;
COMMENT ON INDEX crm.lead_company_match_key_idx IS 'Leads by the company key of the first 256 characters of their company: similar names of people of one company';
CREATE INDEX contact_phone_key_idx ON crm.contact (crm.phone_key(phone)) WHERE phone IS NOT NULL;
COMMENT ON INDEX crm.contact_phone_key_idx IS 'Contacts by phone key: the duplicate search';
CREATE INDEX account_phone_key_idx ON crm.account (crm.phone_key(phone)) WHERE phone IS NOT NULL;
COMMENT ON INDEX crm.account_phone_key_idx IS 'Accounts by phone key: the duplicate search';
DO $trgm$
BEGIN
    EXECUTE pg_catalog.format(
        'CREATE INDEX account_name_trgm_idx ON crm.account USING gist (crm.name_key(crm.company_match_key(name)) %I.gist_trgm_ops (siglen = 64))',
        (SELECT n.nspname FROM pg_catalog.pg_extension AS e JOIN pg_catalog.pg_namespace AS n
             ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
          WHERE e.extname OPERATOR(pg_catalog.=) 'pg_trgm'));
END
$trgm$;
COMMENT ON INDEX crm.account_name_trgm_idx IS 'Trigrams of the accounts'' company keys (GiST): the accounts nearest to a company name by trigram distance, read nearest first, for the similar-name duplicate rule';

-- Finding duplicates.
CREATE TYPE crm.duplicate_match AS (
    kind   text,
    id     bigint,
    owner  text,
    rule   text,
    score  real
);
COMMENT ON TYPE crm.duplicate_match IS 'A record found by crm.find_duplicates(): its kind and id, owner, the best rule that matched and its score (0-1); for a record the caller cannot see only owner and rule are filled';

CREATE FUNCTION crm.find_duplicates(kind text, id bigint) RETURNS SETOF crm.duplicate_match
    AS 'MODULE_PATHNAME', 'crm_find_duplicates_of'
    LANGUAGE C STABLE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.find_duplicates(text, bigint) IS 'The leads, accounts and contacts that may be duplicates of a stored lead, account or contact (kind), best first; matches the caller cannot see show only their owner and rule. See README "Duplicates"';
CREATE FUNCTION crm.find_duplicates(kind text, candidate jsonb) RETURNS SETOF crm.duplicate_match
    AS 'MODULE_PATHNAME', 'crm_find_duplicates_like'
    LANGUAGE C STABLE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.find_duplicates(text, jsonb) IS 'The leads, accounts and contacts that may be duplicates of a record not stored yet, given as a jsonb object of column names and values, e.g. crm.find_duplicates(''lead'', ''{"name": "Jon Smith", "email": "jon@acme.example"}''); as crm.find_duplicates(kind, id)';
CREATE FUNCTION crm.dismiss_duplicate(kind text, id bigint, duplicate_kind text, duplicate_of bigint) RETURNS text
    AS 'MODULE_PATHNAME', 'crm_dismiss_duplicate'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.dismiss_duplicate(text, bigint, text, bigint) IS 'Marks an open pair of crm.duplicate_candidate as not duplicates (status dismissed, by the caller, now); the caller must see the pair';

-- Checking on entry, forgetting the open pairs of deleted records.
CREATE FUNCTION crm.duplicate_check() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_duplicate_check'
    LANGUAGE C;
COMMENT ON FUNCTION crm.duplicate_check() IS 'AFTER INSERT/UPDATE statement trigger on crm.lead, crm.account, crm.contact: applies the duplicate policy of crm.settings (warn: queue and WARNING ZC710; block: ZC701 on a key match), with the duplicate-search key locks';
CREATE FUNCTION crm.duplicate_forget() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_duplicate_forget'
    LANGUAGE C;
COMMENT ON FUNCTION crm.duplicate_forget() IS 'AFTER DELETE/TRUNCATE statement trigger on crm.lead, crm.account, crm.contact: removes the open pairs of crm.duplicate_candidate that name a deleted record';
DO $dup_triggers$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['lead', 'account', 'contact']
    LOOP
        EXECUTE pg_catalog.format('CREATE TRIGGER duplicate_check_insert AFTER INSERT ON crm.%I'
            ' REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.duplicate_check()', t);
        EXECUTE pg_catalog.format('CREATE TRIGGER duplicate_check_update AFTER UPDATE ON crm.%I'
            ' REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.duplicate_check()', t);
        EXECUTE pg_catalog.format('CREATE TRIGGER duplicate_forget AFTER DELETE ON crm.%I'
            ' REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.duplicate_forget()', t);
        EXECUTE pg_catalog.format('CREATE TRIGGER duplicate_forget_truncate AFTER TRUNCATE ON crm.%I'
            ' FOR EACH STATEMENT EXECUTE FUNCTION crm.duplicate_forget()', t);
    END LOOP;
END
$dup_triggers$;

-- The queue is read under the records' row-level security: a pair is
-- visible to whoever sees the record it is about (kind, id); admins see
-- all.  Users change it only through crm.dismiss_duplicate().
ALTER TABLE crm.duplicate_candidate ENABLE ROW LEVEL SECURITY;
CREATE POLICY crm_admin_all ON crm.duplicate_candidate TO crm_admin USING (true) WITH CHECK (true);
CREATE POLICY crm_record_select ON crm.duplicate_candidate FOR SELECT TO crm_manager, crm_sales
    USING (CASE kind
           WHEN 'lead' THEN EXISTS (SELECT 1 FROM crm.lead AS r WHERE r.id OPERATOR(pg_catalog.=) duplicate_candidate.id)
           WHEN 'account' THEN EXISTS (SELECT 1 FROM crm.account AS r WHERE r.id OPERATOR(pg_catalog.=) duplicate_candidate.id)
           ELSE EXISTS (SELECT 1 FROM crm.contact AS r WHERE r.id OPERATOR(pg_catalog.=) duplicate_candidate.id) END);
GRANT SELECT ON crm.duplicate_candidate TO crm_admin, crm_manager, crm_sales;
CREATE INDEX duplicate_candidate_open_idx ON crm.duplicate_candidate (found_at) WHERE status = 'open';
COMMENT ON INDEX crm.duplicate_candidate_open_idx IS 'The open pairs, oldest first: the work queue';

REVOKE ALL ON FUNCTION crm.find_duplicates(text, bigint), crm.find_duplicates(text, jsonb),
    crm.dismiss_duplicate(text, bigint, text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.find_duplicates(text, bigint), crm.find_duplicates(text, jsonb),
    crm.dismiss_duplicate(text, bigint, text, bigint) TO crm_admin, crm_manager, crm_sales;
-- (a fresh install grants these through 99_privileges.sql: admins change
-- the settings column by column; trigger functions are nobody's to call)
GRANT UPDATE (duplicate_policy_lead, duplicate_policy_account, duplicate_policy_contact) ON crm.settings TO crm_admin;
REVOKE ALL ON FUNCTION crm.duplicate_check(), crm.duplicate_forget() FROM PUBLIC;

-- == attack2: erasure without deep recursion; find_duplicates example ==
CREATE OR REPLACE FUNCTION crm.erased_text(value text, needles text[], replacement text) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT CASE WHEN value IS NULL OR COALESCE(pg_catalog.cardinality(needles), 0) OPERATOR(pg_catalog.=) 0 THEN value
        ELSE (WITH RECURSIVE r (i, v) AS (
                  SELECT pg_catalog.array_lower(needles, 1), value
                  UNION ALL
                  SELECT r.i OPERATOR(pg_catalog.+) 1,
                         pg_catalog.regexp_replace(r.v,
                             pg_catalog.regexp_replace(needles[r.i], '([^[:alnum:][:space:]])', '\\\1', 'g'),
                             replacement, 'gi')
                    FROM r WHERE r.i OPERATOR(pg_catalog.<=) pg_catalog.array_upper(needles, 1))
              SELECT r.v FROM r ORDER BY r.i DESC LIMIT 1) END
    $$;
COMMENT ON FUNCTION crm.find_duplicates(text, jsonb) IS 'The leads, accounts and contacts that may be duplicates of a record not stored yet, given as a jsonb object of column names and values, e.g. crm.find_duplicates(''lead'', candidate => ''{"name": "Jon Smith", "email": "jon@acme.example"}''); as crm.find_duplicates(kind, id)';

-- == lead capture: crm_intake, crm.capture_lead, crm.lead_capture (sql/install/98_capture.sql, src/capture.c) ==
DO $intake_role$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'crm_intake') THEN
        CREATE ROLE crm_intake NOLOGIN;
    END IF;
END
$intake_role$;
GRANT USAGE ON SCHEMA crm TO crm_intake;

CREATE TABLE crm.lead_capture (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    captured_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    captured_by     regrole NOT NULL,
    source          text,
    campaign_id     bigint,
    payload         jsonb NOT NULL
                    CONSTRAINT lead_capture_payload_object CHECK (pg_catalog.jsonb_typeof(payload) OPERATOR(pg_catalog.=) 'object'),
    outcome         text NOT NULL
                    CONSTRAINT lead_capture_outcome_valid CHECK (outcome OPERATOR(pg_catalog.=) ANY (ARRAY['created', 'merged', 'refused'])),
    lead_id         bigint CONSTRAINT lead_capture_lead_id_fkey REFERENCES crm.lead (id) ON DELETE SET NULL,
    sqlstate        text CONSTRAINT lead_capture_sqlstate_shape CHECK (sqlstate OPERATOR(pg_catalog.~) '^[0-9A-Z]{5}$'),
    message         text,
    CONSTRAINT lead_capture_refusal CHECK (
        (outcome OPERATOR(pg_catalog.=) 'refused') OPERATOR(pg_catalog.=) (sqlstate IS NOT NULL AND message IS NOT NULL)
        AND (outcome OPERATOR(pg_catalog.<>) 'refused' OR lead_id IS NULL))
);
COMMENT ON TABLE crm.lead_capture IS 'Every lead capture (web form, e-mail-to-lead, integration) made with crm.capture_lead(), with what was sent and what became of it: a new lead, merged into an open lead, or refused and why; written only by the extension';
COMMENT ON COLUMN crm.lead_capture.id IS 'Capture number, assigned by the database; a refused capture''s error names it';
COMMENT ON COLUMN crm.lead_capture.captured_at IS 'When the capture was made (start of the calling transaction)';
COMMENT ON COLUMN crm.lead_capture.captured_by IS 'The login (database role) of the form or integration that sent it';
COMMENT ON COLUMN crm.lead_capture.source IS 'Lead source the capture named (as sent; may be unknown when refused)';
COMMENT ON COLUMN crm.lead_capture.campaign_id IS 'Campaign id the capture named (as sent; may be unknown when refused)';
COMMENT ON COLUMN crm.lead_capture.payload IS 'Everything the form sent, as JSON: name, company, email, phone, source, campaign_id, details (a value over its length limit is kept as {"truncated": its start, "bytes": its length})';
COMMENT ON COLUMN crm.lead_capture.outcome IS 'created (a new lead), merged (into an open lead with the same e-mail or phone) or refused';
COMMENT ON COLUMN crm.lead_capture.lead_id IS 'The lead created or merged into; NULL when refused (or when the lead was deleted since)';
COMMENT ON COLUMN crm.lead_capture.sqlstate IS 'Refused: the SQLSTATE of the error returned to the form';
COMMENT ON COLUMN crm.lead_capture.message IS 'Refused: the error message returned to the form';
CREATE INDEX lead_capture_lead_id_idx ON crm.lead_capture (lead_id) WHERE lead_id IS NOT NULL;
COMMENT ON INDEX crm.lead_capture_lead_id_idx IS 'A lead''s captures: its readers list them, and deleting or merging a lead finds them without reading every capture';
CREATE INDEX lead_capture_email_idx ON crm.lead_capture (pg_catalog.lower(payload OPERATOR(pg_catalog.->>) 'email'));
COMMENT ON INDEX crm.lead_capture_email_idx IS 'Captures by the e-mail address sent, in lower case: an access request or an erasure finds a person''s captures, refused ones too';

-- Admins read every capture; whoever reads a lead reads its captures.
-- Refused captures belong to no lead: admins only.  Nobody writes the table
-- but the extension (as its owner).
ALTER TABLE crm.lead_capture ENABLE ROW LEVEL SECURITY;
CREATE POLICY crm_admin_all ON crm.lead_capture TO crm_admin USING (true) WITH CHECK (true);
CREATE POLICY crm_parent_select ON crm.lead_capture FOR SELECT TO crm_manager, crm_sales
    USING (EXISTS (SELECT 1 FROM crm.lead AS p WHERE p.id OPERATOR(pg_catalog.=) lead_id));
GRANT SELECT ON crm.lead_capture TO crm_admin, crm_manager, crm_sales;

CREATE FUNCTION crm.capture_lead(name text, company text DEFAULT NULL, email text DEFAULT NULL,
                                 phone text DEFAULT NULL, source text DEFAULT 'website',
                                 campaign_id bigint DEFAULT NULL, details jsonb DEFAULT NULL)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'crm_capture_lead'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.capture_lead(text, text, text, text, text, bigint, jsonb) IS 'Lead capture for web forms and integrations (crm_intake): creates a lead, or fills the empty fields of the open lead with the same e-mail or phone, records consent sent in details.consent, adds the lead to the campaign; every capture, refused ones too, is kept in crm.lead_capture; returns the lead id';
REVOKE ALL ON FUNCTION crm.capture_lead(text, text, text, text, text, bigint, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.capture_lead(text, text, text, text, text, bigint, jsonb) TO crm_intake;

SELECT pg_catalog.pg_extension_config_dump('crm.lead_capture', '');
SELECT pg_catalog.pg_extension_config_dump('crm.lead_capture_id_seq', '');
COMMENT ON FUNCTION crm.export_person(text) IS 'Access request: one JSON document with every row crm holds about the person with this e-mail address (case-insensitive): leads, contacts, their activities, participation, campaign memberships, lead captures (refused ones too), and the change-log and history entries about them; {} when there is none (privacy officers)';

-- == assign: lead scoring and lead assignment (sql/install/86_assignment_and_scoring.sql, src/scoring.c, src/assignment.c) ==
ALTER TABLE crm.lead ADD COLUMN score integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN crm.lead.score IS 'Lead score: the sum of the points of the active scoring rules (crm.scoring_rule) the lead matches; kept by the database on every insert and update, recomputed for every lead by crm.rescore_leads(); frozen once the lead is converted';
-- "without an explicit owner" is an owner left out: the trigger fills it
ALTER TABLE crm.lead ALTER COLUMN owner DROP DEFAULT;
COMMENT ON COLUMN crm.lead.owner IS 'CRM user (database role) who owns the lead; when left out (or given as crm_intake) the assignment rules choose it, else the inserting role (see crm.assignment_rule)';

ALTER TABLE crm.settings ADD COLUMN default_lead_owner regrole;
COMMENT ON COLUMN crm.settings.default_lead_owner IS 'Owner of a lead inserted without an owner, or captured (owner crm_intake), that no assignment rule routes; NULL: the inserting role keeps it, and a captured lead stays with crm_intake (admins see it; crm.assign_lead() routes it later)';

CREATE TABLE crm.scoring_rule (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL
                 CONSTRAINT scoring_rule_name_not_blank CHECK (pg_catalog.btrim(name) OPERATOR(pg_catalog.<>) ''),
    active       boolean NOT NULL DEFAULT true,
    column_name  text NOT NULL,
    operator     text NOT NULL
                 CONSTRAINT scoring_rule_operator_valid
                 CHECK (operator OPERATOR(pg_catalog.=) ANY (ARRAY['=', '<>', '<', '<=', '>', '>=', 'contains', 'is null', 'is not null'])),
    value        text,
    points       integer NOT NULL
                 CONSTRAINT scoring_rule_points_range CHECK (points BETWEEN -1000 AND 1000)
);
COMMENT ON TABLE crm.scoring_rule IS 'Lead scoring rules: a lead matching a rule''s condition on one of its own columns gets its points; crm.lead.score is the sum. Written by admins; a rule naming an unknown column, a bad operator or a value of the wrong type is refused (ZC910). Scores follow rule changes after crm.rescore_leads()';
COMMENT ON COLUMN crm.scoring_rule.id IS 'Rule id, assigned by the database';
COMMENT ON COLUMN crm.scoring_rule.name IS 'What the rule rewards, e.g. "Software industry"';
COMMENT ON COLUMN crm.scoring_rule.active IS 'Only active rules give points';
COMMENT ON COLUMN crm.scoring_rule.column_name IS 'The lead column tested, e.g. industry, source, email, company, country, status, campaign_id (not id, owner, score, created_at, updated_at, converted_*)';
COMMENT ON COLUMN crm.scoring_rule.operator IS 'How the column is compared with value: =, <>, <, <=, >, >= (in the column type''s order), contains (case- and accent-insensitive substring of the text), is null, is not null (no value)';
COMMENT ON COLUMN crm.scoring_rule.value IS 'The value compared with, written as for the column''s type (e.g. Software, referral, 42); NULL exactly for is null / is not null';
COMMENT ON COLUMN crm.scoring_rule.points IS 'Points added to the score of a matching lead (-1000 to 1000; negative points lower it)';

CREATE TABLE crm.assignment_rule (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    priority     integer NOT NULL,
    active       boolean NOT NULL DEFAULT true,
    source       text CONSTRAINT assignment_rule_source_fkey REFERENCES crm.lead_source (code) ON UPDATE CASCADE ON DELETE CASCADE,
    country      text,
    industry     text,
    campaign_id  bigint CONSTRAINT assignment_rule_campaign_id_fkey REFERENCES crm.campaign (id) ON DELETE CASCADE,
    min_score    integer,
    assign_to    regrole,
    queue        text CONSTRAINT assignment_rule_queue_not_blank CHECK (pg_catalog.btrim(queue) OPERATOR(pg_catalog.<>) ''),
    CONSTRAINT assignment_rule_one_target CHECK ((assign_to IS NULL) OPERATOR(pg_catalog.<>) (queue IS NULL))
);
COMMENT ON TABLE crm.assignment_rule IS 'Lead assignment rules, tried by priority (lowest first, then id): the first active rule whose conditions a new lead meets and that yields an owner decides it. A NULL condition matches any lead. Written by admins';
COMMENT ON COLUMN crm.assignment_rule.id IS 'Rule id, assigned by the database; recorded in crm.lead_assignment';
COMMENT ON COLUMN crm.assignment_rule.priority IS 'Order in which rules are tried: lowest first; equal priorities by id';
COMMENT ON COLUMN crm.assignment_rule.active IS 'Only active rules assign leads';
COMMENT ON COLUMN crm.assignment_rule.source IS 'Condition: the lead''s source (crm.lead_source code); NULL = any';
COMMENT ON COLUMN crm.assignment_rule.country IS 'Condition: the lead''s country, compared case- and accent-insensitively; NULL = any';
COMMENT ON COLUMN crm.assignment_rule.industry IS 'Condition: the lead''s industry, compared case- and accent-insensitively; NULL = any';
COMMENT ON COLUMN crm.assignment_rule.campaign_id IS 'Condition: the campaign the lead came from; NULL = any';
COMMENT ON COLUMN crm.assignment_rule.min_score IS 'Condition: the lead''s score is at least this; NULL = any';
COMMENT ON COLUMN crm.assignment_rule.assign_to IS 'The owner this rule gives (exactly one of assign_to and queue is set)';
COMMENT ON COLUMN crm.assignment_rule.queue IS 'The queue (crm.assignment_queue_member.queue) whose next available member this rule gives, round-robin; when every member is inactive or at capacity the next rule is tried';
CREATE INDEX assignment_rule_campaign_id_idx ON crm.assignment_rule (campaign_id) WHERE campaign_id IS NOT NULL;
COMMENT ON INDEX crm.assignment_rule_campaign_id_idx IS 'Rules of a campaign: deleting a campaign finds them without reading every rule';
CREATE INDEX assignment_rule_source_idx ON crm.assignment_rule (source) WHERE source IS NOT NULL;
COMMENT ON INDEX crm.assignment_rule_source_idx IS 'Rules of a lead source: renaming or deleting a source finds them without reading every rule';

CREATE TABLE crm.assignment_queue_member (
    queue           text NOT NULL CONSTRAINT assignment_queue_member_queue_not_blank CHECK (pg_catalog.btrim(queue) OPERATOR(pg_catalog.<>) ''),
    member          regrole NOT NULL,
    active          boolean NOT NULL DEFAULT true,
    max_open_leads  integer CONSTRAINT assignment_queue_member_capacity_range CHECK (max_open_leads OPERATOR(pg_catalog.>=) 0),
    last_assigned   bigint,
    PRIMARY KEY (queue, member)
);
COMMENT ON TABLE crm.assignment_queue_member IS 'Members of the lead queues named by assignment rules: a queue gives each new lead to its active member who was assigned least recently (round-robin), skipping members at capacity. Written by admins';
COMMENT ON COLUMN crm.assignment_queue_member.queue IS 'Queue name, as in crm.assignment_rule.queue';
COMMENT ON COLUMN crm.assignment_queue_member.member IS 'A CRM user (database role) who receives leads from the queue';
COMMENT ON COLUMN crm.assignment_queue_member.active IS 'Inactive members are skipped (holidays, leavers)';
COMMENT ON COLUMN crm.assignment_queue_member.max_open_leads IS 'Capacity: the member is skipped while owning this many open leads (status other than Converted and Not Qualified); NULL = no limit';
COMMENT ON COLUMN crm.assignment_queue_member.last_assigned IS 'Round-robin position: the queue''s assignment number of the member''s last lead (NULL: none yet); written by the database only';

CREATE TABLE crm.lead_assignment (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_id         bigint NOT NULL CONSTRAINT lead_assignment_lead_id_fkey REFERENCES crm.lead (id) ON DELETE CASCADE,
    assigned_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    assigned_by     regrole NOT NULL,
    rule_id         bigint,
    queue           text,
    owner           regrole NOT NULL,
    previous_owner  regrole
);
COMMENT ON TABLE crm.lead_assignment IS 'Every lead assignment made by the assignment rules (on insert or by crm.assign_lead()), with the rule that made it; written only by the database';
COMMENT ON COLUMN crm.lead_assignment.id IS 'Entry id, in order of recording';
COMMENT ON COLUMN crm.lead_assignment.lead_id IS 'The lead';
COMMENT ON COLUMN crm.lead_assignment.assigned_at IS 'When it was assigned (transaction time)';
COMMENT ON COLUMN crm.lead_assignment.assigned_by IS 'The role that inserted the lead or called crm.assign_lead()';
COMMENT ON COLUMN crm.lead_assignment.rule_id IS 'The assignment rule that chose the owner (the rule may have been deleted since); NULL: no rule matched, the default owner applied';
COMMENT ON COLUMN crm.lead_assignment.queue IS 'The queue the owner was taken from, when the rule named one';
COMMENT ON COLUMN crm.lead_assignment.owner IS 'The owner given';
COMMENT ON COLUMN crm.lead_assignment.previous_owner IS 'The owner before (NULL for a lead inserted without one; crm_intake for a captured lead)';
CREATE INDEX lead_assignment_lead_id_idx ON crm.lead_assignment (lead_id, id);

-- the trigger functions
CREATE FUNCTION crm.lead_score_and_route() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_lead_score_and_route'
    LANGUAGE C;
COMMENT ON FUNCTION crm.lead_score_and_route() IS 'BEFORE INSERT OR UPDATE row trigger on crm.lead: sets score from the active scoring rules (kept as is on a converted lead), then, on INSERT without an owner or with owner crm_intake, chooses the owner by the assignment rules';
CREATE TRIGGER lead_score_and_route BEFORE INSERT OR UPDATE ON crm.lead
    FOR EACH ROW EXECUTE FUNCTION crm.lead_score_and_route();
CREATE FUNCTION crm.lead_hand_over() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_lead_hand_over'
    LANGUAGE C;
COMMENT ON FUNCTION crm.lead_hand_over() IS 'AFTER INSERT statement trigger on crm.lead: records the statement''s routed leads in crm.lead_assignment and gives the ones the inserter could not own to their assigned owner';
CREATE TRIGGER lead_hand_over AFTER INSERT ON crm.lead
    FOR EACH STATEMENT EXECUTE FUNCTION crm.lead_hand_over();
CREATE FUNCTION crm.scoring_rule_check() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_scoring_rule_check'
    LANGUAGE C;
COMMENT ON FUNCTION crm.scoring_rule_check() IS 'BEFORE INSERT OR UPDATE row trigger on crm.scoring_rule: refuses a rule on an unknown or reserved lead column, or with a value that is missing, superfluous or not of the column''s type (ZC910)';
CREATE TRIGGER scoring_rule_check BEFORE INSERT OR UPDATE ON crm.scoring_rule
    FOR EACH ROW EXECUTE FUNCTION crm.scoring_rule_check();
CREATE FUNCTION crm.lead_rules_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_lead_rules_changed'
    LANGUAGE C;
COMMENT ON FUNCTION crm.lead_rules_changed() IS 'AFTER statement trigger on crm.scoring_rule, crm.assignment_rule and crm.settings: tells every session to read the rules again before its next lead';
DO $rules_changed$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['scoring_rule', 'assignment_rule', 'settings']
    LOOP
        EXECUTE pg_catalog.format('CREATE TRIGGER lead_rules_changed AFTER INSERT OR UPDATE OR DELETE ON crm.%I'
            ' FOR EACH STATEMENT EXECUTE FUNCTION crm.lead_rules_changed()', t);
        EXECUTE pg_catalog.format('CREATE TRIGGER lead_rules_changed_truncate AFTER TRUNCATE ON crm.%I'
            ' FOR EACH STATEMENT EXECUTE FUNCTION crm.lead_rules_changed()', t);
    END LOOP;
END
$rules_changed$;

-- the functions
CREATE FUNCTION crm.lead_score_rules(lead crm.lead)
    RETURNS TABLE (rule_id bigint, rule_name text, points integer)
    AS 'MODULE_PATHNAME', 'crm_lead_score_rules'
    LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION crm.lead_score_rules(crm.lead) IS 'The active scoring rules a lead row matches, with their points (what crm.lead_score_detail shows)';
CREATE VIEW crm.lead_score_detail WITH (security_invoker = true) AS
    SELECT l.id AS lead_id, r.rule_id, r.rule_name, r.points
      FROM crm.lead AS l CROSS JOIN LATERAL crm.lead_score_rules(l) AS r;
COMMENT ON VIEW crm.lead_score_detail IS 'Which scoring rules give which lead how many points, by the current rules (the leads each role sees); after a rule change, crm.lead.score agrees once crm.rescore_leads() has run';
COMMENT ON COLUMN crm.lead_score_detail.lead_id IS 'The lead';
COMMENT ON COLUMN crm.lead_score_detail.rule_id IS 'The scoring rule it matches';
COMMENT ON COLUMN crm.lead_score_detail.rule_name IS 'The rule''s name';
COMMENT ON COLUMN crm.lead_score_detail.points IS 'The points the rule gives';

CREATE FUNCTION crm.rescore_leads() RETURNS bigint
    AS 'MODULE_PATHNAME', 'crm_rescore_leads'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.rescore_leads() IS 'Admins: recomputes the score of every lead that is not converted from the current scoring rules; returns how many scores changed (each change is an update: updated_at and the change log record it)';

CREATE FUNCTION crm.assign_lead(lead_id bigint) RETURNS regrole
    AS 'MODULE_PATHNAME', 'crm_assign_lead'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.assign_lead(bigint) IS 'Managers and admins: runs the assignment rules again for one lead the caller may change and gives it the owner they choose (recorded in crm.lead_assignment); returns the owner (unchanged when no rule and no default owner applies)';

-- rights: rules are admins'; managers read them; the log follows its lead
GRANT SELECT ON crm.scoring_rule, crm.assignment_rule, crm.assignment_queue_member TO crm_admin, crm_manager;
GRANT SELECT ON crm.scoring_rule TO crm_sales;
GRANT DELETE ON crm.scoring_rule, crm.assignment_rule, crm.assignment_queue_member TO crm_admin;
GRANT INSERT (name, active, column_name, operator, value, points),
    UPDATE (name, active, column_name, operator, value, points) ON crm.scoring_rule TO crm_admin;
GRANT INSERT (priority, active, source, country, industry, campaign_id, min_score, assign_to, queue),
    UPDATE (priority, active, source, country, industry, campaign_id, min_score, assign_to, queue)
    ON crm.assignment_rule TO crm_admin;
GRANT INSERT (queue, member, active, max_open_leads), UPDATE (queue, member, active, max_open_leads)
    ON crm.assignment_queue_member TO crm_admin;
GRANT SELECT ON crm.lead_assignment TO crm_admin, crm_manager, crm_sales;
GRANT SELECT ON crm.lead_score_detail TO crm_admin, crm_manager, crm_sales;
ALTER TABLE crm.lead_assignment ENABLE ROW LEVEL SECURITY;
CREATE POLICY crm_admin_all ON crm.lead_assignment TO crm_admin USING (true) WITH CHECK (true);
CREATE POLICY crm_parent_select ON crm.lead_assignment FOR SELECT TO crm_manager, crm_sales
    USING (EXISTS (SELECT 1 FROM crm.lead AS p WHERE p.id OPERATOR(pg_catalog.=) lead_id));
REVOKE ALL ON FUNCTION crm.lead_score_rules(crm.lead), crm.rescore_leads(), crm.assign_lead(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.lead_score_rules(crm.lead) TO crm_admin, crm_manager, crm_sales;
GRANT EXECUTE ON FUNCTION crm.rescore_leads() TO crm_admin;
GRANT EXECUTE ON FUNCTION crm.assign_lead(bigint) TO crm_admin, crm_manager;
-- (a fresh install does these in 99_privileges.sql: admins change the
-- settings column by column; trigger functions are nobody's to call; every
-- table and sequence is dumped)
GRANT UPDATE (default_lead_owner) ON crm.settings TO crm_admin;
GRANT INSERT (score), UPDATE (score) ON crm.lead TO crm_admin, crm_manager, crm_sales;
REVOKE ALL ON FUNCTION crm.lead_score_and_route(), crm.lead_hand_over(), crm.scoring_rule_check(),
    crm.lead_rules_changed() FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm.scoring_rule', '');
SELECT pg_catalog.pg_extension_config_dump('crm.scoring_rule_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('crm.assignment_rule', '');
SELECT pg_catalog.pg_extension_config_dump('crm.assignment_rule_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('crm.assignment_queue_member', '');
SELECT pg_catalog.pg_extension_config_dump('crm.lead_assignment', '');
SELECT pg_catalog.pg_extension_config_dump('crm.lead_assignment_id_seq', '');

-- == convcarry: conversion carries activities and memberships; convertible statuses; attach; preview ==
ALTER TABLE crm.settings ADD COLUMN convertible_statuses crm.lead_status[] NOT NULL
        DEFAULT ARRAY['New Lead', 'Processing', 'Following Up', 'In Transaction', 'Completed']::crm.lead_status[]
    CONSTRAINT settings_convertible_statuses_valid CHECK (
        pg_catalog.cardinality(convertible_statuses) OPERATOR(pg_catalog.>) 0
        AND pg_catalog.array_ndims(convertible_statuses) OPERATOR(pg_catalog.=) 1
        AND pg_catalog.array_position(convertible_statuses, NULL) IS NULL
        AND pg_catalog.array_position(convertible_statuses, 'Converted'::crm.lead_status) IS NULL);
COMMENT ON COLUMN crm.settings.convertible_statuses IS 'Lead statuses crm.convert_lead() converts; a lead in any other status is refused (SQLSTATE ZC003). Default: every status but Not Qualified. Not empty, no NULL, never Converted';
GRANT UPDATE (convertible_statuses) ON crm.settings TO crm_admin;

-- convert_lead gains opportunity_id: a new signature, so drop and create
DROP FUNCTION crm.convert_lead(bigint, bigint, bigint, boolean, text, regrole, boolean);
CREATE FUNCTION crm.convert_lead(
    lead_id             bigint,
    account_id          bigint  DEFAULT NULL,
    contact_id          bigint  DEFAULT NULL,
    create_opportunity  boolean DEFAULT true,
    opportunity_name    text    DEFAULT NULL,
    owner               regrole DEFAULT NULL,
    dedupe              boolean DEFAULT true,
    opportunity_id      bigint  DEFAULT NULL)
    RETURNS crm.conversion_result
    AS 'MODULE_PATHNAME', 'crm_convert_lead'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.convert_lead(bigint, bigint, bigint, boolean, text, regrole, boolean, bigint) IS
'Converts a lead into account + contact (+ opportunity) in one atomic step and marks it Converted. '
'Reuses an existing account (same company key or web domain) and contact (same e-mail) unless dedupe => false; '
'account_id / contact_id pick the records explicitly; opportunity_id attaches the lead to an existing opportunity on the account instead of creating one. '
'The lead''s open activities and its campaign memberships move to the new or reused records. '
'Acts with the caller''s rights on every row; only the duplicate search and the moving run with the extension owner''s. See README "Lead conversion".';

CREATE FUNCTION crm.conversion_preview(
    lead_id             bigint,
    account_id          bigint  DEFAULT NULL,
    contact_id          bigint  DEFAULT NULL,
    create_opportunity  boolean DEFAULT true,
    opportunity_name    text    DEFAULT NULL,
    owner               regrole DEFAULT NULL,
    dedupe              boolean DEFAULT true,
    opportunity_id      bigint  DEFAULT NULL)
    RETURNS TABLE (action text, kind text, id bigint, rule text, name text)
    AS 'MODULE_PATHNAME', 'crm_conversion_preview'
    LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 10
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.conversion_preview(bigint, bigint, bigint, boolean, text, regrole, boolean, bigint) IS
'What crm.convert_lead() with the same arguments would do, without writing or locking anything: one row per record it would reuse (with the matching rule), create, attach to, or move from the lead (activities, campaign memberships the caller sees). '
'Raises the errors the conversion would raise. See README "Lead conversion".';

REVOKE ALL ON FUNCTION crm.convert_lead(bigint, bigint, bigint, boolean, text, regrole, boolean, bigint),
    crm.conversion_preview(bigint, bigint, bigint, boolean, text, regrole, boolean, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.convert_lead(bigint, bigint, bigint, boolean, text, regrole, boolean, bigint),
    crm.conversion_preview(bigint, bigint, bigint, boolean, text, regrole, boolean, bigint)
    TO crm_admin, crm_manager, crm_sales;

-- == recur: recurring activities (sql/install/80_activities.sql, src/recurrence.c) ==
COMMENT ON FUNCTION crm.activity_lifecycle() IS 'BEFORE INSERT OR UPDATE row trigger on crm.activity: keeps completed_at with status Completed, re-arms the reminder when remind_at changes, refuses an UPDATE that moves it to a record the writer cannot see (42501), checks the recurrence rule and keeps series_id and occurrence_number';
ALTER TABLE crm.activity
    ADD COLUMN recurrence text,
    ADD COLUMN recurrence_time_zone text,
    ADD COLUMN series_id bigint,
    ADD COLUMN occurrence_number integer,
    ADD COLUMN occurs_at timestamptz GENERATED ALWAYS AS (COALESCE(starts_at, due_at)) STORED,
    ADD CONSTRAINT activity_series_numbered CHECK ((series_id IS NULL) = (occurrence_number IS NULL)),
    ADD CONSTRAINT activity_occurrence_positive CHECK (occurrence_number OPERATOR(pg_catalog.>=) 1);
COMMENT ON COLUMN crm.activity.recurrence IS 'How the activity repeats: an iCalendar RRULE subset (FREQ=DAILY|WEEKLY|MONTHLY; INTERVAL, COUNT or UNTIL, BYDAY for WEEKLY), stored in canonical form; NULL: does not repeat. Completing or cancelling the occurrence creates the next one';
COMMENT ON COLUMN crm.activity.recurrence_time_zone IS 'Time zone in which the series repeats (a 09:00 meeting stays at 09:00 local time); defaults to the session time zone when the rule is set';
COMMENT ON COLUMN crm.activity.series_id IS 'Series the activity is an occurrence of: the id of its first occurrence (NULL: not recurring); set by the database';
COMMENT ON COLUMN crm.activity.occurrence_number IS 'Position of the occurrence in its series, from 1; set by the database';
COMMENT ON COLUMN crm.activity.occurs_at IS 'When the activity takes place on a calendar: starts_at, or due_at when there is none; computed by the database';
CREATE UNIQUE INDEX activity_series_occurrence_key ON crm.activity (series_id, occurrence_number)
    WHERE series_id IS NOT NULL;
CREATE INDEX activity_occurs_at_idx ON crm.activity (occurs_at);
CREATE INDEX activity_series_head_idx ON crm.activity (occurs_at)
    WHERE recurrence IS NOT NULL
      AND status OPERATOR(pg_catalog.<>) ALL (ARRAY['Completed', 'Cancelled']::crm.activity_status[]);
COMMENT ON INDEX crm.activity_series_occurrence_key IS 'One activity per position of a series: the next occurrence is created once';

CREATE FUNCTION crm.activity_next_occurrence() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_activity_next_occurrence'
    LANGUAGE C;
COMMENT ON FUNCTION crm.activity_next_occurrence() IS 'AFTER UPDATE OF status row trigger on crm.activity: when a recurring occurrence goes from Planned or In Progress to Completed or Cancelled, inserts the next occurrence of its series (at most once)';
CREATE TRIGGER activity_next_occurrence AFTER UPDATE OF status ON crm.activity
    FOR EACH ROW
    WHEN (NEW.recurrence IS NOT NULL AND OLD.status OPERATOR(pg_catalog.<>) NEW.status)
    EXECUTE FUNCTION crm.activity_next_occurrence();

CREATE FUNCTION crm.activity_occurrences("from" timestamptz, "to" timestamptz)
    RETURNS TABLE (activity_id bigint, series_id bigint, occurrence_number integer, is_virtual boolean,
                   occurs_at timestamptz, type crm.activity_type, subject text, status crm.activity_status,
                   owner regrole, due_at timestamptz, starts_at timestamptz, ends_at timestamptz,
                   lead_id bigint, account_id bigint, contact_id bigint, opportunity_id bigint)
    AS 'MODULE_PATHNAME', 'crm_activity_occurrences'
    LANGUAGE C STABLE PARALLEL UNSAFE ROWS 100
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.activity_occurrences(timestamptz, timestamptz) IS
'Calendar view of activities the caller sees from "from" (included) to "to" (excluded): the stored activities (is_virtual false) and the future occurrences the open occurrence of each recurring series will create (is_virtual true, activity_id NULL), without writing anything. occurs_at is starts_at, or due_at for tasks. At most 10,000 future occurrences per call (54000 beyond)';
REVOKE ALL ON FUNCTION crm.activity_next_occurrence() FROM PUBLIC;
REVOKE ALL ON FUNCTION crm.activity_occurrences(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.activity_occurrences(timestamptz, timestamptz) TO crm_admin, crm_manager, crm_sales;
GRANT INSERT (recurrence, recurrence_time_zone, series_id, occurrence_number),
    UPDATE (recurrence, recurrence_time_zone, series_id, occurrence_number)
    ON crm.activity TO crm_admin, crm_manager, crm_sales;

-- == quotes: quote numbers, validity and expiry, adjust on approval, quote document, price rules (issue 20 §3-4) ==
-- A new status Expired (appended, as in a fresh install).  This transaction
-- cannot use the value itself (PostgreSQL refuses an enum value added in the
-- running transaction): nothing below does (crm.expire_quotes() has a body
-- in quotes, parsed when called).
ALTER TYPE crm.quote_status ADD VALUE IF NOT EXISTS 'Expired';
COMMENT ON TYPE crm.quote_status IS 'Quote status: Draft -> Needs Review -> In Review -> Approved or Rejected -> Presented -> Accepted or Denied; an open quote past its valid_until becomes Expired (see crm.quote_transition)';
COMMENT ON COLUMN crm.quote.status IS 'Draft, Needs Review, In Review, Approved, Rejected, Presented, Accepted, Denied or Expired; only legal changes (crm.quote_transition) are accepted';
COMMENT ON TABLE crm.quote_transition IS 'The legal status changes of a quote; any other change is refused, but for expiry (an open quote past its valid_until becomes Expired, an Expired one goes back to Draft), which the database rules';
DROP FUNCTION crm.approve_quote(bigint, text);
-- approve_quote gains discount: a new signature
CREATE FUNCTION crm.approve_quote(quote_id bigint, comment text DEFAULT NULL, discount numeric DEFAULT NULL)
    RETURNS crm.quote_status
    AS 'MODULE_PATHNAME', 'crm_approve_quote'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.approve_quote(bigint, text, numeric) IS 'Approves a quote under review (Needs Review -> In Review -> Approved); managers and admins only, not one''s own submission; discount, when given, lowers (never raises) the quote discount as part of approving; records who, when, the comment and the old and new discount in crm.quote_approval';

REVOKE ALL ON FUNCTION crm.approve_quote(bigint, text, numeric) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.approve_quote(bigint, text, numeric) TO crm_admin, crm_manager, crm_sales;

-- Quote numbers: existing quotes are numbered Q-000001, ... in id order
-- (written with the guards off: a number is otherwise never written by hand);
-- the sequence continues after them.
CREATE SEQUENCE crm.quote_number_seq;
COMMENT ON SEQUENCE crm.quote_number_seq IS 'Numbers of quotes (Q-000001, ...), drawn by the database when a quote is inserted';
ALTER TABLE crm.quote ADD COLUMN quote_number text;
ALTER TABLE crm.quote DISABLE TRIGGER USER;
UPDATE crm.quote AS q SET quote_number = 'Q-' OPERATOR(pg_catalog.||) pg_catalog.lpad(n.n::pg_catalog.text, 6, '0')
  FROM (SELECT x.id, pg_catalog.row_number() OVER (ORDER BY x.id) AS n FROM crm.quote AS x) AS n
 WHERE n.id OPERATOR(pg_catalog.=) q.id;
-- Infinite dates: a valid_until of 'infinity' means no end (NULL); one of
-- '-infinity' means the offer never stood: yesterday, so the quote is past
-- its date (crm.expire_quotes() then marks it Expired).
UPDATE crm.quote AS q SET valid_until = CASE WHEN q.valid_until OPERATOR(pg_catalog.>) CURRENT_DATE THEN NULL
                                             ELSE CURRENT_DATE OPERATOR(pg_catalog.-) 1 END
 WHERE NOT pg_catalog.isfinite(q.valid_until);
ALTER TABLE crm.quote ENABLE TRIGGER USER;
SELECT pg_catalog.setval('crm.quote_number_seq', pg_catalog.count(*)) FROM crm.quote
HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 0;
ALTER TABLE crm.quote ALTER COLUMN quote_number SET NOT NULL;
ALTER TABLE crm.quote ADD CONSTRAINT quote_quote_number_key UNIQUE (quote_number);
ALTER TABLE crm.quote ADD CONSTRAINT quote_valid_until_finite CHECK (pg_catalog.isfinite(valid_until));
COMMENT ON COLUMN crm.quote.quote_number IS 'Quote number shown to the customer (Q-000001, ...); assigned by the database when the quote is made, never changes';
COMMENT ON COLUMN crm.quote.valid_until IS 'Last day the offer stands (a finite date, or NULL: no end); after it the quote cannot be presented, accepted or ordered and crm.expire_quotes() marks it Expired';
GRANT USAGE ON SEQUENCE crm.quote_number_seq TO crm_admin;
GRANT INSERT (quote_number), UPDATE (quote_number) ON crm.quote TO crm_admin, crm_manager, crm_sales;
SELECT pg_catalog.pg_extension_config_dump('crm.quote_number_seq', '');

-- Price books: infinite bounds.  '-infinity' from / 'infinity' to mean no
-- bound (NULL); 'infinity' from or '-infinity' to mean the book never
-- applies: its window becomes "until yesterday" (no start), so it prices
-- nothing from now on.  (Guards off: updated_at and the change log stay.)
ALTER TABLE crm.price_book DISABLE TRIGGER USER;
UPDATE crm.price_book AS b
   SET valid_from = NULL, valid_to = CURRENT_DATE OPERATOR(pg_catalog.-) 1
 WHERE b.valid_from OPERATOR(pg_catalog.=) 'infinity'::pg_catalog.date
    OR b.valid_to OPERATOR(pg_catalog.=) '-infinity'::pg_catalog.date;
UPDATE crm.price_book AS b
   SET valid_from = CASE WHEN pg_catalog.isfinite(b.valid_from) THEN b.valid_from END,
       valid_to = CASE WHEN pg_catalog.isfinite(b.valid_to) THEN b.valid_to END
 WHERE NOT pg_catalog.isfinite(b.valid_from) OR NOT pg_catalog.isfinite(b.valid_to);
ALTER TABLE crm.price_book ENABLE TRIGGER USER;
ALTER TABLE crm.price_book ADD CONSTRAINT price_book_valid_from_finite CHECK (pg_catalog.isfinite(valid_from));
ALTER TABLE crm.price_book ADD CONSTRAINT price_book_valid_to_finite CHECK (pg_catalog.isfinite(valid_to));
COMMENT ON COLUMN crm.price_book.valid_from IS 'First day the prices apply (a finite date, or NULL: no start); a line priced before it is refused';
COMMENT ON COLUMN crm.price_book.valid_to IS 'Last day the prices apply (a finite date, or NULL: no end); a line priced after it is refused';

-- Adjust on approval: the approval record keeps the discounts
ALTER TABLE crm.quote_approval ADD COLUMN old_discount numeric(5,2), ADD COLUMN new_discount numeric(5,2);
COMMENT ON COLUMN crm.quote_approval.old_discount IS 'For an approval: the quote discount (percent) before it';
COMMENT ON COLUMN crm.quote_approval.new_discount IS 'For an approval: the quote discount (percent) approved; lower than old_discount when the approver adjusted it';

-- Seller of the quote document
ALTER TABLE crm.settings ADD COLUMN seller_name text, ADD COLUMN seller_address text;
COMMENT ON COLUMN crm.settings.seller_name IS 'Legal name of the selling company, printed on quote documents (crm.quote_document)';
COMMENT ON COLUMN crm.settings.seller_address IS 'Postal address of the selling company (lines separated by newlines), printed on quote documents';
GRANT UPDATE (seller_name, seller_address) ON crm.settings TO crm_admin;

-- Quantity tiers
CREATE TABLE crm.price_book_tier (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    price_book_entry_id  bigint NOT NULL CONSTRAINT price_book_tier_price_book_entry_id_fkey
                         REFERENCES crm.price_book_entry (id) ON DELETE CASCADE,
    min_quantity         numeric(12,2) NOT NULL
                         CONSTRAINT price_book_tier_min_quantity_positive CHECK (min_quantity OPERATOR(pg_catalog.>) 0
                             AND min_quantity OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    unit_price           numeric(14,2) NOT NULL
                         CONSTRAINT price_book_tier_unit_price_not_negative CHECK (unit_price OPERATOR(pg_catalog.>=) 0
                             AND unit_price OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    owner                regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at           timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at           timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT price_book_tier_entry_min_quantity_key UNIQUE (price_book_entry_id, min_quantity)
);
COMMENT ON TABLE crm.price_book_tier IS 'Quantity tiers of a price book entry: a line of at least min_quantity units is priced at unit_price by default (the tier with the highest min_quantity not above the quantity; below every tier, the entry''s price)';
COMMENT ON COLUMN crm.price_book_tier.id IS 'Tier id, assigned by the database';
COMMENT ON COLUMN crm.price_book_tier.price_book_entry_id IS 'The price book entry (product in a book) the tier belongs to; tiers go with it';
COMMENT ON COLUMN crm.price_book_tier.min_quantity IS 'Smallest quantity the tier applies to, > 0; unique per entry, so tiers are strictly increasing in quantity';
COMMENT ON COLUMN crm.price_book_tier.unit_price IS 'Price of one unit for quantities from min_quantity up to the next tier, >= 0';
COMMENT ON COLUMN crm.price_book_tier.owner IS 'CRM user (database role) responsible for the tier';
COMMENT ON COLUMN crm.price_book_tier.created_at IS 'When the tier was created; set by the database';
COMMENT ON COLUMN crm.price_book_tier.updated_at IS 'When the tier was last changed; set by the database';
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.price_book_tier
    FOR EACH ROW EXECUTE FUNCTION crm.stamp_row();
GRANT SELECT ON crm.price_book_tier TO crm_admin, crm_manager, crm_sales, crm_analyst;
GRANT INSERT (price_book_entry_id, min_quantity, unit_price, owner, created_at, updated_at),
      UPDATE (price_book_entry_id, min_quantity, unit_price, owner, created_at, updated_at)
    ON crm.price_book_tier TO crm_admin;
GRANT DELETE ON crm.price_book_tier TO crm_admin;
SELECT pg_catalog.pg_extension_config_dump('crm.price_book_tier', '');
SELECT pg_catalog.pg_extension_config_dump('crm.price_book_tier_id_seq', '');

-- An account's default price book
ALTER TABLE crm.account ADD COLUMN price_book_id bigint
    CONSTRAINT account_price_book_id_fkey REFERENCES crm.price_book (id) ON DELETE SET NULL;
COMMENT ON COLUMN crm.account.price_book_id IS 'Default price book of the account''s new opportunities and quotes (NULL: the standard book); must be active when set';
CREATE INDEX account_price_book_id_idx ON crm.account (price_book_id) WHERE price_book_id IS NOT NULL;
COMMENT ON INDEX crm.account_price_book_id_idx IS 'Accounts by price book: deleting a price book clears it from its accounts without reading every account';
CREATE FUNCTION crm.account_price_book_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_account_price_book_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm.account_price_book_guard() IS 'BEFORE INSERT OR UPDATE OF price_book_id row trigger on crm.account: the default price book chosen for an account must be active (ZC104)';
CREATE TRIGGER account_price_book_guard BEFORE INSERT OR UPDATE OF price_book_id ON crm.account
    FOR EACH ROW EXECUTE FUNCTION crm.account_price_book_guard();
REVOKE ALL ON FUNCTION crm.account_price_book_guard() FROM PUBLIC;
GRANT INSERT (price_book_id), UPDATE (price_book_id) ON crm.account TO crm_admin, crm_manager, crm_sales;

-- Expiry: for a scheduler (pg_cron) running as an admin.  SECURITY INVOKER:
-- (a body in quotes: parsed when called, since the update from 0.6 adds the
-- status Expired in the same transaction that creates this function)
-- it expires the quotes the caller sees (an admin sees all).  Each quote is
-- moved by an UPDATE that locks it, so a concurrent accept either commits
-- first (the quote is then Accepted, no longer open, and is skipped) or
-- waits and then finds it Expired (ZC020).
CREATE FUNCTION crm.expire_quotes()
    RETURNS bigint
    LANGUAGE sql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
    AS $$
        WITH expired AS (
            UPDATE crm.quote AS q SET status = 'Expired'::crm.quote_status
             WHERE q.status OPERATOR(pg_catalog.=) ANY (ARRAY['Draft', 'Needs Review', 'In Review', 'Approved',
                                                            'Rejected', 'Presented']::crm.quote_status[])
               AND q.valid_until OPERATOR(pg_catalog.<) CURRENT_DATE
            RETURNING q.id)
        SELECT pg_catalog.count(*) FROM expired
    $$;
COMMENT ON FUNCTION crm.expire_quotes() IS 'Marks every open quote (Draft, Needs Review, In Review, Approved, Rejected, Presented) whose valid_until is before today (in the session''s TimeZone) Expired and returns how many; idempotent; for admins and the scheduler''s role (a member of crm_admin)';

-- The quote document: everything a PDF template needs, one row per quote.
CREATE VIEW crm.quote_document WITH (security_invoker = true) AS
    SELECT q.id AS quote_id,
           q.quote_number,
           q.name,
           q.status,
           q.created_at::date AS quote_date,
           q.valid_until,
           s.seller_name,
           s.seller_address,
           a.name AS customer_name,
           NULLIF(pg_catalog.concat_ws(E'\n', a.street,
                      NULLIF(pg_catalog.concat_ws(' ', a.postal_code, a.city, a.region), ''), a.country), '')
               AS customer_address,
           c.name AS contact_name,
           c.email::text AS contact_email,
           b.currency,
           COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                               'product_code', p.code, 'product_name', p.name, 'description', l.description,
                               'quantity', l.quantity, 'unit_price', l.unit_price,
                               'discount', l.discount, 'total', l.total)
                             ORDER BY l.sort_order, l.id)
                       FROM crm.quote_line_item AS l
                       JOIN crm.product AS p ON p.id OPERATOR(pg_catalog.=) l.product_id
                      WHERE l.quote_id OPERATOR(pg_catalog.=) q.id), '[]'::jsonb) AS lines,
           q.subtotal,
           q.discount,
           q.discount_amount,
           q.tax_rate,
           q.tax,
           q.total,
           q.description AS terms
      FROM crm.quote AS q
      CROSS JOIN crm.settings AS s
      LEFT JOIN crm.account AS a ON a.id OPERATOR(pg_catalog.=) q.account_id
      LEFT JOIN crm.contact AS c ON c.id OPERATOR(pg_catalog.=) q.contact_id
      LEFT JOIN crm.price_book AS b ON b.id OPERATOR(pg_catalog.=) q.price_book_id;
COMMENT ON VIEW crm.quote_document IS 'One row per quote with everything a printed quote (PDF template) needs: number, dates, seller, customer, contact, lines and amounts; shows what the reader may see';
COMMENT ON COLUMN crm.quote_document.quote_id IS 'Quote id';
COMMENT ON COLUMN crm.quote_document.quote_number IS 'Quote number (Q-000001, ...)';
COMMENT ON COLUMN crm.quote_document.name IS 'Quote name';
COMMENT ON COLUMN crm.quote_document.status IS 'Quote status';
COMMENT ON COLUMN crm.quote_document.quote_date IS 'Day the quote was made';
COMMENT ON COLUMN crm.quote_document.valid_until IS 'Last day the offer stands';
COMMENT ON COLUMN crm.quote_document.seller_name IS 'Selling company (crm.settings.seller_name)';
COMMENT ON COLUMN crm.quote_document.seller_address IS 'Selling company address (crm.settings.seller_address)';
COMMENT ON COLUMN crm.quote_document.customer_name IS 'Customer account name (NULL when the reader cannot see the account)';
COMMENT ON COLUMN crm.quote_document.customer_address IS 'Customer address from the account: street, postal code city region, country, one per line';
COMMENT ON COLUMN crm.quote_document.contact_name IS 'Contact the quote is addressed to';
COMMENT ON COLUMN crm.quote_document.contact_email IS 'E-mail address of that contact';
COMMENT ON COLUMN crm.quote_document.currency IS 'ISO currency code of the prices (the quote''s price book)';
COMMENT ON COLUMN crm.quote_document.lines IS 'Line items as a JSON array in display order: product_code, product_name, description, quantity, unit_price, discount, total';
COMMENT ON COLUMN crm.quote_document.subtotal IS 'Sum of the line totals';
COMMENT ON COLUMN crm.quote_document.discount IS 'Quote discount in percent';
COMMENT ON COLUMN crm.quote_document.discount_amount IS 'Discount amount';
COMMENT ON COLUMN crm.quote_document.tax_rate IS 'Tax rate in percent';
COMMENT ON COLUMN crm.quote_document.tax IS 'Tax amount';
COMMENT ON COLUMN crm.quote_document.total IS 'Total to pay';
COMMENT ON COLUMN crm.quote_document.terms IS 'Terms and notes (the quote description)';
REVOKE ALL ON FUNCTION crm.expire_quotes() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.expire_quotes() TO crm_admin;
GRANT SELECT ON crm.quote_document TO crm_admin, crm_manager, crm_sales;

-- == loss reasons and contact roles (issue 20 §5: sql/install/62_loss_reasons_and_contact_roles.sql, src/contact_roles.c) ==
CREATE TABLE crm.loss_reason (
    code    text PRIMARY KEY
            CONSTRAINT loss_reason_code_format CHECK (code OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]*$'),
    label   text NOT NULL
            CONSTRAINT loss_reason_label_not_blank CHECK (pg_catalog.btrim(label) OPERATOR(pg_catalog.<>) ''),
    active  boolean NOT NULL DEFAULT true
);
COMMENT ON TABLE crm.loss_reason IS 'Why deals are lost: the reasons a lost opportunity chooses from (loss_reason_code); maintained by admins, read by everyone';
COMMENT ON COLUMN crm.loss_reason.code IS 'Stable code of the reason (lower case, e.g. price, no_budget); never changes once deals use it';
COMMENT ON COLUMN crm.loss_reason.label IS 'Name of the reason shown to users and in reports';
COMMENT ON COLUMN crm.loss_reason.active IS 'Whether a deal lost now may choose it; deals already lost keep an inactive reason';

-- the seeds; a restore (session_replication_role = replica) brings its own rows
INSERT INTO crm.loss_reason (code, label)
SELECT v.code, v.label
  FROM (VALUES ('price', 'Price'), ('competitor', 'Lost to a competitor'), ('no_budget', 'No budget'),
               ('no_decision', 'No decision'), ('timing', 'Timing'), ('product_fit', 'Product fit'),
               ('other', 'Other')) AS v (code, label)
 WHERE pg_catalog.current_setting('session_replication_role') OPERATOR(pg_catalog.<>) 'replica';

ALTER TABLE crm.opportunity
    ADD COLUMN loss_reason_code text CONSTRAINT opportunity_loss_reason_code_fkey REFERENCES crm.loss_reason (code),
    ADD COLUMN competitor text;
COMMENT ON COLUMN crm.opportunity.loss_reason_code IS 'Why the deal was lost (crm.loss_reason.code): required in a lost stage, empty otherwise (cleared by the database when the deal is not lost)';
COMMENT ON COLUMN crm.opportunity.competitor IS 'Competitor the deal was lost to, if known; kept only while the deal is lost';
COMMENT ON COLUMN crm.opportunity.loss_reason IS 'Comment on why the deal was lost (free text, optional); the reason itself is loss_reason_code';
CREATE INDEX opportunity_loss_reason_code_idx ON crm.opportunity (loss_reason_code) WHERE loss_reason_code IS NOT NULL;
COMMENT ON INDEX crm.opportunity_loss_reason_code_idx IS 'Lost deals by reason: deleting a reason checks its deals without reading every opportunity';

CREATE VIEW crm.loss_analysis WITH (security_invoker = true) AS
    SELECT o.loss_reason_code AS reason,
           r.label AS reason_label,
           o.owner,
           pg_catalog.date_trunc('month', o.closed_at)::date AS month,
           pg_catalog.count(*) AS deals,
           pg_catalog.sum(o.amount) AS amount
      FROM crm.opportunity AS o
      JOIN crm.loss_reason AS r ON r.code OPERATOR(pg_catalog.=) o.loss_reason_code
     GROUP BY o.loss_reason_code, r.label, o.owner, pg_catalog.date_trunc('month', o.closed_at)::date;
COMMENT ON VIEW crm.loss_analysis IS 'Lost deals by loss reason, owner and month of close (in the session time zone): how many and their amount; each role sees the deals it may read';
COMMENT ON COLUMN crm.loss_analysis.reason IS 'Loss reason code';
COMMENT ON COLUMN crm.loss_analysis.reason_label IS 'Loss reason as shown to users';
COMMENT ON COLUMN crm.loss_analysis.owner IS 'Owner of the lost deals';
COMMENT ON COLUMN crm.loss_analysis.month IS 'First day of the month the deals were closed in';
COMMENT ON COLUMN crm.loss_analysis.deals IS 'Number of deals lost';
COMMENT ON COLUMN crm.loss_analysis.amount IS 'Sum of their amounts';

CREATE TABLE crm.opportunity_contact_role (
    opportunity_id  bigint NOT NULL CONSTRAINT opportunity_contact_role_opportunity_id_fkey
                    REFERENCES crm.opportunity (id) ON DELETE CASCADE,
    contact_id      bigint NOT NULL CONSTRAINT opportunity_contact_role_contact_id_fkey
                    REFERENCES crm.contact (id) ON DELETE CASCADE,
    role            text NOT NULL DEFAULT 'Other'
                    CONSTRAINT opportunity_contact_role_role_check CHECK (role OPERATOR(pg_catalog.=) ANY
                        (ARRAY['Decision Maker', 'Economic Buyer', 'Influencer', 'Technical Evaluator', 'User', 'Other'])),
    is_primary      boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (opportunity_id, contact_id)
);
COMMENT ON TABLE crm.opportunity_contact_role IS 'The people of a deal and the part each plays; the primary one is the opportunity''s contact (kept in step by the database)';
COMMENT ON COLUMN crm.opportunity_contact_role.opportunity_id IS 'The deal';
COMMENT ON COLUMN crm.opportunity_contact_role.contact_id IS 'The person';
COMMENT ON COLUMN crm.opportunity_contact_role.role IS 'Their role: Decision Maker, Economic Buyer, Influencer, Technical Evaluator, User or Other';
COMMENT ON COLUMN crm.opportunity_contact_role.is_primary IS 'Whether this is the deal''s primary contact (crm.opportunity.contact_id); at most one per deal, marking one unmarks the others';
COMMENT ON COLUMN crm.opportunity_contact_role.created_at IS 'When the person was added to the deal';
CREATE UNIQUE INDEX opportunity_contact_role_one_primary ON crm.opportunity_contact_role (opportunity_id) WHERE is_primary;
COMMENT ON INDEX crm.opportunity_contact_role_one_primary IS 'At most one primary contact per deal';
CREATE INDEX opportunity_contact_role_contact_id_idx ON crm.opportunity_contact_role (contact_id);
COMMENT ON INDEX crm.opportunity_contact_role_contact_id_idx IS 'Deals of a contact: deleting or merging a contact finds its roles without reading every role';

-- Existing data: a deal with a contact gets it as its primary contact role
-- (before the triggers exist: nothing else changes); a lost deal gets the
-- reason "other", its free text staying the comment.  That update runs with
-- the user triggers off (session_replication_role = replica for the
-- statement: the deals keep their updated_at, the change log and the
-- aggregates are untouched).  A restore brings its own rows.
INSERT INTO crm.opportunity_contact_role (opportunity_id, contact_id, role, is_primary)
SELECT o.id, o.contact_id, 'Other', true FROM crm.opportunity AS o WHERE o.contact_id IS NOT NULL;
DO $loss_reasons$
DECLARE
    mode constant text := pg_catalog.current_setting('session_replication_role');
BEGIN
    IF mode OPERATOR(pg_catalog.<>) 'replica' THEN
        PERFORM pg_catalog.set_config('session_replication_role', 'replica', true);
        UPDATE crm.opportunity AS o SET loss_reason_code = 'other'
          FROM crm.opportunity_stage AS s
         WHERE s.name OPERATOR(pg_catalog.=) o.stage AND s.is_closed AND NOT s.is_won;
        PERFORM pg_catalog.set_config('session_replication_role', mode, true);
    END IF;
END
$loss_reasons$;

CREATE FUNCTION crm.contact_role_sync() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_contact_role_sync'
    LANGUAGE C;
COMMENT ON FUNCTION crm.contact_role_sync() IS 'BEFORE INSERT OR UPDATE row trigger on crm.opportunity_contact_role: locks the deal; a row marked primary unmarks the others and becomes the deal''s contact_id; a primary row unmarked (or moved) clears it';
CREATE TRIGGER contact_role_sync BEFORE INSERT OR UPDATE ON crm.opportunity_contact_role
    FOR EACH ROW EXECUTE FUNCTION crm.contact_role_sync();

CREATE FUNCTION crm.contact_role_removed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_contact_role_removed'
    LANGUAGE C;
COMMENT ON FUNCTION crm.contact_role_removed() IS 'AFTER DELETE row trigger on crm.opportunity_contact_role: removing the primary row clears the deal''s contact_id (in a contact merge, the survivor''s row becomes primary instead)';
CREATE TRIGGER contact_role_removed AFTER DELETE ON crm.opportunity_contact_role
    FOR EACH ROW EXECUTE FUNCTION crm.contact_role_removed();

CREATE FUNCTION crm.opportunity_contact_sync() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_opportunity_contact_sync'
    LANGUAGE C;
COMMENT ON FUNCTION crm.opportunity_contact_sync() IS 'AFTER INSERT OR UPDATE OF contact_id row trigger on crm.opportunity: the contact becomes the deal''s primary contact role (added with role Other if missing), the previous primary is unmarked';
CREATE TRIGGER opportunity_contact_sync AFTER INSERT OR UPDATE OF contact_id ON crm.opportunity
    FOR EACH ROW EXECUTE FUNCTION crm.opportunity_contact_sync();
REVOKE ALL ON FUNCTION crm.contact_role_sync(), crm.contact_role_removed(), crm.opportunity_contact_sync() FROM PUBLIC;
COMMENT ON FUNCTION crm.opportunity_lifecycle() IS 'BEFORE INSERT OR UPDATE row trigger on crm.opportunity: probability from the stage unless given, loss_reason_code required for a lost stage (an active one when newly chosen) and cleared otherwise, closed_at kept, amount and price book fixed by line items';

-- Contact roles (62_loss_reasons_and_contact_roles.sql) follow their deal;
-- a role row may name only a contact the caller sees, as contact_id does
-- (sharing.c).  Loss reasons are a catalog: no row security.
ALTER TABLE crm.opportunity_contact_role ENABLE ROW LEVEL SECURITY;
CREATE POLICY crm_admin_all ON crm.opportunity_contact_role TO crm_admin USING (true) WITH CHECK (true);
CREATE POLICY crm_parent_select ON crm.opportunity_contact_role FOR SELECT TO crm_manager, crm_sales
    USING (EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id));
CREATE POLICY crm_parent_insert ON crm.opportunity_contact_role FOR INSERT TO crm_manager, crm_sales
    WITH CHECK (EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id)
                AND crm.may_reference_contact(contact_id));
CREATE POLICY crm_parent_update ON crm.opportunity_contact_role FOR UPDATE TO crm_manager, crm_sales
    USING (EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id))
    WITH CHECK (EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id)
                AND crm.may_reference_contact(contact_id));
CREATE POLICY crm_parent_delete ON crm.opportunity_contact_role FOR DELETE TO crm_manager, crm_sales
    USING (EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id));

-- Loss reasons and contact roles (62_loss_reasons_and_contact_roles.sql):
-- reasons are read by everyone and maintained by admins (a code never
-- changes: admins update label and active only); contact roles are written
-- with their deal.  Analysts read the loss analysis (reason codes, no
-- comments or competitors).
GRANT SELECT ON crm.loss_reason TO crm_admin, crm_manager, crm_sales, crm_analyst;
GRANT INSERT (code, label, active), UPDATE (label, active), DELETE ON crm.loss_reason TO crm_admin;
GRANT SELECT, INSERT (opportunity_id, contact_id, role, is_primary),
    UPDATE (opportunity_id, contact_id, role, is_primary), DELETE
    ON crm.opportunity_contact_role TO crm_admin, crm_manager, crm_sales;
GRANT SELECT ON crm.loss_analysis TO crm_admin, crm_manager, crm_sales, crm_analyst;
GRANT SELECT (loss_reason_code) ON crm.opportunity TO crm_analyst;

-- the new columns of crm.opportunity, as 99_privileges.sql grants every column
GRANT INSERT (loss_reason_code, competitor), UPDATE (loss_reason_code, competitor)
    ON crm.opportunity TO crm_admin, crm_manager, crm_sales;
SELECT pg_catalog.pg_extension_config_dump('crm.loss_reason', '');
SELECT pg_catalog.pg_extension_config_dump('crm.opportunity_contact_role', '');

-- == notes: notes, attachments and tags (issue 19 §1, §3; sql/install/81_notes_and_tags.sql) ==
CREATE TABLE crm.note (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    body            text NOT NULL
                    CONSTRAINT note_body_not_blank CHECK (pg_catalog.btrim(body) OPERATOR(pg_catalog.<>) '')
                    CONSTRAINT note_body_length CHECK (pg_catalog.length(body) OPERATOR(pg_catalog.<=) 100000),
    pinned          boolean NOT NULL DEFAULT false,
    lead_id         bigint CONSTRAINT note_lead_id_fkey REFERENCES crm.lead (id) ON DELETE CASCADE,
    account_id      bigint CONSTRAINT note_account_id_fkey REFERENCES crm.account (id) ON DELETE CASCADE,
    contact_id      bigint CONSTRAINT note_contact_id_fkey REFERENCES crm.contact (id) ON DELETE CASCADE,
    opportunity_id  bigint CONSTRAINT note_opportunity_id_fkey REFERENCES crm.opportunity (id) ON DELETE CASCADE,
    quote_id        bigint CONSTRAINT note_quote_id_fkey REFERENCES crm.quote (id) ON DELETE CASCADE,
    sales_order_id  bigint CONSTRAINT note_sales_order_id_fkey REFERENCES crm.sales_order (id) ON DELETE CASCADE,
    owner           regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    search_text     text,
    CONSTRAINT note_about_exactly_one CHECK (pg_catalog.num_nonnulls(lead_id, account_id, contact_id,
        opportunity_id, quote_id, sales_order_id) OPERATOR(pg_catalog.=) 1)
);
COMMENT ON TABLE crm.note IS 'Free-text notes about one lead, account, contact, opportunity, quote or sales order; whoever sees the record sees its notes';
COMMENT ON COLUMN crm.note.id IS 'Note id, assigned by the database';
COMMENT ON COLUMN crm.note.body IS 'The text of the note (not blank, at most 100,000 characters); found by crm.search()';
COMMENT ON COLUMN crm.note.pinned IS 'True for a note kept on top of the record''s notes';
COMMENT ON COLUMN crm.note.lead_id IS 'The lead it is about (exactly one of lead, account, contact, opportunity, quote, sales order)';
COMMENT ON COLUMN crm.note.account_id IS 'The account it is about';
COMMENT ON COLUMN crm.note.contact_id IS 'The contact it is about';
COMMENT ON COLUMN crm.note.opportunity_id IS 'The opportunity it is about';
COMMENT ON COLUMN crm.note.quote_id IS 'The quote it is about';
COMMENT ON COLUMN crm.note.sales_order_id IS 'The sales order it is about';
COMMENT ON COLUMN crm.note.owner IS 'CRM user (database role) who wrote the note; they, their managers and admins change it';
COMMENT ON COLUMN crm.note.created_at IS 'When the note was written; set by the database';
COMMENT ON COLUMN crm.note.updated_at IS 'When the note was last changed; set by the database';
COMMENT ON COLUMN crm.note.search_text IS 'What crm.search() searches in a note: its body (no accents, lower case). Filled in by the database';
CREATE INDEX note_lead_id_idx ON crm.note (lead_id) WHERE lead_id IS NOT NULL;
CREATE INDEX note_account_id_idx ON crm.note (account_id) WHERE account_id IS NOT NULL;
CREATE INDEX note_contact_id_idx ON crm.note (contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX note_opportunity_id_idx ON crm.note (opportunity_id) WHERE opportunity_id IS NOT NULL;
CREATE INDEX note_quote_id_idx ON crm.note (quote_id) WHERE quote_id IS NOT NULL;
CREATE INDEX note_sales_order_id_idx ON crm.note (sales_order_id) WHERE sales_order_id IS NOT NULL;

CREATE TABLE crm.attachment (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_id         bigint CONSTRAINT attachment_lead_id_fkey REFERENCES crm.lead (id) ON DELETE CASCADE,
    account_id      bigint CONSTRAINT attachment_account_id_fkey REFERENCES crm.account (id) ON DELETE CASCADE,
    contact_id      bigint CONSTRAINT attachment_contact_id_fkey REFERENCES crm.contact (id) ON DELETE CASCADE,
    opportunity_id  bigint CONSTRAINT attachment_opportunity_id_fkey REFERENCES crm.opportunity (id) ON DELETE CASCADE,
    quote_id        bigint CONSTRAINT attachment_quote_id_fkey REFERENCES crm.quote (id) ON DELETE CASCADE,
    sales_order_id  bigint CONSTRAINT attachment_sales_order_id_fkey REFERENCES crm.sales_order (id) ON DELETE CASCADE,
    file_name       text NOT NULL
                    CONSTRAINT attachment_file_name_valid CHECK (
                        pg_catalog.btrim(file_name) OPERATOR(pg_catalog.<>) ''
                        AND pg_catalog.length(file_name) OPERATOR(pg_catalog.<=) 255
                        AND file_name OPERATOR(pg_catalog.!~) '[/\\[:cntrl:]]'
                        AND file_name OPERATOR(pg_catalog.<>) ALL (ARRAY['.', '..'])),
    mime_type       text NOT NULL
                    CONSTRAINT attachment_mime_type_valid CHECK (
                        pg_catalog.length(mime_type) OPERATOR(pg_catalog.<=) 255
                        AND mime_type OPERATOR(pg_catalog.~) '^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$'),
    size_bytes      bigint NOT NULL
                    CONSTRAINT attachment_size_not_negative CHECK (size_bytes OPERATOR(pg_catalog.>=) 0),
    sha256          text NOT NULL
                    CONSTRAINT attachment_sha256_valid CHECK (sha256 OPERATOR(pg_catalog.~) '^[0-9a-f]{64}$'),
    storage_uri     text NOT NULL
                    CONSTRAINT attachment_storage_uri_valid CHECK (
                        pg_catalog.length(storage_uri) OPERATOR(pg_catalog.<=) 2000
                        AND storage_uri OPERATOR(pg_catalog.~) '^[a-z][a-z0-9+.-]*:[^[:space:][:cntrl:]]+$'),
    owner           regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT attachment_about_exactly_one CHECK (pg_catalog.num_nonnulls(lead_id, account_id, contact_id,
        opportunity_id, quote_id, sales_order_id) OPERATOR(pg_catalog.=) 1)
);
COMMENT ON TABLE crm.attachment IS 'Files attached to one lead, account, contact, opportunity, quote or sales order: their description only, the file itself is kept in the object store named by storage_uri; whoever sees the record sees its attachments';
COMMENT ON COLUMN crm.attachment.id IS 'Attachment id, assigned by the database';
COMMENT ON COLUMN crm.attachment.lead_id IS 'The lead it is attached to (exactly one of lead, account, contact, opportunity, quote, sales order)';
COMMENT ON COLUMN crm.attachment.account_id IS 'The account it is attached to';
COMMENT ON COLUMN crm.attachment.contact_id IS 'The contact it is attached to';
COMMENT ON COLUMN crm.attachment.opportunity_id IS 'The opportunity it is attached to';
COMMENT ON COLUMN crm.attachment.quote_id IS 'The quote it is attached to';
COMMENT ON COLUMN crm.attachment.sales_order_id IS 'The sales order it is attached to';
COMMENT ON COLUMN crm.attachment.file_name IS 'The file''s name, without a folder: not blank, no / or \ or control characters, at most 255 characters';
COMMENT ON COLUMN crm.attachment.mime_type IS 'The file''s media type, type/subtype (e.g. application/pdf)';
COMMENT ON COLUMN crm.attachment.size_bytes IS 'The file''s size in bytes (0 or more)';
COMMENT ON COLUMN crm.attachment.sha256 IS 'SHA-256 of the file''s bytes: 64 lower-case hexadecimal digits';
COMMENT ON COLUMN crm.attachment.storage_uri IS 'Where the file is kept: a URI with a scheme (s3://bucket/key, https://...)';
COMMENT ON COLUMN crm.attachment.owner IS 'CRM user (database role) who attached the file; they, their managers and admins delete it';
COMMENT ON COLUMN crm.attachment.created_at IS 'When the file was attached; set by the database';
COMMENT ON COLUMN crm.attachment.updated_at IS 'When the attachment was last changed (by an admin, a conversion or a merge); set by the database';
CREATE INDEX attachment_lead_id_idx ON crm.attachment (lead_id) WHERE lead_id IS NOT NULL;
CREATE INDEX attachment_account_id_idx ON crm.attachment (account_id) WHERE account_id IS NOT NULL;
CREATE INDEX attachment_contact_id_idx ON crm.attachment (contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX attachment_opportunity_id_idx ON crm.attachment (opportunity_id) WHERE opportunity_id IS NOT NULL;
CREATE INDEX attachment_quote_id_idx ON crm.attachment (quote_id) WHERE quote_id IS NOT NULL;
CREATE INDEX attachment_sales_order_id_idx ON crm.attachment (sales_order_id) WHERE sales_order_id IS NOT NULL;

CREATE TABLE crm.tag (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL
                CONSTRAINT tag_name_valid CHECK (pg_catalog.btrim(name) OPERATOR(pg_catalog.=) name
                    AND name OPERATOR(pg_catalog.<>) '' AND pg_catalog.length(name) OPERATOR(pg_catalog.<=) 100),
    color       text CONSTRAINT tag_color_valid CHECK (color OPERATOR(pg_catalog.~) '^#[0-9a-f]{6}$'),
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE crm.tag IS 'Labels that leads, accounts, contacts and opportunities can carry (e.g. "VIP", "trade fair 2026"); kept by admins and managers';
COMMENT ON COLUMN crm.tag.id IS 'Tag id, assigned by the database';
COMMENT ON COLUMN crm.tag.name IS 'The label: unique regardless of case, no leading or trailing spaces, at most 100 characters';
COMMENT ON COLUMN crm.tag.color IS 'Display colour, #rrggbb in lower case (NULL: none)';
COMMENT ON COLUMN crm.tag.created_at IS 'When the tag was created; set by the database';
COMMENT ON COLUMN crm.tag.updated_at IS 'When the tag was last changed; set by the database';
CREATE UNIQUE INDEX tag_name_key ON crm.tag (pg_catalog.lower(name));
COMMENT ON INDEX crm.tag_name_key IS 'A tag name exists once, whatever its case';

CREATE TABLE crm.record_tag (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tag_id          bigint NOT NULL CONSTRAINT record_tag_tag_id_fkey REFERENCES crm.tag (id) ON DELETE CASCADE,
    lead_id         bigint CONSTRAINT record_tag_lead_id_fkey REFERENCES crm.lead (id) ON DELETE CASCADE,
    account_id      bigint CONSTRAINT record_tag_account_id_fkey REFERENCES crm.account (id) ON DELETE CASCADE,
    contact_id      bigint CONSTRAINT record_tag_contact_id_fkey REFERENCES crm.contact (id) ON DELETE CASCADE,
    opportunity_id  bigint CONSTRAINT record_tag_opportunity_id_fkey REFERENCES crm.opportunity (id) ON DELETE CASCADE,
    owner           regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT record_tag_on_exactly_one CHECK (pg_catalog.num_nonnulls(lead_id, account_id, contact_id, opportunity_id)
        OPERATOR(pg_catalog.=) 1),
    -- a record carries a tag once (these keys also index the foreign keys;
    -- merges fold two taggings of one tag into one: repoint.c)
    CONSTRAINT record_tag_lead_key UNIQUE (lead_id, tag_id),
    CONSTRAINT record_tag_account_key UNIQUE (account_id, tag_id),
    CONSTRAINT record_tag_contact_key UNIQUE (contact_id, tag_id),
    CONSTRAINT record_tag_opportunity_key UNIQUE (opportunity_id, tag_id)
);
COMMENT ON TABLE crm.record_tag IS 'Which lead, account, contact or opportunity carries which tag (each record a tag once); added and removed by whoever may update the record';
COMMENT ON COLUMN crm.record_tag.id IS 'Tagging id, assigned by the database';
COMMENT ON COLUMN crm.record_tag.tag_id IS 'The tag';
COMMENT ON COLUMN crm.record_tag.lead_id IS 'The tagged lead (exactly one of lead, account, contact, opportunity)';
COMMENT ON COLUMN crm.record_tag.account_id IS 'The tagged account';
COMMENT ON COLUMN crm.record_tag.contact_id IS 'The tagged contact';
COMMENT ON COLUMN crm.record_tag.opportunity_id IS 'The tagged opportunity';
COMMENT ON COLUMN crm.record_tag.owner IS 'CRM user (database role) who tagged the record';
COMMENT ON COLUMN crm.record_tag.created_at IS 'When the record was tagged; set by the database';
COMMENT ON COLUMN crm.record_tag.updated_at IS 'When the tagging last changed (a conversion or merge moved it); set by the database';
CREATE INDEX record_tag_tag_id_idx ON crm.record_tag (tag_id);

-- How many records of each kind carry each tag: security_invoker, so each
-- role counts the records it sees.
CREATE VIEW crm.tag_usage WITH (security_invoker = true) AS
    SELECT t.id AS tag_id, t.name AS tag, k.kind, pg_catalog.count(*) AS records
      FROM crm.record_tag AS r
      JOIN crm.tag AS t ON t.id OPERATOR(pg_catalog.=) r.tag_id
     CROSS JOIN LATERAL (SELECT CASE WHEN r.lead_id IS NOT NULL THEN 'lead'
                                     WHEN r.account_id IS NOT NULL THEN 'account'
                                     WHEN r.contact_id IS NOT NULL THEN 'contact'
                                     ELSE 'opportunity' END AS kind) AS k
     GROUP BY t.id, t.name, k.kind;
COMMENT ON VIEW crm.tag_usage IS 'Number of leads, accounts, contacts and opportunities carrying each tag, counting the records the reader sees (a tag nobody uses is not listed)';
COMMENT ON COLUMN crm.tag_usage.tag_id IS 'The tag';
COMMENT ON COLUMN crm.tag_usage.tag IS 'Tag name';
COMMENT ON COLUMN crm.tag_usage.kind IS 'lead, account, contact or opportunity';
COMMENT ON COLUMN crm.tag_usage.records IS 'How many records of that kind carry the tag';

-- Search: a note's body (92_search.sql, src/search.c)
CREATE TRIGGER search_text_fill BEFORE INSERT OR UPDATE OF body, search_text ON crm.note
    FOR EACH ROW EXECUTE FUNCTION crm.search_text_fill();
ALTER TABLE crm.note ENABLE ALWAYS TRIGGER search_text_fill;
DO $note_search_index$
DECLARE
    trgm text := (SELECT e.extnamespace::pg_catalog.regnamespace::pg_catalog.text
                    FROM pg_catalog.pg_extension AS e
                   WHERE e.extname OPERATOR(pg_catalog.=) 'pg_trgm');
BEGIN
    EXECUTE pg_catalog.format('CREATE INDEX note_search_idx ON crm.note USING gin (search_text %s.gin_trgm_ops)', trgm);
END
$note_search_index$;
COMMENT ON INDEX crm.note_search_idx IS 'Search (crm.search): trigrams of the folded body';

-- Timestamps and the change log (96_timestamps_and_change_log.sql)
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.note
    FOR EACH ROW EXECUTE FUNCTION crm.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.attachment
    FOR EACH ROW EXECUTE FUNCTION crm.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.tag
    FOR EACH ROW EXECUTE FUNCTION crm.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.record_tag
    FOR EACH ROW EXECUTE FUNCTION crm.stamp_row();
CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON crm.note
    FOR EACH ROW EXECUTE FUNCTION crm.record_change();
CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON crm.attachment
    FOR EACH ROW EXECUTE FUNCTION crm.record_change();
CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON crm.tag
    FOR EACH ROW EXECUTE FUNCTION crm.record_change();
CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON crm.record_tag
    FOR EACH ROW EXECUTE FUNCTION crm.record_change();

-- Row-level security (see 95_row_security.sql).  A note or an attachment is
-- visible exactly when its record is (the EXISTS runs the record's own
-- policies for the caller); it is written by its owner's team (the owner,
-- the managers above them) and only about a record the caller sees: a
-- forged id of a hidden lead is refused like a missing one.  A tagging is
-- visible with its record and added or removed by whoever may update the
-- record (its owner's team); the tagging's owner is the caller's team.
-- Tags themselves carry no personal data: everyone reads them.
DO $note_policies$
DECLARE
    t text;
    team constant text := 'owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))';
    sees_record constant text :=
           '(EXISTS (SELECT 1 FROM crm.lead AS p WHERE p.id OPERATOR(pg_catalog.=) lead_id)'
        || ' OR EXISTS (SELECT 1 FROM crm.account AS p WHERE p.id OPERATOR(pg_catalog.=) account_id)'
        || ' OR EXISTS (SELECT 1 FROM crm.contact AS p WHERE p.id OPERATOR(pg_catalog.=) contact_id)'
        || ' OR EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id)'
        || ' OR EXISTS (SELECT 1 FROM crm.quote AS p WHERE p.id OPERATOR(pg_catalog.=) quote_id)'
        || ' OR EXISTS (SELECT 1 FROM crm.sales_order AS p WHERE p.id OPERATOR(pg_catalog.=) sales_order_id))';
    sees_tagged constant text :=
           '(EXISTS (SELECT 1 FROM crm.lead AS p WHERE p.id OPERATOR(pg_catalog.=) lead_id)'
        || ' OR EXISTS (SELECT 1 FROM crm.account AS p WHERE p.id OPERATOR(pg_catalog.=) account_id)'
        || ' OR EXISTS (SELECT 1 FROM crm.contact AS p WHERE p.id OPERATOR(pg_catalog.=) contact_id)'
        || ' OR EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id))';
    updates_tagged constant text :=
           '(EXISTS (SELECT 1 FROM crm.lead AS p WHERE p.id OPERATOR(pg_catalog.=) lead_id'
        || '   AND p.owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles())))'
        || ' OR EXISTS (SELECT 1 FROM crm.account AS p WHERE p.id OPERATOR(pg_catalog.=) account_id'
        || '   AND p.owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles())))'
        || ' OR EXISTS (SELECT 1 FROM crm.contact AS p WHERE p.id OPERATOR(pg_catalog.=) contact_id'
        || '   AND p.owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles())))'
        || ' OR EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id'
        || '   AND p.owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))))';
BEGIN
    FOREACH t IN ARRAY ARRAY['note', 'attachment', 'record_tag']
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE crm.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE pg_catalog.format('CREATE POLICY crm_admin_all ON crm.%I TO crm_admin USING (true) WITH CHECK (true)', t);
        EXECUTE pg_catalog.format('CREATE POLICY crm_analyst_read ON crm.%I FOR SELECT TO crm_analyst USING (true)', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['note', 'attachment']
    LOOP
        EXECUTE pg_catalog.format('CREATE POLICY crm_parent_select ON crm.%I FOR SELECT TO crm_manager, crm_sales USING %s',
                                  t, sees_record);
        EXECUTE pg_catalog.format('CREATE POLICY crm_team_insert ON crm.%I FOR INSERT TO crm_manager, crm_sales WITH CHECK (%s AND %s)',
                                  t, team, sees_record);
        EXECUTE pg_catalog.format('CREATE POLICY crm_team_delete ON crm.%I FOR DELETE TO crm_manager, crm_sales USING (%s AND %s)',
                                  t, team, sees_record);
    END LOOP;
    -- attachments are not updated by reps and managers (no UPDATE privilege)
    EXECUTE pg_catalog.format('CREATE POLICY crm_team_update ON crm.note FOR UPDATE TO crm_manager, crm_sales'
                              ' USING (%s AND %s) WITH CHECK (%s AND %s)', team, sees_record, team, sees_record);
    EXECUTE pg_catalog.format('CREATE POLICY crm_parent_select ON crm.record_tag FOR SELECT TO crm_manager, crm_sales USING %s',
                              sees_tagged);
    EXECUTE pg_catalog.format('CREATE POLICY crm_record_insert ON crm.record_tag FOR INSERT TO crm_manager, crm_sales'
                              ' WITH CHECK (%s AND %s)', team, updates_tagged);
    EXECUTE pg_catalog.format('CREATE POLICY crm_record_delete ON crm.record_tag FOR DELETE TO crm_manager, crm_sales'
                              ' USING %s', updates_tagged);
END
$note_policies$;

-- Privileges: column by column, without the ids and search_text (see the
-- $ids$ block of 99_privileges.sql).  Analysts read tags and taggings (no
-- personal data), not notes or attachments.
GRANT SELECT, DELETE ON crm.note, crm.attachment, crm.record_tag TO crm_admin, crm_manager, crm_sales;
GRANT INSERT (body, pinned, lead_id, account_id, contact_id, opportunity_id, quote_id, sales_order_id, owner,
              created_at, updated_at),
      UPDATE (body, pinned, lead_id, account_id, contact_id, opportunity_id, quote_id, sales_order_id, owner,
              created_at, updated_at)
    ON crm.note TO crm_admin, crm_manager, crm_sales;
GRANT INSERT (lead_id, account_id, contact_id, opportunity_id, quote_id, sales_order_id, file_name, mime_type,
              size_bytes, sha256, storage_uri, owner, created_at, updated_at)
    ON crm.attachment TO crm_admin, crm_manager, crm_sales;
GRANT UPDATE (lead_id, account_id, contact_id, opportunity_id, quote_id, sales_order_id, file_name, mime_type,
              size_bytes, sha256, storage_uri, owner, created_at, updated_at)
    ON crm.attachment TO crm_admin;
GRANT INSERT (tag_id, lead_id, account_id, contact_id, opportunity_id, owner, created_at, updated_at)
    ON crm.record_tag TO crm_admin, crm_manager, crm_sales;
GRANT SELECT ON crm.tag TO crm_admin, crm_manager, crm_sales, crm_analyst;
GRANT INSERT (name, color, created_at, updated_at), UPDATE (name, color, created_at, updated_at)
    ON crm.tag TO crm_admin, crm_manager;
GRANT DELETE ON crm.tag TO crm_admin, crm_manager;
GRANT SELECT ON crm.record_tag, crm.tag_usage TO crm_analyst;
GRANT SELECT ON crm.tag_usage TO crm_admin, crm_manager, crm_sales;
-- crm.search() also finds notes (src/search.c)
COMMENT ON FUNCTION crm.search(text, text[], integer) IS 'Finds accounts (name, website, phone), contacts (name, e-mail, phone, account name), leads (name, company, e-mail, phone), notes (text; only those about a record the caller sees) and opportunities (name, account name) the caller may see: case- and accent-insensitive, typo-tolerant, prefixes, e-mail and phone fragments. kinds limits the kinds (NULL: all); best first by score (1 = the name is the query)';
COMMENT ON FUNCTION crm.search_text_fill() IS 'BEFORE INSERT OR UPDATE OF the searched columns trigger on crm.account, crm.contact, crm.lead, crm.opportunity, crm.note: sets search_text, the row''s searchable text (crm.search_document of its fields)';
SELECT pg_catalog.pg_extension_config_dump('crm.note', '');
SELECT pg_catalog.pg_extension_config_dump('crm.note_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('crm.attachment', '');
SELECT pg_catalog.pg_extension_config_dump('crm.attachment_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('crm.tag', '');
SELECT pg_catalog.pg_extension_config_dump('crm.tag_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('crm.record_tag', '');
SELECT pg_catalog.pg_extension_config_dump('crm.record_tag_id_seq', '');
-- conversion moves notes, attachments and tags (src/conversion_carry.c)
COMMENT ON FUNCTION crm.convert_lead(bigint, bigint, bigint, boolean, text, regrole, boolean, bigint) IS
'Converts a lead into account + contact (+ opportunity) in one atomic step and marks it Converted. '
'Reuses an existing account (same company key or web domain) and contact (same e-mail) unless dedupe => false; '
'account_id / contact_id pick the records explicitly; opportunity_id attaches the lead to an existing opportunity on the account instead of creating one. '
'The lead''s open activities, its campaign memberships, notes, attachments, tags and e-mail links move to the new or reused records; its custom field values are copied to fields of the same name. '
'Acts with the caller''s rights on every row; only the duplicate search and the moving run with the extension owner''s. See README "Lead conversion".';
COMMENT ON FUNCTION crm.conversion_preview(bigint, bigint, bigint, boolean, text, regrole, boolean, bigint) IS
'What crm.convert_lead() with the same arguments would do, without writing or locking anything: one row per record it would reuse (with the matching rule), create, attach to, or move from the lead (activities, campaign memberships, notes, attachments, tags the caller sees). '
'Raises the errors the conversion would raise. See README "Lead conversion".';

-- == e-mail log: crm.log_email, crm.email, crm.email_link, crm.email_thread (sql/install/98_email.sql, src/email_log.c) ==
CREATE TABLE crm.email (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id    text NOT NULL,
    direction     text NOT NULL,
    from_address  text NOT NULL,
    to_addresses  text[] NOT NULL DEFAULT '{}',
    cc_addresses  text[] NOT NULL DEFAULT '{}',
    subject       text,
    body_text     text,
    sent_at       timestamptz NOT NULL,
    in_reply_to   text,
    thread_id     bigint NOT NULL,
    participants  text[] NOT NULL DEFAULT '{}',
    logged_by     regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT email_message_id_key UNIQUE (message_id),
    CONSTRAINT email_message_id_check CHECK (pg_catalog.length(message_id) OPERATOR(pg_catalog.>) 0),
    CONSTRAINT email_direction_check CHECK (direction OPERATOR(pg_catalog.=) ANY (ARRAY['inbound', 'outbound']))
);
COMMENT ON TABLE crm.email IS 'The e-mail log: one row per message (by Message-ID), logged by crm.log_email(). Visible to whoever sees a record it is linked to (crm.email_link), and to the role that logged it';
COMMENT ON COLUMN crm.email.id IS 'Identifier of the logged e-mail';
COMMENT ON COLUMN crm.email.message_id IS 'The Message-ID header without white space and enclosing angle brackets; one row per message';
COMMENT ON COLUMN crm.email.direction IS 'inbound (received) or outbound (sent)';
COMMENT ON COLUMN crm.email.from_address IS 'The sender''s address';
COMMENT ON COLUMN crm.email.to_addresses IS 'The To recipients'' addresses';
COMMENT ON COLUMN crm.email.cc_addresses IS 'The Cc recipients'' addresses';
COMMENT ON COLUMN crm.email.subject IS 'Subject line';
COMMENT ON COLUMN crm.email.body_text IS 'The body as plain text';
COMMENT ON COLUMN crm.email.sent_at IS 'When the e-mail was sent';
COMMENT ON COLUMN crm.email.in_reply_to IS 'The Message-ID of the message this one answers (In-Reply-To header), normalised like message_id';
COMMENT ON COLUMN crm.email.thread_id IS 'The conversation: the id of the e-mail that started it (as far as logged); replies share it';
COMMENT ON COLUMN crm.email.participants IS 'Sender and recipients, each address once, in lower case: what the links were made from';
COMMENT ON COLUMN crm.email.logged_by IS 'CRM user (database role) that logged the e-mail';
COMMENT ON COLUMN crm.email.created_at IS 'When the e-mail was logged';
CREATE INDEX email_thread_id_idx ON crm.email (thread_id);
COMMENT ON INDEX crm.email_thread_id_idx IS 'The e-mails of a conversation';
CREATE INDEX email_in_reply_to_idx ON crm.email (in_reply_to) WHERE in_reply_to IS NOT NULL;
COMMENT ON INDEX crm.email_in_reply_to_idx IS 'Replies to a message: a message logged after its replies gathers them into its thread';
CREATE INDEX email_participants_idx ON crm.email USING gin (participants);
COMMENT ON INDEX crm.email_participants_idx IS 'E-mails by participant address: an access request or an erasure finds a person''s e-mails without reading every e-mail';

CREATE TABLE crm.email_link (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email_id    bigint NOT NULL CONSTRAINT email_link_email_id_fkey REFERENCES crm.email (id) ON DELETE CASCADE,
    contact_id  bigint CONSTRAINT email_link_contact_id_fkey REFERENCES crm.contact (id) ON DELETE CASCADE,
    lead_id     bigint CONSTRAINT email_link_lead_id_fkey REFERENCES crm.lead (id) ON DELETE CASCADE,
    account_id  bigint CONSTRAINT email_link_account_id_fkey REFERENCES crm.account (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT email_link_one_record CHECK (pg_catalog.num_nonnulls(contact_id, lead_id, account_id) OPERATOR(pg_catalog.=) 1)
);
COMMENT ON TABLE crm.email_link IS 'Which contact, lead or account a logged e-mail is about: made by crm.log_email() from the addresses; visible when its record is';
COMMENT ON COLUMN crm.email_link.id IS 'Identifier of the link';
COMMENT ON COLUMN crm.email_link.email_id IS 'The logged e-mail';
COMMENT ON COLUMN crm.email_link.contact_id IS 'The contact whose address is among the participants (or exactly one of lead_id, account_id)';
COMMENT ON COLUMN crm.email_link.lead_id IS 'The open lead whose address is among the participants; moves to the contact when the lead converts';
COMMENT ON COLUMN crm.email_link.account_id IS 'The primary account of a linked contact';
COMMENT ON COLUMN crm.email_link.created_at IS 'When the link was made';
CREATE UNIQUE INDEX email_link_contact_key ON crm.email_link (contact_id, email_id);
COMMENT ON INDEX crm.email_link_contact_key IS 'One link per e-mail and contact; a contact''s e-mails';
CREATE UNIQUE INDEX email_link_lead_key ON crm.email_link (lead_id, email_id);
COMMENT ON INDEX crm.email_link_lead_key IS 'One link per e-mail and lead; a lead''s e-mails';
CREATE UNIQUE INDEX email_link_account_key ON crm.email_link (account_id, email_id);
COMMENT ON INDEX crm.email_link_account_key IS 'One link per e-mail and account; an account''s e-mails';
CREATE INDEX email_link_email_id_idx ON crm.email_link (email_id);
COMMENT ON INDEX crm.email_link_email_id_idx IS 'The links of an e-mail: its visibility, and deleting it';

CREATE FUNCTION crm.email_link_account() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_email_link_account'
    LANGUAGE C;
COMMENT ON FUNCTION crm.email_link_account() IS 'AFTER row trigger on crm.email_link: a contact''s link brings a link to the contact''s primary account';
CREATE TRIGGER email_link_account AFTER INSERT OR UPDATE OF contact_id ON crm.email_link
    FOR EACH ROW EXECUTE FUNCTION crm.email_link_account();

CREATE FUNCTION crm.log_email(message_id text, direction text, from_address text, to_addresses text[],
                              cc_addresses text[] DEFAULT NULL, subject text DEFAULT NULL,
                              body_text text DEFAULT NULL, sent_at timestamptz DEFAULT pg_catalog.now(),
                              in_reply_to text DEFAULT NULL)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'crm_log_email'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.log_email(text, text, text, text[], text[], text, text, timestamptz, text) IS 'Logs an e-mail once per Message-ID (a repeat returns the first id, unchanged), links it to every contact and open lead with one of its addresses and to their accounts, threads it by in_reply_to; returns the e-mail id';

-- Row-level security: an e-mail is visible with a linked record (the EXISTS
-- over crm.email_link applies that table's policy, which applies the
-- record's), or to the team of the role that logged it.  No role writes
-- them directly; admins may delete an e-mail (its links go with it).
ALTER TABLE crm.email ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.email_link ENABLE ROW LEVEL SECURITY;
CREATE POLICY crm_admin_all ON crm.email TO crm_admin USING (true) WITH CHECK (true);
CREATE POLICY crm_admin_all ON crm.email_link TO crm_admin USING (true) WITH CHECK (true);
CREATE POLICY crm_linked_select ON crm.email FOR SELECT TO crm_manager, crm_sales
    USING (logged_by::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))
        OR EXISTS (SELECT 1 FROM crm.email_link AS k WHERE k.email_id OPERATOR(pg_catalog.=) email.id));
CREATE POLICY crm_parent_select ON crm.email_link FOR SELECT TO crm_manager, crm_sales
    USING (EXISTS (SELECT 1 FROM crm.contact AS p WHERE p.id OPERATOR(pg_catalog.=) contact_id)
        OR EXISTS (SELECT 1 FROM crm.lead AS p WHERE p.id OPERATOR(pg_catalog.=) lead_id)
        OR EXISTS (SELECT 1 FROM crm.account AS p WHERE p.id OPERATOR(pg_catalog.=) account_id));

-- One row per conversation, of the e-mails the reader sees.
CREATE VIEW crm.email_thread WITH (security_invoker = true) AS
SELECT t.thread_id, t.subject, t.first_sent_at, t.last_sent_at, t.messages,
       ARRAY(SELECT DISTINCT a.address
               FROM crm.email AS x CROSS JOIN LATERAL pg_catalog.unnest(x.participants) AS a (address)
              WHERE x.thread_id OPERATOR(pg_catalog.=) t.thread_id
              ORDER BY a.address) AS participants
  FROM (SELECT e.thread_id,
               (pg_catalog.array_agg(e.subject ORDER BY e.sent_at, e.id))[1] AS subject,
               pg_catalog.min(e.sent_at) AS first_sent_at,
               pg_catalog.max(e.sent_at) AS last_sent_at,
               pg_catalog.count(*) AS messages
          FROM crm.email AS e
         GROUP BY e.thread_id) AS t;
COMMENT ON VIEW crm.email_thread IS 'Conversations of the e-mail log, one row per thread, of the e-mails the reader sees: the first e-mail''s subject, first and last sending time, number of messages, every participant address';
COMMENT ON COLUMN crm.email_thread.thread_id IS 'The conversation (crm.email.thread_id)';
COMMENT ON COLUMN crm.email_thread.subject IS 'Subject of the earliest e-mail of the conversation the reader sees';
COMMENT ON COLUMN crm.email_thread.first_sent_at IS 'When the earliest e-mail was sent';
COMMENT ON COLUMN crm.email_thread.last_sent_at IS 'When the latest e-mail was sent';
COMMENT ON COLUMN crm.email_thread.messages IS 'Number of e-mails in the conversation the reader sees';
COMMENT ON COLUMN crm.email_thread.participants IS 'Every address that sent or received one of them, in lower case';

-- Who logs: the CRM users (their mail clients) and crm_intake (a mail
-- integration or BCC drop box, which reads nothing); analysts read no mail.
REVOKE ALL ON FUNCTION crm.log_email(text, text, text, text[], text[], text, text, timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.log_email(text, text, text, text[], text[], text, text, timestamptz, text)
    TO crm_admin, crm_manager, crm_sales, crm_intake;
GRANT SELECT ON crm.email, crm.email_link, crm.email_thread TO crm_admin, crm_manager, crm_sales;
GRANT DELETE ON crm.email TO crm_admin;
REVOKE ALL ON FUNCTION crm.email_link_account() FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm.email', '');
SELECT pg_catalog.pg_extension_config_dump('crm.email_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('crm.email_link', '');
SELECT pg_catalog.pg_extension_config_dump('crm.email_link_id_seq', '');

-- == custom fields: crm.custom_field, attributes, crm.custom_field_value (sql/install/98_custom_fields.sql, src/custom_fields.c) ==
CREATE TABLE crm.custom_field (
    object    text NOT NULL
              CONSTRAINT custom_field_object_check CHECK (object OPERATOR(pg_catalog.=) ANY (ARRAY['lead', 'account',
                  'contact', 'opportunity', 'quote', 'sales_order', 'activity', 'product', 'campaign'])),
    name      text NOT NULL
              CONSTRAINT custom_field_name_check CHECK (name OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]{0,62}$'),
    label     text NOT NULL
              CONSTRAINT custom_field_label_not_blank CHECK (pg_catalog.btrim(label) OPERATOR(pg_catalog.<>) ''),
    type      text NOT NULL
              CONSTRAINT custom_field_type_check CHECK (type OPERATOR(pg_catalog.=) ANY (ARRAY['text', 'number',
                  'date', 'boolean', 'pick'])),
    required  boolean NOT NULL DEFAULT false,
    options   text[],
    CONSTRAINT custom_field_options_check CHECK (
        (type OPERATOR(pg_catalog.=) 'pick') OPERATOR(pg_catalog.=) (options IS NOT NULL)
        AND (options IS NULL OR (pg_catalog.cardinality(options) OPERATOR(pg_catalog.>) 0
             AND pg_catalog.array_position(options, NULL) IS NULL))),
    PRIMARY KEY (object, name)
);
COMMENT ON TABLE crm.custom_field IS 'Custom fields defined by admins: the keys allowed in the attributes column of each object (lead, account, contact, opportunity, quote, sales_order, activity, product, campaign)';
COMMENT ON COLUMN crm.custom_field.object IS 'The object (table of schema crm) the field belongs to';
COMMENT ON COLUMN crm.custom_field.name IS 'Key of the field in attributes: lower-case letters, digits and _, starting with a letter';
COMMENT ON COLUMN crm.custom_field.label IS 'Name of the field shown to users';
COMMENT ON COLUMN crm.custom_field.type IS 'text (a JSON string of at most 2000 characters), number (a JSON number below 1e20 in absolute value, at most 10 decimal places), date (a JSON string YYYY-MM-DD), boolean (JSON true/false) or pick (a JSON string, one of options)';
COMMENT ON COLUMN crm.custom_field.required IS 'Every row of the object must have a value for the field (refused while some row has none)';
COMMENT ON COLUMN crm.custom_field.options IS 'The allowed values of a pick field (NULL for other types)';

CREATE FUNCTION crm.custom_fields_check() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_custom_fields_check'
    LANGUAGE C;
COMMENT ON FUNCTION crm.custom_fields_check() IS 'BEFORE INSERT OR UPDATE OF attributes trigger on the tables with custom fields: refuses unknown fields (ZC950), invalid values (ZC951) and missing required fields (ZC952)';
CREATE FUNCTION crm.custom_field_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_custom_field_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm.custom_field_guard() IS 'Triggers on crm.custom_field: lock the object''s table while its fields change; at commit, refuse a registry the rows do not satisfy (ZC951, ZC952, ZC953)';
CREATE TRIGGER custom_field_lock BEFORE INSERT OR UPDATE OR DELETE ON crm.custom_field
    FOR EACH ROW EXECUTE FUNCTION crm.custom_field_guard();
CREATE CONSTRAINT TRIGGER custom_field_in_use AFTER INSERT OR UPDATE OR DELETE ON crm.custom_field
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION crm.custom_field_guard();

DO $custom$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['lead', 'account', 'contact', 'opportunity', 'quote', 'sales_order',
                             'activity', 'product', 'campaign']
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE crm.%I ADD COLUMN attributes jsonb NOT NULL DEFAULT ''{}''', t);
        EXECUTE pg_catalog.format('COMMENT ON COLUMN crm.%I.attributes IS %L', t,
            'Custom field values: {"field": value}, the fields of crm.custom_field for object ' || t
            || ' (crm.custom_field_value lists them as rows)');
        EXECUTE pg_catalog.format('CREATE INDEX %I ON crm.%I USING gin (attributes jsonb_path_ops)',
            t || '_attributes_idx', t);
        EXECUTE pg_catalog.format('CREATE TRIGGER custom_fields_check BEFORE INSERT OR UPDATE OF attributes'
            ' ON crm.%I FOR EACH ROW EXECUTE FUNCTION crm.custom_fields_check()', t);
    END LOOP;
END
$custom$;

-- One row per value: BI tools chart custom fields without JSON functions.
CREATE VIEW crm.custom_field_value WITH (security_invoker = true) AS
SELECT v.object, v.record_id, v.field, f.label, f.type,
       CASE WHEN pg_catalog.jsonb_typeof(v.value) OPERATOR(pg_catalog.=) 'string'
            THEN v.value OPERATOR(pg_catalog.#>>) '{}'::text[] ELSE v.value::text END AS value_text,
       CASE WHEN f.type OPERATOR(pg_catalog.=) 'number' THEN v.value::numeric END AS value_number,
       CASE WHEN f.type OPERATOR(pg_catalog.=) 'date'
            THEN (v.value OPERATOR(pg_catalog.#>>) '{}'::text[])::date END AS value_date,
       CASE WHEN f.type OPERATOR(pg_catalog.=) 'boolean' THEN v.value::boolean END AS value_boolean
  FROM (SELECT 'lead'::text AS object, t.id AS record_id, e.key AS field, e.value
          FROM crm.lead AS t, pg_catalog.jsonb_each(t.attributes) AS e
         WHERE t.attributes OPERATOR(pg_catalog.<>) '{}'::jsonb
        UNION ALL
        SELECT 'account', t.id, e.key, e.value
          FROM crm.account AS t, pg_catalog.jsonb_each(t.attributes) AS e
         WHERE t.attributes OPERATOR(pg_catalog.<>) '{}'::jsonb
        UNION ALL
        SELECT 'contact', t.id, e.key, e.value
          FROM crm.contact AS t, pg_catalog.jsonb_each(t.attributes) AS e
         WHERE t.attributes OPERATOR(pg_catalog.<>) '{}'::jsonb
        UNION ALL
        SELECT 'opportunity', t.id, e.key, e.value
          FROM crm.opportunity AS t, pg_catalog.jsonb_each(t.attributes) AS e
         WHERE t.attributes OPERATOR(pg_catalog.<>) '{}'::jsonb
        UNION ALL
        SELECT 'quote', t.id, e.key, e.value
          FROM crm.quote AS t, pg_catalog.jsonb_each(t.attributes) AS e
         WHERE t.attributes OPERATOR(pg_catalog.<>) '{}'::jsonb
        UNION ALL
        SELECT 'sales_order', t.id, e.key, e.value
          FROM crm.sales_order AS t, pg_catalog.jsonb_each(t.attributes) AS e
         WHERE t.attributes OPERATOR(pg_catalog.<>) '{}'::jsonb
        UNION ALL
        SELECT 'activity', t.id, e.key, e.value
          FROM crm.activity AS t, pg_catalog.jsonb_each(t.attributes) AS e
         WHERE t.attributes OPERATOR(pg_catalog.<>) '{}'::jsonb
        UNION ALL
        SELECT 'product', t.id, e.key, e.value
          FROM crm.product AS t, pg_catalog.jsonb_each(t.attributes) AS e
         WHERE t.attributes OPERATOR(pg_catalog.<>) '{}'::jsonb
        UNION ALL
        SELECT 'campaign', t.id, e.key, e.value
          FROM crm.campaign AS t, pg_catalog.jsonb_each(t.attributes) AS e
         WHERE t.attributes OPERATOR(pg_catalog.<>) '{}'::jsonb) AS v
  JOIN crm.custom_field AS f
    ON f.object OPERATOR(pg_catalog.=) v.object AND f.name OPERATOR(pg_catalog.=) v.field;
COMMENT ON VIEW crm.custom_field_value IS 'Custom field values as rows, one per record and field, typed for BI tools (security_invoker: each role sees the values of the records it may read)';
COMMENT ON COLUMN crm.custom_field_value.object IS 'The object: lead, account, contact, opportunity, quote, sales_order, activity, product or campaign';
COMMENT ON COLUMN crm.custom_field_value.record_id IS 'Id of the record in the object''s table (crm.<object>.id)';
COMMENT ON COLUMN crm.custom_field_value.field IS 'Name of the custom field (crm.custom_field.name)';
COMMENT ON COLUMN crm.custom_field_value.label IS 'Label of the custom field';
COMMENT ON COLUMN crm.custom_field_value.type IS 'Type of the custom field: text, number, date, boolean or pick';
COMMENT ON COLUMN crm.custom_field_value.value_text IS 'The value as text (every type)';
COMMENT ON COLUMN crm.custom_field_value.value_number IS 'The value of a number field; NULL for other types';
COMMENT ON COLUMN crm.custom_field_value.value_date IS 'The value of a date field; NULL for other types';
COMMENT ON COLUMN crm.custom_field_value.value_boolean IS 'The value of a boolean field; NULL for other types';

-- Under row-level security a role's own "attributes @> ..." cannot use the
-- GIN index (jsonb containment is not LEAKPROOF): crm.find_by_attributes
-- finds the candidates through it as the owner, then keeps those the
-- caller sees (README "Custom fields").
CREATE FUNCTION crm.find_by_attributes(object text, filter jsonb) RETURNS SETOF bigint
    AS 'MODULE_PATHNAME', 'crm_find_by_attributes'
    LANGUAGE C STABLE ROWS 100
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.find_by_attributes(text, jsonb) IS 'Ids of the records of object (lead, account, contact, opportunity, quote, sales_order, activity, product, campaign) the caller may see whose attributes contain filter (attributes @> filter), in id order; index-backed also for roles under row-level security';
REVOKE ALL ON FUNCTION crm.find_by_attributes(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.find_by_attributes(text, jsonb) TO crm_admin, crm_manager, crm_sales, crm_analyst;

-- Everybody working with the data reads the registry; admins write it
-- (INSERT and UPDATE column by column, as 99_privileges.sql grants them).
-- Analysts read the values on every object.
GRANT SELECT ON crm.custom_field, crm.custom_field_value TO crm_admin, crm_manager, crm_sales, crm_analyst;
GRANT INSERT (object, name, label, type, required, options), UPDATE (object, name, label, type, required, options),
    DELETE ON crm.custom_field TO crm_admin;
GRANT SELECT (id, attributes) ON crm.lead, crm.account, crm.contact, crm.opportunity, crm.quote,
    crm.sales_order, crm.activity TO crm_analyst;
-- A role that may insert (update) every column a user may write of one of
-- the nine tables may write attributes too, as in a fresh install.
DO $custom_grants$
DECLARE
    g record;
BEGIN
    FOR g IN
        SELECT c.oid::pg_catalog.regclass AS rel, p.priv, pg_catalog.quote_ident(r.rolname) AS grantee
          FROM pg_catalog.pg_class AS c
         CROSS JOIN (VALUES ('INSERT'), ('UPDATE')) AS p (priv)
         CROSS JOIN pg_catalog.pg_roles AS r
         WHERE c.relnamespace OPERATOR(pg_catalog.=) 'crm'::pg_catalog.regnamespace
           AND c.relname OPERATOR(pg_catalog.=) ANY (ARRAY['lead', 'account', 'contact', 'opportunity', 'quote',
                                                         'sales_order', 'activity', 'product', 'campaign'])
           AND r.oid OPERATOR(pg_catalog.<>) c.relowner
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute AS att
                            WHERE att.attrelid OPERATOR(pg_catalog.=) c.oid
                              AND att.attnum OPERATOR(pg_catalog.>) 0 AND NOT att.attisdropped
                              AND att.attidentity OPERATOR(pg_catalog.=) '' AND att.attgenerated OPERATOR(pg_catalog.=) ''
                              AND att.attname OPERATOR(pg_catalog.<>) ALL (ARRAY['search_text', 'attributes'])
                              AND NOT EXISTS (SELECT 1 FROM pg_catalog.aclexplode(att.attacl) AS a
                                               WHERE a.grantee OPERATOR(pg_catalog.=) r.oid
                                                 AND a.privilege_type OPERATOR(pg_catalog.=) p.priv))
         ORDER BY 1, 2, 3
    LOOP
        EXECUTE pg_catalog.format('GRANT %s (attributes) ON %s TO %s', g.priv, g.rel, g.grantee);
    END LOOP;
END
$custom_grants$;
REVOKE ALL ON FUNCTION crm.custom_fields_check(), crm.custom_field_guard() FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm.custom_field', '');

-- == att2: red team on custom fields, recurrence, quotes, contact roles ==
-- A new activity is about a record the caller sees (95_row_security.sql).
DO $att2_activity$
DECLARE
    team constant text := 'owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))';
    write_check constant text := team || ' AND crm.may_reference_account(account_id)'
        || ' AND crm.may_reference_contact(contact_id)'
        || ' AND (lead_id IS NULL OR EXISTS (SELECT 1 FROM crm.lead AS p WHERE p.id OPERATOR(pg_catalog.=) lead_id))'
        || ' AND (opportunity_id IS NULL OR EXISTS (SELECT 1 FROM crm.opportunity AS p'
        || ' WHERE p.id OPERATOR(pg_catalog.=) opportunity_id))';
BEGIN
    -- (on UPDATE crm.activity_lifecycle() checks a link that changes)
    DROP POLICY crm_team_insert ON crm.activity;
    EXECUTE pg_catalog.format('CREATE POLICY crm_team_insert ON crm.activity FOR INSERT TO crm_manager, crm_sales WITH CHECK (%s)', write_check);
END
$att2_activity$;

-- == currency: currencies, exchange rates, the currency of deals, quotes and orders (issue 20 §1; sql/install/72_currencies.sql) ==
CREATE TABLE crm.currency (
    code      text PRIMARY KEY
              CONSTRAINT currency_code_iso CHECK (code OPERATOR(pg_catalog.~) '^[A-Z]{3}$'),
    name      text NOT NULL
              CONSTRAINT currency_name_not_blank CHECK (pg_catalog.btrim(name) OPERATOR(pg_catalog.<>) ''),
    decimals  smallint NOT NULL DEFAULT 2
              CONSTRAINT currency_decimals_range CHECK (decimals BETWEEN 0 AND 4)
);
COMMENT ON TABLE crm.currency IS 'Currencies (ISO 4217) that price books, opportunities, quotes and orders may use; maintained by admins';
COMMENT ON COLUMN crm.currency.code IS 'ISO 4217 code, three capital letters, e.g. EUR';
COMMENT ON COLUMN crm.currency.name IS 'Name of the currency, e.g. Euro';
COMMENT ON COLUMN crm.currency.decimals IS 'Minor unit digits (2 for EUR, 0 for JPY), 0-4';
INSERT INTO crm.currency (code, name, decimals) VALUES
    ('USD', 'US Dollar', 2), ('EUR', 'Euro', 2), ('GBP', 'Pound Sterling', 2),
    ('JPY', 'Yen', 0), ('CHF', 'Swiss Franc', 2), ('CAD', 'Canadian Dollar', 2),
    ('AUD', 'Australian Dollar', 2), ('NZD', 'New Zealand Dollar', 2), ('CNY', 'Yuan Renminbi', 2),
    ('HKD', 'Hong Kong Dollar', 2), ('SGD', 'Singapore Dollar', 2), ('INR', 'Indian Rupee', 2),
    ('KRW', 'Won', 0), ('SEK', 'Swedish Krona', 2), ('NOK', 'Norwegian Krone', 2),
    ('DKK', 'Danish Krone', 2), ('PLN', 'Zloty', 2), ('CZK', 'Czech Koruna', 2),
    ('BRL', 'Brazilian Real', 2), ('MXN', 'Mexican Peso', 2), ('ZAR', 'Rand', 2);

-- The corporate currency: what reports convert to and rates are quoted in.
-- Currencies of existing price books that the seed lacks become known.
INSERT INTO crm.currency (code, name)
SELECT DISTINCT b.currency, b.currency FROM crm.price_book AS b
 WHERE NOT EXISTS (SELECT FROM crm.currency AS c WHERE c.code OPERATOR(pg_catalog.=) b.currency);
ALTER TABLE crm.settings ADD COLUMN corporate_currency text NOT NULL DEFAULT 'USD'
    CONSTRAINT settings_corporate_currency_fkey REFERENCES crm.currency (code);
CREATE INDEX settings_corporate_currency_idx ON crm.settings (corporate_currency);
COMMENT ON INDEX crm.settings_corporate_currency_idx IS 'Backs the foreign key to crm.currency (one row: for form''s sake)';
COMMENT ON COLUMN crm.settings.corporate_currency IS 'Currency reports are given in and exchange rates are quoted in (units of it per unit of another currency); fixed while exchange rates exist';

CREATE FUNCTION crm.corporate_currency() RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT s.corporate_currency FROM crm.settings AS s $$;
COMMENT ON FUNCTION crm.corporate_currency() IS 'The corporate currency (crm.settings.corporate_currency): the default currency of opportunities and quotes without a price book';

CREATE TABLE crm.exchange_rate (
    currency    text NOT NULL CONSTRAINT exchange_rate_currency_fkey REFERENCES crm.currency (code),
    valid_from  date NOT NULL
                CONSTRAINT exchange_rate_valid_from_month
                CHECK (pg_catalog.isfinite(valid_from)
                       AND valid_from OPERATOR(pg_catalog.=) pg_catalog.date_trunc('month', valid_from)::date),
    rate        numeric NOT NULL
                CONSTRAINT exchange_rate_rate_positive CHECK (rate OPERATOR(pg_catalog.>) 0
                     AND rate OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric
                     AND rate OPERATOR(pg_catalog.<>) 'Infinity'::pg_catalog.numeric),
    PRIMARY KEY (currency, valid_from)
);
COMMENT ON TABLE crm.exchange_rate IS 'Exchange rates: units of the corporate currency per unit of a currency, valid from the first day of a month until the next rate of the currency; maintained by admins. Reports convert each deal at the rate valid on its close date (the latest rate without a close date)';
COMMENT ON COLUMN crm.exchange_rate.currency IS 'The currency converted (never the corporate currency, whose rate is 1)';
COMMENT ON COLUMN crm.exchange_rate.valid_from IS 'First day of the month from which the rate applies';
COMMENT ON COLUMN crm.exchange_rate.rate IS 'Units of the corporate currency per unit of the currency, > 0';

-- Rates are quoted in the corporate currency: no rate for it (ZC122), and it
-- stays fixed while rates exist (ZC121).  A rate write takes FOR SHARE on the
-- settings row, a change of the corporate currency FOR NO KEY UPDATE (before
-- its trigger runs), so each waits for the other to commit and then sees it.
CREATE FUNCTION crm.exchange_rate_guard() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    corporate text;
BEGIN
    IF TG_TABLE_SCHEMA OPERATOR(pg_catalog.<>) 'crm' OR TG_LEVEL OPERATOR(pg_catalog.<>) 'ROW' OR TG_WHEN OPERATOR(pg_catalog.<>) 'BEFORE' THEN
        RAISE EXCEPTION 'trigger % fired the wrong way for crm.%()', TG_NAME, 'exchange_rate_guard' USING ERRCODE = '39P01';
    END IF;
    SELECT s.corporate_currency INTO corporate FROM crm.settings AS s FOR SHARE;
    IF NEW.currency OPERATOR(pg_catalog.=) corporate THEN
        RAISE EXCEPTION 'no exchange rate for the corporate currency %', corporate
            USING ERRCODE = 'ZC122', HINT = 'Its rate is always 1.';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION crm.exchange_rate_guard() IS 'BEFORE trigger on crm.exchange_rate: refuses a rate for the corporate currency (ZC122)';
CREATE TRIGGER exchange_rate_guard BEFORE INSERT OR UPDATE ON crm.exchange_rate
    FOR EACH ROW EXECUTE FUNCTION crm.exchange_rate_guard();

CREATE FUNCTION crm.settings_currency_guard() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF TG_TABLE_SCHEMA OPERATOR(pg_catalog.<>) 'crm' OR TG_LEVEL OPERATOR(pg_catalog.<>) 'ROW' OR TG_WHEN OPERATOR(pg_catalog.<>) 'BEFORE' THEN
        RAISE EXCEPTION 'trigger % fired the wrong way for crm.%()', TG_NAME, 'settings_currency_guard' USING ERRCODE = '39P01';
    END IF;
    IF NEW.corporate_currency OPERATOR(pg_catalog.<>) OLD.corporate_currency
       AND EXISTS (SELECT FROM crm.exchange_rate) THEN
        RAISE EXCEPTION 'the corporate currency cannot change while exchange rates exist'
            USING ERRCODE = 'ZC121',
                  DETAIL = pg_catalog.format('The rates are in units of %s.', OLD.corporate_currency),
                  HINT = 'Delete the exchange rates, change the corporate currency, then enter the rates in the new one.';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION crm.settings_currency_guard() IS 'BEFORE trigger on crm.settings: the corporate currency stays fixed while exchange rates exist (ZC121)';
CREATE TRIGGER settings_currency_guard BEFORE UPDATE OF corporate_currency ON crm.settings
    FOR EACH ROW EXECUTE FUNCTION crm.settings_currency_guard();

-- The rate valid on a day: 1 for the corporate currency, else the rate with
-- the latest valid_from not after the day (NULL day: the latest rate).  No
-- such rate is an error naming the currency and the day (ZC120), never 1.
CREATE FUNCTION crm.exchange_rate_on(currency text, day date) RETURNS numeric
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    found numeric;
BEGIN
    IF currency IS NULL THEN
        RAISE EXCEPTION 'currency must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF currency OPERATOR(pg_catalog.=) (SELECT s.corporate_currency FROM crm.settings AS s) THEN
        RETURN 1;
    END IF;
    SELECT r.rate INTO found FROM crm.exchange_rate AS r
     WHERE r.currency OPERATOR(pg_catalog.=) exchange_rate_on.currency
       AND r.valid_from OPERATOR(pg_catalog.<=) COALESCE(day, 'infinity'::date)
     ORDER BY r.valid_from DESC LIMIT 1;
    IF found IS NULL THEN
        RAISE EXCEPTION 'no exchange rate for % on %', currency, COALESCE(day::text, 'any day')
            USING ERRCODE = 'ZC120',
                  HINT = pg_catalog.format('Add a row to crm.exchange_rate for %s valid from the first of that month or earlier.', currency);
    END IF;
    RETURN found;
END
$$;
COMMENT ON FUNCTION crm.exchange_rate_on(text, date) IS 'Units of the corporate currency per unit of currency on day (NULL: the latest rate); 1 for the corporate currency; ZC120 when no rate is valid then';

-- Price books name a known currency; (id, currency) is referenced by the
-- opportunities and quotes priced from the book.
ALTER TABLE crm.price_book ADD CONSTRAINT price_book_currency_fkey
    FOREIGN KEY (currency) REFERENCES crm.currency (code);
ALTER TABLE crm.price_book ADD CONSTRAINT price_book_id_currency_key UNIQUE (id, currency);
CREATE INDEX price_book_currency_idx ON crm.price_book (currency);
COMMENT ON INDEX crm.price_book_currency_idx IS 'Price books by currency: deleting a currency checks its books without reading every book';

ALTER TABLE crm.opportunity ADD COLUMN currency text NOT NULL DEFAULT crm.corporate_currency()
    CONSTRAINT opportunity_currency_fkey REFERENCES crm.currency (code);
-- Existing deals get the corporate currency (the column default), those
-- with a price book the book's.
UPDATE crm.opportunity AS o SET currency = b.currency
  FROM crm.price_book AS b
 WHERE b.id OPERATOR(pg_catalog.=) o.price_book_id AND o.currency OPERATOR(pg_catalog.<>) b.currency;
ALTER TABLE crm.opportunity ADD CONSTRAINT opportunity_price_book_currency_fkey
    FOREIGN KEY (price_book_id, currency) REFERENCES crm.price_book (id, currency) ON UPDATE CASCADE;
COMMENT ON COLUMN crm.opportunity.currency IS 'Currency of the amount: the price book''s when the deal has one, else as given (default: the corporate currency)';
CREATE INDEX opportunity_currency_idx ON crm.opportunity (currency);
COMMENT ON INDEX crm.opportunity_currency_idx IS 'Deals by currency: deleting a currency checks its deals without reading every deal';
CREATE INDEX opportunity_price_book_currency_idx ON crm.opportunity (price_book_id, currency) WHERE price_book_id IS NOT NULL;
COMMENT ON INDEX crm.opportunity_price_book_currency_idx IS 'Backs the (price book, currency) foreign key: a book that changes currency finds its deals by an index probe';

ALTER TABLE crm.quote ADD COLUMN currency text NOT NULL DEFAULT crm.corporate_currency()
    CONSTRAINT quote_currency_fkey REFERENCES crm.currency (code);
-- Existing quotes likewise (quote_guard would refuse the change of a quote
-- that is not Draft: this is the database's own correction).
ALTER TABLE crm.quote DISABLE TRIGGER quote_guard;
UPDATE crm.quote AS q SET currency = b.currency
  FROM crm.price_book AS b
 WHERE b.id OPERATOR(pg_catalog.=) q.price_book_id AND q.currency OPERATOR(pg_catalog.<>) b.currency;
ALTER TABLE crm.quote ENABLE TRIGGER quote_guard;
ALTER TABLE crm.quote ADD CONSTRAINT quote_price_book_currency_fkey
    FOREIGN KEY (price_book_id, currency) REFERENCES crm.price_book (id, currency) ON UPDATE CASCADE;
COMMENT ON COLUMN crm.quote.currency IS 'Currency of the prices and totals: the price book''s when the quote has one, else as given (default: the corporate currency)';
CREATE INDEX quote_currency_idx ON crm.quote (currency);
COMMENT ON INDEX crm.quote_currency_idx IS 'Quotes by currency: deleting a currency checks its quotes without reading every quote';
CREATE INDEX quote_price_book_currency_idx ON crm.quote (price_book_id, currency) WHERE price_book_id IS NOT NULL;
COMMENT ON INDEX crm.quote_price_book_currency_idx IS 'Backs the (price book, currency) foreign key: a book that changes currency finds its quotes by an index probe';

ALTER TABLE crm.sales_order ADD COLUMN currency text NOT NULL DEFAULT crm.corporate_currency()
    CONSTRAINT sales_order_currency_fkey REFERENCES crm.currency (code);
COMMENT ON COLUMN crm.sales_order.currency IS 'Currency of the amounts: the quote''s, copied when the order is made; never changes';
-- Existing orders take their quote's currency (the order guard keeps an
-- order's copy fixed: bypassed for this correction).
ALTER TABLE crm.sales_order DISABLE TRIGGER sales_order_guard;
UPDATE crm.sales_order AS so SET currency = q.currency
  FROM crm.quote AS q
 WHERE q.id OPERATOR(pg_catalog.=) so.quote_id AND so.currency OPERATOR(pg_catalog.<>) q.currency;
ALTER TABLE crm.sales_order ENABLE TRIGGER sales_order_guard;
CREATE INDEX sales_order_currency_idx ON crm.sales_order (currency);
COMMENT ON INDEX crm.sales_order_currency_idx IS 'Orders by currency: deleting a currency checks its orders without reading every order';

-- An opportunity or quote with a price book has the book's currency,
-- whatever the client sends.  Runs with the writer's rights: every CRM role
-- reads price books.
CREATE FUNCTION crm.currency_from_price_book() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF TG_TABLE_SCHEMA OPERATOR(pg_catalog.<>) 'crm' OR TG_LEVEL OPERATOR(pg_catalog.<>) 'ROW' OR TG_WHEN OPERATOR(pg_catalog.<>) 'BEFORE' THEN
        RAISE EXCEPTION 'trigger % fired the wrong way for crm.%()', TG_NAME, 'currency_from_price_book' USING ERRCODE = '39P01';
    END IF;
    IF NEW.price_book_id IS NOT NULL THEN
        SELECT b.currency INTO NEW.currency FROM crm.price_book AS b
         WHERE b.id OPERATOR(pg_catalog.=) NEW.price_book_id;
        -- an unknown book: the foreign key reports it
        IF NEW.currency IS NULL THEN
            NEW.currency := crm.corporate_currency();
        END IF;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION crm.currency_from_price_book() IS 'BEFORE trigger on crm.opportunity and crm.quote: a row with a price book takes the book''s currency';
CREATE TRIGGER currency_from_price_book BEFORE INSERT OR UPDATE OF price_book_id, currency ON crm.opportunity
    FOR EACH ROW EXECUTE FUNCTION crm.currency_from_price_book();
CREATE TRIGGER currency_from_price_book BEFORE INSERT OR UPDATE OF price_book_id, currency ON crm.quote
    FOR EACH ROW EXECUTE FUNCTION crm.currency_from_price_book();

-- An order has its quote's currency, fixed (ZC022 on a change).  The order's
-- quote never changes (orders.c), so reading it on insert is enough.
CREATE FUNCTION crm.sales_order_currency() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF TG_TABLE_SCHEMA OPERATOR(pg_catalog.<>) 'crm' OR TG_LEVEL OPERATOR(pg_catalog.<>) 'ROW' OR TG_WHEN OPERATOR(pg_catalog.<>) 'BEFORE' THEN
        RAISE EXCEPTION 'trigger % fired the wrong way for crm.%()', TG_NAME, 'sales_order_currency' USING ERRCODE = '39P01';
    END IF;
    IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
        SELECT q.currency INTO NEW.currency FROM crm.quote AS q WHERE q.id OPERATOR(pg_catalog.=) NEW.quote_id;
        IF NEW.currency IS NULL THEN
            NEW.currency := crm.corporate_currency();
        END IF;
    ELSIF NEW.currency OPERATOR(pg_catalog.<>) OLD.currency THEN
        RAISE EXCEPTION 'the currency of order % cannot change', OLD.order_number
            USING ERRCODE = 'ZC022', DETAIL = pg_catalog.format('It is %s, the currency of its quote.', OLD.currency);
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION crm.sales_order_currency() IS 'BEFORE trigger on crm.sales_order: an order takes its quote''s currency and keeps it (ZC022)';
CREATE TRIGGER sales_order_currency BEFORE INSERT OR UPDATE OF currency ON crm.sales_order
    FOR EACH ROW EXECUTE FUNCTION crm.sales_order_currency();

-- A book's currency cannot change while line items or orders use it
-- (ZC121): their prices are in it.  The book row is locked by the UPDATE
-- (currency is part of a key, so FOR UPDATE: a writer adopting the book
-- waits on its foreign key check); the trigger then locks the book's
-- opportunities and quotes, so a line being added to one is committed (and
-- seen by the checks, each a new snapshot under READ COMMITTED) or waits.
CREATE FUNCTION crm.price_book_currency_guard() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    used text;
BEGIN
    IF TG_TABLE_SCHEMA OPERATOR(pg_catalog.<>) 'crm' OR TG_LEVEL OPERATOR(pg_catalog.<>) 'ROW' OR TG_WHEN OPERATOR(pg_catalog.<>) 'BEFORE' THEN
        RAISE EXCEPTION 'trigger % fired the wrong way for crm.%()', TG_NAME, 'price_book_currency_guard' USING ERRCODE = '39P01';
    END IF;
    IF NEW.currency OPERATOR(pg_catalog.=) OLD.currency THEN
        RETURN NEW;
    END IF;
    PERFORM FROM crm.opportunity AS o WHERE o.price_book_id OPERATOR(pg_catalog.=) OLD.id
      ORDER BY o.id FOR NO KEY UPDATE OF o;
    PERFORM FROM crm.quote AS q WHERE q.price_book_id OPERATOR(pg_catalog.=) OLD.id
      ORDER BY q.id FOR NO KEY UPDATE OF q;
    SELECT CASE
             WHEN EXISTS (SELECT FROM crm.opportunity_line_item AS l
                            JOIN crm.opportunity AS o ON o.id OPERATOR(pg_catalog.=) l.opportunity_id
                           WHERE o.price_book_id OPERATOR(pg_catalog.=) OLD.id) THEN 'opportunity line items'
             WHEN EXISTS (SELECT FROM crm.quote_line_item AS l
                            JOIN crm.quote AS q ON q.id OPERATOR(pg_catalog.=) l.quote_id
                           WHERE q.price_book_id OPERATOR(pg_catalog.=) OLD.id) THEN 'quote line items'
             WHEN EXISTS (SELECT FROM crm.sales_order AS so
                            JOIN crm.quote AS q ON q.id OPERATOR(pg_catalog.=) so.quote_id
                           WHERE q.price_book_id OPERATOR(pg_catalog.=) OLD.id) THEN 'sales orders'
           END INTO used;
    IF used IS NOT NULL THEN
        RAISE EXCEPTION 'the currency of price book "%" cannot change while % use it', OLD.name, used
            USING ERRCODE = 'ZC121',
                  DETAIL = pg_catalog.format('Their prices are in %s.', OLD.currency),
                  HINT = 'Create a price book in the new currency.';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION crm.price_book_currency_guard() IS 'BEFORE trigger on crm.price_book: a book''s currency is fixed while line items or orders use it (ZC121)';
CREATE TRIGGER price_book_currency_guard BEFORE UPDATE OF currency ON crm.price_book
    FOR EACH ROW EXECUTE FUNCTION crm.price_book_currency_guard();

-- Everybody working with the data reads currencies and rates and converts;
-- admins maintain them (settings.corporate_currency: admins, as all settings).
GRANT SELECT ON crm.currency, crm.exchange_rate TO crm_admin, crm_manager, crm_sales, crm_analyst;
GRANT INSERT, UPDATE, DELETE ON crm.currency, crm.exchange_rate TO crm_admin;
REVOKE ALL ON FUNCTION crm.corporate_currency() FROM PUBLIC;
REVOKE ALL ON FUNCTION crm.exchange_rate_on(text, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.corporate_currency(), crm.exchange_rate_on(text, date)
    TO crm_admin, crm_manager, crm_sales, crm_analyst;
REVOKE ALL ON FUNCTION crm.exchange_rate_guard(), crm.settings_currency_guard(), crm.currency_from_price_book(),
    crm.sales_order_currency(), crm.price_book_currency_guard() FROM PUBLIC;

-- Analysts read the deals' currency (the reports and verify_aggregates() do).
GRANT SELECT (currency) ON crm.opportunity TO crm_analyst;
-- As in a fresh install (99_privileges.sql), INSERT and UPDATE are granted
-- column by column: whoever may write every other column of a deal, quote or
-- order may write its currency; the new tables get column grants too.
DO $currency_grants$
DECLARE
    g record;
    cols text;
BEGIN
    FOR g IN
        SELECT c.oid::pg_catalog.regclass AS rel, p.priv, pg_catalog.quote_ident(r.rolname) AS grantee
          FROM pg_catalog.pg_class AS c
         CROSS JOIN (VALUES ('INSERT'), ('UPDATE')) AS p (priv)
         CROSS JOIN pg_catalog.pg_roles AS r
         WHERE c.relnamespace OPERATOR(pg_catalog.=) 'crm'::pg_catalog.regnamespace
           AND c.relname OPERATOR(pg_catalog.=) ANY (ARRAY['opportunity', 'quote', 'sales_order'])
           AND r.oid OPERATOR(pg_catalog.<>) c.relowner
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute AS att
                            WHERE att.attrelid OPERATOR(pg_catalog.=) c.oid
                              AND att.attnum OPERATOR(pg_catalog.>) 0 AND NOT att.attisdropped
                              AND att.attidentity OPERATOR(pg_catalog.=) '' AND att.attgenerated OPERATOR(pg_catalog.=) ''
                              AND att.attname OPERATOR(pg_catalog.<>) ALL (ARRAY['search_text', 'currency'])
                              AND NOT EXISTS (SELECT 1 FROM pg_catalog.aclexplode(att.attacl) AS a
                                               WHERE a.grantee OPERATOR(pg_catalog.=) r.oid
                                                 AND a.privilege_type OPERATOR(pg_catalog.=) p.priv))
         ORDER BY 1, 2, 3
    LOOP
        EXECUTE pg_catalog.format('GRANT %s (currency) ON %s TO %s', g.priv, g.rel, g.grantee);
    END LOOP;
    FOR g IN
        SELECT c.oid::pg_catalog.regclass AS rel, a.privilege_type AS priv, pg_catalog.quote_ident(r.rolname) AS grantee
          FROM pg_catalog.pg_class AS c
         CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) AS a
          JOIN pg_catalog.pg_roles AS r ON r.oid OPERATOR(pg_catalog.=) a.grantee
         WHERE c.oid OPERATOR(pg_catalog.=) ANY (ARRAY['crm.currency'::pg_catalog.regclass, 'crm.exchange_rate'::pg_catalog.regclass])
           AND a.privilege_type OPERATOR(pg_catalog.=) ANY (ARRAY['INSERT', 'UPDATE'])
           AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
         ORDER BY 1, 2, 3
    LOOP
        SELECT pg_catalog.string_agg(pg_catalog.quote_ident(att.attname), ', ' ORDER BY att.attnum)
          INTO cols
          FROM pg_catalog.pg_attribute AS att
         WHERE att.attrelid OPERATOR(pg_catalog.=) g.rel AND att.attnum OPERATOR(pg_catalog.>) 0 AND NOT att.attisdropped;
        EXECUTE pg_catalog.format('REVOKE %s ON %s FROM %s', g.priv, g.rel, g.grantee);
        EXECUTE pg_catalog.format('GRANT %s (%s) ON %s TO %s', g.priv, cols, g.rel, g.grantee);
    END LOOP;
END
$currency_grants$;
GRANT UPDATE (corporate_currency) ON crm.settings TO crm_admin;
SELECT pg_catalog.pg_extension_config_dump('crm.currency', '');
SELECT pg_catalog.pg_extension_config_dump('crm.exchange_rate', '');

-- == currency 2: the pipeline aggregate grouped by currency, reports in the corporate currency (88_aggregates.sql, 90_reports.sql) ==
-- The views and verify_aggregates() over the pipeline aggregate go, the
-- aggregate gains its currency key, then the views are made again as in a
-- fresh install.
DROP FUNCTION crm.verify_aggregates();
DROP VIEW crm.aggregates_compared;
DROP VIEW crm.pipeline_actual;
DROP VIEW crm.forecast_by_month;
DROP VIEW crm.pipeline_by_stage;
DROP VIEW crm.pipeline_totals;
-- Every kept row was of deals in the corporate currency as far as the
-- aggregate knew; the contributions of deals in other currencies (priced
-- from a book in another currency) move to their currency's group, in
-- stripe 0.  Writers of deals wait meanwhile.
LOCK TABLE crm.opportunity IN SHARE MODE;
ALTER TABLE crm.pipeline_aggregate ADD COLUMN currency text;
UPDATE crm.pipeline_aggregate SET currency = crm.corporate_currency();
ALTER TABLE crm.pipeline_aggregate ALTER COLUMN currency SET NOT NULL;
ALTER TABLE crm.pipeline_aggregate DROP CONSTRAINT pipeline_aggregate_pkey,
    ADD PRIMARY KEY (owner, close_month, stripe, stage, currency);
DO $pipeline_currency$
DECLARE
    d record;
BEGIN
    SELECT * INTO d FROM crm.aggregate_definitions() AS a WHERE a.aggregate OPERATOR(pg_catalog.=) 'pipeline';
    EXECUTE pg_catalog.format(
        'INSERT INTO crm.pipeline_aggregate AS t (stage, owner, close_month, currency, stripe, opportunities, amount, weighted_amount)'
        ' SELECT a.stage, a.owner, a.close_month, c.currency, 0, c.sign OPERATOR(pg_catalog.*) a.opportunities,'
        '        c.sign OPERATOR(pg_catalog.*) a.amount, c.sign OPERATOR(pg_catalog.*) a.weighted_amount'
        '   FROM (%s) AS a'
        '  CROSS JOIN LATERAL (VALUES (a.currency, 1), (crm.corporate_currency(), -1)) AS c (currency, sign)'
        '  WHERE a.currency OPERATOR(pg_catalog.<>) crm.corporate_currency()'
        ' ON CONFLICT (owner, close_month, stripe, stage, currency) DO UPDATE'
        ' SET opportunities = t.opportunities OPERATOR(pg_catalog.+) EXCLUDED.opportunities,'
        '     amount = t.amount OPERATOR(pg_catalog.+) EXCLUDED.amount,'
        '     weighted_amount = t.weighted_amount OPERATOR(pg_catalog.+) EXCLUDED.weighted_amount',
        d.actual_query);
END
$pipeline_currency$;
COMMENT ON TABLE crm.pipeline_aggregate IS 'Pipeline totals per stage, owner, close month and currency, one row per writing backend (stripe); sum over stripes to read; written only by the aggregates_ triggers';
COMMENT ON COLUMN crm.pipeline_aggregate.currency IS 'Currency of the amounts (the opportunities'' currency); reports convert per group at read time';

-- What the pipeline aggregate must equal: the GROUP BY over the opportunities.
DO $actual$
BEGIN
    EXECUTE (SELECT pg_catalog.format('CREATE OR REPLACE VIEW crm.pipeline_actual WITH (security_invoker = true) AS %s', d.actual_query)
               FROM crm.aggregate_definitions() AS d WHERE d.aggregate OPERATOR(pg_catalog.=) 'pipeline');
END
$actual$;
COMMENT ON VIEW crm.pipeline_actual IS 'The pipeline totals (per stage, owner, close month and currency) computed from the opportunities (a full GROUP BY): what crm.pipeline_aggregate must add up to';
COMMENT ON COLUMN crm.pipeline_actual.stage IS 'Opportunity stage';
COMMENT ON COLUMN crm.pipeline_actual.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm.pipeline_actual.close_month IS 'First day of the close month; infinity without a close date';
COMMENT ON COLUMN crm.pipeline_actual.currency IS 'Currency of the amounts';
COMMENT ON COLUMN crm.pipeline_actual.opportunities IS 'Number of opportunities';
COMMENT ON COLUMN crm.pipeline_actual.amount IS 'Sum of amounts';
COMMENT ON COLUMN crm.pipeline_actual.weighted_amount IS 'Sum of round(amount x probability / 100, 2)';

CREATE VIEW crm.pipeline_totals WITH (security_invoker = true) AS
    SELECT a.stage, a.owner, a.close_month, a.currency,
           pg_catalog.sum(a.opportunities) AS opportunities, pg_catalog.sum(a.amount) AS amount,
           pg_catalog.sum(a.weighted_amount) AS weighted_amount
      FROM crm.pipeline_aggregate AS a
     GROUP BY 1, 2, 3, 4
    HAVING pg_catalog.sum(a.opportunities) OPERATOR(pg_catalog.<>) 0;
COMMENT ON VIEW crm.pipeline_totals IS 'Pipeline totals per stage, owner, close month and currency (amounts in that currency), read from the maintained aggregate (stripes summed)';
COMMENT ON COLUMN crm.pipeline_totals.stage IS 'Opportunity stage';
COMMENT ON COLUMN crm.pipeline_totals.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm.pipeline_totals.close_month IS 'First day of the close month; infinity without a close date';
COMMENT ON COLUMN crm.pipeline_totals.currency IS 'Currency of the amounts';
COMMENT ON COLUMN crm.pipeline_totals.opportunities IS 'Number of opportunities';
COMMENT ON COLUMN crm.pipeline_totals.amount IS 'Sum of amounts';
COMMENT ON COLUMN crm.pipeline_totals.weighted_amount IS 'Sum of round(amount x probability / 100, 2)';

-- Every kept group (stripes summed) next to the same group computed from the
-- base tables; verify and rebuild are written from it.  An aggregate's
-- measures are, in order, its items (a count), amount and weighted amount.
DO $compared$
DECLARE
    kept text;
    actual text;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.format(
               'SELECT %L::text AS aggregate, pg_catalog.jsonb_build_object(%s) AS group_key, %s'
               ' FROM crm.%I AS g GROUP BY %s',
               d.aggregate, x.group_key, x.kept, d.aggregate_table, x.group_columns), ' UNION ALL ' ORDER BY d.ordinality),
           pg_catalog.string_agg(pg_catalog.format(
               'SELECT %L::text AS aggregate, pg_catalog.jsonb_build_object(%s) AS group_key, %s FROM (%s) AS g',
               d.aggregate, x.group_key, x.actual, d.actual_query), ' UNION ALL ' ORDER BY d.ordinality)
      INTO kept, actual
      FROM crm.aggregate_definitions() WITH ORDINALITY AS d
     CROSS JOIN LATERAL (
           SELECT (SELECT pg_catalog.string_agg(pg_catalog.format('%L, g.%I', c, c), ', ' ORDER BY c.i)
                     FROM pg_catalog.unnest(d.group_columns) WITH ORDINALITY AS c (c, i)) AS group_key,
                  (SELECT pg_catalog.string_agg(pg_catalog.format('g.%I', c), ', ' ORDER BY c.i)
                     FROM pg_catalog.unnest(d.group_columns) WITH ORDINALITY AS c (c, i)) AS group_columns,
                  (SELECT pg_catalog.string_agg(CASE WHEN d.measures[m.i] IS NULL THEN 'NULL::numeric'
                                                     ELSE pg_catalog.format('pg_catalog.sum(g.%I)::numeric', d.measures[m.i])
                                                END || ' AS ' || m.name, ', ' ORDER BY m.i)
                     FROM pg_catalog.unnest(ARRAY['items', 'amount', 'weighted_amount']) WITH ORDINALITY AS m (name, i)) AS kept,
                  (SELECT pg_catalog.string_agg(CASE WHEN d.measures[m.i] IS NULL THEN 'NULL::numeric'
                                                     ELSE pg_catalog.format('g.%I::numeric', d.measures[m.i])
                                                END || ' AS ' || m.name, ', ' ORDER BY m.i)
                     FROM pg_catalog.unnest(ARRAY['items', 'amount', 'weighted_amount']) WITH ORDINALITY AS m (name, i)) AS actual
           ) AS x;
    EXECUTE pg_catalog.format(
        'CREATE OR REPLACE VIEW crm.aggregates_compared WITH (security_invoker = true) AS'
        ' WITH kept AS (%s), actual AS (%s)'
        ' SELECT COALESCE(k.aggregate, a.aggregate) AS aggregate, COALESCE(k.group_key, a.group_key) AS group_key,'
        '        COALESCE(k.items, 0) AS kept_items, COALESCE(a.items, 0) AS actual_items,'
        '        COALESCE(k.amount, 0) AS kept_amount, COALESCE(a.amount, 0) AS actual_amount,'
        '        COALESCE(k.weighted_amount, 0) AS kept_weighted_amount,'
        '        COALESCE(a.weighted_amount, 0) AS actual_weighted_amount'
        '   FROM kept AS k'
        '   FULL JOIN actual AS a'
        '     ON a.aggregate OPERATOR(pg_catalog.=) k.aggregate AND a.group_key OPERATOR(pg_catalog.=) k.group_key',
        kept, actual);
END
$compared$;
COMMENT ON VIEW crm.aggregates_compared IS 'Every group of every maintained aggregate, kept (stripes summed) next to a fresh GROUP BY over the base tables; a full scan, for checking only';
COMMENT ON COLUMN crm.aggregates_compared.aggregate IS 'pipeline, account, campaign_opportunity or campaign_lead';
COMMENT ON COLUMN crm.aggregates_compared.group_key IS 'The group, as a JSON object of its key columns';
COMMENT ON COLUMN crm.aggregates_compared.kept_items IS 'Opportunities (or leads) in the group, as kept';
COMMENT ON COLUMN crm.aggregates_compared.actual_items IS 'Opportunities (or leads) in the group, counted now';
COMMENT ON COLUMN crm.aggregates_compared.kept_amount IS 'Sum of amounts, as kept (0 where the aggregate has none)';
COMMENT ON COLUMN crm.aggregates_compared.actual_amount IS 'Sum of amounts, computed now';
COMMENT ON COLUMN crm.aggregates_compared.kept_weighted_amount IS 'Sum of weighted amounts, as kept (pipeline only)';
COMMENT ON COLUMN crm.aggregates_compared.actual_weighted_amount IS 'Sum of weighted amounts, computed now';

-- Amounts in the corporate currency: each group of the aggregate (one close
-- month, one currency: one rate, since rates change on the first of a month)
-- converted at read time, summed exactly, rounded once; the amounts in the
-- deals' own currency beside them.
CREATE VIEW crm.pipeline_by_stage WITH (security_invoker = true) AS
    SELECT s.sort_order, s.name AS stage, s.is_closed, s.is_won, t.owner,
           pg_catalog.sum(t.opportunities) AS opportunities,
           pg_catalog.round(pg_catalog.sum(t.amount OPERATOR(pg_catalog.*) r.rate), 2) AS amount,
           pg_catalog.round(pg_catalog.sum(t.weighted_amount OPERATOR(pg_catalog.*) r.rate), 2) AS weighted_amount,
           t.currency,
           pg_catalog.sum(t.amount) AS amount_in_currency,
           pg_catalog.sum(t.weighted_amount) AS weighted_amount_in_currency
      FROM crm.pipeline_totals AS t JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) t.stage
     CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(t.currency, NULLIF(t.close_month, 'infinity'::date)) AS rate) AS r
     GROUP BY s.sort_order, s.name, s.is_closed, s.is_won, t.owner, t.currency;
COMMENT ON VIEW crm.pipeline_by_stage IS 'Pipeline by stage, owner and currency: number of opportunities, amount and probability-weighted amount in the corporate currency (each deal at the rate of its close month, the latest rate without a close date) and in the deals'' currency, read from the maintained aggregate';
COMMENT ON COLUMN crm.pipeline_by_stage.sort_order IS 'Position of the stage in the pipeline';
COMMENT ON COLUMN crm.pipeline_by_stage.stage IS 'Stage';
COMMENT ON COLUMN crm.pipeline_by_stage.is_closed IS 'True for closed stages';
COMMENT ON COLUMN crm.pipeline_by_stage.is_won IS 'True for won stages';
COMMENT ON COLUMN crm.pipeline_by_stage.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm.pipeline_by_stage.opportunities IS 'Number of opportunities';
COMMENT ON COLUMN crm.pipeline_by_stage.amount IS 'Sum of their amounts, in the corporate currency (rounded to cents once, after converting)';
COMMENT ON COLUMN crm.pipeline_by_stage.weighted_amount IS 'Sum of amount x probability / 100 (each rounded to cents), in the corporate currency';
COMMENT ON COLUMN crm.pipeline_by_stage.currency IS 'Currency of the opportunities';
COMMENT ON COLUMN crm.pipeline_by_stage.amount_in_currency IS 'Sum of their amounts in that currency';
COMMENT ON COLUMN crm.pipeline_by_stage.weighted_amount_in_currency IS 'Sum of the weighted amounts in that currency';

CREATE VIEW crm.forecast_by_month WITH (security_invoker = true) AS
    SELECT NULLIF(t.close_month, 'infinity'::date) AS close_month,
           s.forecast_category, t.owner,
           pg_catalog.sum(t.opportunities) AS opportunities,
           pg_catalog.round(pg_catalog.sum(t.amount OPERATOR(pg_catalog.*) r.rate), 2) AS amount,
           pg_catalog.round(pg_catalog.sum(t.weighted_amount OPERATOR(pg_catalog.*) r.rate), 2) AS weighted_amount,
           t.currency,
           pg_catalog.sum(t.amount) AS amount_in_currency,
           pg_catalog.sum(t.weighted_amount) AS weighted_amount_in_currency
      FROM crm.pipeline_totals AS t JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) t.stage
     CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(t.currency, NULLIF(t.close_month, 'infinity'::date)) AS rate) AS r
     WHERE NOT s.is_closed OR s.is_won
     GROUP BY 1, s.forecast_category, t.owner, t.currency;
COMMENT ON VIEW crm.forecast_by_month IS 'Forecast: open and won opportunities by expected close month, forecast category, owner and currency, amounts in the corporate currency (at the rate of the close month) and in the deals'' currency, read from the maintained aggregate';
COMMENT ON COLUMN crm.forecast_by_month.close_month IS 'First day of the close month (NULL: no close date yet)';
COMMENT ON COLUMN crm.forecast_by_month.forecast_category IS 'Pipeline, Best Case, Commit or Closed (from the stage)';
COMMENT ON COLUMN crm.forecast_by_month.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm.forecast_by_month.opportunities IS 'Number of opportunities';
COMMENT ON COLUMN crm.forecast_by_month.amount IS 'Sum of their amounts, in the corporate currency';
COMMENT ON COLUMN crm.forecast_by_month.weighted_amount IS 'Sum of amount x probability / 100, in the corporate currency';
COMMENT ON COLUMN crm.forecast_by_month.currency IS 'Currency of the opportunities';
COMMENT ON COLUMN crm.forecast_by_month.amount_in_currency IS 'Sum of their amounts in that currency';
COMMENT ON COLUMN crm.forecast_by_month.weighted_amount_in_currency IS 'Sum of the weighted amounts in that currency';

-- Every maintained aggregate against a fresh GROUP BY, and the pipeline
-- report's conversion to the corporate currency (per stage, owner and
-- currency) against a fresh GROUP BY that converts each opportunity at the
-- rate valid on its own close date.
CREATE FUNCTION crm.verify_aggregates()
    RETURNS TABLE (aggregate text, group_key jsonb, measure text, kept numeric, actual numeric)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT v.aggregate, v.group_key, v.measure, v.kept, v.actual
      FROM (SELECT c.aggregate, c.group_key, m.measure, m.kept, m.actual
              FROM crm.aggregates_compared AS c
             CROSS JOIN LATERAL (VALUES ('items', c.kept_items, c.actual_items),
                                        ('amount', c.kept_amount, c.actual_amount),
                                        ('weighted_amount', c.kept_weighted_amount, c.actual_weighted_amount))
                                AS m (measure, kept, actual)
            UNION ALL
            SELECT 'pipeline_by_stage', pg_catalog.jsonb_build_object('stage', COALESCE(k.stage, a.stage),
                       'owner', COALESCE(k.owner, a.owner), 'currency', COALESCE(k.currency, a.currency)),
                   m.measure, m.kept, m.actual
              FROM (SELECT p.stage, p.owner, p.currency, p.opportunities, p.amount, p.weighted_amount
                      FROM crm.pipeline_by_stage AS p) AS k
              FULL JOIN (SELECT o.stage, o.owner, o.currency, pg_catalog.count(*) AS opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount OPERATOR(pg_catalog.*) r.rate), 2) AS amount,
                                pg_catalog.round(pg_catalog.sum(pg_catalog.round(o.amount OPERATOR(pg_catalog.*) COALESCE(o.probability, 0)
                                                                                 OPERATOR(pg_catalog./) 100, 2)
                                                                OPERATOR(pg_catalog.*) r.rate), 2) AS weighted_amount
                           FROM crm.opportunity AS o
                          CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(o.currency, o.close_date) AS rate) AS r
                          GROUP BY o.stage, o.owner, o.currency) AS a
                ON a.stage OPERATOR(pg_catalog.=) k.stage AND a.owner OPERATOR(pg_catalog.=) k.owner
               AND a.currency OPERATOR(pg_catalog.=) k.currency
             CROSS JOIN LATERAL (VALUES ('items', COALESCE(k.opportunities, 0)::numeric, COALESCE(a.opportunities, 0)::numeric),
                                        ('amount', COALESCE(k.amount, 0), COALESCE(a.amount, 0)),
                                        ('weighted_amount', COALESCE(k.weighted_amount, 0), COALESCE(a.weighted_amount, 0)))
                                AS m (measure, kept, actual)) AS v
     WHERE v.kept OPERATOR(pg_catalog.<>) v.actual
     ORDER BY v.aggregate, v.group_key::text, v.measure;
END;
COMMENT ON FUNCTION crm.verify_aggregates() IS 'One row per group and measure where a maintained aggregate differs from a fresh GROUP BY over the base tables, or where crm.pipeline_by_stage''s amounts in the corporate currency differ from a GROUP BY converting each opportunity at the rate of its close date (aggregate pipeline_by_stage); no rows: all exact. ZC120 when a rate is missing';


GRANT SELECT ON crm.pipeline_totals, crm.pipeline_actual, crm.aggregates_compared, crm.pipeline_by_stage, crm.forecast_by_month
    TO crm_admin, crm_manager, crm_sales, crm_analyst;
REVOKE ALL ON FUNCTION crm.verify_aggregates() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.verify_aggregates() TO crm_admin, crm_manager, crm_sales, crm_analyst;

-- == quotas: crm.quota, crm.quota_attainment (issue 20 §2; sql/install/97_quotas.sql) ==
CREATE TABLE crm.quota (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner         regrole NOT NULL,
    period_start  date NOT NULL CONSTRAINT quota_period_start_finite CHECK (pg_catalog.isfinite(period_start)),
    period_end    date NOT NULL CONSTRAINT quota_period_end_finite CHECK (pg_catalog.isfinite(period_end)),
    amount        numeric(16,2) NOT NULL
                  CONSTRAINT quota_amount_positive CHECK (amount OPERATOR(pg_catalog.>) 0
                      AND amount OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    currency      text NOT NULL DEFAULT crm.corporate_currency()
                  CONSTRAINT quota_currency_fkey REFERENCES crm.currency (code),
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT quota_period CHECK (period_end OPERATOR(pg_catalog.>=) period_start)
);
COMMENT ON TABLE crm.quota IS 'Sales quotas: what an owner should win between period_start and period_end (both included); periods of one owner never overlap. Set by admins, and by managers for their team';
COMMENT ON COLUMN crm.quota.id IS 'Quota id, assigned by the database';
COMMENT ON COLUMN crm.quota.owner IS 'CRM user (database role) the quota is for';
COMMENT ON COLUMN crm.quota.period_start IS 'First day of the period';
COMMENT ON COLUMN crm.quota.period_end IS 'Last day of the period (included)';
COMMENT ON COLUMN crm.quota.amount IS 'Amount to win in the period, > 0, in currency';
COMMENT ON COLUMN crm.quota.currency IS 'Currency of the amount (default: the corporate currency)';
COMMENT ON COLUMN crm.quota.created_at IS 'When the quota was created; set by the database';
COMMENT ON COLUMN crm.quota.updated_at IS 'When the quota was last changed; set by the database';
CREATE INDEX quota_owner_period_idx ON crm.quota (owner, period_start);
COMMENT ON INDEX crm.quota_owner_period_idx IS 'Quotas by owner and period: the overlap check and attainment per owner';
CREATE INDEX quota_currency_idx ON crm.quota (currency);
COMMENT ON INDEX crm.quota_currency_idx IS 'Quotas by currency: deleting a currency checks its quotes without reading every quota';

-- No two periods of one owner overlap (23P01).  SECURITY DEFINER: the lock
-- is the extension owner's to take (users may not LOCK its tables in this
-- mode); the check reads every quota of the owner, also those the writer
-- cannot see.
CREATE FUNCTION crm.quota_guard() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    other record;
BEGIN
    IF TG_TABLE_SCHEMA OPERATOR(pg_catalog.<>) 'crm' OR TG_LEVEL OPERATOR(pg_catalog.<>) 'ROW' OR TG_WHEN OPERATOR(pg_catalog.<>) 'BEFORE' THEN
        RAISE EXCEPTION 'trigger % fired the wrong way for crm.%()', TG_NAME, 'quota_guard' USING ERRCODE = '39P01';
    END IF;
    LOCK TABLE crm.quota IN SHARE ROW EXCLUSIVE MODE;
    SELECT q.id, q.period_start, q.period_end INTO other FROM crm.quota AS q
     WHERE q.owner OPERATOR(pg_catalog.=) NEW.owner
       AND q.id OPERATOR(pg_catalog.<>) NEW.id
       AND q.period_start OPERATOR(pg_catalog.<=) NEW.period_end
       AND q.period_end OPERATOR(pg_catalog.>=) NEW.period_start
     ORDER BY q.period_start LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'the quota periods of % overlap', NEW.owner
            USING ERRCODE = '23P01',
                  DETAIL = pg_catalog.format('Quota %s runs from %s to %s.', other.id, other.period_start, other.period_end);
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION crm.quota_guard() IS 'BEFORE trigger on crm.quota: the periods of one owner never overlap (23P01)';
CREATE TRIGGER quota_guard BEFORE INSERT OR UPDATE OF owner, period_start, period_end ON crm.quota
    FOR EACH ROW EXECUTE FUNCTION crm.quota_guard();
REVOKE ALL ON FUNCTION crm.quota_guard() FROM PUBLIC;
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.quota
    FOR EACH ROW EXECUTE FUNCTION crm.stamp_row();

ALTER TABLE crm.quota ENABLE ROW LEVEL SECURITY;
CREATE POLICY crm_admin_all ON crm.quota TO crm_admin USING (true) WITH CHECK (true);
CREATE POLICY crm_analyst_read ON crm.quota FOR SELECT TO crm_analyst USING (true);
CREATE POLICY crm_team_select ON crm.quota FOR SELECT TO crm_manager, crm_sales
    USING (owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles())));
-- a manager sets the quotas of the team below them, not their own
CREATE POLICY crm_manager_write ON crm.quota TO crm_manager
    USING (owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))
           AND owner::pg_catalog.oid OPERATOR(pg_catalog.<>) (SELECT r.oid FROM pg_catalog.pg_roles AS r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER))
    WITH CHECK (owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))
           AND owner::pg_catalog.oid OPERATOR(pg_catalog.<>) (SELECT r.oid FROM pg_catalog.pg_roles AS r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER));
GRANT SELECT ON crm.quota TO crm_admin, crm_manager, crm_sales, crm_analyst;
GRANT INSERT, UPDATE, DELETE ON crm.quota TO crm_admin, crm_manager;

-- Attainment: per quota, and per period over the quotas the reader sees.
CREATE VIEW crm.quota_attainment WITH (security_invoker = true) AS
    WITH per_quota AS (
        SELECT q.owner, q.period_start, q.period_end,
               q.amount OPERATOR(pg_catalog.*) crm.exchange_rate_on(q.currency, q.period_start) AS quota,
               COALESCE(d.won, 0) AS won, COALESCE(d.open, 0) AS open, COALESCE(d.weighted, 0) AS weighted
          FROM crm.quota AS q
          LEFT JOIN LATERAL (
               SELECT pg_catalog.sum(o.amount OPERATOR(pg_catalog.*) r.rate) FILTER (WHERE s.is_won) AS won,
                      pg_catalog.sum(o.amount OPERATOR(pg_catalog.*) r.rate) FILTER (WHERE NOT s.is_closed) AS open,
                      pg_catalog.sum(pg_catalog.round(o.amount OPERATOR(pg_catalog.*) COALESCE(o.probability, 0)
                                                      OPERATOR(pg_catalog./) 100, 2) OPERATOR(pg_catalog.*) r.rate)
                          FILTER (WHERE NOT s.is_closed) AS weighted
                 FROM crm.opportunity AS o
                 JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) o.stage
                CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(o.currency, o.close_date) AS rate) AS r
                WHERE o.owner OPERATOR(pg_catalog.=) q.owner
                  AND o.close_date BETWEEN q.period_start AND q.period_end
                  AND (s.is_won OR NOT s.is_closed)) AS d ON true)
    SELECT p.owner, p.period_start, p.period_end,
           pg_catalog.round(pg_catalog.sum(p.quota), 2) AS quota,
           pg_catalog.round(pg_catalog.sum(p.won), 2) AS won_amount,
           pg_catalog.round(pg_catalog.sum(p.won) OPERATOR(pg_catalog./) pg_catalog.sum(p.quota), 4) AS attainment,
           pg_catalog.round(pg_catalog.sum(p.open), 2) AS open_pipeline,
           pg_catalog.round(pg_catalog.sum(p.weighted), 2) AS weighted_pipeline,
           CASE WHEN pg_catalog.sum(p.quota) OPERATOR(pg_catalog.>) pg_catalog.sum(p.won)
                THEN pg_catalog.round(pg_catalog.sum(p.open) OPERATOR(pg_catalog./)
                                      (pg_catalog.sum(p.quota) OPERATOR(pg_catalog.-) pg_catalog.sum(p.won)), 4)
           END AS pipeline_coverage
      FROM per_quota AS p
     GROUP BY GROUPING SETS ((p.owner, p.period_start, p.period_end), (p.period_start, p.period_end));
COMMENT ON VIEW crm.quota_attainment IS 'Quota attainment per owner and period, and a total row per period (owner NULL) over the quotas the reader sees (a manager: the team); amounts in the corporate currency, deals at the rate of their close date, quotas at the rate of their first day';
COMMENT ON COLUMN crm.quota_attainment.owner IS 'Quota owner; NULL on the total row of the period';
COMMENT ON COLUMN crm.quota_attainment.period_start IS 'First day of the period';
COMMENT ON COLUMN crm.quota_attainment.period_end IS 'Last day of the period';
COMMENT ON COLUMN crm.quota_attainment.quota IS 'The quota, in the corporate currency';
COMMENT ON COLUMN crm.quota_attainment.won_amount IS 'Amount of the deals won by the owner with a close date in the period (that the reader sees)';
COMMENT ON COLUMN crm.quota_attainment.attainment IS 'won_amount / quota';
COMMENT ON COLUMN crm.quota_attainment.open_pipeline IS 'Amount of the open deals of the owner closing in the period';
COMMENT ON COLUMN crm.quota_attainment.weighted_pipeline IS 'Their probability-weighted amount';
COMMENT ON COLUMN crm.quota_attainment.pipeline_coverage IS 'open_pipeline / (quota - won_amount); NULL once the quota is reached';
GRANT SELECT ON crm.quota_attainment TO crm_admin, crm_manager, crm_sales, crm_analyst;
-- INSERT and UPDATE column by column, as 99_privileges.sql grants them.
DO $quota_grants$
DECLARE
    g text;
    cols constant text := 'owner, period_start, period_end, amount, currency, created_at, updated_at';
BEGIN
    FOREACH g IN ARRAY ARRAY['crm_admin', 'crm_manager'] LOOP
        EXECUTE pg_catalog.format('REVOKE INSERT, UPDATE ON crm.quota FROM %I', g);
        EXECUTE pg_catalog.format('GRANT INSERT (%s), UPDATE (%s) ON crm.quota TO %I', cols, cols, g);
    END LOOP;
END
$quota_grants$;
SELECT pg_catalog.pg_extension_config_dump('crm.quota', '');
SELECT pg_catalog.pg_extension_config_dump('crm.quota_id_seq', '');

-- == api: generator-friendly schema for API servers and typed clients (issue 24) ==
-- A line item's unit_price may be left out (the price_line_item trigger fills
-- it from the price book): nullable for clients, a CHECK keeps it set.
ALTER TABLE crm.opportunity_line_item ALTER COLUMN unit_price DROP NOT NULL,
    ADD CONSTRAINT opportunity_line_item_unit_price_priced CHECK (unit_price IS NOT NULL);
COMMENT ON COLUMN crm.opportunity_line_item.unit_price IS 'Sales price of one unit; left out (NULL), the product''s price in the opportunity''s price book is filled in, so it is never NULL once stored';
ALTER TABLE crm.quote_line_item ALTER COLUMN unit_price DROP NOT NULL,
    ADD CONSTRAINT quote_line_item_unit_price_priced CHECK (unit_price IS NOT NULL);
COMMENT ON COLUMN crm.quote_line_item.unit_price IS 'Sales price of one unit; left out (NULL), the product''s price in the quote''s price book is filled in, so it is never NULL once stored';
-- Drivers without infinite dates (psycopg 3, JavaScript): no close date is NULL.
CREATE OR REPLACE VIEW crm.pipeline_totals WITH (security_invoker = true) AS
    SELECT a.stage, a.owner, NULLIF(a.close_month, 'infinity'::pg_catalog.date) AS close_month, a.currency,
           pg_catalog.sum(a.opportunities) AS opportunities, pg_catalog.sum(a.amount) AS amount,
           pg_catalog.sum(a.weighted_amount) AS weighted_amount
      FROM crm.pipeline_aggregate AS a
     GROUP BY a.stage, a.owner, a.close_month, a.currency
    HAVING pg_catalog.sum(a.opportunities) OPERATOR(pg_catalog.<>) 0;
COMMENT ON COLUMN crm.pipeline_totals.close_month IS 'First day of the close month; NULL without a close date';
-- Columns a trigger fills: nullable for clients, a CHECK keeps them set.
ALTER TABLE crm.lead ALTER COLUMN owner DROP NOT NULL,
    ADD CONSTRAINT lead_owner_assigned CHECK (owner IS NOT NULL);
ALTER TABLE crm.quote ALTER COLUMN quote_number DROP NOT NULL,
    ADD CONSTRAINT quote_quote_number_assigned CHECK (quote_number IS NOT NULL);
-- Database-set columns: created_at and updated_at are the stamp_row
-- trigger's; no role may write them (as 99_privileges.sql's $stamped$ block).
DO $stamped$
DECLARE
    g record;
BEGIN
    FOR g IN
        SELECT att.attrelid::pg_catalog.regclass AS rel, pg_catalog.quote_ident(att.attname) AS col,
               a.privilege_type AS priv, pg_catalog.quote_ident(r.rolname) AS grantee
          FROM pg_catalog.pg_attribute AS att
          JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) att.attrelid
         CROSS JOIN LATERAL pg_catalog.aclexplode(att.attacl) AS a
          JOIN pg_catalog.pg_roles AS r ON r.oid OPERATOR(pg_catalog.=) a.grantee
         WHERE c.relnamespace OPERATOR(pg_catalog.=) 'crm'::pg_catalog.regnamespace
           AND c.relkind OPERATOR(pg_catalog.=) 'r'
           AND att.attname OPERATOR(pg_catalog.=) ANY (ARRAY['created_at', 'updated_at']::pg_catalog.name[])
           AND a.privilege_type OPERATOR(pg_catalog.=) ANY (ARRAY['INSERT', 'UPDATE'])
           AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
         ORDER BY 1, 2, 3, 4
    LOOP
        EXECUTE pg_catalog.format('REVOKE %s (%s) ON %s FROM %s', g.priv, g.col, g.rel, g.grantee);
    END LOOP;
END
$stamped$;

-- == attack: red team on currencies, quotas and the API (s32-attack; sql/install/73_currency_checks.sql) ==
-- An existing infinite close date makes this fail (check constraint
-- "opportunity_close_date_finite"): set such dates to NULL first.
ALTER TABLE crm.opportunity ADD CONSTRAINT opportunity_close_date_finite
    CHECK (pg_catalog.isfinite(close_date));
COMMENT ON CONSTRAINT opportunity_close_date_finite ON crm.opportunity IS 'A close date is a real day (or NULL while unknown): never infinity, which the aggregates use for "no close date" and no exchange rate is valid on';

-- == priv: database-set columns not writable by any role (issue 24 §2; 99_privileges.sql $stamped$, extended) ==
-- Database-set columns: created_at and updated_at are the stamp_row
-- trigger's (96_timestamps_and_change_log.sql), whatever a client sends, so
-- no role may write them (42501), wherever INSERT or UPDATE was granted
-- above.  Schema-driven API servers and code generators read the column
-- privileges and leave them out of their insert and update inputs.
-- Likewise the conversion record, numbers, sums and lifecycle times that
-- only crm's functions and triggers set (the list below; README "Using crm
-- from an application"): crm.convert_lead() writes the conversion record
-- with the caller's own statements and its guards fill those columns in
-- (conversion_guard.c), as crm.create_order(), activate_order() and
-- cancel_order() do for an order's number, sums and approval record
-- (orders.c); triggers set the others from what users do write (an
-- activity's or order's status, a member's response, the line items).
DO $stamped$
DECLARE
    g record;
BEGIN
    FOR g IN
        SELECT att.attrelid::pg_catalog.regclass AS rel, pg_catalog.quote_ident(att.attname) AS col,
               a.privilege_type AS priv, pg_catalog.quote_ident(r.rolname) AS grantee
          FROM pg_catalog.pg_attribute AS att
          JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) att.attrelid
         CROSS JOIN LATERAL pg_catalog.aclexplode(att.attacl) AS a
          JOIN pg_catalog.pg_roles AS r ON r.oid OPERATOR(pg_catalog.=) a.grantee
         WHERE c.relnamespace OPERATOR(pg_catalog.=) 'crm'::pg_catalog.regnamespace
           AND c.relkind OPERATOR(pg_catalog.=) 'r'
           AND (att.attname OPERATOR(pg_catalog.=) ANY (ARRAY['created_at', 'updated_at']::pg_catalog.name[])
                OR (c.relname::pg_catalog.text, att.attname::pg_catalog.text) IN (VALUES
                    ('lead', 'account_id'), ('lead', 'contact_id'), ('lead', 'opportunity_id'),
                    ('lead', 'converted_at'), ('lead', 'converted_by'), ('lead', 'score'),
                    ('opportunity', 'lead_id'), ('opportunity', 'closed_at'),
                    ('quote', 'quote_number'), ('quote', 'subtotal'),
                    ('sales_order', 'order_number'), ('sales_order', 'subtotal'),
                    ('sales_order', 'discount_amount'), ('sales_order', 'tax'), ('sales_order', 'total'),
                    ('sales_order', 'currency'), ('sales_order', 'activated_at'),
                    ('sales_order', 'activated_by'), ('sales_order', 'shipped_at'),
                    ('sales_order', 'delivered_at'), ('sales_order', 'completed_at'),
                    ('sales_order', 'cancelled_at'), ('sales_order', 'cancelled_by'),
                    ('activity', 'completed_at'), ('activity', 'series_id'),
                    ('activity', 'occurrence_number'), ('activity_participant', 'responded_at'),
                    ('campaign_member', 'opted_out'), ('campaign_member', 'first_responded_at')))
           AND a.privilege_type OPERATOR(pg_catalog.=) ANY (ARRAY['INSERT', 'UPDATE'])
           AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
         ORDER BY 1, 2, 3, 4
    LOOP
        EXECUTE pg_catalog.format('REVOKE %s (%s) ON %s FROM %s', g.priv, g.col, g.rel, g.grantee);
    END LOOP;
END
$stamped$;

-- == cur2: account and campaign aggregates by close month and currency; every report in the corporate currency (88_aggregates.sql, 90_reports.sql) ==
-- The account and campaign opportunity aggregates gain the keys close_month
-- and currency.  Their rows cannot be split by close month, so they are
-- recomputed from the opportunities (one row per group, stripe 0, as
-- crm.rebuild_aggregates() makes them); test/scripts/upgrade.sh proves
-- their content with crm.verify_aggregates() instead of comparing rows.
-- Writers of deals wait meanwhile.
LOCK TABLE crm.opportunity IN SHARE MODE;
LOCK TABLE crm.account_aggregate, crm.campaign_opportunity_aggregate IN EXCLUSIVE MODE;
DELETE FROM crm.account_aggregate;
DELETE FROM crm.campaign_opportunity_aggregate;
ALTER TABLE crm.account_aggregate ADD COLUMN close_month date NOT NULL, ADD COLUMN currency text NOT NULL,
    DROP CONSTRAINT account_aggregate_pkey, ADD PRIMARY KEY (account_id, owner, close_month, stripe, stage, currency);
ALTER TABLE crm.campaign_opportunity_aggregate ADD COLUMN close_month date NOT NULL, ADD COLUMN currency text NOT NULL,
    DROP CONSTRAINT campaign_opportunity_aggregate_pkey, ADD PRIMARY KEY (campaign_id, owner, close_month, stripe, stage, currency);
DO $regroup$
DECLARE
    d record;
BEGIN
    FOR d IN SELECT * FROM crm.aggregate_definitions() AS a
              WHERE a.aggregate OPERATOR(pg_catalog.=) ANY (ARRAY['account', 'campaign_opportunity']) LOOP
        EXECUTE pg_catalog.format('INSERT INTO crm.%1$I (%2$s, stripe, %3$s) SELECT %2$s, 0, %3$s FROM (%4$s) AS a',
                       d.aggregate_table,
                       (SELECT pg_catalog.string_agg(pg_catalog.format('%I', c), ', ' ORDER BY c.i)
                          FROM pg_catalog.unnest(d.group_columns) WITH ORDINALITY AS c (c, i)),
                       (SELECT pg_catalog.string_agg(pg_catalog.format('%I', m), ', ' ORDER BY m.i)
                          FROM pg_catalog.unnest(d.measures) WITH ORDINALITY AS m (m, i)),
                       d.actual_query);
    END LOOP;
END
$regroup$;
COMMENT ON TABLE crm.account_aggregate IS 'Opportunities per account, owner, stage, close month and currency, one row per writing backend (stripe); sum over stripes to read (crm.account_rollup does, converting each group to the corporate currency); written only by the aggregates_ triggers';
COMMENT ON COLUMN crm.account_aggregate.account_id IS 'The account';
COMMENT ON COLUMN crm.account_aggregate.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm.account_aggregate.stage IS 'Opportunity stage';
COMMENT ON COLUMN crm.account_aggregate.close_month IS 'First day of the close month; infinity when the opportunity has no close date';
COMMENT ON COLUMN crm.account_aggregate.currency IS 'Currency of the amounts (the opportunities'' currency); reports convert per group at read time';
COMMENT ON COLUMN crm.account_aggregate.opportunities IS 'Change in the number of opportunities recorded by this stripe';
COMMENT ON COLUMN crm.account_aggregate.amount IS 'Change in the sum of amounts recorded by this stripe';

COMMENT ON TABLE crm.campaign_opportunity_aggregate IS 'Opportunities attributed to a campaign, per campaign, owner, stage, close month and currency, one row per writing backend (stripe); crm.campaign_performance converts each group to the corporate currency; written only by the aggregates_ triggers';
COMMENT ON COLUMN crm.campaign_opportunity_aggregate.campaign_id IS 'The campaign';
COMMENT ON COLUMN crm.campaign_opportunity_aggregate.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm.campaign_opportunity_aggregate.stage IS 'Opportunity stage';
COMMENT ON COLUMN crm.campaign_opportunity_aggregate.close_month IS 'First day of the close month; infinity when the opportunity has no close date';
COMMENT ON COLUMN crm.campaign_opportunity_aggregate.currency IS 'Currency of the amounts (the opportunities'' currency); reports convert per group at read time';
COMMENT ON COLUMN crm.campaign_opportunity_aggregate.opportunities IS 'Change in the number of opportunities recorded by this stripe';
COMMENT ON COLUMN crm.campaign_opportunity_aggregate.amount IS 'Change in the sum of amounts recorded by this stripe';


-- The comparison view over the new keys (same columns, new groups).
DO $compared$
DECLARE
    kept text;
    actual text;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.format(
               'SELECT %L::text AS aggregate, pg_catalog.jsonb_build_object(%s) AS group_key, %s'
               ' FROM crm.%I AS g GROUP BY %s',
               d.aggregate, x.group_key, x.kept, d.aggregate_table, x.group_columns), ' UNION ALL ' ORDER BY d.ordinality),
           pg_catalog.string_agg(pg_catalog.format(
               'SELECT %L::text AS aggregate, pg_catalog.jsonb_build_object(%s) AS group_key, %s FROM (%s) AS g',
               d.aggregate, x.group_key, x.actual, d.actual_query), ' UNION ALL ' ORDER BY d.ordinality)
      INTO kept, actual
      FROM crm.aggregate_definitions() WITH ORDINALITY AS d
     CROSS JOIN LATERAL (
           SELECT (SELECT pg_catalog.string_agg(pg_catalog.format('%L, g.%I', c, c), ', ' ORDER BY c.i)
                     FROM pg_catalog.unnest(d.group_columns) WITH ORDINALITY AS c (c, i)) AS group_key,
                  (SELECT pg_catalog.string_agg(pg_catalog.format('g.%I', c), ', ' ORDER BY c.i)
                     FROM pg_catalog.unnest(d.group_columns) WITH ORDINALITY AS c (c, i)) AS group_columns,
                  (SELECT pg_catalog.string_agg(CASE WHEN d.measures[m.i] IS NULL THEN 'NULL::numeric'
                                                     ELSE pg_catalog.format('pg_catalog.sum(g.%I)::numeric', d.measures[m.i])
                                                END || ' AS ' || m.name, ', ' ORDER BY m.i)
                     FROM pg_catalog.unnest(ARRAY['items', 'amount', 'weighted_amount']) WITH ORDINALITY AS m (name, i)) AS kept,
                  (SELECT pg_catalog.string_agg(CASE WHEN d.measures[m.i] IS NULL THEN 'NULL::numeric'
                                                     ELSE pg_catalog.format('g.%I::numeric', d.measures[m.i])
                                                END || ' AS ' || m.name, ', ' ORDER BY m.i)
                     FROM pg_catalog.unnest(ARRAY['items', 'amount', 'weighted_amount']) WITH ORDINALITY AS m (name, i)) AS actual
           ) AS x;
    EXECUTE pg_catalog.format(
        'CREATE OR REPLACE VIEW crm.aggregates_compared WITH (security_invoker = true) AS'
        ' WITH kept AS (%s), actual AS (%s)'
        ' SELECT COALESCE(k.aggregate, a.aggregate) AS aggregate, COALESCE(k.group_key, a.group_key) AS group_key,'
        '        COALESCE(k.items, 0) AS kept_items, COALESCE(a.items, 0) AS actual_items,'
        '        COALESCE(k.amount, 0) AS kept_amount, COALESCE(a.amount, 0) AS actual_amount,'
        '        COALESCE(k.weighted_amount, 0) AS kept_weighted_amount,'
        '        COALESCE(a.weighted_amount, 0) AS actual_weighted_amount'
        '   FROM kept AS k'
        '   FULL JOIN actual AS a'
        '     ON a.aggregate OPERATOR(pg_catalog.=) k.aggregate AND a.group_key OPERATOR(pg_catalog.=) k.group_key',
        kept, actual);
END
$compared$;
COMMENT ON VIEW crm.aggregates_compared IS 'Every group of every maintained aggregate, kept (stripes summed) next to a fresh GROUP BY over the base tables; a full scan, for checking only';
COMMENT ON COLUMN crm.aggregates_compared.aggregate IS 'pipeline, account, campaign_opportunity or campaign_lead';
COMMENT ON COLUMN crm.aggregates_compared.group_key IS 'The group, as a JSON object of its key columns';
COMMENT ON COLUMN crm.aggregates_compared.kept_items IS 'Opportunities (or leads) in the group, as kept';
COMMENT ON COLUMN crm.aggregates_compared.actual_items IS 'Opportunities (or leads) in the group, counted now';
COMMENT ON COLUMN crm.aggregates_compared.kept_amount IS 'Sum of amounts, as kept (0 where the aggregate has none)';
COMMENT ON COLUMN crm.aggregates_compared.actual_amount IS 'Sum of amounts, computed now';
COMMENT ON COLUMN crm.aggregates_compared.kept_weighted_amount IS 'Sum of weighted amounts, as kept (pipeline only)';
COMMENT ON COLUMN crm.aggregates_compared.actual_weighted_amount IS 'Sum of weighted amounts, computed now';


CREATE OR REPLACE VIEW crm.account_rollup WITH (security_invoker = true) AS
    WITH account_groups AS (
        SELECT a.account_id, a.stage, a.close_month, a.currency,
               pg_catalog.sum(a.opportunities) AS opportunities, pg_catalog.sum(a.amount) AS amount
          FROM crm.account_aggregate AS a
          JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) a.stage
         WHERE s.is_won OR NOT s.is_closed
         GROUP BY a.account_id, a.stage, a.close_month, a.currency
        HAVING pg_catalog.sum(a.opportunities) OPERATOR(pg_catalog.<>) 0)
    SELECT ac.id AS account_id, ac.name, ac.owner,
           COALESCE(r.open_opportunities, 0) AS open_opportunities,
           COALESCE(r.open_amount, 0) AS open_amount,
           COALESCE(r.won_opportunities, 0) AS won_opportunities,
           COALESCE(r.won_amount, 0) AS won_amount,
           (SELECT pg_catalog.max(act.completed_at) FROM crm.activity AS act
             WHERE act.account_id OPERATOR(pg_catalog.=) ac.id) AS last_activity_at,
           r.currency, r.open_amount_in_currency, r.won_amount_in_currency
      FROM crm.account AS ac
      LEFT JOIN (SELECT g.account_id,
                        pg_catalog.sum(g.opportunities) FILTER (WHERE NOT s.is_closed) AS open_opportunities,
                        pg_catalog.round(pg_catalog.sum(g.amount OPERATOR(pg_catalog.*) x.rate) FILTER (WHERE NOT s.is_closed), 2) AS open_amount,
                        pg_catalog.sum(g.opportunities) FILTER (WHERE s.is_won) AS won_opportunities,
                        pg_catalog.round(pg_catalog.sum(g.amount OPERATOR(pg_catalog.*) x.rate) FILTER (WHERE s.is_won), 2) AS won_amount,
                        CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                             THEN pg_catalog.min(g.currency) END AS currency,
                        CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                             THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE NOT s.is_closed), 0) END AS open_amount_in_currency,
                        CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                             THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE s.is_won), 0) END AS won_amount_in_currency
                   FROM account_groups AS g
                   JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) g.stage
                   JOIN (SELECT c.currency, c.close_month,
                                crm.exchange_rate_on(c.currency, NULLIF(c.close_month, 'infinity'::pg_catalog.date)) AS rate
                           FROM (SELECT DISTINCT a.currency, a.close_month FROM account_groups AS a) AS c) AS x
                     ON x.currency OPERATOR(pg_catalog.=) g.currency AND x.close_month OPERATOR(pg_catalog.=) g.close_month
                  GROUP BY g.account_id) AS r
        ON r.account_id OPERATOR(pg_catalog.=) ac.id;
COMMENT ON VIEW crm.account_rollup IS 'Per account (one row each): open opportunities and their amount, won opportunities and their amount, in the corporate currency (each deal at the rate of its close month, the latest rate without a close date; read from the maintained aggregate, converted per group at read time, so a rate edit shows at once), and the last completed activity logged against the account. One row per account rather than per currency, so that it joins to accounts and charts as one bar each; the deals'' own currency and amounts in it are beside them when all open and won deals of the account share one currency (NULL when they are mixed)';
COMMENT ON COLUMN crm.account_rollup.account_id IS 'The account';
COMMENT ON COLUMN crm.account_rollup.name IS 'Account name';
COMMENT ON COLUMN crm.account_rollup.owner IS 'Account owner';
COMMENT ON COLUMN crm.account_rollup.open_opportunities IS 'Opportunities in a stage that is not closed';
COMMENT ON COLUMN crm.account_rollup.open_amount IS 'Their amount, in the corporate currency (rounded to cents once, after converting)';
COMMENT ON COLUMN crm.account_rollup.won_opportunities IS 'Opportunities won';
COMMENT ON COLUMN crm.account_rollup.won_amount IS 'Their amount, in the corporate currency (rounded to cents once, after converting)';
COMMENT ON COLUMN crm.account_rollup.last_activity_at IS 'When the latest completed activity logged against the account was completed (NULL: none)';
COMMENT ON COLUMN crm.account_rollup.currency IS 'Currency of the open and won deals when they all share one; NULL when they are in several currencies or there are none';
COMMENT ON COLUMN crm.account_rollup.open_amount_in_currency IS 'Amount of the open deals in that currency (NULL when the currencies are mixed)';
COMMENT ON COLUMN crm.account_rollup.won_amount_in_currency IS 'Amount of the won deals in that currency (NULL when the currencies are mixed)';

CREATE OR REPLACE VIEW crm.sales_funnel WITH (security_invoker = true) AS
    SELECT 1 AS position, pg_catalog.array_position(pg_catalog.enum_range(NULL::crm.lead_status), l.status) AS step_order,
           'lead'::text AS kind, l.status::text AS step,
           pg_catalog.count(*) AS items, NULL::numeric AS amount,
           NULL::text AS currency, NULL::numeric AS amount_in_currency
      FROM crm.lead AS l GROUP BY l.status
    UNION ALL
    SELECT 2, s.sort_order, 'opportunity', s.name, pg_catalog.count(o.id),
           COALESCE(pg_catalog.round(pg_catalog.sum(o.amount OPERATOR(pg_catalog.*)
                                                     CASE WHEN o.id IS NOT NULL THEN crm.exchange_rate_on(o.currency, o.close_date) END), 2), 0),
           CASE WHEN pg_catalog.min(o.currency) OPERATOR(pg_catalog.=) pg_catalog.max(o.currency) THEN pg_catalog.min(o.currency) END,
           CASE WHEN pg_catalog.min(o.currency) OPERATOR(pg_catalog.=) pg_catalog.max(o.currency) THEN pg_catalog.sum(o.amount) END
      FROM crm.opportunity_stage AS s LEFT JOIN crm.opportunity AS o ON o.stage OPERATOR(pg_catalog.=) s.name
     GROUP BY s.name, s.sort_order
    UNION ALL
    SELECT 3, 1, 'won', 'Won', pg_catalog.count(*),
           COALESCE(pg_catalog.round(pg_catalog.sum(o.amount OPERATOR(pg_catalog.*) crm.exchange_rate_on(o.currency, o.close_date)), 2), 0),
           CASE WHEN pg_catalog.min(o.currency) OPERATOR(pg_catalog.=) pg_catalog.max(o.currency) THEN pg_catalog.min(o.currency) END,
           CASE WHEN pg_catalog.min(o.currency) OPERATOR(pg_catalog.=) pg_catalog.max(o.currency) THEN pg_catalog.sum(o.amount) END
      FROM crm.opportunity AS o JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) o.stage
     WHERE s.is_won;
COMMENT ON VIEW crm.sales_funnel IS 'Sales funnel: leads by status, opportunities by stage, won deals; ORDER BY position, step_order. Amounts in the corporate currency (each deal at the rate of its close date, the latest rate without one), and in the deals'' own currency when a step has one currency only';
COMMENT ON COLUMN crm.sales_funnel.position IS '1 leads, 2 opportunities, 3 won';
COMMENT ON COLUMN crm.sales_funnel.step_order IS 'Order of the step within its part: lead status order, stage sort_order';
COMMENT ON COLUMN crm.sales_funnel.kind IS 'lead, opportunity or won';
COMMENT ON COLUMN crm.sales_funnel.step IS 'Lead status or opportunity stage (Won for the won total)';
COMMENT ON COLUMN crm.sales_funnel.items IS 'Number of leads or opportunities in the step';
COMMENT ON COLUMN crm.sales_funnel.amount IS 'Total opportunity amount in the step, in the corporate currency (NULL for lead steps)';
COMMENT ON COLUMN crm.sales_funnel.currency IS 'Currency of the step''s opportunities when they all share one; NULL when mixed, empty or a lead step';
COMMENT ON COLUMN crm.sales_funnel.amount_in_currency IS 'Their total amount in that currency (NULL when mixed)';


CREATE OR REPLACE VIEW crm.sales_performance WITH (security_invoker = true) AS
    SELECT o.owner, pg_catalog.date_trunc('month', o.closed_at)::date AS period,
           pg_catalog.count(*) FILTER (WHERE s.is_won) AS won,
           pg_catalog.count(*) FILTER (WHERE NOT s.is_won) AS lost,
           COALESCE(pg_catalog.round(pg_catalog.sum(o.amount OPERATOR(pg_catalog.*) x.rate) FILTER (WHERE s.is_won), 2), 0) AS won_amount,
           pg_catalog.round(pg_catalog.count(*) FILTER (WHERE s.is_won)::numeric OPERATOR(pg_catalog./) pg_catalog.count(*), 4) AS win_rate,
           pg_catalog.round(pg_catalog.avg(o.amount OPERATOR(pg_catalog.*) x.rate) FILTER (WHERE s.is_won), 2) AS average_deal_size,
           pg_catalog.round((pg_catalog.avg(pg_catalog.date_part('epoch', o.closed_at OPERATOR(pg_catalog.-) o.created_at))
                             FILTER (WHERE s.is_won) OPERATOR(pg_catalog./) 86400)::numeric, 1) AS average_cycle_days,
           CASE WHEN pg_catalog.min(o.currency) FILTER (WHERE s.is_won) OPERATOR(pg_catalog.=) pg_catalog.max(o.currency) FILTER (WHERE s.is_won)
                THEN pg_catalog.min(o.currency) FILTER (WHERE s.is_won) END AS currency,
           CASE WHEN pg_catalog.min(o.currency) FILTER (WHERE s.is_won) OPERATOR(pg_catalog.=) pg_catalog.max(o.currency) FILTER (WHERE s.is_won)
                THEN pg_catalog.sum(o.amount) FILTER (WHERE s.is_won) END AS won_amount_in_currency
      FROM crm.opportunity AS o JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) o.stage
     CROSS JOIN LATERAL (SELECT CASE WHEN s.is_won THEN crm.exchange_rate_on(o.currency, o.close_date) END AS rate) AS x
     WHERE s.is_closed AND o.closed_at IS NOT NULL
     GROUP BY o.owner, 2;
COMMENT ON VIEW crm.sales_performance IS 'Sales performance per owner and month of closing: deals won and lost, won amount (in the corporate currency, each deal at the rate of its close date), win rate, average deal size, sales cycle length; the won deals'' currency and won amount in it when they share one currency';
COMMENT ON COLUMN crm.sales_performance.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm.sales_performance.period IS 'First day of the month the deals closed in';
COMMENT ON COLUMN crm.sales_performance.won IS 'Deals won';
COMMENT ON COLUMN crm.sales_performance.lost IS 'Deals lost';
COMMENT ON COLUMN crm.sales_performance.won_amount IS 'Amount of the won deals, in the corporate currency';
COMMENT ON COLUMN crm.sales_performance.win_rate IS 'won / (won + lost), 0-1';
COMMENT ON COLUMN crm.sales_performance.average_deal_size IS 'Average amount of a won deal, in the corporate currency';
COMMENT ON COLUMN crm.sales_performance.average_cycle_days IS 'Average days from creation to closing of a won deal';
COMMENT ON COLUMN crm.sales_performance.currency IS 'Currency of the won deals when they all share one; NULL when mixed or none won';
COMMENT ON COLUMN crm.sales_performance.won_amount_in_currency IS 'Amount of the won deals in that currency (NULL when mixed)';


CREATE OR REPLACE VIEW crm.quote_to_order WITH (security_invoker = true) AS
    SELECT pg_catalog.date_trunc('month', q.created_at)::date AS month,
           pg_catalog.count(*) AS quotes,
           pg_catalog.count(*) FILTER (WHERE q.status OPERATOR(pg_catalog.=) 'Accepted'::crm.quote_status) AS accepted,
           pg_catalog.count(so.id) AS orders,
           pg_catalog.round(pg_catalog.count(so.id)::numeric OPERATOR(pg_catalog./) pg_catalog.count(*), 4) AS order_rate,
           COALESCE(pg_catalog.round(pg_catalog.sum(so.total OPERATOR(pg_catalog.*)
                                                    CASE WHEN so.id IS NOT NULL THEN crm.exchange_rate_on(so.currency, so.created_at::pg_catalog.date) END), 2), 0) AS order_total,
           CASE WHEN pg_catalog.min(so.currency) OPERATOR(pg_catalog.=) pg_catalog.max(so.currency) THEN pg_catalog.min(so.currency) END AS currency,
           CASE WHEN pg_catalog.min(so.currency) OPERATOR(pg_catalog.=) pg_catalog.max(so.currency) THEN pg_catalog.sum(so.total) END AS order_total_in_currency
      FROM crm.quote AS q LEFT JOIN crm.sales_order AS so ON so.quote_id OPERATOR(pg_catalog.=) q.id
     GROUP BY 1;
COMMENT ON VIEW crm.quote_to_order IS 'Quote-to-order conversion per month the quotes were made; order totals in the corporate currency, each order at the rate of the day it was made (created_at, session time zone), and in the orders'' currency when they share one';
COMMENT ON COLUMN crm.quote_to_order.month IS 'First day of the month';
COMMENT ON COLUMN crm.quote_to_order.quotes IS 'Quotes made';
COMMENT ON COLUMN crm.quote_to_order.accepted IS 'Of those, Accepted now';
COMMENT ON COLUMN crm.quote_to_order.orders IS 'Of those, turned into sales orders';
COMMENT ON COLUMN crm.quote_to_order.order_rate IS 'orders / quotes, 0-1';
COMMENT ON COLUMN crm.quote_to_order.order_total IS 'Total of those orders, in the corporate currency (each at the rate of the day it was made)';
COMMENT ON COLUMN crm.quote_to_order.currency IS 'Currency of those orders when they all share one; NULL when mixed or none';
COMMENT ON COLUMN crm.quote_to_order.order_total_in_currency IS 'Their total in that currency (NULL when mixed)';


CREATE OR REPLACE VIEW crm.campaign_performance WITH (security_invoker = true) AS
    WITH campaign_groups AS (
        SELECT a.campaign_id, a.stage, a.close_month, a.currency,
               pg_catalog.sum(a.opportunities) AS opportunities, pg_catalog.sum(a.amount) AS amount
          FROM crm.campaign_opportunity_aggregate AS a
         GROUP BY a.campaign_id, a.stage, a.close_month, a.currency
        HAVING pg_catalog.sum(a.opportunities) OPERATOR(pg_catalog.<>) 0)
    SELECT c.id AS campaign_id, c.name, c.type, c.status, c.owner,
           c.budgeted_cost, c.actual_cost, c.expected_revenue,
           COALESCE(l.leads, 0) AS leads,
           COALESCE(l.converted_leads, 0) AS converted_leads,
           COALESCE(o.opportunities, 0) AS opportunities,
           COALESCE(o.won_opportunities, 0) AS won_opportunities,
           COALESCE(o.amount, 0) AS opportunity_amount,
           COALESCE(o.won_amount, 0) AS won_amount,
           CASE WHEN c.actual_cost OPERATOR(pg_catalog.>) 0
                THEN pg_catalog.round((COALESCE(o.won_amount, 0) OPERATOR(pg_catalog.-) c.actual_cost)
                                      OPERATOR(pg_catalog./) c.actual_cost, 4)
           END AS roi,
           o.currency, o.amount_in_currency AS opportunity_amount_in_currency, o.won_amount_in_currency
      FROM crm.campaign AS c
      LEFT JOIN (SELECT g.campaign_id, pg_catalog.sum(g.leads) AS leads,
                        pg_catalog.sum(g.leads) FILTER (WHERE g.status OPERATOR(pg_catalog.=) 'Converted'::crm.lead_status) AS converted_leads
                   FROM crm.campaign_lead_aggregate AS g GROUP BY g.campaign_id) AS l
        ON l.campaign_id OPERATOR(pg_catalog.=) c.id
      LEFT JOIN (SELECT g.campaign_id, pg_catalog.sum(g.opportunities) AS opportunities,
                        pg_catalog.sum(g.opportunities) FILTER (WHERE s.is_won) AS won_opportunities,
                        pg_catalog.round(pg_catalog.sum(g.amount OPERATOR(pg_catalog.*) x.rate), 2) AS amount,
                        pg_catalog.round(pg_catalog.sum(g.amount OPERATOR(pg_catalog.*) x.rate) FILTER (WHERE s.is_won), 2) AS won_amount,
                        CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                             THEN pg_catalog.min(g.currency) END AS currency,
                        CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                             THEN pg_catalog.sum(g.amount) END AS amount_in_currency,
                        CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                             THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE s.is_won), 0) END AS won_amount_in_currency
                   FROM campaign_groups AS g
                   JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) g.stage
                   JOIN (SELECT c.currency, c.close_month,
                                crm.exchange_rate_on(c.currency, NULLIF(c.close_month, 'infinity'::pg_catalog.date)) AS rate
                           FROM (SELECT DISTINCT a.currency, a.close_month FROM campaign_groups AS a) AS c) AS x
                     ON x.currency OPERATOR(pg_catalog.=) g.currency AND x.close_month OPERATOR(pg_catalog.=) g.close_month
                  GROUP BY g.campaign_id) AS o
        ON o.campaign_id OPERATOR(pg_catalog.=) c.id;
COMMENT ON VIEW crm.campaign_performance IS 'Per campaign (one row each, as ROI is a campaign''s figure): leads, converted leads, opportunities, won opportunities, their amounts in the corporate currency (each deal at the rate of its close month, the latest rate without a close date; converted per group of the maintained aggregate at read time, so a rate edit shows at once), and ROI = (won amount - actual cost) / actual cost, the cost being in the corporate currency; the deals'' own currency and amounts in it beside them when all the campaign''s deals share one currency';
COMMENT ON COLUMN crm.campaign_performance.campaign_id IS 'The campaign';
COMMENT ON COLUMN crm.campaign_performance.name IS 'Campaign name';
COMMENT ON COLUMN crm.campaign_performance.type IS 'Campaign type';
COMMENT ON COLUMN crm.campaign_performance.status IS 'Campaign status';
COMMENT ON COLUMN crm.campaign_performance.owner IS 'Who runs the campaign';
COMMENT ON COLUMN crm.campaign_performance.budgeted_cost IS 'Planned cost, in the corporate currency';
COMMENT ON COLUMN crm.campaign_performance.actual_cost IS 'Cost so far, in the corporate currency';
COMMENT ON COLUMN crm.campaign_performance.expected_revenue IS 'Expected revenue';
COMMENT ON COLUMN crm.campaign_performance.leads IS 'Leads attributed to the campaign';
COMMENT ON COLUMN crm.campaign_performance.converted_leads IS 'Of those, converted';
COMMENT ON COLUMN crm.campaign_performance.opportunities IS 'Opportunities attributed to the campaign';
COMMENT ON COLUMN crm.campaign_performance.won_opportunities IS 'Of those, won';
COMMENT ON COLUMN crm.campaign_performance.opportunity_amount IS 'Amount of all attributed opportunities, in the corporate currency';
COMMENT ON COLUMN crm.campaign_performance.won_amount IS 'Amount of the won ones, in the corporate currency';
COMMENT ON COLUMN crm.campaign_performance.roi IS 'Return on investment: (won amount - actual cost) / actual cost, both in the corporate currency; NULL while the actual cost is 0';
COMMENT ON COLUMN crm.campaign_performance.currency IS 'Currency of the attributed deals when they all share one; NULL when mixed or none';
COMMENT ON COLUMN crm.campaign_performance.opportunity_amount_in_currency IS 'Amount of all attributed opportunities in that currency (NULL when mixed)';
COMMENT ON COLUMN crm.campaign_performance.won_amount_in_currency IS 'Amount of the won ones in that currency (NULL when mixed)';


CREATE OR REPLACE VIEW crm.loss_analysis WITH (security_invoker = true) AS
    SELECT o.loss_reason_code AS reason,
           r.label AS reason_label,
           o.owner,
           pg_catalog.date_trunc('month', o.closed_at)::date AS month,
           pg_catalog.count(*) AS deals,
           pg_catalog.round(pg_catalog.sum(o.amount OPERATOR(pg_catalog.*) crm.exchange_rate_on(o.currency, o.close_date)), 2) AS amount,
           CASE WHEN pg_catalog.min(o.currency) OPERATOR(pg_catalog.=) pg_catalog.max(o.currency) THEN pg_catalog.min(o.currency) END AS currency,
           CASE WHEN pg_catalog.min(o.currency) OPERATOR(pg_catalog.=) pg_catalog.max(o.currency) THEN pg_catalog.sum(o.amount) END AS amount_in_currency
      FROM crm.opportunity AS o
      JOIN crm.loss_reason AS r ON r.code OPERATOR(pg_catalog.=) o.loss_reason_code
     GROUP BY o.loss_reason_code, r.label, o.owner, pg_catalog.date_trunc('month', o.closed_at)::date;
COMMENT ON VIEW crm.loss_analysis IS 'Lost deals by loss reason, owner and month of close (in the session time zone): how many and their amount in the corporate currency (each deal at the rate of its close date), and in the deals'' currency when they share one; each role sees the deals it may read';
COMMENT ON COLUMN crm.loss_analysis.reason IS 'Loss reason code';
COMMENT ON COLUMN crm.loss_analysis.reason_label IS 'Loss reason as shown to users';
COMMENT ON COLUMN crm.loss_analysis.owner IS 'Owner of the lost deals';
COMMENT ON COLUMN crm.loss_analysis.month IS 'First day of the month the deals were closed in';
COMMENT ON COLUMN crm.loss_analysis.deals IS 'Number of deals lost';
COMMENT ON COLUMN crm.loss_analysis.amount IS 'Sum of their amounts, in the corporate currency';
COMMENT ON COLUMN crm.loss_analysis.currency IS 'Currency of the deals when they all share one; NULL when mixed';
COMMENT ON COLUMN crm.loss_analysis.amount_in_currency IS 'Sum of their amounts in that currency (NULL when mixed)';

CREATE OR REPLACE FUNCTION crm.verify_aggregates()
    RETURNS TABLE (aggregate text, group_key jsonb, measure text, kept numeric, actual numeric)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH converted AS (
        SELECT o.stage, o.owner, o.currency, o.account_id, o.campaign_id, s.is_closed, s.is_won,
               o.amount OPERATOR(pg_catalog.*) r.rate AS amount,
               pg_catalog.round(o.amount OPERATOR(pg_catalog.*) COALESCE(o.probability, 0) OPERATOR(pg_catalog./) 100, 2)
                   OPERATOR(pg_catalog.*) r.rate AS weighted_amount
          FROM crm.opportunity AS o
          JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) o.stage
         CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(o.currency, o.close_date) AS rate) AS r)
    SELECT v.aggregate, v.group_key, v.measure, v.kept, v.actual
      FROM (SELECT c.aggregate, c.group_key, m.measure, m.kept, m.actual
              FROM crm.aggregates_compared AS c
             CROSS JOIN LATERAL (VALUES ('items', c.kept_items, c.actual_items),
                                        ('amount', c.kept_amount, c.actual_amount),
                                        ('weighted_amount', c.kept_weighted_amount, c.actual_weighted_amount))
                                AS m (measure, kept, actual)
            UNION ALL
            SELECT 'pipeline_by_stage', pg_catalog.jsonb_build_object('stage', COALESCE(k.stage, a.stage),
                       'owner', COALESCE(k.owner, a.owner), 'currency', COALESCE(k.currency, a.currency)),
                   m.measure, m.kept, m.actual
              FROM (SELECT p.stage, p.owner, p.currency, p.opportunities, p.amount, p.weighted_amount
                      FROM crm.pipeline_by_stage AS p) AS k
              FULL JOIN (SELECT o.stage, o.owner, o.currency, pg_catalog.count(*) AS opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount), 2) AS amount,
                                pg_catalog.round(pg_catalog.sum(o.weighted_amount), 2) AS weighted_amount
                           FROM converted AS o
                          GROUP BY o.stage, o.owner, o.currency) AS a
                ON a.stage OPERATOR(pg_catalog.=) k.stage AND a.owner OPERATOR(pg_catalog.=) k.owner
               AND a.currency OPERATOR(pg_catalog.=) k.currency
             CROSS JOIN LATERAL (VALUES ('items', COALESCE(k.opportunities, 0)::numeric, COALESCE(a.opportunities, 0)::numeric),
                                        ('amount', COALESCE(k.amount, 0), COALESCE(a.amount, 0)),
                                        ('weighted_amount', COALESCE(k.weighted_amount, 0), COALESCE(a.weighted_amount, 0)))
                                AS m (measure, kept, actual)
            UNION ALL
            SELECT 'account_rollup', pg_catalog.jsonb_build_object('account_id', COALESCE(k.account_id, a.account_id)),
                   m.measure, m.kept, m.actual
              FROM (SELECT r.account_id, r.open_opportunities, r.open_amount, r.won_opportunities, r.won_amount
                      FROM crm.account_rollup AS r) AS k
              FULL JOIN (SELECT o.account_id,
                                pg_catalog.count(*) FILTER (WHERE NOT o.is_closed) AS open_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE NOT o.is_closed), 2) AS open_amount,
                                pg_catalog.count(*) FILTER (WHERE o.is_won) AS won_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE o.is_won), 2) AS won_amount
                           FROM converted AS o
                          WHERE o.account_id IS NOT NULL
                          GROUP BY o.account_id) AS a
                ON a.account_id OPERATOR(pg_catalog.=) k.account_id
             CROSS JOIN LATERAL (VALUES ('open_opportunities', COALESCE(k.open_opportunities, 0)::numeric, COALESCE(a.open_opportunities, 0)::numeric),
                                        ('open_amount', COALESCE(k.open_amount, 0), COALESCE(a.open_amount, 0)),
                                        ('won_opportunities', COALESCE(k.won_opportunities, 0)::numeric, COALESCE(a.won_opportunities, 0)::numeric),
                                        ('won_amount', COALESCE(k.won_amount, 0), COALESCE(a.won_amount, 0)))
                                AS m (measure, kept, actual)
            UNION ALL
            SELECT 'campaign_performance', pg_catalog.jsonb_build_object('campaign_id', COALESCE(k.campaign_id, a.campaign_id)),
                   m.measure, m.kept, m.actual
              FROM (SELECT p.campaign_id, p.opportunities, p.won_opportunities, p.opportunity_amount, p.won_amount
                      FROM crm.campaign_performance AS p) AS k
              FULL JOIN (SELECT o.campaign_id, pg_catalog.count(*) AS opportunities,
                                pg_catalog.count(*) FILTER (WHERE o.is_won) AS won_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount), 2) AS opportunity_amount,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE o.is_won), 2) AS won_amount
                           FROM converted AS o
                          WHERE o.campaign_id IS NOT NULL
                          GROUP BY o.campaign_id) AS a
                ON a.campaign_id OPERATOR(pg_catalog.=) k.campaign_id
             CROSS JOIN LATERAL (VALUES ('opportunities', COALESCE(k.opportunities, 0)::numeric, COALESCE(a.opportunities, 0)::numeric),
                                        ('won_opportunities', COALESCE(k.won_opportunities, 0)::numeric, COALESCE(a.won_opportunities, 0)::numeric),
                                        ('opportunity_amount', COALESCE(k.opportunity_amount, 0), COALESCE(a.opportunity_amount, 0)),
                                        ('won_amount', COALESCE(k.won_amount, 0), COALESCE(a.won_amount, 0)))
                                AS m (measure, kept, actual)) AS v
     WHERE v.kept OPERATOR(pg_catalog.<>) v.actual
     ORDER BY v.aggregate, v.group_key::text, v.measure;
END;
COMMENT ON FUNCTION crm.verify_aggregates() IS 'One row per group and measure where a maintained aggregate differs from a fresh GROUP BY over the base tables, or where a report converted to the corporate currency at read time (pipeline_by_stage per stage, owner and currency; account_rollup per account; campaign_performance per campaign) differs from a GROUP BY converting each opportunity at the rate of its close date (aggregate names the report); no rows: all exact. ZC120 when a rate is missing. Reads every opportunity: for checking, as an admin (who sees every row)';

-- crm.quote_to_order converts each order at the rate of the day it was made.
-- A fresh install grants this before the column grants of writers on these
-- columns: those are taken back and given again after it, in their order,
-- so that the columns' privileges read as a fresh install's.
DO $analyst_orders$
DECLARE
    g record;
    regrant text[] := '{}';
BEGIN
    FOR g IN
        SELECT pg_catalog.quote_ident(att.attname) AS col, a.privilege_type AS priv,
               pg_catalog.quote_ident(r.rolname) AS grantee
          FROM pg_catalog.pg_attribute AS att
         CROSS JOIN LATERAL pg_catalog.aclexplode(att.attacl) WITH ORDINALITY AS a
          JOIN pg_catalog.pg_roles AS r ON r.oid OPERATOR(pg_catalog.=) a.grantee
         WHERE att.attrelid OPERATOR(pg_catalog.=) 'crm.sales_order'::pg_catalog.regclass
           AND att.attname OPERATOR(pg_catalog.=) ANY (ARRAY['currency', 'created_at']::pg_catalog.name[])
           AND a.grantee OPERATOR(pg_catalog.<>) a.grantor
         ORDER BY att.attname, a.ordinality
    LOOP
        EXECUTE pg_catalog.format('REVOKE %s (%s) ON crm.sales_order FROM %s', g.priv, g.col, g.grantee);
        regrant := regrant OPERATOR(pg_catalog.||) pg_catalog.format('GRANT %s (%s) ON crm.sales_order TO %s', g.priv, g.col, g.grantee);
    END LOOP;
    GRANT SELECT (currency, created_at) ON crm.sales_order TO crm_analyst;
    FOR i IN 1 .. COALESCE(pg_catalog.array_length(regrant, 1), 0) LOOP
        EXECUTE regrant[i];
    END LOOP;
END
$analyst_orders$;

-- Deals by owner and close date (crm.quota_attainment, crm.sales_performance).
DROP INDEX crm.opportunity_owner_idx;
CREATE INDEX opportunity_owner_close_date_idx ON crm.opportunity (owner, close_date);
COMMENT ON INDEX crm.opportunity_owner_close_date_idx IS 'Deals by owner, and by owner and close date: a rep''s deals, and the deals of an owner closing in a quota period (crm.quota_attainment), by one index range scan';

-- == currency triggers in C: currency and quota rules (src/currencies.c, src/quotas.c; 72_currencies.sql, 97_quotas.sql) ==
-- The PL/pgSQL functions of the sections "currency" and "quotas" above,
-- replaced by the C ones (same names, signatures, comments and grants;
-- SECURITY INVOKER without a search_path setting: the C code raises
-- privileges per statement and names everything with its schema).
CREATE OR REPLACE FUNCTION crm.exchange_rate_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_exchange_rate_guard'
    LANGUAGE C;
CREATE OR REPLACE FUNCTION crm.settings_currency_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_settings_currency_guard'
    LANGUAGE C;
CREATE OR REPLACE FUNCTION crm.exchange_rate_on(currency text, day date) RETURNS numeric
    AS 'MODULE_PATHNAME', 'crm_exchange_rate_on'
    LANGUAGE C STABLE;
CREATE OR REPLACE FUNCTION crm.currency_from_price_book() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_currency_from_price_book'
    LANGUAGE C;
CREATE OR REPLACE FUNCTION crm.sales_order_currency() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_sales_order_currency'
    LANGUAGE C;
CREATE OR REPLACE FUNCTION crm.price_book_currency_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_price_book_currency_guard'
    LANGUAGE C;
CREATE OR REPLACE FUNCTION crm.quota_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_quota_guard'
    LANGUAGE C;
-- A deal or quota the reports cannot convert is refused (ZC120): the
-- triggers also fire on a change of the close date and of a quota's currency.
DROP TRIGGER currency_from_price_book ON crm.opportunity;
CREATE TRIGGER currency_from_price_book BEFORE INSERT OR UPDATE OF price_book_id, currency, close_date ON crm.opportunity
    FOR EACH ROW EXECUTE FUNCTION crm.currency_from_price_book();
DROP TRIGGER quota_guard ON crm.quota;
CREATE TRIGGER quota_guard BEFORE INSERT OR UPDATE OF owner, period_start, period_end, currency ON crm.quota
    FOR EACH ROW EXECUTE FUNCTION crm.quota_guard();
COMMENT ON FUNCTION crm.currency_from_price_book() IS 'BEFORE trigger on crm.opportunity and crm.quote: a row with a price book takes the book''s currency; a deal needs a rate of its currency valid on its close date (ZC120)';
COMMENT ON FUNCTION crm.quota_guard() IS 'BEFORE trigger on crm.quota: the periods of one owner never overlap (23P01); the currency has a rate on period_start (ZC120)';

-- == owner: owners as role names (text) in every view (issue 22 §3, issue 24 goal 3; 30_history, 80_activities, 88_aggregates, 90_reports, 97_privacy, 97_quotas) ==
-- A view column's type cannot change in place: the views with an owner
-- (and crm.verify_aggregates(), whose body reads three of them) are dropped
-- and created again, dependent views after the ones they read.  Their
-- comments and grants (columns too) are kept: written down before the drop,
-- applied again after; the owner columns then get their new comments.
DO $owner_keep$
DECLARE
    views constant text[] := ARRAY['pipeline_totals', 'pipeline_by_stage', 'forecast_by_month', 'overdue_task', 'overdue_tasks_by_owner', 'account_rollup', 'campaign_performance', 'contactable', 'lead_follow_up', 'lead_update_log', 'loss_analysis', 'quota_attainment', 'sales_performance'];
    kept text[];
BEGIN
    SELECT pg_catalog.array_agg(k.stmt) INTO kept
      FROM (SELECT pg_catalog.format('COMMENT ON %s %s IS %L',
                                     CASE WHEN d.objsubid OPERATOR(pg_catalog.=) 0 THEN 'VIEW' ELSE 'COLUMN' END,
                                     c.oid::pg_catalog.regclass::text OPERATOR(pg_catalog.||)
                                     COALESCE('.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(a.attname), ''),
                                     d.description) AS stmt
              FROM pg_catalog.pg_class AS c
              JOIN pg_catalog.pg_description AS d
                ON d.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objoid OPERATOR(pg_catalog.=) c.oid
              LEFT JOIN pg_catalog.pg_attribute AS a
                ON a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.=) d.objsubid AND d.objsubid OPERATOR(pg_catalog.<>) 0
             WHERE c.relnamespace OPERATOR(pg_catalog.=) 'crm'::pg_catalog.regnamespace AND c.relname OPERATOR(pg_catalog.=) ANY (views)
            UNION ALL
            SELECT pg_catalog.format('GRANT %s %s ON %s TO %s%s', x.privilege_type,
                                     COALESCE('(' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(a.attname) OPERATOR(pg_catalog.||) ')', ''),
                                     c.oid::pg_catalog.regclass,
                                     CASE WHEN x.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                                          ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(x.grantee)) END,
                                     CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
              FROM pg_catalog.pg_class AS c
              LEFT JOIN pg_catalog.pg_attribute AS a
                ON a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0 AND a.attacl IS NOT NULL
             CROSS JOIN LATERAL pg_catalog.aclexplode(COALESCE(a.attacl, c.relacl)) AS x
             WHERE c.relnamespace OPERATOR(pg_catalog.=) 'crm'::pg_catalog.regnamespace AND c.relname OPERATOR(pg_catalog.=) ANY (views)
               AND x.grantee OPERATOR(pg_catalog.<>) c.relowner
            UNION ALL
            SELECT pg_catalog.format('GRANT %s ON FUNCTION crm.verify_aggregates() TO %s', x.privilege_type,
                                     CASE WHEN x.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                                          ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(x.grantee)) END)
              FROM pg_catalog.aclexplode((SELECT p.proacl FROM pg_catalog.pg_proc AS p
                                           WHERE p.oid OPERATOR(pg_catalog.=) 'crm.verify_aggregates()'::pg_catalog.regprocedure)) AS x
             WHERE x.grantee OPERATOR(pg_catalog.<>) (SELECT p.proowner FROM pg_catalog.pg_proc AS p
                                                        WHERE p.oid OPERATOR(pg_catalog.=) 'crm.verify_aggregates()'::pg_catalog.regprocedure)
            UNION ALL
            SELECT pg_catalog.format('COMMENT ON FUNCTION crm.verify_aggregates() IS %L',
                                     pg_catalog.obj_description('crm.verify_aggregates()'::pg_catalog.regprocedure, 'pg_proc'))) AS k;
    PERFORM pg_catalog.set_config('crm_update.owner_views_kept', pg_catalog.array_to_json(kept)::text, true);
END
$owner_keep$;
DROP FUNCTION crm.verify_aggregates();
DROP VIEW crm.forecast_by_month, crm.pipeline_by_stage, crm.pipeline_totals, crm.overdue_tasks_by_owner, crm.overdue_task,
    crm.account_rollup, crm.campaign_performance, crm.contactable, crm.lead_follow_up, crm.lead_update_log,
    crm.loss_analysis, crm.quota_attainment, crm.sales_performance;

CREATE VIEW crm.pipeline_totals WITH (security_invoker = true) AS
    SELECT a.stage, pg_catalog.pg_get_userbyid(a.owner)::text AS owner, NULLIF(a.close_month, 'infinity'::pg_catalog.date) AS close_month, a.currency,
           pg_catalog.sum(a.opportunities) AS opportunities, pg_catalog.sum(a.amount) AS amount,
           pg_catalog.sum(a.weighted_amount) AS weighted_amount
      FROM crm.pipeline_aggregate AS a
     GROUP BY a.stage, a.owner, a.close_month, a.currency
    HAVING pg_catalog.sum(a.opportunities) OPERATOR(pg_catalog.<>) 0;

CREATE VIEW crm.pipeline_by_stage WITH (security_invoker = true) AS
    SELECT s.sort_order, s.name AS stage, s.is_closed, s.is_won, t.owner,
           pg_catalog.sum(t.opportunities) AS opportunities,
           pg_catalog.round(pg_catalog.sum(t.amount OPERATOR(pg_catalog.*) r.rate), 2) AS amount,
           pg_catalog.round(pg_catalog.sum(t.weighted_amount OPERATOR(pg_catalog.*) r.rate), 2) AS weighted_amount,
           t.currency,
           pg_catalog.sum(t.amount) AS amount_in_currency,
           pg_catalog.sum(t.weighted_amount) AS weighted_amount_in_currency
      FROM crm.pipeline_totals AS t JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) t.stage
     CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(t.currency, NULLIF(t.close_month, 'infinity'::date)) AS rate) AS r
     GROUP BY s.sort_order, s.name, s.is_closed, s.is_won, t.owner, t.currency;

CREATE VIEW crm.forecast_by_month WITH (security_invoker = true) AS
    SELECT NULLIF(t.close_month, 'infinity'::date) AS close_month,
           s.forecast_category, t.owner,
           pg_catalog.sum(t.opportunities) AS opportunities,
           pg_catalog.round(pg_catalog.sum(t.amount OPERATOR(pg_catalog.*) r.rate), 2) AS amount,
           pg_catalog.round(pg_catalog.sum(t.weighted_amount OPERATOR(pg_catalog.*) r.rate), 2) AS weighted_amount,
           t.currency,
           pg_catalog.sum(t.amount) AS amount_in_currency,
           pg_catalog.sum(t.weighted_amount) AS weighted_amount_in_currency
      FROM crm.pipeline_totals AS t JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) t.stage
     CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(t.currency, NULLIF(t.close_month, 'infinity'::date)) AS rate) AS r
     WHERE NOT s.is_closed OR s.is_won
     GROUP BY 1, s.forecast_category, t.owner, t.currency;

CREATE VIEW crm.overdue_task WITH (security_invoker = true) AS
    SELECT a.id AS activity_id, pg_catalog.pg_get_userbyid(a.owner)::text AS owner, a.subject, a.priority, a.due_at,
           pg_catalog.now() OPERATOR(pg_catalog.-) a.due_at AS overdue_by,
           a.lead_id, a.account_id, a.contact_id, a.opportunity_id
      FROM crm.activity AS a
     WHERE a.type OPERATOR(pg_catalog.=) 'task'::crm.activity_type
       AND a.status OPERATOR(pg_catalog.<>) ALL (ARRAY['Completed', 'Cancelled']::crm.activity_status[])
       AND a.due_at OPERATOR(pg_catalog.<) pg_catalog.now();

CREATE VIEW crm.overdue_tasks_by_owner WITH (security_invoker = true) AS
    SELECT o.owner, pg_catalog.count(*) AS overdue_tasks, pg_catalog.min(o.due_at) AS oldest_due_at,
           pg_catalog.count(*) FILTER (WHERE o.priority OPERATOR(pg_catalog.>=) 'High'::crm.activity_priority) AS high_priority
      FROM crm.overdue_task AS o
     GROUP BY o.owner;

CREATE VIEW crm.account_rollup WITH (security_invoker = true) AS
    WITH account_groups AS (
        SELECT a.account_id, a.stage, a.close_month, a.currency,
               pg_catalog.sum(a.opportunities) AS opportunities, pg_catalog.sum(a.amount) AS amount
          FROM crm.account_aggregate AS a
          JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) a.stage
         WHERE s.is_won OR NOT s.is_closed
         GROUP BY a.account_id, a.stage, a.close_month, a.currency
        HAVING pg_catalog.sum(a.opportunities) OPERATOR(pg_catalog.<>) 0)
    SELECT ac.id AS account_id, ac.name, pg_catalog.pg_get_userbyid(ac.owner)::text AS owner,
           COALESCE(r.open_opportunities, 0) AS open_opportunities,
           COALESCE(r.open_amount, 0) AS open_amount,
           COALESCE(r.won_opportunities, 0) AS won_opportunities,
           COALESCE(r.won_amount, 0) AS won_amount,
           (SELECT pg_catalog.max(act.completed_at) FROM crm.activity AS act
             WHERE act.account_id OPERATOR(pg_catalog.=) ac.id) AS last_activity_at,
           r.currency, r.open_amount_in_currency, r.won_amount_in_currency
      FROM crm.account AS ac
      LEFT JOIN (SELECT g.account_id,
                        pg_catalog.sum(g.opportunities) FILTER (WHERE NOT s.is_closed) AS open_opportunities,
                        pg_catalog.round(pg_catalog.sum(g.amount OPERATOR(pg_catalog.*) x.rate) FILTER (WHERE NOT s.is_closed), 2) AS open_amount,
                        pg_catalog.sum(g.opportunities) FILTER (WHERE s.is_won) AS won_opportunities,
                        pg_catalog.round(pg_catalog.sum(g.amount OPERATOR(pg_catalog.*) x.rate) FILTER (WHERE s.is_won), 2) AS won_amount,
                        CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                             THEN pg_catalog.min(g.currency) END AS currency,
                        CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                             THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE NOT s.is_closed), 0) END AS open_amount_in_currency,
                        CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                             THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE s.is_won), 0) END AS won_amount_in_currency
                   FROM account_groups AS g
                   JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) g.stage
                   JOIN (SELECT c.currency, c.close_month,
                                crm.exchange_rate_on(c.currency, NULLIF(c.close_month, 'infinity'::pg_catalog.date)) AS rate
                           FROM (SELECT DISTINCT a.currency, a.close_month FROM account_groups AS a) AS c) AS x
                     ON x.currency OPERATOR(pg_catalog.=) g.currency AND x.close_month OPERATOR(pg_catalog.=) g.close_month
                  GROUP BY g.account_id) AS r
        ON r.account_id OPERATOR(pg_catalog.=) ac.id;

CREATE VIEW crm.campaign_performance WITH (security_invoker = true) AS
    WITH campaign_groups AS (
        SELECT a.campaign_id, a.stage, a.close_month, a.currency,
               pg_catalog.sum(a.opportunities) AS opportunities, pg_catalog.sum(a.amount) AS amount
          FROM crm.campaign_opportunity_aggregate AS a
         GROUP BY a.campaign_id, a.stage, a.close_month, a.currency
        HAVING pg_catalog.sum(a.opportunities) OPERATOR(pg_catalog.<>) 0)
    SELECT c.id AS campaign_id, c.name, c.type, c.status, pg_catalog.pg_get_userbyid(c.owner)::text AS owner,
           c.budgeted_cost, c.actual_cost, c.expected_revenue,
           COALESCE(l.leads, 0) AS leads,
           COALESCE(l.converted_leads, 0) AS converted_leads,
           COALESCE(o.opportunities, 0) AS opportunities,
           COALESCE(o.won_opportunities, 0) AS won_opportunities,
           COALESCE(o.amount, 0) AS opportunity_amount,
           COALESCE(o.won_amount, 0) AS won_amount,
           CASE WHEN c.actual_cost OPERATOR(pg_catalog.>) 0
                THEN pg_catalog.round((COALESCE(o.won_amount, 0) OPERATOR(pg_catalog.-) c.actual_cost)
                                      OPERATOR(pg_catalog./) c.actual_cost, 4)
           END AS roi,
           o.currency, o.amount_in_currency AS opportunity_amount_in_currency, o.won_amount_in_currency
      FROM crm.campaign AS c
      LEFT JOIN (SELECT g.campaign_id, pg_catalog.sum(g.leads) AS leads,
                        pg_catalog.sum(g.leads) FILTER (WHERE g.status OPERATOR(pg_catalog.=) 'Converted'::crm.lead_status) AS converted_leads
                   FROM crm.campaign_lead_aggregate AS g GROUP BY g.campaign_id) AS l
        ON l.campaign_id OPERATOR(pg_catalog.=) c.id
      LEFT JOIN (SELECT g.campaign_id, pg_catalog.sum(g.opportunities) AS opportunities,
                        pg_catalog.sum(g.opportunities) FILTER (WHERE s.is_won) AS won_opportunities,
                        pg_catalog.round(pg_catalog.sum(g.amount OPERATOR(pg_catalog.*) x.rate), 2) AS amount,
                        pg_catalog.round(pg_catalog.sum(g.amount OPERATOR(pg_catalog.*) x.rate) FILTER (WHERE s.is_won), 2) AS won_amount,
                        CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                             THEN pg_catalog.min(g.currency) END AS currency,
                        CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                             THEN pg_catalog.sum(g.amount) END AS amount_in_currency,
                        CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                             THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE s.is_won), 0) END AS won_amount_in_currency
                   FROM campaign_groups AS g
                   JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) g.stage
                   JOIN (SELECT c.currency, c.close_month,
                                crm.exchange_rate_on(c.currency, NULLIF(c.close_month, 'infinity'::pg_catalog.date)) AS rate
                           FROM (SELECT DISTINCT a.currency, a.close_month FROM campaign_groups AS a) AS c) AS x
                     ON x.currency OPERATOR(pg_catalog.=) g.currency AND x.close_month OPERATOR(pg_catalog.=) g.close_month
                  GROUP BY g.campaign_id) AS o
        ON o.campaign_id OPERATOR(pg_catalog.=) c.id;

CREATE VIEW crm.contactable WITH (security_invoker = true) AS
    SELECT 'lead'::text AS record_type, l.id AS record_id, l.name,
           CASE WHEN NOT l.email_opt_out THEN l.email::text END AS email,
           CASE WHEN NOT l.phone_opt_out THEN l.phone::text END AS phone,
           l.consent_basis, pg_catalog.pg_get_userbyid(l.owner)::text AS owner
      FROM crm.lead AS l
     WHERE NOT l.do_not_contact
       AND l.status OPERATOR(pg_catalog.<>) 'Converted'::crm.lead_status
       AND ((NOT l.email_opt_out AND l.email IS NOT NULL) OR (NOT l.phone_opt_out AND l.phone IS NOT NULL))
    UNION ALL
    SELECT 'contact'::text, c.id, c.name,
           CASE WHEN NOT c.email_opt_out THEN c.email::text END,
           CASE WHEN NOT c.phone_opt_out THEN c.phone::text END,
           c.consent_basis, pg_catalog.pg_get_userbyid(c.owner)::text
      FROM crm.contact AS c
     WHERE NOT c.do_not_contact
       AND ((NOT c.email_opt_out AND c.email IS NOT NULL) OR (NOT c.phone_opt_out AND c.phone IS NOT NULL));

CREATE VIEW crm.lead_follow_up WITH (security_invoker = true) AS
    SELECT l.id AS lead_id, l.name, l.status, pg_catalog.pg_get_userbyid(l.owner)::text AS owner,
           (SELECT pg_catalog.max(a.completed_at) FROM crm.activity AS a
             WHERE a.lead_id OPERATOR(pg_catalog.=) l.id
               AND a.status OPERATOR(pg_catalog.=) 'Completed'::crm.activity_status) AS last_follow_up_at,
           (SELECT pg_catalog.min(COALESCE(a.starts_at, a.due_at)) FROM crm.activity AS a
             WHERE a.lead_id OPERATOR(pg_catalog.=) l.id
               AND a.status OPERATOR(pg_catalog.<>) ALL (ARRAY['Completed', 'Cancelled']::crm.activity_status[])) AS next_follow_up_at,
           (SELECT pg_catalog.count(*) FROM crm.activity AS a
             WHERE a.lead_id OPERATOR(pg_catalog.=) l.id) AS activities
      FROM crm.lead AS l;

CREATE VIEW crm.lead_update_log WITH (security_invoker = true) AS
    SELECT c.id, c.row_id AS lead_id, c.operation, c.changes, c.changed_at,
           pg_catalog.pg_get_userbyid(c.changed_by)::text AS changed_by
      FROM crm.change_log AS c
     WHERE c.table_name OPERATOR(pg_catalog.=) 'crm.lead'::regclass;

CREATE VIEW crm.loss_analysis WITH (security_invoker = true) AS
    SELECT o.loss_reason_code AS reason,
           r.label AS reason_label,
           pg_catalog.pg_get_userbyid(o.owner)::text AS owner,
           pg_catalog.date_trunc('month', o.closed_at)::date AS month,
           pg_catalog.count(*) AS deals,
           pg_catalog.round(pg_catalog.sum(o.amount OPERATOR(pg_catalog.*) crm.exchange_rate_on(o.currency, o.close_date)), 2) AS amount,
           CASE WHEN pg_catalog.min(o.currency) OPERATOR(pg_catalog.=) pg_catalog.max(o.currency) THEN pg_catalog.min(o.currency) END AS currency,
           CASE WHEN pg_catalog.min(o.currency) OPERATOR(pg_catalog.=) pg_catalog.max(o.currency) THEN pg_catalog.sum(o.amount) END AS amount_in_currency
      FROM crm.opportunity AS o
      JOIN crm.loss_reason AS r ON r.code OPERATOR(pg_catalog.=) o.loss_reason_code
     GROUP BY o.loss_reason_code, r.label, o.owner, pg_catalog.date_trunc('month', o.closed_at)::date;

CREATE VIEW crm.quota_attainment WITH (security_invoker = true) AS
    WITH per_quota AS (
        SELECT q.owner, q.period_start, q.period_end,
               q.amount OPERATOR(pg_catalog.*) crm.exchange_rate_on(q.currency, q.period_start) AS quota,
               COALESCE(d.won, 0) AS won, COALESCE(d.open, 0) AS open, COALESCE(d.weighted, 0) AS weighted
          FROM crm.quota AS q
          LEFT JOIN LATERAL (
               SELECT pg_catalog.sum(o.amount OPERATOR(pg_catalog.*) r.rate) FILTER (WHERE s.is_won) AS won,
                      pg_catalog.sum(o.amount OPERATOR(pg_catalog.*) r.rate) FILTER (WHERE NOT s.is_closed) AS open,
                      pg_catalog.sum(pg_catalog.round(o.amount OPERATOR(pg_catalog.*) COALESCE(o.probability, 0)
                                                      OPERATOR(pg_catalog./) 100, 2) OPERATOR(pg_catalog.*) r.rate)
                          FILTER (WHERE NOT s.is_closed) AS weighted
                 FROM crm.opportunity AS o
                 JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) o.stage
                CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(o.currency, o.close_date) AS rate) AS r
                WHERE o.owner OPERATOR(pg_catalog.=) q.owner
                  AND o.close_date BETWEEN q.period_start AND q.period_end
                  AND (s.is_won OR NOT s.is_closed)) AS d ON true)
    SELECT pg_catalog.pg_get_userbyid(p.owner)::text AS owner, p.period_start, p.period_end,
           pg_catalog.round(pg_catalog.sum(p.quota), 2) AS quota,
           pg_catalog.round(pg_catalog.sum(p.won), 2) AS won_amount,
           pg_catalog.round(pg_catalog.sum(p.won) OPERATOR(pg_catalog./) pg_catalog.sum(p.quota), 4) AS attainment,
           pg_catalog.round(pg_catalog.sum(p.open), 2) AS open_pipeline,
           pg_catalog.round(pg_catalog.sum(p.weighted), 2) AS weighted_pipeline,
           CASE WHEN pg_catalog.sum(p.quota) OPERATOR(pg_catalog.>) pg_catalog.sum(p.won)
                THEN pg_catalog.round(pg_catalog.sum(p.open) OPERATOR(pg_catalog./)
                                      (pg_catalog.sum(p.quota) OPERATOR(pg_catalog.-) pg_catalog.sum(p.won)), 4)
           END AS pipeline_coverage
      FROM per_quota AS p
     GROUP BY GROUPING SETS ((p.owner, p.period_start, p.period_end), (p.period_start, p.period_end));

CREATE VIEW crm.sales_performance WITH (security_invoker = true) AS
    SELECT pg_catalog.pg_get_userbyid(o.owner)::text AS owner, pg_catalog.date_trunc('month', o.closed_at)::date AS period,
           pg_catalog.count(*) FILTER (WHERE s.is_won) AS won,
           pg_catalog.count(*) FILTER (WHERE NOT s.is_won) AS lost,
           COALESCE(pg_catalog.round(pg_catalog.sum(o.amount OPERATOR(pg_catalog.*) x.rate) FILTER (WHERE s.is_won), 2), 0) AS won_amount,
           pg_catalog.round(pg_catalog.count(*) FILTER (WHERE s.is_won)::numeric OPERATOR(pg_catalog./) pg_catalog.count(*), 4) AS win_rate,
           pg_catalog.round(pg_catalog.avg(o.amount OPERATOR(pg_catalog.*) x.rate) FILTER (WHERE s.is_won), 2) AS average_deal_size,
           pg_catalog.round((pg_catalog.avg(pg_catalog.date_part('epoch', o.closed_at OPERATOR(pg_catalog.-) o.created_at))
                             FILTER (WHERE s.is_won) OPERATOR(pg_catalog./) 86400)::numeric, 1) AS average_cycle_days,
           CASE WHEN pg_catalog.min(o.currency) FILTER (WHERE s.is_won) OPERATOR(pg_catalog.=) pg_catalog.max(o.currency) FILTER (WHERE s.is_won)
                THEN pg_catalog.min(o.currency) FILTER (WHERE s.is_won) END AS currency,
           CASE WHEN pg_catalog.min(o.currency) FILTER (WHERE s.is_won) OPERATOR(pg_catalog.=) pg_catalog.max(o.currency) FILTER (WHERE s.is_won)
                THEN pg_catalog.sum(o.amount) FILTER (WHERE s.is_won) END AS won_amount_in_currency
      FROM crm.opportunity AS o JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) o.stage
     CROSS JOIN LATERAL (SELECT CASE WHEN s.is_won THEN crm.exchange_rate_on(o.currency, o.close_date) END AS rate) AS x
     WHERE s.is_closed AND o.closed_at IS NOT NULL
     GROUP BY o.owner, 2;

CREATE FUNCTION crm.verify_aggregates()
    RETURNS TABLE (aggregate text, group_key jsonb, measure text, kept numeric, actual numeric)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH converted AS (
        SELECT o.stage, o.owner, o.currency, o.account_id, o.campaign_id, s.is_closed, s.is_won,
               o.amount OPERATOR(pg_catalog.*) r.rate AS amount,
               pg_catalog.round(o.amount OPERATOR(pg_catalog.*) COALESCE(o.probability, 0) OPERATOR(pg_catalog./) 100, 2)
                   OPERATOR(pg_catalog.*) r.rate AS weighted_amount
          FROM crm.opportunity AS o
          JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) o.stage
         CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(o.currency, o.close_date) AS rate) AS r)
    SELECT v.aggregate, v.group_key, v.measure, v.kept, v.actual
      FROM (SELECT c.aggregate, c.group_key, m.measure, m.kept, m.actual
              FROM crm.aggregates_compared AS c
             CROSS JOIN LATERAL (VALUES ('items', c.kept_items, c.actual_items),
                                        ('amount', c.kept_amount, c.actual_amount),
                                        ('weighted_amount', c.kept_weighted_amount, c.actual_weighted_amount))
                                AS m (measure, kept, actual)
            UNION ALL
            SELECT 'pipeline_by_stage', pg_catalog.jsonb_build_object('stage', COALESCE(k.stage, a.stage),
                       'owner', COALESCE(k.owner, a.owner), 'currency', COALESCE(k.currency, a.currency)),
                   m.measure, m.kept, m.actual
              FROM (SELECT p.stage, p.owner, p.currency, p.opportunities, p.amount, p.weighted_amount
                      FROM crm.pipeline_by_stage AS p) AS k
              FULL JOIN (SELECT o.stage, pg_catalog.pg_get_userbyid(o.owner)::text AS owner, o.currency,
                                pg_catalog.count(*) AS opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount), 2) AS amount,
                                pg_catalog.round(pg_catalog.sum(o.weighted_amount), 2) AS weighted_amount
                           FROM converted AS o
                          GROUP BY o.stage, o.owner, o.currency) AS a
                ON a.stage OPERATOR(pg_catalog.=) k.stage AND a.owner OPERATOR(pg_catalog.=) k.owner
               AND a.currency OPERATOR(pg_catalog.=) k.currency
             CROSS JOIN LATERAL (VALUES ('items', COALESCE(k.opportunities, 0)::numeric, COALESCE(a.opportunities, 0)::numeric),
                                        ('amount', COALESCE(k.amount, 0), COALESCE(a.amount, 0)),
                                        ('weighted_amount', COALESCE(k.weighted_amount, 0), COALESCE(a.weighted_amount, 0)))
                                AS m (measure, kept, actual)
            UNION ALL
            SELECT 'account_rollup', pg_catalog.jsonb_build_object('account_id', COALESCE(k.account_id, a.account_id)),
                   m.measure, m.kept, m.actual
              FROM (SELECT r.account_id, r.open_opportunities, r.open_amount, r.won_opportunities, r.won_amount
                      FROM crm.account_rollup AS r) AS k
              FULL JOIN (SELECT o.account_id,
                                pg_catalog.count(*) FILTER (WHERE NOT o.is_closed) AS open_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE NOT o.is_closed), 2) AS open_amount,
                                pg_catalog.count(*) FILTER (WHERE o.is_won) AS won_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE o.is_won), 2) AS won_amount
                           FROM converted AS o
                          WHERE o.account_id IS NOT NULL
                          GROUP BY o.account_id) AS a
                ON a.account_id OPERATOR(pg_catalog.=) k.account_id
             CROSS JOIN LATERAL (VALUES ('open_opportunities', COALESCE(k.open_opportunities, 0)::numeric, COALESCE(a.open_opportunities, 0)::numeric),
                                        ('open_amount', COALESCE(k.open_amount, 0), COALESCE(a.open_amount, 0)),
                                        ('won_opportunities', COALESCE(k.won_opportunities, 0)::numeric, COALESCE(a.won_opportunities, 0)::numeric),
                                        ('won_amount', COALESCE(k.won_amount, 0), COALESCE(a.won_amount, 0)))
                                AS m (measure, kept, actual)
            UNION ALL
            SELECT 'campaign_performance', pg_catalog.jsonb_build_object('campaign_id', COALESCE(k.campaign_id, a.campaign_id)),
                   m.measure, m.kept, m.actual
              FROM (SELECT p.campaign_id, p.opportunities, p.won_opportunities, p.opportunity_amount, p.won_amount
                      FROM crm.campaign_performance AS p) AS k
              FULL JOIN (SELECT o.campaign_id, pg_catalog.count(*) AS opportunities,
                                pg_catalog.count(*) FILTER (WHERE o.is_won) AS won_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount), 2) AS opportunity_amount,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE o.is_won), 2) AS won_amount
                           FROM converted AS o
                          WHERE o.campaign_id IS NOT NULL
                          GROUP BY o.campaign_id) AS a
                ON a.campaign_id OPERATOR(pg_catalog.=) k.campaign_id
             CROSS JOIN LATERAL (VALUES ('opportunities', COALESCE(k.opportunities, 0)::numeric, COALESCE(a.opportunities, 0)::numeric),
                                        ('won_opportunities', COALESCE(k.won_opportunities, 0)::numeric, COALESCE(a.won_opportunities, 0)::numeric),
                                        ('opportunity_amount', COALESCE(k.opportunity_amount, 0), COALESCE(a.opportunity_amount, 0)),
                                        ('won_amount', COALESCE(k.won_amount, 0), COALESCE(a.won_amount, 0)))
                                AS m (measure, kept, actual)) AS v
     WHERE v.kept OPERATOR(pg_catalog.<>) v.actual
     ORDER BY v.aggregate, v.group_key::text, v.measure;
END;

REVOKE ALL ON FUNCTION crm.verify_aggregates() FROM PUBLIC;
DO $owner_restore$
DECLARE
    stmt text;
BEGIN
    FOR stmt IN SELECT pg_catalog.json_array_elements_text(pg_catalog.current_setting('crm_update.owner_views_kept')::pg_catalog.json)
    LOOP
        EXECUTE stmt;
    END LOOP;
END
$owner_restore$;

COMMENT ON COLUMN crm.pipeline_totals.owner IS 'Opportunity owner: the role''s name, as text (the aggregate keeps a regrole)';
COMMENT ON COLUMN crm.pipeline_by_stage.owner IS 'Opportunity owner: the role''s name, as text (crm.opportunity.owner is a regrole)';
COMMENT ON COLUMN crm.forecast_by_month.owner IS 'Opportunity owner: the role''s name, as text (crm.opportunity.owner is a regrole)';
COMMENT ON COLUMN crm.overdue_task.owner IS 'Who the task is assigned to: the role''s name, as text (crm.activity.owner is a regrole)';
COMMENT ON COLUMN crm.overdue_tasks_by_owner.owner IS 'Who the tasks are assigned to: the role''s name, as text (crm.activity.owner is a regrole)';
COMMENT ON COLUMN crm.account_rollup.owner IS 'Account owner: the role''s name, as text (crm.account.owner is a regrole)';
COMMENT ON COLUMN crm.campaign_performance.owner IS 'Who runs the campaign: the role''s name, as text (crm.campaign.owner is a regrole)';
COMMENT ON COLUMN crm.contactable.owner IS 'Owner of the lead or contact: the role''s name, as text (the tables keep a regrole)';
COMMENT ON COLUMN crm.lead_follow_up.owner IS 'Lead owner: the role''s name, as text (crm.lead.owner is a regrole)';
COMMENT ON COLUMN crm.lead_update_log.changed_by IS 'Who: the role''s name, as text (crm.change_log.changed_by is a regrole)';
COMMENT ON COLUMN crm.loss_analysis.owner IS 'Owner of the lost deals: the role''s name, as text (crm.opportunity.owner is a regrole)';
COMMENT ON COLUMN crm.quota_attainment.owner IS 'Quota owner: the role''s name, as text (crm.quota.owner is a regrole); NULL on the total row of the period';
COMMENT ON COLUMN crm.sales_performance.owner IS 'Opportunity owner: the role''s name, as text (crm.opportunity.owner is a regrole)';

-- == internal: the extension's internals in schema crm_internal (issue 24 §2; sql/install/11_internal_schema.sql) ==
-- Last in this script: every trigger function the sections above made moves
-- too.  Views, policies, defaults, triggers, indexes and SQL-standard
-- function bodies refer to the moved objects by OID and follow them; the
-- bodies kept as text (plpgsql, plain SQL) and the comments that name a
-- moved object are written again with its new name, as the install script
-- has them.
CREATE SCHEMA crm_internal;
COMMENT ON SCHEMA crm_internal IS 'Internals of extension crm (aggregate tables, transition tables, secrets, helper and trigger functions); not for direct use: read schema crm';
DO $internal$
DECLARE
    relations constant text[] := ARRAY['pipeline_aggregate', 'account_aggregate', 'campaign_opportunity_aggregate',
                                       'campaign_lead_aggregate', 'pipeline_actual', 'aggregates_compared',
                                       'quote_transition', 'order_transition', 'lock_key_secret', 'erasure_salt'];
    functions constant text[] := ARRAY['aggregate_definitions', 'aggregates_compaction_lock', 'erased_text', 'erased_value'];
    moved text[] := '{}';
    moved_triggers text[] := '{}';
    pattern text;
    o record;
    kind text;
BEGIN
    FOR o IN SELECT c.oid::pg_catalog.regclass AS rel, c.relkind, c.relname
               FROM pg_catalog.pg_class AS c
              WHERE c.relnamespace OPERATOR(pg_catalog.=) 'crm'::pg_catalog.regnamespace
                AND c.relname OPERATOR(pg_catalog.=) ANY (relations)
              ORDER BY c.relname
    LOOP
        EXECUTE pg_catalog.format('ALTER %s %s SET SCHEMA crm_internal',
                                  CASE o.relkind WHEN 'v' THEN 'VIEW' ELSE 'TABLE' END, o.rel);
        moved := moved OPERATOR(pg_catalog.||) o.relname::text;
    END LOOP;
    -- the listed functions and every trigger function
    FOR o IN SELECT p.oid::pg_catalog.regprocedure AS fn, p.proname
               FROM pg_catalog.pg_proc AS p
              WHERE p.pronamespace OPERATOR(pg_catalog.=) 'crm'::pg_catalog.regnamespace
                AND (p.proname OPERATOR(pg_catalog.=) ANY (functions)
                     OR p.prorettype OPERATOR(pg_catalog.=) 'pg_catalog.trigger'::pg_catalog.regtype)
              ORDER BY p.proname
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s SET SCHEMA crm_internal', o.fn);
        IF o.proname OPERATOR(pg_catalog.=) ANY (functions) THEN
            moved := moved OPERATOR(pg_catalog.||) o.proname::text;
        ELSE
            moved_triggers := moved_triggers OPERATOR(pg_catalog.||) o.proname::text;
        END IF;
    END LOOP;
    -- crm.<moved name>, not preceded by a word character or a dot; a trigger
    -- function only where called or declared, crm.X( (crm.participant_response
    -- is a type too)
    pattern := '(^|[^[:alnum:]_.])crm\.((?:' OPERATOR(pg_catalog.||) pg_catalog.array_to_string(moved, '|')
               OPERATOR(pg_catalog.||) ')\y|(?:' OPERATOR(pg_catalog.||) pg_catalog.array_to_string(moved_triggers, '|')
               OPERATOR(pg_catalog.||) ')(?=\s*\())';
    -- (the aggregate maintenance names the aggregate tables as crm.%I too,
    -- the base tables as format('crm.%I', d.source_table))
    FOR o IN SELECT p.oid, p.proname OPERATOR(pg_catalog.=) ANY (ARRAY['rebuild_aggregates', 'compact_aggregates']) AS maintenance
               FROM pg_catalog.pg_proc AS p JOIN pg_catalog.pg_language AS l ON l.oid OPERATOR(pg_catalog.=) p.prolang
              WHERE p.pronamespace OPERATOR(pg_catalog.=) ANY (ARRAY['crm', 'crm_internal']::pg_catalog.regnamespace[])
                AND p.prosqlbody IS NULL AND l.lanname OPERATOR(pg_catalog.<>) ALL (ARRAY['c', 'internal'])
                AND (p.prosrc OPERATOR(pg_catalog.~) pattern
                     OR p.proname OPERATOR(pg_catalog.=) ANY (ARRAY['rebuild_aggregates', 'compact_aggregates']))
    LOOP
        EXECUTE pg_catalog.regexp_replace(
                    CASE WHEN o.maintenance
                         THEN pg_catalog.regexp_replace(pg_catalog.pg_get_functiondef(o.oid),
                                                        '([^[:alnum:]_.])crm\.(%I|%1\$I)(?!'', d\.source_table)',
                                                        '\1crm_internal.\2', 'g')
                         ELSE pg_catalog.pg_get_functiondef(o.oid) END,
                    pattern, '\1crm_internal.\2', 'g');
    END LOOP;
    FOR o IN SELECT i.type, i.identity, d.description
               FROM pg_catalog.pg_description AS d
              CROSS JOIN LATERAL pg_catalog.pg_identify_object(d.classoid, d.objoid, d.objsubid) AS i
              WHERE i.schema OPERATOR(pg_catalog.=) ANY (ARRAY['crm', 'crm_internal'])
                AND d.description OPERATOR(pg_catalog.~) pattern
    LOOP
        kind := CASE o.type WHEN 'table column' THEN 'COLUMN' WHEN 'view column' THEN 'COLUMN'
                            WHEN 'table' THEN 'TABLE' WHEN 'view' THEN 'VIEW' WHEN 'function' THEN 'FUNCTION'
                            WHEN 'type' THEN 'TYPE' WHEN 'domain' THEN 'DOMAIN' END;
        IF kind IS NULL THEN
            RAISE EXCEPTION 'crm update: the comment on % % names a moved object', o.type, o.identity;
        END IF;
        EXECUTE pg_catalog.format('COMMENT ON %s %s IS %L', kind, o.identity,
                                  pg_catalog.regexp_replace(o.description, pattern, '\1crm_internal.\2', 'g'));
    END LOOP;
END
$internal$;

-- issue 22: funnel -- the furthest step of leads and deals, the funnel aggregates, crm.sales_funnel counting who reached each step, crm.sales_funnel_snapshot, and views shaped for charts (20_core.sql, 31_furthest_step.sql, 88_aggregates.sql, 90_reports.sql, 95_row_security.sql, 99_privileges.sql; src/furthest_step.c)
-- The furthest status and stage of the existing records, from their
-- histories (crm.lead_status_history, crm.opportunity_history) and their
-- current status or stage, as the trigger would have set them: the highest
-- working status (New Lead when only Not Qualified is on record); the
-- furthest open or won stage of those still defined (open by sort_order,
-- won after every open one), else the first open stage.  Written with the
-- triggers off (session_replication_role = replica for these statements):
-- the records do not change otherwise (updated_at, the change log and the
-- histories stay).  Writers of leads and deals wait.
LOCK TABLE crm.lead, crm.opportunity IN SHARE ROW EXCLUSIVE MODE;
ALTER TABLE crm.lead ADD COLUMN furthest_status crm.lead_status;
ALTER TABLE crm.opportunity ADD COLUMN furthest_stage text;
DO $furthest$
DECLARE
    role_was constant text := pg_catalog.current_setting('session_replication_role');
BEGIN
    PERFORM pg_catalog.set_config('session_replication_role', 'replica', true);
    UPDATE crm.lead AS l
       SET furthest_status = COALESCE(
               (SELECT pg_catalog.max(s.status)
                  FROM (SELECT h.to_status AS status FROM crm.lead_status_history AS h
                         WHERE h.lead_id OPERATOR(pg_catalog.=) l.id
                        UNION ALL SELECT l.status) AS s
                 WHERE s.status OPERATOR(pg_catalog.<>) 'Not Qualified'::crm.lead_status),
               'New Lead'::crm.lead_status);
    UPDATE crm.opportunity AS o
       SET furthest_stage = COALESCE(
               (SELECT s.name
                  FROM (SELECT h.new_stage AS stage FROM crm.opportunity_history AS h
                         WHERE h.opportunity_id OPERATOR(pg_catalog.=) o.id
                        UNION ALL SELECT o.stage) AS x
                  JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) x.stage
                 WHERE NOT s.is_closed OR s.is_won
                 ORDER BY s.is_won DESC, s.sort_order DESC LIMIT 1),
               (SELECT s.name FROM crm.opportunity_stage AS s WHERE NOT s.is_closed ORDER BY s.sort_order LIMIT 1),
               o.stage);
    PERFORM pg_catalog.set_config('session_replication_role', role_was, true);
END
$furthest$;
ALTER TABLE crm.lead ADD CONSTRAINT lead_furthest_status_set CHECK (furthest_status IS NOT NULL
    AND furthest_status OPERATOR(pg_catalog.<>) 'Not Qualified'::crm.lead_status);
ALTER TABLE crm.opportunity ADD CONSTRAINT opportunity_furthest_stage_fkey
    FOREIGN KEY (furthest_stage) REFERENCES crm.opportunity_stage (name) ON UPDATE CASCADE;
ALTER TABLE crm.opportunity ADD CONSTRAINT opportunity_furthest_stage_set CHECK (furthest_stage IS NOT NULL);
COMMENT ON COLUMN crm.lead.furthest_status IS 'The furthest working status the lead ever reached (New Lead < Processing < Following Up < In Transaction < Completed < Converted): what crm.sales_funnel counts. Not Qualified is an exit, never a furthest status: a lead keeps the furthest status it had, and one captured as Not Qualified has reached New Lead. Set by the database on every write (cannot be supplied or changed)';
COMMENT ON COLUMN crm.opportunity.furthest_stage IS 'The furthest stage the deal ever reached in pipeline order (open stages by sort_order, then won stages): what crm.sales_funnel counts. A lost stage is an exit, never a furthest stage: a lost deal keeps the furthest open stage it reached, one created lost has reached the first open stage; a won deal keeps its won stage if reopened. Follows a rename of the stage; set by the database on every write (cannot be supplied or changed)';
CREATE INDEX opportunity_furthest_stage_idx ON crm.opportunity (furthest_stage);
COMMENT ON INDEX crm.opportunity_furthest_stage_idx IS 'Deals by furthest stage: renaming a stage finds the deals whose furthest stage it is without reading every deal';

CREATE FUNCTION crm_internal.lead_furthest_status() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_lead_furthest_status'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.lead_furthest_status() IS 'BEFORE INSERT OR UPDATE row trigger on crm.lead: furthest_status is the highest working status the lead ever had (Not Qualified is an exit: a lead keeps its furthest status, and one captured as Not Qualified has reached New Lead), whatever the client sent';
CREATE TRIGGER furthest_step BEFORE INSERT OR UPDATE ON crm.lead
    FOR EACH ROW EXECUTE FUNCTION crm_internal.lead_furthest_status();

REVOKE ALL ON FUNCTION crm_internal.lead_furthest_status() FROM PUBLIC;
-- Nobody writes them (42501); analysts read them (the funnel's comparison).
GRANT SELECT (furthest_status) ON crm.lead TO crm_analyst;
GRANT SELECT (furthest_stage) ON crm.opportunity TO crm_analyst;

-- The funnel aggregates, as CREATE EXTENSION makes them from their
-- definitions (src/aggregates.c; the library lists an aggregate of 0.7 only
-- once its table exists), filled from the records (one row per group,
-- stripe 0).
CREATE TABLE crm_internal.lead_funnel_aggregate (owner regrole NOT NULL, furthest_status crm.lead_status NOT NULL,
    status crm.lead_status NOT NULL, stripe integer NOT NULL, leads bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (owner, stripe, furthest_status, status)) WITH (fillfactor = 20);
CREATE TABLE crm_internal.opportunity_funnel_aggregate (owner regrole NOT NULL, furthest_stage text NOT NULL, stage text NOT NULL,
    close_month date NOT NULL, currency text NOT NULL, stripe integer NOT NULL, opportunities bigint NOT NULL DEFAULT 0,
    amount numeric NOT NULL DEFAULT 0, PRIMARY KEY (owner, close_month, stripe, furthest_stage, stage, currency)) WITH (fillfactor = 20);
DO $funnel_tables$
DECLARE
    d record;
BEGIN
    FOR d IN SELECT * FROM crm_internal.aggregate_definitions() AS a
              WHERE a.aggregate OPERATOR(pg_catalog.=) ANY (ARRAY['lead_funnel', 'opportunity_funnel']) LOOP
        EXECUTE pg_catalog.format(
            'COMMENT ON COLUMN crm_internal.%I.stripe IS %L', d.aggregate_table,
            'Which writer recorded these changes: its backend id, or that id plus a multiple of 262144 while another transaction (a prepared one, or a compaction) held the row of the id; 0 after a compaction or rebuild. Lets writers add without waiting for each other');
        EXECUTE pg_catalog.format('INSERT INTO crm_internal.%1$I (%2$s, stripe, %3$s) SELECT %2$s, 0, %3$s FROM (%4$s) AS a',
                       d.aggregate_table,
                       (SELECT pg_catalog.string_agg(pg_catalog.format('%I', c), ', ' ORDER BY c.i)
                          FROM pg_catalog.unnest(d.group_columns) WITH ORDINALITY AS c (c, i)),
                       (SELECT pg_catalog.string_agg(pg_catalog.format('%I', m), ', ' ORDER BY m.i)
                          FROM pg_catalog.unnest(d.measures) WITH ORDINALITY AS m (m, i)),
                       d.actual_query);
        EXECUTE pg_catalog.format('ALTER TABLE crm_internal.%I ENABLE ROW LEVEL SECURITY', d.aggregate_table);
        EXECUTE pg_catalog.format('CREATE POLICY crm_admin_all ON crm_internal.%I TO crm_admin USING (true) WITH CHECK (true)', d.aggregate_table);
        EXECUTE pg_catalog.format('CREATE POLICY crm_analyst_read ON crm_internal.%I FOR SELECT TO crm_analyst USING (true)', d.aggregate_table);
        EXECUTE pg_catalog.format('CREATE POLICY crm_team_select ON crm_internal.%I FOR SELECT TO crm_manager, crm_sales USING (%s)',
                                  d.aggregate_table, 'owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))');
        EXECUTE pg_catalog.format('GRANT SELECT ON crm_internal.%I TO crm_admin, crm_manager, crm_sales, crm_analyst', d.aggregate_table);
        PERFORM pg_catalog.pg_extension_config_dump(pg_catalog.format('crm_internal.%I', d.aggregate_table)::pg_catalog.regclass, '');
    END LOOP;
END
$funnel_tables$;
COMMENT ON TABLE crm_internal.lead_funnel_aggregate IS 'Leads per owner, furthest status reached and current status, one row per writing backend (stripe); crm.sales_funnel counts from it the leads that reached each step, crm.sales_funnel_snapshot the leads in each status; written only by the aggregates_ triggers';
COMMENT ON COLUMN crm_internal.lead_funnel_aggregate.owner IS 'Lead owner';
COMMENT ON COLUMN crm_internal.lead_funnel_aggregate.furthest_status IS 'The furthest working status the leads reached (crm.lead.furthest_status)';
COMMENT ON COLUMN crm_internal.lead_funnel_aggregate.status IS 'Their status now (Not Qualified: they left the funnel)';
COMMENT ON COLUMN crm_internal.lead_funnel_aggregate.leads IS 'Change in the number of leads recorded by this stripe';

COMMENT ON TABLE crm_internal.opportunity_funnel_aggregate IS 'Opportunities per owner, furthest stage reached, current stage, close month and currency, one row per writing backend (stripe); crm.sales_funnel counts from it the deals that reached each stage and the lost ones, converting each group to the corporate currency; written only by the aggregates_ triggers';
COMMENT ON COLUMN crm_internal.opportunity_funnel_aggregate.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm_internal.opportunity_funnel_aggregate.furthest_stage IS 'The furthest stage the deals reached (crm.opportunity.furthest_stage)';
COMMENT ON COLUMN crm_internal.opportunity_funnel_aggregate.stage IS 'Their stage now';
COMMENT ON COLUMN crm_internal.opportunity_funnel_aggregate.close_month IS 'First day of the close month; infinity when the opportunity has no close date';
COMMENT ON COLUMN crm_internal.opportunity_funnel_aggregate.currency IS 'Currency of the amounts (the opportunities'' currency); reports convert per group at read time';
COMMENT ON COLUMN crm_internal.opportunity_funnel_aggregate.opportunities IS 'Change in the number of opportunities recorded by this stripe';
COMMENT ON COLUMN crm_internal.opportunity_funnel_aggregate.amount IS 'Change in the sum of amounts recorded by this stripe';

-- The comparison view over every aggregate, the funnel's too.
DO $compared$
DECLARE
    kept text;
    actual text;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.format(
               'SELECT %L::text AS aggregate, pg_catalog.jsonb_build_object(%s) AS group_key, %s'
               ' FROM crm_internal.%I AS g GROUP BY %s',
               d.aggregate, x.group_key, x.kept, d.aggregate_table, x.group_columns), ' UNION ALL ' ORDER BY d.ordinality),
           pg_catalog.string_agg(pg_catalog.format(
               'SELECT %L::text AS aggregate, pg_catalog.jsonb_build_object(%s) AS group_key, %s FROM (%s) AS g',
               d.aggregate, x.group_key, x.actual, d.actual_query), ' UNION ALL ' ORDER BY d.ordinality)
      INTO kept, actual
      FROM crm_internal.aggregate_definitions() WITH ORDINALITY AS d
     CROSS JOIN LATERAL (
           -- (a close month without a close date, infinity in the tables,
           -- is null in the group key: no client reads an infinite date)
           SELECT (SELECT pg_catalog.string_agg(CASE WHEN c.t OPERATOR(pg_catalog.=) 'pg_catalog.date'::pg_catalog.regtype
                                                     THEN pg_catalog.format('%L, NULLIF(g.%I, ''infinity''::pg_catalog.date)', c.c, c.c)
                                                     ELSE pg_catalog.format('%L, g.%I', c.c, c.c) END, ', ' ORDER BY c.i)
                     FROM ROWS FROM (pg_catalog.unnest(d.group_columns), pg_catalog.unnest(d.group_types)) WITH ORDINALITY AS c (c, t, i)) AS group_key,
                  (SELECT pg_catalog.string_agg(pg_catalog.format('g.%I', c), ', ' ORDER BY c.i)
                     FROM pg_catalog.unnest(d.group_columns) WITH ORDINALITY AS c (c, i)) AS group_columns,
                  (SELECT pg_catalog.string_agg(CASE WHEN d.measures[m.i] IS NULL THEN 'NULL::numeric'
                                                     ELSE pg_catalog.format('pg_catalog.sum(g.%I)::numeric', d.measures[m.i])
                                                END || ' AS ' || m.name, ', ' ORDER BY m.i)
                     FROM pg_catalog.unnest(ARRAY['items', 'amount', 'weighted_amount']) WITH ORDINALITY AS m (name, i)) AS kept,
                  (SELECT pg_catalog.string_agg(CASE WHEN d.measures[m.i] IS NULL THEN 'NULL::numeric'
                                                     ELSE pg_catalog.format('g.%I::numeric', d.measures[m.i])
                                                END || ' AS ' || m.name, ', ' ORDER BY m.i)
                     FROM pg_catalog.unnest(ARRAY['items', 'amount', 'weighted_amount']) WITH ORDINALITY AS m (name, i)) AS actual
           ) AS x;
    EXECUTE pg_catalog.format(
        'CREATE OR REPLACE VIEW crm_internal.aggregates_compared WITH (security_invoker = true) AS'
        ' WITH kept AS (%s), actual AS (%s)'
        ' SELECT COALESCE(k.aggregate, a.aggregate) AS aggregate, COALESCE(k.group_key, a.group_key) AS group_key,'
        '        COALESCE(k.items, 0) AS kept_items, COALESCE(a.items, 0) AS actual_items,'
        '        COALESCE(k.amount, 0) AS kept_amount, COALESCE(a.amount, 0) AS actual_amount,'
        '        COALESCE(k.weighted_amount, 0) AS kept_weighted_amount,'
        '        COALESCE(a.weighted_amount, 0) AS actual_weighted_amount'
        '   FROM kept AS k'
        '   FULL JOIN actual AS a'
        '     ON a.aggregate OPERATOR(pg_catalog.=) k.aggregate AND a.group_key OPERATOR(pg_catalog.=) k.group_key',
        kept, actual);
END
$compared$;
COMMENT ON VIEW crm_internal.aggregates_compared IS 'Every group of every maintained aggregate, kept (stripes summed) next to a fresh GROUP BY over the base tables; a full scan, for checking only';
COMMENT ON COLUMN crm_internal.aggregates_compared.aggregate IS 'pipeline, account, campaign_opportunity, campaign_lead, lead_funnel or opportunity_funnel';
COMMENT ON COLUMN crm_internal.aggregates_compared.group_key IS 'The group, as a JSON object of its key columns (a close month is null for the deals without a close date)';
COMMENT ON COLUMN crm_internal.aggregates_compared.kept_items IS 'Opportunities (or leads) in the group, as kept';
COMMENT ON COLUMN crm_internal.aggregates_compared.actual_items IS 'Opportunities (or leads) in the group, counted now';
COMMENT ON COLUMN crm_internal.aggregates_compared.kept_amount IS 'Sum of amounts, as kept (0 where the aggregate has none)';
COMMENT ON COLUMN crm_internal.aggregates_compared.actual_amount IS 'Sum of amounts, computed now';
COMMENT ON COLUMN crm_internal.aggregates_compared.kept_weighted_amount IS 'Sum of weighted amounts, as kept (pipeline only)';
COMMENT ON COLUMN crm_internal.aggregates_compared.actual_weighted_amount IS 'Sum of weighted amounts, computed now';

-- Views shaped for charts: counts bigint, every active stage, the bucket of
-- deals without a close date; the funnel and its snapshot.  A view column's
-- type cannot change in place: dropped and created again (with
-- crm.verify_aggregates(), which reads two of them), comments and grants as
-- a fresh install has them.
DROP FUNCTION crm.verify_aggregates();
DROP VIEW crm.sales_funnel, crm.campaign_performance, crm.forecast_by_month, crm.pipeline_by_stage, crm.pipeline_totals;
CREATE VIEW crm.pipeline_totals WITH (security_invoker = true) AS
    SELECT a.stage, pg_catalog.pg_get_userbyid(a.owner)::text AS owner, NULLIF(a.close_month, 'infinity'::pg_catalog.date) AS close_month, a.currency,
           pg_catalog.sum(a.opportunities)::bigint AS opportunities, pg_catalog.sum(a.amount) AS amount,
           pg_catalog.sum(a.weighted_amount) AS weighted_amount
      FROM crm_internal.pipeline_aggregate AS a
     GROUP BY a.stage, a.owner, a.close_month, a.currency
    HAVING pg_catalog.sum(a.opportunities) OPERATOR(pg_catalog.<>) 0;
COMMENT ON VIEW crm.pipeline_totals IS 'Pipeline totals per stage, owner, close month and currency (amounts in that currency), read from the maintained aggregate (stripes summed)';
COMMENT ON COLUMN crm.pipeline_totals.stage IS 'Opportunity stage';
COMMENT ON COLUMN crm.pipeline_totals.owner IS 'Opportunity owner: the role''s name, as text (the aggregate keeps a regrole)';
COMMENT ON COLUMN crm.pipeline_totals.close_month IS 'First day of the close month; NULL without a close date';
COMMENT ON COLUMN crm.pipeline_totals.currency IS 'Currency of the amounts';
COMMENT ON COLUMN crm.pipeline_totals.opportunities IS 'Number of opportunities';
COMMENT ON COLUMN crm.pipeline_totals.amount IS 'Sum of amounts';
COMMENT ON COLUMN crm.pipeline_totals.weighted_amount IS 'Sum of round(amount x probability / 100, 2)';

CREATE VIEW crm.sales_funnel WITH (security_invoker = true) AS
    WITH lead_groups AS (
        SELECT a.furthest_status, a.status, pg_catalog.sum(a.leads) AS leads
          FROM crm_internal.lead_funnel_aggregate AS a
         GROUP BY a.furthest_status, a.status
        HAVING pg_catalog.sum(a.leads) OPERATOR(pg_catalog.<>) 0),
    deal_groups AS (
        SELECT a.furthest_stage, a.stage, a.close_month, a.currency,
               pg_catalog.sum(a.opportunities) AS opportunities, pg_catalog.sum(a.amount) AS amount
          FROM crm_internal.opportunity_funnel_aggregate AS a
         GROUP BY a.furthest_stage, a.stage, a.close_month, a.currency
        HAVING pg_catalog.sum(a.opportunities) OPERATOR(pg_catalog.<>) 0),
    deals AS (
        SELECT g.furthest_stage, g.stage, g.currency, g.opportunities, g.amount,
               g.amount OPERATOR(pg_catalog.*) x.rate AS converted,
               f.sort_order AS furthest_order, COALESCE(f.is_won, false) AS furthest_won
          FROM deal_groups AS g
          LEFT JOIN crm.opportunity_stage AS f ON f.name OPERATOR(pg_catalog.=) g.furthest_stage
          JOIN (SELECT c.currency, c.close_month,
                       crm.exchange_rate_on(c.currency, NULLIF(c.close_month, 'infinity'::pg_catalog.date)) AS rate
                  FROM (SELECT DISTINCT d.currency, d.close_month FROM deal_groups AS d) AS c) AS x
            ON x.currency OPERATOR(pg_catalog.=) g.currency AND x.close_month OPERATOR(pg_catalog.=) g.close_month)
    SELECT 1 AS position, e.step_order::integer AS step_order, 'lead'::text AS kind, e.status::text AS step,
           e.status OPERATOR(pg_catalog.=) 'Not Qualified'::crm.lead_status AS is_exit,
           COALESCE(pg_catalog.sum(g.leads), 0)::bigint AS items,
           NULL::numeric AS amount, NULL::text AS currency, NULL::numeric AS amount_in_currency
      FROM pg_catalog.unnest(pg_catalog.enum_range(NULL::crm.lead_status)) WITH ORDINALITY AS e (status, step_order)
      LEFT JOIN lead_groups AS g
        ON CASE WHEN e.status OPERATOR(pg_catalog.=) 'Not Qualified'::crm.lead_status
                THEN g.status OPERATOR(pg_catalog.=) e.status
                ELSE g.furthest_status OPERATOR(pg_catalog.>=) e.status END
     GROUP BY e.status, e.step_order
    UNION ALL
    SELECT 2, s.sort_order, 'opportunity', s.name, s.is_closed AND NOT s.is_won,
           COALESCE(pg_catalog.sum(d.opportunities), 0)::bigint,
           COALESCE(pg_catalog.round(pg_catalog.sum(d.converted), 2), 0.00),
           CASE WHEN pg_catalog.min(d.currency) OPERATOR(pg_catalog.=) pg_catalog.max(d.currency) THEN pg_catalog.min(d.currency) END,
           CASE WHEN pg_catalog.min(d.currency) OPERATOR(pg_catalog.=) pg_catalog.max(d.currency) THEN pg_catalog.sum(d.amount) END
      FROM crm.opportunity_stage AS s
      LEFT JOIN deals AS d
        ON CASE WHEN s.is_won THEN d.furthest_stage OPERATOR(pg_catalog.=) s.name
                WHEN s.is_closed THEN d.stage OPERATOR(pg_catalog.=) s.name
                ELSE d.furthest_won OR d.furthest_order OPERATOR(pg_catalog.>=) s.sort_order END
     GROUP BY s.name, s.sort_order, s.is_closed, s.is_won
    HAVING s.active OR pg_catalog.count(d.stage) OPERATOR(pg_catalog.>) 0;
COMMENT ON VIEW crm.sales_funnel IS 'Sales funnel: per step in pipeline order, the leads and opportunities that reached it (their furthest status or stage is that step or a later one), so the counts never widen down the funnel; the exits are rows of their own (is_exit: leads Not Qualified now, deals in a lost stage now). ORDER BY position, is_exit, step_order. Amounts in the corporate currency (each deal at the rate of its close month, the latest rate without a close date), and in the deals'' own currency when a step has one currency only. Read from the maintained funnel aggregates (O(groups)); a rep sees their own records, a manager their team''s. Today''s records by status and stage: crm.sales_funnel_snapshot';
COMMENT ON COLUMN crm.sales_funnel.position IS '1 lead steps, 2 opportunity steps';
COMMENT ON COLUMN crm.sales_funnel.step_order IS 'Order of the step within its part: the lead status''s position in crm.lead_status, the stage''s sort_order';
COMMENT ON COLUMN crm.sales_funnel.kind IS 'lead or opportunity';
COMMENT ON COLUMN crm.sales_funnel.step IS 'Lead status or opportunity stage';
COMMENT ON COLUMN crm.sales_funnel.is_exit IS 'False for a step of the funnel (records that reached it); true for an exit (records that left the funnel there and are there now: Not Qualified leads, deals in a lost stage)';
COMMENT ON COLUMN crm.sales_funnel.items IS 'For a step: leads or opportunities that reached it (furthest step at or beyond it); for an exit: those in it now';
COMMENT ON COLUMN crm.sales_funnel.amount IS 'Total amount of those opportunities, in the corporate currency, 0.00 when none (NULL for lead rows)';
COMMENT ON COLUMN crm.sales_funnel.currency IS 'Currency of those opportunities when they all share one; NULL when mixed, none, or a lead row';
COMMENT ON COLUMN crm.sales_funnel.amount_in_currency IS 'Their total amount in that currency (NULL when mixed or none)';

CREATE VIEW crm.sales_funnel_snapshot WITH (security_invoker = true) AS
    WITH lead_groups AS (
        SELECT a.status, pg_catalog.sum(a.leads) AS leads
          FROM crm_internal.lead_funnel_aggregate AS a
         GROUP BY a.status),
    deals AS (
        SELECT t.stage, t.currency, t.opportunities, t.amount, t.amount OPERATOR(pg_catalog.*) r.rate AS converted
          FROM crm.pipeline_totals AS t
         CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(t.currency, t.close_month) AS rate) AS r)
    SELECT 1 AS position, e.step_order::integer AS step_order, 'lead'::text AS kind, e.status::text AS step,
           COALESCE(pg_catalog.sum(g.leads), 0)::bigint AS items,
           NULL::numeric AS amount, NULL::text AS currency, NULL::numeric AS amount_in_currency
      FROM pg_catalog.unnest(pg_catalog.enum_range(NULL::crm.lead_status)) WITH ORDINALITY AS e (status, step_order)
      LEFT JOIN lead_groups AS g ON g.status OPERATOR(pg_catalog.=) e.status
     GROUP BY e.status, e.step_order
    UNION ALL
    SELECT 2, s.sort_order, 'opportunity', s.name,
           COALESCE(pg_catalog.sum(d.opportunities), 0)::bigint,
           COALESCE(pg_catalog.round(pg_catalog.sum(d.converted), 2), 0.00),
           CASE WHEN pg_catalog.min(d.currency) OPERATOR(pg_catalog.=) pg_catalog.max(d.currency) THEN pg_catalog.min(d.currency) END,
           CASE WHEN pg_catalog.min(d.currency) OPERATOR(pg_catalog.=) pg_catalog.max(d.currency) THEN pg_catalog.sum(d.amount) END
      FROM crm.opportunity_stage AS s LEFT JOIN deals AS d ON d.stage OPERATOR(pg_catalog.=) s.name
     GROUP BY s.name, s.sort_order
    HAVING s.active OR pg_catalog.count(d.stage) OPERATOR(pg_catalog.>) 0
    UNION ALL
    SELECT 3, 1, 'won', 'Won', COALESCE(pg_catalog.sum(d.opportunities), 0)::bigint,
           COALESCE(pg_catalog.round(pg_catalog.sum(d.converted), 2), 0.00),
           CASE WHEN pg_catalog.min(d.currency) OPERATOR(pg_catalog.=) pg_catalog.max(d.currency) THEN pg_catalog.min(d.currency) END,
           CASE WHEN pg_catalog.min(d.currency) OPERATOR(pg_catalog.=) pg_catalog.max(d.currency) THEN pg_catalog.sum(d.amount) END
      FROM deals AS d JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) d.stage
     WHERE s.is_won;
COMMENT ON VIEW crm.sales_funnel_snapshot IS 'Where the records are now: leads by current status, opportunities by current stage, won deals; ORDER BY position, step_order. Amounts in the corporate currency (each deal at the rate of its close month, the latest rate without a close date), and in the deals'' own currency when a step has one currency only. Read from the maintained aggregates (O(groups)). How many reached each step: crm.sales_funnel';
COMMENT ON COLUMN crm.sales_funnel_snapshot.position IS '1 leads, 2 opportunities, 3 won';
COMMENT ON COLUMN crm.sales_funnel_snapshot.step_order IS 'Order of the step within its part: the lead status''s position in crm.lead_status, the stage''s sort_order';
COMMENT ON COLUMN crm.sales_funnel_snapshot.kind IS 'lead, opportunity or won';
COMMENT ON COLUMN crm.sales_funnel_snapshot.step IS 'Lead status or opportunity stage (Won for the won total)';
COMMENT ON COLUMN crm.sales_funnel_snapshot.items IS 'Number of leads or opportunities in the step now (0 when none)';
COMMENT ON COLUMN crm.sales_funnel_snapshot.amount IS 'Total opportunity amount in the step, in the corporate currency, 0.00 when none (NULL for lead steps)';
COMMENT ON COLUMN crm.sales_funnel_snapshot.currency IS 'Currency of the step''s opportunities when they all share one; NULL when mixed, empty or a lead step';
COMMENT ON COLUMN crm.sales_funnel_snapshot.amount_in_currency IS 'Their total amount in that currency (NULL when mixed or empty)';

CREATE VIEW crm.pipeline_by_stage WITH (security_invoker = true) AS
    WITH totals AS (
        SELECT s.sort_order, s.name AS stage, s.is_closed, s.is_won, t.owner,
               pg_catalog.sum(t.opportunities)::bigint AS opportunities,
               pg_catalog.round(pg_catalog.sum(t.amount OPERATOR(pg_catalog.*) r.rate), 2) AS amount,
               pg_catalog.round(pg_catalog.sum(t.weighted_amount OPERATOR(pg_catalog.*) r.rate), 2) AS weighted_amount,
               t.currency,
               pg_catalog.sum(t.amount) AS amount_in_currency,
               pg_catalog.sum(t.weighted_amount) AS weighted_amount_in_currency
          FROM crm.pipeline_totals AS t JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) t.stage
         CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(t.currency, t.close_month) AS rate) AS r
         GROUP BY s.sort_order, s.name, s.is_closed, s.is_won, t.owner, t.currency)
    SELECT t.sort_order, t.stage, t.is_closed, t.is_won, t.owner, t.opportunities, t.amount, t.weighted_amount,
           t.currency, t.amount_in_currency, t.weighted_amount_in_currency
      FROM totals AS t
    UNION ALL
    -- an active stage without deals (that the reader sees): one row of zeros
    SELECT s.sort_order, s.name, s.is_closed, s.is_won, NULL::text, 0::bigint, 0.00::numeric, 0.00::numeric,
           NULL::text, 0.00::numeric, 0.00::numeric
      FROM crm.opportunity_stage AS s
     WHERE s.active AND NOT EXISTS (SELECT 1 FROM totals AS t WHERE t.stage OPERATOR(pg_catalog.=) s.name);
COMMENT ON VIEW crm.pipeline_by_stage IS 'Pipeline by stage, owner and currency: number of opportunities, amount and probability-weighted amount in the corporate currency (each deal at the rate of its close month, the latest rate without a close date) and in the deals'' currency, read from the maintained aggregate. Every active stage appears: one without deals (that the reader sees) as one row with owner and currency NULL, counts 0 and amounts 0.00';
COMMENT ON COLUMN crm.pipeline_by_stage.sort_order IS 'Position of the stage in the pipeline';
COMMENT ON COLUMN crm.pipeline_by_stage.stage IS 'Stage';
COMMENT ON COLUMN crm.pipeline_by_stage.is_closed IS 'True for closed stages';
COMMENT ON COLUMN crm.pipeline_by_stage.is_won IS 'True for won stages';
COMMENT ON COLUMN crm.pipeline_by_stage.owner IS 'Opportunity owner: the role''s name, as text (crm.opportunity.owner is a regrole); NULL on the row of a stage without deals';
COMMENT ON COLUMN crm.pipeline_by_stage.opportunities IS 'Number of opportunities';
COMMENT ON COLUMN crm.pipeline_by_stage.amount IS 'Sum of their amounts, in the corporate currency (rounded to cents once, after converting)';
COMMENT ON COLUMN crm.pipeline_by_stage.weighted_amount IS 'Sum of amount x probability / 100 (each rounded to cents), in the corporate currency';
COMMENT ON COLUMN crm.pipeline_by_stage.currency IS 'Currency of the opportunities; NULL on the row of a stage without deals';
COMMENT ON COLUMN crm.pipeline_by_stage.amount_in_currency IS 'Sum of their amounts in that currency';
COMMENT ON COLUMN crm.pipeline_by_stage.weighted_amount_in_currency IS 'Sum of the weighted amounts in that currency';

CREATE VIEW crm.forecast_by_month WITH (security_invoker = true) AS
    SELECT t.close_month,
           COALESCE(pg_catalog.to_char(t.close_month, 'YYYY-MM'), 'no close date') AS month_label,
           s.forecast_category, t.owner,
           pg_catalog.sum(t.opportunities)::bigint AS opportunities,
           pg_catalog.round(pg_catalog.sum(t.amount OPERATOR(pg_catalog.*) r.rate), 2) AS amount,
           pg_catalog.round(pg_catalog.sum(t.weighted_amount OPERATOR(pg_catalog.*) r.rate), 2) AS weighted_amount,
           t.currency,
           pg_catalog.sum(t.amount) AS amount_in_currency,
           pg_catalog.sum(t.weighted_amount) AS weighted_amount_in_currency
      FROM crm.pipeline_totals AS t JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) t.stage
     CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(t.currency, t.close_month) AS rate) AS r
     WHERE NOT s.is_closed OR s.is_won
     GROUP BY t.close_month, s.forecast_category, t.owner, t.currency;
COMMENT ON VIEW crm.forecast_by_month IS 'Forecast: open and won opportunities by expected close month (deals without a close date in the bucket month_label = ''no close date''), forecast category, owner and currency, amounts in the corporate currency (at the rate of the close month) and in the deals'' currency, read from the maintained aggregate';
COMMENT ON COLUMN crm.forecast_by_month.close_month IS 'First day of the close month (NULL: no close date yet; month_label names that bucket)';
COMMENT ON COLUMN crm.forecast_by_month.month_label IS 'The close month as YYYY-MM, or ''no close date'' for the deals without one: an explicit bucket for a chart''s axis (sorts after every month)';
COMMENT ON COLUMN crm.forecast_by_month.forecast_category IS 'Pipeline, Best Case, Commit or Closed (from the stage)';
COMMENT ON COLUMN crm.forecast_by_month.owner IS 'Opportunity owner: the role''s name, as text (crm.opportunity.owner is a regrole)';
COMMENT ON COLUMN crm.forecast_by_month.opportunities IS 'Number of opportunities';
COMMENT ON COLUMN crm.forecast_by_month.amount IS 'Sum of their amounts, in the corporate currency';
COMMENT ON COLUMN crm.forecast_by_month.weighted_amount IS 'Sum of amount x probability / 100, in the corporate currency';
COMMENT ON COLUMN crm.forecast_by_month.currency IS 'Currency of the opportunities';
COMMENT ON COLUMN crm.forecast_by_month.amount_in_currency IS 'Sum of their amounts in that currency';
COMMENT ON COLUMN crm.forecast_by_month.weighted_amount_in_currency IS 'Sum of the weighted amounts in that currency';

CREATE VIEW crm.campaign_performance WITH (security_invoker = true) AS
    WITH campaign_groups AS (
        SELECT a.campaign_id, a.stage, a.close_month, a.currency,
               pg_catalog.sum(a.opportunities) AS opportunities, pg_catalog.sum(a.amount) AS amount
          FROM crm_internal.campaign_opportunity_aggregate AS a
         GROUP BY a.campaign_id, a.stage, a.close_month, a.currency
        HAVING pg_catalog.sum(a.opportunities) OPERATOR(pg_catalog.<>) 0)
    SELECT c.id AS campaign_id, c.name, c.type, c.status, pg_catalog.pg_get_userbyid(c.owner)::text AS owner,
           c.budgeted_cost, c.actual_cost, c.expected_revenue,
           COALESCE(l.leads, 0)::bigint AS leads,
           COALESCE(l.converted_leads, 0)::bigint AS converted_leads,
           COALESCE(o.opportunities, 0)::bigint AS opportunities,
           COALESCE(o.won_opportunities, 0)::bigint AS won_opportunities,
           COALESCE(o.amount, 0) AS opportunity_amount,
           COALESCE(o.won_amount, 0) AS won_amount,
           CASE WHEN c.actual_cost OPERATOR(pg_catalog.>) 0
                THEN pg_catalog.round((COALESCE(o.won_amount, 0) OPERATOR(pg_catalog.-) c.actual_cost)
                                      OPERATOR(pg_catalog./) c.actual_cost, 4)
           END AS roi,
           o.currency, o.amount_in_currency AS opportunity_amount_in_currency, o.won_amount_in_currency
      FROM crm.campaign AS c
      LEFT JOIN (SELECT g.campaign_id, pg_catalog.sum(g.leads) AS leads,
                        pg_catalog.sum(g.leads) FILTER (WHERE g.status OPERATOR(pg_catalog.=) 'Converted'::crm.lead_status) AS converted_leads
                   FROM crm_internal.campaign_lead_aggregate AS g GROUP BY g.campaign_id) AS l
        ON l.campaign_id OPERATOR(pg_catalog.=) c.id
      LEFT JOIN (SELECT g.campaign_id, pg_catalog.sum(g.opportunities) AS opportunities,
                        pg_catalog.sum(g.opportunities) FILTER (WHERE s.is_won) AS won_opportunities,
                        pg_catalog.round(pg_catalog.sum(g.amount OPERATOR(pg_catalog.*) x.rate), 2) AS amount,
                        pg_catalog.round(pg_catalog.sum(g.amount OPERATOR(pg_catalog.*) x.rate) FILTER (WHERE s.is_won), 2) AS won_amount,
                        CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                             THEN pg_catalog.min(g.currency) END AS currency,
                        CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                             THEN pg_catalog.sum(g.amount) END AS amount_in_currency,
                        CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                             THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE s.is_won), 0) END AS won_amount_in_currency
                   FROM campaign_groups AS g
                   JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) g.stage
                   JOIN (SELECT c.currency, c.close_month,
                                crm.exchange_rate_on(c.currency, NULLIF(c.close_month, 'infinity'::pg_catalog.date)) AS rate
                           FROM (SELECT DISTINCT a.currency, a.close_month FROM campaign_groups AS a) AS c) AS x
                     ON x.currency OPERATOR(pg_catalog.=) g.currency AND x.close_month OPERATOR(pg_catalog.=) g.close_month
                  GROUP BY g.campaign_id) AS o
        ON o.campaign_id OPERATOR(pg_catalog.=) c.id;
COMMENT ON VIEW crm.campaign_performance IS 'Per campaign (one row each, as ROI is a campaign''s figure): leads, converted leads, opportunities, won opportunities, their amounts in the corporate currency (each deal at the rate of its close month, the latest rate without a close date; converted per group of the maintained aggregate at read time, so a rate edit shows at once), and ROI = (won amount - actual cost) / actual cost, the cost being in the corporate currency; the deals'' own currency and amounts in it beside them when all the campaign''s deals share one currency';
COMMENT ON COLUMN crm.campaign_performance.campaign_id IS 'The campaign';
COMMENT ON COLUMN crm.campaign_performance.name IS 'Campaign name';
COMMENT ON COLUMN crm.campaign_performance.type IS 'Campaign type';
COMMENT ON COLUMN crm.campaign_performance.status IS 'Campaign status';
COMMENT ON COLUMN crm.campaign_performance.owner IS 'Who runs the campaign: the role''s name, as text (crm.campaign.owner is a regrole)';
COMMENT ON COLUMN crm.campaign_performance.budgeted_cost IS 'Planned cost, in the corporate currency';
COMMENT ON COLUMN crm.campaign_performance.actual_cost IS 'Cost so far, in the corporate currency';
COMMENT ON COLUMN crm.campaign_performance.expected_revenue IS 'Expected revenue';
COMMENT ON COLUMN crm.campaign_performance.leads IS 'Leads attributed to the campaign';
COMMENT ON COLUMN crm.campaign_performance.converted_leads IS 'Of those, converted';
COMMENT ON COLUMN crm.campaign_performance.opportunities IS 'Opportunities attributed to the campaign';
COMMENT ON COLUMN crm.campaign_performance.won_opportunities IS 'Of those, won';
COMMENT ON COLUMN crm.campaign_performance.opportunity_amount IS 'Amount of all attributed opportunities, in the corporate currency';
COMMENT ON COLUMN crm.campaign_performance.won_amount IS 'Amount of the won ones, in the corporate currency';
COMMENT ON COLUMN crm.campaign_performance.roi IS 'Return on investment: (won amount - actual cost) / actual cost, both in the corporate currency; NULL while the actual cost is 0';
COMMENT ON COLUMN crm.campaign_performance.currency IS 'Currency of the attributed deals when they all share one; NULL when mixed or none';
COMMENT ON COLUMN crm.campaign_performance.opportunity_amount_in_currency IS 'Amount of all attributed opportunities in that currency (NULL when mixed)';
COMMENT ON COLUMN crm.campaign_performance.won_amount_in_currency IS 'Amount of the won ones in that currency (NULL when mixed)';

CREATE FUNCTION crm.verify_aggregates()
    RETURNS TABLE (aggregate text, group_key jsonb, measure text, kept numeric, actual numeric)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH converted AS (
        SELECT o.stage, o.owner, o.currency, o.account_id, o.campaign_id, s.is_closed, s.is_won,
               o.amount OPERATOR(pg_catalog.*) r.rate AS amount,
               pg_catalog.round(o.amount OPERATOR(pg_catalog.*) COALESCE(o.probability, 0) OPERATOR(pg_catalog./) 100, 2)
                   OPERATOR(pg_catalog.*) r.rate AS weighted_amount
          FROM crm.opportunity AS o
          JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) o.stage
         CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(o.currency, o.close_date) AS rate) AS r)
    SELECT v.aggregate, v.group_key, v.measure, v.kept, v.actual
      FROM (SELECT c.aggregate, c.group_key, m.measure, m.kept, m.actual
              FROM crm_internal.aggregates_compared AS c
             CROSS JOIN LATERAL (VALUES ('items', c.kept_items, c.actual_items),
                                        ('amount', c.kept_amount, c.actual_amount),
                                        ('weighted_amount', c.kept_weighted_amount, c.actual_weighted_amount))
                                AS m (measure, kept, actual)
            UNION ALL
            SELECT 'pipeline_by_stage', pg_catalog.jsonb_build_object('stage', COALESCE(k.stage, a.stage),
                       'owner', COALESCE(k.owner, a.owner), 'currency', COALESCE(k.currency, a.currency)),
                   m.measure, m.kept, m.actual
              FROM (SELECT p.stage, p.owner, p.currency, p.opportunities, p.amount, p.weighted_amount
                      FROM crm.pipeline_by_stage AS p) AS k
              FULL JOIN (SELECT o.stage, pg_catalog.pg_get_userbyid(o.owner)::text AS owner, o.currency,
                                pg_catalog.count(*) AS opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount), 2) AS amount,
                                pg_catalog.round(pg_catalog.sum(o.weighted_amount), 2) AS weighted_amount
                           FROM converted AS o
                          GROUP BY o.stage, o.owner, o.currency) AS a
                ON a.stage OPERATOR(pg_catalog.=) k.stage AND a.owner OPERATOR(pg_catalog.=) k.owner
               AND a.currency OPERATOR(pg_catalog.=) k.currency
             CROSS JOIN LATERAL (VALUES ('items', COALESCE(k.opportunities, 0)::numeric, COALESCE(a.opportunities, 0)::numeric),
                                        ('amount', COALESCE(k.amount, 0), COALESCE(a.amount, 0)),
                                        ('weighted_amount', COALESCE(k.weighted_amount, 0), COALESCE(a.weighted_amount, 0)))
                                AS m (measure, kept, actual)
            UNION ALL
            SELECT 'account_rollup', pg_catalog.jsonb_build_object('account_id', COALESCE(k.account_id, a.account_id)),
                   m.measure, m.kept, m.actual
              FROM (SELECT r.account_id, r.open_opportunities, r.open_amount, r.won_opportunities, r.won_amount
                      FROM crm.account_rollup AS r) AS k
              FULL JOIN (SELECT o.account_id,
                                pg_catalog.count(*) FILTER (WHERE NOT o.is_closed) AS open_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE NOT o.is_closed), 2) AS open_amount,
                                pg_catalog.count(*) FILTER (WHERE o.is_won) AS won_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE o.is_won), 2) AS won_amount
                           FROM converted AS o
                          WHERE o.account_id IS NOT NULL
                          GROUP BY o.account_id) AS a
                ON a.account_id OPERATOR(pg_catalog.=) k.account_id
             CROSS JOIN LATERAL (VALUES ('open_opportunities', COALESCE(k.open_opportunities, 0)::numeric, COALESCE(a.open_opportunities, 0)::numeric),
                                        ('open_amount', COALESCE(k.open_amount, 0), COALESCE(a.open_amount, 0)),
                                        ('won_opportunities', COALESCE(k.won_opportunities, 0)::numeric, COALESCE(a.won_opportunities, 0)::numeric),
                                        ('won_amount', COALESCE(k.won_amount, 0), COALESCE(a.won_amount, 0)))
                                AS m (measure, kept, actual)
            UNION ALL
            SELECT 'campaign_performance', pg_catalog.jsonb_build_object('campaign_id', COALESCE(k.campaign_id, a.campaign_id)),
                   m.measure, m.kept, m.actual
              FROM (SELECT p.campaign_id, p.opportunities, p.won_opportunities, p.opportunity_amount, p.won_amount
                      FROM crm.campaign_performance AS p) AS k
              FULL JOIN (SELECT o.campaign_id, pg_catalog.count(*) AS opportunities,
                                pg_catalog.count(*) FILTER (WHERE o.is_won) AS won_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount), 2) AS opportunity_amount,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE o.is_won), 2) AS won_amount
                           FROM converted AS o
                          WHERE o.campaign_id IS NOT NULL
                          GROUP BY o.campaign_id) AS a
                ON a.campaign_id OPERATOR(pg_catalog.=) k.campaign_id
             CROSS JOIN LATERAL (VALUES ('opportunities', COALESCE(k.opportunities, 0)::numeric, COALESCE(a.opportunities, 0)::numeric),
                                        ('won_opportunities', COALESCE(k.won_opportunities, 0)::numeric, COALESCE(a.won_opportunities, 0)::numeric),
                                        ('opportunity_amount', COALESCE(k.opportunity_amount, 0), COALESCE(a.opportunity_amount, 0)),
                                        ('won_amount', COALESCE(k.won_amount, 0), COALESCE(a.won_amount, 0)))
                                AS m (measure, kept, actual)) AS v
     WHERE v.kept OPERATOR(pg_catalog.<>) v.actual
     ORDER BY v.aggregate, v.group_key::text, v.measure;
END;
COMMENT ON FUNCTION crm.verify_aggregates() IS 'One row per group and measure where a maintained aggregate differs from a fresh GROUP BY over the base tables, or where a report converted to the corporate currency at read time (pipeline_by_stage per stage, owner and currency; account_rollup per account; campaign_performance per campaign) differs from a GROUP BY converting each opportunity at the rate of its close date (aggregate names the report); no rows: all exact. ZC120 when a rate is missing. Reads every opportunity: for checking, as an admin (who sees every row)';

GRANT SELECT ON crm.pipeline_totals, crm.campaign_performance, crm.sales_funnel, crm.sales_funnel_snapshot,
    crm.pipeline_by_stage, crm.forecast_by_month
    TO crm_admin, crm_manager, crm_sales, crm_analyst;
REVOKE ALL ON FUNCTION crm.verify_aggregates() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.verify_aggregates() TO crm_admin, crm_manager, crm_sales, crm_analyst;


-- issue 22: lead conversion rates and sales performance from striped aggregates (88_aggregates.sql, 90_reports.sql, 95_row_security.sql, 99_privileges.sql)
-- Three aggregates defined in src/aggregates.c (crm_internal.lead_source_aggregate,
-- crm_internal.lead_month_aggregate, crm_internal.sales_performance_aggregate) feed
-- crm.lead_conversion_rates and crm.sales_performance, which read them
-- instead of every lead and deal.  The library maintains an aggregate of
-- this kind only once its table exists, and crm_internal.aggregate_definitions()
-- lists it only then (the steps above never saw them); so their tables are
-- made here as CREATE EXTENSION makes them, then filled from the base
-- tables (one row per group, stripe 0, as crm.rebuild_aggregates() makes
-- them), and guarded and granted like the other aggregates.  Writers of
-- leads and deals wait meanwhile.
LOCK TABLE crm.lead, crm.opportunity IN SHARE MODE;
CREATE TABLE crm_internal.lead_source_aggregate (owner regrole NOT NULL, source text NOT NULL, status crm.lead_status NOT NULL,
    stripe integer NOT NULL, leads bigint NOT NULL DEFAULT 0, PRIMARY KEY (owner, stripe, source, status)) WITH (fillfactor = 20);
CREATE TABLE crm_internal.lead_month_aggregate (created_month date NOT NULL, owner regrole NOT NULL, status crm.lead_status NOT NULL,
    stripe integer NOT NULL, leads bigint NOT NULL DEFAULT 0, PRIMARY KEY (created_month, owner, stripe, status)) WITH (fillfactor = 20);
CREATE TABLE crm_internal.sales_performance_aggregate (closed_month date NOT NULL, owner regrole NOT NULL, stage text NOT NULL,
    close_month date NOT NULL, currency text NOT NULL, stripe integer NOT NULL, opportunities bigint NOT NULL DEFAULT 0,
    amount numeric NOT NULL DEFAULT 0, cycle_seconds numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (closed_month, owner, close_month, stripe, stage, currency)) WITH (fillfactor = 20);
DO $issue22_fill$
DECLARE
    d record;
BEGIN
    FOR d IN SELECT * FROM crm_internal.aggregate_definitions() AS a
              WHERE a.aggregate OPERATOR(pg_catalog.=) ANY (ARRAY['lead_source', 'lead_month', 'sales_performance']) LOOP
        EXECUTE pg_catalog.format('COMMENT ON COLUMN crm_internal.%I.stripe IS %L', d.aggregate_table,
            'Which writer recorded these changes: its backend id, or that id plus a multiple of 262144 while another transaction (a prepared one, or a compaction) held the row of the id; 0 after a compaction or rebuild. Lets writers add without waiting for each other');
        EXECUTE pg_catalog.format('INSERT INTO crm_internal.%1$I (%2$s, stripe, %3$s) SELECT %2$s, 0, %3$s FROM (%4$s) AS a',
                       d.aggregate_table,
                       (SELECT pg_catalog.string_agg(pg_catalog.format('%I', c), ', ' ORDER BY c.i)
                          FROM pg_catalog.unnest(d.group_columns) WITH ORDINALITY AS c (c, i)),
                       (SELECT pg_catalog.string_agg(pg_catalog.format('%I', m), ', ' ORDER BY m.i)
                          FROM pg_catalog.unnest(d.measures) WITH ORDINALITY AS m (m, i)),
                       d.actual_query);
        EXECUTE pg_catalog.format('ALTER TABLE crm_internal.%I ENABLE ROW LEVEL SECURITY', d.aggregate_table);
        EXECUTE pg_catalog.format('CREATE POLICY crm_admin_all ON crm_internal.%I TO crm_admin USING (true) WITH CHECK (true)', d.aggregate_table);
        EXECUTE pg_catalog.format('CREATE POLICY crm_analyst_read ON crm_internal.%I FOR SELECT TO crm_analyst USING (true)', d.aggregate_table);
        EXECUTE pg_catalog.format('CREATE POLICY crm_team_select ON crm_internal.%I FOR SELECT TO crm_manager, crm_sales USING (%s)', d.aggregate_table,
            'owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))');
        EXECUTE pg_catalog.format('GRANT SELECT ON crm_internal.%I TO crm_admin, crm_manager, crm_sales, crm_analyst', d.aggregate_table);
        PERFORM pg_catalog.pg_extension_config_dump(pg_catalog.format('crm_internal.%I', d.aggregate_table)::pg_catalog.regclass, '');
    END LOOP;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'crm update: the library does not define the aggregates of issue 22';
    END IF;
END
$issue22_fill$;
COMMENT ON TABLE crm_internal.lead_source_aggregate IS 'Leads per owner, lead source and lead status, one row per writing backend (stripe); sum over stripes to read (crm.lead_conversion_rates does, for its source, owner and campaign rows); written only by the aggregates_ triggers';
COMMENT ON COLUMN crm_internal.lead_source_aggregate.owner IS 'Lead owner';
COMMENT ON COLUMN crm_internal.lead_source_aggregate.source IS 'Lead source code (crm.lead_source)';
COMMENT ON COLUMN crm_internal.lead_source_aggregate.status IS 'Lead status';
COMMENT ON COLUMN crm_internal.lead_source_aggregate.leads IS 'Change in the number of leads recorded by this stripe';

COMMENT ON TABLE crm_internal.lead_month_aggregate IS 'Leads per month of capture (in UTC, whatever the session time zone), owner and lead status, one row per writing backend (stripe); sum over stripes to read (crm.lead_conversion_rates does, for its month rows); written only by the aggregates_ triggers';
COMMENT ON COLUMN crm_internal.lead_month_aggregate.created_month IS 'First day of the month the lead was created in, in UTC: date_trunc(''month'', created_at AT TIME ZONE ''UTC'')::date';
COMMENT ON COLUMN crm_internal.lead_month_aggregate.owner IS 'Lead owner';
COMMENT ON COLUMN crm_internal.lead_month_aggregate.status IS 'Lead status';
COMMENT ON COLUMN crm_internal.lead_month_aggregate.leads IS 'Change in the number of leads recorded by this stripe';

COMMENT ON TABLE crm_internal.sales_performance_aggregate IS 'Opportunities with a closing time (closed_at), per month of closing (in UTC), owner, stage, close month and currency, one row per writing backend (stripe); sum over stripes to read (crm.sales_performance does, keeping the closed stages as crm.opportunity_stage says at read time and converting each group to the corporate currency); written only by the aggregates_ triggers';
COMMENT ON COLUMN crm_internal.sales_performance_aggregate.closed_month IS 'First day of the month the opportunity was closed in, in UTC: date_trunc(''month'', closed_at AT TIME ZONE ''UTC'')::date';
COMMENT ON COLUMN crm_internal.sales_performance_aggregate.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm_internal.sales_performance_aggregate.stage IS 'Opportunity stage';
COMMENT ON COLUMN crm_internal.sales_performance_aggregate.close_month IS 'First day of the month of the close date; infinity when the opportunity has no close date (the month picks the exchange rate)';
COMMENT ON COLUMN crm_internal.sales_performance_aggregate.currency IS 'Currency of the amounts (the opportunities'' currency); the report converts per group at read time';
COMMENT ON COLUMN crm_internal.sales_performance_aggregate.opportunities IS 'Change in the number of opportunities recorded by this stripe';
COMMENT ON COLUMN crm_internal.sales_performance_aggregate.amount IS 'Change in the sum of amounts recorded by this stripe';
COMMENT ON COLUMN crm_internal.sales_performance_aggregate.cycle_seconds IS 'Change in the sum of the sales cycles, extract(epoch from closed_at - created_at) in seconds (exact to the microsecond), recorded by this stripe';

-- The comparison view (and so crm.verify_aggregates()) over every aggregate,
-- the three new ones too: same columns, more groups.
DO $compared$
DECLARE
    kept text;
    actual text;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.format(
               'SELECT %L::text AS aggregate, pg_catalog.jsonb_build_object(%s) AS group_key, %s'
               ' FROM crm_internal.%I AS g GROUP BY %s',
               d.aggregate, x.group_key, x.kept, d.aggregate_table, x.group_columns), ' UNION ALL ' ORDER BY d.ordinality),
           pg_catalog.string_agg(pg_catalog.format(
               'SELECT %L::text AS aggregate, pg_catalog.jsonb_build_object(%s) AS group_key, %s FROM (%s) AS g',
               d.aggregate, x.group_key, x.actual, d.actual_query), ' UNION ALL ' ORDER BY d.ordinality)
      INTO kept, actual
      FROM crm_internal.aggregate_definitions() WITH ORDINALITY AS d
     CROSS JOIN LATERAL (
           SELECT (SELECT pg_catalog.string_agg(pg_catalog.format('%L, g.%I', c, c), ', ' ORDER BY c.i)
                     FROM pg_catalog.unnest(d.group_columns) WITH ORDINALITY AS c (c, i)) AS group_key,
                  (SELECT pg_catalog.string_agg(pg_catalog.format('g.%I', c), ', ' ORDER BY c.i)
                     FROM pg_catalog.unnest(d.group_columns) WITH ORDINALITY AS c (c, i)) AS group_columns,
                  (SELECT pg_catalog.string_agg(CASE WHEN d.measures[m.i] IS NULL THEN 'NULL::numeric'
                                                     ELSE pg_catalog.format('pg_catalog.sum(g.%I)::numeric', d.measures[m.i])
                                                END || ' AS ' || m.name, ', ' ORDER BY m.i)
                     FROM pg_catalog.unnest(ARRAY['items', 'amount', 'weighted_amount']) WITH ORDINALITY AS m (name, i)) AS kept,
                  (SELECT pg_catalog.string_agg(CASE WHEN d.measures[m.i] IS NULL THEN 'NULL::numeric'
                                                     ELSE pg_catalog.format('g.%I::numeric', d.measures[m.i])
                                                END || ' AS ' || m.name, ', ' ORDER BY m.i)
                     FROM pg_catalog.unnest(ARRAY['items', 'amount', 'weighted_amount']) WITH ORDINALITY AS m (name, i)) AS actual
           ) AS x;
    EXECUTE pg_catalog.format(
        'CREATE OR REPLACE VIEW crm_internal.aggregates_compared WITH (security_invoker = true) AS'
        ' WITH kept AS (%s), actual AS (%s)'
        ' SELECT COALESCE(k.aggregate, a.aggregate) AS aggregate, COALESCE(k.group_key, a.group_key) AS group_key,'
        '        COALESCE(k.items, 0) AS kept_items, COALESCE(a.items, 0) AS actual_items,'
        '        COALESCE(k.amount, 0) AS kept_amount, COALESCE(a.amount, 0) AS actual_amount,'
        '        COALESCE(k.weighted_amount, 0) AS kept_weighted_amount,'
        '        COALESCE(a.weighted_amount, 0) AS actual_weighted_amount'
        '   FROM kept AS k'
        '   FULL JOIN actual AS a'
        '     ON a.aggregate OPERATOR(pg_catalog.=) k.aggregate AND a.group_key OPERATOR(pg_catalog.=) k.group_key',
        kept, actual);
END
$compared$;
COMMENT ON COLUMN crm_internal.aggregates_compared.aggregate IS 'pipeline, account, campaign_opportunity, campaign_lead, lead_source, lead_month or sales_performance';
COMMENT ON COLUMN crm_internal.aggregates_compared.kept_weighted_amount IS 'The aggregate''s second sum, as kept: weighted amounts (pipeline), sales cycle seconds (sales_performance); 0 where it has none';
COMMENT ON COLUMN crm_internal.aggregates_compared.actual_weighted_amount IS 'The second sum, computed now';

-- The two reports read the aggregates (same columns; grants kept).
-- Read from the maintained aggregates (stripes summed): time proportional to
-- the number of groups, not of leads.  Sources and owners from
-- crm_internal.lead_source_aggregate, months from crm_internal.lead_month_aggregate,
-- campaigns from crm_internal.campaign_lead_aggregate; the leads without a
-- campaign ('(none)') are all leads less those of a campaign, per owner
-- (the aggregates are read under the same row-level security, by owner).
-- The month of capture is the month in UTC, whatever the session's
-- TimeZone.
CREATE OR REPLACE VIEW crm.lead_conversion_rates WITH (security_invoker = true) AS
    WITH by_source AS (
        SELECT a.owner, a.source, pg_catalog.sum(a.leads) AS leads,
               COALESCE(pg_catalog.sum(a.leads) FILTER (WHERE a.status OPERATOR(pg_catalog.=) 'Converted'::crm.lead_status), 0) AS converted
          FROM crm_internal.lead_source_aggregate AS a
         GROUP BY a.owner, a.source),
    by_campaign AS (
        SELECT a.campaign_id, pg_catalog.sum(a.leads) AS leads,
               COALESCE(pg_catalog.sum(a.leads) FILTER (WHERE a.status OPERATOR(pg_catalog.=) 'Converted'::crm.lead_status), 0) AS converted
          FROM crm_internal.campaign_lead_aggregate AS a
         GROUP BY a.campaign_id),
    groups AS (
        SELECT 'source'::text AS dimension, s.source AS value, pg_catalog.sum(s.leads) AS leads, pg_catalog.sum(s.converted) AS converted
          FROM by_source AS s GROUP BY s.source
        UNION ALL
        SELECT 'owner', s.owner::text, pg_catalog.sum(s.leads), pg_catalog.sum(s.converted)
          FROM by_source AS s GROUP BY s.owner
        UNION ALL
        SELECT 'campaign', COALESCE(c.name, '(none)'), g.leads, g.converted
          FROM by_campaign AS g LEFT JOIN crm.campaign AS c ON c.id OPERATOR(pg_catalog.=) g.campaign_id
        UNION ALL
        SELECT 'campaign', '(none)',
               (SELECT pg_catalog.sum(s.leads) FROM by_source AS s) OPERATOR(pg_catalog.-) COALESCE((SELECT pg_catalog.sum(g.leads) FROM by_campaign AS g), 0),
               (SELECT pg_catalog.sum(s.converted) FROM by_source AS s) OPERATOR(pg_catalog.-) COALESCE((SELECT pg_catalog.sum(g.converted) FROM by_campaign AS g), 0)
        UNION ALL
        SELECT 'month', pg_catalog.to_char(a.created_month, 'YYYY-MM'), pg_catalog.sum(a.leads),
               COALESCE(pg_catalog.sum(a.leads) FILTER (WHERE a.status OPERATOR(pg_catalog.=) 'Converted'::crm.lead_status), 0)
          FROM crm_internal.lead_month_aggregate AS a GROUP BY a.created_month)
    SELECT g.dimension, g.value, g.leads::bigint AS leads, g.converted::bigint AS converted,
           pg_catalog.round(g.converted OPERATOR(pg_catalog./) g.leads, 4) AS conversion_rate
      FROM groups AS g
     WHERE g.leads OPERATOR(pg_catalog.<>) 0;
COMMENT ON VIEW crm.lead_conversion_rates IS 'Share of leads converted, by source, by owner, by campaign and by month of capture (the month in UTC, whatever the session time zone); read from the maintained aggregates (time grows with the groups, not the leads); each role sees the leads it may read';
COMMENT ON COLUMN crm.lead_conversion_rates.dimension IS 'source, owner, campaign or month';
COMMENT ON COLUMN crm.lead_conversion_rates.value IS 'The source code, owner (the role, as regrole text), campaign name or month of capture in UTC (YYYY-MM); (none) for leads without a campaign';
COMMENT ON COLUMN crm.lead_conversion_rates.leads IS 'Leads in the group';
COMMENT ON COLUMN crm.lead_conversion_rates.converted IS 'Of those, converted';
COMMENT ON COLUMN crm.lead_conversion_rates.conversion_rate IS 'converted / leads, 0-1';
-- Read from the maintained aggregate crm_internal.sales_performance_aggregate
-- (stripes summed): time proportional to the number of groups, not of deals.
-- The stages are joined at read time, so an edit of is_closed or is_won
-- shows at once.  Won amounts in the corporate currency: each group (one
-- close month, one currency: one rate, since rates change on the first of a
-- month) converted at read time at the rate of its close date's month, as
-- each deal at the rate of its close date, summed exactly, rounded once.
-- The month of closing is the month of closed_at in UTC, whatever the
-- session's TimeZone; the sales cycle is summed exactly (seconds).
CREATE OR REPLACE VIEW crm.sales_performance WITH (security_invoker = true) AS
    WITH closed_groups AS (
        SELECT a.owner, a.closed_month, a.close_month, a.currency, s.is_won,
               pg_catalog.sum(a.opportunities) AS deals, pg_catalog.sum(a.amount) AS amount,
               pg_catalog.sum(a.cycle_seconds) AS cycle_seconds
          FROM crm_internal.sales_performance_aggregate AS a
          JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) a.stage
         WHERE s.is_closed
         GROUP BY a.owner, a.closed_month, a.close_month, a.currency, s.is_won
        HAVING pg_catalog.sum(a.opportunities) OPERATOR(pg_catalog.<>) 0)
    SELECT pg_catalog.pg_get_userbyid(g.owner)::text AS owner, g.closed_month AS period,
           COALESCE(pg_catalog.sum(g.deals) FILTER (WHERE g.is_won), 0)::bigint AS won,
           COALESCE(pg_catalog.sum(g.deals) FILTER (WHERE NOT g.is_won), 0)::bigint AS lost,
           COALESCE(pg_catalog.round(pg_catalog.sum(g.amount OPERATOR(pg_catalog.*) x.rate) FILTER (WHERE g.is_won), 2), 0) AS won_amount,
           pg_catalog.round(COALESCE(pg_catalog.sum(g.deals) FILTER (WHERE g.is_won), 0) OPERATOR(pg_catalog./) pg_catalog.sum(g.deals), 4) AS win_rate,
           pg_catalog.round(pg_catalog.sum(g.amount OPERATOR(pg_catalog.*) x.rate) FILTER (WHERE g.is_won)
                            OPERATOR(pg_catalog./) pg_catalog.sum(g.deals) FILTER (WHERE g.is_won), 2) AS average_deal_size,
           pg_catalog.round(pg_catalog.sum(g.cycle_seconds) FILTER (WHERE g.is_won)
                            OPERATOR(pg_catalog./) (pg_catalog.sum(g.deals) FILTER (WHERE g.is_won) OPERATOR(pg_catalog.*) 86400), 1) AS average_cycle_days,
           CASE WHEN pg_catalog.min(g.currency) FILTER (WHERE g.is_won) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency) FILTER (WHERE g.is_won)
                THEN pg_catalog.min(g.currency) FILTER (WHERE g.is_won) END AS currency,
           CASE WHEN pg_catalog.min(g.currency) FILTER (WHERE g.is_won) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency) FILTER (WHERE g.is_won)
                THEN pg_catalog.sum(g.amount) FILTER (WHERE g.is_won) END AS won_amount_in_currency
      FROM closed_groups AS g
     CROSS JOIN LATERAL (SELECT CASE WHEN g.is_won
                                     THEN crm.exchange_rate_on(g.currency, NULLIF(g.close_month, 'infinity'::pg_catalog.date)) END AS rate) AS x
     GROUP BY g.owner, g.closed_month;
COMMENT ON VIEW crm.sales_performance IS 'Sales performance per owner and month of closing (the month of closed_at in UTC, whatever the session time zone): deals won and lost (by the stages'' is_closed and is_won now), won amount (in the corporate currency, each deal at the rate of its close date), win rate, average deal size, sales cycle length; the won deals'' currency and won amount in it when they share one currency. Read from the maintained aggregate (time grows with the groups, not the deals); each role sees the deals it may read';
COMMENT ON COLUMN crm.sales_performance.owner IS 'Opportunity owner: the role''s name, as text (crm.opportunity.owner is a regrole)';
COMMENT ON COLUMN crm.sales_performance.period IS 'First day of the month the deals closed in, in UTC';
COMMENT ON COLUMN crm.sales_performance.won IS 'Deals won';
COMMENT ON COLUMN crm.sales_performance.lost IS 'Deals lost';
COMMENT ON COLUMN crm.sales_performance.won_amount IS 'Amount of the won deals, in the corporate currency';
COMMENT ON COLUMN crm.sales_performance.win_rate IS 'won / (won + lost), 0-1';
COMMENT ON COLUMN crm.sales_performance.average_deal_size IS 'Average amount of a won deal, in the corporate currency';
COMMENT ON COLUMN crm.sales_performance.average_cycle_days IS 'Average days from creation to closing of a won deal (exact, rounded to a tenth of a day)';
COMMENT ON COLUMN crm.sales_performance.currency IS 'Currency of the won deals when they all share one; NULL when mixed or none won';
COMMENT ON COLUMN crm.sales_performance.won_amount_in_currency IS 'Amount of the won deals in that currency (NULL when mixed)';


-- issue 22: opportunity history outlives its deal (owner, currency, deletion), written per statement; crm.pipeline_as_of()
-- The history keeps entries after the deal is deleted: no foreign key (its
-- cascade emptied the history on TRUNCATE: the trigger does that now).
ALTER TABLE crm.opportunity_history DROP CONSTRAINT opportunity_history_opportunity_id_fkey;
ALTER TABLE crm.opportunity_history
    ADD COLUMN old_owner regrole,
    ADD COLUMN new_owner regrole,
    ADD COLUMN currency text,
    ADD COLUMN deleted boolean NOT NULL DEFAULT false;
-- Backfill: owner and currency from the deal as it is now (earlier versions
-- did not record them).
UPDATE crm.opportunity_history AS h
   SET new_owner = o.owner,
       old_owner = CASE WHEN h.old_stage IS NOT NULL THEN o.owner END,
       currency = o.currency
  FROM crm.opportunity AS o
 WHERE o.id OPERATOR(pg_catalog.=) h.opportunity_id;
ALTER TABLE crm.opportunity_history ALTER COLUMN new_owner SET NOT NULL, ALTER COLUMN currency SET NOT NULL;
CREATE INDEX opportunity_history_changed_at_idx ON crm.opportunity_history (changed_at);
COMMENT ON TABLE crm.opportunity_history IS 'Every change of an opportunity''s stage, amount, probability, close date, owner or currency, and its deletion (one row per change, old and new values; the first row is its creation); kept after the deal is deleted; written only by the database';
COMMENT ON COLUMN crm.opportunity_history.opportunity_id IS 'The opportunity (it may since have been deleted: see deleted)';
COMMENT ON COLUMN crm.opportunity_history.old_owner IS 'Owner before the change (NULL on creation)';
COMMENT ON COLUMN crm.opportunity_history.new_owner IS 'Owner after the change (on a deletion: the owner it had)';
COMMENT ON COLUMN crm.opportunity_history.currency IS 'Currency of the amounts (the deal''s currency after the change)';
COMMENT ON COLUMN crm.opportunity_history.deleted IS 'True for the entry recording the deal''s deletion (its new_ values repeat the last ones); the last entry of the deal';
COMMENT ON INDEX crm.opportunity_history_opportunity_id_idx IS 'A deal''s history in order; its last entry is its current state';
COMMENT ON INDEX crm.opportunity_history_changed_at_idx IS 'The entries made up to a moment: crm.pipeline_as_of() reads only those';
COMMENT ON FUNCTION crm_internal.record_opportunity_change() IS 'AFTER INSERT, UPDATE or DELETE statement trigger on crm.opportunity (transition tables): appends to crm.opportunity_history, in one INSERT per statement, an entry for every deal created, every deal whose stage, amount, probability, close date, owner or currency changed (not the cascade of a stage rename), and every deal deleted; AFTER TRUNCATE: empties crm.opportunity_history';
DROP TRIGGER record_opportunity_change ON crm.opportunity;
CREATE TRIGGER record_opportunity_change_insert AFTER INSERT ON crm.opportunity
    REFERENCING NEW TABLE AS history_new
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.record_opportunity_change();
CREATE TRIGGER record_opportunity_change_update AFTER UPDATE ON crm.opportunity
    REFERENCING OLD TABLE AS history_old NEW TABLE AS history_new
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.record_opportunity_change();
CREATE TRIGGER record_opportunity_change_delete AFTER DELETE ON crm.opportunity
    REFERENCING OLD TABLE AS history_old
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.record_opportunity_change();
CREATE TRIGGER record_opportunity_change_truncate AFTER TRUNCATE ON crm.opportunity
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.record_opportunity_change();
DROP POLICY crm_parent_select ON crm.opportunity_history;
CREATE POLICY crm_parent_select ON crm.opportunity_history FOR SELECT TO crm_manager, crm_sales
    USING (new_owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))
           OR EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id));
GRANT SELECT (new_amount, new_probability, new_close_date, old_owner, new_owner, currency, deleted)
    ON crm.opportunity_history TO crm_analyst;

CREATE FUNCTION crm.pipeline_as_of("at" timestamptz)
    RETURNS TABLE (sort_order integer, stage text, is_closed boolean, is_won boolean, owner text,
                   opportunities bigint, amount numeric, weighted_amount numeric, currency text,
                   amount_in_currency numeric, weighted_amount_in_currency numeric)
    LANGUAGE sql STABLE STRICT SECURITY INVOKER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH totals AS (
        SELECT h.new_stage AS stage, h.new_owner AS owner, h.currency,
               COALESCE(pg_catalog.date_trunc('month', h.new_close_date)::pg_catalog.date, 'infinity'::pg_catalog.date) AS close_month,
               pg_catalog.count(*) AS opportunities, pg_catalog.sum(h.new_amount) AS amount,
               pg_catalog.sum(pg_catalog.round(h.new_amount OPERATOR(pg_catalog.*) COALESCE(h.new_probability, 0)
                                               OPERATOR(pg_catalog./) 100, 2)) AS weighted_amount
          FROM (SELECT DISTINCT ON (e.opportunity_id) e.*
                  FROM crm.opportunity_history AS e
                 WHERE e.changed_at OPERATOR(pg_catalog.<=) pipeline_as_of."at"
                 ORDER BY e.opportunity_id, e.id DESC) AS h
         WHERE NOT h.deleted
         GROUP BY h.new_stage, h.new_owner, h.currency, 4),
    grouped AS (
        SELECT s.sort_order, t.stage, s.is_closed, s.is_won, pg_catalog.pg_get_userbyid(t.owner)::text AS owner,
               pg_catalog.sum(t.opportunities)::bigint AS opportunities,
               pg_catalog.round(pg_catalog.sum(t.amount OPERATOR(pg_catalog.*) r.rate), 2) AS amount,
               pg_catalog.round(pg_catalog.sum(t.weighted_amount OPERATOR(pg_catalog.*) r.rate), 2) AS weighted_amount,
               t.currency, pg_catalog.sum(t.amount) AS amount_in_currency, pg_catalog.sum(t.weighted_amount) AS weighted_amount_in_currency
          FROM totals AS t LEFT JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) t.stage
         CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(t.currency, NULLIF(t.close_month, 'infinity'::pg_catalog.date)) AS rate) AS r
         GROUP BY s.sort_order, t.stage, s.is_closed, s.is_won, 5, t.currency)
    SELECT g.sort_order, g.stage, g.is_closed, g.is_won, g.owner, g.opportunities, g.amount, g.weighted_amount,
           g.currency, g.amount_in_currency, g.weighted_amount_in_currency
      FROM grouped AS g
    UNION ALL
    SELECT s.sort_order, s.name, s.is_closed, s.is_won, NULL::text, 0::bigint, 0.00::numeric, 0.00::numeric,
           NULL::text, 0.00::numeric, 0.00::numeric
      FROM crm.opportunity_stage AS s
     WHERE s.active AND NOT EXISTS (SELECT 1 FROM grouped AS g WHERE g.stage OPERATOR(pg_catalog.=) s.name);
END;
COMMENT ON FUNCTION crm.pipeline_as_of(timestamptz) IS 'The pipeline as it was at a moment, exactly, from crm.opportunity_history: the columns of crm.pipeline_by_stage (by stage, owner and currency; amounts in the corporate currency at the rate of the close month, today''s rates), for the deals that existed then in the state they had then; a moment after the last change gives crm.pipeline_by_stage. Row security of the history applies. See README "Reports"';
REVOKE ALL ON FUNCTION crm.pipeline_as_of(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.pipeline_as_of(timestamptz) TO crm_admin, crm_manager, crm_sales, crm_analyst;

-- issue 22: stage velocity from a kept aggregate (crm.opportunity.stage_changed_at, crm_internal.stage_velocity_aggregate)
ALTER TABLE crm.opportunity ADD COLUMN stage_changed_at timestamptz DEFAULT pg_catalog.now();
-- Backfill without the triggers (nothing else changes): when the deal
-- entered its stage, by its last stage entry in the history.  Column
-- privileges: the new column gets none (INSERT and UPDATE are granted per
-- column since 0.6), as the install revokes them from it.
ALTER TABLE crm.opportunity DISABLE TRIGGER USER;
UPDATE crm.opportunity AS o
   SET stage_changed_at = COALESCE((SELECT h.changed_at FROM crm.opportunity_history AS h
                                     WHERE h.opportunity_id OPERATOR(pg_catalog.=) o.id
                                       AND h.old_stage IS DISTINCT FROM h.new_stage AND NOT h.deleted
                                     ORDER BY h.id DESC LIMIT 1), o.created_at);
ALTER TABLE crm.opportunity ENABLE TRIGGER USER;
ALTER TABLE crm.opportunity ENABLE ALWAYS TRIGGER search_text_fill;
ALTER TABLE crm.opportunity ADD CONSTRAINT opportunity_stage_changed_at_set CHECK (stage_changed_at IS NOT NULL);
COMMENT ON COLUMN crm.opportunity.stage_changed_at IS 'When the opportunity entered its current stage (transaction time; a stage rename is no move); set by the database (the default serves loads with the triggers off), never NULL (crm.stage_velocity reads it)';

CREATE TABLE crm_internal.stage_velocity_aggregate (
    stage     text NOT NULL,
    owner     regrole NOT NULL,
    stripe    integer NOT NULL,
    passages  bigint NOT NULL,
    seconds   numeric NOT NULL,
    PRIMARY KEY (stage, owner, stripe)
) WITH (fillfactor = 20);
COMMENT ON TABLE crm_internal.stage_velocity_aggregate IS 'Stage passages per stage left and owner, one row per writing backend (stripe); sum over stripes to read (crm.stage_velocity does); written only by the stage_velocity_fold trigger';
COMMENT ON COLUMN crm_internal.stage_velocity_aggregate.stage IS 'The stage the deals left (the name it had then)';
COMMENT ON COLUMN crm_internal.stage_velocity_aggregate.owner IS 'Owner of the deals while in that stage';
COMMENT ON COLUMN crm_internal.stage_velocity_aggregate.stripe IS 'Writing backend: rows of one backend, summed by readers';
COMMENT ON COLUMN crm_internal.stage_velocity_aggregate.passages IS 'Times deals left the stage by moving on, recorded by this stripe';
COMMENT ON COLUMN crm_internal.stage_velocity_aggregate.seconds IS 'Seconds those deals had spent in the stage (from entering to leaving, transaction times), recorded by this stripe';

ALTER TABLE crm_internal.stage_velocity_aggregate ENABLE ROW LEVEL SECURITY;
CREATE POLICY crm_admin_all ON crm_internal.stage_velocity_aggregate TO crm_admin USING (true) WITH CHECK (true);
CREATE POLICY crm_analyst_read ON crm_internal.stage_velocity_aggregate FOR SELECT TO crm_analyst USING (true);
CREATE POLICY crm_team_select ON crm_internal.stage_velocity_aggregate FOR SELECT TO crm_manager, crm_sales
    USING (owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles())));
GRANT SELECT ON crm_internal.stage_velocity_aggregate TO crm_admin, crm_manager, crm_sales, crm_analyst;

CREATE FUNCTION crm_internal.stage_velocity_fold() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_stage_velocity_fold'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.stage_velocity_fold() IS 'AFTER UPDATE statement trigger on crm.opportunity (transition tables velocity_old, velocity_new): adds the stage passages of the deals that moved (a move, not a stage rename) to this backend''s stripe of crm_internal.stage_velocity_aggregate; AFTER TRUNCATE: empties it';
-- Fires after aggregates_opportunity and record_opportunity_change (name
-- order); it reads only its transition tables and writes only its table.
CREATE TRIGGER stage_velocity_fold AFTER UPDATE ON crm.opportunity
    REFERENCING OLD TABLE AS velocity_old NEW TABLE AS velocity_new
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.stage_velocity_fold();
CREATE TRIGGER stage_velocity_fold_truncate AFTER TRUNCATE ON crm.opportunity
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.stage_velocity_fold();
SELECT pg_catalog.pg_extension_config_dump('crm_internal.stage_velocity_aggregate', '');
-- the passages the history holds, into stripe 0 (what crm.verify_aggregates() recomputes)
INSERT INTO crm_internal.stage_velocity_aggregate (stage, owner, stripe, passages, seconds)
SELECT p.old_stage, p.old_owner, 0, pg_catalog.count(*),
       pg_catalog.sum(pg_catalog.extract('epoch', p.changed_at OPERATOR(pg_catalog.-) p.entered_at))
  FROM (SELECT h.old_stage, h.old_owner, h.changed_at,
               pg_catalog.lag(h.changed_at) OVER (PARTITION BY h.opportunity_id ORDER BY h.id) AS entered_at
          FROM crm.opportunity_history AS h
         WHERE h.old_stage IS DISTINCT FROM h.new_stage AND NOT h.deleted) AS p
 WHERE p.old_stage IS NOT NULL
 GROUP BY p.old_stage, p.old_owner;

CREATE OR REPLACE VIEW crm.stage_velocity WITH (security_invoker = true) AS
    WITH kept AS (
        SELECT a.stage, pg_catalog.sum(a.passages) AS passages, pg_catalog.sum(a.seconds) AS seconds
          FROM crm_internal.stage_velocity_aggregate AS a
         GROUP BY a.stage),
    now_in AS (
        SELECT t.stage, pg_catalog.sum(t.opportunities) AS opportunities
          FROM crm.pipeline_totals AS t
         GROUP BY t.stage)
    SELECT s.sort_order, COALESCE(k.stage, n.stage) AS stage,
           COALESCE(k.passages, 0)::bigint AS passages,
           pg_catalog.round(k.seconds OPERATOR(pg_catalog./) NULLIF(k.passages, 0) OPERATOR(pg_catalog./) 86400, 2) AS average_days,
           COALESCE(n.opportunities, 0)::bigint AS currently_in_stage
      FROM kept AS k FULL JOIN now_in AS n ON n.stage OPERATOR(pg_catalog.=) k.stage
      LEFT JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) COALESCE(k.stage, n.stage);
COMMENT ON VIEW crm.stage_velocity IS 'Average time opportunities spend in each stage: passages (a deal leaving the stage by moving on, deleted deals'' included) and their average length, read from the kept passages (equal to crm.opportunity_history, checked by crm.verify_aggregates()), and the deals in the stage now, from the pipeline aggregate';
COMMENT ON COLUMN crm.stage_velocity.sort_order IS 'Position of the stage in the pipeline (NULL for a stage since renamed or removed)';
COMMENT ON COLUMN crm.stage_velocity.stage IS 'Stage';
COMMENT ON COLUMN crm.stage_velocity.passages IS 'How many times an opportunity entered and left the stage (moving on; a deal''s deletion is no passage)';
COMMENT ON COLUMN crm.stage_velocity.average_days IS 'Average days between entering and leaving the stage';
COMMENT ON COLUMN crm.stage_velocity.currently_in_stage IS 'Opportunities in the stage now';

CREATE OR REPLACE FUNCTION crm.verify_aggregates()
    RETURNS TABLE (aggregate text, group_key jsonb, measure text, kept numeric, actual numeric)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH converted AS (
        SELECT o.stage, o.owner, o.currency, o.account_id, o.campaign_id, s.is_closed, s.is_won,
               o.amount OPERATOR(pg_catalog.*) r.rate AS amount,
               pg_catalog.round(o.amount OPERATOR(pg_catalog.*) COALESCE(o.probability, 0) OPERATOR(pg_catalog./) 100, 2)
                   OPERATOR(pg_catalog.*) r.rate AS weighted_amount
          FROM crm.opportunity AS o
          JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) o.stage
         CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(o.currency, o.close_date) AS rate) AS r)
    SELECT v.aggregate, v.group_key, v.measure, v.kept, v.actual
      FROM (SELECT c.aggregate, c.group_key, m.measure, m.kept, m.actual
              FROM crm_internal.aggregates_compared AS c
             CROSS JOIN LATERAL (VALUES ('items', c.kept_items, c.actual_items),
                                        ('amount', c.kept_amount, c.actual_amount),
                                        ('weighted_amount', c.kept_weighted_amount, c.actual_weighted_amount))
                                AS m (measure, kept, actual)
            UNION ALL
            SELECT 'pipeline_by_stage', pg_catalog.jsonb_build_object('stage', COALESCE(k.stage, a.stage),
                       'owner', COALESCE(k.owner, a.owner), 'currency', COALESCE(k.currency, a.currency)),
                   m.measure, m.kept, m.actual
              FROM (SELECT p.stage, p.owner, p.currency, p.opportunities, p.amount, p.weighted_amount
                      FROM crm.pipeline_by_stage AS p) AS k
              FULL JOIN (SELECT o.stage, pg_catalog.pg_get_userbyid(o.owner)::text AS owner, o.currency,
                                pg_catalog.count(*) AS opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount), 2) AS amount,
                                pg_catalog.round(pg_catalog.sum(o.weighted_amount), 2) AS weighted_amount
                           FROM converted AS o
                          GROUP BY o.stage, o.owner, o.currency) AS a
                ON a.stage OPERATOR(pg_catalog.=) k.stage AND a.owner OPERATOR(pg_catalog.=) k.owner
               AND a.currency OPERATOR(pg_catalog.=) k.currency
             CROSS JOIN LATERAL (VALUES ('items', COALESCE(k.opportunities, 0)::numeric, COALESCE(a.opportunities, 0)::numeric),
                                        ('amount', COALESCE(k.amount, 0), COALESCE(a.amount, 0)),
                                        ('weighted_amount', COALESCE(k.weighted_amount, 0), COALESCE(a.weighted_amount, 0)))
                                AS m (measure, kept, actual)
            UNION ALL
            SELECT 'account_rollup', pg_catalog.jsonb_build_object('account_id', COALESCE(k.account_id, a.account_id)),
                   m.measure, m.kept, m.actual
              FROM (SELECT r.account_id, r.open_opportunities, r.open_amount, r.won_opportunities, r.won_amount
                      FROM crm.account_rollup AS r) AS k
              FULL JOIN (SELECT o.account_id,
                                pg_catalog.count(*) FILTER (WHERE NOT o.is_closed) AS open_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE NOT o.is_closed), 2) AS open_amount,
                                pg_catalog.count(*) FILTER (WHERE o.is_won) AS won_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE o.is_won), 2) AS won_amount
                           FROM converted AS o
                          WHERE o.account_id IS NOT NULL
                          GROUP BY o.account_id) AS a
                ON a.account_id OPERATOR(pg_catalog.=) k.account_id
             CROSS JOIN LATERAL (VALUES ('open_opportunities', COALESCE(k.open_opportunities, 0)::numeric, COALESCE(a.open_opportunities, 0)::numeric),
                                        ('open_amount', COALESCE(k.open_amount, 0), COALESCE(a.open_amount, 0)),
                                        ('won_opportunities', COALESCE(k.won_opportunities, 0)::numeric, COALESCE(a.won_opportunities, 0)::numeric),
                                        ('won_amount', COALESCE(k.won_amount, 0), COALESCE(a.won_amount, 0)))
                                AS m (measure, kept, actual)
            UNION ALL
            SELECT 'campaign_performance', pg_catalog.jsonb_build_object('campaign_id', COALESCE(k.campaign_id, a.campaign_id)),
                   m.measure, m.kept, m.actual
              FROM (SELECT p.campaign_id, p.opportunities, p.won_opportunities, p.opportunity_amount, p.won_amount
                      FROM crm.campaign_performance AS p) AS k
              FULL JOIN (SELECT o.campaign_id, pg_catalog.count(*) AS opportunities,
                                pg_catalog.count(*) FILTER (WHERE o.is_won) AS won_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount), 2) AS opportunity_amount,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE o.is_won), 2) AS won_amount
                           FROM converted AS o
                          WHERE o.campaign_id IS NOT NULL
                          GROUP BY o.campaign_id) AS a
                ON a.campaign_id OPERATOR(pg_catalog.=) k.campaign_id
             CROSS JOIN LATERAL (VALUES ('opportunities', COALESCE(k.opportunities, 0)::numeric, COALESCE(a.opportunities, 0)::numeric),
                                        ('won_opportunities', COALESCE(k.won_opportunities, 0)::numeric, COALESCE(a.won_opportunities, 0)::numeric),
                                        ('opportunity_amount', COALESCE(k.opportunity_amount, 0), COALESCE(a.opportunity_amount, 0)),
                                        ('won_amount', COALESCE(k.won_amount, 0), COALESCE(a.won_amount, 0)))
                                AS m (measure, kept, actual)
            UNION ALL
            -- stage velocity: the kept passages against the history's (a
            -- passage is an entry whose stage differs from the one before,
            -- not a deletion; its seconds run from the deal's previous stage
            -- entry)
            SELECT 'stage_velocity', pg_catalog.jsonb_build_object('stage', COALESCE(k.stage, a.stage),
                       'owner', pg_catalog.pg_get_userbyid(COALESCE(k.owner, a.owner))::text),
                   m.measure, m.kept, m.actual
              FROM (SELECT v.stage, v.owner::pg_catalog.oid AS owner, pg_catalog.sum(v.passages) AS passages,
                           pg_catalog.sum(v.seconds) AS seconds
                      FROM crm_internal.stage_velocity_aggregate AS v
                     GROUP BY v.stage, v.owner) AS k
              FULL JOIN (SELECT p.old_stage AS stage, p.old_owner::pg_catalog.oid AS owner, pg_catalog.count(*) AS passages,
                                pg_catalog.sum(pg_catalog.extract('epoch', p.changed_at OPERATOR(pg_catalog.-) p.entered_at)) AS seconds
                           FROM (SELECT h.old_stage, h.old_owner, h.changed_at,
                                        pg_catalog.lag(h.changed_at) OVER (PARTITION BY h.opportunity_id ORDER BY h.id) AS entered_at
                                   FROM crm.opportunity_history AS h
                                  WHERE h.old_stage IS DISTINCT FROM h.new_stage AND NOT h.deleted) AS p
                          WHERE p.old_stage IS NOT NULL
                          GROUP BY p.old_stage, p.old_owner) AS a
                ON a.stage OPERATOR(pg_catalog.=) k.stage AND a.owner OPERATOR(pg_catalog.=) k.owner
             CROSS JOIN LATERAL (VALUES ('passages', COALESCE(k.passages, 0)::numeric, COALESCE(a.passages, 0)::numeric),
                                        ('seconds', COALESCE(k.seconds, 0), COALESCE(a.seconds, 0)))
                                AS m (measure, kept, actual)) AS v
     WHERE v.kept OPERATOR(pg_catalog.<>) v.actual
     ORDER BY v.aggregate, v.group_key::text, v.measure;
END;
COMMENT ON FUNCTION crm.verify_aggregates() IS 'One row per group and measure where a maintained aggregate differs from a fresh GROUP BY over the base tables, or where a report converted to the corporate currency at read time (pipeline_by_stage per stage, owner and currency; account_rollup per account; campaign_performance per campaign) differs from a GROUP BY converting each opportunity at the rate of its close date (aggregate names the report), or where the kept stage passages (stage_velocity, per stage and owner) differ from crm.opportunity_history; no rows: all exact. ZC120 when a rate is missing. Reads every opportunity: for checking, as an admin (who sees every row)';
REVOKE ALL ON FUNCTION crm_internal.stage_velocity_fold() FROM PUBLIC;


-- issue 22: the change log per statement
-- crm_internal.record_change() logs a statement's rows from its transition
-- tables; the row triggers of 0.6 become three statement triggers a table.
DO $change_log$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['lead', 'product', 'price_book_entry', 'opportunity', 'account', 'contact', 'quote', 'sales_order', 'note', 'attachment', 'tag', 'record_tag']
    LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER record_change ON crm.%I', t);
        EXECUTE pg_catalog.format('CREATE TRIGGER record_change_insert AFTER INSERT ON crm.%I'
            ' REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.record_change()', t);
        EXECUTE pg_catalog.format('CREATE TRIGGER record_change_update AFTER UPDATE ON crm.%I'
            ' REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.record_change()', t);
        EXECUTE pg_catalog.format('CREATE TRIGGER record_change_delete AFTER DELETE ON crm.%I'
            ' REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.record_change()', t);
    END LOOP;
END
$change_log$;
COMMENT ON FUNCTION crm_internal.record_change() IS 'AFTER statement trigger, one per event: INSERT (REFERENCING NEW TABLE), UPDATE (OLD and NEW TABLE), DELETE (OLD TABLE), TRUNCATE: appends one entry per changed row (one for a TRUNCATE) to crm.change_log';

-- issue 22: bulk writes -- AFTER row triggers queued only for the rows they act on
DROP TRIGGER opportunity_contact_sync ON crm.opportunity;
CREATE TRIGGER opportunity_contact_sync_insert AFTER INSERT ON crm.opportunity
    FOR EACH ROW WHEN (NEW.contact_id IS NOT NULL)
    EXECUTE FUNCTION crm_internal.opportunity_contact_sync();
CREATE TRIGGER opportunity_contact_sync_update AFTER UPDATE OF contact_id ON crm.opportunity
    FOR EACH ROW WHEN (OLD.contact_id IS DISTINCT FROM NEW.contact_id)
    EXECUTE FUNCTION crm_internal.opportunity_contact_sync();


-- issue 22: the account rollup in O(groups): crm.account_rollup per account
-- (LATERAL), the settled account figures written by compactions, rebuilds
-- and rate edits, crm.top_accounts() (sql/install/88_aggregates.sql,
-- 88_aggregates_top_accounts.sql, 96_top_accounts.sql)
CREATE OR REPLACE VIEW crm.account_rollup WITH (security_invoker = true) AS
    SELECT ac.id AS account_id, ac.name, pg_catalog.pg_get_userbyid(ac.owner)::text AS owner,
           COALESCE(r.open_opportunities, 0) AS open_opportunities,
           COALESCE(r.open_amount, 0) AS open_amount,
           COALESCE(r.won_opportunities, 0) AS won_opportunities,
           COALESCE(r.won_amount, 0) AS won_amount,
           (SELECT pg_catalog.max(act.completed_at) FROM crm.activity AS act
             WHERE act.account_id OPERATOR(pg_catalog.=) ac.id) AS last_activity_at,
           r.currency, r.open_amount_in_currency, r.won_amount_in_currency
      FROM crm.account AS ac
      LEFT JOIN (
           SELECT g.account_id,
                  pg_catalog.sum(g.opportunities) FILTER (WHERE NOT g.is_closed) AS open_opportunities,
                  pg_catalog.round(pg_catalog.sum(g.amount OPERATOR(pg_catalog.*) g.rate) FILTER (WHERE NOT g.is_closed), 2) AS open_amount,
                  pg_catalog.sum(g.opportunities) FILTER (WHERE g.is_won) AS won_opportunities,
                  pg_catalog.round(pg_catalog.sum(g.amount OPERATOR(pg_catalog.*) g.rate) FILTER (WHERE g.is_won), 2) AS won_amount,
                  CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                       THEN pg_catalog.min(g.currency) END AS currency,
                  CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                       THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE NOT g.is_closed), 0) END AS open_amount_in_currency,
                  CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                       THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE g.is_won), 0) END AS won_amount_in_currency
             FROM (SELECT a.account_id, a.currency, s.is_closed, s.is_won,
                          pg_catalog.sum(a.opportunities) AS opportunities, pg_catalog.sum(a.amount) AS amount,
                          crm.exchange_rate_on(a.currency, NULLIF(a.close_month, 'infinity'::pg_catalog.date)) AS rate
                     FROM crm_internal.account_aggregate AS a
                     JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) a.stage
                    WHERE s.is_won OR NOT s.is_closed
                    GROUP BY a.account_id, a.stage, a.close_month, a.currency, s.is_closed, s.is_won
                   HAVING pg_catalog.sum(a.opportunities) OPERATOR(pg_catalog.<>) 0) AS g
            GROUP BY g.account_id) AS r
        ON r.account_id OPERATOR(pg_catalog.=) ac.id;

-- compaction and rebuild settle the accounts they change (as installed)
CREATE OR REPLACE FUNCTION crm.rebuild_aggregates() RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    agg record;
    n bigint;
    total bigint := 0;
BEGIN
    -- the lock of compactions and of everything that settles accounts
    -- (88_aggregates_top_accounts.sql), first, as they take it
    PERFORM crm_internal.aggregates_compaction_lock();
    -- writers wait until the rebuild commits; readers keep reading
    EXECUTE (SELECT format('LOCK TABLE %s IN SHARE MODE', string_agg(DISTINCT format('crm.%I', d.source_table), ', '))
               FROM crm_internal.aggregate_definitions() AS d);
    EXECUTE (SELECT format('LOCK TABLE %s IN EXCLUSIVE MODE',
                           string_agg(format('crm_internal.%I', d.aggregate_table), ', ' ORDER BY d.ordinality))
               FROM crm_internal.aggregate_definitions() WITH ORDINALITY AS d);
    FOR agg IN SELECT * FROM crm_internal.aggregate_definitions() LOOP
        EXECUTE format('DELETE FROM crm_internal.%I', agg.aggregate_table);
    END LOOP;
    -- one row per group of the GROUP BY the aggregate must add up to
    FOR agg IN SELECT * FROM crm_internal.aggregate_definitions() LOOP
        EXECUTE format('INSERT INTO crm_internal.%1$I (%2$s, stripe, %3$s) SELECT %2$s, 0, %3$s FROM (%4$s) AS a',
                       agg.aggregate_table,
                       (SELECT string_agg(format('%I', c), ', ' ORDER BY c.i)
                          FROM unnest(agg.group_columns) WITH ORDINALITY AS c (c, i)),
                       (SELECT string_agg(format('%I', m), ', ' ORDER BY m.i)
                          FROM unnest(agg.measures) WITH ORDINALITY AS m (m, i)),
                       agg.actual_query);
        GET DIAGNOSTICS n = ROW_COUNT;
        total := total + n;
    END LOOP;
    PERFORM crm_internal.account_settle(NULL);
    RETURN total;
END
$$;

CREATE OR REPLACE FUNCTION crm.compact_aggregates() RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    agg record;
    keys text;
    moved_keys text[];
    total bigint := 0;
    n bigint;
BEGIN
    -- One compaction at a time: a lock only compactions take, first, while
    -- this transaction holds no other.
    PERFORM crm_internal.aggregates_compaction_lock();
    -- A TRUNCATE of the base tables (which empties the aggregates) waits for
    -- the compaction and vice versa.
    EXECUTE (SELECT format('LOCK TABLE %s IN ACCESS SHARE MODE', string_agg(DISTINCT format('crm.%I', d.source_table), ', '))
               FROM crm_internal.aggregate_definitions() AS d);
    -- Every table it writes up front, in the order writers and
    -- crm.rebuild_aggregates() lock them, in the mode writers take.  ROW
    -- EXCLUSIVE conflicts with nothing REINDEX CONCURRENTLY, CREATE INDEX
    -- CONCURRENTLY, VACUUM or ANALYZE hold, which wait for this transaction's
    -- snapshot: waiting for them would be a deadlock.  It waits only for
    -- VACUUM FULL, CLUSTER, REINDEX, TRUNCATE and a rebuild, which wait for
    -- no snapshot, and never for a table lock once the work has begun.
    EXECUTE (SELECT format('LOCK TABLE %s IN ROW EXCLUSIVE MODE',
                           string_agg(format('crm_internal.%I', d.aggregate_table), ', ' ORDER BY d.ordinality))
               FROM crm_internal.aggregate_definitions() WITH ORDINALITY AS d);
    -- Per aggregate table: move every stripe row that no open transaction
    -- is writing into stripe 0 (rows a writer holds are skipped and moved
    -- next time), then drop stripe-0 rows that add up to nothing.  Writers
    -- only ever touch their own stripes, never stripe 0, and write to another
    -- of theirs rather than wait for a row the compaction holds, so nobody
    -- waits for a compaction.
    FOR agg IN SELECT * FROM crm_internal.aggregate_definitions() LOOP
        keys := (SELECT string_agg(format('%I', c), ', ' ORDER BY c.i)
                   FROM unnest(agg.group_columns) WITH ORDINALITY AS c (c, i));
        -- (returns the first keys of the groups moved: the accounts whose
        -- settled figures change, see 88_aggregates_top_accounts.sql)
        EXECUTE format(
            'WITH moved AS ('
            '    DELETE FROM crm_internal.%1$I AS a'
            '     WHERE a.ctid OPERATOR(pg_catalog.=) ANY (ARRAY('
            '               SELECT x.ctid FROM crm_internal.%1$I AS x'
            '                WHERE x.stripe OPERATOR(pg_catalog.<>) 0 FOR UPDATE SKIP LOCKED))'
            '    RETURNING a.*),'
            ' folded AS ('
            '    INSERT INTO crm_internal.%1$I AS t (%2$s, stripe, %3$s)'
            '    SELECT %2$s, 0, %4$s FROM moved GROUP BY %2$s'
            '    ON CONFLICT (%2$s, stripe) DO UPDATE SET %5$s)'
            ' SELECT ARRAY(SELECT DISTINCT m.%6$I::text FROM moved AS m)',
            agg.aggregate_table, keys,
            (SELECT string_agg(format('%I', m), ', ' ORDER BY m.i)
               FROM unnest(agg.measures) WITH ORDINALITY AS m (m, i)),
            (SELECT string_agg(format('pg_catalog.sum(%I)', m), ', ' ORDER BY m.i)
               FROM unnest(agg.measures) WITH ORDINALITY AS m (m, i)),
            (SELECT string_agg(format('%1$I = t.%1$I OPERATOR(pg_catalog.+) EXCLUDED.%1$I', m), ', ' ORDER BY m.i)
               FROM unnest(agg.measures) WITH ORDINALITY AS m (m, i)),
            agg.group_columns[1]) INTO moved_keys;
        IF agg.aggregate OPERATOR(pg_catalog.=) 'account' THEN
            PERFORM crm_internal.account_settle(moved_keys::bigint[]);
        END IF;
        EXECUTE format('DELETE FROM crm_internal.%I AS a WHERE a.stripe OPERATOR(pg_catalog.=) 0 AND %s', agg.aggregate_table,
                       (SELECT string_agg(format('a.%I OPERATOR(pg_catalog.=) 0', m), ' AND ' ORDER BY m.i)
                          FROM unnest(agg.measures) WITH ORDINALITY AS m (m, i)));
        EXECUTE format('SELECT pg_catalog.count(*) FROM crm_internal.%I', agg.aggregate_table) INTO n;
        total := total + n;
    END LOOP;
    RETURN total;
END
$$;

-- Pending accounts: those with stripe rows a compaction has not folded yet.
-- The indexed columns never change when a writer adds to its stripe row, so
-- those updates stay HOT; an entry is added only when a stripe row is made.
CREATE INDEX account_aggregate_pending_idx ON crm_internal.account_aggregate (account_id)
    WHERE stripe OPERATOR(pg_catalog.<>) 0;
COMMENT ON INDEX crm_internal.account_aggregate_pending_idx IS 'The accounts with uncompacted stripe rows (stripe <> 0): the pending accounts crm.top_accounts() computes from their groups rather than from crm_internal.account_settled';

-- The accounts' figures from the compacted groups (stripe 0 only), one row
-- per (account, opportunity owner) and one per account for all owners
-- (owner 0): what crm_internal.account_settled must hold.  Amounts are
-- converted per group, at the rate crm.exchange_rate_on() gives (the same
-- lookup, without its error: NULL when a group that has deals has no rate),
-- and kept unrounded so that a manager's sum over the team's owners rounds
-- once, as crm.account_rollup does.
CREATE VIEW crm_internal.account_settled_groups WITH (security_invoker = true) AS
    SELECT a.account_id, a.owner, s.is_closed, s.is_won, a.opportunities,
           a.amount OPERATOR(pg_catalog.*)
               (CASE WHEN a.currency OPERATOR(pg_catalog.=) (SELECT t.corporate_currency FROM crm.settings AS t)
                     THEN 1::pg_catalog.numeric
                     ELSE (SELECT r.rate FROM crm.exchange_rate AS r
                            WHERE r.currency OPERATOR(pg_catalog.=) a.currency
                              AND r.valid_from OPERATOR(pg_catalog.<=) a.close_month
                            ORDER BY r.valid_from DESC LIMIT 1) END) AS converted
      FROM crm_internal.account_aggregate AS a
      JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) a.stage
     WHERE a.stripe OPERATOR(pg_catalog.=) 0 AND (s.is_won OR NOT s.is_closed);
COMMENT ON VIEW crm_internal.account_settled_groups IS 'The compacted groups (stripe 0) of crm_internal.account_aggregate in open or won stages, each amount converted to the corporate currency at the rate of its close month (NULL: no rate); what crm_internal.account_settled_actual adds up';
COMMENT ON COLUMN crm_internal.account_settled_groups.account_id IS 'The account';
COMMENT ON COLUMN crm_internal.account_settled_groups.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm_internal.account_settled_groups.is_closed IS 'Whether the group''s stage is closed (then it is won)';
COMMENT ON COLUMN crm_internal.account_settled_groups.is_won IS 'Whether the group''s stage is won';
COMMENT ON COLUMN crm_internal.account_settled_groups.opportunities IS 'Opportunities in the group';
COMMENT ON COLUMN crm_internal.account_settled_groups.converted IS 'Their amount in the corporate currency, unrounded; NULL when the group''s currency has no rate for its close month';

CREATE VIEW crm_internal.account_settled_actual WITH (security_invoker = true) AS
    SELECT g.account_id, g.owner,
           COALESCE(pg_catalog.sum(g.opportunities) FILTER (WHERE NOT g.is_closed), 0)::bigint AS open_opportunities,
           CASE WHEN pg_catalog.bool_or(g.converted IS NULL AND g.opportunities OPERATOR(pg_catalog.<>) 0) FILTER (WHERE NOT g.is_closed)
                THEN NULL ELSE COALESCE(pg_catalog.sum(g.converted) FILTER (WHERE NOT g.is_closed), 0) END AS open_amount,
           COALESCE(pg_catalog.sum(g.opportunities) FILTER (WHERE g.is_won), 0)::bigint AS won_opportunities,
           CASE WHEN pg_catalog.bool_or(g.converted IS NULL AND g.opportunities OPERATOR(pg_catalog.<>) 0) FILTER (WHERE g.is_won)
                THEN NULL ELSE COALESCE(pg_catalog.sum(g.converted) FILTER (WHERE g.is_won), 0) END AS won_amount
      FROM crm_internal.account_settled_groups AS g
     GROUP BY g.account_id, g.owner
    HAVING pg_catalog.sum(g.opportunities) OPERATOR(pg_catalog.<>) 0
    UNION ALL
    SELECT g.account_id, 0::pg_catalog.oid::pg_catalog.regrole,
           COALESCE(pg_catalog.sum(g.opportunities) FILTER (WHERE NOT g.is_closed), 0)::bigint,
           CASE WHEN pg_catalog.bool_or(g.converted IS NULL AND g.opportunities OPERATOR(pg_catalog.<>) 0) FILTER (WHERE NOT g.is_closed)
                THEN NULL ELSE COALESCE(pg_catalog.sum(g.converted) FILTER (WHERE NOT g.is_closed), 0) END,
           COALESCE(pg_catalog.sum(g.opportunities) FILTER (WHERE g.is_won), 0)::bigint,
           CASE WHEN pg_catalog.bool_or(g.converted IS NULL AND g.opportunities OPERATOR(pg_catalog.<>) 0) FILTER (WHERE g.is_won)
                THEN NULL ELSE COALESCE(pg_catalog.sum(g.converted) FILTER (WHERE g.is_won), 0) END
      FROM crm_internal.account_settled_groups AS g
     GROUP BY g.account_id
    HAVING pg_catalog.sum(g.opportunities) OPERATOR(pg_catalog.<>) 0;
COMMENT ON VIEW crm_internal.account_settled_actual IS 'What crm_internal.account_settled must hold, computed now from the compacted groups (stripe 0) of crm_internal.account_aggregate at the current rates: per account and opportunity owner, and per account for all owners (owner 0)';
COMMENT ON COLUMN crm_internal.account_settled_actual.account_id IS 'The account';
COMMENT ON COLUMN crm_internal.account_settled_actual.owner IS 'Opportunity owner; 0 (shown as -): all owners';
COMMENT ON COLUMN crm_internal.account_settled_actual.open_opportunities IS 'Opportunities in a stage that is not closed';
COMMENT ON COLUMN crm_internal.account_settled_actual.open_amount IS 'Their amount in the corporate currency, unrounded; NULL when one of their groups has no rate';
COMMENT ON COLUMN crm_internal.account_settled_actual.won_opportunities IS 'Opportunities won';
COMMENT ON COLUMN crm_internal.account_settled_actual.won_amount IS 'Their amount in the corporate currency, unrounded; NULL when one of their groups has no rate';

CREATE TABLE crm_internal.account_settled (
    account_id          bigint NOT NULL,
    owner               regrole NOT NULL,
    open_opportunities  bigint NOT NULL,
    open_amount         numeric,
    won_opportunities   bigint NOT NULL,
    won_amount          numeric,
    PRIMARY KEY (account_id, owner)
);
COMMENT ON TABLE crm_internal.account_settled IS 'Per account, the figures of its compacted aggregate groups (stripe 0 of crm_internal.account_aggregate) in the corporate currency: per opportunity owner, and for all owners (owner 0). Written only by crm.compact_aggregates(), crm.rebuild_aggregates() and edits of the exchange rates (never by the deal triggers: no hot rows); exact for an account without uncompacted stripe rows. crm.top_accounts() walks its indexes';
COMMENT ON COLUMN crm_internal.account_settled.account_id IS 'The account';
COMMENT ON COLUMN crm_internal.account_settled.owner IS 'Opportunity owner whose deals these are; 0 (shown as -): all owners, read by admins and analysts';
COMMENT ON COLUMN crm_internal.account_settled.open_opportunities IS 'Compacted opportunities in a stage that is not closed';
COMMENT ON COLUMN crm_internal.account_settled.open_amount IS 'Their amount in the corporate currency at the current rates, unrounded; NULL when a group has no rate (crm.top_accounts() then computes the account, raising ZC120 as crm.account_rollup does)';
COMMENT ON COLUMN crm_internal.account_settled.won_opportunities IS 'Compacted opportunities won';
COMMENT ON COLUMN crm_internal.account_settled.won_amount IS 'Their amount in the corporate currency at the current rates, unrounded; NULL when a group has no rate';
-- the walks of crm.top_accounts(): per owner key, amount as account_rollup rounds it, then account
CREATE INDEX account_settled_open_idx ON crm_internal.account_settled
    (owner, pg_catalog.round(open_amount, 2) DESC, account_id);
COMMENT ON INDEX crm_internal.account_settled_open_idx IS 'crm.top_accounts(''open_amount'', n): accounts of one owner key in the order of their rounded open amount';
CREATE INDEX account_settled_won_idx ON crm_internal.account_settled
    (owner, pg_catalog.round(won_amount, 2) DESC, account_id);
COMMENT ON INDEX crm_internal.account_settled_won_idx IS 'crm.top_accounts(''won_amount'', n): accounts of one owner key in the order of their rounded won amount';
CREATE INDEX account_settled_unpriced_idx ON crm_internal.account_settled (account_id)
    WHERE open_amount IS NULL OR won_amount IS NULL;
COMMENT ON INDEX crm_internal.account_settled_unpriced_idx IS 'Accounts with a group in a currency without a rate: crm.top_accounts() computes them (and raises ZC120) rather than trust the settled amount';

-- Every settling counts itself in one row, which only settling (under the
-- compaction lock: never two at once) writes.  In READ COMMITTED it costs
-- nothing; in REPEATABLE READ or SERIALIZABLE a settling whose snapshot was
-- taken before another one committed would compute from stale groups or
-- rates, and its update of this row fails with 40001 instead.
CREATE TABLE crm_internal.account_settle_epoch (
    settlings   bigint NOT NULL,
    one_row     boolean PRIMARY KEY DEFAULT true CONSTRAINT account_settle_epoch_one_row CHECK (one_row)
);
INSERT INTO crm_internal.account_settle_epoch (settlings) VALUES (0);
COMMENT ON TABLE crm_internal.account_settle_epoch IS 'How many times account figures were settled (crm_internal.account_settle()); one row, written only under the compaction lock, so that a settling under a snapshot older than the last one fails (40001) rather than write stale figures';
COMMENT ON COLUMN crm_internal.account_settle_epoch.settlings IS 'Settlings so far';
COMMENT ON COLUMN crm_internal.account_settle_epoch.one_row IS 'Always true: the table has one row';

-- Settle the given accounts (NULL: all): their settled rows made again from
-- crm_internal.account_settled_actual.  Callers hold the compaction lock.
CREATE FUNCTION crm_internal.account_settle(accounts bigint[]) RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    UPDATE crm_internal.account_settle_epoch SET settlings = settlings OPERATOR(pg_catalog.+) 1;
    IF accounts IS NULL THEN
        DELETE FROM crm_internal.account_settled;
        INSERT INTO crm_internal.account_settled
               (account_id, owner, open_opportunities, open_amount, won_opportunities, won_amount)
        SELECT x.account_id, x.owner, x.open_opportunities, x.open_amount, x.won_opportunities, x.won_amount
          FROM crm_internal.account_settled_actual AS x;
    ELSE
        DELETE FROM crm_internal.account_settled AS t WHERE t.account_id OPERATOR(pg_catalog.=) ANY (accounts);
        INSERT INTO crm_internal.account_settled
               (account_id, owner, open_opportunities, open_amount, won_opportunities, won_amount)
        SELECT x.account_id, x.owner, x.open_opportunities, x.open_amount, x.won_opportunities, x.won_amount
          FROM crm_internal.account_settled_actual AS x
         WHERE x.account_id OPERATOR(pg_catalog.=) ANY (accounts);
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION crm_internal.account_settle(bigint[]) FROM PUBLIC;
COMMENT ON FUNCTION crm_internal.account_settle(bigint[]) IS 'Makes the settled rows (crm_internal.account_settled) of the given accounts (NULL: all) again from their compacted aggregate groups at the current rates; returns the number of rows written. Called by crm.compact_aggregates(), crm.rebuild_aggregates() and the triggers on rates and the corporate currency, which hold the compaction lock';

-- Rates and the corporate currency: the settled amounts are converted at
-- them, so an edit settles every account again, in the editing
-- transaction, after taking the compaction lock (a compaction running
-- meanwhile used the old rates; this waits for it and settles after it).
-- O(groups), once per statement; rates change once a month.
CREATE FUNCTION crm_internal.account_settle_all() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_LEVEL OPERATOR(pg_catalog.<>) 'STATEMENT' OR TG_WHEN OPERATOR(pg_catalog.<>) 'AFTER' THEN
        RAISE EXCEPTION 'crm_internal.account_settle_all() must be fired AFTER ... FOR EACH STATEMENT'
            USING ERRCODE = 'triggered_action_exception';
    END IF;
    PERFORM crm_internal.aggregates_compaction_lock();
    IF TG_OP OPERATOR(pg_catalog.=) 'TRUNCATE' AND TG_TABLE_NAME OPERATOR(pg_catalog.=) 'opportunity' THEN
        DELETE FROM crm_internal.account_settled;	-- the aggregates were emptied too
    ELSE
        PERFORM crm_internal.account_settle(NULL);
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION crm_internal.account_settle_all() FROM PUBLIC;
COMMENT ON FUNCTION crm_internal.account_settle_all() IS 'AFTER statement trigger on crm.exchange_rate and on the corporate currency of crm.settings: settles every account again at the new rates (under the compaction lock); on TRUNCATE of crm.opportunity, empties crm_internal.account_settled as the aggregates are emptied';
CREATE TRIGGER account_settle_rates AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm.exchange_rate
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.account_settle_all();
CREATE TRIGGER account_settle_corporate_currency AFTER UPDATE OF corporate_currency ON crm.settings
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.account_settle_all();
CREATE TRIGGER account_settle_truncate AFTER TRUNCATE ON crm.opportunity
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.account_settle_all();

-- crm.top_accounts() is in 96_top_accounts.sql: it needs crm.team_roles()
-- (95_row_security.sql), which a SQL-standard body resolves when it is made.

-- One owner's accounts: crm.account_rollup WHERE account_id IN (the
-- owner's accounts) reads only their groups through this index.
CREATE INDEX account_owner_idx ON crm.account (owner);
COMMENT ON INDEX crm.account_owner_idx IS 'The accounts of one owner (one owner''s account rollup, the team policies)';

CREATE OR REPLACE FUNCTION crm.verify_aggregates()
    RETURNS TABLE (aggregate text, group_key jsonb, measure text, kept numeric, actual numeric)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH converted AS (
        SELECT o.stage, o.owner, o.currency, o.account_id, o.campaign_id, s.is_closed, s.is_won,
               o.amount OPERATOR(pg_catalog.*) r.rate AS amount,
               pg_catalog.round(o.amount OPERATOR(pg_catalog.*) COALESCE(o.probability, 0) OPERATOR(pg_catalog./) 100, 2)
                   OPERATOR(pg_catalog.*) r.rate AS weighted_amount
          FROM crm.opportunity AS o
          JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) o.stage
         CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(o.currency, o.close_date) AS rate) AS r)
    SELECT v.aggregate, v.group_key, v.measure, v.kept, v.actual
      FROM (SELECT c.aggregate, c.group_key, m.measure, m.kept, m.actual
              FROM crm_internal.aggregates_compared AS c
             CROSS JOIN LATERAL (VALUES ('items', c.kept_items, c.actual_items),
                                        ('amount', c.kept_amount, c.actual_amount),
                                        ('weighted_amount', c.kept_weighted_amount, c.actual_weighted_amount))
                                AS m (measure, kept, actual)
            UNION ALL
            SELECT 'pipeline_by_stage', pg_catalog.jsonb_build_object('stage', COALESCE(k.stage, a.stage),
                       'owner', COALESCE(k.owner, a.owner), 'currency', COALESCE(k.currency, a.currency)),
                   m.measure, m.kept, m.actual
              FROM (SELECT p.stage, p.owner, p.currency, p.opportunities, p.amount, p.weighted_amount
                      FROM crm.pipeline_by_stage AS p) AS k
              FULL JOIN (SELECT o.stage, pg_catalog.pg_get_userbyid(o.owner)::text AS owner, o.currency,
                                pg_catalog.count(*) AS opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount), 2) AS amount,
                                pg_catalog.round(pg_catalog.sum(o.weighted_amount), 2) AS weighted_amount
                           FROM converted AS o
                          GROUP BY o.stage, o.owner, o.currency) AS a
                ON a.stage OPERATOR(pg_catalog.=) k.stage AND a.owner OPERATOR(pg_catalog.=) k.owner
               AND a.currency OPERATOR(pg_catalog.=) k.currency
             CROSS JOIN LATERAL (VALUES ('items', COALESCE(k.opportunities, 0)::numeric, COALESCE(a.opportunities, 0)::numeric),
                                        ('amount', COALESCE(k.amount, 0), COALESCE(a.amount, 0)),
                                        ('weighted_amount', COALESCE(k.weighted_amount, 0), COALESCE(a.weighted_amount, 0)))
                                AS m (measure, kept, actual)
            UNION ALL
            SELECT 'account_rollup', pg_catalog.jsonb_build_object('account_id', COALESCE(k.account_id, a.account_id)),
                   m.measure, m.kept, m.actual
              FROM (SELECT r.account_id, r.open_opportunities, r.open_amount, r.won_opportunities, r.won_amount
                      FROM crm.account_rollup AS r) AS k
              FULL JOIN (SELECT o.account_id,
                                pg_catalog.count(*) FILTER (WHERE NOT o.is_closed) AS open_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE NOT o.is_closed), 2) AS open_amount,
                                pg_catalog.count(*) FILTER (WHERE o.is_won) AS won_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE o.is_won), 2) AS won_amount
                           FROM converted AS o
                          WHERE o.account_id IS NOT NULL
                          GROUP BY o.account_id) AS a
                ON a.account_id OPERATOR(pg_catalog.=) k.account_id
             CROSS JOIN LATERAL (VALUES ('open_opportunities', COALESCE(k.open_opportunities, 0)::numeric, COALESCE(a.open_opportunities, 0)::numeric),
                                        ('open_amount', COALESCE(k.open_amount, 0), COALESCE(a.open_amount, 0)),
                                        ('won_opportunities', COALESCE(k.won_opportunities, 0)::numeric, COALESCE(a.won_opportunities, 0)::numeric),
                                        ('won_amount', COALESCE(k.won_amount, 0), COALESCE(a.won_amount, 0)))
                                AS m (measure, kept, actual)
            UNION ALL
            -- the settled account figures (crm.top_accounts() walks them)
            -- against the compacted groups they are made from, for every
            -- account without uncompacted stripes (those whose settled
            -- figures it uses; a stage renamed since the last compaction
            -- leaves the others' stripe 0 under the old name); a missing
            -- rate (NULL amount) compares as -1
            SELECT 'account_settled', pg_catalog.jsonb_build_object('account_id', COALESCE(k.account_id, a.account_id),
                       'owner', COALESCE(k.owner, a.owner)::pg_catalog.oid),
                   m.measure, m.kept, m.actual
              FROM crm_internal.account_settled AS k
              FULL JOIN crm_internal.account_settled_actual AS a
                ON a.account_id OPERATOR(pg_catalog.=) k.account_id AND a.owner OPERATOR(pg_catalog.=) k.owner
             CROSS JOIN LATERAL (SELECT NOT EXISTS (SELECT 1 FROM crm_internal.account_aggregate AS x
                                                     WHERE x.account_id OPERATOR(pg_catalog.=) COALESCE(k.account_id, a.account_id)
                                                       AND x.stripe OPERATOR(pg_catalog.<>) 0) AS settled) AS p
             CROSS JOIN LATERAL (VALUES ('open_opportunities', COALESCE(k.open_opportunities, 0)::numeric, COALESCE(a.open_opportunities, 0)::numeric),
                                        ('open_amount', CASE WHEN k.account_id IS NULL THEN 0 ELSE COALESCE(k.open_amount, -1) END,
                                                        CASE WHEN a.account_id IS NULL THEN 0 ELSE COALESCE(a.open_amount, -1) END),
                                        ('won_opportunities', COALESCE(k.won_opportunities, 0)::numeric, COALESCE(a.won_opportunities, 0)::numeric),
                                        ('won_amount', CASE WHEN k.account_id IS NULL THEN 0 ELSE COALESCE(k.won_amount, -1) END,
                                                       CASE WHEN a.account_id IS NULL THEN 0 ELSE COALESCE(a.won_amount, -1) END))
                                AS m (measure, kept, actual)
             WHERE p.settled
            UNION ALL
            SELECT 'campaign_performance', pg_catalog.jsonb_build_object('campaign_id', COALESCE(k.campaign_id, a.campaign_id)),
                   m.measure, m.kept, m.actual
              FROM (SELECT p.campaign_id, p.opportunities, p.won_opportunities, p.opportunity_amount, p.won_amount
                      FROM crm.campaign_performance AS p) AS k
              FULL JOIN (SELECT o.campaign_id, pg_catalog.count(*) AS opportunities,
                                pg_catalog.count(*) FILTER (WHERE o.is_won) AS won_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount), 2) AS opportunity_amount,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE o.is_won), 2) AS won_amount
                           FROM converted AS o
                          WHERE o.campaign_id IS NOT NULL
                          GROUP BY o.campaign_id) AS a
                ON a.campaign_id OPERATOR(pg_catalog.=) k.campaign_id
             CROSS JOIN LATERAL (VALUES ('opportunities', COALESCE(k.opportunities, 0)::numeric, COALESCE(a.opportunities, 0)::numeric),
                                        ('won_opportunities', COALESCE(k.won_opportunities, 0)::numeric, COALESCE(a.won_opportunities, 0)::numeric),
                                        ('opportunity_amount', COALESCE(k.opportunity_amount, 0), COALESCE(a.opportunity_amount, 0)),
                                        ('won_amount', COALESCE(k.won_amount, 0), COALESCE(a.won_amount, 0)))
                                AS m (measure, kept, actual)) AS v
     WHERE v.kept OPERATOR(pg_catalog.<>) v.actual
     ORDER BY v.aggregate, v.group_key::text, v.measure;
END;
COMMENT ON FUNCTION crm.verify_aggregates() IS 'One row per group and measure where a maintained aggregate differs from a fresh GROUP BY over the base tables, or where a report converted to the corporate currency at read time (pipeline_by_stage per stage, owner and currency; account_rollup per account; campaign_performance per campaign) differs from a GROUP BY converting each opportunity at the rate of its close date (aggregate names the report), or where the settled account figures crm.top_accounts() reads differ from the compacted groups at the current rates for an account without uncompacted stripes (account_settled per account and opportunity owner, 0: all owners); no rows: all exact. ZC120 when a rate is missing. Reads every opportunity: for checking, as an admin (who sees every row)';

-- row-level security on the settled figures, as on the aggregates (95_row_security.sql)
ALTER TABLE crm_internal.account_settled ENABLE ROW LEVEL SECURITY;
CREATE POLICY crm_admin_all ON crm_internal.account_settled TO crm_admin USING (true) WITH CHECK (true);
CREATE POLICY crm_analyst_read ON crm_internal.account_settled FOR SELECT TO crm_analyst USING (true);
CREATE POLICY crm_team_select ON crm_internal.account_settled FOR SELECT TO crm_manager, crm_sales USING (owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles())));

-- The arguments of crm.top_accounts(), checked by casting to these domains
-- (no role may execute a function of crm_internal, and a SQL function
-- cannot raise): 23514 for another measure or a negative number, 23502 for
-- NULL.
CREATE DOMAIN crm_internal.top_accounts_by AS text NOT NULL
    CONSTRAINT top_accounts_by_measure CHECK (VALUE OPERATOR(pg_catalog.=) ANY (ARRAY['open_amount', 'won_amount']));
COMMENT ON DOMAIN crm_internal.top_accounts_by IS 'What crm.top_accounts() orders by: open_amount or won_amount';
CREATE DOMAIN crm_internal.top_accounts_count AS integer NOT NULL
    CONSTRAINT top_accounts_count_not_negative CHECK (VALUE OPERATOR(pg_catalog.>=) 0);
COMMENT ON DOMAIN crm_internal.top_accounts_count IS 'How many accounts crm.top_accounts() returns at most: 0 or more';

-- The top N accounts by open or won amount, as crm.account_rollup shows
-- them to the caller: SELECT * FROM crm.account_rollup WHERE <by> > 0
-- ORDER BY <by> DESC, account_id LIMIT n, without reading every account;
-- with owner, among the accounts that role owns (the account's owner, as
-- the view's owner column), read through account_owner_idx.
-- A SQL-standard body: its tables were resolved when it was made, so the
-- caller needs no access to schema crm_internal, only the SELECT privilege
-- that row-level security then filters, as in crm.account_rollup.
-- (jit off: the planner prices the walks it will skip, a manager's with
-- the row-level security of every account, high enough to compile the plan
-- on every call -- 250 ms for a query that runs in a few)
CREATE FUNCTION crm.top_accounts(by text, n integer, owner text DEFAULT NULL) RETURNS SETOF crm.account_rollup
    LANGUAGE sql
    STABLE
    SET search_path = pg_catalog, pg_temp
    SET jit = off
BEGIN ATOMIC
    WITH
    -- Whose settled rows are the caller's figures (row-level security
    -- decides, as in crm.account_rollup): the all-owners rows (owner 0) are
    -- visible exactly to those who see every group (admins, analysts); a
    -- rep's are their own (a team of one); NULL: a manager's team, summed.
    k AS (
        -- (the first all-owners row in the order of account_settled_open_idx)
        SELECT CASE WHEN (SELECT s.owner FROM crm_internal.account_settled AS s
                           WHERE s.owner OPERATOR(pg_catalog.=) 0::pg_catalog.oid::pg_catalog.regrole
                           ORDER BY s.owner, pg_catalog.round(s.open_amount, 2) DESC, s.account_id
                           LIMIT 1) IS NOT NULL
                    THEN 0::pg_catalog.oid::pg_catalog.regrole
                    WHEN (SELECT pg_catalog.count(*) FROM crm.team_roles() AS t) OPERATOR(pg_catalog.=) 1
                    THEN (SELECT pg_catalog.min(t.t) FROM crm.team_roles() AS t (t))::pg_catalog.regrole
               END AS key),
    -- Pending: the accounts with stripes not compacted yet (those the caller
    -- sees: account_aggregate_pending_idx), and settled rows without a rate.
    pending AS (
        SELECT ARRAY(SELECT a.account_id FROM crm_internal.account_aggregate AS a
                      WHERE a.stripe OPERATOR(pg_catalog.<>) 0
                     UNION
                     SELECT s.account_id FROM crm_internal.account_settled AS s
                      WHERE (s.open_amount IS NULL OR s.won_amount IS NULL)
                        AND (s.owner OPERATOR(pg_catalog.=) (SELECT k.key FROM k)
                             OR (SELECT k.key FROM k) IS NULL
                                AND s.owner OPERATOR(pg_catalog.<>) 0::pg_catalog.oid::pg_catalog.regrole)) AS ids),
    -- The best n settled accounts that are not pending and that the caller
    -- sees, in index order: their settled figures are exact.  One walk per
    -- measure (each its own index), one for a team; two of the three do
    -- nothing (their condition is a one-time filter).
    candidates AS (
        SELECT ARRAY(
        (SELECT s.account_id FROM crm_internal.account_settled AS s
          WHERE by OPERATOR(pg_catalog.=) 'open_amount' AND top_accounts.owner IS NULL
            AND s.owner OPERATOR(pg_catalog.=) (SELECT k.key FROM k)
            AND pg_catalog.round(s.open_amount, 2) OPERATOR(pg_catalog.>) 0
            AND NOT s.account_id OPERATOR(pg_catalog.=) ANY ((SELECT p.ids FROM pending AS p)::bigint[])
            AND EXISTS (SELECT 1 FROM crm.account AS ac WHERE ac.id OPERATOR(pg_catalog.=) s.account_id)
          ORDER BY s.owner, pg_catalog.round(s.open_amount, 2) DESC, s.account_id
          LIMIT GREATEST(n, 0))
        UNION ALL
        (SELECT s.account_id FROM crm_internal.account_settled AS s
          WHERE by OPERATOR(pg_catalog.=) 'won_amount' AND top_accounts.owner IS NULL
            AND s.owner OPERATOR(pg_catalog.=) (SELECT k.key FROM k)
            AND pg_catalog.round(s.won_amount, 2) OPERATOR(pg_catalog.>) 0
            AND NOT s.account_id OPERATOR(pg_catalog.=) ANY ((SELECT p.ids FROM pending AS p)::bigint[])
            AND EXISTS (SELECT 1 FROM crm.account AS ac WHERE ac.id OPERATOR(pg_catalog.=) s.account_id)
          ORDER BY s.owner, pg_catalog.round(s.won_amount, 2) DESC, s.account_id
          LIMIT GREATEST(n, 0))
        UNION ALL
        -- a manager's team: the sum over the team's owners, per account
        -- (O(the team's settled rows))
        (SELECT s.account_id FROM crm_internal.account_settled AS s
          WHERE (SELECT k.key FROM k) IS NULL AND top_accounts.owner IS NULL
            AND s.owner OPERATOR(pg_catalog.<>) 0::pg_catalog.oid::pg_catalog.regrole
            AND NOT s.account_id OPERATOR(pg_catalog.=) ANY ((SELECT p.ids FROM pending AS p)::bigint[])
            AND EXISTS (SELECT 1 FROM crm.account AS ac WHERE ac.id OPERATOR(pg_catalog.=) s.account_id)
          GROUP BY s.account_id
         HAVING pg_catalog.round(pg_catalog.sum(CASE WHEN by OPERATOR(pg_catalog.=) 'open_amount'
                                                     THEN s.open_amount ELSE s.won_amount END), 2)
                OPERATOR(pg_catalog.>) 0
          ORDER BY pg_catalog.round(pg_catalog.sum(CASE WHEN by OPERATOR(pg_catalog.=) 'open_amount'
                                                       THEN s.open_amount ELSE s.won_amount END), 2) DESC,
                   s.account_id
          LIMIT GREATEST(n, 0))
        UNION ALL
        -- the pending accounts
        SELECT pg_catalog.unnest(p.ids) FROM pending AS p WHERE top_accounts.owner IS NULL
        UNION ALL
        -- one owner's accounts: all of them (those the caller sees)
        SELECT ac.id FROM crm.account AS ac
         WHERE ac.owner::pg_catalog.oid OPERATOR(pg_catalog.=)
               (SELECT r.oid FROM pg_catalog.pg_roles AS r WHERE r.rolname OPERATOR(pg_catalog.=) top_accounts.owner)) AS ids)
    -- Their exact figures, from the view, one account at a time (OFFSET 0
    -- keeps the subquery apart, so that its account_id = c.account_id
    -- reaches the view's grouped subquery: O(the account's groups); a join
    -- or = ANY would group every account first); the best n of them.
    SELECT r.*
      FROM pg_catalog.unnest((SELECT c.ids FROM candidates AS c)) AS c (account_id)
     CROSS JOIN LATERAL (SELECT v.* FROM crm.account_rollup AS v
                          WHERE v.account_id OPERATOR(pg_catalog.=) c.account_id OFFSET 0) AS r
     WHERE CASE WHEN by OPERATOR(pg_catalog.=) 'open_amount' THEN r.open_amount ELSE r.won_amount END
           OPERATOR(pg_catalog.>) 0
     ORDER BY CASE WHEN by OPERATOR(pg_catalog.=) 'open_amount' THEN r.open_amount ELSE r.won_amount END DESC,
              r.account_id
     LIMIT CASE WHEN by::crm_internal.top_accounts_by IS NOT NULL THEN n::crm_internal.top_accounts_count END;
END;
COMMENT ON FUNCTION crm.top_accounts(text, integer, text) IS 'The top n accounts by open_amount or won_amount (by), as crm.account_rollup shows them to the caller (row-level security applies): the same rows as SELECT * FROM crm.account_rollup WHERE <by> > 0 [AND owner = <owner>] ORDER BY <by> DESC, account_id LIMIT n, exact at every committed state, in time O(n + accounts written since the last crm.compact_aggregates()) for admins, analysts and reps (a manager with a team: O(the team''s accounts)); with owner (a role name), among the accounts it owns, O(their groups). 23514 for another by or a negative n, 23502 for NULL; ZC120 when a rate is missing for an account it computes';

-- The settled account figures (owner 0, all owners, only admins and
-- analysts see: row-level security) and the top accounts read from them.
GRANT SELECT ON crm_internal.account_settled, crm_internal.account_settled_groups, crm_internal.account_settled_actual
    TO crm_admin, crm_manager, crm_sales, crm_analyst;
REVOKE ALL ON FUNCTION crm.top_accounts(text, integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.top_accounts(text, integer, text) TO crm_admin, crm_manager, crm_sales, crm_analyst;

-- dumped whole by pg_dump, as every table of the extension (99_privileges.sql)
SELECT pg_catalog.pg_extension_config_dump('crm_internal.account_settled', '');
SELECT pg_catalog.pg_extension_config_dump('crm_internal.account_settle_epoch', '');

-- backfill: settle every account from the groups the update recomputed
SELECT crm_internal.account_settle(NULL);


-- issue 22 merged: the objects several of the sections above define, as the
-- install script has them now (each section wrote its own part of them),
-- and the passages view that rebuild and verify share.
CREATE VIEW crm_internal.stage_velocity_actual WITH (security_invoker = true) AS
    SELECT p.old_stage AS stage, p.old_owner AS owner, pg_catalog.count(*) AS passages,
           pg_catalog.sum(pg_catalog.extract('epoch', p.changed_at OPERATOR(pg_catalog.-) p.entered_at)) AS seconds
      FROM (SELECT h.old_stage, h.old_owner, h.changed_at,
                   pg_catalog.lag(h.changed_at) OVER (PARTITION BY h.opportunity_id ORDER BY h.id) AS entered_at
              FROM crm.opportunity_history AS h
             WHERE h.old_stage IS DISTINCT FROM h.new_stage AND NOT h.deleted) AS p
     WHERE p.old_stage IS NOT NULL
     GROUP BY p.old_stage, p.old_owner;
COMMENT ON VIEW crm_internal.stage_velocity_actual IS 'Stage passages per stage left and owner recomputed from crm.opportunity_history (a full scan): what crm_internal.stage_velocity_aggregate must add up to';
COMMENT ON COLUMN crm_internal.stage_velocity_actual.stage IS 'The stage the deals left';
COMMENT ON COLUMN crm_internal.stage_velocity_actual.owner IS 'Owner of the deals while in that stage';
COMMENT ON COLUMN crm_internal.stage_velocity_actual.passages IS 'Times deals left the stage by moving on';
COMMENT ON COLUMN crm_internal.stage_velocity_actual.seconds IS 'Seconds those deals had spent in the stage';
GRANT SELECT ON crm_internal.stage_velocity_actual TO crm_admin, crm_manager, crm_sales, crm_analyst;

CREATE OR REPLACE FUNCTION crm.rebuild_aggregates() RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    agg record;
    n bigint;
    total bigint := 0;
BEGIN
    -- the lock of compactions and of everything that settles accounts
    -- (88_aggregates_top_accounts.sql), first, as they take it
    PERFORM crm_internal.aggregates_compaction_lock();
    -- writers wait until the rebuild commits; readers keep reading
    EXECUTE (SELECT format('LOCK TABLE %s IN SHARE MODE', string_agg(DISTINCT format('crm.%I', d.source_table), ', '))
               FROM crm_internal.aggregate_definitions() AS d);
    EXECUTE (SELECT format('LOCK TABLE %s IN EXCLUSIVE MODE',
                           string_agg(format('crm_internal.%I', d.aggregate_table), ', ' ORDER BY d.ordinality))
               FROM crm_internal.aggregate_definitions() WITH ORDINALITY AS d);
    FOR agg IN SELECT * FROM crm_internal.aggregate_definitions() LOOP
        EXECUTE format('DELETE FROM crm_internal.%I', agg.aggregate_table);
    END LOOP;
    -- one row per group of the GROUP BY the aggregate must add up to
    FOR agg IN SELECT * FROM crm_internal.aggregate_definitions() LOOP
        EXECUTE format('INSERT INTO crm_internal.%1$I (%2$s, stripe, %3$s) SELECT %2$s, 0, %3$s FROM (%4$s) AS a',
                       agg.aggregate_table,
                       (SELECT string_agg(format('%I', c), ', ' ORDER BY c.i)
                          FROM unnest(agg.group_columns) WITH ORDINALITY AS c (c, i)),
                       (SELECT string_agg(format('%I', m), ', ' ORDER BY m.i)
                          FROM unnest(agg.measures) WITH ORDINALITY AS m (m, i)),
                       agg.actual_query);
        GET DIAGNOSTICS n = ROW_COUNT;
        total := total + n;
    END LOOP;
    -- the stage passages (88_stage_velocity.sql), from the history
    LOCK TABLE crm_internal.stage_velocity_aggregate IN EXCLUSIVE MODE;
    DELETE FROM crm_internal.stage_velocity_aggregate;
    INSERT INTO crm_internal.stage_velocity_aggregate (stage, owner, stripe, passages, seconds)
    SELECT a.stage, a.owner, 0, a.passages, a.seconds FROM crm_internal.stage_velocity_actual AS a;
    GET DIAGNOSTICS n = ROW_COUNT;
    total := total + n;
    PERFORM crm_internal.account_settle(NULL);
    RETURN total;
END
$$;
COMMENT ON FUNCTION crm.rebuild_aggregates() IS 'Recomputes every aggregate from the base tables into one row per group (stripe 0), folding all stripes and dropping groups that emptied; returns the number of groups. Blocks writers of leads and opportunities until it commits. Runs as the extension owner (it reads every row and writes the aggregates, which nobody else may); admins only.';

CREATE OR REPLACE FUNCTION crm.compact_aggregates() RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    agg record;
    keys text;
    moved_keys text[];
    total bigint := 0;
    n bigint;
BEGIN
    -- One compaction at a time: a lock only compactions take, first, while
    -- this transaction holds no other.
    PERFORM crm_internal.aggregates_compaction_lock();
    -- A TRUNCATE of the base tables (which empties the aggregates) waits for
    -- the compaction and vice versa.
    EXECUTE (SELECT format('LOCK TABLE %s IN ACCESS SHARE MODE', string_agg(DISTINCT format('crm.%I', d.source_table), ', '))
               FROM crm_internal.aggregate_definitions() AS d);
    -- Every table it writes up front, in the order writers and
    -- crm.rebuild_aggregates() lock them, in the mode writers take.  ROW
    -- EXCLUSIVE conflicts with nothing REINDEX CONCURRENTLY, CREATE INDEX
    -- CONCURRENTLY, VACUUM or ANALYZE hold, which wait for this transaction's
    -- snapshot: waiting for them would be a deadlock.  It waits only for
    -- VACUUM FULL, CLUSTER, REINDEX, TRUNCATE and a rebuild, which wait for
    -- no snapshot, and never for a table lock once the work has begun.
    EXECUTE (SELECT format('LOCK TABLE %s IN ROW EXCLUSIVE MODE',
                           string_agg(format('crm_internal.%I', d.aggregate_table), ', ' ORDER BY d.ordinality))
               FROM crm_internal.aggregate_definitions() WITH ORDINALITY AS d);
    -- Per aggregate table: move every stripe row that no open transaction
    -- is writing into stripe 0 (rows a writer holds are skipped and moved
    -- next time), then drop stripe-0 rows that add up to nothing.  Writers
    -- only ever touch their own stripes, never stripe 0, and write to another
    -- of theirs rather than wait for a row the compaction holds, so nobody
    -- waits for a compaction.
    FOR agg IN SELECT * FROM crm_internal.aggregate_definitions() LOOP
        keys := (SELECT string_agg(format('%I', c), ', ' ORDER BY c.i)
                   FROM unnest(agg.group_columns) WITH ORDINALITY AS c (c, i));
        -- (returns the first keys of the groups moved: the accounts whose
        -- settled figures change, see 88_aggregates_top_accounts.sql)
        EXECUTE format(
            'WITH moved AS ('
            '    DELETE FROM crm_internal.%1$I AS a'
            '     WHERE a.ctid OPERATOR(pg_catalog.=) ANY (ARRAY('
            '               SELECT x.ctid FROM crm_internal.%1$I AS x'
            '                WHERE x.stripe OPERATOR(pg_catalog.<>) 0 FOR UPDATE SKIP LOCKED))'
            '    RETURNING a.*),'
            ' folded AS ('
            '    INSERT INTO crm_internal.%1$I AS t (%2$s, stripe, %3$s)'
            '    SELECT %2$s, 0, %4$s FROM moved GROUP BY %2$s'
            '    ON CONFLICT (%2$s, stripe) DO UPDATE SET %5$s)'
            ' SELECT ARRAY(SELECT DISTINCT m.%6$I::text FROM moved AS m)',
            agg.aggregate_table, keys,
            (SELECT string_agg(format('%I', m), ', ' ORDER BY m.i)
               FROM unnest(agg.measures) WITH ORDINALITY AS m (m, i)),
            (SELECT string_agg(format('pg_catalog.sum(%I)', m), ', ' ORDER BY m.i)
               FROM unnest(agg.measures) WITH ORDINALITY AS m (m, i)),
            (SELECT string_agg(format('%1$I = t.%1$I OPERATOR(pg_catalog.+) EXCLUDED.%1$I', m), ', ' ORDER BY m.i)
               FROM unnest(agg.measures) WITH ORDINALITY AS m (m, i)),
            agg.group_columns[1]) INTO moved_keys;
        IF agg.aggregate OPERATOR(pg_catalog.=) 'account' THEN
            PERFORM crm_internal.account_settle(moved_keys::bigint[]);
        END IF;
        EXECUTE format('DELETE FROM crm_internal.%I AS a WHERE a.stripe OPERATOR(pg_catalog.=) 0 AND %s', agg.aggregate_table,
                       (SELECT string_agg(format('a.%I OPERATOR(pg_catalog.=) 0', m), ' AND ' ORDER BY m.i)
                          FROM unnest(agg.measures) WITH ORDINALITY AS m (m, i)));
        EXECUTE format('SELECT pg_catalog.count(*) FROM crm_internal.%I', agg.aggregate_table) INTO n;
        total := total + n;
    END LOOP;
    -- the stage passages (88_stage_velocity.sql, written after the others
    -- by the same statements), the same way
    LOCK TABLE crm_internal.stage_velocity_aggregate IN ROW EXCLUSIVE MODE;
    WITH moved AS (
        DELETE FROM crm_internal.stage_velocity_aggregate AS a
         WHERE a.ctid OPERATOR(pg_catalog.=) ANY (ARRAY(
                   SELECT x.ctid FROM crm_internal.stage_velocity_aggregate AS x
                    WHERE x.stripe OPERATOR(pg_catalog.<>) 0 FOR UPDATE SKIP LOCKED))
        RETURNING a.*)
    INSERT INTO crm_internal.stage_velocity_aggregate AS t (stage, owner, stripe, passages, seconds)
    SELECT m.stage, m.owner, 0, pg_catalog.sum(m.passages), pg_catalog.sum(m.seconds) FROM moved AS m GROUP BY m.stage, m.owner
    ON CONFLICT (stage, owner, stripe) DO UPDATE
       SET passages = t.passages OPERATOR(pg_catalog.+) EXCLUDED.passages, seconds = t.seconds OPERATOR(pg_catalog.+) EXCLUDED.seconds;
    DELETE FROM crm_internal.stage_velocity_aggregate AS a
     WHERE a.stripe OPERATOR(pg_catalog.=) 0 AND a.passages OPERATOR(pg_catalog.=) 0 AND a.seconds OPERATOR(pg_catalog.=) 0;
    total := total + (SELECT pg_catalog.count(*) FROM crm_internal.stage_velocity_aggregate);
    RETURN total;
END
$$;
COMMENT ON FUNCTION crm.compact_aggregates() IS 'Folds the per-backend stripes of every aggregate into one row per group (stripe 0) and drops groups that add up to nothing, without blocking writers (rows a running transaction is writing are left for the next call); returns the number of aggregate rows left. Totals do not change; reads get faster. Run it periodically (e.g. every few minutes) on busy systems, in a transaction of its own: the rows it folds stay locked until its transaction ends. Admins only.';

CREATE OR REPLACE FUNCTION crm.verify_aggregates()
    RETURNS TABLE (aggregate text, group_key jsonb, measure text, kept numeric, actual numeric)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH converted AS (
        SELECT o.stage, o.owner, o.currency, o.account_id, o.campaign_id, s.is_closed, s.is_won,
               o.amount OPERATOR(pg_catalog.*) r.rate AS amount,
               pg_catalog.round(o.amount OPERATOR(pg_catalog.*) COALESCE(o.probability, 0) OPERATOR(pg_catalog./) 100, 2)
                   OPERATOR(pg_catalog.*) r.rate AS weighted_amount
          FROM crm.opportunity AS o
          JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) o.stage
         CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(o.currency, o.close_date) AS rate) AS r)
    SELECT v.aggregate, v.group_key, v.measure, v.kept, v.actual
      FROM (SELECT c.aggregate, c.group_key, m.measure, m.kept, m.actual
              FROM crm_internal.aggregates_compared AS c
             CROSS JOIN LATERAL (VALUES ('items', c.kept_items, c.actual_items),
                                        ('amount', c.kept_amount, c.actual_amount),
                                        ('weighted_amount', c.kept_weighted_amount, c.actual_weighted_amount))
                                AS m (measure, kept, actual)
            UNION ALL
            SELECT 'pipeline_by_stage', pg_catalog.jsonb_build_object('stage', COALESCE(k.stage, a.stage),
                       'owner', COALESCE(k.owner, a.owner), 'currency', COALESCE(k.currency, a.currency)),
                   m.measure, m.kept, m.actual
              FROM (SELECT p.stage, p.owner, p.currency, p.opportunities, p.amount, p.weighted_amount
                      FROM crm.pipeline_by_stage AS p) AS k
              FULL JOIN (SELECT o.stage, pg_catalog.pg_get_userbyid(o.owner)::text AS owner, o.currency,
                                pg_catalog.count(*) AS opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount), 2) AS amount,
                                pg_catalog.round(pg_catalog.sum(o.weighted_amount), 2) AS weighted_amount
                           FROM converted AS o
                          GROUP BY o.stage, o.owner, o.currency) AS a
                ON a.stage OPERATOR(pg_catalog.=) k.stage AND a.owner OPERATOR(pg_catalog.=) k.owner
               AND a.currency OPERATOR(pg_catalog.=) k.currency
             CROSS JOIN LATERAL (VALUES ('items', COALESCE(k.opportunities, 0)::numeric, COALESCE(a.opportunities, 0)::numeric),
                                        ('amount', COALESCE(k.amount, 0), COALESCE(a.amount, 0)),
                                        ('weighted_amount', COALESCE(k.weighted_amount, 0), COALESCE(a.weighted_amount, 0)))
                                AS m (measure, kept, actual)
            UNION ALL
            SELECT 'account_rollup', pg_catalog.jsonb_build_object('account_id', COALESCE(k.account_id, a.account_id)),
                   m.measure, m.kept, m.actual
              FROM (SELECT r.account_id, r.open_opportunities, r.open_amount, r.won_opportunities, r.won_amount
                      FROM crm.account_rollup AS r) AS k
              FULL JOIN (SELECT o.account_id,
                                pg_catalog.count(*) FILTER (WHERE NOT o.is_closed) AS open_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE NOT o.is_closed), 2) AS open_amount,
                                pg_catalog.count(*) FILTER (WHERE o.is_won) AS won_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE o.is_won), 2) AS won_amount
                           FROM converted AS o
                          WHERE o.account_id IS NOT NULL
                          GROUP BY o.account_id) AS a
                ON a.account_id OPERATOR(pg_catalog.=) k.account_id
             CROSS JOIN LATERAL (VALUES ('open_opportunities', COALESCE(k.open_opportunities, 0)::numeric, COALESCE(a.open_opportunities, 0)::numeric),
                                        ('open_amount', COALESCE(k.open_amount, 0), COALESCE(a.open_amount, 0)),
                                        ('won_opportunities', COALESCE(k.won_opportunities, 0)::numeric, COALESCE(a.won_opportunities, 0)::numeric),
                                        ('won_amount', COALESCE(k.won_amount, 0), COALESCE(a.won_amount, 0)))
                                AS m (measure, kept, actual)
            UNION ALL
            -- the settled account figures (crm.top_accounts() walks them)
            -- against the compacted groups they are made from, for every
            -- account without uncompacted stripes (those whose settled
            -- figures it uses; a stage renamed since the last compaction
            -- leaves the others' stripe 0 under the old name); a missing
            -- rate (NULL amount) compares as -1
            SELECT 'account_settled', pg_catalog.jsonb_build_object('account_id', COALESCE(k.account_id, a.account_id),
                       'owner', COALESCE(k.owner, a.owner)::pg_catalog.oid),
                   m.measure, m.kept, m.actual
              FROM crm_internal.account_settled AS k
              FULL JOIN crm_internal.account_settled_actual AS a
                ON a.account_id OPERATOR(pg_catalog.=) k.account_id AND a.owner OPERATOR(pg_catalog.=) k.owner
             CROSS JOIN LATERAL (SELECT NOT EXISTS (SELECT 1 FROM crm_internal.account_aggregate AS x
                                                     WHERE x.account_id OPERATOR(pg_catalog.=) COALESCE(k.account_id, a.account_id)
                                                       AND x.stripe OPERATOR(pg_catalog.<>) 0) AS settled) AS p
             CROSS JOIN LATERAL (VALUES ('open_opportunities', COALESCE(k.open_opportunities, 0)::numeric, COALESCE(a.open_opportunities, 0)::numeric),
                                        ('open_amount', CASE WHEN k.account_id IS NULL THEN 0 ELSE COALESCE(k.open_amount, -1) END,
                                                        CASE WHEN a.account_id IS NULL THEN 0 ELSE COALESCE(a.open_amount, -1) END),
                                        ('won_opportunities', COALESCE(k.won_opportunities, 0)::numeric, COALESCE(a.won_opportunities, 0)::numeric),
                                        ('won_amount', CASE WHEN k.account_id IS NULL THEN 0 ELSE COALESCE(k.won_amount, -1) END,
                                                       CASE WHEN a.account_id IS NULL THEN 0 ELSE COALESCE(a.won_amount, -1) END))
                                AS m (measure, kept, actual)
             WHERE p.settled
            UNION ALL
            SELECT 'campaign_performance', pg_catalog.jsonb_build_object('campaign_id', COALESCE(k.campaign_id, a.campaign_id)),
                   m.measure, m.kept, m.actual
              FROM (SELECT p.campaign_id, p.opportunities, p.won_opportunities, p.opportunity_amount, p.won_amount
                      FROM crm.campaign_performance AS p) AS k
              FULL JOIN (SELECT o.campaign_id, pg_catalog.count(*) AS opportunities,
                                pg_catalog.count(*) FILTER (WHERE o.is_won) AS won_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount), 2) AS opportunity_amount,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE o.is_won), 2) AS won_amount
                           FROM converted AS o
                          WHERE o.campaign_id IS NOT NULL
                          GROUP BY o.campaign_id) AS a
                ON a.campaign_id OPERATOR(pg_catalog.=) k.campaign_id
             CROSS JOIN LATERAL (VALUES ('opportunities', COALESCE(k.opportunities, 0)::numeric, COALESCE(a.opportunities, 0)::numeric),
                                        ('won_opportunities', COALESCE(k.won_opportunities, 0)::numeric, COALESCE(a.won_opportunities, 0)::numeric),
                                        ('opportunity_amount', COALESCE(k.opportunity_amount, 0), COALESCE(a.opportunity_amount, 0)),
                                        ('won_amount', COALESCE(k.won_amount, 0), COALESCE(a.won_amount, 0)))
                                AS m (measure, kept, actual)
            UNION ALL
            -- stage velocity: the kept passages against the history's
            SELECT 'stage_velocity', pg_catalog.jsonb_build_object('stage', COALESCE(k.stage, a.stage),
                       'owner', pg_catalog.pg_get_userbyid(COALESCE(k.owner, a.owner))::text),
                   m.measure, m.kept, m.actual
              FROM (SELECT v.stage, v.owner::pg_catalog.oid AS owner, pg_catalog.sum(v.passages) AS passages,
                           pg_catalog.sum(v.seconds) AS seconds
                      FROM crm_internal.stage_velocity_aggregate AS v
                     GROUP BY v.stage, v.owner) AS k
              FULL JOIN (SELECT x.stage, x.owner::pg_catalog.oid AS owner, x.passages, x.seconds
                           FROM crm_internal.stage_velocity_actual AS x) AS a
                ON a.stage OPERATOR(pg_catalog.=) k.stage AND a.owner OPERATOR(pg_catalog.=) k.owner
             CROSS JOIN LATERAL (VALUES ('passages', COALESCE(k.passages, 0)::numeric, COALESCE(a.passages, 0)::numeric),
                                        ('seconds', COALESCE(k.seconds, 0), COALESCE(a.seconds, 0)))
                                AS m (measure, kept, actual)) AS v
     WHERE v.kept OPERATOR(pg_catalog.<>) v.actual
     ORDER BY v.aggregate, v.group_key::text, v.measure;
END;
COMMENT ON FUNCTION crm.verify_aggregates() IS 'One row per group and measure where a maintained aggregate differs from a fresh GROUP BY over the base tables, or where a report converted to the corporate currency at read time (pipeline_by_stage per stage, owner and currency; account_rollup per account; campaign_performance per campaign) differs from a GROUP BY converting each opportunity at the rate of its close date (aggregate names the report), or where the kept stage passages (stage_velocity, per stage and owner) differ from crm.opportunity_history, or where the settled account figures crm.top_accounts() reads differ from the compacted groups at the current rates for an account without uncompacted stripes (account_settled per account and opportunity owner, 0: all owners); no rows: all exact. ZC120 when a rate is missing. Reads every opportunity: for checking, as an admin (who sees every row)';

COMMENT ON FUNCTION crm.pipeline_as_of(timestamptz) IS 'The pipeline as it was at a moment, exactly, from crm.opportunity_history: the columns of crm.pipeline_by_stage (by stage, owner and currency; amounts in the corporate currency at the rate of the close month, today''s rates), for the deals that existed then in the state they had then; a moment after the last change gives crm.pipeline_by_stage; every active stage appears (zeros without deals); deals in a stage since renamed are under the name it had then, sort_order NULL. Row security of the history applies. See README "Reports"';
COMMENT ON COLUMN crm_internal.aggregates_compared.aggregate IS 'pipeline, account, campaign_opportunity, campaign_lead, lead_funnel, opportunity_funnel, lead_source, lead_month or sales_performance';

-- the comparison view as the install script generates it (every aggregate above; a
-- close month without a close date is null in the group key)
DO $compared$
DECLARE
    kept text;
    actual text;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.format(
               'SELECT %L::text AS aggregate, pg_catalog.jsonb_build_object(%s) AS group_key, %s'
               ' FROM crm_internal.%I AS g GROUP BY %s',
               d.aggregate, x.group_key, x.kept, d.aggregate_table, x.group_columns), ' UNION ALL ' ORDER BY d.ordinality),
           pg_catalog.string_agg(pg_catalog.format(
               'SELECT %L::text AS aggregate, pg_catalog.jsonb_build_object(%s) AS group_key, %s FROM (%s) AS g',
               d.aggregate, x.group_key, x.actual, d.actual_query), ' UNION ALL ' ORDER BY d.ordinality)
      INTO kept, actual
      FROM crm_internal.aggregate_definitions() WITH ORDINALITY AS d
     CROSS JOIN LATERAL (
           -- (a close month without a close date, infinity in the tables,
           -- is null in the group key: no client reads an infinite date)
           SELECT (SELECT pg_catalog.string_agg(CASE WHEN c.t OPERATOR(pg_catalog.=) 'pg_catalog.date'::pg_catalog.regtype
                                                     THEN pg_catalog.format('%L, NULLIF(g.%I, ''infinity''::pg_catalog.date)', c.c, c.c)
                                                     ELSE pg_catalog.format('%L, g.%I', c.c, c.c) END, ', ' ORDER BY c.i)
                     FROM ROWS FROM (pg_catalog.unnest(d.group_columns), pg_catalog.unnest(d.group_types)) WITH ORDINALITY AS c (c, t, i)) AS group_key,
                  (SELECT pg_catalog.string_agg(pg_catalog.format('g.%I', c), ', ' ORDER BY c.i)
                     FROM pg_catalog.unnest(d.group_columns) WITH ORDINALITY AS c (c, i)) AS group_columns,
                  (SELECT pg_catalog.string_agg(CASE WHEN d.measures[m.i] IS NULL THEN 'NULL::numeric'
                                                     ELSE pg_catalog.format('pg_catalog.sum(g.%I)::numeric', d.measures[m.i])
                                                END || ' AS ' || m.name, ', ' ORDER BY m.i)
                     FROM pg_catalog.unnest(ARRAY['items', 'amount', 'weighted_amount']) WITH ORDINALITY AS m (name, i)) AS kept,
                  (SELECT pg_catalog.string_agg(CASE WHEN d.measures[m.i] IS NULL THEN 'NULL::numeric'
                                                     ELSE pg_catalog.format('g.%I::numeric', d.measures[m.i])
                                                END || ' AS ' || m.name, ', ' ORDER BY m.i)
                     FROM pg_catalog.unnest(ARRAY['items', 'amount', 'weighted_amount']) WITH ORDINALITY AS m (name, i)) AS actual
           ) AS x;
    EXECUTE pg_catalog.format(
        'CREATE OR REPLACE VIEW crm_internal.aggregates_compared WITH (security_invoker = true) AS'
        ' WITH kept AS (%s), actual AS (%s)'
        ' SELECT COALESCE(k.aggregate, a.aggregate) AS aggregate, COALESCE(k.group_key, a.group_key) AS group_key,'
        '        COALESCE(k.items, 0) AS kept_items, COALESCE(a.items, 0) AS actual_items,'
        '        COALESCE(k.amount, 0) AS kept_amount, COALESCE(a.amount, 0) AS actual_amount,'
        '        COALESCE(k.weighted_amount, 0) AS kept_weighted_amount,'
        '        COALESCE(a.weighted_amount, 0) AS actual_weighted_amount'
        '   FROM kept AS k'
        '   FULL JOIN actual AS a'
        '     ON a.aggregate OPERATOR(pg_catalog.=) k.aggregate AND a.group_key OPERATOR(pg_catalog.=) k.group_key',
        kept, actual);
END
$compared$;
COMMENT ON VIEW crm_internal.aggregates_compared IS 'Every group of every maintained aggregate, kept (stripes summed) next to a fresh GROUP BY over the base tables; a full scan, for checking only';
COMMENT ON COLUMN crm_internal.aggregates_compared.aggregate IS 'pipeline, account, campaign_opportunity, campaign_lead, lead_funnel, opportunity_funnel, lead_source, lead_month or sales_performance';
COMMENT ON COLUMN crm_internal.aggregates_compared.group_key IS 'The group, as a JSON object of its key columns (a close month is null for the deals without a close date)';
COMMENT ON COLUMN crm_internal.aggregates_compared.kept_items IS 'Opportunities (or leads) in the group, as kept';
COMMENT ON COLUMN crm_internal.aggregates_compared.actual_items IS 'Opportunities (or leads) in the group, counted now';
COMMENT ON COLUMN crm_internal.aggregates_compared.kept_amount IS 'Sum of amounts, as kept (0 where the aggregate has none)';
COMMENT ON COLUMN crm_internal.aggregates_compared.actual_amount IS 'Sum of amounts, computed now';
COMMENT ON COLUMN crm_internal.aggregates_compared.kept_weighted_amount IS 'The aggregate''s second sum, as kept: weighted amounts (pipeline), sales cycle seconds (sales_performance); 0 where it has none';
COMMENT ON COLUMN crm_internal.aggregates_compared.actual_weighted_amount IS 'The second sum, computed now';


-- == history per statement, one stage query per deal (issue 22 goal 5, session 35: 60_opportunity_lifecycle.sql, 31_furthest_step.sql; src/opportunity_history.c, src/opportunity_lifecycle.c) ==
-- The opportunity lifecycle trigger sets furthest_stage from the stage rows
-- it reads anyway; the separate furthest-stage trigger of the funnel section
-- is not created above.
COMMENT ON FUNCTION crm_internal.opportunity_lifecycle() IS 'BEFORE INSERT OR UPDATE row trigger on crm.opportunity: probability from the stage unless given, loss_reason_code required for a lost stage (an active one when newly chosen) and cleared otherwise, closed_at kept, stage_changed_at set on a move, furthest_stage the furthest step reached (a stage rename is no move), amount and price book fixed by line items; one stage query per row';

-- The opportunity triggers keep a copy of the stages per backend
-- (src/stage_cache.c); every change of the stages empties the copies and
-- waits for the writers of deals (SHARE ROW EXCLUSIVE on crm.opportunity,
-- as the stage guard above), so that no copy is read stale.
CREATE FUNCTION crm_internal.opportunity_stage_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_opportunity_stage_changed'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.opportunity_stage_changed() IS 'BEFORE INSERT, UPDATE, DELETE or TRUNCATE statement trigger on crm.opportunity_stage (and a row trigger fired by logical replication''s apply): takes SHARE ROW EXCLUSIVE on crm.opportunity (writers of deals wait, and are waited for) and empties every backend''s copy of the stages that the opportunity triggers read';
CREATE TRIGGER opportunity_stage_changed BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm.opportunity_stage
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.opportunity_stage_changed();
ALTER TABLE crm.opportunity_stage ENABLE ALWAYS TRIGGER opportunity_stage_changed;
-- logical replication's apply fires row triggers only
CREATE TRIGGER opportunity_stage_changed_row BEFORE INSERT OR UPDATE OR DELETE ON crm.opportunity_stage
    FOR EACH ROW EXECUTE FUNCTION crm_internal.opportunity_stage_changed();
ALTER TABLE crm.opportunity_stage ENABLE REPLICA TRIGGER opportunity_stage_changed_row;
REVOKE ALL ON FUNCTION crm_internal.opportunity_stage_changed() FROM PUBLIC;

-- stage renames recorded; the as-of pipeline and the stage velocity follow a
-- stage through its renames (issue 22, session 35): 61_stage_renames.sql,
-- src/stage_rename.c, crm.pipeline_as_of() (90_reports.sql),
-- crm_internal.stage_velocity_actual (88_stage_velocity.sql), crm.stage_velocity.
-- Renames made before this update were not recorded: their passages stay
-- under the old names (crm.rebuild_aggregates() gives the same figures).
CREATE TABLE crm.opportunity_stage_rename (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    old_name    text NOT NULL,
    new_name    text NOT NULL,
    renamed_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    renamed_by  regrole NOT NULL,
    last_entry  bigint NOT NULL,
    current_name text NOT NULL,
    CONSTRAINT opportunity_stage_rename_changes_name CHECK (old_name OPERATOR(pg_catalog.<>) new_name)
);
COMMENT ON TABLE crm.opportunity_stage_rename IS 'Every rename of an opportunity stage, in order: the opportunity history keeps the names its entries had when recorded, and the reports read from it (crm.pipeline_as_of, crm.stage_velocity) follow a stage through its renames with this log; written only by the database';
COMMENT ON COLUMN crm.opportunity_stage_rename.id IS 'Rename id, in the order the renames were made';
COMMENT ON COLUMN crm.opportunity_stage_rename.old_name IS 'The stage''s name before the rename';
COMMENT ON COLUMN crm.opportunity_stage_rename.new_name IS 'The stage''s name after the rename';
COMMENT ON COLUMN crm.opportunity_stage_rename.renamed_at IS 'When the stage was renamed (transaction time, as crm.opportunity_history.changed_at)';
COMMENT ON COLUMN crm.opportunity_stage_rename.renamed_by IS 'Role that renamed the stage';
COMMENT ON COLUMN crm.opportunity_stage_rename.current_name IS 'The name the renamed stage has now (kept by the database: a later rename of the stage updates it)';
COMMENT ON COLUMN crm.opportunity_stage_rename.last_entry IS 'The last crm.opportunity_history entry id handed out when the stage was renamed: entries up to it that name old_name mean this stage, later ones a stage created since with that name';
-- the first rename of a name after an entry; a stage's next name
CREATE INDEX opportunity_stage_rename_old_name_idx ON crm.opportunity_stage_rename (old_name, id);
COMMENT ON INDEX crm.opportunity_stage_rename_old_name_idx IS 'The renames of a name, in order: where an entry''s stage went';
CREATE INDEX opportunity_stage_rename_current_name_idx ON crm.opportunity_stage_rename (current_name, id);
COMMENT ON INDEX crm.opportunity_stage_rename_current_name_idx IS 'The renames of the stage now called so, in order: what it was called before, and the rows its next rename updates';

CREATE FUNCTION crm_internal.record_stage_rename() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_record_stage_rename'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.record_stage_rename() IS 'AFTER UPDATE OF name row trigger on crm.opportunity_stage: records the rename in crm.opportunity_stage_rename and moves the stage''s kept passages (crm_internal.stage_velocity_aggregate) to the new name';
-- After the foreign keys' cascade to the deals (RI triggers sort first).
CREATE TRIGGER record_stage_rename AFTER UPDATE OF name ON crm.opportunity_stage
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION crm_internal.record_stage_rename();

-- row security and privileges (95_row_security.sql, 99_privileges.sql)
ALTER TABLE crm.opportunity_stage_rename ENABLE ROW LEVEL SECURITY;
CREATE POLICY crm_read ON crm.opportunity_stage_rename FOR SELECT
    TO crm_admin, crm_manager, crm_sales, crm_analyst USING (true);
GRANT SELECT ON crm.opportunity_stage_rename TO crm_admin, crm_manager, crm_sales, crm_analyst;
REVOKE ALL ON FUNCTION crm_internal.record_stage_rename() FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('crm.opportunity_stage_rename', '');
SELECT pg_catalog.pg_extension_config_dump('crm.opportunity_stage_rename_id_seq', '');

COMMENT ON COLUMN crm_internal.stage_velocity_aggregate.stage IS 'The stage the deals left, by its name now (a rename moves the passages to the new name)';
COMMENT ON COLUMN crm_internal.stage_velocity_aggregate.stripe IS 'Writing backend: rows of one backend, summed by readers; 0 after a compaction or rebuild; minus the id of a stage rename (crm.opportunity_stage_rename) for the passages it moved from the old name to the new';

CREATE OR REPLACE VIEW crm_internal.stage_velocity_actual WITH (security_invoker = true) AS
    SELECT COALESCE(v.current_name, p.old_stage) AS stage, p.old_owner AS owner,
           pg_catalog.sum(p.passages)::bigint AS passages, pg_catalog.sum(p.seconds) AS seconds
      FROM (SELECT q.old_stage, q.first_rename, q.old_owner, pg_catalog.count(*) AS passages,
                   pg_catalog.sum(pg_catalog.extract('epoch', q.changed_at OPERATOR(pg_catalog.-) q.entered_at)) AS seconds
              FROM (SELECT h.old_stage, h.old_owner, h.changed_at,
                           pg_catalog.lag(h.changed_at) OVER (PARTITION BY h.opportunity_id ORDER BY h.id) AS entered_at,
                           CASE WHEN EXISTS (SELECT 1 FROM crm.opportunity_stage_rename AS x) THEN
                               (SELECT pg_catalog.min(r.id) FROM crm.opportunity_stage_rename AS r
                                 WHERE r.old_name OPERATOR(pg_catalog.=) h.old_stage AND r.last_entry OPERATOR(pg_catalog.>=) h.id)
                           END AS first_rename
                      FROM crm.opportunity_history AS h
                     WHERE h.old_stage IS DISTINCT FROM h.new_stage AND NOT h.deleted) AS q
             WHERE q.old_stage IS NOT NULL
             GROUP BY q.old_stage, q.first_rename, q.old_owner) AS p
      LEFT JOIN crm.opportunity_stage_rename AS v ON v.id OPERATOR(pg_catalog.=) p.first_rename
     GROUP BY 1, p.old_owner;
COMMENT ON VIEW crm_internal.stage_velocity_actual IS 'Stage passages per stage left and owner recomputed from crm.opportunity_history (a full scan), under each stage''s name now (crm.opportunity_stage_rename): what crm_internal.stage_velocity_aggregate must add up to';
COMMENT ON COLUMN crm_internal.stage_velocity_actual.stage IS 'The stage the deals left, by its name now (renames since the passage followed)';

CREATE OR REPLACE VIEW crm.stage_velocity WITH (security_invoker = true) AS
    WITH kept AS (
        SELECT a.stage, pg_catalog.sum(a.passages) AS passages, pg_catalog.sum(a.seconds) AS seconds
          FROM crm_internal.stage_velocity_aggregate AS a
         GROUP BY a.stage
        HAVING pg_catalog.sum(a.passages) OPERATOR(pg_catalog.<>) 0),
    now_in AS (
        SELECT t.stage, pg_catalog.sum(t.opportunities) AS opportunities
          FROM crm.pipeline_totals AS t
         GROUP BY t.stage)
    SELECT s.sort_order, COALESCE(k.stage, n.stage) AS stage,
           COALESCE(k.passages, 0)::bigint AS passages,
           pg_catalog.round(k.seconds OPERATOR(pg_catalog./) NULLIF(k.passages, 0) OPERATOR(pg_catalog./) 86400, 2) AS average_days,
           COALESCE(n.opportunities, 0)::bigint AS currently_in_stage
      FROM kept AS k FULL JOIN now_in AS n ON n.stage OPERATOR(pg_catalog.=) k.stage
      LEFT JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) COALESCE(k.stage, n.stage);
COMMENT ON VIEW crm.stage_velocity IS 'Average time opportunities spend in each stage: passages (a deal leaving the stage by moving on, deleted deals'' included; a renamed stage''s passages under its name now, whatever it was called then) and their average length, read from the kept passages (equal to crm.opportunity_history, checked by crm.verify_aggregates()), and the deals in the stage now, from the pipeline aggregate';
COMMENT ON COLUMN crm.stage_velocity.sort_order IS 'Position of the stage in the pipeline (NULL for a stage since removed)';
COMMENT ON COLUMN crm.stage_velocity.stage IS 'Stage';
COMMENT ON COLUMN crm.stage_velocity.passages IS 'How many times an opportunity entered and left the stage (moving on; a deal''s deletion is no passage)';
COMMENT ON COLUMN crm.stage_velocity.average_days IS 'Average days between entering and leaving the stage';

CREATE OR REPLACE FUNCTION crm.pipeline_as_of("at" timestamptz)
    RETURNS TABLE (sort_order integer, stage text, is_closed boolean, is_won boolean, owner text,
                   opportunities bigint, amount numeric, weighted_amount numeric, currency text,
                   amount_in_currency numeric, weighted_amount_in_currency numeric)
    LANGUAGE sql STABLE STRICT SECURITY INVOKER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH totals AS (
        SELECT h.new_stage AS stage,
               CASE WHEN EXISTS (SELECT 1 FROM crm.opportunity_stage_rename AS x) THEN
                   (SELECT pg_catalog.min(r.id) FROM crm.opportunity_stage_rename AS r
                     WHERE r.old_name OPERATOR(pg_catalog.=) h.new_stage AND r.last_entry OPERATOR(pg_catalog.>=) h.id)
               END AS first_rename,
               h.new_owner AS owner, h.currency,
               COALESCE(pg_catalog.date_trunc('month', h.new_close_date)::pg_catalog.date, 'infinity'::pg_catalog.date) AS close_month,
               pg_catalog.count(*) AS opportunities, pg_catalog.sum(h.new_amount) AS amount,
               pg_catalog.sum(pg_catalog.round(h.new_amount OPERATOR(pg_catalog.*) COALESCE(h.new_probability, 0)
                                               OPERATOR(pg_catalog./) 100, 2)) AS weighted_amount
          FROM (SELECT DISTINCT ON (e.opportunity_id) e.*
                  FROM crm.opportunity_history AS e
                 WHERE e.changed_at OPERATOR(pg_catalog.<=) pipeline_as_of."at"
                 ORDER BY e.opportunity_id, e.id DESC) AS h
         WHERE NOT h.deleted
         GROUP BY 1, 2, h.new_owner, h.currency, 5),
    renames AS (
        SELECT v.id, v.old_name, v.renamed_at, v.current_name FROM crm.opportunity_stage_rename AS v),
    -- each group's stage: the name it has now
    staged AS (
        SELECT t.stage AS recorded_stage, t.first_rename, COALESCE(v.current_name, t.stage) AS current_stage
          FROM (SELECT DISTINCT t.stage, t.first_rename FROM totals AS t) AS t
          LEFT JOIN renames AS v ON v.id OPERATOR(pg_catalog.=) t.first_rename),
    -- each stage's name at the moment: walking back from now through its
    -- renames made after the moment (up to one made by then), the old name
    -- of the earliest; and whether it is known to have been created later
    -- (another stage had that name then and was renamed after the moment)
    named AS (
        SELECT c.current_stage, COALESCE(b.old_name, c.current_stage) AS stage,
               EXISTS (SELECT 1 FROM renames AS x
                        WHERE x.old_name OPERATOR(pg_catalog.=) COALESCE(b.old_name, c.current_stage)
                          AND (b.id IS NULL OR x.id OPERATOR(pg_catalog.<) b.id)
                          AND x.renamed_at OPERATOR(pg_catalog.>) pipeline_as_of."at"
                          AND x.current_name OPERATOR(pg_catalog.<>) c.current_stage) AS created_later
          FROM (SELECT g.current_stage FROM staged AS g UNION SELECT s.name FROM crm.opportunity_stage AS s) AS c
          LEFT JOIN LATERAL (
                SELECT r.id, r.old_name FROM renames AS r
                 WHERE r.current_name OPERATOR(pg_catalog.=) c.current_stage AND r.renamed_at OPERATOR(pg_catalog.>) pipeline_as_of."at"
                   AND NOT EXISTS (SELECT 1 FROM renames AS l
                                    WHERE l.current_name OPERATOR(pg_catalog.=) c.current_stage AND l.id OPERATOR(pg_catalog.>) r.id
                                      AND l.renamed_at OPERATOR(pg_catalog.<=) pipeline_as_of."at")
                 ORDER BY r.id LIMIT 1) AS b ON true),
    grouped AS (
        SELECT s.sort_order, n.stage, s.is_closed, s.is_won, pg_catalog.pg_get_userbyid(t.owner)::text AS owner,
               pg_catalog.sum(t.opportunities)::bigint AS opportunities,
               pg_catalog.round(pg_catalog.sum(t.amount OPERATOR(pg_catalog.*) r.rate), 2) AS amount,
               pg_catalog.round(pg_catalog.sum(t.weighted_amount OPERATOR(pg_catalog.*) r.rate), 2) AS weighted_amount,
               t.currency, pg_catalog.sum(t.amount) AS amount_in_currency, pg_catalog.sum(t.weighted_amount) AS weighted_amount_in_currency,
               c.current_stage
          FROM totals AS t
          JOIN staged AS c ON c.recorded_stage OPERATOR(pg_catalog.=) t.stage
                          AND c.first_rename IS NOT DISTINCT FROM t.first_rename
          JOIN named AS n ON n.current_stage OPERATOR(pg_catalog.=) c.current_stage
          LEFT JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) c.current_stage
         CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(t.currency, NULLIF(t.close_month, 'infinity'::pg_catalog.date)) AS rate) AS r
         GROUP BY s.sort_order, c.current_stage, n.stage, s.is_closed, s.is_won, 5, t.currency)
    SELECT g.sort_order, g.stage, g.is_closed, g.is_won, g.owner, g.opportunities, g.amount, g.weighted_amount,
           g.currency, g.amount_in_currency, g.weighted_amount_in_currency
      FROM grouped AS g
    UNION ALL
    SELECT s.sort_order, n.stage, s.is_closed, s.is_won, NULL::text, 0::bigint, 0.00::numeric, 0.00::numeric,
           NULL::text, 0.00::numeric, 0.00::numeric
      FROM crm.opportunity_stage AS s
      JOIN named AS n ON n.current_stage OPERATOR(pg_catalog.=) s.name
     WHERE s.active AND NOT n.created_later
       AND NOT EXISTS (SELECT 1 FROM grouped AS g WHERE g.current_stage OPERATOR(pg_catalog.=) s.name);
END;
COMMENT ON FUNCTION crm.pipeline_as_of(timestamptz) IS 'The pipeline as it was at a moment, exactly, from crm.opportunity_history: the columns of crm.pipeline_by_stage (by stage, owner and currency; amounts in the corporate currency at the rate of the close month, today''s rates), for the deals that existed then in the state they had then; a moment after the last change (stage renames included) gives crm.pipeline_by_stage; every active stage appears (zeros without deals). A renamed stage keeps its identity: its deals show under the name the stage had at that moment, with its current sort_order (crm.opportunity_stage_rename); a stage created later with an old name is another stage. Row security of the history applies. See README "Reports"';


-- the account rollup read per account and per owner, rate edits settling only the accounts they change (issue 22, session 35)
-- crm.account_rollup: the groups summed in a LATERAL subquery per account,
-- the owner's name from pg_roles (a filter on it reads that owner's accounts
-- only); a rate edit settles the accounts with a compacted group whose rate
-- it changes (account_aggregate_rate_idx), no longer every account
-- (sql/install/88_aggregates.sql, 88_aggregates_top_accounts.sql).
CREATE OR REPLACE VIEW crm.account_rollup WITH (security_invoker = true) AS
    SELECT ac.id AS account_id, ac.name, ro.rolname::text AS owner,
           COALESCE(r.open_opportunities, 0) AS open_opportunities,
           COALESCE(r.open_amount, 0) AS open_amount,
           COALESCE(r.won_opportunities, 0) AS won_opportunities,
           COALESCE(r.won_amount, 0) AS won_amount,
           (SELECT pg_catalog.max(act.completed_at) FROM crm.activity AS act
             WHERE act.account_id OPERATOR(pg_catalog.=) ac.id) AS last_activity_at,
           r.currency, r.open_amount_in_currency, r.won_amount_in_currency
      FROM crm.account AS ac
      LEFT JOIN pg_catalog.pg_roles AS ro ON ro.oid OPERATOR(pg_catalog.=) ac.owner::pg_catalog.oid
      LEFT JOIN LATERAL (
           SELECT pg_catalog.sum(g.opportunities) FILTER (WHERE NOT g.is_closed) AS open_opportunities,
                  pg_catalog.round(pg_catalog.sum(g.amount OPERATOR(pg_catalog.*) g.rate) FILTER (WHERE NOT g.is_closed), 2) AS open_amount,
                  pg_catalog.sum(g.opportunities) FILTER (WHERE g.is_won) AS won_opportunities,
                  pg_catalog.round(pg_catalog.sum(g.amount OPERATOR(pg_catalog.*) g.rate) FILTER (WHERE g.is_won), 2) AS won_amount,
                  CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                       THEN pg_catalog.min(g.currency) END AS currency,
                  CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                       THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE NOT g.is_closed), 0) END AS open_amount_in_currency,
                  CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                       THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE g.is_won), 0) END AS won_amount_in_currency
             FROM (SELECT a.currency, s.is_closed, s.is_won,
                          pg_catalog.sum(a.opportunities) AS opportunities, pg_catalog.sum(a.amount) AS amount,
                          crm.exchange_rate_on(a.currency, NULLIF(a.close_month, 'infinity'::pg_catalog.date)) AS rate
                     FROM crm_internal.account_aggregate AS a
                     JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) a.stage
                    WHERE a.account_id OPERATOR(pg_catalog.=) ac.id AND (s.is_won OR NOT s.is_closed)
                    GROUP BY a.stage, a.close_month, a.currency, s.is_closed, s.is_won
                   HAVING pg_catalog.sum(a.opportunities) OPERATOR(pg_catalog.<>) 0) AS g) AS r
        ON true;
COMMENT ON COLUMN crm.account_rollup.owner IS 'Account owner: the role''s name, as text (crm.account.owner is a regrole); NULL when that role was dropped. A filter on it (owner = ''name'') reads only that owner''s accounts';

DROP TRIGGER account_settle_rates ON crm.exchange_rate;
-- The corporate currency: the settled amounts are converted to it, so a
-- change settles every account again, in the editing transaction, after
-- taking the compaction lock (a compaction running meanwhile used the old
-- currency; this waits for it and settles after it).  O(groups), once per
-- statement: a rare admin action (and it needs a rates table without rows,
-- ZC121).  A TRUNCATE of the rates settles every account the same way.
CREATE OR REPLACE FUNCTION crm_internal.account_settle_all() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_LEVEL OPERATOR(pg_catalog.<>) 'STATEMENT' OR TG_WHEN OPERATOR(pg_catalog.<>) 'AFTER' THEN
        RAISE EXCEPTION 'crm_internal.account_settle_all() must be fired AFTER ... FOR EACH STATEMENT'
            USING ERRCODE = 'triggered_action_exception';
    END IF;
    PERFORM crm_internal.aggregates_compaction_lock();
    IF TG_OP OPERATOR(pg_catalog.=) 'TRUNCATE' AND TG_TABLE_NAME OPERATOR(pg_catalog.=) 'opportunity' THEN
        DELETE FROM crm_internal.account_settled;	-- the aggregates were emptied too
    ELSE
        PERFORM crm_internal.account_settle(NULL);
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION crm_internal.account_settle_all() FROM PUBLIC;
COMMENT ON FUNCTION crm_internal.account_settle_all() IS 'AFTER statement trigger on the corporate currency of crm.settings and on TRUNCATE of crm.exchange_rate: settles every account again (under the compaction lock); on TRUNCATE of crm.opportunity, empties crm_internal.account_settled as the aggregates are emptied';
CREATE TRIGGER account_settle_rates_truncate AFTER TRUNCATE ON crm.exchange_rate
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.account_settle_all();

-- An edit of the rates (INSERT, UPDATE, DELETE) settles only the accounts
-- whose converted figures it can change.  A group (currency c, close month
-- m) is converted at the rate of c with the latest valid_from <= m (m is
-- infinity without a close date: the latest rate).  If an edit changes the
-- rate a group gets, the rate row it got before or gets after is one the
-- statement deleted, inserted or updated -- a changed row (c, v) -- and m
-- lies in [v, the next valid_from of c after v in the rates as they are
-- now): a later rate still there would be chosen instead, before and after.
-- So the accounts to settle are those with a compacted group (stripe 0:
-- the settled figures are made from those only) of a changed currency in
-- one of those ranges, found through account_aggregate_rate_idx: the
-- statement costs O(the groups and accounts it affects), not O(accounts).
-- The lock and the snapshot: the compaction lock is taken first, as above,
-- and the groups are looked up in a statement after it (READ COMMITTED:
-- a new snapshot, which sees a compaction that committed meanwhile and the
-- groups it made); account_settle() is called even for no account, so that
-- its update of crm_internal.account_settle_epoch fails with 40001 under a
-- REPEATABLE READ snapshot older than another settling's commit.
CREATE INDEX account_aggregate_rate_idx ON crm_internal.account_aggregate (currency, close_month, account_id)
    WHERE stripe OPERATOR(pg_catalog.=) 0;
COMMENT ON INDEX crm_internal.account_aggregate_rate_idx IS 'The compacted groups (stripe 0) of one currency and range of close months: the accounts a rate edit settles again (crm_internal.account_settle_rates()); writers never write stripe 0, so their inserts never touch it';

CREATE FUNCTION crm_internal.account_settle_rates() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    currencies text[] := '{}';
    months date[] := '{}';
BEGIN
    IF TG_LEVEL OPERATOR(pg_catalog.<>) 'STATEMENT' OR TG_WHEN OPERATOR(pg_catalog.<>) 'AFTER'
       OR TG_OP OPERATOR(pg_catalog.=) 'TRUNCATE' THEN
        RAISE EXCEPTION 'crm_internal.account_settle_rates() must be fired AFTER INSERT, UPDATE or DELETE ... FOR EACH STATEMENT'
            USING ERRCODE = 'triggered_action_exception';
    END IF;
    -- the changed rate rows, before and after (transition tables)
    IF TG_OP OPERATOR(pg_catalog.<>) 'DELETE' THEN
        SELECT currencies OPERATOR(pg_catalog.||) COALESCE(pg_catalog.array_agg(n.currency), '{}'),
               months OPERATOR(pg_catalog.||) COALESCE(pg_catalog.array_agg(n.valid_from), '{}')
          INTO currencies, months FROM new_rates AS n;
    END IF;
    IF TG_OP OPERATOR(pg_catalog.<>) 'INSERT' THEN
        SELECT currencies OPERATOR(pg_catalog.||) COALESCE(pg_catalog.array_agg(o.currency), '{}'),
               months OPERATOR(pg_catalog.||) COALESCE(pg_catalog.array_agg(o.valid_from), '{}')
          INTO currencies, months FROM old_rates AS o;
    END IF;
    PERFORM crm_internal.aggregates_compaction_lock();
    PERFORM crm_internal.account_settle(ARRAY(
        SELECT DISTINCT a.account_id
          FROM (SELECT DISTINCT c.currency, c.valid_from
                  FROM ROWS FROM (pg_catalog.unnest(currencies), pg_catalog.unnest(months)) AS c (currency, valid_from)) AS c
         CROSS JOIN LATERAL (SELECT pg_catalog.min(r.valid_from) AS next_from FROM crm.exchange_rate AS r
                              WHERE r.currency OPERATOR(pg_catalog.=) c.currency
                                AND r.valid_from OPERATOR(pg_catalog.>) c.valid_from) AS u
          JOIN crm_internal.account_aggregate AS a
            ON a.stripe OPERATOR(pg_catalog.=) 0
           AND a.currency OPERATOR(pg_catalog.=) c.currency
           AND a.close_month OPERATOR(pg_catalog.>=) c.valid_from
           -- before the next rate (valid_from is a month's first day, close_month too); none: to infinity
           AND a.close_month OPERATOR(pg_catalog.<=)
               COALESCE(u.next_from OPERATOR(pg_catalog.-) 1, 'infinity'::pg_catalog.date)));
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION crm_internal.account_settle_rates() FROM PUBLIC;
COMMENT ON FUNCTION crm_internal.account_settle_rates() IS 'AFTER INSERT, UPDATE and DELETE statement triggers on crm.exchange_rate: settles again (under the compaction lock) only the accounts with a compacted group whose rate the statement changes (its currency, close month from the changed valid_from to the next rate), found through account_aggregate_rate_idx';
CREATE TRIGGER account_settle_rates_insert AFTER INSERT ON crm.exchange_rate
    REFERENCING NEW TABLE AS new_rates
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.account_settle_rates();
CREATE TRIGGER account_settle_rates_update AFTER UPDATE ON crm.exchange_rate
    REFERENCING OLD TABLE AS old_rates NEW TABLE AS new_rates
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.account_settle_rates();
CREATE TRIGGER account_settle_rates_delete AFTER DELETE ON crm.exchange_rate
    REFERENCING OLD TABLE AS old_rates
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.account_settle_rates();

COMMENT ON TABLE crm_internal.account_settled IS 'Per account, the figures of its compacted aggregate groups (stripe 0 of crm_internal.account_aggregate) in the corporate currency: per opportunity owner, and for all owners (owner 0). Written only by crm.compact_aggregates(), crm.rebuild_aggregates() and edits of the exchange rates (the accounts they affect) or of the corporate currency (never by the deal triggers: no hot rows); exact for an account without uncompacted stripe rows. crm.top_accounts() walks its indexes';
COMMENT ON FUNCTION crm_internal.account_settle(bigint[]) IS 'Makes the settled rows (crm_internal.account_settled) of the given accounts (NULL: all) again from their compacted aggregate groups at the current rates; returns the number of rows written. Called by crm.compact_aggregates(), crm.rebuild_aggregates() and the triggers on rates (the accounts an edit affects) and the corporate currency (all), which hold the compaction lock';

-- the owner's top accounts from the settled rows, which name the account's owner (account_owner)
ALTER TABLE crm_internal.account_settled ADD COLUMN account_owner regrole;
UPDATE crm_internal.account_settled AS s SET account_owner = a.owner FROM crm.account AS a WHERE a.id OPERATOR(pg_catalog.=) s.account_id;
CREATE OR REPLACE VIEW crm_internal.account_settled_actual WITH (security_invoker = true) AS
    SELECT g.account_id, g.owner,
           COALESCE(pg_catalog.sum(g.opportunities) FILTER (WHERE NOT g.is_closed), 0)::bigint AS open_opportunities,
           CASE WHEN pg_catalog.bool_or(g.converted IS NULL AND g.opportunities OPERATOR(pg_catalog.<>) 0) FILTER (WHERE NOT g.is_closed)
                THEN NULL ELSE COALESCE(pg_catalog.sum(g.converted) FILTER (WHERE NOT g.is_closed), 0) END AS open_amount,
           COALESCE(pg_catalog.sum(g.opportunities) FILTER (WHERE g.is_won), 0)::bigint AS won_opportunities,
           CASE WHEN pg_catalog.bool_or(g.converted IS NULL AND g.opportunities OPERATOR(pg_catalog.<>) 0) FILTER (WHERE g.is_won)
                THEN NULL ELSE COALESCE(pg_catalog.sum(g.converted) FILTER (WHERE g.is_won), 0) END AS won_amount,
           ac.owner AS account_owner
      FROM crm_internal.account_settled_groups AS g
      LEFT JOIN crm.account AS ac ON ac.id OPERATOR(pg_catalog.=) g.account_id
     GROUP BY g.account_id, g.owner, ac.owner
    HAVING pg_catalog.sum(g.opportunities) OPERATOR(pg_catalog.<>) 0
    UNION ALL
    SELECT g.account_id, 0::pg_catalog.oid::pg_catalog.regrole,
           COALESCE(pg_catalog.sum(g.opportunities) FILTER (WHERE NOT g.is_closed), 0)::bigint,
           CASE WHEN pg_catalog.bool_or(g.converted IS NULL AND g.opportunities OPERATOR(pg_catalog.<>) 0) FILTER (WHERE NOT g.is_closed)
                THEN NULL ELSE COALESCE(pg_catalog.sum(g.converted) FILTER (WHERE NOT g.is_closed), 0) END,
           COALESCE(pg_catalog.sum(g.opportunities) FILTER (WHERE g.is_won), 0)::bigint,
           CASE WHEN pg_catalog.bool_or(g.converted IS NULL AND g.opportunities OPERATOR(pg_catalog.<>) 0) FILTER (WHERE g.is_won)
                THEN NULL ELSE COALESCE(pg_catalog.sum(g.converted) FILTER (WHERE g.is_won), 0) END,
           ac.owner
      FROM crm_internal.account_settled_groups AS g
      LEFT JOIN crm.account AS ac ON ac.id OPERATOR(pg_catalog.=) g.account_id
     GROUP BY g.account_id, ac.owner
    HAVING pg_catalog.sum(g.opportunities) OPERATOR(pg_catalog.<>) 0;
COMMENT ON COLUMN crm_internal.account_settled_actual.account_owner IS 'The account''s owner now (crm.account.owner; NULL: no such account)';
COMMENT ON COLUMN crm_internal.account_settled.account_owner IS 'The account''s owner (crm.account.owner) when settled; an account whose owner changed since is in crm_internal.account_owner_moved until the next settling; crm.top_accounts(by, n, owner) walks one owner''s accounts by it';
-- the walks of crm.top_accounts(by, n, owner): per owner key and account owner
CREATE INDEX account_settled_account_owner_open_idx ON crm_internal.account_settled
    (owner, account_owner, pg_catalog.round(open_amount, 2) DESC, account_id);
COMMENT ON INDEX crm_internal.account_settled_account_owner_open_idx IS 'crm.top_accounts(''open_amount'', n, owner): one account owner''s accounts, for one owner key, in the order of their rounded open amount';
CREATE INDEX account_settled_account_owner_won_idx ON crm_internal.account_settled
    (owner, account_owner, pg_catalog.round(won_amount, 2) DESC, account_id);
COMMENT ON INDEX crm_internal.account_settled_account_owner_won_idx IS 'crm.top_accounts(''won_amount'', n, owner): one account owner''s accounts, for one owner key, in the order of their rounded won amount';
-- The accounts whose owner changed since they were last settled: pending
-- for crm.top_accounts() (their settled account_owner may be the old one)
-- until the next settling takes them.  Written by the owner trigger below
-- (no lock: an owner change never waits for a compaction), emptied by
-- crm_internal.account_settle().  No key: two changes of one account never
-- wait for each other.
CREATE TABLE crm_internal.account_owner_moved (
    account_id  bigint NOT NULL
);
CREATE INDEX account_owner_moved_account_idx ON crm_internal.account_owner_moved (account_id);
COMMENT ON TABLE crm_internal.account_owner_moved IS 'Accounts whose owner changed since their settled rows (crm_internal.account_settled) were written: crm.top_accounts() computes them from their groups; the next settling (a compaction, a rate edit, a rebuild) settles them with their new owner and deletes these rows';
COMMENT ON COLUMN crm_internal.account_owner_moved.account_id IS 'The account (one row per change of its owner)';
COMMENT ON INDEX crm_internal.account_owner_moved_account_idx IS 'One account''s records (crm.verify_aggregates() skips those accounts)';

SELECT pg_catalog.pg_extension_config_dump('crm_internal.account_owner_moved', '');
GRANT SELECT ON crm_internal.account_owner_moved TO crm_admin, crm_manager, crm_sales, crm_analyst;
CREATE OR REPLACE FUNCTION crm_internal.account_settle(accounts bigint[]) RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    moved bigint[];
BEGIN
    UPDATE crm_internal.account_settle_epoch SET settlings = settlings OPERATOR(pg_catalog.+) 1;
    -- the owner changes committed so far (the statements below see them)
    WITH d AS (DELETE FROM crm_internal.account_owner_moved RETURNING account_id)
    SELECT ARRAY(SELECT DISTINCT d.account_id FROM d) INTO moved;
    IF accounts IS NOT NULL THEN	-- (NULL, all, takes them; NULL || moved would be moved)
        accounts := accounts OPERATOR(pg_catalog.||) moved;
    END IF;
    IF accounts IS NULL THEN
        DELETE FROM crm_internal.account_settled;
        INSERT INTO crm_internal.account_settled
               (account_id, owner, open_opportunities, open_amount, won_opportunities, won_amount, account_owner)
        SELECT x.account_id, x.owner, x.open_opportunities, x.open_amount, x.won_opportunities, x.won_amount, x.account_owner
          FROM crm_internal.account_settled_actual AS x;
    ELSE
        DELETE FROM crm_internal.account_settled AS t WHERE t.account_id OPERATOR(pg_catalog.=) ANY (accounts);
        INSERT INTO crm_internal.account_settled
               (account_id, owner, open_opportunities, open_amount, won_opportunities, won_amount, account_owner)
        SELECT x.account_id, x.owner, x.open_opportunities, x.open_amount, x.won_opportunities, x.won_amount, x.account_owner
          FROM crm_internal.account_settled_actual AS x
         WHERE x.account_id OPERATOR(pg_catalog.=) ANY (accounts);
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION crm_internal.account_settle(bigint[]) IS 'Makes the settled rows (crm_internal.account_settled) of the given accounts (NULL: all), and of the accounts in crm_internal.account_owner_moved (whose rows it deletes), again from their compacted aggregate groups at the current rates; returns the number of rows written. Called by crm.compact_aggregates(), crm.rebuild_aggregates() and the triggers on rates (the accounts an edit affects) and the corporate currency (all), which hold the compaction lock';
-- An account's owner is in its settled rows (account_owner: one owner's
-- top accounts walk them), so a change of it records the account in
-- account_owner_moved (pending until the next settling), without a lock: a
-- rep reassigning an account never waits for a compaction, nor makes one
-- wait.  Updates that change no owner write nothing.
CREATE FUNCTION crm_internal.account_settle_owners() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_LEVEL OPERATOR(pg_catalog.<>) 'STATEMENT' OR TG_WHEN OPERATOR(pg_catalog.<>) 'AFTER'
       OR TG_OP OPERATOR(pg_catalog.<>) 'UPDATE' THEN
        RAISE EXCEPTION 'crm_internal.account_settle_owners() must be fired AFTER UPDATE ... FOR EACH STATEMENT'
            USING ERRCODE = 'triggered_action_exception';
    END IF;
    INSERT INTO crm_internal.account_owner_moved (account_id)
    SELECT n.id FROM new_accounts AS n
      JOIN old_accounts AS o ON o.id OPERATOR(pg_catalog.=) n.id
     WHERE o.owner::pg_catalog.oid OPERATOR(pg_catalog.<>) n.owner::pg_catalog.oid;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION crm_internal.account_settle_owners() FROM PUBLIC;
COMMENT ON FUNCTION crm_internal.account_settle_owners() IS 'AFTER UPDATE statement trigger on crm.account: records the accounts whose owner the statement changed in crm_internal.account_owner_moved (pending for crm.top_accounts() until the next settling gives their settled rows the new owner)';
CREATE TRIGGER account_settle_owners AFTER UPDATE ON crm.account
    REFERENCING OLD TABLE AS old_accounts NEW TABLE AS new_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.account_settle_owners();

CREATE OR REPLACE FUNCTION crm.top_accounts(by text, n integer, owner text DEFAULT NULL) RETURNS SETOF crm.account_rollup
    LANGUAGE sql
    STABLE
    SET search_path = pg_catalog, pg_temp
    SET jit = off
BEGIN ATOMIC
    WITH
    -- Whose settled rows are the caller's figures (row-level security
    -- decides, as in crm.account_rollup): the all-owners rows (owner 0) are
    -- visible exactly to those who see every group (admins, analysts); a
    -- rep's are their own (a team of one); NULL: a manager's team, summed.
    k AS (
        -- (the first all-owners row in the order of account_settled_open_idx)
        SELECT CASE WHEN (SELECT s.owner FROM crm_internal.account_settled AS s
                           WHERE s.owner OPERATOR(pg_catalog.=) 0::pg_catalog.oid::pg_catalog.regrole
                           ORDER BY s.owner, pg_catalog.round(s.open_amount, 2) DESC, s.account_id
                           LIMIT 1) IS NOT NULL
                    THEN 0::pg_catalog.oid::pg_catalog.regrole
                    WHEN (SELECT pg_catalog.count(*) FROM crm.team_roles() AS t) OPERATOR(pg_catalog.=) 1
                    THEN (SELECT pg_catalog.min(t.t) FROM crm.team_roles() AS t (t))::pg_catalog.regrole
               END AS key),
    -- The role named by owner (none: no account is that owner's)
    o AS (
        SELECT r.oid FROM pg_catalog.pg_roles AS r WHERE r.rolname OPERATOR(pg_catalog.=) top_accounts.owner),
    -- Pending: the accounts with stripes not compacted yet (those the caller
    -- sees: account_aggregate_pending_idx), those whose owner changed since
    -- they were settled, and settled rows without a rate.
    pending AS (
        SELECT ARRAY(SELECT a.account_id FROM crm_internal.account_aggregate AS a
                      WHERE a.stripe OPERATOR(pg_catalog.<>) 0
                     UNION
                     SELECT m.account_id FROM crm_internal.account_owner_moved AS m
                     UNION
                     SELECT s.account_id FROM crm_internal.account_settled AS s
                      WHERE (s.open_amount IS NULL OR s.won_amount IS NULL)
                        AND (s.owner OPERATOR(pg_catalog.=) (SELECT k.key FROM k)
                             OR (SELECT k.key FROM k) IS NULL
                                AND s.owner OPERATOR(pg_catalog.<>) 0::pg_catalog.oid::pg_catalog.regrole)) AS ids),
    -- The best n settled accounts that are not pending and that the caller
    -- sees, in index order: their settled figures are exact.  One walk per
    -- measure (each its own index), one for a team; two of the three do
    -- nothing (their condition is a one-time filter).
    candidates AS (
        SELECT ARRAY(
        (SELECT s.account_id FROM crm_internal.account_settled AS s
          WHERE by OPERATOR(pg_catalog.=) 'open_amount' AND top_accounts.owner IS NULL
            AND s.owner OPERATOR(pg_catalog.=) (SELECT k.key FROM k)
            AND pg_catalog.round(s.open_amount, 2) OPERATOR(pg_catalog.>) 0
            AND NOT s.account_id OPERATOR(pg_catalog.=) ANY ((SELECT p.ids FROM pending AS p)::bigint[])
            AND EXISTS (SELECT 1 FROM crm.account AS ac WHERE ac.id OPERATOR(pg_catalog.=) s.account_id)
          ORDER BY s.owner, pg_catalog.round(s.open_amount, 2) DESC, s.account_id
          LIMIT GREATEST(n, 0))
        UNION ALL
        (SELECT s.account_id FROM crm_internal.account_settled AS s
          WHERE by OPERATOR(pg_catalog.=) 'won_amount' AND top_accounts.owner IS NULL
            AND s.owner OPERATOR(pg_catalog.=) (SELECT k.key FROM k)
            AND pg_catalog.round(s.won_amount, 2) OPERATOR(pg_catalog.>) 0
            AND NOT s.account_id OPERATOR(pg_catalog.=) ANY ((SELECT p.ids FROM pending AS p)::bigint[])
            AND EXISTS (SELECT 1 FROM crm.account AS ac WHERE ac.id OPERATOR(pg_catalog.=) s.account_id)
          ORDER BY s.owner, pg_catalog.round(s.won_amount, 2) DESC, s.account_id
          LIMIT GREATEST(n, 0))
        UNION ALL
        -- a manager's team: the sum over the team's owners, per account
        -- (O(the team's settled rows))
        (SELECT s.account_id FROM crm_internal.account_settled AS s
          WHERE (SELECT k.key FROM k) IS NULL AND top_accounts.owner IS NULL
            AND s.owner OPERATOR(pg_catalog.<>) 0::pg_catalog.oid::pg_catalog.regrole
            AND NOT s.account_id OPERATOR(pg_catalog.=) ANY ((SELECT p.ids FROM pending AS p)::bigint[])
            AND EXISTS (SELECT 1 FROM crm.account AS ac WHERE ac.id OPERATOR(pg_catalog.=) s.account_id)
          GROUP BY s.account_id
         HAVING pg_catalog.round(pg_catalog.sum(CASE WHEN by OPERATOR(pg_catalog.=) 'open_amount'
                                                     THEN s.open_amount ELSE s.won_amount END), 2)
                OPERATOR(pg_catalog.>) 0
          ORDER BY pg_catalog.round(pg_catalog.sum(CASE WHEN by OPERATOR(pg_catalog.=) 'open_amount'
                                                       THEN s.open_amount ELSE s.won_amount END), 2) DESC,
                   s.account_id
          LIMIT GREATEST(n, 0))
        UNION ALL
        -- the pending accounts
        SELECT pg_catalog.unnest(p.ids) FROM pending AS p WHERE top_accounts.owner IS NULL
        UNION ALL
        -- one owner's accounts: the best n settled ones of that owner (the
        -- same walks, on the indexes that put account_owner second) ...
        (SELECT s.account_id FROM crm_internal.account_settled AS s
          WHERE by OPERATOR(pg_catalog.=) 'open_amount' AND top_accounts.owner IS NOT NULL
            AND s.owner OPERATOR(pg_catalog.=) (SELECT k.key FROM k)
            AND s.account_owner::pg_catalog.oid OPERATOR(pg_catalog.=) (SELECT o.oid FROM o)
            AND pg_catalog.round(s.open_amount, 2) OPERATOR(pg_catalog.>) 0
            AND NOT s.account_id OPERATOR(pg_catalog.=) ANY ((SELECT p.ids FROM pending AS p)::bigint[])
            AND EXISTS (SELECT 1 FROM crm.account AS ac WHERE ac.id OPERATOR(pg_catalog.=) s.account_id)
          ORDER BY s.owner, s.account_owner, pg_catalog.round(s.open_amount, 2) DESC, s.account_id
          LIMIT GREATEST(n, 0))
        UNION ALL
        (SELECT s.account_id FROM crm_internal.account_settled AS s
          WHERE by OPERATOR(pg_catalog.=) 'won_amount' AND top_accounts.owner IS NOT NULL
            AND s.owner OPERATOR(pg_catalog.=) (SELECT k.key FROM k)
            AND s.account_owner::pg_catalog.oid OPERATOR(pg_catalog.=) (SELECT o.oid FROM o)
            AND pg_catalog.round(s.won_amount, 2) OPERATOR(pg_catalog.>) 0
            AND NOT s.account_id OPERATOR(pg_catalog.=) ANY ((SELECT p.ids FROM pending AS p)::bigint[])
            AND EXISTS (SELECT 1 FROM crm.account AS ac WHERE ac.id OPERATOR(pg_catalog.=) s.account_id)
          ORDER BY s.owner, s.account_owner, pg_catalog.round(s.won_amount, 2) DESC, s.account_id
          LIMIT GREATEST(n, 0))
        UNION ALL
        -- ... and that owner's pending accounts
        SELECT ac.id FROM crm.account AS ac
         WHERE top_accounts.owner IS NOT NULL AND (SELECT k.key FROM k) IS NOT NULL
           AND ac.id OPERATOR(pg_catalog.=) ANY ((SELECT p.ids FROM pending AS p)::bigint[])
           AND ac.owner::pg_catalog.oid OPERATOR(pg_catalog.=) (SELECT o.oid FROM o)
        UNION ALL
        -- a manager's team (no one key): all that owner's accounts
        SELECT ac.id FROM crm.account AS ac
         WHERE top_accounts.owner IS NOT NULL AND (SELECT k.key FROM k) IS NULL
           AND ac.owner::pg_catalog.oid OPERATOR(pg_catalog.=) (SELECT o.oid FROM o)) AS ids)
    -- Their exact figures, from the view, one account at a time (OFFSET 0
    -- keeps the subquery apart, so that its account_id = c.account_id
    -- reaches the view's grouped subquery: O(the account's groups); a join
    -- or = ANY would group every account first); the best n of them.
    SELECT r.*
      FROM pg_catalog.unnest((SELECT c.ids FROM candidates AS c)) AS c (account_id)
     CROSS JOIN LATERAL (SELECT v.* FROM crm.account_rollup AS v
                          WHERE v.account_id OPERATOR(pg_catalog.=) c.account_id OFFSET 0) AS r
     WHERE CASE WHEN by OPERATOR(pg_catalog.=) 'open_amount' THEN r.open_amount ELSE r.won_amount END
           OPERATOR(pg_catalog.>) 0
       AND (top_accounts.owner IS NULL OR r.owner OPERATOR(pg_catalog.=) top_accounts.owner)
     ORDER BY CASE WHEN by OPERATOR(pg_catalog.=) 'open_amount' THEN r.open_amount ELSE r.won_amount END DESC,
              r.account_id
     LIMIT CASE WHEN by::crm_internal.top_accounts_by IS NOT NULL THEN n::crm_internal.top_accounts_count END;
END;
COMMENT ON FUNCTION crm.top_accounts(text, integer, text) IS 'The top n accounts by open_amount or won_amount (by), as crm.account_rollup shows them to the caller (row-level security applies): the same rows as SELECT * FROM crm.account_rollup WHERE <by> > 0 [AND owner = <owner>] ORDER BY <by> DESC, account_id LIMIT n, exact at every committed state, in time O(n + accounts written since the last crm.compact_aggregates()) for admins, analysts and reps (a manager with a team: O(the team''s accounts)); with owner (a role name), among the accounts it owns, O(n + that owner''s pending accounts) the same way (a manager with a team: O(that owner''s accounts and their groups)). 23514 for another by or a negative n, 23502 for NULL; ZC120 when a rate is missing for an account it computes';
CREATE OR REPLACE FUNCTION crm.verify_aggregates()
    RETURNS TABLE (aggregate text, group_key jsonb, measure text, kept numeric, actual numeric)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH converted AS (
        SELECT o.stage, o.owner, o.currency, o.account_id, o.campaign_id, s.is_closed, s.is_won,
               o.amount OPERATOR(pg_catalog.*) r.rate AS amount,
               pg_catalog.round(o.amount OPERATOR(pg_catalog.*) COALESCE(o.probability, 0) OPERATOR(pg_catalog./) 100, 2)
                   OPERATOR(pg_catalog.*) r.rate AS weighted_amount
          FROM crm.opportunity AS o
          JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) o.stage
         CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(o.currency, o.close_date) AS rate) AS r)
    SELECT v.aggregate, v.group_key, v.measure, v.kept, v.actual
      FROM (SELECT c.aggregate, c.group_key, m.measure, m.kept, m.actual
              FROM crm_internal.aggregates_compared AS c
             CROSS JOIN LATERAL (VALUES ('items', c.kept_items, c.actual_items),
                                        ('amount', c.kept_amount, c.actual_amount),
                                        ('weighted_amount', c.kept_weighted_amount, c.actual_weighted_amount))
                                AS m (measure, kept, actual)
            UNION ALL
            SELECT 'pipeline_by_stage', pg_catalog.jsonb_build_object('stage', COALESCE(k.stage, a.stage),
                       'owner', COALESCE(k.owner, a.owner), 'currency', COALESCE(k.currency, a.currency)),
                   m.measure, m.kept, m.actual
              FROM (SELECT p.stage, p.owner, p.currency, p.opportunities, p.amount, p.weighted_amount
                      FROM crm.pipeline_by_stage AS p) AS k
              FULL JOIN (SELECT o.stage, pg_catalog.pg_get_userbyid(o.owner)::text AS owner, o.currency,
                                pg_catalog.count(*) AS opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount), 2) AS amount,
                                pg_catalog.round(pg_catalog.sum(o.weighted_amount), 2) AS weighted_amount
                           FROM converted AS o
                          GROUP BY o.stage, o.owner, o.currency) AS a
                ON a.stage OPERATOR(pg_catalog.=) k.stage AND a.owner OPERATOR(pg_catalog.=) k.owner
               AND a.currency OPERATOR(pg_catalog.=) k.currency
             CROSS JOIN LATERAL (VALUES ('items', COALESCE(k.opportunities, 0)::numeric, COALESCE(a.opportunities, 0)::numeric),
                                        ('amount', COALESCE(k.amount, 0), COALESCE(a.amount, 0)),
                                        ('weighted_amount', COALESCE(k.weighted_amount, 0), COALESCE(a.weighted_amount, 0)))
                                AS m (measure, kept, actual)
            UNION ALL
            SELECT 'account_rollup', pg_catalog.jsonb_build_object('account_id', COALESCE(k.account_id, a.account_id)),
                   m.measure, m.kept, m.actual
              FROM (SELECT r.account_id, r.open_opportunities, r.open_amount, r.won_opportunities, r.won_amount
                      FROM crm.account_rollup AS r) AS k
              FULL JOIN (SELECT o.account_id,
                                pg_catalog.count(*) FILTER (WHERE NOT o.is_closed) AS open_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE NOT o.is_closed), 2) AS open_amount,
                                pg_catalog.count(*) FILTER (WHERE o.is_won) AS won_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE o.is_won), 2) AS won_amount
                           FROM converted AS o
                          WHERE o.account_id IS NOT NULL
                          GROUP BY o.account_id) AS a
                ON a.account_id OPERATOR(pg_catalog.=) k.account_id
             CROSS JOIN LATERAL (VALUES ('open_opportunities', COALESCE(k.open_opportunities, 0)::numeric, COALESCE(a.open_opportunities, 0)::numeric),
                                        ('open_amount', COALESCE(k.open_amount, 0), COALESCE(a.open_amount, 0)),
                                        ('won_opportunities', COALESCE(k.won_opportunities, 0)::numeric, COALESCE(a.won_opportunities, 0)::numeric),
                                        ('won_amount', COALESCE(k.won_amount, 0), COALESCE(a.won_amount, 0)))
                                AS m (measure, kept, actual)
            UNION ALL
            -- the settled account figures (crm.top_accounts() walks them)
            -- against the compacted groups they are made from, for every
            -- account without uncompacted stripes (those whose settled
            -- figures it uses; a stage renamed since the last compaction
            -- leaves the others' stripe 0 under the old name); a missing
            -- rate (NULL amount) compares as -1
            SELECT 'account_settled', pg_catalog.jsonb_build_object('account_id', COALESCE(k.account_id, a.account_id),
                       'owner', COALESCE(k.owner, a.owner)::pg_catalog.oid),
                   m.measure, m.kept, m.actual
              FROM crm_internal.account_settled AS k
              FULL JOIN crm_internal.account_settled_actual AS a
                ON a.account_id OPERATOR(pg_catalog.=) k.account_id AND a.owner OPERATOR(pg_catalog.=) k.owner
             CROSS JOIN LATERAL (SELECT NOT EXISTS (SELECT 1 FROM crm_internal.account_aggregate AS x
                                                     WHERE x.account_id OPERATOR(pg_catalog.=) COALESCE(k.account_id, a.account_id)
                                                       AND x.stripe OPERATOR(pg_catalog.<>) 0)
                                        AND NOT EXISTS (SELECT 1 FROM crm_internal.account_owner_moved AS x
                                                         WHERE x.account_id OPERATOR(pg_catalog.=) COALESCE(k.account_id, a.account_id))
                                        AS settled) AS p
             CROSS JOIN LATERAL (VALUES ('open_opportunities', COALESCE(k.open_opportunities, 0)::numeric, COALESCE(a.open_opportunities, 0)::numeric),
                                        ('open_amount', CASE WHEN k.account_id IS NULL THEN 0 ELSE COALESCE(k.open_amount, -1) END,
                                                        CASE WHEN a.account_id IS NULL THEN 0 ELSE COALESCE(a.open_amount, -1) END),
                                        ('won_opportunities', COALESCE(k.won_opportunities, 0)::numeric, COALESCE(a.won_opportunities, 0)::numeric),
                                        ('won_amount', CASE WHEN k.account_id IS NULL THEN 0 ELSE COALESCE(k.won_amount, -1) END,
                                                       CASE WHEN a.account_id IS NULL THEN 0 ELSE COALESCE(a.won_amount, -1) END),
                                        -- the account's owner, as its oid
                                        ('account_owner', COALESCE(k.account_owner::pg_catalog.oid::pg_catalog.int8, 0)::numeric,
                                                          COALESCE(a.account_owner::pg_catalog.oid::pg_catalog.int8, 0)::numeric))
                                AS m (measure, kept, actual)
             WHERE p.settled
            UNION ALL
            SELECT 'campaign_performance', pg_catalog.jsonb_build_object('campaign_id', COALESCE(k.campaign_id, a.campaign_id)),
                   m.measure, m.kept, m.actual
              FROM (SELECT p.campaign_id, p.opportunities, p.won_opportunities, p.opportunity_amount, p.won_amount
                      FROM crm.campaign_performance AS p) AS k
              FULL JOIN (SELECT o.campaign_id, pg_catalog.count(*) AS opportunities,
                                pg_catalog.count(*) FILTER (WHERE o.is_won) AS won_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount), 2) AS opportunity_amount,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE o.is_won), 2) AS won_amount
                           FROM converted AS o
                          WHERE o.campaign_id IS NOT NULL
                          GROUP BY o.campaign_id) AS a
                ON a.campaign_id OPERATOR(pg_catalog.=) k.campaign_id
             CROSS JOIN LATERAL (VALUES ('opportunities', COALESCE(k.opportunities, 0)::numeric, COALESCE(a.opportunities, 0)::numeric),
                                        ('won_opportunities', COALESCE(k.won_opportunities, 0)::numeric, COALESCE(a.won_opportunities, 0)::numeric),
                                        ('opportunity_amount', COALESCE(k.opportunity_amount, 0), COALESCE(a.opportunity_amount, 0)),
                                        ('won_amount', COALESCE(k.won_amount, 0), COALESCE(a.won_amount, 0)))
                                AS m (measure, kept, actual)
            UNION ALL
            -- stage velocity: the kept passages against the history's
            SELECT 'stage_velocity', pg_catalog.jsonb_build_object('stage', COALESCE(k.stage, a.stage),
                       'owner', pg_catalog.pg_get_userbyid(COALESCE(k.owner, a.owner))::text),
                   m.measure, m.kept, m.actual
              FROM (SELECT v.stage, v.owner::pg_catalog.oid AS owner, pg_catalog.sum(v.passages) AS passages,
                           pg_catalog.sum(v.seconds) AS seconds
                      FROM crm_internal.stage_velocity_aggregate AS v
                     GROUP BY v.stage, v.owner) AS k
              FULL JOIN (SELECT x.stage, x.owner::pg_catalog.oid AS owner, x.passages, x.seconds
                           FROM crm_internal.stage_velocity_actual AS x) AS a
                ON a.stage OPERATOR(pg_catalog.=) k.stage AND a.owner OPERATOR(pg_catalog.=) k.owner
             CROSS JOIN LATERAL (VALUES ('passages', COALESCE(k.passages, 0)::numeric, COALESCE(a.passages, 0)::numeric),
                                        ('seconds', COALESCE(k.seconds, 0), COALESCE(a.seconds, 0)))
                                AS m (measure, kept, actual)) AS v
     WHERE v.kept OPERATOR(pg_catalog.<>) v.actual
     ORDER BY v.aggregate, v.group_key::text, v.measure;
END;
COMMENT ON FUNCTION crm.verify_aggregates() IS 'One row per group and measure where a maintained aggregate differs from a fresh GROUP BY over the base tables, or where a report converted to the corporate currency at read time (pipeline_by_stage per stage, owner and currency; account_rollup per account; campaign_performance per campaign) differs from a GROUP BY converting each opportunity at the rate of its close date (aggregate names the report), or where the kept stage passages (stage_velocity, per stage and owner) differ from crm.opportunity_history, or where the settled account figures crm.top_accounts() reads differ from the compacted groups at the current rates, or name another account owner, for an account without uncompacted stripes whose owner did not change since (account_settled per account and opportunity owner, 0: all owners); no rows: all exact. ZC120 when a rate is missing. Reads every opportunity: for checking, as an admin (who sees every row)';

-- lead write path: the lead status history per statement (issue 22, session 35)
-- crm_internal.record_lead_status() writes a statement's entries from its
-- transition tables; the row trigger of 0.6 becomes two statement triggers.
DROP TRIGGER record_lead_status ON crm.lead;
CREATE TRIGGER record_lead_status_insert AFTER INSERT ON crm.lead
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.record_lead_status();
CREATE TRIGGER record_lead_status_update AFTER UPDATE ON crm.lead
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.record_lead_status();
COMMENT ON FUNCTION crm_internal.record_lead_status() IS 'AFTER INSERT (REFERENCING NEW TABLE) and AFTER UPDATE (OLD and NEW TABLE) statement trigger on crm.lead: appends to crm.lead_status_history one entry per captured lead and one per lead whose status the statement changed, with one INSERT per statement';
-- the conversion guard fires on an UPDATE only when it names a column of the
-- conversion record
DROP TRIGGER lead_conversion_guard ON crm.lead;
CREATE TRIGGER lead_conversion_guard
    BEFORE INSERT OR UPDATE OF status, account_id, contact_id, opportunity_id, converted_at, converted_by ON crm.lead
    FOR EACH ROW EXECUTE FUNCTION crm_internal.lead_conversion_guard();

-- pipeline_as_of in C (issue 22, session 36)
-- crm.pipeline_as_of() becomes a C function (src/pipeline_as_of.c): the
-- history read once as the extension owner, a deal counted when the caller
-- may read the entry of its state (row security checked once per deal, not
-- per entry), renames mapped per stage name; jit off.  Same signature:
-- CREATE OR REPLACE keeps its privileges.
CREATE OR REPLACE FUNCTION crm.pipeline_as_of("at" timestamptz)
    RETURNS TABLE (sort_order integer, stage text, is_closed boolean, is_won boolean, owner text,
                   opportunities bigint, amount numeric, weighted_amount numeric, currency text,
                   amount_in_currency numeric, weighted_amount_in_currency numeric)
    AS 'MODULE_PATHNAME', 'crm_pipeline_as_of'
    LANGUAGE C STABLE STRICT SECURITY INVOKER PARALLEL UNSAFE ROWS 100
    SET search_path = pg_catalog, pg_temp
    SET jit = off;
COMMENT ON FUNCTION crm.pipeline_as_of(timestamptz) IS 'The pipeline as it was at a moment, exactly, from crm.opportunity_history: the columns of crm.pipeline_by_stage (by stage, owner and currency; amounts in the corporate currency at the rate of the close month, today''s rates), for the deals that existed then in the state they had then; a moment after the last change (stage renames included) gives crm.pipeline_by_stage; every active stage appears (zeros without deals). A renamed stage keeps its identity: its deals show under the name the stage had at that moment, with its current sort_order (crm.opportunity_stage_rename); a stage created later with an old name is another stage. A deal counts when the caller may read the history entry of its state then (row security of the history: a rep sees the deals their team owned at that moment and the deals they see now). See README "Reports"';

-- search_text as a stored generated column (issue 22, session 36)
-- crm.search_document() of the row's fields, computed by PostgreSQL on every
-- write (sql/install/92_search.sql) instead of the trigger
-- crm_internal.search_text_fill(), which goes.  PostgreSQL 15 cannot turn a
-- column into a generated one: each search_text is dropped (with its trigram
-- index) and added again, which rewrites the five tables and computes the
-- text of every row; then the indexes are built again.
DROP TRIGGER search_text_fill ON crm.account;
DROP TRIGGER search_text_fill ON crm.contact;
DROP TRIGGER search_text_fill ON crm.lead;
DROP TRIGGER search_text_fill ON crm.opportunity;
DROP TRIGGER search_text_fill ON crm.note;
DROP FUNCTION crm_internal.search_text_fill();
COMMENT ON FUNCTION crm.search_document(text[], text) IS 'The searchable text of a row, as crm.search() matches it: the fields that are not NULL, folded (accents removed, lower case) and joined by spaces, then every digit of the phone number. Computes the column search_text of the searched tables, which the trigram search indexes are on';
ALTER TABLE crm.account DROP COLUMN search_text;
ALTER TABLE crm.contact DROP COLUMN search_text;
ALTER TABLE crm.lead DROP COLUMN search_text;
ALTER TABLE crm.opportunity DROP COLUMN search_text;
ALTER TABLE crm.note DROP COLUMN search_text;
ALTER TABLE crm.account ADD COLUMN search_text text
    GENERATED ALWAYS AS (crm.search_document(ARRAY[name, website], phone)) STORED;
ALTER TABLE crm.contact ADD COLUMN search_text text
    GENERATED ALWAYS AS (crm.search_document(ARRAY[name, email], phone)) STORED;
ALTER TABLE crm.lead ADD COLUMN search_text text
    GENERATED ALWAYS AS (crm.search_document(ARRAY[name, company, email], phone)) STORED;
ALTER TABLE crm.opportunity ADD COLUMN search_text text
    GENERATED ALWAYS AS (crm.search_document(ARRAY[name], NULL)) STORED;
ALTER TABLE crm.note ADD COLUMN search_text text
    GENERATED ALWAYS AS (crm.search_document(ARRAY[body], NULL)) STORED;
COMMENT ON COLUMN crm.account.search_text IS 'What crm.search() searches in an account: its name and website (no accents, lower case) and the digits of its phone number. Computed by the database from those columns (a generated column: it cannot be written)';
COMMENT ON COLUMN crm.contact.search_text IS 'What crm.search() searches in a contact: its name and e-mail (no accents, lower case) and the digits of its phone number. Computed by the database from those columns (a generated column: it cannot be written)';
COMMENT ON COLUMN crm.lead.search_text IS 'What crm.search() searches in a lead: its name, company and e-mail (no accents, lower case) and the digits of its phone number. Computed by the database from those columns (a generated column: it cannot be written)';
COMMENT ON COLUMN crm.opportunity.search_text IS 'What crm.search() searches in an opportunity: its name (no accents, lower case). Computed by the database from the name (a generated column: it cannot be written)';
COMMENT ON COLUMN crm.note.search_text IS 'What crm.search() searches in a note: its body (no accents, lower case). Computed by the database from the body (a generated column: it cannot be written)';
DO $search_text_indexes$
DECLARE
    trgm text := (SELECT e.extnamespace::pg_catalog.regnamespace::pg_catalog.text
                    FROM pg_catalog.pg_extension AS e
                   WHERE e.extname OPERATOR(pg_catalog.=) 'pg_trgm');
BEGIN
    EXECUTE pg_catalog.format('CREATE INDEX account_search_idx ON crm.account USING gin (search_text %s.gin_trgm_ops)', trgm);
    EXECUTE pg_catalog.format('CREATE INDEX contact_search_idx ON crm.contact USING gin (search_text %s.gin_trgm_ops)', trgm);
    EXECUTE pg_catalog.format('CREATE INDEX lead_search_idx ON crm.lead USING gin (search_text %s.gin_trgm_ops)', trgm);
    EXECUTE pg_catalog.format('CREATE INDEX opportunity_search_idx ON crm.opportunity USING gin (search_text %s.gin_trgm_ops)', trgm);
    EXECUTE pg_catalog.format('CREATE INDEX note_search_idx ON crm.note USING gin (search_text %s.gin_trgm_ops)', trgm);
END
$search_text_indexes$;
COMMENT ON INDEX crm.account_search_idx IS 'Search (crm.search): trigrams of the folded name and website and the phone digits';
COMMENT ON INDEX crm.contact_search_idx IS 'Search (crm.search): trigrams of the folded name and e-mail and the phone digits';
COMMENT ON INDEX crm.lead_search_idx IS 'Search (crm.search): trigrams of the folded name, company and e-mail and the phone digits';
COMMENT ON INDEX crm.opportunity_search_idx IS 'Search (crm.search): trigrams of the folded name';
COMMENT ON INDEX crm.note_search_idx IS 'Search (crm.search): trigrams of the folded body';

-- account_rollup from the settled figures (issue 22, session 36)
-- crm.account_rollup reads the settled per-account figures where they are
-- current and computes only the pending accounts from their groups
-- (88_aggregates_top_accounts.sql); the settled rows carry the deals'
-- currency and the amounts in it too.
ALTER TABLE crm_internal.account_settled
    ADD COLUMN currency text,
    ADD COLUMN open_amount_in_currency numeric,
    ADD COLUMN won_amount_in_currency numeric;
COMMENT ON COLUMN crm_internal.account_settled.currency IS 'Currency of these compacted open and won deals when they all share one; NULL when mixed (crm.account_rollup shows it)';
COMMENT ON COLUMN crm_internal.account_settled.open_amount_in_currency IS 'Amount of these open deals in that currency (NULL when mixed)';
COMMENT ON COLUMN crm_internal.account_settled.won_amount_in_currency IS 'Amount of these won deals in that currency (NULL when mixed)';
CREATE OR REPLACE VIEW crm_internal.account_settled_groups WITH (security_invoker = true) AS
    SELECT a.account_id, a.owner, s.is_closed, s.is_won, a.opportunities,
           a.amount OPERATOR(pg_catalog.*)
               (CASE WHEN a.currency OPERATOR(pg_catalog.=) (SELECT t.corporate_currency FROM crm.settings AS t)
                     THEN 1::pg_catalog.numeric
                     ELSE (SELECT r.rate FROM crm.exchange_rate AS r
                            WHERE r.currency OPERATOR(pg_catalog.=) a.currency
                              AND r.valid_from OPERATOR(pg_catalog.<=) a.close_month
                            ORDER BY r.valid_from DESC LIMIT 1) END) AS converted,
           a.currency, a.amount
      FROM crm_internal.account_aggregate AS a
      JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) a.stage
     WHERE a.stripe OPERATOR(pg_catalog.=) 0 AND (s.is_won OR NOT s.is_closed);
COMMENT ON COLUMN crm_internal.account_settled_groups.currency IS 'The group''s currency (the deals'' own)';
COMMENT ON COLUMN crm_internal.account_settled_groups.amount IS 'Their amount in that currency';
CREATE OR REPLACE VIEW crm_internal.account_settled_actual WITH (security_invoker = true) AS
    SELECT g.account_id, g.owner,
           COALESCE(pg_catalog.sum(g.opportunities) FILTER (WHERE NOT g.is_closed), 0)::bigint AS open_opportunities,
           CASE WHEN pg_catalog.bool_or(g.converted IS NULL AND g.opportunities OPERATOR(pg_catalog.<>) 0) FILTER (WHERE NOT g.is_closed)
                THEN NULL ELSE COALESCE(pg_catalog.sum(g.converted) FILTER (WHERE NOT g.is_closed), 0) END AS open_amount,
           COALESCE(pg_catalog.sum(g.opportunities) FILTER (WHERE g.is_won), 0)::bigint AS won_opportunities,
           CASE WHEN pg_catalog.bool_or(g.converted IS NULL AND g.opportunities OPERATOR(pg_catalog.<>) 0) FILTER (WHERE g.is_won)
                THEN NULL ELSE COALESCE(pg_catalog.sum(g.converted) FILTER (WHERE g.is_won), 0) END AS won_amount,
           ac.owner AS account_owner,
           -- (as crm.account_rollup: one currency, or NULL when mixed)
           CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                THEN pg_catalog.min(g.currency) END AS currency,
           CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE NOT g.is_closed), 0) END AS open_amount_in_currency,
           CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE g.is_won), 0) END AS won_amount_in_currency
      FROM crm_internal.account_settled_groups AS g
      LEFT JOIN crm.account AS ac ON ac.id OPERATOR(pg_catalog.=) g.account_id
     GROUP BY g.account_id, g.owner, ac.owner
    HAVING pg_catalog.sum(g.opportunities) OPERATOR(pg_catalog.<>) 0
    UNION ALL
    SELECT g.account_id, 0::pg_catalog.oid::pg_catalog.regrole,
           COALESCE(pg_catalog.sum(g.opportunities) FILTER (WHERE NOT g.is_closed), 0)::bigint,
           CASE WHEN pg_catalog.bool_or(g.converted IS NULL AND g.opportunities OPERATOR(pg_catalog.<>) 0) FILTER (WHERE NOT g.is_closed)
                THEN NULL ELSE COALESCE(pg_catalog.sum(g.converted) FILTER (WHERE NOT g.is_closed), 0) END,
           COALESCE(pg_catalog.sum(g.opportunities) FILTER (WHERE g.is_won), 0)::bigint,
           CASE WHEN pg_catalog.bool_or(g.converted IS NULL AND g.opportunities OPERATOR(pg_catalog.<>) 0) FILTER (WHERE g.is_won)
                THEN NULL ELSE COALESCE(pg_catalog.sum(g.converted) FILTER (WHERE g.is_won), 0) END,
           ac.owner,
           CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                THEN pg_catalog.min(g.currency) END,
           CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE NOT g.is_closed), 0) END,
           CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE g.is_won), 0) END
      FROM crm_internal.account_settled_groups AS g
      LEFT JOIN crm.account AS ac ON ac.id OPERATOR(pg_catalog.=) g.account_id
     GROUP BY g.account_id, ac.owner
    HAVING pg_catalog.sum(g.opportunities) OPERATOR(pg_catalog.<>) 0;
COMMENT ON COLUMN crm_internal.account_settled_actual.currency IS 'Currency of these open and won deals when they all share one; NULL when mixed';
COMMENT ON COLUMN crm_internal.account_settled_actual.open_amount_in_currency IS 'Amount of the open deals in that currency (NULL when mixed)';
COMMENT ON COLUMN crm_internal.account_settled_actual.won_amount_in_currency IS 'Amount of the won deals in that currency (NULL when mixed)';
CREATE OR REPLACE FUNCTION crm_internal.account_settle(accounts bigint[]) RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    moved bigint[];
BEGIN
    UPDATE crm_internal.account_settle_epoch SET settlings = settlings OPERATOR(pg_catalog.+) 1;
    -- the owner changes committed so far (the statements below see them)
    WITH d AS (DELETE FROM crm_internal.account_owner_moved RETURNING account_id)
    SELECT ARRAY(SELECT DISTINCT d.account_id FROM d) INTO moved;
    IF accounts IS NOT NULL THEN	-- (NULL, all, takes them; NULL || moved would be moved)
        accounts := accounts OPERATOR(pg_catalog.||) moved;
    END IF;
    IF accounts IS NULL THEN
        DELETE FROM crm_internal.account_settled;
        INSERT INTO crm_internal.account_settled
               (account_id, owner, open_opportunities, open_amount, won_opportunities, won_amount, account_owner,
                currency, open_amount_in_currency, won_amount_in_currency)
        SELECT x.account_id, x.owner, x.open_opportunities, x.open_amount, x.won_opportunities, x.won_amount, x.account_owner,
               x.currency, x.open_amount_in_currency, x.won_amount_in_currency
          FROM crm_internal.account_settled_actual AS x;
    ELSE
        DELETE FROM crm_internal.account_settled AS t WHERE t.account_id OPERATOR(pg_catalog.=) ANY (accounts);
        INSERT INTO crm_internal.account_settled
               (account_id, owner, open_opportunities, open_amount, won_opportunities, won_amount, account_owner,
                currency, open_amount_in_currency, won_amount_in_currency)
        SELECT x.account_id, x.owner, x.open_opportunities, x.open_amount, x.won_opportunities, x.won_amount, x.account_owner,
               x.currency, x.open_amount_in_currency, x.won_amount_in_currency
          FROM crm_internal.account_settled_actual AS x
         WHERE x.account_id OPERATOR(pg_catalog.=) ANY (accounts);
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- the groups of the pending accounts
CREATE VIEW crm_internal.account_rollup_live WITH (security_invoker = true) AS
    SELECT g.account_id,
           pg_catalog.sum(g.opportunities) FILTER (WHERE NOT g.is_closed) AS open_opportunities,
           pg_catalog.sum(g.amount OPERATOR(pg_catalog.*) g.rate) FILTER (WHERE NOT g.is_closed) AS open_amount,
           pg_catalog.sum(g.opportunities) FILTER (WHERE g.is_won) AS won_opportunities,
           pg_catalog.sum(g.amount OPERATOR(pg_catalog.*) g.rate) FILTER (WHERE g.is_won) AS won_amount,
           CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                THEN pg_catalog.min(g.currency) END AS currency,
           CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE NOT g.is_closed), 0) END AS open_amount_in_currency,
           CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE g.is_won), 0) END AS won_amount_in_currency
      FROM (SELECT a.account_id, a.currency, s.is_closed, s.is_won,
                   pg_catalog.sum(a.opportunities) AS opportunities, pg_catalog.sum(a.amount) AS amount,
                   crm.exchange_rate_on(a.currency, NULLIF(a.close_month, 'infinity'::pg_catalog.date)) AS rate
              FROM crm_internal.account_aggregate AS a
              JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) a.stage
             WHERE s.is_won OR NOT s.is_closed
             GROUP BY a.account_id, a.stage, a.close_month, a.currency, s.is_closed, s.is_won
            HAVING pg_catalog.sum(a.opportunities) OPERATOR(pg_catalog.<>) 0) AS g
     GROUP BY g.account_id;
COMMENT ON VIEW crm_internal.account_rollup_live IS 'Per account, the figures crm.account_rollup shows, computed from the aggregate groups the caller sees at read time (each group converted at the rate of its close month, ZC120 when one is missing), amounts unrounded: crm.account_rollup reads it for the accounts whose settled figures are not current';
COMMENT ON COLUMN crm_internal.account_rollup_live.account_id IS 'The account';
COMMENT ON COLUMN crm_internal.account_rollup_live.open_opportunities IS 'Opportunities in a stage that is not closed';
COMMENT ON COLUMN crm_internal.account_rollup_live.open_amount IS 'Their amount, in the corporate currency, unrounded';
COMMENT ON COLUMN crm_internal.account_rollup_live.won_opportunities IS 'Opportunities won';
COMMENT ON COLUMN crm_internal.account_rollup_live.won_amount IS 'Their amount, in the corporate currency, unrounded';
COMMENT ON COLUMN crm_internal.account_rollup_live.currency IS 'Currency of the open and won deals when they all share one; NULL when mixed';
COMMENT ON COLUMN crm_internal.account_rollup_live.open_amount_in_currency IS 'Amount of the open deals in that currency (NULL when mixed)';
COMMENT ON COLUMN crm_internal.account_rollup_live.won_amount_in_currency IS 'Amount of the won deals in that currency (NULL when mixed)';
-- (security_invoker: the caller's own rights and row-level security apply)
GRANT SELECT ON crm_internal.account_rollup_live TO crm_admin, crm_manager, crm_sales, crm_analyst;

CREATE VIEW crm_internal.account_pending WITH (security_invoker = true) AS
    SELECT a.account_id FROM crm_internal.account_aggregate AS a
     WHERE a.stripe OPERATOR(pg_catalog.<>) 0
    UNION ALL
    SELECT m.account_id FROM crm_internal.account_owner_moved AS m
    UNION ALL
    SELECT s.account_id FROM crm_internal.account_settled AS s
     WHERE s.open_amount IS NULL OR s.won_amount IS NULL;
COMMENT ON VIEW crm_internal.account_pending IS 'The accounts (as the caller sees them) whose figures crm.account_rollup computes from their groups rather than reads from crm_internal.account_settled: uncompacted stripes, an owner changed since the last settling, or a missing rate; an account may appear more than once';
COMMENT ON COLUMN crm_internal.account_pending.account_id IS 'The account';
GRANT SELECT ON crm_internal.account_pending TO crm_admin, crm_manager, crm_sales, crm_analyst;

CREATE OR REPLACE VIEW crm.account_rollup WITH (security_invoker = true) AS
    WITH k AS (
        -- (the lowest and the highest owner key the caller sees: index ends)
        SELECT CASE WHEN e.lo OPERATOR(pg_catalog.=) 0::pg_catalog.oid OR e.lo OPERATOR(pg_catalog.=) e.hi
                    THEN e.lo END AS key
          FROM (SELECT pg_catalog.min(s.owner::pg_catalog.oid) AS lo, pg_catalog.max(s.owner::pg_catalog.oid) AS hi
                  FROM crm_internal.account_settled AS s) AS e)
    SELECT ac.id AS account_id, ac.name, ro.rolname::text AS owner,
           COALESCE(f.open_opportunities, s.open_opportunities, t.open_opportunities, 0) AS open_opportunities,
           CASE WHEN COALESCE(f.open_opportunities, s.open_opportunities, t.open_opportunities, 0) OPERATOR(pg_catalog.>) 0
                THEN pg_catalog.round(COALESCE(f.open_amount, s.open_amount, t.open_amount), 2) ELSE 0 END AS open_amount,
           COALESCE(f.won_opportunities, s.won_opportunities, t.won_opportunities, 0) AS won_opportunities,
           CASE WHEN COALESCE(f.won_opportunities, s.won_opportunities, t.won_opportunities, 0) OPERATOR(pg_catalog.>) 0
                THEN pg_catalog.round(COALESCE(f.won_amount, s.won_amount, t.won_amount), 2) ELSE 0 END AS won_amount,
           (SELECT act.completed_at FROM crm.activity AS act
             WHERE act.account_id OPERATOR(pg_catalog.=) ac.id AND act.completed_at IS NOT NULL
             ORDER BY act.completed_at DESC LIMIT 1) AS last_activity_at,
           COALESCE(f.currency, s.currency, t.currency) AS currency,
           COALESCE(f.open_amount_in_currency, s.open_amount_in_currency, t.open_amount_in_currency) AS open_amount_in_currency,
           COALESCE(f.won_amount_in_currency, s.won_amount_in_currency, t.won_amount_in_currency) AS won_amount_in_currency
      FROM crm.account AS ac
      LEFT JOIN pg_catalog.pg_roles AS ro ON ro.oid OPERATOR(pg_catalog.=) ac.owner::pg_catalog.oid
      LEFT JOIN (
           SELECT q.account_id, l.open_opportunities, l.open_amount, l.won_opportunities, l.won_amount,
                  l.currency, l.open_amount_in_currency, l.won_amount_in_currency
             FROM (SELECT DISTINCT x.account_id FROM crm_internal.account_pending AS x) AS q
             LEFT JOIN LATERAL (SELECT y.* FROM crm_internal.account_rollup_live AS y
                                 WHERE y.account_id OPERATOR(pg_catalog.=) q.account_id OFFSET 0) AS l
               ON true) AS f
        ON f.account_id OPERATOR(pg_catalog.=) ac.id
      LEFT JOIN crm_internal.account_settled AS s
        ON s.account_id OPERATOR(pg_catalog.=) ac.id AND f.account_id IS NULL
       AND s.owner::pg_catalog.oid OPERATOR(pg_catalog.=) (SELECT k.key FROM k)
      LEFT JOIN (
           SELECT x.account_id,
                  pg_catalog.sum(x.open_opportunities) AS open_opportunities, pg_catalog.sum(x.open_amount) AS open_amount,
                  pg_catalog.sum(x.won_opportunities) AS won_opportunities, pg_catalog.sum(x.won_amount) AS won_amount,
                  CASE WHEN pg_catalog.bool_and(x.currency IS NOT NULL)
                        AND pg_catalog.min(x.currency) OPERATOR(pg_catalog.=) pg_catalog.max(x.currency)
                       THEN pg_catalog.min(x.currency) END AS currency,
                  CASE WHEN pg_catalog.bool_and(x.currency IS NOT NULL)
                        AND pg_catalog.min(x.currency) OPERATOR(pg_catalog.=) pg_catalog.max(x.currency)
                       THEN pg_catalog.sum(x.open_amount_in_currency) END AS open_amount_in_currency,
                  CASE WHEN pg_catalog.bool_and(x.currency IS NOT NULL)
                        AND pg_catalog.min(x.currency) OPERATOR(pg_catalog.=) pg_catalog.max(x.currency)
                       THEN pg_catalog.sum(x.won_amount_in_currency) END AS won_amount_in_currency
             FROM crm_internal.account_settled AS x
            WHERE (SELECT k.key FROM k) IS NULL
              AND x.owner::pg_catalog.oid OPERATOR(pg_catalog.<>) 0::pg_catalog.oid
            GROUP BY x.account_id) AS t
        ON t.account_id OPERATOR(pg_catalog.=) ac.id AND f.account_id IS NULL;
COMMENT ON VIEW crm.account_rollup IS 'Per account (one row each): open opportunities and their amount, won opportunities and their amount, in the corporate currency (each deal at the rate of its close month, the latest rate without a close date; a rate edit shows at once), and the last completed activity logged against the account, as the caller sees them (row-level security). One row per account rather than per currency, so that it joins to accounts and charts as one bar each; the deals'' own currency and amounts in it are beside them when all open and won deals of the account share one currency (NULL when they are mixed). Read from the settled per-account figures, and computed from the aggregate groups for the accounts written since the last crm.compact_aggregates(): exact at every committed state';
COMMENT ON COLUMN crm.account_rollup.account_id IS 'The account';
COMMENT ON COLUMN crm.account_rollup.name IS 'Account name';
COMMENT ON COLUMN crm.account_rollup.owner IS 'Account owner: the role''s name, as text (crm.account.owner is a regrole); NULL when that role was dropped. A filter on it (owner = ''name'') reads only that owner''s accounts';
COMMENT ON COLUMN crm.account_rollup.open_opportunities IS 'Opportunities in a stage that is not closed';
COMMENT ON COLUMN crm.account_rollup.open_amount IS 'Their amount, in the corporate currency (rounded to cents once, after converting)';
COMMENT ON COLUMN crm.account_rollup.won_opportunities IS 'Opportunities won';
COMMENT ON COLUMN crm.account_rollup.won_amount IS 'Their amount, in the corporate currency (rounded to cents once, after converting)';
COMMENT ON COLUMN crm.account_rollup.last_activity_at IS 'When the latest completed activity logged against the account was completed (NULL: none)';
COMMENT ON COLUMN crm.account_rollup.currency IS 'Currency of the open and won deals when they all share one; NULL when they are in several currencies or there are none';
COMMENT ON COLUMN crm.account_rollup.open_amount_in_currency IS 'Amount of the open deals in that currency (NULL when the currencies are mixed)';
COMMENT ON COLUMN crm.account_rollup.won_amount_in_currency IS 'Amount of the won deals in that currency (NULL when the currencies are mixed)';

-- backfill: the new columns of every account's settled rows
SELECT crm_internal.aggregates_compaction_lock();
SELECT crm_internal.account_settle(NULL);

-- verify_aggregates checks the settled currency figures (issue 22, session 36)
-- crm.verify_aggregates() also compares the settled rows' one currency and
-- their amounts in it, which crm.account_rollup reads (same signature:
-- CREATE OR REPLACE keeps its privileges).
CREATE OR REPLACE FUNCTION crm.verify_aggregates()
    RETURNS TABLE (aggregate text, group_key jsonb, measure text, kept numeric, actual numeric)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH converted AS (
        SELECT o.stage, o.owner, o.currency, o.account_id, o.campaign_id, s.is_closed, s.is_won,
               o.amount OPERATOR(pg_catalog.*) r.rate AS amount,
               pg_catalog.round(o.amount OPERATOR(pg_catalog.*) COALESCE(o.probability, 0) OPERATOR(pg_catalog./) 100, 2)
                   OPERATOR(pg_catalog.*) r.rate AS weighted_amount
          FROM crm.opportunity AS o
          JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) o.stage
         CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(o.currency, o.close_date) AS rate) AS r)
    SELECT v.aggregate, v.group_key, v.measure, v.kept, v.actual
      FROM (SELECT c.aggregate, c.group_key, m.measure, m.kept, m.actual
              FROM crm_internal.aggregates_compared AS c
             CROSS JOIN LATERAL (VALUES ('items', c.kept_items, c.actual_items),
                                        ('amount', c.kept_amount, c.actual_amount),
                                        ('weighted_amount', c.kept_weighted_amount, c.actual_weighted_amount))
                                AS m (measure, kept, actual)
            UNION ALL
            SELECT 'pipeline_by_stage', pg_catalog.jsonb_build_object('stage', COALESCE(k.stage, a.stage),
                       'owner', COALESCE(k.owner, a.owner), 'currency', COALESCE(k.currency, a.currency)),
                   m.measure, m.kept, m.actual
              FROM (SELECT p.stage, p.owner, p.currency, p.opportunities, p.amount, p.weighted_amount
                      FROM crm.pipeline_by_stage AS p) AS k
              FULL JOIN (SELECT o.stage, pg_catalog.pg_get_userbyid(o.owner)::text AS owner, o.currency,
                                pg_catalog.count(*) AS opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount), 2) AS amount,
                                pg_catalog.round(pg_catalog.sum(o.weighted_amount), 2) AS weighted_amount
                           FROM converted AS o
                          GROUP BY o.stage, o.owner, o.currency) AS a
                ON a.stage OPERATOR(pg_catalog.=) k.stage AND a.owner OPERATOR(pg_catalog.=) k.owner
               AND a.currency OPERATOR(pg_catalog.=) k.currency
             CROSS JOIN LATERAL (VALUES ('items', COALESCE(k.opportunities, 0)::numeric, COALESCE(a.opportunities, 0)::numeric),
                                        ('amount', COALESCE(k.amount, 0), COALESCE(a.amount, 0)),
                                        ('weighted_amount', COALESCE(k.weighted_amount, 0), COALESCE(a.weighted_amount, 0)))
                                AS m (measure, kept, actual)
            UNION ALL
            SELECT 'account_rollup', pg_catalog.jsonb_build_object('account_id', COALESCE(k.account_id, a.account_id)),
                   m.measure, m.kept, m.actual
              FROM (SELECT r.account_id, r.open_opportunities, r.open_amount, r.won_opportunities, r.won_amount
                      FROM crm.account_rollup AS r) AS k
              FULL JOIN (SELECT o.account_id,
                                pg_catalog.count(*) FILTER (WHERE NOT o.is_closed) AS open_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE NOT o.is_closed), 2) AS open_amount,
                                pg_catalog.count(*) FILTER (WHERE o.is_won) AS won_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE o.is_won), 2) AS won_amount
                           FROM converted AS o
                          WHERE o.account_id IS NOT NULL
                          GROUP BY o.account_id) AS a
                ON a.account_id OPERATOR(pg_catalog.=) k.account_id
             CROSS JOIN LATERAL (VALUES ('open_opportunities', COALESCE(k.open_opportunities, 0)::numeric, COALESCE(a.open_opportunities, 0)::numeric),
                                        ('open_amount', COALESCE(k.open_amount, 0), COALESCE(a.open_amount, 0)),
                                        ('won_opportunities', COALESCE(k.won_opportunities, 0)::numeric, COALESCE(a.won_opportunities, 0)::numeric),
                                        ('won_amount', COALESCE(k.won_amount, 0), COALESCE(a.won_amount, 0)))
                                AS m (measure, kept, actual)
            UNION ALL
            -- the settled account figures (crm.top_accounts() walks them)
            -- against the compacted groups they are made from, for every
            -- account without uncompacted stripes (those whose settled
            -- figures it uses; a stage renamed since the last compaction
            -- leaves the others' stripe 0 under the old name); a missing
            -- rate (NULL amount) compares as -1
            SELECT 'account_settled', pg_catalog.jsonb_build_object('account_id', COALESCE(k.account_id, a.account_id),
                       'owner', COALESCE(k.owner, a.owner)::pg_catalog.oid),
                   m.measure, m.kept, m.actual
              FROM crm_internal.account_settled AS k
              FULL JOIN crm_internal.account_settled_actual AS a
                ON a.account_id OPERATOR(pg_catalog.=) k.account_id AND a.owner OPERATOR(pg_catalog.=) k.owner
             CROSS JOIN LATERAL (SELECT NOT EXISTS (SELECT 1 FROM crm_internal.account_aggregate AS x
                                                     WHERE x.account_id OPERATOR(pg_catalog.=) COALESCE(k.account_id, a.account_id)
                                                       AND x.stripe OPERATOR(pg_catalog.<>) 0)
                                        AND NOT EXISTS (SELECT 1 FROM crm_internal.account_owner_moved AS x
                                                         WHERE x.account_id OPERATOR(pg_catalog.=) COALESCE(k.account_id, a.account_id))
                                        AS settled) AS p
             CROSS JOIN LATERAL (VALUES ('open_opportunities', COALESCE(k.open_opportunities, 0)::numeric, COALESCE(a.open_opportunities, 0)::numeric),
                                        ('open_amount', CASE WHEN k.account_id IS NULL THEN 0 ELSE COALESCE(k.open_amount, -1) END,
                                                        CASE WHEN a.account_id IS NULL THEN 0 ELSE COALESCE(a.open_amount, -1) END),
                                        ('won_opportunities', COALESCE(k.won_opportunities, 0)::numeric, COALESCE(a.won_opportunities, 0)::numeric),
                                        ('won_amount', CASE WHEN k.account_id IS NULL THEN 0 ELSE COALESCE(k.won_amount, -1) END,
                                                       CASE WHEN a.account_id IS NULL THEN 0 ELSE COALESCE(a.won_amount, -1) END),
                                        -- the account's owner, as its oid
                                        ('account_owner', COALESCE(k.account_owner::pg_catalog.oid::pg_catalog.int8, 0)::numeric,
                                                          COALESCE(a.account_owner::pg_catalog.oid::pg_catalog.int8, 0)::numeric),
                                        -- the deals' one currency (crm.account_rollup): kept 1
                                        -- when it differs from the actual one (NULL: mixed)
                                        ('currency_differs', CASE WHEN k.currency IS NOT DISTINCT FROM a.currency THEN 0 ELSE 1 END, 0),
                                        ('open_amount_in_currency', COALESCE(k.open_amount_in_currency, -1), COALESCE(a.open_amount_in_currency, -1)),
                                        ('won_amount_in_currency', COALESCE(k.won_amount_in_currency, -1), COALESCE(a.won_amount_in_currency, -1)))
                                AS m (measure, kept, actual)
             WHERE p.settled
            UNION ALL
            SELECT 'campaign_performance', pg_catalog.jsonb_build_object('campaign_id', COALESCE(k.campaign_id, a.campaign_id)),
                   m.measure, m.kept, m.actual
              FROM (SELECT p.campaign_id, p.opportunities, p.won_opportunities, p.opportunity_amount, p.won_amount
                      FROM crm.campaign_performance AS p) AS k
              FULL JOIN (SELECT o.campaign_id, pg_catalog.count(*) AS opportunities,
                                pg_catalog.count(*) FILTER (WHERE o.is_won) AS won_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount), 2) AS opportunity_amount,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE o.is_won), 2) AS won_amount
                           FROM converted AS o
                          WHERE o.campaign_id IS NOT NULL
                          GROUP BY o.campaign_id) AS a
                ON a.campaign_id OPERATOR(pg_catalog.=) k.campaign_id
             CROSS JOIN LATERAL (VALUES ('opportunities', COALESCE(k.opportunities, 0)::numeric, COALESCE(a.opportunities, 0)::numeric),
                                        ('won_opportunities', COALESCE(k.won_opportunities, 0)::numeric, COALESCE(a.won_opportunities, 0)::numeric),
                                        ('opportunity_amount', COALESCE(k.opportunity_amount, 0), COALESCE(a.opportunity_amount, 0)),
                                        ('won_amount', COALESCE(k.won_amount, 0), COALESCE(a.won_amount, 0)))
                                AS m (measure, kept, actual)
            UNION ALL
            -- stage velocity: the kept passages against the history's
            SELECT 'stage_velocity', pg_catalog.jsonb_build_object('stage', COALESCE(k.stage, a.stage),
                       'owner', pg_catalog.pg_get_userbyid(COALESCE(k.owner, a.owner))::text),
                   m.measure, m.kept, m.actual
              FROM (SELECT v.stage, v.owner::pg_catalog.oid AS owner, pg_catalog.sum(v.passages) AS passages,
                           pg_catalog.sum(v.seconds) AS seconds
                      FROM crm_internal.stage_velocity_aggregate AS v
                     GROUP BY v.stage, v.owner) AS k
              FULL JOIN (SELECT x.stage, x.owner::pg_catalog.oid AS owner, x.passages, x.seconds
                           FROM crm_internal.stage_velocity_actual AS x) AS a
                ON a.stage OPERATOR(pg_catalog.=) k.stage AND a.owner OPERATOR(pg_catalog.=) k.owner
             CROSS JOIN LATERAL (VALUES ('passages', COALESCE(k.passages, 0)::numeric, COALESCE(a.passages, 0)::numeric),
                                        ('seconds', COALESCE(k.seconds, 0), COALESCE(a.seconds, 0)))
                                AS m (measure, kept, actual)) AS v
     WHERE v.kept OPERATOR(pg_catalog.<>) v.actual
     ORDER BY v.aggregate, v.group_key::text, v.measure;
END;
COMMENT ON FUNCTION crm.verify_aggregates() IS 'One row per group and measure where a maintained aggregate differs from a fresh GROUP BY over the base tables, or where a report converted to the corporate currency at read time (pipeline_by_stage per stage, owner and currency; account_rollup per account; campaign_performance per campaign) differs from a GROUP BY converting each opportunity at the rate of its close date (aggregate names the report), or where the kept stage passages (stage_velocity, per stage and owner) differ from crm.opportunity_history, or where the settled account figures crm.top_accounts() and crm.account_rollup read differ from the compacted groups at the current rates (also the deals'' one currency and their amounts in it), or name another account owner, for an account without uncompacted stripes whose owner did not change since (account_settled per account and opportunity owner, 0: all owners); no rows: all exact. ZC120 when a rate is missing. Reads every opportunity: for checking, as an admin (who sees every row)';

-- the settled currency ignores groups of no deal (issue 22, session 36)
-- A compaction settles the accounts it folded before it deletes the groups
-- that add up to nothing; the deals' one currency is now taken over the
-- groups that hold deals, as crm.account_rollup takes it (same columns).
CREATE OR REPLACE VIEW crm_internal.account_settled_actual WITH (security_invoker = true) AS
    SELECT g.account_id, g.owner,
           COALESCE(pg_catalog.sum(g.opportunities) FILTER (WHERE NOT g.is_closed), 0)::bigint AS open_opportunities,
           CASE WHEN pg_catalog.bool_or(g.converted IS NULL AND g.opportunities OPERATOR(pg_catalog.<>) 0) FILTER (WHERE NOT g.is_closed)
                THEN NULL ELSE COALESCE(pg_catalog.sum(g.converted) FILTER (WHERE NOT g.is_closed), 0) END AS open_amount,
           COALESCE(pg_catalog.sum(g.opportunities) FILTER (WHERE g.is_won), 0)::bigint AS won_opportunities,
           CASE WHEN pg_catalog.bool_or(g.converted IS NULL AND g.opportunities OPERATOR(pg_catalog.<>) 0) FILTER (WHERE g.is_won)
                THEN NULL ELSE COALESCE(pg_catalog.sum(g.converted) FILTER (WHERE g.is_won), 0) END AS won_amount,
           ac.owner AS account_owner,
           -- (as crm.account_rollup: one currency, or NULL when mixed;
           -- groups that add up to no deal do not count: a compaction
           -- settles before it deletes them)
           CASE WHEN pg_catalog.min(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0)
                THEN pg_catalog.min(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0) END AS currency,
           CASE WHEN pg_catalog.min(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0)
                THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE NOT g.is_closed), 0) END AS open_amount_in_currency,
           CASE WHEN pg_catalog.min(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0)
                THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE g.is_won), 0) END AS won_amount_in_currency
      FROM crm_internal.account_settled_groups AS g
      LEFT JOIN crm.account AS ac ON ac.id OPERATOR(pg_catalog.=) g.account_id
     GROUP BY g.account_id, g.owner, ac.owner
    HAVING pg_catalog.sum(g.opportunities) OPERATOR(pg_catalog.<>) 0
    UNION ALL
    SELECT g.account_id, 0::pg_catalog.oid::pg_catalog.regrole,
           COALESCE(pg_catalog.sum(g.opportunities) FILTER (WHERE NOT g.is_closed), 0)::bigint,
           CASE WHEN pg_catalog.bool_or(g.converted IS NULL AND g.opportunities OPERATOR(pg_catalog.<>) 0) FILTER (WHERE NOT g.is_closed)
                THEN NULL ELSE COALESCE(pg_catalog.sum(g.converted) FILTER (WHERE NOT g.is_closed), 0) END,
           COALESCE(pg_catalog.sum(g.opportunities) FILTER (WHERE g.is_won), 0)::bigint,
           CASE WHEN pg_catalog.bool_or(g.converted IS NULL AND g.opportunities OPERATOR(pg_catalog.<>) 0) FILTER (WHERE g.is_won)
                THEN NULL ELSE COALESCE(pg_catalog.sum(g.converted) FILTER (WHERE g.is_won), 0) END,
           ac.owner,
           CASE WHEN pg_catalog.min(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0)
                THEN pg_catalog.min(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0) END,
           CASE WHEN pg_catalog.min(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0)
                THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE NOT g.is_closed), 0) END,
           CASE WHEN pg_catalog.min(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0)
                THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE g.is_won), 0) END
      FROM crm_internal.account_settled_groups AS g
      LEFT JOIN crm.account AS ac ON ac.id OPERATOR(pg_catalog.=) g.account_id
     GROUP BY g.account_id, ac.owner
    HAVING pg_catalog.sum(g.opportunities) OPERATOR(pg_catalog.<>) 0;

--------------------------------------------------------------------------
-- history: renames told from moves by the renaming statement, entries of nested statements in order (issue 22, session 37)
--------------------------------------------------------------------------
CREATE FUNCTION crm_internal.note_stage_rename() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_note_stage_rename'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.note_stage_rename() IS 'BEFORE UPDATE OF name row trigger on crm.opportunity_stage: notes the rename for the rest of the transaction, so that the opportunity triggers take its cascade to the deals for no move (also when one statement passes names on between stages)';
CREATE TRIGGER note_stage_rename BEFORE UPDATE OF name ON crm.opportunity_stage
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION crm_internal.note_stage_rename();
REVOKE ALL ON FUNCTION crm_internal.note_stage_rename() FROM PUBLIC;

-- lead status history entries in the order the statuses were taken, also
-- for a statement run inside another one (src/history.c)
CREATE FUNCTION crm_internal.begin_lead_status() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_begin_lead_status'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.begin_lead_status() IS 'BEFORE INSERT and BEFORE UPDATE statement trigger on crm.lead: opens the statement''s frame, so that the status history entries of a statement run inside it (a conversion in an UPDATE''s RETURNING list) are written after its own, in the order the statuses were taken';
CREATE TRIGGER record_lead_status_begin BEFORE INSERT OR UPDATE ON crm.lead
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.begin_lead_status();
REVOKE ALL ON FUNCTION crm_internal.begin_lead_status() FROM PUBLIC;

-- opportunity history entries in the order the changes were made, also for
-- a statement run inside another one (src/history_frames.c)
CREATE FUNCTION crm_internal.begin_opportunity_change() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_begin_opportunity_change'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.begin_opportunity_change() IS 'BEFORE INSERT, UPDATE or DELETE statement trigger on crm.opportunity: opens the statement''s frame, so that the history entries of a statement run inside it (a function in its RETURNING list that changes the deal again) are written after its own, in the order the changes were made';
CREATE TRIGGER record_opportunity_change_begin BEFORE INSERT OR UPDATE OR DELETE ON crm.opportunity
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.begin_opportunity_change();
REVOKE ALL ON FUNCTION crm_internal.begin_opportunity_change() FROM PUBLIC;

-- conversion cost: phone keys declared costly (issue 22, session 37)
-- (sql/install/20_core.sql: the duplicate search looks a phone key up in
-- its index instead of reading every row of a partial index whose
-- statistics are stale)
ALTER FUNCTION crm.phone_key(text) COST 100;

-- one owner's accounts in bulk in crm.account_rollup (issue 22, session 37)
-- crm.account_rollup WHERE owner = 'name' reads the owner's accounts and
-- their settled rows in two index ranges, per account owner (the new index
-- on account_settled (account_owner, owner, account_id)), and joins their
-- completed activities; the accounts of a dropped role are computed from
-- their groups (same columns, same rows).
CREATE INDEX account_settled_account_owner_idx ON crm_internal.account_settled (account_owner, owner, account_id);
COMMENT ON INDEX crm_internal.account_settled_account_owner_idx IS 'One account owner''s settled rows for one owner key (or every key above 0, for a manager''s sums): crm.account_rollup WHERE owner = ''name'' reads them in one range';

CREATE OR REPLACE VIEW crm.account_rollup WITH (security_invoker = true) AS
    WITH k AS (
        -- (the lowest and the highest owner key the caller sees: index ends)
        SELECT CASE WHEN e.lo OPERATOR(pg_catalog.=) 0::pg_catalog.oid OR e.lo OPERATOR(pg_catalog.=) e.hi
                    THEN e.lo END AS key
          FROM (SELECT pg_catalog.min(s.owner::pg_catalog.oid) AS lo, pg_catalog.max(s.owner::pg_catalog.oid) AS hi
                  FROM crm_internal.account_settled AS s) AS e)
    SELECT x.account_id, x.name, x.owner,
           CASE WHEN f.account_id IS NULL THEN COALESCE(x.open_opportunities, 0)
                ELSE COALESCE(f.open_opportunities, 0) END AS open_opportunities,
           CASE WHEN f.account_id IS NULL
                THEN CASE WHEN x.open_opportunities OPERATOR(pg_catalog.>) 0 THEN pg_catalog.round(x.open_amount, 2) ELSE 0 END
                ELSE CASE WHEN f.open_opportunities OPERATOR(pg_catalog.>) 0 THEN pg_catalog.round(f.open_amount, 2) ELSE 0 END
           END AS open_amount,
           CASE WHEN f.account_id IS NULL THEN COALESCE(x.won_opportunities, 0)
                ELSE COALESCE(f.won_opportunities, 0) END AS won_opportunities,
           CASE WHEN f.account_id IS NULL
                THEN CASE WHEN x.won_opportunities OPERATOR(pg_catalog.>) 0 THEN pg_catalog.round(x.won_amount, 2) ELSE 0 END
                ELSE CASE WHEN f.won_opportunities OPERATOR(pg_catalog.>) 0 THEN pg_catalog.round(f.won_amount, 2) ELSE 0 END
           END AS won_amount,
           x.last_activity_at,
           CASE WHEN f.account_id IS NULL THEN x.currency ELSE f.currency END AS currency,
           CASE WHEN f.account_id IS NULL THEN x.open_amount_in_currency ELSE f.open_amount_in_currency END
               AS open_amount_in_currency,
           CASE WHEN f.account_id IS NULL THEN x.won_amount_in_currency ELSE f.won_amount_in_currency END
               AS won_amount_in_currency
      FROM (
        -- the accounts of each role
        (SELECT DISTINCT ON (ac.id, ro.rolname::pg_catalog.text)
               ac.id AS account_id, ac.name, ro.rolname::pg_catalog.text AS owner, act.completed_at AS last_activity_at,
               s.open_opportunities, s.open_amount, s.won_opportunities, s.won_amount, s.currency,
               s.open_amount_in_currency, s.won_amount_in_currency
          FROM crm.account AS ac
          JOIN pg_catalog.pg_roles AS ro ON ro.oid OPERATOR(pg_catalog.=) ac.owner::pg_catalog.oid
          LEFT JOIN LATERAL (
               -- one owner key: its row of each account of the role
               SELECT y.account_id, y.open_opportunities::pg_catalog.numeric AS open_opportunities, y.open_amount,
                      y.won_opportunities::pg_catalog.numeric AS won_opportunities, y.won_amount, y.currency,
                      y.open_amount_in_currency, y.won_amount_in_currency
                 FROM crm_internal.account_settled AS y
                WHERE y.account_owner::pg_catalog.oid OPERATOR(pg_catalog.=) ro.oid
                  AND y.owner::pg_catalog.oid OPERATOR(pg_catalog.=) (SELECT k.key FROM k)
               UNION ALL
               -- no one key (a manager): per account, the sum of the visible owners' rows
               SELECT y.account_id,
                      pg_catalog.sum(y.open_opportunities), pg_catalog.sum(y.open_amount),
                      pg_catalog.sum(y.won_opportunities), pg_catalog.sum(y.won_amount),
                      CASE WHEN pg_catalog.bool_and(y.currency IS NOT NULL)
                            AND pg_catalog.min(y.currency) OPERATOR(pg_catalog.=) pg_catalog.max(y.currency)
                           THEN pg_catalog.min(y.currency) END,
                      CASE WHEN pg_catalog.bool_and(y.currency IS NOT NULL)
                            AND pg_catalog.min(y.currency) OPERATOR(pg_catalog.=) pg_catalog.max(y.currency)
                           THEN pg_catalog.sum(y.open_amount_in_currency) END,
                      CASE WHEN pg_catalog.bool_and(y.currency IS NOT NULL)
                            AND pg_catalog.min(y.currency) OPERATOR(pg_catalog.=) pg_catalog.max(y.currency)
                           THEN pg_catalog.sum(y.won_amount_in_currency) END
                 FROM crm_internal.account_settled AS y
                WHERE (SELECT k.key FROM k) IS NULL
                  AND y.account_owner::pg_catalog.oid OPERATOR(pg_catalog.=) ro.oid
                  AND y.owner::pg_catalog.oid OPERATOR(pg_catalog.>) 0::pg_catalog.oid
                GROUP BY y.account_id) AS s
            ON s.account_id OPERATOR(pg_catalog.=) ac.id
          LEFT JOIN crm.activity AS act
            ON act.account_id OPERATOR(pg_catalog.=) ac.id AND act.completed_at IS NOT NULL
         ORDER BY ac.id, ro.rolname::pg_catalog.text, act.completed_at DESC NULLS LAST)
        UNION ALL
        -- the accounts of a role dropped since (owner NULL), computed from their groups
        (SELECT DISTINCT ON (ac.id, NULL::pg_catalog.name::pg_catalog.text)
               ac.id, ac.name, NULL::pg_catalog.name::pg_catalog.text, act.completed_at,
               l.open_opportunities, l.open_amount, l.won_opportunities, l.won_amount, l.currency,
               l.open_amount_in_currency, l.won_amount_in_currency
          FROM crm.account AS ac
          LEFT JOIN LATERAL (SELECT y.* FROM crm_internal.account_rollup_live AS y
                              WHERE y.account_id OPERATOR(pg_catalog.=) ac.id OFFSET 0) AS l ON true
          LEFT JOIN crm.activity AS act
            ON act.account_id OPERATOR(pg_catalog.=) ac.id AND act.completed_at IS NOT NULL
         WHERE ac.owner::pg_catalog.oid OPERATOR(pg_catalog.<>) ALL (ARRAY(SELECT r.oid FROM pg_catalog.pg_roles AS r))
           AND ac.owner::pg_catalog.text OPERATOR(pg_catalog.=) ac.owner::pg_catalog.oid::pg_catalog.text
         ORDER BY ac.id, NULL::pg_catalog.name::pg_catalog.text, act.completed_at DESC NULLS LAST)) AS x
      LEFT JOIN (
           SELECT q.account_id, l.open_opportunities, l.open_amount, l.won_opportunities, l.won_amount,
                  l.currency, l.open_amount_in_currency, l.won_amount_in_currency
             FROM (SELECT DISTINCT p.account_id FROM crm_internal.account_pending AS p) AS q
             LEFT JOIN LATERAL (SELECT y.* FROM crm_internal.account_rollup_live AS y
                                 WHERE y.account_id OPERATOR(pg_catalog.=) q.account_id OFFSET 0) AS l
               ON true) AS f
        ON f.account_id OPERATOR(pg_catalog.=) x.account_id;
