-- aggregate_prepared: the aggregates with two-phase commit.  A prepared
-- transaction (PREPARE TRANSACTION) that changed opportunities or leads
-- keeps its rows of the aggregate tables until COMMIT PREPARED or ROLLBACK
-- PREPARED, and no deadlock check sees a session wait for it.  The session
-- that prepared it, and a later one with the same backend id, still change
-- deals of the same groups without waiting: their changes go to another
-- stripe of their own.  statement_timeout turns a wait into an error here.
-- Needs max_prepared_transactions > 0 (scripts/test.sh's cluster has 10).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;
\set VERBOSITY terse
SET statement_timeout = '5s';
INSERT INTO crm.account (name) VALUES ('Acme');
INSERT INTO crm.opportunity (name, account_id, amount, close_date)
SELECT 'Deal ' || g, 1, 100 * g, '2027-01-15' FROM generate_series(1, 4) g;

-- A prepared transaction updates this backend's stripe rows of the January
-- pipeline group and of the account, and inserts one for March.
BEGIN;
UPDATE crm.opportunity SET amount = amount + 1 WHERE name = 'Deal 1';
UPDATE crm.opportunity SET close_date = '2027-03-01' WHERE name = 'Deal 2';
PREPARE TRANSACTION 'agg_prepared_1';

-- The same session changes other deals of those groups: a row the prepared
-- transaction updated, a row it inserted, then the same groups again.
UPDATE crm.opportunity SET amount = amount + 10 WHERE name = 'Deal 3';
INSERT INTO crm.opportunity (name, account_id, amount, close_date) VALUES ('Deal 5', 1, 500, '2027-03-20');
UPDATE crm.opportunity SET amount = amount + 10 WHERE name IN ('Deal 3', 'Deal 5');
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- Every stripe row is this backend's: its id, or its id plus a multiple of
-- 262144 (above every backend id) for the changes made while the prepared
-- transaction held the row.
SELECT count(DISTINCT stripe % 262144) AS backends, count(*) FILTER (WHERE stripe > 262143) AS other_stripe_rows
  FROM crm_internal.pipeline_aggregate;

-- A compaction skips the rows the prepared transaction holds.
SELECT crm.compact_aggregates() > 0 AS compacted;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- Once committed, its changes count too.
COMMIT PREPARED 'agg_prepared_1';
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
SELECT stage, close_month, opportunities, amount FROM crm.pipeline_totals ORDER BY close_month;

-- Rolled back, they do not; the changes made meanwhile stay.
BEGIN;
UPDATE crm.opportunity SET stage = 'Proposal' WHERE name = 'Deal 1';
DELETE FROM crm.opportunity WHERE name = 'Deal 4';
PREPARE TRANSACTION 'agg_prepared_2';
UPDATE crm.opportunity SET stage = 'Proposal', amount = 1000 WHERE name = 'Deal 3';
DELETE FROM crm.opportunity WHERE name = 'Deal 2';
ROLLBACK PREPARED 'agg_prepared_2';
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
SELECT stage, close_month, opportunities, amount FROM crm.pipeline_totals ORDER BY stage, close_month;

-- Leads feed the campaign aggregate the same way.
INSERT INTO crm.campaign (name) VALUES ('Spring');
INSERT INTO crm.lead (name, company, campaign_id) VALUES ('Lee', 'Lee Ltd', 1), ('Kim', 'Kim Co', 1);
BEGIN;
UPDATE crm.lead SET status = 'Processing' WHERE name = 'Lee';
PREPARE TRANSACTION 'agg_prepared_3';
UPDATE crm.lead SET status = 'Processing' WHERE name = 'Kim';
COMMIT PREPARED 'agg_prepared_3';
SELECT status, sum(leads) AS leads FROM crm_internal.campaign_lead_aggregate GROUP BY status ORDER BY status;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- With a trigger on an aggregate table the changes go through a statement
-- (see aggregate_table_rules); it writes to the stripes chosen the same way.
CREATE TABLE dba_stripe_audit (stripe integer, opportunities bigint);
CREATE FUNCTION dba_stripe_audit() RETURNS trigger LANGUAGE plpgsql SET search_path = public AS
$$ BEGIN INSERT INTO dba_stripe_audit VALUES (NEW.stripe, NEW.opportunities); RETURN NEW; END $$;
CREATE TRIGGER dba_stripe_audit AFTER INSERT OR UPDATE ON crm_internal.pipeline_aggregate
  FOR EACH ROW EXECUTE FUNCTION dba_stripe_audit();
BEGIN;
UPDATE crm.opportunity SET amount = amount + 1 WHERE name = 'Deal 1';
PREPARE TRANSACTION 'agg_prepared_4';
UPDATE crm.opportunity SET amount = amount + 1 WHERE name = 'Deal 4';
INSERT INTO crm.opportunity (name, account_id, amount, close_date) VALUES ('Deal 6', 1, 600, '2027-01-31');
ROLLBACK PREPARED 'agg_prepared_4';
SELECT count(*) > 0 AS audited, bool_and(stripe > 262143) AS other_stripe FROM dba_stripe_audit;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
DROP TRIGGER dba_stripe_audit ON crm_internal.pipeline_aggregate;
DROP TABLE dba_stripe_audit;
DROP FUNCTION dba_stripe_audit();

-- A new session (a pooled connection, say) after the one that prepared a
-- transaction exited: it may get the same backend id, and does not wait.
BEGIN;
UPDATE crm.opportunity SET amount = amount + 1 WHERE name = 'Deal 1';
PREPARE TRANSACTION 'agg_prepared_5';
\c
\c
SET statement_timeout = '5s';
UPDATE crm.opportunity SET amount = amount + 1 WHERE name = 'Deal 3';
COMMIT PREPARED 'agg_prepared_5';
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- Folded, every stripe is 0 again.
SELECT crm.compact_aggregates() > 0 AS compacted;
SELECT count(*) FILTER (WHERE stripe <> 0) AS writer_stripe_rows FROM crm_internal.pipeline_aggregate;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
SELECT count(*) AS prepared_left FROM pg_prepared_xacts;
