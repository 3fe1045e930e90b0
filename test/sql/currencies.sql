-- currencies: currencies, dated exchange rates, the corporate currency, and
-- the currency of opportunities, quotes and orders (from their price book).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;
\set VERBOSITY terse

-- Seeded currencies; the corporate currency defaults to USD.
SELECT code, name, decimals FROM crm.currency WHERE code IN ('USD', 'EUR', 'JPY') ORDER BY code;
SELECT corporate_currency, crm.corporate_currency() FROM crm.settings;
-- Codes are three capital letters; 0-4 decimals.
INSERT INTO crm.currency (code, name) VALUES ('eur', 'lower case');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.currency (code, name, decimals) VALUES ('XTS', 'Testing', 5);
\echo :LAST_ERROR_SQLSTATE
-- A price book names a known currency.
INSERT INTO crm.price_book (name, currency) VALUES ('Mars', 'XMR');
\echo :LAST_ERROR_SQLSTATE

-- Rates: units of the corporate currency per unit, from the first of a month.
INSERT INTO crm.exchange_rate (currency, valid_from, rate) VALUES
    ('EUR', '2027-01-01', 1.10), ('EUR', '2027-03-01', 1.08), ('GBP', '2027-01-01', 1.27);
-- valid_from is the first of a month, finite; the rate is > 0.
INSERT INTO crm.exchange_rate VALUES ('EUR', '2027-02-15', 1.09);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.exchange_rate VALUES ('EUR', 'infinity', 1.09);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.exchange_rate VALUES ('EUR', '2027-02-01', 0);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.exchange_rate VALUES ('EUR', '2027-02-01', 'NaN');
\echo :LAST_ERROR_SQLSTATE
-- One rate per currency and month.
INSERT INTO crm.exchange_rate VALUES ('EUR', '2027-01-01', 1.2);
\echo :LAST_ERROR_SQLSTATE
-- No rate for the corporate currency (ZC122): it is always 1.
INSERT INTO crm.exchange_rate VALUES ('USD', '2027-01-01', 1);
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.exchange_rate SET currency = 'USD' WHERE currency = 'GBP';
\echo :LAST_ERROR_SQLSTATE

-- The rate valid on a day: the latest one from on or before it; NULL: the
-- latest; the corporate currency: 1.
SELECT d, crm.exchange_rate_on('EUR', d) AS eur
  FROM (VALUES ('2027-01-01'::date), ('2027-02-28'), ('2027-03-01'), ('2030-12-31'), (NULL)) AS v (d);
SELECT crm.exchange_rate_on('USD', '1999-01-01');
-- No rate valid then: an error naming the currency and the day, never 1.
SELECT crm.exchange_rate_on('EUR', '2026-12-31');
\echo :LAST_ERROR_SQLSTATE
SELECT crm.exchange_rate_on('JPY', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.exchange_rate_on(NULL, '2027-01-01');
\echo :LAST_ERROR_SQLSTATE

-- The corporate currency is fixed while rates exist (ZC121).
UPDATE crm.settings SET corporate_currency = 'EUR';
\echo :LAST_ERROR_SQLSTATE
BEGIN;
DELETE FROM crm.exchange_rate;
UPDATE crm.settings SET corporate_currency = 'EUR';
SELECT crm.exchange_rate_on('EUR', NULL), crm.corporate_currency();
ROLLBACK;

-- Opportunities and quotes take the currency of their price book, whatever
-- the client sends; without a book, the corporate currency by default.
INSERT INTO crm.product (code, name, list_price) VALUES ('WID-1', 'Widget', 100);
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price) SELECT 1, id, 100 FROM crm.product;
INSERT INTO crm.price_book (name, currency) VALUES ('Europe', 'EUR') RETURNING id AS book \gset
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price) SELECT :book, id, 90 FROM crm.product;
INSERT INTO crm.account (name) VALUES ('Acme');
INSERT INTO crm.opportunity (name, account_id) VALUES ('No book', 1);
INSERT INTO crm.opportunity (name, account_id, currency) VALUES ('No book, pounds', 1, 'GBP');
INSERT INTO crm.opportunity (name, account_id, price_book_id, currency) VALUES ('Euro deal', 1, :book, 'USD');
SELECT id, name, price_book_id, currency FROM crm.opportunity ORDER BY id;
-- The first line adopts the standard book, and with it its currency.
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (2, 1, 1);
SELECT id, price_book_id, currency, amount FROM crm.opportunity WHERE id = 2;
-- The currency of a deal with a book is the book's.
UPDATE crm.opportunity SET currency = 'GBP' WHERE id = 3;
SELECT id, currency FROM crm.opportunity WHERE id = 3;
-- A deal the reports cannot convert is refused (ZC120, naming the currency
-- and the close date): in a currency without a rate, or closing before its
-- currency's first rate.  One such deal would make the converted reports
-- fail for everybody who sees it.
INSERT INTO crm.opportunity (name, account_id, currency) VALUES ('Swiss deal', 1, 'CHF');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.exchange_rate VALUES ('CHF', '2027-01-01', 1.05);
INSERT INTO crm.opportunity (name, account_id, currency, close_date) VALUES ('Old Swiss deal', 1, 'CHF', '2026-12-31');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.opportunity (name, account_id, currency) VALUES ('Swiss deal', 1, 'CHF');
UPDATE crm.opportunity SET close_date = '2026-12-31' WHERE name = 'Swiss deal';
\echo :LAST_ERROR_SQLSTATE
-- A currency in use cannot be deleted (by a deal here; its rates too).
BEGIN;
DELETE FROM crm.exchange_rate WHERE currency = 'CHF';
DELETE FROM crm.currency WHERE code = 'CHF';
ROLLBACK;

-- A book without lines may change currency: its deals and quotes follow.
SELECT crm.create_quote(3);
UPDATE crm.price_book SET currency = 'GBP' WHERE id = :book;
SELECT o.currency AS deal, q.currency AS quote FROM crm.opportunity AS o JOIN crm.quote AS q ON q.opportunity_id = o.id WHERE o.id = 3;
-- Once lines use it, its currency is fixed (ZC121).
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (3, 1, 2);
UPDATE crm.price_book SET currency = 'EUR' WHERE id = :book;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.price_book SET currency = 'EUR' WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
-- Other columns of the book stay free.
UPDATE crm.price_book SET description = 'pounds now' WHERE id = :book;
SELECT currency, description FROM crm.price_book WHERE id = :book;

-- A quote made from the deal has its currency; the order has the quote's and keeps it.
SELECT crm.create_quote(3) AS quote_id \gset
SELECT currency FROM crm.quote WHERE id = :quote_id;
UPDATE crm.quote SET status = 'Presented' WHERE id = :quote_id;
UPDATE crm.quote SET status = 'Accepted' WHERE id = :quote_id;
SELECT crm.create_order(:quote_id) AS order_id \gset
SELECT currency FROM crm.sales_order WHERE id = :order_id;
UPDATE crm.sales_order SET currency = 'USD' WHERE id = :order_id;
\echo :LAST_ERROR_SQLSTATE

-- Reports in the corporate currency.  A deal whose rate is gone (an admin
-- deleted it): the report refuses, naming the currency (ZC120), never 1.
BEGIN;
DELETE FROM crm.exchange_rate WHERE currency = 'CHF';
SELECT stage, currency, amount FROM crm.pipeline_by_stage;
ROLLBACK;
-- Deals in euros closing in January and March and one without a close date
-- (the latest rate); the pound deal closes in February.
INSERT INTO crm.opportunity (name, account_id, currency, amount, probability, close_date) VALUES
    ('Euro Jan', 1, 'EUR', 1000, 50, '2027-01-15'), ('Euro Mar', 1, 'EUR', 1000, 50, '2027-03-31'),
    ('Euro open', 1, 'EUR', 333.33, 10, NULL);
UPDATE crm.opportunity SET close_date = '2027-02-10' WHERE id = 3;
-- EUR: 1000 x 1.10 + 1000 x 1.08 + 333.33 x 1.08 = 2539.9964 -> 2540.00
SELECT stage, currency, opportunities, amount_in_currency, weighted_amount_in_currency, amount, weighted_amount
  FROM crm.pipeline_by_stage ORDER BY stage, currency;
SELECT close_month, currency, opportunities, amount_in_currency, amount
  FROM crm.forecast_by_month ORDER BY close_month NULLS LAST, currency;
-- A rate edit shows at once: nothing to rebuild.
UPDATE crm.exchange_rate SET rate = 1.20 WHERE currency = 'EUR' AND valid_from = '2027-01-01';
SELECT currency, amount_in_currency, amount FROM crm.pipeline_by_stage WHERE currency = 'EUR';
-- The aggregate keeps the currency; the report's conversion equals a GROUP
-- BY converting every deal at the rate of its own close date.
SELECT close_month, currency, sum(amount) FROM crm_internal.pipeline_aggregate GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) AS differences FROM crm.verify_aggregates();
-- And the check notices a kept total that is off (tampered with here).
UPDATE crm_internal.pipeline_aggregate SET amount = amount + 1
 WHERE ctid = (SELECT ctid FROM crm_internal.pipeline_aggregate WHERE currency = 'EUR' AND close_month = '2027-01-01' LIMIT 1);
SELECT aggregate, group_key->>'currency' AS currency, measure, kept - actual AS off FROM crm.verify_aggregates();
SELECT crm.rebuild_aggregates() > 0 AS rebuilt;
SELECT count(*) AS differences FROM crm.verify_aggregates();
-- Moving a deal to another close month converts it at that month's rate.
UPDATE crm.opportunity SET close_date = '2027-01-02' WHERE name = 'Euro Mar';
SELECT currency, amount_in_currency, amount FROM crm.pipeline_by_stage WHERE currency = 'EUR';
SELECT count(*) AS differences FROM crm.verify_aggregates();

-- Hostile input.  Days: infinity is the latest rate; -infinity has none
-- (ZC120 naming it).  Forged codes: no rate, whatever the text (ZC120).
SELECT crm.exchange_rate_on('EUR', 'infinity') AS latest;
SELECT crm.exchange_rate_on('EUR', '-infinity');
\echo :LAST_ERROR_SQLSTATE
SELECT crm.exchange_rate_on('usd', '2027-01-01');
\echo :LAST_ERROR_SQLSTATE
SELECT crm.exchange_rate_on('EUR'' OR true --', '2027-01-01');
\echo :LAST_ERROR_SQLSTATE
-- Tiny and huge rates are kept exactly.
INSERT INTO crm.exchange_rate VALUES ('JPY', '2027-01-01', 1e-30), ('KRW', '2027-01-01', 1e30);
SELECT crm.exchange_rate_on('JPY', '2027-06-30') AS tiny, crm.exchange_rate_on('KRW', '2027-06-30') AS huge;
-- COPY and MERGE run the rate guard too (ZC122).
COPY crm.exchange_rate (currency, valid_from, rate) FROM stdin;
USD	2027-05-01	1
\.
MERGE INTO crm.exchange_rate AS r USING (VALUES ('GBP', '2027-01-01'::date)) AS v (c, d)
    ON r.currency = v.c AND r.valid_from = v.d
  WHEN MATCHED THEN UPDATE SET currency = 'USD';
\echo :LAST_ERROR_SQLSTATE
-- The corporate currency stays fixed through MERGE as well (ZC121).
MERGE INTO crm.settings AS s USING (VALUES (1)) AS v (x) ON true
  WHEN MATCHED THEN UPDATE SET corporate_currency = 'EUR';
\echo :LAST_ERROR_SQLSTATE
-- A rep cannot give a deal with a book another currency (it is the
-- book's), nor an order another one (ZC022), by UPDATE or MERGE.
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_cur_rep;
RESET client_min_messages;
CREATE ROLE regress_cur_rep IN ROLE crm_sales;
INSERT INTO crm.opportunity (name, account_id, owner, price_book_id) VALUES ('Rep deal', 1, 'regress_cur_rep', :book);
SET ROLE regress_cur_rep;
UPDATE crm.opportunity SET currency = 'JPY' WHERE name = 'Rep deal';
MERGE INTO crm.opportunity AS o USING (VALUES ('Rep deal')) AS v (n) ON o.name = v.n
  WHEN MATCHED THEN UPDATE SET currency = 'KRW';
SELECT name, currency FROM crm.opportunity WHERE name = 'Rep deal';
RESET ROLE;
MERGE INTO crm.sales_order AS so USING (VALUES (:order_id)) AS v (id) ON so.id = v.id
  WHEN MATCHED THEN UPDATE SET currency = 'EUR';
\echo :LAST_ERROR_SQLSTATE
-- Setting the same currency again is no change.
UPDATE crm.sales_order SET currency = currency WHERE id = :order_id;
SELECT currency FROM crm.sales_order WHERE id = :order_id;
-- A statement keeps the rates it looked up for its other calls, but never
-- past a change it can see: the same call in a loop sees each rate edit.
DO $$
DECLARE
    r numeric;
BEGIN
    FOR i IN 1..3 LOOP
        r := crm.exchange_rate_on('EUR', '2027-01-15');
        RAISE NOTICE 'EUR on 2027-01-15: %', r;
        UPDATE crm.exchange_rate SET rate = rate + 0.01 WHERE currency = 'EUR' AND valid_from = '2027-01-01';
    END LOOP;
END
$$;
-- ... nor past the rollback of a subtransaction whose rate edit it saw
-- (one call site, the function's, inside and after the subtransaction).
CREATE FUNCTION pg_temp.eur_rate() RETURNS numeric LANGUAGE plpgsql STABLE
    AS $$ BEGIN RETURN crm.exchange_rate_on('EUR', '2027-01-15'); END $$;
DO $$
BEGIN
    BEGIN
        UPDATE crm.exchange_rate SET rate = 9 WHERE currency = 'EUR' AND valid_from = '2027-01-01';
        RAISE NOTICE 'in a subtransaction: %', pg_temp.eur_rate();
        RAISE EXCEPTION 'roll back';
    EXCEPTION WHEN raise_exception THEN
        RAISE NOTICE 'after its rollback: %', pg_temp.eur_rate();
    END;
END
$$;
-- One call per group, as the reports make them: days of one month share a rate.
SELECT currency, min(r) AS min_rate, max(r) AS max_rate, count(*) AS calls
  FROM (SELECT c AS currency, crm.exchange_rate_on(c, d::date) AS r
          FROM unnest(ARRAY['EUR', 'GBP', 'USD']) AS c,
               generate_series('2027-01-01'::date, '2027-04-30', '1 day') AS d) AS x
 GROUP BY currency ORDER BY currency;
