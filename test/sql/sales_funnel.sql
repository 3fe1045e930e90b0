-- sales_funnel: the funnel counts, per step in pipeline order, the leads and
-- opportunities that reached the step (their furthest status or stage, set
-- by the database, is that step or a later one), so it never widens; the
-- exits (Not Qualified leads, lost deals) are rows of their own; the
-- snapshot of today's records stays in crm.sales_funnel_snapshot.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_fun_rep1, regress_fun_rep2;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_fun_rep1 IN ROLE crm_sales;
CREATE ROLE regress_fun_rep2 IN ROLE crm_sales;

-- The lead's furthest status: the highest working status it ever had.
SET ROLE regress_fun_rep1;
INSERT INTO crm.lead (name, company, status) VALUES
    ('A', 'Alpha', 'New Lead'), ('B', 'Beta', 'Processing'), ('C', 'Gamma', 'Not Qualified');
UPDATE crm.lead SET status = 'Following Up' WHERE name = 'A';
-- back to Processing: A keeps Following Up
UPDATE crm.lead SET status = 'Processing' WHERE name = 'A';
-- Not Qualified is an exit: B keeps Processing
UPDATE crm.lead SET status = 'Not Qualified' WHERE name = 'B';
-- C was captured Not Qualified: it has reached New Lead
SELECT name, status, furthest_status FROM crm.lead ORDER BY name;

-- Nobody writes it (42501), whatever the statement.
INSERT INTO crm.lead (name, company, furthest_status) VALUES ('X', 'Xeno', 'Converted');
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.lead SET furthest_status = 'Converted' WHERE name = 'A';
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- ... and what the extension owner sends is replaced.
UPDATE crm.lead SET furthest_status = 'Converted', remarks = 'x' WHERE name = 'A';
INSERT INTO crm.lead (name, company, status, furthest_status, owner)
VALUES ('D', 'Delta', 'In Transaction', 'New Lead', 'regress_fun_rep1');
SELECT name, furthest_status FROM crm.lead WHERE name IN ('A', 'D') ORDER BY name;

-- Converting D: Converted is the furthest status; its deal starts in the
-- first open stage.
SET ROLE regress_fun_rep1;
SELECT count(*) FROM crm.convert_lead((SELECT id FROM crm.lead WHERE name = 'D'));
SELECT name, status, furthest_status FROM crm.lead WHERE name = 'D';

-- The lead part of the funnel: every lead reached New Lead, so the counts
-- narrow down the steps; the Not Qualified exit counts B and C.
SELECT step, is_exit, items FROM crm.sales_funnel WHERE kind = 'lead' ORDER BY is_exit, step_order;

-- Deals: the furthest stage is the furthest open stage, or the won stage.
INSERT INTO crm.account (name) VALUES ('Omega');
INSERT INTO crm.opportunity (name, account_id, amount, stage, loss_reason_code, close_date)
SELECT v.name, a.id, v.amount, v.stage, v.reason, '2027-03-10'
  FROM crm.account AS a,
       (VALUES ('up', 100, 'Qualification', NULL), ('back', 200, 'Negotiation', NULL),
               ('lost', 300, 'Qualification', NULL), ('born lost', 400, 'Failed', 'price'),
               ('won', 500, 'Proposal', NULL)) AS v (name, amount, stage, reason)
 WHERE a.name = 'Omega';
UPDATE crm.opportunity SET stage = 'Proposal' WHERE name = 'up';
-- back from Negotiation to Requirement: keeps Negotiation
UPDATE crm.opportunity SET stage = 'Requirement' WHERE name = 'back';
-- lost from Requirement: keeps Requirement (a lost stage is an exit)
UPDATE crm.opportunity SET stage = 'Requirement' WHERE name = 'lost';
UPDATE crm.opportunity SET stage = 'Failed', loss_reason_code = 'price' WHERE name = 'lost';
-- won, then reopened: keeps its won stage (it was won once)
UPDATE crm.opportunity SET stage = 'Successful' WHERE name = 'won';
UPDATE crm.opportunity SET stage = 'Negotiation' WHERE name = 'won';
UPDATE crm.opportunity SET stage = 'Successful' WHERE name = 'won';
SELECT name, stage, furthest_stage FROM crm.opportunity ORDER BY id;

-- Nobody writes it (42501).
UPDATE crm.opportunity SET furthest_stage = 'Successful' WHERE name = 'up';
\echo :LAST_ERROR_SQLSTATE

-- The opportunity part: the deals that reached each stage, narrowing; the
-- won stage counts the won deal; the lost stage is an exit with the deals
-- in it now.  Amounts in the corporate currency.
SELECT step, is_exit, items, amount, currency, amount_in_currency
  FROM crm.sales_funnel WHERE kind = 'opportunity' ORDER BY is_exit, step_order;

-- It never widens: no step counts more than the step before it.
SELECT f.kind, f.step FROM crm.sales_funnel AS f
 WHERE NOT f.is_exit
   AND f.items > (SELECT min(p.items) FROM crm.sales_funnel AS p
                   WHERE p.kind = f.kind AND NOT p.is_exit AND p.step_order < f.step_order);

-- The snapshot: where the records are now.
SELECT position, kind, step, items, amount FROM crm.sales_funnel_snapshot
 WHERE items > 0 ORDER BY position, step_order;

-- Row-level security: rep2 sees only their own records in the funnel.
RESET ROLE;
SET ROLE regress_fun_rep2;
INSERT INTO crm.lead (name, company, status) VALUES ('R2', 'Rho', 'Completed');
SELECT step, is_exit, items FROM crm.sales_funnel WHERE items > 0 ORDER BY position, is_exit, step_order;
SELECT count(*) AS rows, sum(items) AS items FROM crm.sales_funnel WHERE kind = 'opportunity';
RESET ROLE;

-- Renaming a stage cascades to the deals whose furthest stage it is; the
-- funnel shows the new name with the same counts.
UPDATE crm.opportunity_stage SET name = 'Negotiating' WHERE name = 'Negotiation';
SELECT name, stage, furthest_stage FROM crm.opportunity WHERE name IN ('back', 'won') ORDER BY id;
SELECT step, items FROM crm.sales_funnel WHERE step IN ('Negotiation', 'Negotiating');
-- A stage that is a deal's furthest stage cannot be deleted.
DELETE FROM crm.opportunity_stage WHERE name = 'Negotiating';
\echo :LAST_ERROR_SQLSTATE

-- Reordering the stages does not rewrite the furthest stages recorded: the
-- funnel compares them by the order of the day, and still narrows.
UPDATE crm.opportunity_stage SET sort_order = 15 WHERE name = 'Negotiating';
SELECT step, step_order, items FROM crm.sales_funnel
 WHERE kind = 'opportunity' AND NOT is_exit ORDER BY step_order;
UPDATE crm.opportunity_stage SET sort_order = 40 WHERE name = 'Negotiating';

-- Bulk UPDATE, DELETE and status changes keep the funnel aggregates exact.
UPDATE crm.opportunity SET amount = amount + 1;
DELETE FROM crm.opportunity WHERE name = 'up';
UPDATE crm.lead SET status = 'Completed' WHERE name = 'A';
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
SELECT items FROM crm.sales_funnel WHERE step = 'Completed';

-- Big statements with little memory (the transition tables spill to disk).
SET work_mem = '64kB';
INSERT INTO crm.lead (name, company, status, owner)
SELECT 'bulk ' || g, 'Bulk Co ' || g, (ARRAY['New Lead', 'Processing', 'Not Qualified'])[1 + g % 3]::crm.lead_status,
       'regress_fun_rep1'
  FROM generate_series(1, 1500) AS g;
UPDATE crm.lead SET status = 'Following Up' WHERE name LIKE 'bulk %' AND status = 'Processing';
INSERT INTO crm.opportunity (name, account_id, amount, stage, close_date, owner)
SELECT 'bulk ' || g, a.id, g, 'Proposal', DATE '2027-01-01' + g % 90, 'regress_fun_rep2'
  FROM crm.account AS a, generate_series(1, 1500) AS g WHERE a.name = 'Omega';
UPDATE crm.opportunity SET stage = 'Requirement' WHERE name LIKE 'bulk %';
RESET work_mem;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
SELECT step, items FROM crm.sales_funnel
 WHERE step IN ('New Lead', 'Following Up', 'Not Qualified', 'Requirement', 'Proposal') ORDER BY position, step_order;

DROP EXTENSION crm CASCADE;
DROP ROLE regress_fun_rep1, regress_fun_rep2;
