-- convert_carry: what hangs off a lead moves with its conversion.  Open
-- activities go to the opportunity the conversion creates (or attaches to),
-- else to the contact; done ones stay on the lead.  Campaign memberships
-- become memberships of the contact; one the contact already has is folded
-- (the further status wins, responded when either did).  Rows the converter
-- cannot see move too (as the extension owner), and keep their owner.
-- Campaign reports and the aggregates stay right.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_carry_rep, regress_carry_other;
RESET client_min_messages;
CREATE ROLE regress_carry_rep IN ROLE crm_sales;
CREATE ROLE regress_carry_other IN ROLE crm_sales;

INSERT INTO crm.campaign (name, type) VALUES ('Spring mail', 'Email'), ('Fair', 'Event');   -- 1, 2
INSERT INTO crm.lead (name, company, email, owner, campaign_id) VALUES
    ('Ann Lee', 'Lee Tools', 'ann@leetools.example', 'regress_carry_rep', 1),   -- 1
    ('Bo Kim', 'Kim Bakery', 'bo@kimbakery.example', 'regress_carry_rep', NULL); -- 2
INSERT INTO crm.activity (type, subject, lead_id, due_at, status, owner) VALUES
    ('task', 'Send price list', 1, now() + interval '1 day', 'Planned', 'regress_carry_rep'),   -- 1
    ('task', 'First call done', 1, now() - interval '1 day', 'Completed', 'regress_carry_rep'), -- 2
    ('task', 'Cancelled visit', 1, NULL, 'Cancelled', 'regress_carry_rep'),                     -- 3
    ('task', 'Other''s follow-up', 1, NULL, 'In Progress', 'regress_carry_other'),             -- 4: hidden from the rep
    ('task', 'Bake samples', 2, NULL, 'Planned', 'regress_carry_rep');                          -- 5
INSERT INTO crm.campaign_member (campaign_id, lead_id, status, responded, owner) VALUES
    (1, 1, 'Responded', true, 'regress_carry_rep'),   -- 1
    (2, 1, 'Sent', false, 'regress_carry_rep'),       -- 2
    (1, 2, 'Sent', false, 'regress_carry_rep');       -- 3

-- The rep converts lead 1 with a new opportunity: the open activities (also
-- the other owner's, which the rep cannot see) move to the opportunity,
-- the done ones stay; both memberships move to the new contact.
SET ROLE regress_carry_rep;
SELECT account_id, contact_id, opportunity_id FROM crm.convert_lead(1);
RESET ROLE;
SELECT id, subject, status, lead_id, contact_id, opportunity_id, owner FROM crm.activity ORDER BY id;
SELECT id, campaign_id, lead_id, contact_id, status, responded FROM crm.campaign_member ORDER BY id;

-- Without an opportunity, the open activities go to the contact.  The
-- contact is reused (same e-mail) and already a member of campaign 1 with
-- status Planned: the lead's membership (Sent) is folded into it.
INSERT INTO crm.contact (name, email, owner) VALUES ('Bo Kim', 'bo@kimbakery.example', 'regress_carry_rep');  -- 2
INSERT INTO crm.campaign_member (campaign_id, contact_id, status, owner) VALUES (1, 2, 'Planned', 'regress_carry_rep');  -- 4
SET ROLE regress_carry_rep;
SELECT contact_id, contact_created, opportunity_id FROM crm.convert_lead(2, create_opportunity => false);
RESET ROLE;
SELECT id, subject, lead_id, contact_id, opportunity_id FROM crm.activity WHERE id = 5;
SELECT id, campaign_id, lead_id, contact_id, status, responded FROM crm.campaign_member ORDER BY id;

-- The fold keeps the further status: Responded over Sent, and responded
-- stays true.
INSERT INTO crm.lead (name, email, owner) VALUES ('Cy Orr', 'cy@orr.example', 'regress_carry_rep');  -- 3
INSERT INTO crm.contact (name, email, owner) VALUES ('Cy Orr', 'cy@orr.example', 'regress_carry_rep');  -- 3
INSERT INTO crm.campaign_member (campaign_id, lead_id, status, responded, owner) VALUES (2, 3, 'Responded', true, 'regress_carry_rep');
INSERT INTO crm.campaign_member (campaign_id, contact_id, status, owner) VALUES (2, 3, 'Sent', 'regress_carry_rep');
SET ROLE regress_carry_rep;
SELECT contact_id, contact_created FROM crm.convert_lead(3, create_opportunity => false);
RESET ROLE;
SELECT campaign_id, lead_id, contact_id, status, responded, first_responded_at IS NOT NULL AS first_responded
  FROM crm.campaign_member WHERE contact_id = 3 OR lead_id = 3;

-- Privacy marks move with the membership: the lead had opted out of
-- e-mail, so its membership of the Email campaign is opted_out, and stays so
-- on the contact (which inherits the opt-out; the move repeats the WARNING).
INSERT INTO crm.lead (name, email, email_opt_out, owner) VALUES ('Di Fox', 'di@fox.example', true, 'regress_carry_rep');  -- 4
INSERT INTO crm.campaign_member (campaign_id, lead_id, owner) VALUES (1, 4, 'regress_carry_rep');
SET ROLE regress_carry_rep;
SELECT contact_id, contact_created FROM crm.convert_lead(4, create_opportunity => false);
RESET ROLE;
SELECT m.campaign_id, m.lead_id, m.contact_id, m.opted_out, c.email_opt_out
  FROM crm.campaign_member AS m JOIN crm.contact AS c ON c.id = m.contact_id
 WHERE c.email = 'di@fox.example';

-- Campaign reports count leads by the lead's campaign, so they are unchanged;
-- the aggregates agree with the base tables.
SELECT name, leads, converted_leads, opportunities FROM crm.campaign_performance ORDER BY campaign_id;
SELECT * FROM crm.verify_aggregates();
