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
COMMENT ON FUNCTION crm.phone_key(text) IS 'Digits that identify a phone number: punctuation and a leading international 00 dropped, the last nine digits of a longer number; NULL under seven digits. "+1 (555) 014-2000" and "555.014.2000" share a key';

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

-- Admins read every merge; managers and reps those whose survivor they see.
ALTER TABLE crm.merge_record ENABLE ROW LEVEL SECURITY;
CREATE POLICY crm_admin_all ON crm.merge_record TO crm_admin USING (true) WITH CHECK (true);
CREATE POLICY crm_survivor_select ON crm.merge_record FOR SELECT TO crm_manager, crm_sales
    USING (CASE kind
           WHEN 'account' THEN EXISTS (SELECT 1 FROM crm.account AS p WHERE p.id OPERATOR(pg_catalog.=) survivor_id)
           WHEN 'contact' THEN EXISTS (SELECT 1 FROM crm.contact AS p WHERE p.id OPERATOR(pg_catalog.=) survivor_id)
           ELSE EXISTS (SELECT 1 FROM crm.lead AS p WHERE p.id OPERATOR(pg_catalog.=) survivor_id) END);
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
-- Building the four GIN indexes reads every account, contact, lead and
-- opportunity: on large tables the update takes a while (README "Search").
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

-- The trigram operator class lives in pg_trgm's schema, whichever it is.
DO $search_indexes$
DECLARE
    trgm text := (SELECT e.extnamespace::pg_catalog.regnamespace::pg_catalog.text
                    FROM pg_catalog.pg_extension AS e
                   WHERE e.extname OPERATOR(pg_catalog.=) 'pg_trgm');
BEGIN
    EXECUTE pg_catalog.format('CREATE INDEX account_search_idx ON crm.account USING gin'
        ' (crm.search_document(ARRAY[name, website], phone) %s.gin_trgm_ops)', trgm);
    EXECUTE pg_catalog.format('CREATE INDEX contact_search_idx ON crm.contact USING gin'
        ' (crm.search_document(ARRAY[name, email], phone) %s.gin_trgm_ops)', trgm);
    EXECUTE pg_catalog.format('CREATE INDEX lead_search_idx ON crm.lead USING gin'
        ' (crm.search_document(ARRAY[name, company, email], phone) %s.gin_trgm_ops)', trgm);
    EXECUTE pg_catalog.format('CREATE INDEX opportunity_search_idx ON crm.opportunity USING gin'
        ' (crm.search_document(ARRAY[name], NULL) %s.gin_trgm_ops)', trgm);
END
$search_indexes$;
COMMENT ON INDEX crm.account_search_idx IS 'Search (crm.search): trigrams of the folded name and website and the phone digits';
COMMENT ON INDEX crm.contact_search_idx IS 'Search (crm.search): trigrams of the folded name and e-mail and the phone digits';
COMMENT ON INDEX crm.lead_search_idx IS 'Search (crm.search): trigrams of the folded name, company and e-mail and the phone digits';
COMMENT ON INDEX crm.opportunity_search_idx IS 'Search (crm.search): trigrams of the folded name';
