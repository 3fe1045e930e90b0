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
-- line items' unit_price, the lead's owner and the quote number are
-- nullable in the catalog and kept set by a check.
SELECT f.tab, f.col, a.attnotnull, a.atthasdef, k.conname
  FROM (VALUES ('opportunity_line_item', 'unit_price'), ('quote_line_item', 'unit_price'),
               ('lead', 'owner'), ('quote', 'quote_number')) f (tab, col)
  JOIN pg_attribute a ON a.attrelid = ('crm.' || f.tab)::regclass AND a.attname = f.col
  LEFT JOIN pg_constraint k ON k.conrelid = a.attrelid AND k.contype = 'c'
       AND pg_get_constraintdef(k.oid) = format('CHECK ((%s IS NOT NULL))', f.col)
 ORDER BY 1, 2;
-- created_at and updated_at are set by the database: no role may write
-- them, so generators leave them out of their insert and update types.
SELECT c.relname, a.attname, g.rolname, p.priv
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 CROSS JOIN pg_roles g CROSS JOIN (VALUES ('INSERT'), ('UPDATE')) p (priv)
 WHERE c.relnamespace = 'crm'::regnamespace AND c.relkind = 'r' AND a.attname IN ('created_at', 'updated_at')
   AND g.rolname LIKE 'crm\_%' AND has_column_privilege(g.oid, c.oid, a.attnum, p.priv)
 ORDER BY 1, 2, 3, 4;
-- The other database-set columns (README "Using crm from an application"),
-- table by table: the conversion record, numbers, sums and lifecycle times.
-- No CRM role, crm_admin included, may write them either.
SELECT c.relname, string_agg(a.attname, ', ' ORDER BY a.attnum) AS database_set
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relnamespace = 'crm'::regnamespace
   AND c.relname IN ('account', 'contact', 'account_contact', 'lead', 'opportunity', 'opportunity_line_item',
                     'quote', 'quote_line_item', 'sales_order', 'sales_order_item', 'activity',
                     'activity_participant', 'campaign_member')
   AND a.attidentity = '' AND a.attgenerated = ''
   AND a.attname NOT IN ('created_at', 'updated_at', 'search_text')
   AND NOT EXISTS (SELECT 1 FROM pg_roles g CROSS JOIN (VALUES ('INSERT'), ('UPDATE')) p (priv)
                    WHERE g.rolname LIKE 'crm\_%' AND has_column_privilege(g.oid, c.oid, a.attnum, p.priv))
 GROUP BY 1 ORDER BY 1;
-- The contract, table by table: the columns a crm_sales member may insert
-- and update (what API servers and generators offer in their inputs).
SELECT c.relname, p.priv,
       string_agg(a.attname, ', ' ORDER BY a.attnum) FILTER (WHERE has_column_privilege('crm_sales', c.oid, a.attnum, p.priv)) AS columns
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 CROSS JOIN (VALUES ('INSERT'), ('UPDATE')) p (priv)
 WHERE c.relnamespace = 'crm'::regnamespace
   AND c.relname IN ('account', 'contact', 'account_contact', 'lead', 'opportunity', 'opportunity_line_item',
                     'quote', 'quote_line_item', 'sales_order', 'sales_order_item', 'activity',
                     'activity_participant', 'campaign_member')
 GROUP BY 1, 2 ORDER BY 1, 2;
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
-- The conversion record is written by crm.convert_lead() only: a rep's own
-- write of it is refused by privileges (42501), the conversion fills it in
-- and names the rep.
INSERT INTO crm.lead (name, converted_at) VALUES ('Backdated', now());
INSERT INTO crm.lead (name, company) VALUES ('Converted', 'Convertco') RETURNING id AS converted_lead \gset
UPDATE crm.lead SET account_id = 1 WHERE id = :converted_lead;
BEGIN;
SELECT account_created, contact_created, opportunity_created FROM crm.convert_lead(:converted_lead);
SELECT l.status, l.account_id = o.account_id AS same_account, l.opportunity_id = o.id AS linked,
       o.lead_id = l.id AS source_lead, l.converted_by, l.converted_at = now() AS converted_now
  FROM crm.lead l JOIN crm.opportunity o ON o.id = l.opportunity_id WHERE l.id = :converted_lead;
COMMIT;
-- A lead left without an owner is the inserting role's (no assignment rule).
INSERT INTO crm.lead (name) VALUES ('Ownerless') RETURNING owner;
-- Cleared, it is refused (the row would be no one's: row-level security).
UPDATE crm.lead SET owner = NULL WHERE name = 'Ownerless';
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
