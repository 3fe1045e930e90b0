-- aggregate_table_rules: what a DBA adds to an aggregate table holds for the
-- aggregates_ triggers' own writes too.  A CHECK constraint is checked when
-- a stripe row is updated in place; a stored generated column is computed
-- and a trigger of the table fires, because then the writes go through a
-- statement.  After each, crm.verify_aggregates() returns no rows.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;
\set VERBOSITY terse
INSERT INTO crm.account (name) VALUES ('Acme');
INSERT INTO crm.opportunity (name, account_id, amount, close_date) VALUES ('A', 1, 10, '2027-01-15');

-- A CHECK constraint: the in-place update of this backend's stripe row is
-- refused (23514) and the opportunity's change with it; a change within the
-- limit goes through.
ALTER TABLE crm_internal.pipeline_aggregate ADD CONSTRAINT dba_amount_limit CHECK (amount < 1000);
UPDATE crm.opportunity SET amount = 5000 WHERE name = 'A';
UPDATE crm.opportunity SET amount = 20 WHERE name = 'A';
SELECT amount FROM crm.opportunity WHERE name = 'A';
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
ALTER TABLE crm_internal.pipeline_aggregate DROP CONSTRAINT dba_amount_limit;

-- A stored generated column is computed for every new version of a row,
-- including the versions of rows this backend wrote before.
ALTER TABLE crm_internal.pipeline_aggregate
  ADD COLUMN dba_amount_cents numeric GENERATED ALWAYS AS (amount * 100) STORED;
UPDATE crm.opportunity SET amount = 30 WHERE name = 'A';
UPDATE crm.opportunity SET amount = 40 WHERE name = 'A';
SELECT stripe <> 0 AS writer_stripe, amount, dba_amount_cents FROM crm_internal.pipeline_aggregate ORDER BY 1;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
ALTER TABLE crm_internal.pipeline_aggregate DROP COLUMN dba_amount_cents;

-- A trigger of the table fires for the aggregates_ triggers' writes.
CREATE TABLE dba_audit (opportunities bigint, amount numeric);
CREATE FUNCTION dba_audit() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN INSERT INTO dba_audit VALUES (NEW.opportunities, NEW.amount); RETURN NEW; END $$;
CREATE TRIGGER dba_audit AFTER INSERT OR UPDATE ON crm_internal.pipeline_aggregate
  FOR EACH ROW EXECUTE FUNCTION dba_audit();
-- It runs inside the extension owner's statement, which is run as core runs
-- maintenance commands: a security-restricted operation with search_path
-- "pg_catalog, pg_temp".  A name it does not qualify is not found ...
UPDATE crm.opportunity SET amount = 50 WHERE name = 'A';
-- ... so the function pins its own search_path (or qualifies its names).
ALTER FUNCTION dba_audit() SET search_path = public;
UPDATE crm.opportunity SET amount = 50 WHERE name = 'A';
SELECT * FROM dba_audit;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
DROP TRIGGER dba_audit ON crm_internal.pipeline_aggregate;

-- Without them, changes go in place again.
UPDATE crm.opportunity SET amount = 60 WHERE name = 'A';
SELECT sum(opportunities) AS opportunities, sum(amount) AS amount FROM crm_internal.pipeline_aggregate;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- A primary key a DBA changed to other columns (here the count added): the
-- in-place writer, which looks rows up by the stripe and group columns,
-- treats it as none, and the changes go through a statement (which finds
-- the rows through a unique constraint on those columns).
DO $$
DECLARE cols text;
BEGIN
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.n) INTO cols
      FROM pg_index i, unnest(i.indkey) WITH ORDINALITY AS k(att, n), pg_attribute a
     WHERE i.indrelid = 'crm_internal.pipeline_aggregate'::regclass AND i.indisprimary
       AND a.attrelid = i.indrelid AND a.attnum = k.att;
    EXECUTE format('ALTER TABLE crm_internal.pipeline_aggregate ADD CONSTRAINT dba_group_unique UNIQUE (%s)', cols);
    EXECUTE format('ALTER TABLE crm_internal.pipeline_aggregate DROP CONSTRAINT pipeline_aggregate_pkey, '
                   'ADD CONSTRAINT pipeline_aggregate_pkey PRIMARY KEY (%s, opportunities)', cols);
END $$;
UPDATE crm.opportunity SET amount = 70 WHERE name = 'A';
INSERT INTO crm.opportunity (name, account_id, amount, close_date) VALUES ('C', 1, 5, '2027-02-15');
SELECT sum(opportunities) AS opportunities, sum(amount) AS amount FROM crm_internal.pipeline_aggregate;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
