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
-- A currency in use cannot be deleted.
INSERT INTO crm.opportunity (name, account_id, currency) VALUES ('Swiss deal', 1, 'CHF');
DELETE FROM crm.currency WHERE code = 'CHF';
\echo :LAST_ERROR_SQLSTATE

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

-- Reports in the corporate currency.  A deal in a currency without any rate
-- (CHF above): the report refuses, naming the currency (ZC120), never 1.
SELECT stage, currency, amount FROM crm.pipeline_by_stage;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.exchange_rate VALUES ('CHF', '2027-01-01', 1.05);
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
