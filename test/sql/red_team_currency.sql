-- red_team_currency: hostile users against currencies, exchange rates,
-- quotas and the converted reports.  Each case states what must hold; the
-- expected output is the correct behaviour.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_rtc_rep1, regress_rtc_rep2, regress_rtc_boss, regress_rtc_boss2,
    regress_rtc_analyst, regress_rtc_admin;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_rtc_rep1 IN ROLE crm_sales;
CREATE ROLE regress_rtc_rep2 IN ROLE crm_sales;
CREATE ROLE regress_rtc_boss IN ROLE crm_manager;
CREATE ROLE regress_rtc_boss2 IN ROLE crm_manager;
CREATE ROLE regress_rtc_analyst IN ROLE crm_analyst;
CREATE ROLE regress_rtc_admin IN ROLE crm_admin;
INSERT INTO crm.reporting_line (member, manager) VALUES
    ('regress_rtc_rep1', 'regress_rtc_boss'), ('regress_rtc_rep2', 'regress_rtc_boss2');
INSERT INTO crm.exchange_rate VALUES ('EUR', '2027-01-01', 1.10), ('GBP', '2027-01-01', 1.27);
INSERT INTO crm.product (code, name, list_price) VALUES ('WID-1', 'Widget', 100);
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price) VALUES (1, 1, 100);
INSERT INTO crm.price_book (name, currency) VALUES ('Europe', 'EUR');
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price) VALUES (2, 1, 90);
INSERT INTO crm.account (name, owner) VALUES ('Acme', 'regress_rtc_rep1'), ('Beta', 'regress_rtc_rep2');
INSERT INTO crm.opportunity (name, account_id, owner, amount, probability, close_date, currency) VALUES
    ('Rep2 euro deal', 2, 'regress_rtc_rep2', 1000, 50, '2027-02-10', 'EUR');

-- 1. Close dates are finite: 'infinity' would be counted as "no close date"
-- in the aggregates, '-infinity' has no rate at all (23514).
SET ROLE regress_rtc_rep1;
INSERT INTO crm.opportunity (name, account_id, amount, close_date, currency) VALUES ('Far', 1, 1, 'infinity', 'EUR');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.opportunity (name, account_id, amount, close_date) VALUES ('Past', 1, 1, '-infinity');
\echo :LAST_ERROR_SQLSTATE

-- 2. One rep must not be able to break everybody's converted reports.  A
-- deal in a currency without a rate, or closing before its currency's
-- first rate, is refused when written (ZC120 naming currency and day),
-- not left for every reader's report to fail on.
INSERT INTO crm.opportunity (name, account_id, amount, close_date, currency) VALUES ('Rand', 1, 1, '2027-01-15', 'ZAR');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.opportunity (name, account_id, amount, close_date, currency) VALUES ('Old euro', 1, 1, '1999-01-01', 'EUR');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.opportunity (name, account_id, amount, close_date, currency) VALUES ('Euro deal', 1, 100, '2027-03-01', 'EUR')
    RETURNING name, currency;
UPDATE crm.opportunity SET close_date = '1999-01-01' WHERE name = 'Euro deal';
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.opportunity SET currency = 'ZAR' WHERE name = 'Euro deal';
\echo :LAST_ERROR_SQLSTATE
-- A deal in the corporate currency needs no rate, whatever its date.
INSERT INTO crm.opportunity (name, account_id, amount, close_date) VALUES ('Old dollars', 1, 5, '1999-01-01')
    RETURNING name, currency;
RESET ROLE;
-- ... so the analyst's and the other manager's reports still convert.
SET ROLE regress_rtc_analyst;
SELECT currency, sum(amount) AS amount, sum(amount_in_currency) AS in_currency
  FROM crm.pipeline_by_stage GROUP BY currency ORDER BY currency;
SET ROLE regress_rtc_boss2;
SELECT owner, currency, amount FROM crm.forecast_by_month ORDER BY currency;
RESET ROLE;

-- 3. The currency of a deal with line items is its book's: no route around
-- it (direct UPDATE ignored, book to NULL or another book refused).
SET ROLE regress_rtc_rep1;
INSERT INTO crm.opportunity (name, account_id, price_book_id, close_date) VALUES ('Book deal', 1, 2, '2027-04-01')
    RETURNING name, currency;
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity)
    SELECT id, 1, 2 FROM crm.opportunity WHERE name = 'Book deal';
UPDATE crm.opportunity SET currency = 'USD' WHERE name = 'Book deal';
UPDATE crm.opportunity SET price_book_id = NULL WHERE name = 'Book deal';
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.opportunity SET price_book_id = 1 WHERE name = 'Book deal';
\echo :LAST_ERROR_SQLSTATE
SELECT name, price_book_id, currency, amount FROM crm.opportunity WHERE name = 'Book deal';
-- Orders only through crm.create_order (their currency is the quote's).
INSERT INTO crm.sales_order (quote_id, account_id, owner) VALUES (NULL, 1, 'regress_rtc_rep1');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- 4. Rates: never for the corporate currency, by any write path (ZC122).
SET ROLE regress_rtc_admin;
COPY crm.exchange_rate (currency, valid_from, rate) FROM STDIN;
USD	2027-01-01	1
\.
INSERT INTO crm.exchange_rate VALUES ('GBP', '2027-01-01', 2) ON CONFLICT (currency, valid_from) DO UPDATE SET currency = 'USD';
\echo :LAST_ERROR_SQLSTATE
MERGE INTO crm.exchange_rate AS r USING (VALUES ('EUR', '2027-01-01'::date)) AS v (c, d)
   ON r.currency = v.c AND r.valid_from = v.d
 WHEN MATCHED THEN UPDATE SET currency = 'USD';
\echo :LAST_ERROR_SQLSTATE
-- Rates out of range are refused (23514): zero, negative, NaN, infinity.
INSERT INTO crm.exchange_rate VALUES ('CHF', '2027-01-01', -1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.exchange_rate VALUES ('CHF', '2027-01-01', '-Infinity');
\echo :LAST_ERROR_SQLSTATE
-- Extreme but positive rates convert exactly: the reports and a per-row
-- GROUP BY agree (no rounding drift).
INSERT INTO crm.exchange_rate VALUES ('CHF', '2027-01-01', 1e-30), ('JPY', '2027-01-01', 1e30),
    ('SEK', '2027-01-01', 0.0123456789012345678901234567890123456789);
RESET ROLE;
INSERT INTO crm.opportunity (name, account_id, owner, amount, probability, close_date, currency) VALUES
    ('Tiny', 1, 'regress_rtc_rep1', 99999999999999.99, 33, '2027-03-01', 'CHF'),
    ('Huge', 1, 'regress_rtc_rep1', 99999999999999.99, 33, '2027-03-01', 'JPY'),
    ('Odd 1', 1, 'regress_rtc_rep1', 0.01, 33, '2027-03-01', 'SEK'),
    ('Odd 2', 1, 'regress_rtc_rep1', 333.33, 17, '2027-03-31', 'SEK');
SELECT currency, amount, weighted_amount FROM crm.pipeline_by_stage WHERE currency IN ('CHF', 'JPY', 'SEK') ORDER BY currency;
SELECT count(*) AS differences FROM crm.verify_aggregates();

-- 5. Quotas: a manager writes the team's only, by every path (42501).
SET ROLE regress_rtc_boss;
INSERT INTO crm.quota (owner, period_start, period_end, amount) VALUES ('regress_rtc_rep1', '2027-01-01', '2027-03-31', 1000);
INSERT INTO crm.quota (owner, period_start, period_end, amount) VALUES ('regress_rtc_rep2', '2027-01-01', '2027-03-31', 1000);
\echo :LAST_ERROR_SQLSTATE
MERGE INTO crm.quota AS q USING (VALUES ('regress_rtc_rep2'::regrole)) AS v (o) ON false
 WHEN NOT MATCHED THEN INSERT (owner, period_start, period_end, amount) VALUES (v.o, '2027-04-01', '2027-06-30', 1);
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.quota SET owner = 'regress_rtc_rep2' WHERE owner = 'regress_rtc_rep1'::regrole;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.quota SET owner = 'regress_rtc_boss' WHERE owner = 'regress_rtc_rep1'::regrole;
\echo :LAST_ERROR_SQLSTATE
COPY crm.quota (owner, period_start, period_end, amount) FROM STDIN;
regress_rtc_rep1	2027-07-01	2027-09-30	1
\.
TRUNCATE crm.quota;
\echo :LAST_ERROR_SQLSTATE
-- A quota in a currency without a rate valid at its start is refused
-- (ZC120), not left to break quota_attainment for every reader.
INSERT INTO crm.quota (owner, period_start, period_end, amount, currency) VALUES ('regress_rtc_rep1', '2027-04-01', '2027-06-30', 1, 'ZAR');
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.quota SET currency = 'EUR', period_start = '2026-12-01'
 WHERE owner = 'regress_rtc_rep1'::regrole AND period_start = '2027-01-01';
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- Another team's quota: invisible to the manager, and its overlap error
-- is never shown to them (they cannot write it at all).
INSERT INTO crm.quota (owner, period_start, period_end, amount) VALUES ('regress_rtc_rep2', '2027-01-01', '2027-03-31', 2000);
SET ROLE regress_rtc_boss;
SELECT owner, period_start, quota, won_amount, open_pipeline FROM crm.quota_attainment ORDER BY owner::text NULLS LAST;
SET ROLE regress_rtc_rep2;
SELECT owner, period_start, quota, open_pipeline FROM crm.quota_attainment ORDER BY owner::text NULLS LAST;
SET ROLE regress_rtc_boss2;
SELECT owner, period_start, quota, open_pipeline FROM crm.quota_attainment ORDER BY owner::text NULLS LAST;
RESET ROLE;

SELECT owner, period_start, amount, currency FROM crm.quota ORDER BY owner::text, period_start;
-- 6. The corporate currency cannot change while rates exist, by any path.
SET ROLE regress_rtc_admin;
UPDATE crm.settings SET corporate_currency = 'EUR';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM crm.settings;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

DROP OWNED BY regress_rtc_rep1, regress_rtc_rep2, regress_rtc_boss, regress_rtc_boss2, regress_rtc_analyst, regress_rtc_admin;
DROP ROLE regress_rtc_rep1, regress_rtc_rep2, regress_rtc_boss, regress_rtc_boss2, regress_rtc_analyst, regress_rtc_admin;
