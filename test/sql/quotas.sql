-- quotas: sales quotas per owner and period, and crm.quota_attainment.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_q_rep1, regress_q_rep2, regress_q_boss, regress_q_outsider, regress_q_analyst;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_q_rep1 IN ROLE crm_sales;
CREATE ROLE regress_q_rep2 IN ROLE crm_sales;
CREATE ROLE regress_q_boss IN ROLE crm_manager;
CREATE ROLE regress_q_outsider IN ROLE crm_sales;
CREATE ROLE regress_q_analyst IN ROLE crm_analyst;
INSERT INTO crm.reporting_line (member, manager) VALUES
    ('regress_q_rep1', 'regress_q_boss'), ('regress_q_rep2', 'regress_q_boss');
INSERT INTO crm.exchange_rate VALUES ('EUR', '2027-01-01', 1.10);

-- A manager sets the quotas of the team.
SET ROLE regress_q_boss;
INSERT INTO crm.quota (owner, period_start, period_end, amount) VALUES
    ('regress_q_rep1', '2027-01-01', '2027-03-31', 10000),
    ('regress_q_rep2', '2027-01-01', '2027-03-31', 5000);
INSERT INTO crm.quota (owner, period_start, period_end, amount, currency) VALUES
    ('regress_q_rep1', '2027-04-01', '2027-06-30', 10000, 'EUR');
-- Periods of one owner never overlap (23P01), by insert or update.
INSERT INTO crm.quota (owner, period_start, period_end, amount) VALUES ('regress_q_rep1', '2027-03-31', '2027-04-15', 1);
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.quota SET period_end = '2027-04-01' WHERE owner = 'regress_q_rep1'::regrole AND period_start = '2027-01-01';
\echo :LAST_ERROR_SQLSTATE
-- Not outside the team, not their own quota (42501: row-level security).
INSERT INTO crm.quota (owner, period_start, period_end, amount) VALUES ('regress_q_outsider', '2027-01-01', '2027-03-31', 1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.quota (owner, period_start, period_end, amount) VALUES ('regress_q_boss', '2027-01-01', '2027-03-31', 1);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- The period ends on or after its start; finite days; amount > 0.
INSERT INTO crm.quota (owner, period_start, period_end, amount) VALUES ('regress_q_outsider', '2027-02-01', '2027-01-31', 1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.quota (owner, period_start, period_end, amount) VALUES ('regress_q_outsider', '2027-01-01', 'infinity', 1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.quota (owner, period_start, period_end, amount) VALUES ('regress_q_outsider', '2027-01-01', '2027-03-31', 0);
\echo :LAST_ERROR_SQLSTATE
-- An admin sets anybody's (the outsider's; the boss's own).
INSERT INTO crm.quota (owner, period_start, period_end, amount) VALUES
    ('regress_q_outsider', '2027-01-01', '2027-03-31', 2000), ('regress_q_boss', '2027-01-01', '2027-03-31', 1);
-- Reps read their own and cannot write.
SET ROLE regress_q_rep1;
SELECT owner, period_start, amount, currency FROM crm.quota ORDER BY period_start;
UPDATE crm.quota SET amount = 1;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- Deals: won, open and lost in the period, one outside it, one in euros.
INSERT INTO crm.account (name, owner) VALUES ('Acme', 'regress_q_rep1');
INSERT INTO crm.opportunity (name, account_id, owner, amount, probability, close_date, stage) VALUES
    ('Won', 1, 'regress_q_rep1', 4000, NULL, '2027-02-01', 'Successful'),
    ('Open', 1, 'regress_q_rep1', 8000, 25, '2027-03-15', 'Qualification'),
    ('Later', 1, 'regress_q_rep1', 9999, 25, '2027-07-01', 'Qualification'),
    ('Rep2 won', 1, 'regress_q_rep2', 6000, NULL, '2027-01-10', 'Successful'),
    ('Outsider open', 1, 'regress_q_outsider', 1000, 50, '2027-01-20', 'Qualification');
INSERT INTO crm.opportunity (name, account_id, owner, amount, close_date, stage, currency) VALUES
    ('Euro won', 1, 'regress_q_rep1', 1000, '2027-05-05', 'Successful', 'EUR');
INSERT INTO crm.opportunity (name, account_id, owner, amount, close_date, stage, loss_reason_code) VALUES
    ('Lost', 1, 'regress_q_rep1', 7777, '2027-02-02', 'Failed', 'price');

-- The manager: the team's quotas and a total row per period (owner NULL).
SET ROLE regress_q_boss;
SELECT owner, period_start, quota, won_amount, attainment, open_pipeline, weighted_pipeline, pipeline_coverage
  FROM crm.quota_attainment ORDER BY period_start, owner::text NULLS LAST;
-- A rep: their own.
SET ROLE regress_q_rep2;
SELECT owner, period_start, quota, won_amount, attainment FROM crm.quota_attainment ORDER BY period_start, owner::text NULLS LAST;
-- An analyst: everybody's.
SET ROLE regress_q_analyst;
SELECT owner, period_start, quota, won_amount FROM crm.quota_attainment ORDER BY period_start, owner::text NULLS LAST;
RESET ROLE;
-- A quota in a currency without a rate on its first day is refused (ZC120,
-- naming it): the attainment report could not convert it.
UPDATE crm.quota SET currency = 'GBP' WHERE currency = 'EUR';
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.quota (owner, period_start, period_end, amount, currency) VALUES ('regress_q_rep2', '2026-01-01', '2026-03-31', 1, 'EUR');
\echo :LAST_ERROR_SQLSTATE
-- A quota whose rate is gone (an admin deleted it): the report refuses,
-- naming the currency (ZC120), never 1.
BEGIN;
DELETE FROM crm.exchange_rate WHERE currency = 'EUR';
SELECT owner, quota FROM crm.quota_attainment;
ROLLBACK;

-- Every write path runs the overlap check: UPDATE of the owner, COPY, MERGE,
-- INSERT ... ON CONFLICT (23P01); the detail names the other quota.
\set VERBOSITY default
UPDATE crm.quota SET owner = 'regress_q_rep1' WHERE owner = 'regress_q_rep2'::regrole;
\set VERBOSITY terse
COPY crm.quota (owner, period_start, period_end, amount) FROM stdin;
regress_q_rep2	2027-03-01	2027-03-01	5
\.
MERGE INTO crm.quota AS q USING (VALUES ('regress_q_rep2'::regrole)) AS v (owner) ON false
 WHEN NOT MATCHED THEN INSERT (owner, period_start, period_end, amount) VALUES (v.owner, '2027-02-01', '2027-02-28', 5);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.quota (owner, period_start, period_end, amount) VALUES ('regress_q_rep2', '2027-03-31', '2027-04-01', 5)
    ON CONFLICT DO NOTHING;
\echo :LAST_ERROR_SQLSTATE
-- A period touching the other one's last day overlaps; the day after does not.
INSERT INTO crm.quota (owner, period_start, period_end, amount) VALUES ('regress_q_rep2', '2027-04-01', '2027-04-30', 5)
    RETURNING owner, period_start, period_end;
-- Two overlapping rows in one statement: the second sees the first.
INSERT INTO crm.quota (owner, period_start, period_end, amount) VALUES
    ('regress_q_rep2', '2028-01-01', '2028-01-31', 5), ('regress_q_rep2', '2028-01-31', '2028-02-28', 5);
\echo :LAST_ERROR_SQLSTATE
-- NULL owner or day: the NOT NULL constraints (23502).
INSERT INTO crm.quota (owner, period_start, period_end, amount) VALUES (NULL, '2029-01-01', '2029-01-31', 5);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.quota (owner, period_start, period_end, amount) VALUES ('regress_q_rep2', NULL, '2029-01-31', 5);
\echo :LAST_ERROR_SQLSTATE
-- A manager writing the quota of someone outside the team whose period
-- meets one of theirs learns nothing about it: the row-level security
-- error (42501), not the other quota's id and dates.
SET ROLE regress_q_boss;
\set VERBOSITY default
INSERT INTO crm.quota (owner, period_start, period_end, amount) VALUES ('regress_q_outsider', '2027-02-01', '2027-02-28', 1);
\set VERBOSITY terse
RESET ROLE;
-- No table lock: the check takes the extension's lock of the owner's
-- quotas (not visible as a lock on crm.quota), held to the end of the
-- transaction.
BEGIN;
INSERT INTO crm.quota (owner, period_start, period_end, amount) VALUES ('regress_q_rep2', '2029-01-01', '2029-01-31', 5);
SELECT l.mode, l.relation IS NOT NULL AS on_relation
  FROM pg_locks AS l
 WHERE l.pid = pg_backend_pid() AND (l.relation = 'crm.quota'::regclass OR l.locktype = 'advisory')
 ORDER BY 1, 2;
ROLLBACK;
