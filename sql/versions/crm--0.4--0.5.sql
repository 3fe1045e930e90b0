-- crm 0.4 -> 0.5: ALTER EXTENSION crm UPDATE TO '0.5'.
-- Every schema change made in sql/install/ since 0.4 is repeated here, so
-- that an updated database has the same objects as a fresh install
-- (test/scripts/upgrade.sh checks it).
--
-- 0.5 closes what a red team with ordinary CRM logins could still do to
-- 0.4 (forged ids, lock squatting, hidden references, unbounded change-log
-- values) and what a fault run found (two-phase commit, maintenance of the
-- aggregate tables, restores without replica mode).

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION crm UPDATE TO '0.5'" to load this file. \quit


-- misc: campaign cycles at any depth (C only), bounded change-log values,
-- verifiable reminder notifications, restores without replica mode refused.
COMMENT ON COLUMN crm.change_log.changes IS 'UPDATE: {"column": {"old": text, "new": text}} for each changed column; DELETE: {"column": text} of the removed row; INSERT and TRUNCATE: {}. A value longer than 2000 bytes is kept as {"truncated": its first characters (up to 2000 bytes), "bytes": its length in bytes, "sha256": hex SHA-256 of its bytes}';

ALTER TABLE crm.activity ADD COLUMN reminder_taken_at timestamptz;
COMMENT ON COLUMN crm.activity.reminder_taken_at IS 'When a listener took the claimed reminder with crm.take_reminder() to deliver it (NULL: not yet); cleared with reminder_sent_at';
COMMENT ON FUNCTION crm.claim_due_reminders(integer, timestamptz) IS
'Claims up to max_count due reminders (remind_at <= due_before, default now(), not yet sent, activity open) that the caller may update, oldest first, skipping those another worker holds; marks them sent, returns them, and sends one NOTIFY crm_reminder per reminder (JSON payload) when the transaction commits. Each reminder is claimed exactly once; a rolled-back claim releases it. Listeners deliver what crm.take_reminder() returns for a notification, not the notification itself.';
CREATE FUNCTION crm.take_reminder(activity_id bigint, remind_at timestamptz)
    RETURNS SETOF crm.reminder
    AS 'MODULE_PATHNAME', 'crm_take_reminder'
    LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 1
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.take_reminder(bigint, timestamptz) IS
'For each crm_reminder notification: pass its activity_id and remind_at. Returns the reminder (one row) the first time for a claim that committed and marks it taken; returns no row for a forged notification (not claimed, other remind_at), for one received again, and for an activity the caller may not update. Deliver only what it returns.';
REVOKE ALL ON FUNCTION crm.take_reminder(bigint, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.take_reminder(bigint, timestamptz) TO crm_admin, crm_manager, crm_sales;
