-- lead_assignment: crm.assignment_rule, queues (round-robin, inactive
-- members, capacity), the default owner, crm.lead_assignment and
-- crm.assign_lead().
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_as_admin, regress_as_mgr, regress_as_rep1, regress_as_rep2, regress_as_rep3;
CREATE ROLE regress_as_admin IN ROLE crm_admin;
CREATE ROLE regress_as_mgr IN ROLE crm_manager;
CREATE ROLE regress_as_rep1 IN ROLE crm_sales;
CREATE ROLE regress_as_rep2 IN ROLE crm_sales;
CREATE ROLE regress_as_rep3 IN ROLE crm_sales;
RESET client_min_messages;
\set VERBOSITY terse
INSERT INTO crm.reporting_line (member, manager) VALUES ('regress_as_rep1', 'regress_as_mgr');

-- No rules: a lead without owner is the inserter's; a captured lead
-- (owner crm_intake) stays in the intake pool; nothing is logged.
SET ROLE regress_as_rep1;
INSERT INTO crm.lead (name) VALUES ('Own lead');
RESET ROLE;
INSERT INTO crm.lead (name, owner) VALUES ('Captured, no rules', 'crm_intake');
SELECT name, owner FROM crm.lead ORDER BY id;
SELECT count(*) AS logged FROM crm.lead_assignment;

-- The default owner takes what no rule routes (admins set it).
SET ROLE regress_as_admin;
UPDATE crm.settings SET default_lead_owner = 'regress_as_rep3';
RESET ROLE;
INSERT INTO crm.lead (name, owner) VALUES ('Captured, default', 'crm_intake');
SELECT name, owner FROM crm.lead WHERE name = 'Captured, default';
UPDATE crm.settings SET default_lead_owner = NULL;

-- A rule naming a role: referrals go to rep2.  A rep's lead routed to
-- someone else is handed over after the insert: rep1 no longer sees it.
SET ROLE regress_as_admin;
INSERT INTO crm.assignment_rule (priority, source, assign_to) VALUES (10, 'referral', 'regress_as_rep2');
RESET ROLE;
SET ROLE regress_as_rep1;
INSERT INTO crm.lead (name, source) VALUES ('Referred', 'referral');
SELECT count(*) AS rep1_sees_referred FROM crm.lead WHERE name = 'Referred';
-- an owner given explicitly is never re-routed
INSERT INTO crm.lead (name, source, owner) VALUES ('Referred, mine', 'referral', 'regress_as_rep1');
RESET ROLE;
SELECT name, owner FROM crm.lead WHERE name LIKE 'Referred%' ORDER BY id;
SELECT l.name, a.assigned_by, a.rule_id, a.queue, a.owner, a.previous_owner
  FROM crm.lead_assignment AS a JOIN crm.lead AS l ON l.id = a.lead_id ORDER BY a.id;
-- rep2, the new owner, sees the lead and its assignment
SET ROLE regress_as_rep2;
SELECT l.name, a.owner FROM crm.lead_assignment AS a JOIN crm.lead AS l ON l.id = a.lead_id;
RESET ROLE;

-- A queue: website leads go round-robin to rep1, rep2, rep3.
SET ROLE regress_as_admin;
INSERT INTO crm.assignment_queue_member (queue, member) VALUES
    ('inbound', 'regress_as_rep1'), ('inbound', 'regress_as_rep2'), ('inbound', 'regress_as_rep3');
INSERT INTO crm.assignment_rule (priority, source, queue) VALUES (20, 'website', 'inbound');
RESET ROLE;
INSERT INTO crm.lead (name, source, owner)
    SELECT 'Web ' || i, 'website', 'crm_intake' FROM generate_series(1, 6) AS i;
SELECT name, owner FROM crm.lead WHERE name LIKE 'Web %' ORDER BY id;
-- COPY is routed too (its rows continue the rotation)
COPY crm.lead (name, source, owner) FROM stdin;
Copied 1	website	crm_intake
Copied 2	website	crm_intake
\.
SELECT name, owner FROM crm.lead WHERE name LIKE 'Copied%' ORDER BY id;

-- An inactive member is skipped.
UPDATE crm.assignment_queue_member SET active = false WHERE member = 'regress_as_rep2'::regrole;
INSERT INTO crm.lead (name, source, owner)
    SELECT 'Web holiday ' || i, 'website', 'crm_intake' FROM generate_series(1, 2) AS i;
SELECT name, owner FROM crm.lead WHERE name LIKE 'Web holiday%' ORDER BY id;

-- Capacity: rep1 owns 6 open leads; at max_open_leads 6 it is skipped.
-- A lead that is no longer open (Not Qualified) frees a place.
SELECT owner, count(*) FROM crm.lead
 WHERE owner IN ('regress_as_rep1'::regrole, 'regress_as_rep3'::regrole) GROUP BY owner ORDER BY owner;
UPDATE crm.assignment_queue_member SET max_open_leads = 6 WHERE member = 'regress_as_rep1'::regrole;
INSERT INTO crm.lead (name, source, owner) VALUES ('Web full', 'website', 'crm_intake');
SELECT name, owner FROM crm.lead WHERE name = 'Web full';
UPDATE crm.lead SET status = 'Not Qualified' WHERE name = 'Own lead';
INSERT INTO crm.lead (name, source, owner) VALUES ('Web freed', 'website', 'crm_intake');
SELECT name, owner FROM crm.lead WHERE name = 'Web freed';

-- Every member unavailable: the next rule, else the default owner, else
-- the capture stays with crm_intake.
UPDATE crm.assignment_queue_member SET active = false WHERE queue = 'inbound';
INSERT INTO crm.lead (name, source, owner) VALUES ('Web nobody', 'website', 'crm_intake');
INSERT INTO crm.assignment_rule (priority, assign_to) VALUES (90, 'regress_as_admin');
INSERT INTO crm.lead (name, source, owner) VALUES ('Web fallback', 'website', 'crm_intake');
SELECT l.name, l.owner, r.priority AS by_rule_of_priority
  FROM crm.lead AS l LEFT JOIN crm.lead_assignment AS a ON a.lead_id = l.id
  LEFT JOIN crm.assignment_rule AS r ON r.id = a.rule_id
 WHERE l.name IN ('Web nobody', 'Web fallback') ORDER BY l.id;
DELETE FROM crm.assignment_rule WHERE priority = 90;

-- Conditions: country and industry compared without case or accents,
-- campaign, minimum score (from the scoring rules, computed first);
-- the lowest priority wins.
INSERT INTO crm.campaign (name) VALUES ('Spring fair');
INSERT INTO crm.scoring_rule (name, column_name, operator, value, points)
    VALUES ('Software', 'industry', '=', 'Software', 50);
INSERT INTO crm.assignment_rule (priority, country, industry, min_score, assign_to)
    VALUES (5, 'Österreich', 'software', 50, 'regress_as_rep3');
INSERT INTO crm.assignment_rule (priority, campaign_id, assign_to)
    VALUES (6, (SELECT id FROM crm.campaign WHERE name = 'Spring fair'), 'regress_as_rep1');
INSERT INTO crm.lead (name, country, industry, owner) VALUES
    ('Austrian software', 'OSTERREICH', 'Software', 'crm_intake'),
    ('Austrian retail', 'Österreich', 'Retail', 'crm_intake');
INSERT INTO crm.lead (name, campaign_id, owner)
    VALUES ('Fair visitor', (SELECT id FROM crm.campaign WHERE name = 'Spring fair'), 'crm_intake');
SELECT name, score, owner FROM crm.lead
 WHERE name IN ('Austrian software', 'Austrian retail', 'Fair visitor') ORDER BY id;

-- A rule names a role or a queue, never both or neither (23514).
INSERT INTO crm.assignment_rule (priority, assign_to, queue) VALUES (1, 'regress_as_rep1', 'inbound');
INSERT INTO crm.assignment_rule (priority) VALUES (1);
-- Rights: admins write the rules; managers read them; reps do neither.
SET ROLE regress_as_mgr;
SELECT count(*) > 0 AS manager_reads_rules FROM crm.assignment_rule;
INSERT INTO crm.assignment_rule (priority, assign_to) VALUES (1, 'regress_as_mgr');
RESET ROLE;
SET ROLE regress_as_rep1;
SELECT count(*) FROM crm.assignment_queue_member;
UPDATE crm.assignment_queue_member SET last_assigned = 0;
RESET ROLE;
SET ROLE regress_as_admin;
UPDATE crm.assignment_queue_member SET last_assigned = 0;   -- the database's only
RESET ROLE;

-- crm.assign_lead(lead_id): managers and admins re-run the rules for a lead
-- they may change; the result is logged with the caller and previous owner.
UPDATE crm.assignment_queue_member SET active = true WHERE queue = 'inbound';
SET ROLE regress_as_admin;
SELECT crm.assign_lead((SELECT id FROM crm.lead WHERE name = 'Web nobody')) AS new_owner;
-- no rule matches this one, and there is no default owner: unchanged, not logged
SELECT crm.assign_lead((SELECT id FROM crm.lead WHERE name = 'Captured, no rules')) AS unchanged;
RESET ROLE;
SELECT l.name, a.assigned_by, a.rule_id IS NOT NULL AS by_rule, a.queue, a.owner, a.previous_owner
  FROM crm.lead_assignment AS a JOIN crm.lead AS l ON l.id = a.lead_id
 WHERE l.name IN ('Web nobody', 'Captured, no rules');
-- a manager: its team's lead (rep1's; the referral rule gives it to rep2,
-- outside the team: the rules are the admins') ...
SELECT id AS referred_id FROM crm.lead WHERE name = 'Referred' \gset
SET ROLE regress_as_mgr;
SELECT crm.assign_lead((SELECT id FROM crm.lead WHERE name = 'Referred, mine')) AS new_owner;
-- ... not a lead outside its team (ZC001, as for a missing one)
SELECT crm.assign_lead(:referred_id);
SELECT crm.assign_lead(-1);
SELECT crm.assign_lead(NULL);
RESET ROLE;
-- reps may not (42501); a converted lead keeps its owner (ZC002)
SET ROLE regress_as_rep1;
SELECT crm.assign_lead((SELECT id FROM crm.lead WHERE name = 'Referred, mine'));
RESET ROLE;
SELECT crm.convert_lead((SELECT id FROM crm.lead WHERE name = 'Web 1')) IS NOT NULL AS converted;
SELECT crm.assign_lead((SELECT id FROM crm.lead WHERE name = 'Web 1'));

-- The queue's counts, and an invariant check (test/invariants.sql has the
-- same): no member above capacity.
SELECT member, active, max_open_leads, last_assigned IS NOT NULL AS has_position
  FROM crm.assignment_queue_member ORDER BY member;
