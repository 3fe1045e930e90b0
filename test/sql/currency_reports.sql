-- currency_reports: every report gives its amounts in the corporate
-- currency, each deal at the rate valid on its close date (an order at the
-- day it was made), with the deals' own currency and amount beside them
-- where a row has one currency; a rate edit shows at once; a missing rate
-- is an error naming the currency and the date (ZC120), never 1; and
-- crm.verify_aggregates() checks the aggregate-backed reports against a
-- GROUP BY converting every deal.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;
\set VERBOSITY terse
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_curr_analyst;
RESET client_min_messages;
CREATE ROLE regress_curr_analyst IN ROLE crm_analyst;

-- USD is the corporate currency; one euro is 1.10 USD in January 2027,
-- 1.08 from March 2027 (the latest rate), 1.05 before 2027.
INSERT INTO crm.exchange_rate (currency, valid_from, rate) VALUES
    ('EUR', '2000-01-01', 1.05), ('EUR', '2027-01-01', 1.10), ('EUR', '2027-03-01', 1.08);
INSERT INTO crm.account (name) VALUES ('Euro GmbH'), ('Dollar Inc'), ('Mixed SA');
INSERT INTO crm.campaign (name, actual_cost) VALUES ('Fair', 1000) RETURNING id AS fair \gset
-- A won EUR deal (January) and a won USD deal; an open EUR deal without a
-- close date (latest rate); a lost EUR deal (March).
INSERT INTO crm.opportunity (name, account_id, campaign_id, currency, amount, close_date, stage) VALUES
    ('EUR won', 1, :fair, 'EUR', 1000, '2027-01-15', 'Successful'),
    ('USD won', 2, :fair, 'USD', 500, '2027-01-20', 'Successful'),
    ('EUR open', 3, NULL, 'EUR', 200, NULL, 'Proposal'),
    ('USD open', 3, NULL, 'USD', 50, '2027-02-01', 'Proposal');
INSERT INTO crm.opportunity (name, account_id, campaign_id, currency, amount, close_date, stage, loss_reason_code) VALUES
    ('EUR lost', 1, :fair, 'EUR', 300, '2027-03-05', 'Failed', 'price');

-- account_rollup: one row per account; EUR 1000 x 1.10 = 1100.00; the mixed
-- account's open deals: 200 x 1.08 + 50 = 266.00, no single currency.
SELECT name, open_opportunities, open_amount, won_opportunities, won_amount,
       currency, open_amount_in_currency, won_amount_in_currency
  FROM crm.account_rollup ORDER BY account_id;
-- campaign_performance: won 1100 + 500 = 1600 USD against a cost of 1000
-- USD: ROI 0.6; all deals 1600 + 300 x 1.08 = 1924.00; mixed currencies.
SELECT name, opportunities, won_opportunities, opportunity_amount, won_amount, roi,
       currency, opportunity_amount_in_currency, won_amount_in_currency
  FROM crm.campaign_performance;
-- Reports over the base tables convert each deal the same way.
SELECT kind, step, items, amount, currency, amount_in_currency
  FROM crm.sales_funnel WHERE kind <> 'lead' AND items > 0 ORDER BY position, step_order;
SELECT won, lost, won_amount, average_deal_size, currency, won_amount_in_currency
  FROM crm.sales_performance;
SELECT reason, deals, amount, currency, amount_in_currency FROM crm.loss_analysis;
SELECT count(*) AS differences FROM crm.verify_aggregates();

-- A rate edit shows at once in every report: nothing to rebuild.
UPDATE crm.exchange_rate SET rate = 1.20 WHERE currency = 'EUR' AND valid_from = '2027-01-01';
SELECT name, won_amount FROM crm.account_rollup WHERE name = 'Euro GmbH';
SELECT won_amount, roi FROM crm.campaign_performance;
SELECT won_amount FROM crm.sales_performance;
SELECT count(*) AS differences FROM crm.verify_aggregates();
-- Moving a deal to another close month converts it at that month's rate.
UPDATE crm.opportunity SET close_date = '2027-03-31' WHERE name = 'EUR won';
SELECT name, won_amount FROM crm.account_rollup WHERE name = 'Euro GmbH';
SELECT won_amount, roi FROM crm.campaign_performance;
SELECT count(*) AS differences FROM crm.verify_aggregates();

-- The aggregates behind account_rollup and campaign_performance are grouped
-- by close month and currency.
SELECT a.name, g.stage, g.close_month, g.currency, sum(g.opportunities) AS opportunities, sum(g.amount) AS amount
  FROM crm_internal.account_aggregate AS g JOIN crm.account AS a ON a.id = g.account_id
 GROUP BY 1, 2, 3, 4 HAVING sum(g.opportunities) <> 0 ORDER BY 1, 2, 3, 4;
-- verify_aggregates() notices a report that is off (its aggregate tampered
-- with here), under the report's name too.
UPDATE crm_internal.campaign_opportunity_aggregate SET amount = amount + 1
 WHERE ctid = (SELECT ctid FROM crm_internal.campaign_opportunity_aggregate WHERE currency = 'EUR' AND stage = 'Successful' AND opportunities <> 0 LIMIT 1);
SELECT aggregate, measure, kept - actual AS off FROM crm.verify_aggregates() ORDER BY 1, 2;
SELECT crm.rebuild_aggregates() > 0 AS rebuilt;
SELECT count(*) AS differences FROM crm.verify_aggregates();

-- Orders convert at the rate of the day they were made: a EUR order of
-- 1000 made today.
INSERT INTO crm.price_book (name, currency) VALUES ('Europe', 'EUR') RETURNING id AS book \gset
INSERT INTO crm.product (code, name, list_price) VALUES ('WID-1', 'Widget', 100);
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price) SELECT 1, id, 100 FROM crm.product;
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price) SELECT :book, id, 1000 FROM crm.product;
INSERT INTO crm.opportunity (name, account_id, price_book_id) VALUES ('EUR order', 1, :book) RETURNING id AS deal \gset
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) SELECT :deal, id, 1 FROM crm.product;
SELECT crm.create_quote(:deal) AS quote_id \gset
UPDATE crm.quote SET status = 'Presented' WHERE id = :quote_id;
UPDATE crm.quote SET status = 'Accepted' WHERE id = :quote_id;
SELECT crm.create_order(:quote_id) AS order_id \gset
SELECT currency, total FROM crm.sales_order;
SELECT r.quotes, r.orders, r.currency, r.order_total_in_currency,
       r.order_total = round(1000 * crm.exchange_rate_on('EUR', o.created_at::date), 2) AS at_rate_of_order_day
  FROM crm.quote_to_order AS r, crm.sales_order AS o;
-- An analyst reads every converted report (column grants cover them).
SET ROLE regress_curr_analyst;
SELECT count(*) > 0 AS reads FROM crm.quote_to_order;
SELECT count(*) > 0 AS reads FROM crm.sales_funnel;
SELECT count(*) > 0 AS reads FROM crm.sales_funnel_snapshot;
SELECT count(*) > 0 AS reads FROM crm.sales_performance;
SELECT count(*) > 0 AS reads FROM crm.loss_analysis;
SELECT count(*) > 0 AS reads FROM crm.account_rollup;
SELECT count(*) > 0 AS reads FROM crm.campaign_performance;
RESET ROLE;

-- A missing rate is an error naming the currency and the date, never 1.
-- A GBP deal closing in 2027-02 needs a GBP rate valid then: refused
-- when written without one (ZC120, naming the currency and the day).
INSERT INTO crm.opportunity (name, account_id, campaign_id, currency, amount, close_date, stage) VALUES
    ('GBP won', 2, :fair, 'GBP', 10, '2027-02-14', 'Successful');
\echo :LAST_ERROR_SQLSTATE
-- With a rate it is accepted; an admin who deletes that rate afterwards
-- leaves the deal without one: every converted report then fails, naming
-- the currency and the day (never a silent 1).
INSERT INTO crm.exchange_rate (currency, valid_from, rate) VALUES ('GBP', '2027-02-01', 1.25);
INSERT INTO crm.opportunity (name, account_id, campaign_id, currency, amount, close_date, stage) VALUES
    ('GBP won', 2, :fair, 'GBP', 10, '2027-02-14', 'Successful');
DELETE FROM crm.exchange_rate WHERE currency = 'GBP';
SELECT won_amount FROM crm.account_rollup WHERE name = 'Dollar Inc';
\echo :LAST_ERROR_SQLSTATE
SELECT won_amount FROM crm.campaign_performance;
\echo :LAST_ERROR_SQLSTATE
SELECT won_amount FROM crm.sales_performance;
\echo :LAST_ERROR_SQLSTATE
SELECT amount FROM crm.sales_funnel WHERE step = 'Successful';
\echo :LAST_ERROR_SQLSTATE
SELECT amount FROM crm.sales_funnel_snapshot WHERE kind = 'won';
\echo :LAST_ERROR_SQLSTATE
-- (verify_aggregates() meets the deal in its own GROUP BY or in a report,
-- whichever the plan reads first: the day named is its close date or the
-- first of its close month)
DO $$
BEGIN
    PERFORM count(*) FROM crm.verify_aggregates();
    RAISE NOTICE 'verify_aggregates() passed';
EXCEPTION WHEN SQLSTATE 'ZC120' THEN
    RAISE NOTICE 'verify_aggregates(): ZC120 naming GBP and February 2027: %',
        SQLERRM ~ '^no exchange rate for GBP on 02-(01|14)-2027$';
END $$;
-- A rate from the first of that month on makes them work again.
INSERT INTO crm.exchange_rate (currency, valid_from, rate) VALUES ('GBP', '2027-02-01', 1.25);
SELECT won_amount, currency, won_amount_in_currency FROM crm.account_rollup WHERE name = 'Dollar Inc';
SELECT count(*) AS differences FROM crm.verify_aggregates();

DROP ROLE regress_curr_analyst;
