-- api_schema: what schema-driven API servers and typed query builders
-- (PostGraphile, drizzle-kit, kysely-codegen, SQLAlchemy's inspector) read
-- from the catalog matches what the database accepts and returns.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_api_rep IN ROLE crm_sales;
CREATE ROLE regress_api_analyst IN ROLE crm_analyst;

-- No column is NOT NULL without a default where the database fills it in:
-- generators make such a column mandatory in their insert types.  The
-- line items' unit_price is nullable in the catalog and kept set by a check.
SELECT c.relname, a.attname
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.oid IN ('crm.opportunity_line_item'::regclass, 'crm.quote_line_item'::regclass) AND a.attname = 'unit_price'
   AND a.attnotnull AND NOT a.atthasdef
 ORDER BY 1;
INSERT INTO crm.product (code, name, list_price) VALUES ('WID-1', 'Widget', 100);
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price) VALUES (1, 1, 100);
SET ROLE regress_api_rep;
INSERT INTO crm.account (name) VALUES ('Acme');
INSERT INTO crm.opportunity (name, account_id, close_date) VALUES ('Dated', 1, '2027-03-15'), ('Undated', 1, NULL);
-- Left out or NULL, the unit price is the book's; it never stays NULL.
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (1, 1, 2);
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, unit_price) VALUES (2, 1, NULL);
UPDATE crm.opportunity_line_item SET unit_price = 90 WHERE opportunity_id = 2;
UPDATE crm.opportunity_line_item SET unit_price = NULL WHERE opportunity_id = 2;
SELECT opportunity_id, quantity, unit_price, total FROM crm.opportunity_line_item ORDER BY id;
SELECT crm.create_quote(1) AS quote_id;
INSERT INTO crm.quote_line_item (quote_id, product_id) VALUES (1, 1);
SELECT quote_id, unit_price FROM crm.quote_line_item ORDER BY id;

-- Pipeline totals: no close date is NULL, never the date 'infinity' (which
-- psycopg 3 and JavaScript cannot represent).
SELECT stage, close_month, opportunities, amount FROM crm.pipeline_totals ORDER BY close_month NULLS LAST;
RESET ROLE;
SELECT count(*) AS infinite FROM crm.pipeline_totals WHERE close_month = 'infinity';

-- Every view an analyst is shown (it holds a privilege on it, as
-- information_schema lists them) can be read whole as that analyst.
CREATE FUNCTION pg_temp.unreadable() RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c
              WHERE c.relnamespace = 'crm'::regnamespace AND c.relkind IN ('v', 'm')
                AND has_any_column_privilege(c.oid, 'SELECT') ORDER BY c.relname
    LOOP
        BEGIN
            EXECUTE format('SELECT * FROM %s LIMIT 1', r.rel);
        EXCEPTION WHEN insufficient_privilege THEN
            RETURN NEXT r.rel::text;
        END;
    END LOOP;
END $$;
SET ROLE regress_api_analyst;
SELECT * FROM pg_temp.unreadable();
RESET ROLE;

DROP OWNED BY regress_api_rep, regress_api_analyst;
DROP ROLE regress_api_rep, regress_api_analyst;
