-- loss_reasons: a lost deal names a reason from crm.loss_reason (the free
-- text stays as a comment); reasons are seeded, maintained by admins, read by
-- everyone; an inactive reason cannot be chosen for a new loss but old losses
-- keep it; crm.loss_analysis counts lost deals by reason, owner and month.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_loss_rep1, regress_loss_rep2, regress_loss_admin, regress_loss_analyst;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_loss_rep1 IN ROLE crm_sales;
CREATE ROLE regress_loss_rep2 IN ROLE crm_sales;
CREATE ROLE regress_loss_admin IN ROLE crm_admin;
CREATE ROLE regress_loss_analyst IN ROLE crm_analyst;
SET timezone = 'UTC';

-- The seeded reasons.
SELECT code, label, active FROM crm.loss_reason ORDER BY code;

-- Deals of two reps.
INSERT INTO crm.account (name, owner) VALUES ('Acme', 'regress_loss_rep1'), ('Globex', 'regress_loss_rep2');
INSERT INTO crm.opportunity (name, account_id, amount, owner) VALUES
    ('A', 1, 100, 'regress_loss_rep1'), ('B', 1, 200, 'regress_loss_rep1'),
    ('C', 2, 300, 'regress_loss_rep2'), ('D', 2, 400, 'regress_loss_rep2');

-- A lost stage needs loss_reason_code (ZC110); the hint names the active codes.
\set VERBOSITY default
UPDATE crm.opportunity SET stage = 'Failed', loss_reason = 'they went elsewhere' WHERE name = 'A';
\set VERBOSITY terse
\echo :LAST_ERROR_SQLSTATE
-- An unknown code is refused by the foreign key (23503).
UPDATE crm.opportunity SET stage = 'Failed', loss_reason_code = 'bad luck' WHERE name = 'A';
\echo :LAST_ERROR_SQLSTATE
-- A code with the comment and a competitor.
UPDATE crm.opportunity SET stage = 'Failed', loss_reason_code = 'competitor',
       loss_reason = 'they went elsewhere', competitor = 'Initech' WHERE name = 'A';
INSERT INTO crm.opportunity (name, account_id, amount, owner, stage, loss_reason_code)
    VALUES ('E', 1, 50, 'regress_loss_rep1', 'Failed', 'price');
SELECT name, stage, loss_reason_code, loss_reason, competitor FROM crm.opportunity WHERE stage = 'Failed' ORDER BY name;
-- Clearing the code of a lost deal is refused (ZC110).
UPDATE crm.opportunity SET loss_reason_code = NULL WHERE name = 'A';
\echo :LAST_ERROR_SQLSTATE

-- A deal that is not lost has no reason code or competitor: the database
-- clears them when it reopens, and whatever the client sends on an open or a
-- won deal.  The comment stays.
UPDATE crm.opportunity SET stage = 'Proposal' WHERE name = 'E';
INSERT INTO crm.opportunity (name, account_id, amount, owner, loss_reason_code, competitor)
    VALUES ('F', 2, 10, 'regress_loss_rep2', 'price', 'Initech');
UPDATE crm.opportunity SET stage = 'Successful', loss_reason_code = 'timing' WHERE name = 'B';
SELECT name, stage, loss_reason_code, competitor FROM crm.opportunity WHERE name IN ('B', 'E', 'F') ORDER BY name;

-- An inactive reason: refused for a new loss (ZC112, the hint names the
-- active codes), kept by deals lost with it earlier.
UPDATE crm.loss_reason SET active = false WHERE code = 'competitor';
\set VERBOSITY default
UPDATE crm.opportunity SET stage = 'Failed', loss_reason_code = 'competitor' WHERE name = 'C';
\set VERBOSITY terse
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.opportunity (name, account_id, stage, loss_reason_code) VALUES ('G', 2, 'Failed', 'competitor');
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.opportunity SET amount = 150, competitor = 'Initech Ltd' WHERE name = 'A';
SELECT name, loss_reason_code, amount, competitor FROM crm.opportunity WHERE name = 'A';
-- Reopening and losing it again is a new loss: an active reason.
UPDATE crm.opportunity SET stage = 'Proposal' WHERE name = 'A';
UPDATE crm.opportunity SET stage = 'Failed', loss_reason_code = 'competitor' WHERE name = 'A';
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.opportunity SET stage = 'Failed', loss_reason_code = 'price' WHERE name = 'A';
UPDATE crm.loss_reason SET active = true WHERE code = 'competitor';
-- No active reason at all: the hint says so.
BEGIN;
UPDATE crm.loss_reason SET active = false;
\set VERBOSITY default
UPDATE crm.opportunity SET stage = 'Failed' WHERE name = 'C';
\set VERBOSITY terse
ROLLBACK;

-- Reasons: a code is lower-case snake case (23514), a label is not blank
-- (23514); a reason in use cannot be deleted (23503).
INSERT INTO crm.loss_reason (code, label) VALUES ('No Fit', 'x');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.loss_reason (code, label) VALUES ('legal', '  ');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM crm.loss_reason WHERE code = 'price';
\echo :LAST_ERROR_SQLSTATE

-- Privileges: admins add reasons and change labels and active, not codes
-- (42501); reps and analysts read them only (42501).
SET ROLE regress_loss_admin;
INSERT INTO crm.loss_reason (code, label) VALUES ('legal', 'Legal terms');
UPDATE crm.loss_reason SET label = 'Legal and compliance', active = false WHERE code = 'legal';
UPDATE crm.loss_reason SET code = 'legal_terms' WHERE code = 'legal';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM crm.loss_reason WHERE code = 'legal';
SET ROLE regress_loss_rep1;
SELECT count(*) AS reasons_read FROM crm.loss_reason;
INSERT INTO crm.loss_reason (code, label) VALUES ('mine', 'Mine');
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.loss_reason SET active = false WHERE code = 'price';
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- The loss analysis: by reason, owner and month of close, count and amount.
UPDATE crm.opportunity SET stage = 'Failed', loss_reason_code = 'price' WHERE name = 'C';
UPDATE crm.opportunity SET stage = 'Failed', loss_reason_code = 'no_budget' WHERE name = 'D';
UPDATE crm.opportunity SET stage = 'Failed', loss_reason_code = 'price' WHERE name = 'E';
SELECT reason, reason_label, owner, month = date_trunc('month', now())::date AS this_month, deals, amount
  FROM crm.loss_analysis ORDER BY reason, owner;
-- Each role sees the deals it may read: a rep their own ...
SET ROLE regress_loss_rep1;
SELECT reason, owner, deals, amount FROM crm.loss_analysis ORDER BY reason, owner;
-- ... an analyst every deal (reason codes, no comments or competitors).
SET ROLE regress_loss_analyst;
SELECT reason, owner, deals, amount FROM crm.loss_analysis ORDER BY reason, owner;
SELECT loss_reason FROM crm.opportunity;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

SET client_min_messages = warning;
DROP EXTENSION crm CASCADE;
DROP ROLE regress_loss_rep1, regress_loss_rep2, regress_loss_admin, regress_loss_analyst;
