-- trigger_robustness: the C triggers cope with what clients send: NULL in a
-- column a trigger reads is reported by its NOT NULL constraint (23502), not
-- a crash; large rows pass through triggers that rewrite the row.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;
\set VERBOSITY terse
INSERT INTO crm.account (name) VALUES ('Acme');
INSERT INTO crm.opportunity (name, account_id) VALUES ('Deal', 1);
INSERT INTO crm.campaign (name) VALUES ('C');
INSERT INTO crm.lead (name) VALUES ('L');
INSERT INTO crm.activity (type, subject, account_id, due_at) VALUES ('task', 'T', 1, now());
SELECT crm.create_quote(1) AS q \gset

-- NULL where a trigger looks: each is a clean 23502.
INSERT INTO crm.opportunity (name, account_id, stage) VALUES ('x', 1, NULL);
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.opportunity SET stage = NULL;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.quote (opportunity_id, name, status) VALUES (1, 'q', NULL);
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.quote SET status = NULL;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.quote SET is_synced = NULL;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.activity (type, subject, account_id, due_at, status) VALUES ('task', 'x', 1, now(), NULL);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.activity_participant (activity_id, contact_id, user_role, response_status) VALUES (1, NULL, 'crm_sales', NULL);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.campaign_member (campaign_id, lead_id, responded) VALUES (1, 1, NULL);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.lead (name, status) VALUES ('x', NULL);
\echo :LAST_ERROR_SQLSTATE
-- The server is still up.
SELECT 1 AS alive;

-- A 4 MB row through the opportunity triggers that rewrite it.
INSERT INTO crm.opportunity (name, account_id, description) VALUES ('Big', 1, repeat('x', 4000000));
UPDATE crm.opportunity SET stage = 'Proposal' WHERE name = 'Big';
SELECT stage, probability, length(description) FROM crm.opportunity WHERE name = 'Big';
