-- convert_many: crm.convert_lead() converts many leads in one statement, as
-- SELECT crm.convert_lead(id) FROM crm.lead WHERE ...; each call sees the
-- records the earlier calls created, so leads of one company share one account.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;

INSERT INTO crm.lead (name, company, email, status) VALUES
    ('Leia', 'Rebel Alliance', 'leia@rebels.example', 'In Transaction'),
    ('Han', 'Rebel Alliance Ltd', 'han@rebels.example', 'In Transaction'),
    ('Luke', 'rebel-alliance', 'luke@rebels.example', 'Completed'),
    ('Lando', 'Cloud City Mining', 'lando@cloud.example', 'Completed'),
    ('Jabba', 'Hutt Cartel', 'jabba@hutt.example', 'New Lead'),
    ('Leia again', 'Rebel Alliance', 'LEIA@rebels.example', 'Completed');

-- The composite result, one row per lead.
SELECT crm.convert_lead(id) FROM crm.lead WHERE status IN ('In Transaction', 'Completed') ORDER BY id;

-- Expanded into columns: call it in FROM (LATERAL), once per lead.  (Writing
-- (crm.convert_lead(id)).* would call it once per result column.)
SELECT c.* FROM crm.lead l CROSS JOIN LATERAL crm.convert_lead(l.id) c WHERE l.id = 5;

-- Four Rebel Alliance leads, one account; the two Leia leads share a contact.
SELECT a.name, count(l.*) AS leads, count(DISTINCT l.contact_id) AS contacts
  FROM crm.account a JOIN crm.lead l ON l.account_id = a.id GROUP BY a.name ORDER BY a.name;
SELECT count(*) AS opportunities FROM crm.opportunity;

-- One failing lead fails the statement, and every conversion in it is undone.
INSERT INTO crm.lead (name, company, status) VALUES ('Vader', 'Empire', 'Processing'), ('Palpatine', 'Empire', 'Not Qualified');
SELECT crm.convert_lead(id) FROM crm.lead WHERE company = 'Empire' ORDER BY id;
\echo :LAST_ERROR_SQLSTATE
SELECT name, status FROM crm.lead WHERE company = 'Empire' ORDER BY id;
SELECT count(*) AS empire_accounts FROM crm.account WHERE name = 'Empire';
