-- quote_approval: submit_quote, approve_quote and reject_quote move a quote
-- through review and record who, when and why in crm.quote_approval; only
-- managers above the quote's owner in the reporting hierarchy (and admins)
-- decide, not on their own submissions; the record cannot be forged.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_rep, regress_boss, regress_boss2, regress_root, regress_outsider;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_rep IN ROLE crm_sales;
CREATE ROLE regress_boss IN ROLE crm_manager;
CREATE ROLE regress_boss2 IN ROLE crm_manager;
CREATE ROLE regress_root IN ROLE crm_admin;
CREATE ROLE regress_outsider IN ROLE crm_manager;
-- rep -> boss -> boss2; the outsider manages somebody else
INSERT INTO crm.reporting_line (member, manager) VALUES ('regress_rep', 'regress_boss'), ('regress_boss', 'regress_boss2');

INSERT INTO crm.account (name) VALUES ('Acme');
INSERT INTO crm.opportunity (name, account_id, owner) VALUES ('Big deal', 1, 'regress_rep');
UPDATE crm.settings SET quote_approval_threshold = 10;

SET ROLE regress_rep;
SELECT crm.create_quote(1, discount => 25) AS q1, crm.create_quote(1, discount => 30) AS q2 \gset
-- Over the threshold: presenting needs approval first (ZC205).
UPDATE crm.quote SET status = 'Presented' WHERE id = :q1;
\echo :LAST_ERROR_SQLSTATE
-- The rep submits; the rep cannot approve.
SELECT crm.submit_quote(:q1, 'customer asks 25% for a 3-year term');
SELECT crm.approve_quote(:q1, 'ok');
\echo :LAST_ERROR_SQLSTATE
-- Submitting twice, or approving an approved quote, is an illegal transition.
SELECT crm.submit_quote(:q1);
\echo :LAST_ERROR_SQLSTATE
-- Under review the quote is frozen.
UPDATE crm.quote SET discount = 50 WHERE id = :q1;
\echo :LAST_ERROR_SQLSTATE
-- Nobody writes the approval record or the approval states by hand.
INSERT INTO crm.quote_approval (quote_id, action, acted_by) VALUES (:q1, 'approved', 'regress_boss');
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.quote SET status = 'In Review' WHERE id = :q1;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- Not even the superuser, by plain UPDATE.
UPDATE crm.quote SET status = 'Approved' WHERE id = :q1;
\echo :LAST_ERROR_SQLSTATE

-- A manager outside the rep's reporting line does not even see the quote.
SET ROLE regress_outsider;
SELECT crm.approve_quote(:q1, 'not mine to approve');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- The rep's manager approves: Needs Review -> In Review -> Approved, recorded.
SET ROLE regress_boss;
SELECT crm.approve_quote(:q1, 'approved for the 3-year term');
RESET ROLE;
SELECT status FROM crm.quote WHERE id = :q1;
-- Approving it again is an illegal transition, also for the manager's manager.
SET ROLE regress_boss2;
SELECT crm.approve_quote(:q1, 'again');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- Approved quotes cannot be edited, and are presented and accepted normally.
SET ROLE regress_rep;
UPDATE crm.quote SET valid_until = '2030-01-01' WHERE id = :q1;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.quote SET status = 'Presented' WHERE id = :q1;
UPDATE crm.quote SET status = 'Accepted' WHERE id = :q1;
RESET ROLE;

-- Rejecting needs a comment (ZC208); the rejected quote goes back to Draft.
SET ROLE regress_rep;
SELECT crm.submit_quote(:q2);
RESET ROLE;
SET ROLE regress_boss;
SELECT crm.reject_quote(:q2, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.reject_quote(:q2, 'too deep; max 20%');
RESET ROLE;
SET ROLE regress_rep;
UPDATE crm.quote SET status = 'Draft', discount = 20 WHERE id = :q2;
SELECT status, discount FROM crm.quote WHERE id = :q2;
RESET ROLE;

-- A manager cannot approve their own submission (ZC207); another manager
-- or an admin can.
SET ROLE regress_boss;
SELECT crm.submit_quote(:q2);
SELECT crm.approve_quote(:q2, 'mine');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE regress_root;
SELECT crm.approve_quote(:q2, 'admin approval');
RESET ROLE;

-- A quote with an approval record cannot be deleted: the record stays.
DELETE FROM crm.quote WHERE id = :q1;
\echo :LAST_ERROR_SQLSTATE

-- Unknown quotes (ZC201).
SET ROLE regress_boss;
SELECT crm.approve_quote(424242);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- The record: who, what, why, in order; the status history in the change log.
SELECT quote_id = :q1 AS first_quote, action, comment, acted_by FROM crm.quote_approval ORDER BY id;
SELECT row_id = :q1 AS first_quote, changes->'status'->>'old' AS old, changes->'status'->>'new' AS new, changed_by
  FROM crm.change_log WHERE table_name = 'crm.quote'::regclass AND changes ? 'status' ORDER BY id;

DROP EXTENSION crm CASCADE;
DROP ROLE regress_rep, regress_boss, regress_boss2, regress_root, regress_outsider;
