-- red_team_intake: the lead intake (capture, scoring, assignment) attacked
-- by a crm_intake login, a rep and a manager.  Each case is an attack that
-- must fail or change nothing.  The flood of refused captures (background
-- workers) is tested by test/scripts/capture_refusal_flood.sh.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_rti_web;
DROP ROLE IF EXISTS regress_rti_rep;
DROP ROLE IF EXISTS regress_rti_other;
DROP ROLE IF EXISTS regress_rti_manager;
CREATE ROLE regress_rti_web IN ROLE crm_intake;
CREATE ROLE regress_rti_rep IN ROLE crm_sales;
CREATE ROLE regress_rti_other IN ROLE crm_sales;
CREATE ROLE regress_rti_manager IN ROLE crm_manager;
RESET client_min_messages;
\set VERBOSITY terse

-- A rep cannot put a lead into the intake pool (owner crm_intake, which
-- only admins see), neither on insert nor by update.
SET ROLE regress_rti_rep;
INSERT INTO crm.lead (name, email, owner) VALUES ('Pool', 'pool@rti.example', 'crm_intake');
INSERT INTO crm.lead (name, email) VALUES ('Rita Rep', 'rita@rti.example') RETURNING id, owner;
UPDATE crm.lead SET owner = 'crm_intake' WHERE email = 'rita@rti.example';
-- the score is the database's: no role may write it (42501) ...
UPDATE crm.lead SET score = 999 WHERE email = 'rita@rti.example' RETURNING score;
RESET ROLE;
-- ... and where a superuser does, it is recomputed
UPDATE crm.lead SET score = 999 WHERE email = 'rita@rti.example' RETURNING score;

-- The intake login reads no table and may run no other function.
SET ROLE regress_rti_web;
SELECT count(*) FROM crm.lead;
SELECT count(*) FROM crm.lead_capture;
SELECT count(*) FROM crm.lead_assignment;
SELECT crm.convert_lead(1);
SELECT crm.assign_lead(1);
-- details keys named like lead columns it may not set are only kept in the
-- payload: the capture merges into Rita's lead, which keeps its owner,
-- status and score
SELECT crm.capture_lead('Mallory', NULL, 'RITA@rti.example', NULL, 'website', NULL,
                        '{"owner": "regress_rti_web", "status": "Converted", "score": 1000,
                          "id": 1, "email_opt_out": false, "consent_at": "2000-01-01"}') AS merged_into;
-- a refused capture
SELECT crm.capture_lead('Mallory', NULL, 'mallory@rti.example', NULL, 'no-such-source');
RESET ROLE;
SELECT id, name, owner, status, score, consent_at FROM crm.lead ORDER BY id;
SELECT id, outcome, lead_id, payload->'details'->>'owner' AS smuggled_owner FROM crm.lead_capture ORDER BY id;

-- Captures follow their lead: another rep sees none (not the merged one,
-- not the refused one); Rita's owner sees the merged one only.
SET ROLE regress_rti_other;
SELECT count(*) AS captures_seen FROM crm.lead_capture;
SET ROLE regress_rti_rep;
SELECT outcome FROM crm.lead_capture ORDER BY id;
RESET ROLE;

-- Rules and settings are the admins': a rep or a manager cannot write
-- scoring or assignment rules, queues, the default owner or the
-- convertible statuses.
SET ROLE regress_rti_rep;
INSERT INTO crm.scoring_rule (name, column_name, operator, value, points) VALUES ('Mine', 'name', '=', 'Rita Rep', 1000);
SET ROLE regress_rti_manager;
INSERT INTO crm.assignment_rule (priority, assign_to) VALUES (1, 'regress_rti_manager');
INSERT INTO crm.assignment_queue_member (queue, member) VALUES ('inbound', 'regress_rti_manager');
UPDATE crm.settings SET default_lead_owner = 'regress_rti_manager';
UPDATE crm.settings SET convertible_statuses = ARRAY['Not Qualified']::crm.lead_status[];
-- nor run the assignment on a lead it cannot see (Rita's rep is not in its team)
SELECT crm.assign_lead(2);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT count(*) AS rules FROM crm.scoring_rule;
SELECT default_lead_owner, convertible_statuses FROM crm.settings;
