-- lead_history: every status change of a lead is recorded (from, to, when,
-- by whom), and every change of a lead's fields lands in the update log.
-- Users can read the history but not write it.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;
DROP ROLE IF EXISTS regress_hist_rep;
CREATE ROLE regress_hist_rep IN ROLE crm_sales;

-- Capture records the first status; each change adds a row; a non-change adds none.
-- (the lead is the rep's: row-level security lets a rep change only their own)
INSERT INTO crm.lead (name, company, email, owner) VALUES ('Monica Hall', 'Raviga', 'monica@raviga.example', 'regress_hist_rep');
UPDATE crm.lead SET status = 'Processing' WHERE id = 1;
UPDATE crm.lead SET status = 'Processing' WHERE id = 1;
SET ROLE regress_hist_rep;
UPDATE crm.lead SET status = 'Following Up', remarks = 'demo booked' WHERE id = 1;
RESET ROLE;
SELECT lead_id, from_status, to_status, changed_by, changed_at > now() - interval '1 hour' AS recent
  FROM crm.lead_status_history ORDER BY id;

-- The update log holds the creation and each real change with old and new values
-- (an UPDATE that changed nothing leaves no entry).
UPDATE crm.lead SET remarks = remarks WHERE id = 1;
UPDATE crm.lead SET phone = '+1 555 0142', email = NULL WHERE id = 1;
SELECT lead_id, operation, changes, changed_by FROM crm.lead_update_log ORDER BY id;

-- Deleting a lead logs the removed values; its status history goes with it.
INSERT INTO crm.lead (name) VALUES ('Erlich Bachman');
DELETE FROM crm.lead WHERE id = 2;
SELECT lead_id, operation, changes->>'name' AS name FROM crm.lead_update_log WHERE lead_id = 2 ORDER BY id;
SELECT count(*) AS history_of_deleted FROM crm.lead_status_history WHERE lead_id = 2;

-- COPY is logged like INSERT.
COPY crm.lead (name) FROM stdin;
Jared Dunn
\.
SELECT operation FROM crm.lead_update_log WHERE lead_id = 3;

-- Users can read history but cannot write, change or delete it.
SET ROLE regress_hist_rep;
SELECT count(*) > 0 AS can_read FROM crm.lead_status_history;
INSERT INTO crm.lead_status_history (lead_id, to_status, changed_by) VALUES (1, 'Completed', 'regress_hist_rep');
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.change_log SET changed_by = 'postgres';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM crm.lead_status_history;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- TRUNCATE is logged too.
TRUNCATE crm.lead CASCADE;
SELECT operation, row_id FROM crm.change_log WHERE operation = 'TRUNCATE';

RESET ROLE;
DROP EXTENSION crm CASCADE;
DROP ROLE regress_hist_rep;
