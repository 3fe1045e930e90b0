-- convert_attach: crm.convert_lead(..., opportunity_id => n) attaches the
-- lead to an existing opportunity instead of creating one.  The caller must
-- be able to update the opportunity; it must be on the conversion's
-- account (without account_id the opportunity's account is used); the
-- opportunity gets the lead as source lead, the contact and the lead's
-- campaign where it has none.  opportunity_id cannot be combined with
-- create_opportunity => false or opportunity_name (22023).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_attach_rep, regress_attach_other;
RESET client_min_messages;
CREATE ROLE regress_attach_rep IN ROLE crm_sales;
CREATE ROLE regress_attach_other IN ROLE crm_sales;
\set VERBOSITY default

INSERT INTO crm.campaign (name) VALUES ('Fair');                                                -- 1
INSERT INTO crm.account (name, owner) VALUES ('Globex', 'regress_attach_rep'),                  -- 1
                                             ('Initech', 'regress_attach_rep'),                 -- 2
                                             ('Hooli', 'regress_attach_other');                 -- 3
INSERT INTO crm.contact (name, email, account_id, owner) VALUES
    ('Peter', 'peter@initech.example', 2, 'regress_attach_rep');                                -- 1
INSERT INTO crm.opportunity (name, account_id, owner) VALUES
    ('Globex rollout', 1, 'regress_attach_rep'),                                                -- 1
    ('Hooli deal', 3, 'regress_attach_other'),                                                  -- 2
    ('Frozen deal', 1, 'regress_attach_rep');                                                   -- 3
INSERT INTO crm.lead (name, company, email, owner, campaign_id) VALUES
    ('Hank', 'Globex Corp', 'hank@globex.example', 'regress_attach_rep', 1),                    -- 1
    ('Mona', 'Globex', 'mona@globex.example', 'regress_attach_rep', NULL),                      -- 2
    ('Lou', 'Initech', 'lou@initech.example', 'regress_attach_rep', NULL);                      -- 3
INSERT INTO crm.activity (type, subject, lead_id, owner) VALUES ('task', 'Demo for Hank', 1, 'regress_attach_rep');  -- 1
-- this rep may not update the Frozen deal
CREATE POLICY regress_frozen ON crm.opportunity AS RESTRICTIVE FOR UPDATE TO regress_attach_rep
    USING (name OPERATOR(pg_catalog.<>) 'Frozen deal');

SET ROLE regress_attach_rep;
-- Refused combinations, and opportunities the rep cannot use.
SELECT crm.convert_lead(1, opportunity_id => 1, create_opportunity => false);
SELECT crm.convert_lead(1, opportunity_id => 1, opportunity_name => 'Other name');
SELECT crm.convert_lead(1, opportunity_id => 99);
SELECT crm.convert_lead(1, opportunity_id => 2);   -- another rep's: not visible
SELECT crm.convert_lead(1, opportunity_id => 3);   -- visible, not updatable
SELECT crm.convert_lead(1, account_id => 2, opportunity_id => 1);   -- not on that account
SELECT crm.convert_lead(1, contact_id => 1, opportunity_id => 1);   -- contact not on its account

-- Attached: the opportunity's account is used (no search), the opportunity
-- gets lead, contact and campaign, and the open activity moves to it.
SELECT account_id, contact_id, opportunity_id, account_created, contact_created, opportunity_created
  FROM crm.convert_lead(1, opportunity_id => 1);
SELECT id, name, account_id, contact_id, lead_id, campaign_id FROM crm.opportunity WHERE id = 1;
SELECT status, account_id, opportunity_id FROM crm.lead WHERE id = 1;
SELECT subject, lead_id, opportunity_id FROM crm.activity WHERE id = 1;

-- A second lead attached to the same deal: the deal keeps its first source
-- lead and contact; the lead points at the deal.
SELECT account_id, opportunity_id, opportunity_created FROM crm.convert_lead(2, account_id => 1, opportunity_id => 1);
SELECT id, lead_id, contact_id FROM crm.opportunity WHERE id = 1;
SELECT id, status, opportunity_id FROM crm.lead WHERE id = 2;
RESET ROLE;

-- The opportunity cannot be deleted while a converted lead points at it.
DELETE FROM crm.opportunity WHERE id = 1;
SELECT * FROM crm.verify_aggregates();
