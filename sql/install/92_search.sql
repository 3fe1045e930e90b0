--------------------------------------------------------------------------
-- Search: crm.search() over accounts, contacts, leads and opportunities
-- (src/search.c).  Each searched table has a GIN trigram index on the
-- searchable text of its rows, crm.search_document(): the folded fields and
-- the digits of the phone number.  The search finds candidates through these
-- indexes as the extension owner, then keeps only the rows the caller sees,
-- scored from what the caller sees (README "Search").
--------------------------------------------------------------------------

CREATE FUNCTION crm.search_document(fields text[], phone text) RETURNS text
    AS 'MODULE_PATHNAME', 'crm_search_document'
    LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION crm.search_document(text[], text) IS 'The searchable text of a row, as crm.search() matches it: the fields that are not NULL, folded (accents removed, lower case) and joined by spaces, then every digit of the phone number. Computes the column search_text of the searched tables, which the trigram search indexes are on';

CREATE FUNCTION crm.search(query text, kinds text[] DEFAULT NULL, max_results integer DEFAULT 20)
    RETURNS TABLE (kind text, id bigint, title text, subtitle text, score real)
    AS 'MODULE_PATHNAME', 'crm_search'
    LANGUAGE C STABLE
    SET search_path = pg_catalog, pg_temp
    SET pg_trgm.word_similarity_threshold = 0.7;
COMMENT ON FUNCTION crm.search(text, text[], integer) IS 'Finds accounts (name, website, phone), contacts (name, e-mail, phone, account name), leads (name, company, e-mail, phone), notes (text; only those about a record the caller sees) and opportunities (name, account name) the caller may see: case- and accent-insensitive, typo-tolerant, prefixes, e-mail and phone fragments. kinds limits the kinds (NULL: all); best first by score (1 = the name is the query)';
REVOKE ALL ON FUNCTION crm.search(text, text[], integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.search(text, text[], integer) TO crm_admin, crm_manager, crm_sales;

-- The searchable text of each row is stored, a generated column: the index
-- and the search's recheck and scoring read it instead of folding the fields
-- again (with unaccent) for every candidate row.  PostgreSQL computes it on
-- every write path (INSERT, UPDATE, COPY, MERGE, ON CONFLICT, logical
-- replication's apply, pg_restore's COPY, which leaves it out of the data)
-- and refuses a value for it (428C9).  An UPDATE computes it again; an
-- update of other columns (a stage, an amount, a status) gives the same
-- text, so it stays HOT when nothing else indexed changes.  The change log,
-- merges and erasure leave it out.
ALTER TABLE crm.account ADD COLUMN search_text text
    GENERATED ALWAYS AS (crm.search_document(ARRAY[name, website], phone)) STORED;
ALTER TABLE crm.contact ADD COLUMN search_text text
    GENERATED ALWAYS AS (crm.search_document(ARRAY[name, email], phone)) STORED;
ALTER TABLE crm.lead ADD COLUMN search_text text
    GENERATED ALWAYS AS (crm.search_document(ARRAY[name, company, email], phone)) STORED;
ALTER TABLE crm.opportunity ADD COLUMN search_text text
    GENERATED ALWAYS AS (crm.search_document(ARRAY[name], NULL)) STORED;
COMMENT ON COLUMN crm.account.search_text IS 'What crm.search() searches in an account: its name and website (no accents, lower case) and the digits of its phone number. Computed by the database from those columns (a generated column: it cannot be written)';
COMMENT ON COLUMN crm.contact.search_text IS 'What crm.search() searches in a contact: its name and e-mail (no accents, lower case) and the digits of its phone number. Computed by the database from those columns (a generated column: it cannot be written)';
COMMENT ON COLUMN crm.lead.search_text IS 'What crm.search() searches in a lead: its name, company and e-mail (no accents, lower case) and the digits of its phone number. Computed by the database from those columns (a generated column: it cannot be written)';
COMMENT ON COLUMN crm.opportunity.search_text IS 'What crm.search() searches in an opportunity: its name (no accents, lower case). Computed by the database from the name (a generated column: it cannot be written)';

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

-- Notes (81_notes_and_tags.sql): searched by their body
ALTER TABLE crm.note ADD COLUMN search_text text
    GENERATED ALWAYS AS (crm.search_document(ARRAY[body], NULL)) STORED;
COMMENT ON COLUMN crm.note.search_text IS 'What crm.search() searches in a note: its body (no accents, lower case). Computed by the database from the body (a generated column: it cannot be written)';
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
