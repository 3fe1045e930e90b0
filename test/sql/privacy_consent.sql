-- privacy_consent: consent on leads and contacts (opt-outs, lawful basis),
-- carried to the contact by conversion (an opt-out wins on a reused
-- contact), crm.contactable for campaign tools, and the WARNING and mark
-- when an opted-out person is added to a campaign.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_consent_rep;
DROP ROLE IF EXISTS regress_consent_other;
CREATE ROLE regress_consent_rep IN ROLE crm_sales;
CREATE ROLE regress_consent_other IN ROLE crm_sales;
RESET client_min_messages;
\set VERBOSITY terse

-- Defaults: nobody opted out, basis unknown.
INSERT INTO crm.lead (name, company, email, phone) VALUES ('Ann Plain', 'Plainco', 'ann@plain.example', '+1 555 0101');
SELECT email_opt_out, phone_opt_out, do_not_contact, consent_basis, consent_at, consent_source
  FROM crm.lead WHERE name = 'Ann Plain';

-- The basis is one of four; a time needs a basis; a source is not blank.
INSERT INTO crm.lead (name, consent_basis) VALUES ('Bad', 'because');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.lead (name, consent_at) VALUES ('Bad', now());
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.contact (name, consent_basis, consent_source) VALUES ('Bad', 'consent', '  ');
\echo :LAST_ERROR_SQLSTATE
-- (a basis without a time is fine: recorded before times were kept)
INSERT INTO crm.contact (name, consent_basis) VALUES ('Old', 'legal obligation');
DELETE FROM crm.contact WHERE name = 'Old';

-- Conversion carries consent to a new contact.
INSERT INTO crm.lead (name, company, email, phone, status, email_opt_out, consent_basis, consent_at, consent_source)
VALUES ('Bea Form', 'Formco', 'bea@form.example', '+1 555 0102', 'Processing', true,
        'consent', '2027-01-05 10:00+00', 'web form /trial');
SELECT contact_created FROM crm.convert_lead((SELECT id FROM crm.lead WHERE name = 'Bea Form'));
SELECT name, email_opt_out, phone_opt_out, do_not_contact, consent_basis, consent_at, consent_source
  FROM crm.contact WHERE name = 'Bea Form';

-- A reused contact keeps the most restrictive values: the lead's opt-out is
-- added, the contact's own opt-out and basis stay.
INSERT INTO crm.account (name) VALUES ('Carco');
INSERT INTO crm.contact (name, email, account_id, phone_opt_out, consent_basis)
VALUES ('Cal Car', 'cal@car.example', (SELECT id FROM crm.account WHERE name = 'Carco'), true, 'contract');
INSERT INTO crm.lead (name, company, email, status, do_not_contact, consent_basis)
VALUES ('Cal Car', 'Carco', 'cal@car.example', 'Processing', true, 'consent');
SELECT contact_created FROM crm.convert_lead((SELECT id FROM crm.lead WHERE name = 'Cal Car'));
SELECT name, email_opt_out, phone_opt_out, do_not_contact, consent_basis
  FROM crm.contact WHERE email = 'cal@car.example';

-- ... also when the caller may not change the reused contact (another
-- rep's contact, linked to the caller's account): the opt-out still lands,
-- the basis does not.
INSERT INTO crm.account (name, owner) VALUES ('Dunco', 'regress_consent_rep');
INSERT INTO crm.contact (name, email, owner) VALUES ('Dee Dun', 'dee@dun.example', 'regress_consent_other');
INSERT INTO crm.account_contact (account_id, contact_id, owner)
SELECT a.id, c.id, 'regress_consent_rep' FROM crm.account a, crm.contact c WHERE a.name = 'Dunco' AND c.name = 'Dee Dun';
SET ROLE regress_consent_rep;
INSERT INTO crm.lead (name, company, email, status, email_opt_out, consent_basis)
VALUES ('Dee Dun', 'Dunco', 'dee@dun.example', 'Processing', true, 'legitimate interest');
SELECT contact_created FROM crm.convert_lead((SELECT id FROM crm.lead WHERE name = 'Dee Dun'),
                                             account_id => (SELECT id FROM crm.account WHERE name = 'Dunco'));
RESET ROLE;
SELECT name, email_opt_out, consent_basis, owner FROM crm.contact WHERE email = 'dee@dun.example' ORDER BY id;

INSERT INTO crm.lead (name, email, owner) VALUES ('Rae Rep', 'rae@rep.example', 'regress_consent_rep');
-- crm.contactable: not converted leads and contacts, not do-not-contact,
-- with a channel they did not opt out of (an opted-out channel is NULL).
SELECT record_type, name, email, phone, consent_basis FROM crm.contactable ORDER BY record_type, name;
-- Row-level security applies: a rep sees only its own people.
SET ROLE regress_consent_rep;
SELECT record_type, name FROM crm.contactable ORDER BY record_type, name;
RESET ROLE;
-- Analysts do not read it (personal data).
SET ROLE crm_analyst;
SELECT count(*) FROM crm.contactable;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- Campaigns: adding an opted-out person warns and marks the membership.
INSERT INTO crm.campaign (name, type) VALUES ('Newsletter', 'Email'), ('Calls', 'Telemarketing'), ('Fair', 'Event');
INSERT INTO crm.campaign_member (campaign_id, contact_id)
SELECT k.id, c.id FROM crm.campaign k, crm.contact c
 WHERE c.name IN ('Bea Form', 'Cal Car') ORDER BY k.id, c.id;
INSERT INTO crm.campaign_member (campaign_id, lead_id)
SELECT k.id, l.id FROM crm.campaign k, crm.lead l WHERE l.name = 'Ann Plain' AND k.name = 'Newsletter';
SELECT k.name AS campaign, coalesce(c.name, l.name) AS person, m.opted_out
  FROM crm.campaign_member m JOIN crm.campaign k ON k.id = m.campaign_id
  LEFT JOIN crm.contact c ON c.id = m.contact_id LEFT JOIN crm.lead l ON l.id = m.lead_id
 ORDER BY k.id, person;
-- The mark is the database's: it cannot be cleared by hand, and stays when
-- other fields change.
UPDATE crm.campaign_member SET opted_out = false, status = 'Sent' WHERE opted_out;
SELECT count(*) AS still_marked FROM crm.campaign_member WHERE opted_out;
-- A later opt-out does not rewrite old memberships, but crm.contactable no
-- longer lists the person.
UPDATE crm.lead SET email_opt_out = true WHERE name = 'Ann Plain';
SELECT opted_out FROM crm.campaign_member WHERE lead_id = (SELECT id FROM crm.lead WHERE name = 'Ann Plain');
SELECT name, email, phone FROM crm.contactable WHERE name = 'Ann Plain';
