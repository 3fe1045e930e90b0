-- invariant_checks: test/invariants.sql (run by the crash and stress tests)
-- prints nothing for data the README allows -- here stage renames, which
-- are not stage changes -- and one line per violation for data it does not
-- (a history entry corrupted behind the triggers' back).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;
\set VERBOSITY terse
\pset format unaligned
\pset tuples_only on

INSERT INTO crm.account (name) VALUES ('Acme');
INSERT INTO crm.opportunity (name, account_id, stage, amount) VALUES
    ('Rename me', 1, 'Proposal', 100),
    ('Moved', 1, 'Qualification', 200),
    ('Stays', 1, 'Negotiation', 300);
UPDATE crm.opportunity SET stage = 'Proposal' WHERE name = 'Moved';
\set ECHO none
\i test/invariants.sql
\set ECHO all
\echo checked: fresh data

-- A rename cascades to the opportunities in the stage without a history
-- entry; their last entry names the old stage, and that is no violation.
UPDATE crm.opportunity_stage SET name = 'Offer' WHERE name = 'Proposal';
SELECT o.name, o.stage, h.new_stage AS last_history_stage
  FROM crm.opportunity o
  JOIN LATERAL (SELECT new_stage FROM crm.opportunity_history WHERE opportunity_id = o.id ORDER BY id DESC LIMIT 1) h ON true
 ORDER BY o.id;
\set ECHO none
\i test/invariants.sql
\set ECHO all
\echo checked: after a rename

-- Renamed again (a chain of renames), and renamed back to a name in use
-- before: still no violation.
UPDATE crm.opportunity_stage SET name = 'Offer 2027' WHERE name = 'Offer';
UPDATE crm.opportunity_stage SET name = 'Proposal' WHERE name = 'Offer 2027';
UPDATE crm.opportunity_stage SET name = 'Quote' WHERE name = 'Proposal';
\set ECHO none
\i test/invariants.sql
\set ECHO all
\echo checked: after three more renames

-- A real move after the renames is recorded, and checked as usual.
UPDATE crm.opportunity SET stage = 'Negotiation' WHERE name = 'Moved';
\set ECHO none
\i test/invariants.sql
\set ECHO all
\echo checked: after a move

-- A genuinely wrong history is still caught: a superuser rewrites the last
-- entry of two deals with the triggers off (replica mode), one in a
-- renamed stage, one in a stage never renamed.
SET session_replication_role = replica;
UPDATE crm.opportunity_history SET new_stage = 'Requirement'
 WHERE id IN (SELECT max(h.id) FROM crm.opportunity_history h JOIN crm.opportunity o ON o.id = h.opportunity_id
               WHERE o.name IN ('Rename me', 'Stays') GROUP BY h.opportunity_id);
RESET session_replication_role;
\set ECHO none
\i test/invariants.sql
\set ECHO all
\echo checked: after corrupting two history entries

DROP EXTENSION crm CASCADE;
