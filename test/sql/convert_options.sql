-- convert_options: the named options of crm.convert_lead() and their
-- defaults: account_id [match or create], contact_id [match or create],
-- create_opportunity [true], opportunity_name [derived], owner [the lead's
-- owner], dedupe [true].
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;

INSERT INTO crm.account (name) VALUES ('Stark Industries'), ('Wayne Enterprises');
INSERT INTO crm.contact (name, email, account_id) VALUES ('Pepper Potts', 'pepper@stark.example', 1);
INSERT INTO crm.contact (name, account_id) VALUES ('Lucius Fox', 2);
INSERT INTO crm.account_contact (account_id, contact_id, role) VALUES (1, 2, 'Supplier');
INSERT INTO crm.lead (name, company, email, phone) VALUES
    ('Tony', 'Stark Ind.', 'tony@stark.example', '+1 212 555 0100'),     -- 1
    ('Bruce', 'Some Other Name', 'bruce@wayne.example', NULL),           -- 2
    ('Lucius', 'Wayne', NULL, '+1 212 555 0199'),                        -- 3
    ('Happy', 'Stark Industries', 'pepper@stark.example', NULL),         -- 4
    ('Rhodey', 'Stark Industries', 'rhodey@stark.example', NULL),        -- 5
    ('Natasha', 'Red Room', 'nat@redroom.example', NULL),                -- 6
    ('Clint', 'Stark Industries', 'pepper@stark.example', NULL);         -- 7

-- account_id: convert into a chosen account, whatever the company says.
SELECT account_id, account_created FROM crm.convert_lead(2, account_id => 2);

-- contact_id: use a chosen contact; without account_id the contact's primary
-- account is used; the contact's empty phone is filled from the lead.
SELECT account_id, contact_id, account_created, contact_created FROM crm.convert_lead(3, contact_id => 2);
SELECT phone FROM crm.contact WHERE id = 2;

-- account_id and contact_id together: the contact must be on that account,
-- as primary account or through crm.account_contact (Lucius is linked to Stark).
SELECT account_id, contact_id FROM crm.convert_lead(1, account_id => 1, contact_id => 2);

-- create_opportunity => false: account and contact only.
SELECT opportunity_id, opportunity_created FROM crm.convert_lead(5, create_opportunity => false);
SELECT status, opportunity_id FROM crm.lead WHERE id = 5;

-- owner: the new records go to the named role; converted_by stays the caller.
SELECT account_created FROM crm.convert_lead(6, owner => 'crm_sales');
SELECT (SELECT owner FROM crm.account WHERE name = 'Red Room') AS account_owner,
       (SELECT owner FROM crm.contact WHERE name = 'Natasha') AS contact_owner,
       (SELECT owner FROM crm.opportunity WHERE lead_id = 6) AS opportunity_owner,
       (SELECT converted_by = current_user::regrole FROM crm.lead WHERE id = 6) AS converted_by_me;
-- owner as a number that is no role is refused.
SELECT * FROM crm.convert_lead(7, owner => 4294967295::oid::regrole);
\echo :LAST_ERROR_SQLSTATE

-- dedupe => false: always create, even when an account and a contact match.
SELECT account_created, contact_created FROM crm.convert_lead(4, dedupe => false);
SELECT count(*) AS stark_accounts FROM crm.account WHERE crm.company_match_key(name) = 'starkindustries';
SELECT count(*) AS pepper_contacts FROM crm.contact WHERE email = 'pepper@stark.example';

-- The same defaults through positional and named notation.
SELECT account_created, contact_created, opportunity_created
  FROM crm.convert_lead(7, NULL, NULL, true, NULL, NULL, true);
