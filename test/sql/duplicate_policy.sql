-- duplicate_policy: the duplicate check on entry (crm.settings
-- duplicate_policy_lead / _account / _contact): allow, warn (queue +
-- WARNING ZC710), block (ZC701 on a key rule; similar names only queued);
-- the candidate queue's row-level security, dismissing a pair, and open
-- pairs removed with their records.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_pol_alice;
DROP ROLE IF EXISTS regress_pol_bob;
CREATE ROLE regress_pol_alice IN ROLE crm_sales;
CREATE ROLE regress_pol_bob IN ROLE crm_sales;
RESET client_min_messages;

-- The default is warn, for every kind.
SELECT duplicate_policy_lead, duplicate_policy_account, duplicate_policy_contact FROM crm.settings;
-- Only allow, warn and block.
\set VERBOSITY terse
UPDATE crm.settings SET duplicate_policy_lead = 'refuse';
\set VERBOSITY default

-- warn: the row is written, one WARNING per statement, the pairs queued.
SET ROLE regress_pol_alice;
INSERT INTO crm.lead (name, company, email, phone) VALUES ('Jon Smith', 'Acme', 'jon@acme.example', '+1 555 014 2000');  -- 1
INSERT INTO crm.lead (name, company, email) VALUES ('Jon Smith', 'Acme', 'JON@acme.example');          -- 2: e-mail
INSERT INTO crm.lead (name, company, phone) VALUES ('John Smith', 'ACME Inc.', '555 014 2000');         -- 3: phone, similar name
-- two rows of one statement that match each other, queued once
INSERT INTO crm.lead (name, email) VALUES ('Ann', 'ann@initech.example'), ('Ann B.', 'Ann@Initech.example');  -- 4, 5
SELECT kind, id, duplicate_kind, duplicate_of, rule, round(score::numeric, 2) AS score, status
  FROM crm.duplicate_candidate ORDER BY id, duplicate_kind, duplicate_of;
-- an UPDATE is checked for the keys it changes: a new phone
UPDATE crm.lead SET phone = '555-014-2000' WHERE id = 4;
-- an UPDATE that changes no key is not
UPDATE crm.lead SET remarks = 'called' WHERE id = 2;
RESET ROLE;

-- Bob's lead with Alice's e-mail: the WARNING names her lead only by owner.
SET ROLE regress_pol_bob;
INSERT INTO crm.lead (name, email) VALUES ('Jonathan', 'jon@acme.example');                     -- 6
-- Bob sees the pairs of his lead (row-level security of the records),
-- not Alice's.
SELECT kind, id, duplicate_kind, duplicate_of, rule FROM crm.duplicate_candidate ORDER BY id, duplicate_of;
RESET ROLE;

-- block: a key match is refused (ZC701), naming the match by id when the
-- writer sees it, else by its owner.
UPDATE crm.settings SET duplicate_policy_lead = 'block', duplicate_policy_account = 'block',
    duplicate_policy_contact = 'block';
SET ROLE regress_pol_alice;
INSERT INTO crm.lead (name, email) VALUES ('Jon', 'Jon@Acme.example');
INSERT INTO crm.lead (name, phone) VALUES ('Someone', '+1-555-014-2000');
INSERT INTO crm.lead (name, email) VALUES ('Bobs twin', 'JONATHAN@x.example'), ('Twin', 'jonathan@x.example');
RESET ROLE;
SET ROLE regress_pol_bob;
INSERT INTO crm.lead (name, email) VALUES ('Jon again', 'jon@acme.example');
RESET ROLE;
SET ROLE regress_pol_alice;
-- accounts by company key, domain and phone
INSERT INTO crm.account (name, website, phone) VALUES ('Globex, Inc.', 'https://globex.example', '+44 20 7946 0000');  -- 1
INSERT INTO crm.account (name) VALUES ('GLOBEX LLC');
INSERT INTO crm.account (name, website) VALUES ('Globex Europe', 'http://www.globex.example/eu');
INSERT INTO crm.account (name, phone) VALUES ('Other', '020 7946 0000');
-- a lead whose company is an account's
INSERT INTO crm.lead (name, company) VALUES ('Gail', 'Globex');
-- contacts by e-mail and phone, also against leads
INSERT INTO crm.contact (name, email, account_id) VALUES ('Jon Smith', 'jon@acme.example', 1);
-- an UPDATE into a duplicate key, and a COPY whose rows match each other
INSERT INTO crm.lead (name, email) VALUES ('Zed', 'zed@zed.example');
UPDATE crm.lead SET email = 'ann@initech.example' WHERE email = 'zed@zed.example';
RESET ROLE;
-- (COPY FROM is for the superuser: row-level security refuses it to users)
COPY crm.lead (name, email) FROM stdin;
Copy one	copy@copy.example
Copy two	COPY@copy.example
\.
-- An UPDATE is checked by the values it stores, not by its SET list: a
-- key set by a BEFORE trigger is checked too (here a DBA's trigger that
-- takes the e-mail from the remarks), and refused like any other.
CREATE FUNCTION public.regress_email_from_remarks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.remarks LIKE 'mail:%' THEN NEW.email := substr(NEW.remarks, 6); END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER regress_email_from_remarks BEFORE UPDATE ON crm.lead
    FOR EACH ROW EXECUTE FUNCTION public.regress_email_from_remarks();
UPDATE crm.lead SET remarks = 'mail:ann@initech.example' WHERE name = 'Zed';
UPDATE crm.lead SET remarks = 'mail:zed@zed2.example' WHERE name = 'Zed';  -- a new e-mail: fine
DROP TRIGGER regress_email_from_remarks ON crm.lead;
DROP FUNCTION public.regress_email_from_remarks();
SET ROLE regress_pol_alice;
-- similar names are only queued, never blocked
INSERT INTO crm.account (name) VALUES ('Globexx AG');                                              -- 2
SELECT kind, id, duplicate_kind, duplicate_of, rule FROM crm.duplicate_candidate WHERE kind = 'account';
RESET ROLE;

-- A conversion under block: the account and contact made from a lead are
-- not its duplicates (neither refused nor queued), nor found as such later.
INSERT INTO crm.lead (name, company, email, phone, website)
    VALUES ('Vera', 'Vandelay Industries', 'vera@vandelay.example', '+1 212 555 0199', 'vandelay.example')
    RETURNING id AS vera \gset
SELECT account_created, contact_created FROM crm.convert_lead(:vera);
SELECT count(*) AS pairs_of_vera FROM crm.duplicate_candidate
 WHERE (kind = 'lead' AND id = :vera) OR (duplicate_kind = 'lead' AND duplicate_of = :vera);
SELECT * FROM crm.find_duplicates('lead', :vera);
SELECT * FROM crm.find_duplicates('contact', (SELECT contact_id FROM crm.lead WHERE id = :vera));
-- but a second lead of that person is refused, naming the contact first
INSERT INTO crm.lead (name, email) VALUES ('Vera V.', 'VERA@vandelay.example');

-- allow: nothing is checked, nothing queued.
UPDATE crm.settings SET duplicate_policy_lead = 'allow';
INSERT INTO crm.lead (name, email) VALUES ('Jon once more', 'jon@acme.example');                   -- 8
SELECT count(*) AS pairs_of_lead_8 FROM crm.duplicate_candidate WHERE kind = 'lead' AND id = 8;

-- Dismissing: by whoever sees the pair; only open pairs.
SET ROLE regress_pol_alice;
SELECT crm.dismiss_duplicate('lead', 2, 'lead', 1);
SELECT status, resolved_by, resolved_at IS NOT NULL AS resolved FROM crm.duplicate_candidate
 WHERE kind = 'lead' AND id = 2 AND duplicate_of = 1;
\set VERBOSITY terse
SELECT crm.dismiss_duplicate('lead', 2, 'lead', 1);      -- no longer open
SELECT crm.dismiss_duplicate('lead', 6, 'lead', 1);      -- Bob's lead: not visible
SELECT crm.dismiss_duplicate('lead', 2, 'lead', 999);    -- no such pair
SELECT crm.dismiss_duplicate('deal', 2, 'lead', 1);      -- unknown kind
SELECT crm.dismiss_duplicate('lead', NULL, 'lead', 1);   -- NULL
-- users do not write the queue themselves
UPDATE crm.duplicate_candidate SET status = 'dismissed';
DELETE FROM crm.duplicate_candidate;
\set VERBOSITY default
RESET ROLE;

-- Deleting a record removes its open pairs; resolved pairs stay as history.
SELECT count(*) FILTER (WHERE status = 'open') AS open, count(*) FILTER (WHERE status <> 'open') AS resolved
  FROM crm.duplicate_candidate WHERE (kind = 'lead' AND id IN (1, 2)) OR (duplicate_kind = 'lead' AND duplicate_of IN (1, 2));
DELETE FROM crm.lead WHERE id = 1;
SELECT kind, id, duplicate_kind, duplicate_of, status FROM crm.duplicate_candidate
 WHERE (kind = 'lead' AND id = 1) OR (duplicate_kind = 'lead' AND duplicate_of = 1);
TRUNCATE crm.account CASCADE;
SELECT count(*) AS open_account_pairs FROM crm.duplicate_candidate
 WHERE status = 'open' AND (kind = 'account' OR duplicate_kind = 'account');

-- A conversion settles the lead's open pairs with the account and contact it
-- was converted into: they become 'merged' (the lead is now part of them);
-- its other pairs stay open.
UPDATE crm.settings SET duplicate_policy_lead = 'warn', duplicate_policy_account = 'warn',
                        duplicate_policy_contact = 'warn';
INSERT INTO crm.account (name) VALUES ('Initech');
INSERT INTO crm.contact (name, email) VALUES ('Peter Gibbons', 'peter@initech.example');
INSERT INTO crm.lead (name, company, email) VALUES ('Peter Gibbons', 'Initech LLC', 'peter@initech.example');
INSERT INTO crm.lead (name, company, email) VALUES ('Peter G.', 'Initech', 'peter@initech.example');
SELECT kind, duplicate_kind, rule, status FROM crm.duplicate_candidate
 WHERE kind = 'lead' AND id = (SELECT min(id) FROM crm.lead WHERE name = 'Peter Gibbons') ORDER BY 2, 3;
SELECT account_created, contact_created
  FROM crm.convert_lead((SELECT min(id) FROM crm.lead WHERE name = 'Peter Gibbons'), create_opportunity => false);
SELECT d.kind, d.duplicate_kind, d.rule, d.status, d.resolved_by IS NOT NULL AS resolved_by_set
  FROM crm.duplicate_candidate AS d
 WHERE (d.kind = 'lead' AND d.id = (SELECT min(id) FROM crm.lead WHERE name = 'Peter Gibbons'))
    OR (d.duplicate_kind = 'lead' AND d.duplicate_of = (SELECT min(id) FROM crm.lead WHERE name = 'Peter Gibbons'))
 ORDER BY 1, 2, 3;

-- A bulk import of look-alike names queues at most the 10 most similar
-- pairs per record (a key-rule pair is always queued): "Branch 01" to
-- "Branch 15" in one statement would otherwise make every pair of them.
INSERT INTO crm.account (name) SELECT 'Northwind Branch ' || lpad(g::text, 2, '0') FROM generate_series(1, 15) g;
SELECT max(n) AS most_pairs_of_one_account, count(*) > 0 AS some_queued
  FROM (SELECT id, count(*) AS n FROM crm.duplicate_candidate
         WHERE kind = 'account' AND rule = 'similar_name'
           AND id IN (SELECT id FROM crm.account WHERE name LIKE 'Northwind Branch %')
         GROUP BY id) AS per_account;
