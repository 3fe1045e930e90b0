-- red_team_privacy: the personal-data functions attacked as a hostile or
-- careless user (README "Personal data").  Each case after the rights is a
-- finding that was fixed.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
-- This file tests the internal objects' own privileges and policies too
-- (defence in depth), so its roles get USAGE on schema crm_internal, which
-- no CRM role has (test/sql/internal_schema.sql).
GRANT USAGE ON SCHEMA crm_internal TO crm_admin, crm_manager, crm_sales, crm_analyst, crm_privacy_officer;
DROP ROLE IF EXISTS regress_rtp_rep, regress_rtp_rep2, regress_rtp_mgr, regress_rtp_analyst, regress_rtp_none, regress_rtp_dpo;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_rtp_rep IN ROLE crm_sales;
CREATE ROLE regress_rtp_mgr IN ROLE crm_manager;
CREATE ROLE regress_rtp_analyst IN ROLE crm_analyst;
CREATE ROLE regress_rtp_none;
CREATE ROLE regress_rtp_dpo IN ROLE crm_privacy_officer;
UPDATE crm.settings SET duplicate_policy_lead = 'allow', duplicate_policy_account = 'allow',
    duplicate_policy_contact = 'allow';

-- Only privacy officers export and erase, only admins purge; nobody else
-- reads the erasure log or its salt, or rewrites the change log (42501).
SET ROLE regress_rtp_rep;
SELECT crm.export_person('p@x.example');
SELECT crm.erase_person('p@x.example', 'r');
SELECT crm.purge_change_log(now());
SELECT count(*) FROM crm.erasure_log;
SELECT count(*) FROM crm_internal.erasure_salt;
SELECT crm_internal.erased_text('abc', '{b}', 'x');
RESET ROLE;
SET ROLE regress_rtp_mgr;
SELECT crm.export_person('p@x.example');
SELECT crm.purge_change_log(now());
UPDATE crm.change_log SET changes = '{}';
DELETE FROM crm.change_log;
RESET ROLE;
SET ROLE regress_rtp_analyst;
SELECT crm.export_person('p@x.example');
UPDATE crm.change_log SET changes = '{}';
RESET ROLE;
SET ROLE regress_rtp_dpo;
SELECT crm.purge_change_log(now());
DELETE FROM crm.erasure_log;
RESET ROLE;
SET ROLE regress_rtp_none;
SELECT crm.export_person('p@x.example');
RESET ROLE;

-- 1. After an erasure no live row of hers keeps her name or address: the
-- company of her lead (a private customer's is her name), the account
-- named after her (its street and postal code are hers too) and the
-- descriptions of her account and deal.  It used to leave all four.
SET ROLE regress_rtp_rep;
INSERT INTO crm.lead (name, company, email, phone)
    VALUES ('Maria Garcia', 'Maria Garcia', 'maria@garcia.example', '+34 91 1234567');
SELECT account_id IS NOT NULL AS converted FROM crm.convert_lead(1);
UPDATE crm.account SET street = 'Calle Mayor 1', postal_code = '28013',
    description = 'Maria Garcia, private customer, maria@garcia.example' WHERE id = 1;
UPDATE crm.opportunity SET description = 'deal for Maria Garcia (maria@garcia.example)' WHERE id = 1;
RESET ROLE;
SET ROLE regress_rtp_dpo;
SELECT leads, contacts, related_rows FROM crm.erase_person('maria@garcia.example', 'request 1');
RESET ROLE;
SELECT name, company FROM crm.lead WHERE id = 1;
SELECT name, street, postal_code, description FROM crm.account WHERE id = 1;
SELECT name, description FROM crm.opportunity WHERE id = 1;
SELECT count(*) AS rows_naming_her
  FROM (SELECT to_jsonb(l)::text AS t FROM crm.lead AS l UNION ALL SELECT to_jsonb(a)::text FROM crm.account AS a
        UNION ALL SELECT to_jsonb(o)::text FROM crm.opportunity AS o UNION ALL SELECT to_jsonb(c)::text FROM crm.contact AS c
        UNION ALL SELECT changes::text FROM crm.change_log) AS s
 WHERE lower(s.t) ~ 'maria|garcia|1234567|calle mayor';
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- 2. A short phone number (any 3 digits pass crm.phone_number) is no
-- needle: erasing the person whose lead had phone "100" must not blank the
-- change-log values of other people's rows that merely contain "100".
SET ROLE regress_rtp_rep;
INSERT INTO crm.lead (name, email, phone) VALUES ('Petra Short', 'petra@short.example', '100');  -- 2
INSERT INTO crm.lead (name, email) VALUES ('Other Buyer', 'other@buyer.example');                -- 3
UPDATE crm.lead SET remarks = 'budget 1000 eur' WHERE id = 3;
RESET ROLE;
SET ROLE regress_rtp_dpo;
SELECT leads FROM crm.erase_person('petra@short.example', 'request 2');
RESET ROLE;
SELECT changes FROM crm.change_log
 WHERE table_name = 'crm.lead'::regclass AND row_id = 3 AND operation = 'UPDATE' ORDER BY id;

-- 3. A record renamed many times still can be erased: every former name is
-- a needle, and the redaction of the related rows used to recurse once per
-- needle until 54001 (stack depth limit exceeded), so a rep could make a
-- person impossible to erase.
SET ROLE regress_rtp_rep;
INSERT INTO crm.lead (name, company, email) VALUES ('Zed Zulu', 'Zulu Trading', 'zed@zulu.example');  -- 4
SELECT account_id IS NOT NULL AS converted FROM crm.convert_lead(4);
DO $$ BEGIN FOR i IN 1..3000 LOOP UPDATE crm.lead SET name = 'Zed Zulu ' || i WHERE id = 4; END LOOP; END $$;
RESET ROLE;
SET ROLE regress_rtp_dpo;
SELECT leads, contacts FROM crm.erase_person('zed@zulu.example', 'request 3');
RESET ROLE;
SELECT name FROM crm.lead WHERE id = 4;
SELECT crm_internal.erased_text('Zed Zulu 12 met Zed Zulu', ARRAY['zed zulu 12', 'zed zulu', 'a.c'], 'X') AS redacted;

-- 4. A rep cannot make an erasure rename another owner's company account:
-- renaming her contact for a moment to the name of an account she is
-- linked to made that account "named after her", so the erasure renamed
-- it and cleared its street.  An account others are linked to is not hers.
CREATE ROLE regress_rtp_rep2 IN ROLE crm_sales;
SET ROLE regress_rtp_rep2;
INSERT INTO crm.account (name, street) VALUES ('Acme Key Account', 'Main St 1') RETURNING id AS acme \gset
INSERT INTO crm.contact (name, email, account_id) VALUES ('Carl Buyer', 'carl@acme.example', :acme);
RESET ROLE;
SET ROLE regress_rtp_rep;
INSERT INTO crm.contact (name, email) VALUES ('Vic Victim', 'vic@victim.example') RETURNING id AS vic \gset
RESET ROLE;
INSERT INTO crm.account_contact (account_id, contact_id) VALUES (:acme, :vic);
SET ROLE regress_rtp_rep;
UPDATE crm.contact SET name = 'Acme Key Account' WHERE id = :vic;
UPDATE crm.contact SET name = 'Vic Victim' WHERE id = :vic;
RESET ROLE;
SET ROLE regress_rtp_dpo;
SELECT contacts FROM crm.erase_person('vic@victim.example', 'request 4');
RESET ROLE;
SELECT name, street, owner FROM crm.account WHERE id = :acme;

SET client_min_messages = warning;
DROP EXTENSION crm CASCADE;
DROP ROLE regress_rtp_rep, regress_rtp_rep2, regress_rtp_mgr, regress_rtp_analyst, regress_rtp_none, regress_rtp_dpo;
