--------------------------------------------------------------------------
-- Duplicates: pairs found on entry, waiting for a decision
--------------------------------------------------------------------------

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
CREATE INDEX lead_email_lower_idx ON crm.lead (pg_catalog.lower(email)) WHERE email IS NOT NULL;
COMMENT ON INDEX crm.lead_email_lower_idx IS 'Leads by e-mail address in lower case: the duplicate search, and an access request or an erasure, find a person''s leads without reading every lead';
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
COMMENT ON FUNCTION crm.find_duplicates(text, jsonb) IS 'The leads, accounts and contacts that may be duplicates of a record not stored yet, given as a jsonb object of column names and values, e.g. crm.find_duplicates(''lead'', candidate => ''{"name": "Jon Smith", "email": "jon@acme.example"}''); as crm.find_duplicates(kind, id)';
CREATE FUNCTION crm.dismiss_duplicate(kind text, id bigint, duplicate_kind text, duplicate_of bigint) RETURNS text
    AS 'MODULE_PATHNAME', 'crm_dismiss_duplicate'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.dismiss_duplicate(text, bigint, text, bigint) IS 'Marks an open pair of crm.duplicate_candidate as not duplicates (status dismissed, by the caller, now); the caller must see the pair';

-- Checking on entry, forgetting the open pairs of deleted records.
CREATE FUNCTION crm_internal.duplicate_check() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_duplicate_check'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.duplicate_check() IS 'AFTER INSERT/UPDATE statement trigger on crm.lead, crm.account, crm.contact: applies the duplicate policy of crm.settings (warn: queue and WARNING ZC710; block: ZC701 on a key match), with the duplicate-search key locks';
CREATE FUNCTION crm_internal.duplicate_forget() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_duplicate_forget'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.duplicate_forget() IS 'AFTER DELETE/TRUNCATE statement trigger on crm.lead, crm.account, crm.contact: removes the open pairs of crm.duplicate_candidate that name a deleted record';
DO $dup_triggers$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['lead', 'account', 'contact']
    LOOP
        EXECUTE pg_catalog.format('CREATE TRIGGER duplicate_check_insert AFTER INSERT ON crm.%I'
            ' REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.duplicate_check()', t);
        EXECUTE pg_catalog.format('CREATE TRIGGER duplicate_check_update AFTER UPDATE ON crm.%I'
            ' REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.duplicate_check()', t);
        EXECUTE pg_catalog.format('CREATE TRIGGER duplicate_forget AFTER DELETE ON crm.%I'
            ' REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.duplicate_forget()', t);
        EXECUTE pg_catalog.format('CREATE TRIGGER duplicate_forget_truncate AFTER TRUNCATE ON crm.%I'
            ' FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.duplicate_forget()', t);
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
