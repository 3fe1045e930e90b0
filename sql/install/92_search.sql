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
COMMENT ON FUNCTION crm.search_document(text[], text) IS 'The searchable text of a row, as crm.search() matches it: the fields that are not NULL, folded (accents removed, lower case) and joined by spaces, then every digit of the phone number. Backs the trigram search indexes';

CREATE FUNCTION crm.search(query text, kinds text[] DEFAULT NULL, max_results integer DEFAULT 20)
    RETURNS TABLE (kind text, id bigint, title text, subtitle text, score real)
    AS 'MODULE_PATHNAME', 'crm_search'
    LANGUAGE C STABLE
    SET search_path = pg_catalog, pg_temp
    SET pg_trgm.word_similarity_threshold = 0.7;
COMMENT ON FUNCTION crm.search(text, text[], integer) IS 'Finds accounts (name, website, phone), contacts (name, e-mail, phone, account name), leads (name, company, e-mail, phone), notes (text; only those about a record the caller sees) and opportunities (name, account name) the caller may see: case- and accent-insensitive, typo-tolerant, prefixes, e-mail and phone fragments. kinds limits the kinds (NULL: all); best first by score (1 = the name is the query)';
REVOKE ALL ON FUNCTION crm.search(text, text[], integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.search(text, text[], integer) TO crm_admin, crm_manager, crm_sales;

-- The searchable text of each row is stored: the index and the search's
-- recheck and scoring read it instead of folding the fields again (with
-- unaccent) for every candidate row.  A trigger keeps it: on INSERT, and on
-- an UPDATE that sets one of its fields (or search_text itself, which it
-- then overwrites); other updates (a stage, an amount, a status) neither
-- fold text again nor change it, so they stay HOT when nothing else indexed
-- changes.  No role is granted the column (99_privileges.sql); the change
-- log, merges and erasure leave it out.  The trigger fires also under
-- session_replication_role = replica (ENABLE ALWAYS): the text always
-- follows the row.
CREATE FUNCTION crm_internal.search_text_fill() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_search_text_fill'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.search_text_fill() IS 'BEFORE INSERT OR UPDATE OF the searched columns trigger on crm.account, crm.contact, crm.lead, crm.opportunity, crm.note: sets search_text, the row''s searchable text (crm.search_document of its fields)';
ALTER TABLE crm.account ADD COLUMN search_text text;
ALTER TABLE crm.contact ADD COLUMN search_text text;
ALTER TABLE crm.lead ADD COLUMN search_text text;
ALTER TABLE crm.opportunity ADD COLUMN search_text text;
CREATE TRIGGER search_text_fill BEFORE INSERT OR UPDATE OF name, website, phone, search_text ON crm.account
    FOR EACH ROW EXECUTE FUNCTION crm_internal.search_text_fill();
CREATE TRIGGER search_text_fill BEFORE INSERT OR UPDATE OF name, email, phone, search_text ON crm.contact
    FOR EACH ROW EXECUTE FUNCTION crm_internal.search_text_fill();
CREATE TRIGGER search_text_fill BEFORE INSERT OR UPDATE OF name, company, email, phone, search_text ON crm.lead
    FOR EACH ROW EXECUTE FUNCTION crm_internal.search_text_fill();
CREATE TRIGGER search_text_fill BEFORE INSERT OR UPDATE OF name, search_text ON crm.opportunity
    FOR EACH ROW EXECUTE FUNCTION crm_internal.search_text_fill();
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

-- Notes (81_notes_and_tags.sql): searched by their body
CREATE TRIGGER search_text_fill BEFORE INSERT OR UPDATE OF body, search_text ON crm.note
    FOR EACH ROW EXECUTE FUNCTION crm_internal.search_text_fill();
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
