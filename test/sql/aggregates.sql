-- aggregates: the pipeline, account and campaign aggregates equal a fresh
-- GROUP BY over the base tables after every kind of write
-- (crm.verify_aggregates() returns no rows); readers sum the per-backend
-- stripes; rebuild folds them.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
-- This file tests the internal objects' own privileges and policies too
-- (defence in depth), so its roles get USAGE on schema crm_internal, which
-- no CRM role has (test/sql/internal_schema.sql).
GRANT USAGE ON SCHEMA crm_internal TO crm_admin, crm_manager, crm_sales, crm_analyst, crm_privacy_officer;
DROP ROLE IF EXISTS regress_agg_rep;
DROP ROLE IF EXISTS regress_agg_analyst;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_agg_rep IN ROLE crm_sales;
CREATE ROLE regress_agg_analyst IN ROLE crm_analyst;
INSERT INTO crm.account (name) VALUES ('Acme'), ('Globex Corporation');
INSERT INTO crm.campaign (name) VALUES ('Spring fair'), ('Webinar');

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

-- The same groups changed again after a rollback to a savepoint, and
-- committed: the stripe rows the rolled-back part wrote (new versions and
-- new groups) are gone, the ones before it count.
BEGIN;
UPDATE crm.opportunity SET amount = amount + 1 WHERE id = 3;
SAVEPOINT s;
UPDATE crm.opportunity SET stage = 'Negotiation', amount = amount + 5 WHERE id = 3;
ROLLBACK TO SAVEPOINT s;
UPDATE crm.opportunity SET stage = 'Negotiation', amount = amount + 5 WHERE id = 3;
SAVEPOINT t;
UPDATE crm.opportunity SET stage = 'Proposal' WHERE id = 3;
ROLLBACK TO SAVEPOINT t;
UPDATE crm.opportunity SET amount = amount + 2 WHERE id = 3;
COMMIT;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- Updates that touch no aggregated column write no aggregate rows.
SELECT count(*) AS rows_before FROM crm_internal.pipeline_aggregate \gset
UPDATE crm.opportunity SET description = 'note';
SELECT count(*) = :rows_before AS unchanged FROM crm_internal.pipeline_aggregate;

-- Compaction folds the stripes into stripe 0 and drops empty groups; the
-- totals do not change.
CREATE TEMP TABLE totals_before AS SELECT * FROM crm.pipeline_totals;
SELECT count(*) > 0 AS has_writer_stripes FROM crm_internal.pipeline_aggregate WHERE stripe <> 0;
SELECT count(*) > 0 AS has_empty_groups FROM (SELECT FROM crm_internal.pipeline_aggregate
 GROUP BY stage, owner, close_month HAVING sum(opportunities) = 0 AND sum(amount) = 0) AS e;
SELECT crm.compact_aggregates() > 0 AS compacted;
SELECT count(*) AS writer_stripe_rows FROM crm_internal.pipeline_aggregate WHERE stripe <> 0;
SELECT count(*) AS empty_groups FROM crm_internal.pipeline_aggregate WHERE opportunities = 0 AND amount = 0;
(SELECT * FROM crm.pipeline_totals EXCEPT SELECT * FROM totals_before)
UNION ALL
(SELECT * FROM totals_before EXCEPT SELECT * FROM crm.pipeline_totals);

-- A NaN amount would poison every sum it entered (NaN - NaN is NaN): refused.
INSERT INTO crm.opportunity (name, account_id, amount) VALUES ('Not a number', 1, 'NaN');
\echo :LAST_ERROR_SQLSTATE
-- Dates beyond the timestamp range still have a close month.
INSERT INTO crm.opportunity (name, account_id, amount, close_date) VALUES ('Far future', 1, 1, '5000000-03-15');
SELECT close_month, opportunities FROM crm.pipeline_totals WHERE close_month > '3000-01-01' AND close_month < 'infinity';
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
DELETE FROM crm.opportunity WHERE name = 'Far future';

-- Campaign figures: leads attributed to a campaign, by status, follow the
-- leads (insert, status change, conversion, re-attribution, delete).
INSERT INTO crm.lead (name, company, campaign_id) VALUES
    ('Ann', 'Initech', 1), ('Bob', 'Umbrella', 1), ('Cid', 'Hooli', 2), ('Dee', 'Vandelay', NULL);
UPDATE crm.lead SET status = 'Processing' WHERE name = 'Bob';
SELECT opportunity_id IS NOT NULL AS converted FROM crm.convert_lead((SELECT id FROM crm.lead WHERE name = 'Ann'));
UPDATE crm.lead SET campaign_id = 2 WHERE name = 'Dee';
DELETE FROM crm.lead WHERE name = 'Cid';
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
-- The converted lead's opportunity carries the campaign; closing it as won
-- moves its amount into the won figures.
UPDATE crm.opportunity SET amount = 5000, stage = 'Successful'
 WHERE lead_id = (SELECT id FROM crm.lead WHERE name = 'Ann');
SELECT name, leads, converted_leads, opportunities, won_opportunities, won_amount
  FROM crm.campaign_performance ORDER BY campaign_id;
-- Deleting a campaign detaches its leads and deals (ON DELETE SET NULL),
-- and the figures follow.
DELETE FROM crm.campaign WHERE name = 'Webinar';
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- Account rollup: open and won deals from the aggregate, the last completed
-- activity from the activity index.  Moving a deal to another account
-- moves its figures.
UPDATE crm.opportunity SET account_id = 2 WHERE id IN (3, 4);
INSERT INTO crm.activity (type, subject, account_id, starts_at, status, completed_at)
VALUES ('call', 'Intro call', 2, '2026-03-01 09:00+00', 'Completed', '2026-03-01 10:00+00'),
       ('call', 'Earlier call', 2, '2026-02-01 09:00+00', 'Completed', '2026-02-01 10:00+00'),
       ('task', 'Open task', 2, NULL, 'Planned', NULL);
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
-- (the activity trigger stamps completed_at with the time of completion)
SELECT account_id, open_opportunities, open_amount, won_opportunities, won_amount,
       last_activity_at IS NOT DISTINCT FROM (SELECT max(completed_at) FROM crm.activity a
                                               WHERE a.account_id = r.account_id) AS last_activity_ok,
       last_activity_at IS NOT NULL AS has_activity
  FROM crm.account_rollup AS r ORDER BY account_id;
SELECT account_id, open_opportunities, open_amount FROM crm.account_rollup WHERE open_opportunities > 0
 EXCEPT
SELECT o.account_id, count(*), sum(o.amount) FROM crm.opportunity o JOIN crm.opportunity_stage s ON s.name = o.stage
 WHERE NOT s.is_closed GROUP BY 1;

-- A mismatch is reported, one row per group and measure; rebuild repairs it
-- and folds the stripes into one row per group.
ALTER TABLE crm.opportunity DISABLE TRIGGER aggregates_opportunity_update;
UPDATE crm.opportunity SET amount = amount + 5 WHERE id = 2;
ALTER TABLE crm.opportunity ENABLE TRIGGER aggregates_opportunity_update;
SELECT aggregate, group_key ->> 'stage' AS stage, measure, kept, actual FROM crm.verify_aggregates();
SELECT crm.rebuild_aggregates() > 0 AS rebuilt;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
SELECT count(DISTINCT stripe) AS stripes FROM crm_internal.pipeline_aggregate;

-- The trigger maintains only the tables it knows, and only per statement.
CREATE TRIGGER aggregates_elsewhere AFTER INSERT ON crm.product
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.aggregates_maintain();
INSERT INTO crm.product (code, name, list_price) VALUES ('G', 'Gadget', 1);
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER aggregates_elsewhere ON crm.product;
CREATE TRIGGER aggregates_per_row AFTER INSERT ON crm.opportunity
    FOR EACH ROW EXECUTE FUNCTION crm_internal.aggregates_maintain();
INSERT INTO crm.opportunity (name, account_id) VALUES ('Row', 1);
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER aggregates_per_row ON crm.opportunity;

-- TRUNCATE empties the aggregates with the tables.
TRUNCATE crm.opportunity CASCADE;
SELECT count(*) AS pipeline_rows FROM crm_internal.pipeline_aggregate;
SELECT count(*) AS account_rows FROM crm_internal.account_aggregate;
SELECT count(*) AS campaign_opportunity_rows FROM crm_internal.campaign_opportunity_aggregate;
SELECT count(*) AS campaign_lead_rows FROM crm_internal.campaign_lead_aggregate;
INSERT INTO crm.lead (name, company, campaign_id) VALUES ('Eve', 'Initrode', 1);
SELECT sum(leads) AS campaign_leads FROM crm_internal.campaign_lead_aggregate;
TRUNCATE crm.lead CASCADE;
SELECT count(*) AS campaign_lead_rows FROM crm_internal.campaign_lead_aggregate;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- Users read the aggregates but cannot write them or rebuild them.
SET ROLE regress_agg_rep;
INSERT INTO crm_internal.pipeline_aggregate (stage, owner, close_month, stripe, opportunities) VALUES ('Proposal', 'regress_agg_rep', 'infinity', 0, 100);
\echo :LAST_ERROR_SQLSTATE
UPDATE crm_internal.account_aggregate SET amount = 0;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM crm_internal.campaign_lead_aggregate;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.rebuild_aggregates();
\echo :LAST_ERROR_SQLSTATE
SELECT crm.compact_aggregates();
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS readable FROM crm.pipeline_totals;
RESET ROLE;

-- Analysts read every BI view, but no personal column of the base tables.
INSERT INTO crm.opportunity (name, account_id, amount) VALUES ('For the analyst', 1, 10);
INSERT INTO crm.lead (name, company, email, source, campaign_id)
VALUES ('Fay', 'Initrode', 'fay@initrode.example', 'website', 1);
SET ROLE regress_agg_analyst;
SELECT step, items, amount FROM crm.sales_funnel WHERE items > 0 ORDER BY position, step_order;
SELECT dimension, leads FROM crm.lead_conversion_rates ORDER BY dimension;
SELECT stage, opportunities, amount FROM crm.pipeline_by_stage ORDER BY sort_order, owner;
SELECT opportunities, amount FROM crm.forecast_by_month;
SELECT count(*) AS performance_rows FROM crm.sales_performance;
SELECT stage, currently_in_stage FROM crm.stage_velocity;
SELECT count(*) AS quote_months FROM crm.quote_to_order;
SELECT name, leads, opportunities FROM crm.campaign_performance;
SELECT account_id, open_opportunities, open_amount FROM crm.account_rollup ORDER BY account_id;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
SELECT name FROM crm.opportunity;
\echo :LAST_ERROR_SQLSTATE
SELECT email FROM crm.lead;
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM crm.contact;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

DROP EXTENSION crm CASCADE;
DROP ROLE regress_agg_rep;
DROP ROLE regress_agg_analyst;
