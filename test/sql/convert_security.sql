-- convert_security: crm.convert_lead() is SECURITY INVOKER and acts as its
-- caller: it converts only leads the calling role could update itself (the
-- shipped row-level security policies included, also after SET ROLE and
-- inside a security-restricted operation), writes new rows with the
-- caller's rights, records the caller, and ignores the caller's
-- search_path.  Only the duplicate search and telling "no such lead" from
-- "not yours" run with the extension owner's rights.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
-- This file tests the internal objects' own privileges and policies too
-- (defence in depth), so its roles get USAGE on schema crm_internal, which
-- no CRM role has (test/sql/internal_schema.sql).
GRANT USAGE ON SCHEMA crm_internal TO crm_admin, crm_manager, crm_sales, crm_analyst, crm_privacy_officer;
DROP SCHEMA IF EXISTS regress_evil CASCADE;
DROP ROLE IF EXISTS regress_rep1, regress_rep2, regress_nobody, regress_viewer;
RESET client_min_messages;
CREATE ROLE regress_rep1 IN ROLE crm_sales;
CREATE ROLE regress_rep2 IN ROLE crm_sales;
CREATE ROLE regress_nobody;
CREATE ROLE regress_viewer;
GRANT USAGE ON SCHEMA crm TO regress_nobody, regress_viewer;
GRANT SELECT ON crm.lead TO regress_viewer;
GRANT EXECUTE ON FUNCTION crm.convert_lead TO regress_viewer;

-- Row-level security: the shipped policies (sql/install/95_row_security.sql).
-- The two reps report to nobody, so each sees and writes its own rows only,
-- plus, read-only, accounts its deals or leads point at (the sharing rule).

INSERT INTO crm.lead (name, company, email, owner) VALUES
    ('Rep1 Lead', 'Oscorp', 'norman@oscorp.example', 'regress_rep1'),     -- 1
    ('Rep2 Lead', 'Daily Bugle', 'jj@bugle.example', 'regress_rep2'),     -- 2
    ('Rep1 Other', 'Parker Labs', NULL, 'regress_rep1'),                  -- 3
    ('Rep1 Wayne', 'Wayne Enterprises', NULL, 'regress_rep1'),            -- 4
    ('Rep1 Push', 'Stark Solar', NULL, 'regress_rep1');                   -- 5
INSERT INTO crm.account (name, owner) VALUES ('Wayne Enterprises Inc', 'regress_rep2');   -- 1
INSERT INTO crm.contact (name, owner) VALUES ('Alfred', 'regress_rep2');                  -- 1

-- A rep converts their own lead: the new rows are theirs, and the lead, its
-- history and its update log name them as the converter.
SET ROLE regress_rep1;
SELECT lead_id, account_created, contact_created, opportunity_created FROM crm.convert_lead(1);
SELECT status, converted_by FROM crm.lead WHERE id = 1;
SELECT a.owner AS account_owner, c.owner AS contact_owner, o.owner AS opportunity_owner
  FROM crm.lead l JOIN crm.account a ON a.id = l.account_id
  JOIN crm.contact c ON c.id = l.contact_id JOIN crm.opportunity o ON o.id = l.opportunity_id
 WHERE l.id = 1;
SELECT changed_by FROM crm.lead_status_history WHERE lead_id = 1 AND to_status = 'Converted';
RESET ROLE;

-- Another rep's lead: refused as not allowed (42501), though the definer
-- could see it; nothing changes.
SET ROLE regress_rep1;
SELECT * FROM crm.convert_lead(2);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT status FROM crm.lead WHERE id = 2;

-- The same after SET ROLE from a superuser session, inside a transaction.
BEGIN;
SET LOCAL ROLE regress_rep1;
SELECT * FROM crm.convert_lead(2);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

-- An account or contact the caller cannot see does not exist for them.
SET ROLE regress_rep1;
SELECT * FROM crm.convert_lead(3, account_id => 1);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM crm.convert_lead(3, contact_id => 1);
\echo :LAST_ERROR_SQLSTATE

-- New rows are inserted with the caller's rights: a rep cannot push them onto
-- another rep (the row-level security check on insert refuses).
SELECT * FROM crm.convert_lead(5, owner => 'regress_rep2');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT count(*) AS stark_accounts FROM crm.account WHERE name = 'Stark Solar';

-- The duplicate search sees what the caller sees: rep2's Wayne Enterprises
-- account is hidden from rep1, so rep1's lead for Wayne gets a new account
-- of its own, with a WARNING (ZC008) that names only the other account's
-- owner.  Attaching rep1's deal and contact to rep2's account would let
-- rep2 read rep1's new contact.  rep2's account is neither read nor changed.
UPDATE crm.lead SET city = 'Gotham' WHERE id = 4;
SET ROLE regress_rep1;
SELECT account_id = 1 AS into_rep2_account, account_created FROM crm.convert_lead(4);
SELECT id, name, owner, city FROM crm.account WHERE id = 1;
RESET ROLE;
SELECT count(*) AS wayne_accounts FROM crm.account WHERE crm.company_match_key(name) = 'wayneenterprises';
SELECT owner, city FROM crm.account WHERE id = 1;

-- Once rep1 sees rep2's account (here: rep1 has a deal on it, the sharing
-- rule), a lead for Wayne is converted into it: among rep1's two visible
-- matches the oldest wins.  rep1 cannot update that account, so its empty
-- fields (city) are left alone.
INSERT INTO crm.opportunity (name, account_id, owner) VALUES ('Wayne pilot', 1, 'regress_rep1');
INSERT INTO crm.lead (name, company, city, owner)
VALUES ('Lucius', 'Wayne Enterprises, Inc.', 'Gotham', 'regress_rep1') RETURNING id AS lucius \gset
SET ROLE regress_rep1;
SELECT account_id, account_created FROM crm.convert_lead(:lucius);
UPDATE crm.account SET city = 'Gotham' WHERE id = 1 RETURNING id;
RESET ROLE;
SELECT owner, city FROM crm.account WHERE id = 1;

-- A contact rep1 sees only through that shared account (linked to it), whose
-- primary account rep1 cannot see: the deal would go on the hidden account,
-- so the conversion is refused (ZC004) and the account stays hidden.
INSERT INTO crm.account (name, owner) VALUES ('Hidden Holdings', 'regress_rep2') RETURNING id AS hidden \gset
INSERT INTO crm.contact (name, account_id, owner) VALUES ('Gavin', :hidden, 'regress_rep2') RETURNING id AS gavin \gset
INSERT INTO crm.account_contact (account_id, contact_id) VALUES (1, :gavin);
SET ROLE regress_rep1;
SELECT count(*) AS sees_gavin FROM crm.contact WHERE id = :gavin;
SELECT * FROM crm.convert_lead(3, contact_id => :gavin, dedupe => false);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS sees_hidden FROM crm.account WHERE id = :hidden;
RESET ROLE;
SELECT status FROM crm.lead WHERE id = 3;

-- No EXECUTE privilege: refused by PostgreSQL itself.
SET ROLE regress_nobody;
SELECT * FROM crm.convert_lead(3);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- EXECUTE but no UPDATE privilege on leads: refused by the function.
SET ROLE regress_viewer;
SELECT * FROM crm.convert_lead(3);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- search_path hijacking: tables, functions and operators planted in a schema
-- the caller controls, ahead of pg_catalog, and in pg_temp, are never used,
-- neither by convert_lead nor by the triggers of a plain UPDATE.
CREATE SCHEMA regress_evil AUTHORIZATION regress_rep1;
SET ROLE regress_rep1;
CREATE TABLE regress_evil.lead (id bigint, status text);
CREATE TABLE regress_evil.account (id bigint, name text);
CREATE FUNCTION regress_evil.lower(text) RETURNS text LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'hijacked lower()'; END $$;
CREATE FUNCTION regress_evil.now() RETURNS timestamptz LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'hijacked now()'; END $$;
CREATE FUNCTION regress_evil.company_match_key(text) RETURNS text LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'hijacked company_match_key()'; END $$;
CREATE FUNCTION regress_evil.evil_eq(bigint, bigint) RETURNS boolean LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'hijacked ='; END $$;
CREATE OPERATOR regress_evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = regress_evil.evil_eq);
CREATE TEMP TABLE lead (id bigint, status text);
SET search_path = pg_temp, regress_evil, pg_catalog, crm;
SELECT lead_id, account_created FROM crm.convert_lead(3);
UPDATE crm.lead SET remarks = 'still fine' WHERE id = 3;
SELECT id, status, remarks FROM crm.lead WHERE id = 3;
RESET search_path;
DROP TABLE pg_temp.lead;
RESET ROLE;

-- Code of a rep's that runs with more rights -- here an index expression
-- evaluated by a superuser's ANALYZE, as a security-restricted operation --
-- still converts only as that rep: lead 2 (rep2's) is not converted.
SET ROLE regress_rep1;
CREATE FUNCTION regress_evil.trap(x int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF current_setting('regress.armed', true) = 'on' THEN
    PERFORM crm.convert_lead(2);
  END IF;
  RETURN x;
END $$;
CREATE TABLE regress_evil.bait (x int);
CREATE INDEX bait_trap ON regress_evil.bait ((regress_evil.trap(x)));
INSERT INTO regress_evil.bait SELECT generate_series(1, 10);
RESET ROLE;
SET regress.armed = on;
\set VERBOSITY terse
ANALYZE regress_evil.bait;
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
RESET regress.armed;
SELECT status FROM crm.lead WHERE id = 2;

-- The extension's trigger functions cannot be attached to other tables:
-- reps lack EXECUTE, and even a superuser's trigger refuses to fire there.
SET ROLE regress_rep1;
CREATE TABLE regress_evil.fake_history (id bigint, status crm.lead_status);
CREATE TRIGGER forge AFTER INSERT ON regress_evil.fake_history
    FOR EACH ROW EXECUTE FUNCTION crm_internal.record_lead_status();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
CREATE TRIGGER forge AFTER INSERT ON regress_evil.fake_history
    FOR EACH ROW EXECUTE FUNCTION crm_internal.record_lead_status();
INSERT INTO regress_evil.fake_history VALUES (1, 'Converted');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS forged FROM crm.lead_status_history WHERE lead_id = 1 AND from_status IS NULL AND to_status = 'Converted';

REVOKE USAGE ON SCHEMA crm FROM regress_nobody, regress_viewer;
DROP EXTENSION crm CASCADE;
SET client_min_messages = warning;
DROP SCHEMA regress_evil CASCADE;
RESET client_min_messages;
DROP ROLE regress_rep1, regress_rep2, regress_nobody, regress_viewer;
