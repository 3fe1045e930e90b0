-- change_log_retention: crm.settings.change_log_retention (NULL = keep
-- forever) and crm.purge_change_log(older_than), for admins: entries older
-- than the cut-off are deleted and one PURGE summary entry is written.  The
-- history tables reports read are not purged.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_retention_admin;
DROP ROLE IF EXISTS regress_retention_officer;
DROP ROLE IF EXISTS regress_retention_rep;
CREATE ROLE regress_retention_admin IN ROLE crm_admin;
CREATE ROLE regress_retention_officer IN ROLE crm_privacy_officer;
CREATE ROLE regress_retention_rep IN ROLE crm_sales;
RESET client_min_messages;
\set VERBOSITY terse

-- Five leads, each with an INSERT and an UPDATE entry; the first three are
-- dated back (as the superuser, with the append-only trigger disabled, which
-- only a superuser can do -- to make old entries for the test).
INSERT INTO crm.lead (name) SELECT 'Lead ' || i FROM generate_series(1, 5) i;
UPDATE crm.lead SET status = 'Processing';
ALTER TABLE crm.change_log DISABLE TRIGGER audit_append_only;
UPDATE crm.change_log SET changed_at = now() - interval '3 years' WHERE row_id <= 3;
ALTER TABLE crm.change_log ENABLE ALWAYS TRIGGER audit_append_only;
SELECT count(*) AS entries, count(*) FILTER (WHERE changed_at < now() - interval '2 years') AS old_entries FROM crm.change_log;

-- No retention set (the default): the purge does nothing, writes nothing,
-- returns 0.
SELECT change_log_retention FROM crm.settings;
SET ROLE regress_retention_admin;
SELECT crm.purge_change_log() AS removed;
SELECT count(*) AS entries FROM crm.change_log;

-- With a retention of two years, the old entries go; one summary entry
-- records who, when, the cut-off and how many.
UPDATE crm.settings SET change_log_retention = interval '2 years';
SELECT crm.purge_change_log() AS removed;
SELECT count(*) AS entries, count(*) FILTER (WHERE row_id <= 3) AS entries_of_old_leads FROM crm.change_log
 WHERE operation <> 'PURGE';
SELECT table_name, row_id, operation, changed_by,
       (changes->>'cut_off')::timestamptz BETWEEN now() - interval '2 years 1 minute' AND now() - interval '2 years' AS cut_off_ok,
       changes->'rows_removed' AS rows_removed
  FROM crm.change_log WHERE operation = 'PURGE';
-- Nothing older is left: purging again removes nothing (and says so).
SELECT crm.purge_change_log() AS removed;
-- An explicit cut-off overrides the setting; summary entries are kept.
SELECT crm.purge_change_log(now() - interval '1 year') AS removed;
SELECT operation, count(*) FROM crm.change_log GROUP BY operation ORDER BY operation;
-- A cut-off in the future would delete what was just written: refused (22023).
SELECT crm.purge_change_log(now() + interval '1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT crm.purge_change_log('infinity');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- The retention must be positive.
UPDATE crm.settings SET change_log_retention = interval '-1 day';
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.settings SET change_log_retention = interval '0';
\echo :LAST_ERROR_SQLSTATE

-- The lead status history (read by the reports) is not purged.
SELECT count(*) AS status_history FROM crm.lead_status_history;

-- Only admins purge: not a privacy officer, not a rep (42501).
SET ROLE regress_retention_officer;
SELECT crm.purge_change_log();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE regress_retention_rep;
SELECT crm.purge_change_log();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- And a DELETE by hand is still refused, even for the superuser (ZC602).
DELETE FROM crm.change_log;
\echo :LAST_ERROR_SQLSTATE
