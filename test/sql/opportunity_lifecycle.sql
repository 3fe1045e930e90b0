-- opportunity_lifecycle: probability defaults from the stage, a lost deal
-- needs a loss reason, closed_at follows closing and reopening, and every
-- change of stage, amount, probability or close date is in the history.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;
\set VERBOSITY terse
INSERT INTO crm.account (name) VALUES ('Acme');

-- Probability: from the stage unless given.
INSERT INTO crm.opportunity (name, account_id) VALUES ('A', 1);
INSERT INTO crm.opportunity (name, account_id, stage, probability) VALUES ('B', 1, 'Proposal', 33);
SELECT name, stage, probability FROM crm.opportunity ORDER BY id;
-- A stage change brings the new stage's probability, unless the same
-- statement sets one; a probability change alone stays.
UPDATE crm.opportunity SET stage = 'Negotiation' WHERE name = 'A';
UPDATE crm.opportunity SET stage = 'Negotiation', probability = 60 WHERE name = 'B';
SELECT name, stage, probability FROM crm.opportunity ORDER BY id;
UPDATE crm.opportunity SET probability = 80 WHERE name = 'A';
SELECT probability FROM crm.opportunity WHERE name = 'A';

-- A lost deal (closed, not won) needs a loss reason code (ZC110); a free-text
-- comment alone is not one.
UPDATE crm.opportunity SET stage = 'Failed' WHERE name = 'A';
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.opportunity SET stage = 'Failed', loss_reason = 'too expensive' WHERE name = 'A';
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.opportunity (name, account_id, stage) VALUES ('C', 1, 'Failed');
\echo :LAST_ERROR_SQLSTATE
BEGIN;
UPDATE crm.opportunity SET stage = 'Failed', loss_reason_code = 'price', loss_reason = 'too expensive' WHERE name = 'A';
-- closed_at is set on closing (whatever the client sends) ...
SELECT stage, probability, closed_at = now() AS closed_now FROM crm.opportunity WHERE name = 'A';
UPDATE crm.opportunity SET closed_at = '2001-01-01' WHERE name = 'A';
SELECT closed_at = now() AS kept FROM crm.opportunity WHERE name = 'A';
COMMIT;
-- ... and cleared on reopening.
UPDATE crm.opportunity SET stage = 'Proposal' WHERE name = 'A';
SELECT stage, probability, closed_at FROM crm.opportunity WHERE name = 'A';
-- Won deals need no reason.
UPDATE crm.opportunity SET stage = 'Successful', amount = 1000 WHERE name = 'B';
SELECT stage, probability, closed_at IS NOT NULL AS closed FROM crm.opportunity WHERE name = 'B';

-- Renaming a stage is not a stage change: probability and closed_at stay,
-- and the history records no move (see below).
SELECT probability, closed_at AS closed_before FROM crm.opportunity WHERE name = 'B' \gset
UPDATE crm.opportunity_stage SET name = 'Won' WHERE name = 'Successful';
SELECT stage, probability = :probability AS same_probability, closed_at = :'closed_before' AS same_closed_at
  FROM crm.opportunity WHERE name = 'B';
UPDATE crm.opportunity_stage SET name = 'Successful' WHERE name = 'Won';

-- A stage that opportunities are in keeps whether it is closed and won
-- (ZC111): B is in Successful, won.  Its flags, B and B's history stay.
UPDATE crm.opportunity_stage SET is_won = false WHERE name = 'Successful';
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.opportunity_stage SET name = 'Lost after all', is_closed = true, is_won = false WHERE name = 'Successful';
\echo :LAST_ERROR_SQLSTATE
SELECT name, is_closed, is_won FROM crm.opportunity_stage WHERE name = 'Successful';
-- A stage nobody is in may change its flags.
INSERT INTO crm.opportunity_stage (name, sort_order, probability) VALUES ('Parked', 950, 0);
UPDATE crm.opportunity_stage SET is_closed = true WHERE name = 'Parked';
SELECT name, is_closed, is_won FROM crm.opportunity_stage WHERE name = 'Parked';
DELETE FROM crm.opportunity_stage WHERE name = 'Parked';

-- The history: one row at creation, one per change of a tracked field,
-- none for other changes.
UPDATE crm.opportunity SET description = 'not tracked' WHERE name = 'A';
UPDATE crm.opportunity SET close_date = '2027-06-30' WHERE name = 'A';
SELECT o.name, h.old_stage, h.new_stage, h.old_amount, h.new_amount, h.old_probability, h.new_probability,
       h.old_close_date, h.new_close_date, h.changed_by = current_user::regrole AS by_me
  FROM crm.opportunity_history h JOIN crm.opportunity o ON o.id = h.opportunity_id
 ORDER BY h.id;
-- History is read-only for users.
SELECT has_table_privilege('crm_sales', 'crm.opportunity_history', 'INSERT') AS sales_can_insert,
       has_table_privilege('crm_sales', 'crm.opportunity_history', 'SELECT') AS sales_can_read;

-- The triggers' errors name their table, and the column where there is one,
-- in the error fields drivers expose (schema_name, table_name, column_name).
DO $$
DECLARE s text; t text; c text;
BEGIN
    UPDATE crm.opportunity SET stage = 'Failed', loss_reason_code = NULL WHERE name = 'B';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS s = SCHEMA_NAME, t = TABLE_NAME, c = COLUMN_NAME;
    RAISE NOTICE '% on %.% column %', SQLSTATE, s, t, c;
END $$;
DO $$
DECLARE s text; t text; c text;
BEGIN
    INSERT INTO crm.lead (name, status) VALUES ('X', 'Converted');
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS s = SCHEMA_NAME, t = TABLE_NAME, c = COLUMN_NAME;
    RAISE NOTICE '% on %.% column "%"', SQLSTATE, s, t, c;
END $$;
