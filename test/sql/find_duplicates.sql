-- find_duplicates: crm.find_duplicates(kind, id) and (kind, candidate):
-- every matching rule, across kinds and owners; a match the caller cannot
-- see shows only its owner and rule.  (Policies on entry: duplicate_policy.sql.)
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_dup_alice;
DROP ROLE IF EXISTS regress_dup_bob;
CREATE ROLE regress_dup_alice IN ROLE crm_sales;
CREATE ROLE regress_dup_bob IN ROLE crm_sales;
RESET client_min_messages;
-- the checks on entry would only repeat the pairs here
UPDATE crm.settings SET duplicate_policy_lead = 'allow', duplicate_policy_account = 'allow',
    duplicate_policy_contact = 'allow';

-- The similarity threshold (0.55), measured: pg_trgm's similarity of the
-- name keys of close and of different names.
SELECT a, b, crm.name_key(a) AS key_a, crm.name_key(b) AS key_b,
       round(similarity(crm.name_key(a), crm.name_key(b))::numeric, 3) AS similarity
  FROM (VALUES ('Jon Smith', 'John Smith'), ('John Smith', 'Jane Smith'),
               ('Maria Garcia', 'María García'), ('Müller', 'Mueller'),
               ('Müller GmbH', 'Mueller'), ('Jon Smith', 'Jonathan Smithers')) AS v(a, b);
SELECT crm.name_key(crm.company_match_key('Müller GmbH')) AS mueller_gmbh,
       crm.name_key(crm.company_match_key('Mueller')) AS mueller;
-- the company domain: the web site's, else the e-mail's; none for shared hosts
SELECT crm.match_domain('https://www.acme.example/x', 'a@b.example') AS web,
       crm.match_domain(NULL, 'Jon@Acme.example') AS mail,
       crm.match_domain('https://acme.wixsite.com', 'jon@gmail.com') AS shared,
       crm.match_domain(NULL, NULL) AS none;

-- Alice's records
SET ROLE regress_dup_alice;
INSERT INTO crm.account (name, website, phone) VALUES ('Acme, Inc.', 'https://www.acme.example', '+1 (555) 014-2000');  -- 1
INSERT INTO crm.account (name) VALUES ('Müller GmbH');                                            -- 2
INSERT INTO crm.contact (name, email, phone, account_id) VALUES ('John Smith', 'John.Smith@acme.example', '555 014 3000', 1);  -- 1
INSERT INTO crm.lead (name, company, email, phone) VALUES ('Jane Doe', 'Globex', 'jane@globex.example', '0049 30 1234567');  -- 1
INSERT INTO crm.lead (name, company, email) VALUES ('Jon Smith', 'ACME LLC', 'jon@gmail.com');     -- 2
-- Bob's records
SET ROLE regress_dup_bob;
INSERT INTO crm.account (name, website) VALUES ('Globex Corporation', 'globex.example');          -- 3
INSERT INTO crm.lead (name, company, email) VALUES ('Jane D.', 'Initech', 'JANE@globex.example');   -- 3
INSERT INTO crm.contact (name, phone) VALUES ('Mo', '+49 30 123 4567');                            -- 2
RESET ROLE;

-- As Alice.
SET ROLE regress_dup_alice;
-- lead 1: e-mail (Bob's lead 3: hidden), phone digits without the country
-- prefix (Bob's contact 2: hidden), domain from the e-mail and company key
-- (Bob's account 3: hidden, one row per owner and rule)
SELECT * FROM crm.find_duplicates('lead', 1);
-- lead 2: its company key is account 1's (company_key); John Smith, contact
-- of that account, has a similar name; no domain (gmail.com is shared)
SELECT * FROM crm.find_duplicates('lead', 2);
-- contact 1: Jon Smith, a lead of its account's company, similar name
SELECT * FROM crm.find_duplicates('contact', 1);
-- account 1: lead 2 is not an account's duplicate (accounts match accounts)
SELECT * FROM crm.find_duplicates('account', 1);
-- A record not stored yet.
SELECT * FROM crm.find_duplicates('account', candidate => '{"name": "Mueller", "website": "https://mueller.example"}');
SELECT * FROM crm.find_duplicates('account', candidate => '{"name": "ACME Corp."}');
SELECT * FROM crm.find_duplicates('account', candidate => '{"name": "Acme Rockets", "website": "http://acme.example/shop"}');
SELECT * FROM crm.find_duplicates('contact', candidate => '{"name": "Jonny Smith", "account_id": 1}');
SELECT * FROM crm.find_duplicates('contact', candidate => '{"name": "X", "email": "JOHN.SMITH@ACME.EXAMPLE"}');
SELECT * FROM crm.find_duplicates('lead', candidate => '{"name": "New", "company": "Nobody Ltd"}');
-- a contact's account the caller cannot see is ignored (no similar names through it)
SELECT * FROM crm.find_duplicates('contact', candidate => '{"name": "Jane Doe", "account_id": 3}');
RESET ROLE;

-- As Bob: Alice's lead 1 is hidden from him, so his lead 3 shows hers
-- only as "owned by regress_dup_alice", and lead 1 itself is an error.
SET ROLE regress_dup_bob;
SELECT * FROM crm.find_duplicates('lead', 3);
SELECT * FROM crm.find_duplicates('lead', 1);
RESET ROLE;

-- The superuser sees everything.
SELECT * FROM crm.find_duplicates('lead', 1);

-- Similar company names are the 25 nearest accounts at most: of 40
-- branches "Branch Office 01" .. "Branch Office 40", all similar to each
-- other, a new "Branch Office 20" gets the 25 nearest, the closest ones
-- first (the index reads them nearest first: the cost stays bounded).
INSERT INTO crm.account (name) SELECT 'Branch Office ' || lpad(g::text, 2, '0') FROM generate_series(1, 40) AS g;
SELECT count(*) AS similar_accounts, max(score) AS best, min(score) >= 0.55 AS all_similar
  FROM crm.find_duplicates('account', candidate => '{"name": "Branch Office 2O"}')
 WHERE rule = 'similar_name';
-- the probe itself is never its own match; the best are 21 .. 29 (0.765 each: the lowest id first)
SELECT id = (SELECT id FROM crm.account WHERE name = 'Branch Office 21') AS nearest_is_21, rule, score
  FROM crm.find_duplicates('account', (SELECT id FROM crm.account WHERE name = 'Branch Office 20'))
 ORDER BY score DESC, id LIMIT 1;
SELECT count(*) AS similar_accounts
  FROM crm.find_duplicates('account', (SELECT id FROM crm.account WHERE name = 'Branch Office 20'));

-- Errors.
\set VERBOSITY terse
SELECT * FROM crm.find_duplicates('opportunity', 1);       -- unknown kind
SELECT * FROM crm.find_duplicates(NULL, 1);                -- NULL kind
SELECT * FROM crm.find_duplicates('lead', NULL::bigint);   -- NULL id
SELECT * FROM crm.find_duplicates('lead', NULL::jsonb);    -- NULL candidate
SELECT * FROM crm.find_duplicates('lead', 999);            -- no such lead
SELECT * FROM crm.find_duplicates('lead', candidate => '[1, 2]');       -- not an object
SELECT * FROM crm.find_duplicates('lead', candidate => '{"nmae": "Jon"}');  -- no such column
SELECT * FROM crm.find_duplicates('contact', candidate => '{"account_id": "x"}');  -- not a number
SET ROLE crm_analyst;
SELECT * FROM crm.find_duplicates('lead', 1);              -- analysts: no
RESET ROLE;
