-- red_team_append_asof: hostile review of the rows appended below SQL
-- (src/append_rows.c) and of crm.pipeline_as_of() (src/pipeline_as_of.c).
-- Each case is what a rep or a careless DBA can do; the expected output is
-- what a plain INSERT / a plain SELECT under row security would give.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_rt_rep1;
DROP ROLE IF EXISTS regress_rt_rep2;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_rt_rep1 IN ROLE crm_sales;
CREATE ROLE regress_rt_rep2 IN ROLE crm_sales;
INSERT INTO crm.exchange_rate (currency, valid_from, rate) VALUES ('GBP', '2020-01-01', 1.30);
INSERT INTO crm.account (name, owner) VALUES ('Acme', 'regress_rt_rep1');
INSERT INTO crm.opportunity (name, account_id, stage, amount, close_date, owner, currency) VALUES
    ('A', 1, 'Proposal', 1000, '2027-01-15', 'regress_rt_rep1', 'USD'),
    ('B', 1, 'Proposal', 2000, '2027-01-15', 'regress_rt_rep1', 'GBP');

-- The appended rows are written as the extension owner: a CHECK a DBA put
-- on the history that fails, caught by the rep, leaves the rep's identity
-- as it was (no owner rights leak into the rest of the block).
ALTER TABLE crm.opportunity_history ADD CONSTRAINT regress_small CHECK (new_amount < 5000);
SET ROLE regress_rt_rep1;
DO $$ BEGIN
  UPDATE crm.opportunity SET amount = 9000 WHERE name = 'A';
EXCEPTION WHEN check_violation THEN RAISE NOTICE 'caught, acting as %', current_user;
END $$;
SELECT current_user;
RESET ROLE;
ALTER TABLE crm.opportunity_history DROP CONSTRAINT regress_small;

-- A DBA's BEFORE INSERT row trigger on the history runs as the owner; it
-- may change the entry or skip it, as for an INSERT.
CREATE TABLE public.regress_rt_seen (acting text);
CREATE FUNCTION public.regress_rt_before() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.regress_rt_seen VALUES (current_user);
  IF NEW.new_amount = 7777 THEN RETURN NULL; END IF;
  NEW.new_stage := NEW.new_stage || ' (checked)';
  RETURN NEW;
END $$;
CREATE TRIGGER regress_rt_before BEFORE INSERT ON crm.opportunity_history
    FOR EACH ROW EXECUTE FUNCTION public.regress_rt_before();
SET ROLE regress_rt_rep1;
UPDATE crm.opportunity SET amount = 7777 WHERE name = 'A';
UPDATE crm.opportunity SET amount = 1200 WHERE name = 'A';
RESET ROLE;
SELECT acting = (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'crm') AS as_owner
  FROM public.regress_rt_seen;
SELECT new_stage, new_amount FROM crm.opportunity_history WHERE opportunity_id = 1 ORDER BY id;
DROP TRIGGER regress_rt_before ON crm.opportunity_history;

-- A savepoint rolled back drops its entries, and only those.
BEGIN;
UPDATE crm.opportunity SET amount = 1300 WHERE name = 'A';
SAVEPOINT s;
UPDATE crm.opportunity SET amount = 1400 WHERE name = 'A';
ROLLBACK TO s;
UPDATE crm.opportunity SET amount = 1500 WHERE name = 'A';
COMMIT;
SELECT new_amount FROM crm.opportunity_history WHERE opportunity_id = 1 ORDER BY id;

-- A careless DBA narrows a history column: the entries are held to the
-- column's type modifier as an INSERT holds them (before the fix the
-- values were stored unchecked: 12345678.99 in a numeric(8,2)).
ALTER TABLE crm.opportunity_history ALTER COLUMN new_amount TYPE numeric(8,2);
UPDATE crm.opportunity SET amount = 12345678.99 WHERE name = 'A';
UPDATE crm.opportunity SET amount = 1600.004 WHERE name = 'A';
SELECT new_amount FROM crm.opportunity_history WHERE opportunity_id = 1 ORDER BY id DESC LIMIT 1;
-- a domain's constraint holds too
CREATE DOMAIN public.regress_rt_amount AS numeric(16,2) CHECK (VALUE <> 1800);
ALTER TABLE crm.opportunity_history ALTER COLUMN new_amount TYPE public.regress_rt_amount;
UPDATE crm.opportunity SET amount = 1800 WHERE name = 'A';
UPDATE crm.opportunity SET amount = 1900 WHERE name = 'A';
ALTER TABLE crm.opportunity_history ALTER COLUMN new_amount TYPE numeric(16,2);
-- a column changed to another type stops the write (42804) rather than
-- store a date as a timestamptz; changed back, entries are written again
ALTER TABLE crm.opportunity_history ALTER COLUMN new_close_date TYPE timestamptz;
UPDATE crm.opportunity SET close_date = date '2027-01-15' WHERE name = 'A';
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE crm.opportunity_history ALTER COLUMN new_close_date TYPE date;
UPDATE crm.opportunity SET close_date = date '2027-01-15' WHERE name = 'A';
SELECT new_close_date FROM crm.opportunity_history WHERE opportunity_id = 1 ORDER BY id DESC LIMIT 1;
-- a column a DBA adds with a default, then its default changed, then dropped
ALTER TABLE crm.opportunity_history ADD COLUMN regress_note text DEFAULT 'first';
UPDATE crm.opportunity SET amount = 1910 WHERE name = 'A';
ALTER TABLE crm.opportunity_history ALTER COLUMN regress_note SET DEFAULT 'second';
UPDATE crm.opportunity SET amount = 1920 WHERE name = 'A';
SELECT new_amount, currency, regress_note FROM crm.opportunity_history
 WHERE opportunity_id = 1 ORDER BY id DESC LIMIT 4;
ALTER TABLE crm.opportunity_history DROP COLUMN regress_note;
UPDATE crm.opportunity SET amount = 1930 WHERE name = 'A';
SELECT new_amount FROM crm.opportunity_history WHERE opportunity_id = 1 ORDER BY id DESC LIMIT 1;
UPDATE crm.opportunity SET amount = 1500 WHERE name = 'A';

-- pipeline_as_of: the installed policy crm_parent_select on the history is
-- the one the function evaluates per deal (its expression as the function
-- compares it, under the function's search_path).
SET search_path = pg_catalog, pg_temp;
SELECT pg_catalog.pg_get_expr(polqual, polrelid) = E'(((new_owner)::oid = ANY (ARRAY( SELECT crm.team_roles() AS team_roles))) OR (EXISTS ( SELECT 1\n   FROM crm.opportunity p\n  WHERE (p.id = opportunity_history.opportunity_id))))' AS installed_policy
  FROM pg_catalog.pg_policy
 WHERE polrelid = 'crm.opportunity_history'::regclass AND polname = 'crm_parent_select';
RESET search_path;
SET ROLE regress_rt_rep1;
SELECT stage, owner, opportunities, amount_in_currency, currency
  FROM crm.pipeline_as_of(now()) WHERE opportunities > 0 ORDER BY currency;
RESET ROLE;

-- A DBA narrows the policy under the same name: reps read the history of
-- USD deals only.  The rep's as-of pipeline is what the rep may read: the
-- GBP deal (its entries hidden from the rep) does not count.
ALTER POLICY crm_parent_select ON crm.opportunity_history
    USING (currency OPERATOR(pg_catalog.=) 'USD');
SET ROLE regress_rt_rep1;
SELECT DISTINCT opportunity_id, currency FROM crm.opportunity_history ORDER BY 1;
SELECT stage, owner, opportunities, amount_in_currency, currency
  FROM crm.pipeline_as_of(now()) WHERE opportunities > 0 ORDER BY currency;
RESET ROLE;

-- The extension dropped and created again in the same session: the new
-- tables are written (nothing of the old ones is kept).
SET client_min_messages = warning;
DROP EXTENSION crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;
INSERT INTO crm.account (name, owner) VALUES ('Acme', 'regress_rt_rep1');
INSERT INTO crm.opportunity (name, account_id, stage, amount, close_date, owner, currency) VALUES
    ('C', 1, 'Proposal', 10, '2027-01-15', 'regress_rt_rep1', 'USD');
UPDATE crm.opportunity SET amount = 20;
SELECT id, new_amount, currency FROM crm.opportunity_history ORDER BY id;
SELECT operation, count(*) FROM crm.change_log GROUP BY 1 ORDER BY 1;

SET client_min_messages = warning;
DROP EXTENSION crm CASCADE;
DROP DOMAIN public.regress_rt_amount;
DROP TABLE public.regress_rt_seen;
DROP FUNCTION public.regress_rt_before();
DROP ROLE regress_rt_rep1;
DROP ROLE regress_rt_rep2;
