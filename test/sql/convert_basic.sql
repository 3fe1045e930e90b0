-- convert_basic: crm.convert_lead() turns a lead into account + contact +
-- opportunity with the documented field mapping, links all of them, and
-- marks the lead Converted, in one step.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;

INSERT INTO crm.lead (name, company, title, email, phone, website, industry, city, country, source, status, remarks)
VALUES ('Ada Lovelace', 'Analytical Engines Ltd', 'CTO', 'ada@engines.example', '+44 20 7946 0000',
        'https://engines.example', 'Computing', 'London', 'UK', 'referral', 'In Transaction', 'wants a demo');

-- The result: one row with the new ids and what was created.
SELECT * FROM crm.convert_lead(1);

-- company -> account name; industry, phone, website, city, country -> account.
SELECT id, name, industry, phone, website, city, country FROM crm.account;
-- name, title, email, phone -> contact, on the new account.
SELECT id, name, title, email, phone, account_id FROM crm.contact;
-- The opportunity: named "<company> - <lead name>", first open stage with its
-- probability, amount 0, linked to account, contact and lead.
SELECT id, name, account_id, contact_id, lead_id, stage, probability, amount FROM crm.opportunity;

-- The lead is Converted, points to all three, and says when and by whom.
SELECT status, account_id, contact_id, opportunity_id,
       converted_at > now() - interval '1 hour' AS converted_recently, converted_by = current_user::regrole AS converted_by_me
  FROM crm.lead;

-- New records are owned by the lead's owner.
SELECT (SELECT owner FROM crm.account) = (SELECT owner FROM crm.lead) AS same_owner;

-- The conversion shows in the lead's status history.
SELECT from_status, to_status FROM crm.lead_status_history WHERE lead_id = 1 ORDER BY id;

-- A lead without company becomes an account named after the person
-- (a private customer), and its opportunity is named after the person.
INSERT INTO crm.lead (name, email) VALUES ('Grace Hopper', 'grace@navy.example');
SELECT account_created, contact_created, opportunity_created FROM crm.convert_lead(2);
SELECT a.name AS account, o.name AS opportunity
  FROM crm.lead l JOIN crm.account a ON a.id = l.account_id JOIN crm.opportunity o ON o.id = l.opportunity_id
 WHERE l.id = 2;

-- Atomic: a conversion that fails half way leaves nothing behind.  Here the
-- opportunity name is blank, which its CHECK rejects after the account and
-- the contact were already inserted.
INSERT INTO crm.lead (name, company, email) VALUES ('Alan Turing', 'Bletchley Park', 'alan@bp.example');
\set VERBOSITY terse
SELECT * FROM crm.convert_lead(3, opportunity_name => '  ');
SELECT (SELECT count(*) FROM crm.account WHERE name = 'Bletchley Park') AS accounts,
       (SELECT count(*) FROM crm.contact WHERE name = 'Alan Turing') AS contacts,
       (SELECT status FROM crm.lead WHERE id = 3) AS status;
-- Also inside a caller's savepoint: the failure is undone with it.
BEGIN;
SAVEPOINT s;
SELECT * FROM crm.convert_lead(3, opportunity_name => '');
ROLLBACK TO SAVEPOINT s;
\set VERBOSITY default
SELECT lead_id, account_created FROM crm.convert_lead(3);
COMMIT;
SELECT status FROM crm.lead WHERE id = 3;

-- The opportunity_name can be given.
INSERT INTO crm.lead (name, company) VALUES ('Katherine Johnson', 'NASA');
SELECT opportunity_id FROM crm.convert_lead(4, opportunity_name => 'NASA orbital mechanics');
SELECT o.name FROM crm.opportunity o WHERE o.lead_id = 4;
