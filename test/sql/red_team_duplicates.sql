-- red_team_duplicates: the merge functions attacked as a hostile or careless
-- user (README "Merging").  Each case is a finding that was fixed.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP SCHEMA IF EXISTS regress_rt_dba CASCADE;
DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'regress_rt_dba') THEN DROP OWNED BY regress_rt_dba; END IF; END $$;
DROP ROLE IF EXISTS regress_rt_rep, regress_rt_rep2, regress_rt_dba;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_rt_rep IN ROLE crm_sales;
CREATE ROLE regress_rt_rep2 IN ROLE crm_sales;
CREATE ROLE regress_rt_dba;   -- no CRM role, not a superuser
INSERT INTO crm.account (name, phone, owner) VALUES
    ('Acme Corp', NULL, 'regress_rt_rep'),        -- 1 survivor
    ('ACME Inc.', '555-0199', 'regress_rt_rep'),  -- 2 merged
    ('Acme GmbH', NULL, 'regress_rt_rep'),        -- 3
    ('Other', NULL, 'regress_rt_rep2');           -- 4 another rep's

-- A hidden account and one that does not exist look the same: ZC004.
SET ROLE regress_rt_rep;
SELECT crm.merge_accounts(1, 4);
SELECT crm.merge_accounts(1, 99);
RESET ROLE;

-- 1. A re-pointed row of a DBA's table is written with the rights of that
-- table's owner, as a foreign key's cascaded actions are, never with the
-- extension owner's: the trigger a non-superuser owner put on its table
-- (here: it notes who it runs as) must not run as a superuser, or any
-- rep's merge would run that owner's code as the superuser.
CREATE SCHEMA regress_rt_dba AUTHORIZATION regress_rt_dba;
GRANT USAGE ON SCHEMA crm TO regress_rt_dba;
GRANT REFERENCES (id) ON crm.account TO regress_rt_dba;
SET ROLE regress_rt_dba;
CREATE TABLE regress_rt_dba.note (id serial PRIMARY KEY,
    account_id bigint REFERENCES crm.account (id), note text, written_by text, as_superuser boolean);
CREATE FUNCTION regress_rt_dba.who() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.written_by := current_user;
    NEW.as_superuser := (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user);
    RETURN NEW;
END $$;
CREATE TRIGGER who BEFORE UPDATE ON regress_rt_dba.note FOR EACH ROW EXECUTE FUNCTION regress_rt_dba.who();
INSERT INTO regress_rt_dba.note (account_id, note) VALUES (2, 'met at the fair');
RESET ROLE;
SET ROLE regress_rt_rep;
SELECT crm.merge_accounts(1, 2);
RESET ROLE;
SELECT account_id, note, written_by, as_superuser FROM regress_rt_dba.note;

-- 2. A column a DBA added to crm.account and granted to nobody does not
-- make every rep's merge fail (42501): it is not filled.  Taking it is
-- refused, 42501, naming it.
ALTER TABLE crm.account ADD COLUMN regress_rating integer;
UPDATE crm.account SET regress_rating = 5 WHERE id = 3;
SET ROLE regress_rt_rep;
SELECT crm.merge_accounts(1, 3, take => ARRAY['regress_rating']);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.merge_accounts(1, 3);
RESET ROLE;
SELECT id, name, phone, regress_rating FROM crm.account ORDER BY id;
SELECT merged_id, merged_values->>'regress_rating' AS rating FROM crm.merge_record ORDER BY id;
-- once reps may update the column, a merge fills it
INSERT INTO crm.account (name, regress_rating, owner) VALUES ('Acme Ltd', 7, 'regress_rt_rep');  -- 5
GRANT UPDATE (regress_rating) ON crm.account TO crm_sales;
SET ROLE regress_rt_rep;
SELECT crm.merge_accounts(1, 5);
RESET ROLE;
SELECT id, regress_rating FROM crm.account WHERE id = 1;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

SET client_min_messages = warning;
DROP SCHEMA regress_rt_dba CASCADE;
DROP EXTENSION crm CASCADE;
DROP OWNED BY regress_rt_dba;
DROP ROLE regress_rt_rep, regress_rt_rep2, regress_rt_dba;
