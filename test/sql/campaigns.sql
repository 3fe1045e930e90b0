-- campaigns: campaigns with members and a parent (no cycles), attribution of
-- leads and opportunities (carried over by conversion), and per-campaign
-- figures with ROI = (won amount - actual cost) / actual cost.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;
\set VERBOSITY terse

INSERT INTO crm.campaign (name, type, status, starts_on, ends_on, budgeted_cost, actual_cost, expected_revenue)
VALUES ('Spring 2027', 'Email', 'In Progress', '2027-03-01', '2027-05-31', 5000, 4000, 50000),
       ('Spring webinar', 'Webinar', 'Planned', '2027-04-01', '2027-04-01', 500, 0, 5000),
       ('Trade show', 'Event', 'Completed', NULL, NULL, 0, 10000, 0);
UPDATE crm.campaign SET parent_id = 1 WHERE name = 'Spring webinar';

-- Bad data: costs >= 0, dates in order, known types and statuses.
INSERT INTO crm.campaign (name, actual_cost) VALUES ('Bad', -1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.campaign (name, starts_on, ends_on) VALUES ('Bad', '2027-02-01', '2027-01-01');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.campaign (name, type) VALUES ('Bad', 'Skywriting');
\echo :LAST_ERROR_SQLSTATE
-- No cycles in the hierarchy (ZC501), not even through a grandchild.
UPDATE crm.campaign SET parent_id = id WHERE name = 'Spring 2027';
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.campaign SET parent_id = 2 WHERE name = 'Spring 2027';
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.campaign (name, parent_id) VALUES ('Webinar follow-up', 2);
UPDATE crm.campaign SET parent_id = (SELECT id FROM crm.campaign WHERE name = 'Webinar follow-up') WHERE name = 'Spring 2027';
\echo :LAST_ERROR_SQLSTATE

-- Members: a lead or a contact, once per campaign; the first response is stamped.
INSERT INTO crm.account (name) VALUES ('Acme');
INSERT INTO crm.contact (name, account_id) VALUES ('Wile E.', 1);
INSERT INTO crm.lead (name, company, email, campaign_id, status) VALUES
    ('Bugs', 'Carrot Co', 'bugs@carrot.example', 1, 'In Transaction'),
    ('Elmer', 'Hunting Ltd', 'elmer@hunt.example', 1, 'New Lead'),
    ('Taz', 'Tasmania Inc', 'taz@tas.example', 3, 'Completed');
INSERT INTO crm.campaign_member (campaign_id, lead_id, status) VALUES (1, 1, 'Sent'), (1, 2, 'Sent');
INSERT INTO crm.campaign_member (campaign_id, contact_id, status) VALUES (1, 1, 'Sent');
INSERT INTO crm.campaign_member (campaign_id, lead_id) VALUES (1, 1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.campaign_member (campaign_id, lead_id, contact_id) VALUES (2, 1, 1);
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.campaign_member SET status = 'Responded', responded = true WHERE lead_id = 1;
SELECT lead_id, contact_id, status, responded, first_responded_at IS NOT NULL AS stamped FROM crm.campaign_member ORDER BY id;

-- Conversion carries the lead's campaign to the opportunity.
SELECT opportunity_id FROM crm.convert_lead(1);
SELECT opportunity_id FROM crm.convert_lead(3);
SELECT o.name, o.campaign_id FROM crm.opportunity o ORDER BY o.id;
-- One deal won, the other lost.
UPDATE crm.opportunity SET amount = 12000, stage = 'Successful' WHERE lead_id = 1;
UPDATE crm.opportunity SET amount = 3000, stage = 'Failed', loss_reason_code = 'no_budget', loss_reason = 'budget' WHERE lead_id = 3;

-- Per campaign: leads, conversions, opportunities, wins, amounts, ROI.
SELECT name, leads, converted_leads, opportunities, won_opportunities, opportunity_amount, won_amount, actual_cost, roi
  FROM crm.campaign_performance ORDER BY campaign_id;
-- Deleting a campaign keeps the leads and opportunities, unattributed.
DELETE FROM crm.campaign WHERE name = 'Trade show';
SELECT name, campaign_id FROM crm.lead WHERE name = 'Taz';

-- Rows of one INSERT that name each other as parents are refused too.
INSERT INTO crm.campaign (id, name, parent_id) OVERRIDING SYSTEM VALUE VALUES (1001, 'A', 1002), (1002, 'B', 1001);
\echo :LAST_ERROR_SQLSTATE

-- The cycle check walks every ancestor, however deep: a chain of 10,002
-- campaigns (each the parent of the one before, inserted child first so each
-- row's check is one step) cannot be closed into a cycle at its far end.
INSERT INTO crm.campaign (id, name, parent_id) OVERRIDING SYSTEM VALUE
SELECT g, 'Chain ' || g, NULLIF(g - 1, 100000)
  FROM generate_series(110002, 100001, -1) AS g;
SELECT count(*) AS chain FROM crm.campaign WHERE name LIKE 'Chain %';
UPDATE crm.campaign SET parent_id = 110002 WHERE id = 100001;
\echo :SQLSTATE
SELECT parent_id AS root_parent FROM crm.campaign WHERE id = 100001;
-- Re-parenting inside the chain without a cycle is still allowed.
UPDATE crm.campaign SET parent_id = 100001 WHERE id = 110002;
SELECT parent_id FROM crm.campaign WHERE id = 110002;
