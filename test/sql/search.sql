-- search: crm.search(query, kinds, max_results) as a specification.
-- Finds accounts (name, website, phone), contacts (name, e-mail, phone,
-- account name), leads (name, company, e-mail, phone) and opportunities
-- (name, account name): case- and accent-insensitive, typo-tolerant,
-- prefixes as you type, e-mail and phone fragments; best first.  Only rows
-- the caller sees come back, scored from what the caller sees.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_search_rep1, regress_search_rep2, regress_search_admin,
    regress_search_analyst, regress_search_nobody;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_search_rep1 IN ROLE crm_sales;
CREATE ROLE regress_search_rep2 IN ROLE crm_sales;
CREATE ROLE regress_search_admin IN ROLE crm_admin;
CREATE ROLE regress_search_analyst IN ROLE crm_analyst;
CREATE ROLE regress_search_nobody;

-- rep1's book: accounts, contacts on them, leads, a deal.
SET ROLE regress_search_rep1;
INSERT INTO crm.account (name, website, phone) VALUES
    ('Acme Corporation', 'https://acme.example', '+1 (555) 014-2'),
    ('Müller Maschinenbau GmbH', 'https://mueller.example', '+49 30 1234567'),
    ('Globex', NULL, NULL);
INSERT INTO crm.contact (name, email, phone, account_id)
SELECT 'John Smith', 'john.smith@acme.example', '555 0100', id FROM crm.account WHERE name = 'Acme Corporation';
INSERT INTO crm.contact (name, email, account_id)
SELECT 'Jürgen Weiß', 'jw@mueller.example', id FROM crm.account WHERE name LIKE 'Müller%';
INSERT INTO crm.lead (name, company, email, phone) VALUES
    ('Ana Lopez', 'Initech', 'ana@initech.example', '+34 91 555 0199'),
    ('Bob 100% Real', 'Under_score Ltd', 'bob@example.org', NULL);
INSERT INTO crm.opportunity (name, account_id)
SELECT 'Rollout 2027', id FROM crm.account WHERE name = 'Acme Corporation';
RESET ROLE;
-- rep2's book: a contact on their own account named like rep1's.
SET ROLE regress_search_rep2;
INSERT INTO crm.account (name) VALUES ('Acme Supplies');
INSERT INTO crm.contact (name, email, account_id)
SELECT 'Sam Acme', 'sam@supplies.example', id FROM crm.account WHERE name = 'Acme Supplies';
RESET ROLE;

SET ROLE regress_search_rep1;
-- Case- and accent-insensitive: "muller" finds Müller, "jurgen weiss" Jürgen Weiß.
SELECT * FROM crm.search('muller');
SELECT kind, title, score FROM crm.search('JURGEN');
-- The exact name scores 1; rows found through it by their account 0.9 of it.
SELECT kind, title, subtitle, score FROM crm.search('acme corporation');
-- Typo-tolerant: the best stretch of words is similar enough.
SELECT kind, title, score FROM crm.search('acme corporaton');
SELECT kind, title, score FROM crm.search('globexx');
-- One word of two is not a typo.
SELECT count(*) FROM crm.search('globex industries');
-- A typo's row contains the first three letters of the query's first word
-- of three or more letters: a typo in them is not found.
SELECT count(*) FROM crm.search('acne corporation');
SELECT count(*) FROM crm.search('anna lopez');                -- no "ann" in "Ana Lopez"
SELECT kind, title, score FROM crm.search('ana lopes');
-- A phone number has no typos: only its digits as typed.
SELECT count(*) FROM crm.search('555 0143');
-- Prefix as you type: name prefix 0.9, a word's prefix 0.8.
SELECT kind, title, score FROM crm.search('acm');
SELECT kind, title, score FROM crm.search('corp');
-- E-mail fragments: a word's prefix, or anywhere inside.
SELECT kind, title, score FROM crm.search('smith@acme');
SELECT kind, title, score FROM crm.search('initech.example');
-- Phone fragments: the query's digits anywhere in the phone's digits.
SELECT kind, title, subtitle, score FROM crm.search('555 0142');
SELECT kind, title, score FROM crm.search('(555) 014');
SELECT kind, title, score FROM crm.search('555-01');
-- Opportunities by their own name or their account's.
SELECT kind, title, subtitle, score FROM crm.search('rollout');
-- kinds limits the kinds; max_results the rows (best first, then kind, id).
SELECT kind, title FROM crm.search('acme', ARRAY['opportunity', 'contact']);
SELECT kind, title FROM crm.search('acme', max_results => 2);
-- No match: no rows.
SELECT count(*) FROM crm.search('zzzqqq');

-- LIKE wildcards and backslashes are plain characters.
SELECT kind, title FROM crm.search('100%');
SELECT kind, title FROM crm.search('under_score');
SELECT count(*) FROM crm.search('und_r');
SELECT count(*) FROM crm.search('ac%me');
SELECT count(*) FROM crm.search('acme\');
SELECT count(*) FROM crm.search(E'acme\x01corp');
SELECT count(*) FROM crm.search('''acme''');
RESET ROLE;

-- Only rows the caller sees.  rep2 sees Acme Supplies and Sam Acme, not
-- rep1's Acme Corporation and its contacts.
SET ROLE regress_search_rep2;
SELECT kind, title, subtitle, score FROM crm.search('acme');
SELECT count(*) FROM crm.search('smith@acme');
SELECT count(*) FROM crm.search('555 0142');
RESET ROLE;
-- A contact shared with rep2 (rep2 owns it) on rep1's account: rep2 does not
-- see the account, so the account's name neither shows in the subtitle nor
-- matches.
SET ROLE regress_search_rep2;
INSERT INTO crm.contact (name, email) VALUES ('Pat Lee', 'pat@lee.example');
RESET ROLE;
UPDATE crm.contact SET account_id = (SELECT id FROM crm.account WHERE name = 'Globex')
 WHERE name = 'Pat Lee';
SET ROLE regress_search_rep2;
SELECT kind, title, subtitle FROM crm.search('pat lee');
SELECT count(*) FROM crm.search('globex');
RESET ROLE;
SET ROLE regress_search_rep1;
SELECT kind, title, subtitle FROM crm.search('globex');
RESET ROLE;

-- Ranking reveals nothing about hidden rows: rep2's answer is the same
-- before and after rep1 adds 300 better matches (found first by the index
-- search, and then left out as hidden), whatever max_results.
SET ROLE regress_search_rep2;
CREATE TEMP TABLE before_rows AS SELECT * FROM crm.search('supplies', max_results => 1);
SELECT kind, title, score FROM before_rows;
RESET ROLE;
SET ROLE regress_search_rep1;
INSERT INTO crm.account (name) SELECT 'Supplies Direct' FROM generate_series(1, 300);
RESET ROLE;
SET ROLE regress_search_rep2;
(SELECT * FROM crm.search('supplies', max_results => 1) EXCEPT SELECT * FROM before_rows)
UNION ALL
(SELECT * FROM before_rows EXCEPT SELECT * FROM crm.search('supplies', max_results => 1));
SELECT kind, title, score FROM crm.search('supplies', max_results => 3);
DROP TABLE before_rows;
RESET ROLE;
-- The admin sees all of them.
SET ROLE regress_search_admin;
SELECT count(*) FROM crm.search('supplies', max_results => 1000);
SELECT kind, title, score FROM crm.search('supplies', ARRAY['contact']);
RESET ROLE;

-- The searchable text of a row, kept in its column search_text (a stored
-- generated column: PostgreSQL computes it on every write), and its index.
SELECT crm.search_document(ARRAY['Müller  GmbH', NULL, 'Info@Mueller.example'], '+1 (555) 014-2');
SELECT crm.search_document(NULL, NULL);
SELECT name, search_text FROM crm.account WHERE name = 'Acme Corporation';
SELECT c.relname, a.attgenerated FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid
 WHERE a.attname = 'search_text' AND c.relnamespace = 'crm'::regnamespace AND c.relkind = 'r'
 ORDER BY 1;
-- it follows the row's fields, and nobody writes it: an INSERT or UPDATE
-- naming it fails as for any generated column (428C9), an admin's as a
-- superuser's; naming it with DEFAULT computes it, for a role granted the
-- column (a superuser: no CRM role is)
SET ROLE regress_search_admin;
UPDATE crm.account SET search_text = 'x' WHERE name = 'Acme Corporation';   -- 428C9
INSERT INTO crm.lead (name, search_text) VALUES ('Forged', 'x');            -- 428C9
INSERT INTO crm.lead (name, search_text) VALUES ('Forged', DEFAULT);          -- 42501: no role is granted the column
-- an update of a searched column refreshes it
UPDATE crm.lead SET name = 'Ana López' WHERE name = 'Ana Lopez' RETURNING search_text;
RESET ROLE;
UPDATE crm.opportunity SET search_text = 'x' RETURNING name, search_text;  -- 428C9
UPDATE crm.opportunity SET search_text = DEFAULT RETURNING name, search_text;
INSERT INTO crm.lead (name, search_text) VALUES ('Forged', DEFAULT) RETURNING search_text;
DELETE FROM crm.lead WHERE name = 'Forged';
-- MERGE and COPY (a superuser's: COPY FROM does not apply row-level
-- security) compute it too; COPY refuses a value for it
BEGIN;
MERGE INTO crm.opportunity AS o USING (VALUES ('Rollout 2027', 'Rollout Zürich')) AS v (old, new)
   ON o.name = v.old
 WHEN MATCHED THEN UPDATE SET name = v.new;
SELECT name, search_text FROM crm.opportunity;
ROLLBACK;
COPY crm.lead (name, company, email, phone) FROM stdin;
Copied Éloïse	Copy Co	eloise@copy.example	+33 1 23
\.
SELECT search_text FROM crm.lead WHERE name = 'Copied Éloïse';
COPY crm.lead (name, search_text) FROM '/dev/null';                           -- 42P10
DELETE FROM crm.lead WHERE name = 'Copied Éloïse';
-- also when triggers are off for replication
SET session_replication_role = replica;
INSERT INTO crm.contact (name, email, phone) VALUES ('Zoë Replica', 'Z@R.example', '+1 555') RETURNING search_text;
RESET session_replication_role;
DELETE FROM crm.contact WHERE name = 'Zoë Replica';
-- it does not depend on the writer's rights: a rep without USAGE on the
-- schema of unaccent (found in a new session) writes and reads the same text
SELECT e.extnamespace::regnamespace AS unaccent_schema FROM pg_extension AS e WHERE e.extname = 'unaccent' \gset
REVOKE USAGE ON SCHEMA :"unaccent_schema" FROM PUBLIC;
\c -
SET ROLE regress_search_rep1;
SELECT crm.search_document(ARRAY['Zoë Straße'], '+1 (555)');
INSERT INTO crm.lead (name, company) VALUES ('Ærø Überholung', 'Straße AG') RETURNING search_text;
DELETE FROM crm.lead WHERE name = 'Ærø Überholung';
RESET ROLE;
GRANT USAGE ON SCHEMA :"unaccent_schema" TO PUBLIC;
\set VERBOSITY terse
-- an update of other columns computes the same text again: it stays a HOT
-- update (no index entry written) when nothing indexed changes (the newest
-- account, on the table's last page, which has room)
BEGIN;
UPDATE crm.account SET industry = 'Manufacturing' WHERE id = (SELECT max(id) FROM crm.account);
SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relid = 'crm.account'::regclass;
ROLLBACK;
-- the change log records the changed field, not the searchable text that
-- follows from it
UPDATE crm.account SET phone = '+1 (555) 014-9' WHERE name = 'Acme Corporation';
SELECT changes FROM crm.change_log
 WHERE table_name = 'crm.account'::regclass AND operation = 'UPDATE' ORDER BY id DESC LIMIT 1;
UPDATE crm.account SET phone = '+1 (555) 014-2' WHERE name = 'Acme Corporation';
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM crm.account WHERE search_text LIKE '%acme%';
EXPLAIN (COSTS OFF) SELECT id FROM crm.lead WHERE search_text LIKE '%acme%';
RESET enable_seqscan;

-- Errors (with their details and hints).
\set VERBOSITY default
SET ROLE regress_search_rep1;
SELECT * FROM crm.search(NULL);                          -- 22004
SELECT * FROM crm.search('acme', ARRAY['lead', NULL]);   -- 22004
SELECT * FROM crm.search('acme', max_results => NULL);   -- 22004
SELECT * FROM crm.search('acme', ARRAY['quote']);        -- 22023, hint: the kinds
SELECT * FROM crm.search('acme', ARRAY[]::text[]);       -- 22023
SELECT * FROM crm.search('acme', max_results => 0);      -- 22023
SELECT * FROM crm.search('acme', max_results => 1001);   -- 22023
SELECT * FROM crm.search('   ');                         -- 22023: too short
SELECT * FROM crm.search('ab');                          -- 22023: too short
SELECT * FROM crm.search('%_%');                         -- 22023: too short
SELECT * FROM crm.search(repeat('a', 1000000));          -- 22023: too long
RESET ROLE;
\set VERBOSITY terse
-- Analysts read no personal columns; other roles are not CRM users.
SET ROLE regress_search_analyst;
SELECT * FROM crm.search('acme');                        -- 42501
RESET ROLE;
SET ROLE regress_search_nobody;
SELECT * FROM crm.search('acme');                        -- 42501
RESET ROLE;

SET client_min_messages = warning;
DROP EXTENSION crm CASCADE;
DROP ROLE regress_search_rep1, regress_search_rep2, regress_search_admin,
    regress_search_analyst, regress_search_nobody;
