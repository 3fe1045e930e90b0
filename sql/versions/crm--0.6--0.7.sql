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
