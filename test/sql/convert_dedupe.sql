-- convert_dedupe: conversion reuses an existing account (same company key or
-- same web domain) and contact (same e-mail, any case) instead of creating
-- duplicates; a reused record only gets its empty fields filled.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;

INSERT INTO crm.account (name, website, industry) VALUES ('Globex Corporation', 'https://www.globex.example', NULL);
INSERT INTO crm.account (name) VALUES ('Globex Europe');
INSERT INTO crm.contact (name, email, account_id) VALUES ('Hank Scorpio', 'Hank@Globex.example', 1);

-- Company spelled differently (case, punctuation, legal form): same account.
INSERT INTO crm.lead (name, company, email, industry, phone) VALUES
    ('Frank Grimes', 'GLOBEX corp.', 'frank@globex.example', 'Energy', '+1 555 0101');
SELECT account_id, account_created, contact_created FROM crm.convert_lead(1);

-- Only empty fields were filled: industry and phone were empty, so they are
-- taken from the lead; name and website stay as they were.
SELECT name, website, industry, phone FROM crm.account WHERE id = 1;

-- Different name, same web domain: same account.
INSERT INTO crm.lead (name, company, website) VALUES ('Mindy', 'Globex Energy Division', 'http://globex.example/energy');
SELECT account_id, account_created FROM crm.convert_lead(2);

-- Same e-mail in another case: the existing contact is reused, not duplicated,
-- and its filled fields are not overwritten (name and e-mail stay).
INSERT INTO crm.lead (name, company, email, title) VALUES ('H. Scorpio', 'Globex', 'HANK@globex.EXAMPLE', 'CEO');
SELECT account_id, contact_id, account_created, contact_created FROM crm.convert_lead(3);
SELECT id, name, email, title FROM crm.contact WHERE id = 1;
SELECT count(*) AS contacts_with_that_email FROM crm.contact WHERE lower(email) = 'hank@globex.example';

-- A reused contact whose primary account is another one is linked to the
-- lead's account through crm.account_contact; its primary account stays.
INSERT INTO crm.account (name) VALUES ('Kwik-E-Mart');
INSERT INTO crm.contact (name, email, account_id) VALUES ('Apu', 'apu@kwik.example', 3);
INSERT INTO crm.lead (name, company, email) VALUES ('Apu N.', 'Globex Corp', 'apu@kwik.example');
SELECT account_id, contact_id, contact_created FROM crm.convert_lead(4);
SELECT c.account_id AS primary_account, ac.account_id AS linked_account
  FROM crm.contact c JOIN crm.account_contact ac ON ac.contact_id = c.id WHERE c.email = 'apu@kwik.example';

-- Among several matches the one matching both company and domain wins, then
-- a company match, then the oldest.
INSERT INTO crm.account (name, website) VALUES ('Initech', NULL), ('Initech LLC', 'initech.example');
INSERT INTO crm.lead (name, company, website) VALUES ('Peter', 'Initech', 'https://initech.example');
SELECT account_id, account_created FROM crm.convert_lead(5);
SELECT a.name AS chosen FROM crm.lead l JOIN crm.account a ON a.id = l.account_id WHERE l.id = 5;

-- A company that matches nothing gets a new account; so does a lead whose
-- e-mail matches no contact.
INSERT INTO crm.lead (name, company, email) VALUES ('Homer', 'Springfield Nuclear', 'homer@snpp.example');
SELECT account_created, contact_created FROM crm.convert_lead(6);

-- Leads with the same company converted one after the other share the account.
INSERT INTO crm.lead (name, company) VALUES ('Lenny', 'Springfield Nuclear, Inc.'), ('Carl', 'springfield   nuclear');
SELECT lead_id, account_id, account_created FROM crm.convert_lead(7);
SELECT lead_id, account_id, account_created FROM crm.convert_lead(8);

-- No conversion duplicated an account (the two Initech accounts were entered by hand).
SELECT crm.company_match_key(name) AS key, count(*) FROM crm.account GROUP BY 1 HAVING count(*) > 1;
SELECT id, name FROM crm.account ORDER BY id;

-- No web site on the lead: the domain of its e-mail counts as the company's
-- web domain ...
INSERT INTO crm.lead (name, company, email) VALUES ('Sales Desk', 'Globex Sales Office', 'sales@GLOBEX.example');
SELECT account_id, account_created FROM crm.convert_lead(9);
-- ... unless it is a public mail provider's, which says nothing about the company.
INSERT INTO crm.account (name, website) VALUES ('Google', 'gmail.com');
INSERT INTO crm.lead (name, company, email) VALUES ('Joe Private', 'Joe''s Garage', 'joe@gmail.com');
SELECT account_created FROM crm.convert_lead(10);

-- Private customers (no company) are never matched by name: two people
-- called Maria Garcia stay two accounts.
INSERT INTO crm.lead (name, email) VALUES ('Maria Garcia', 'maria.g@gmail.com'), ('Maria Garcia', 'mgarcia@yahoo.com');
SELECT l.id, c.account_created FROM crm.lead l CROSS JOIN LATERAL crm.convert_lead(l.id) c
 WHERE l.name = 'Maria Garcia' ORDER BY l.id;
-- Pages on shared platforms say nothing about the company: two businesses
-- with Facebook pages stay two accounts.
INSERT INTO crm.lead (name, company, website) VALUES
    ('Joe', 'Joe''s Pizza', 'https://facebook.com/joespizza'),
    ('Ann', 'Ann''s Bakery', 'https://www.facebook.com/annsbakery');
SELECT l.name, c.account_created FROM crm.lead l CROSS JOIN LATERAL crm.convert_lead(l.id) c
 WHERE l.website LIKE '%facebook%' ORDER BY l.id;
