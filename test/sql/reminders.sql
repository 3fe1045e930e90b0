-- reminders: crm.claim_due_reminders() hands out each due reminder once,
-- oldest first, to a caller who may update the activity; claimed reminders
-- are marked sent; moving remind_at re-arms them; crm.take_reminder() tells
-- a real notification from a forged or repeated one.  (Delivery to several
-- concurrent workers and the NOTIFY are in the isolation spec reminders.)
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_worker, regress_outsider;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_worker IN ROLE crm_sales;
CREATE ROLE regress_outsider;
GRANT USAGE ON SCHEMA crm TO regress_outsider;

INSERT INTO crm.account (name) VALUES ('Acme');
-- The worker's own tasks; row-level security hands a rep only their own
-- reminders (a dispatcher for everybody's runs as crm_admin).
INSERT INTO crm.activity (type, subject, account_id, due_at, remind_at, owner) VALUES
    ('task', 'Old reminder', 1, '2026-01-02', '2026-01-01 09:00+00', 'regress_worker'),
    ('task', 'Due reminder', 1, '2026-01-03', '2026-01-02 09:00+00', 'regress_worker'),
    ('task', 'Future reminder', 1, '2099-01-03', '2099-01-02 09:00+00', 'regress_worker'),
    ('task', 'Closed task', 1, '2026-01-03', '2026-01-01 08:00+00', 'regress_worker'),
    ('task', 'No reminder', 1, '2026-01-03', NULL, 'regress_worker'),
    ('task', 'Somebody else''s', 1, '2026-01-03', '2026-01-01 09:30+00', 'postgres');
UPDATE crm.activity SET status = 'Cancelled' WHERE subject = 'Closed task';

-- Claim: due, unsent, open; oldest first; at most max_count.
SET ROLE regress_worker;
SELECT activity_id, subject, remind_at FROM crm.claim_due_reminders(1);
SELECT activity_id, subject FROM crm.claim_due_reminders(10);
-- Nothing is handed out twice.
SELECT count(*) AS again FROM crm.claim_due_reminders(10);
-- due_before looks ahead.
SELECT subject FROM crm.claim_due_reminders(10, '2100-01-01');
RESET ROLE;
SELECT subject, reminder_sent_at IS NOT NULL AS sent FROM crm.activity ORDER BY id;

-- Moving remind_at re-arms the reminder.
UPDATE crm.activity SET remind_at = '2026-02-01 09:00+00' WHERE subject = 'Old reminder';
SELECT subject FROM crm.claim_due_reminders(10);
-- A rolled-back claim leaves the reminder for the next worker.
UPDATE crm.activity SET remind_at = '2026-03-01 09:00+00' WHERE subject = 'Old reminder';
BEGIN;
SELECT subject FROM crm.claim_due_reminders(10);
ROLLBACK;
SELECT subject FROM crm.claim_due_reminders(10);

-- A very long subject does not block delivery: the NOTIFY payload carries
-- only the activity id and remind_at (any connected role may LISTEN).
INSERT INTO crm.activity (type, subject, account_id, due_at, remind_at)
VALUES ('task', repeat('long ', 2000), 1, '2026-01-03', '2026-01-01 10:00+00');
SELECT length(subject) FROM crm.claim_due_reminders(10);

-- A notification proves nothing: PostgreSQL lets any role that can connect
-- send one on any channel.  A listener delivers a reminder only when
-- crm.take_reminder(activity_id, remind_at) of the payload returns it, which
-- happens once per committed claim.
INSERT INTO crm.activity (type, subject, account_id, due_at, remind_at, owner) VALUES
    ('task', 'Announced', 1, '2026-04-03', '2026-04-01 09:00+00', 'regress_worker'),
    ('task', 'Not yet claimed', 1, '2026-04-03', '2026-04-01 10:00+00', 'regress_worker');
SET ROLE regress_outsider;   -- no CRM rights at all, only CONNECT
NOTIFY crm_reminder, '{"activity_id" : 9, "remind_at" : "2026-04-01T09:00:00+00:00"}';
RESET ROLE;
SET ROLE regress_worker;
SELECT subject FROM crm.claim_due_reminders(1, '2026-04-01 09:30+00');
-- the real notification (this claim's id and remind_at) is taken once ...
SELECT activity_id, subject FROM crm.take_reminder(
    (SELECT id FROM crm.activity WHERE subject = 'Announced'), '2026-04-01T09:00:00+00:00');
-- ... and the same payload sent again (a replay, or a forgery copying it) is not
SELECT count(*) AS replayed FROM crm.take_reminder(
    (SELECT id FROM crm.activity WHERE subject = 'Announced'), '2026-04-01T09:00:00+00:00');
-- a forged payload for a reminder nobody claimed, or with another remind_at
SELECT count(*) AS forged_unclaimed FROM crm.take_reminder(
    (SELECT id FROM crm.activity WHERE subject = 'Not yet claimed'), '2026-04-01T10:00:00+00:00');
SELECT count(*) AS forged_time FROM crm.take_reminder(
    (SELECT id FROM crm.activity WHERE subject = 'Announced'), '2026-04-01T09:00:01+00:00');
-- a forged payload for an id that does not exist
SELECT count(*) AS forged_id FROM crm.take_reminder(999999, '2026-04-01T09:00:00+00:00');
RESET ROLE;
-- Taking is per claim: a re-armed reminder is claimed and taken again.
UPDATE crm.activity SET remind_at = '2026-04-02 09:00+00' WHERE subject = 'Announced';
SELECT reminder_sent_at IS NULL AS unsent, reminder_taken_at IS NULL AS untaken FROM crm.activity WHERE subject = 'Announced';
SET ROLE regress_worker;
SELECT subject FROM crm.claim_due_reminders(10, '2026-04-02 09:30+00');
SELECT subject FROM crm.take_reminder((SELECT id FROM crm.activity WHERE subject = 'Announced'), '2026-04-02 09:00+00');
SELECT subject FROM crm.take_reminder((SELECT id FROM crm.activity WHERE subject = 'Not yet claimed'), '2026-04-01 10:00+00');
RESET ROLE;
-- Only a role that may update the activity takes it (row-level security:
-- the rep gets nothing for another owner's claimed reminder, its owner does),
-- and only CRM roles may call the function.
SELECT id AS other_id FROM crm.activity WHERE subject = 'Somebody else''s' \gset
SET ROLE regress_worker;
SELECT count(*) AS not_mine FROM crm.take_reminder(:other_id, '2026-01-01 09:30+00');
RESET ROLE;
SELECT subject FROM crm.take_reminder(:other_id, '2026-01-01 09:30+00');
SET ROLE regress_outsider;
SELECT count(*) FROM crm.take_reminder(1, '2026-01-01 09:00+00');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT * FROM crm.take_reminder(NULL, now());
\echo :LAST_ERROR_SQLSTATE

-- Bad arguments (22023, 22004); no EXECUTE for outsiders (42501).
SELECT * FROM crm.claim_due_reminders(0);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM crm.claim_due_reminders(NULL);
\echo :LAST_ERROR_SQLSTATE
SET ROLE regress_outsider;
SELECT * FROM crm.claim_due_reminders(10);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

REVOKE USAGE ON SCHEMA crm FROM regress_outsider;
DROP EXTENSION crm CASCADE;
DROP ROLE regress_worker, regress_outsider;
