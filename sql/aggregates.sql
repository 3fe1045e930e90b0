-- aggregates: crm.pipeline_aggregate equals a fresh GROUP BY over the
-- opportunities after every kind of write (crm.verify_aggregates() returns
-- no rows); readers sum the per-backend stripes; rebuild folds them.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_agg_rep;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_agg_rep IN ROLE crm_sales;
INSERT INTO crm.account (name) VALUES ('Acme');

-- INSERT, multi-row and COPY.
INSERT INTO crm.opportunity (name, account_id, amount, close_date)
SELECT 'Deal ' || g, 1, g * 100, date '2027-01-01' + g * 10 FROM generate_series(1, 20) g;
COPY crm.opportunity (name, account_id, amount, stage) FROM stdin;
Copied A	1	1000	Proposal
Copied B	1	2000	Negotiation
\.
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
SELECT stage, owner, opportunities, amount, weighted_amount FROM crm.pipeline_by_stage ORDER BY sort_order;

-- Bulk UPDATE of stage, amount, owner and close date; DELETE.
UPDATE crm.opportunity SET stage = 'Requirement', amount = amount + 1 WHERE id % 3 = 0;
UPDATE crm.opportunity SET owner = 'regress_agg_rep', close_date = NULL WHERE id % 5 = 0;
DELETE FROM crm.opportunity WHERE id % 7 = 0;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- Line items change amounts through the sum trigger; conversion inserts.
INSERT INTO crm.product (code, name, list_price) VALUES ('W', 'Widget', 10);
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price) VALUES (1, 1, 10);
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (1, 1, 7);
INSERT INTO crm.lead (name, company) VALUES ('Lead', 'Globex');
SELECT opportunity_id IS NOT NULL AS converted FROM crm.convert_lead(1);
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- ROLLBACK TO SAVEPOINT and ROLLBACK undo their deltas with their changes.
BEGIN;
SAVEPOINT s;
UPDATE crm.opportunity SET amount = amount * 10 WHERE id <> 1;
ROLLBACK TO SAVEPOINT s;
DELETE FROM crm.opportunity WHERE id = 2;
ROLLBACK;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- Updates that touch no aggregated column write no aggregate rows.
SELECT count(*) AS rows_before FROM crm.pipeline_aggregate \gset
UPDATE crm.opportunity SET description = 'note';
SELECT count(*) = :rows_before AS unchanged FROM crm.pipeline_aggregate;

-- A mismatch is reported; rebuild repairs it and folds the stripes into one
-- row per group.
ALTER TABLE crm.opportunity DISABLE TRIGGER aggregates_pipeline_update;
UPDATE crm.opportunity SET amount = amount + 5 WHERE id = 2;
ALTER TABLE crm.opportunity ENABLE TRIGGER aggregates_pipeline_update;
SELECT aggregate, stage, kept_amount, actual_amount FROM crm.verify_aggregates();
SELECT crm.rebuild_aggregates() > 0 AS rebuilt;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
SELECT count(DISTINCT stripe) AS stripes FROM crm.pipeline_aggregate;

-- TRUNCATE empties the aggregate with the table.
TRUNCATE crm.opportunity CASCADE;
SELECT count(*) AS aggregate_rows FROM crm.pipeline_aggregate;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- Users read the aggregates but cannot write them or rebuild them.
SET ROLE regress_agg_rep;
INSERT INTO crm.pipeline_aggregate (stage, owner, close_month, stripe, opportunities) VALUES ('Proposal', 'regress_agg_rep', 'infinity', 0, 100);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.rebuild_aggregates();
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS readable FROM crm.pipeline_totals;
RESET ROLE;

DROP EXTENSION crm CASCADE;
DROP ROLE regress_agg_rep;
