-- activities: tasks, meetings, calls and e-mails about exactly one record;
-- participants with responses; completed_at kept by the database; overdue
-- tasks per owner; a lead's last and next follow-up.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;
\set VERBOSITY terse

INSERT INTO crm.account (name) VALUES ('Acme');
INSERT INTO crm.contact (name, account_id) VALUES ('Wile E.', 1), ('Road Runner', 1);
INSERT INTO crm.lead (name, company) VALUES ('Daffy', 'Duck Inc');

-- An activity is about exactly one lead, account, contact or opportunity.
INSERT INTO crm.activity (type, subject, lead_id, due_at) VALUES ('task', 'Call back', 1, now() - interval '2 days');
INSERT INTO crm.activity (type, subject, due_at) VALUES ('task', 'About nothing', now());
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.activity (type, subject, lead_id, account_id, due_at) VALUES ('task', 'About two', 1, 1, now());
\echo :LAST_ERROR_SQLSTATE
-- Meetings, calls and e-mails have a start; the end is not before it.
INSERT INTO crm.activity (type, subject, account_id) VALUES ('meeting', 'Kick-off', 1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.activity (type, subject, account_id, starts_at, ends_at) VALUES ('meeting', 'Backwards', 1, '2027-01-02', '2027-01-01');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.activity (type, subject, account_id, starts_at, ends_at, priority)
VALUES ('meeting', 'Kick-off', 1, '2027-01-10 10:00+00', '2027-01-10 11:00+00', 'High')
RETURNING id AS meeting \gset
INSERT INTO crm.activity (type, subject, account_id) VALUES ('fax', 'x', 1);
\echo :LAST_ERROR_SQLSTATE

-- Participants: contacts or CRM users, once each, with a response.
INSERT INTO crm.activity_participant (activity_id, contact_id) VALUES (:meeting, 1), (:meeting, 2);
INSERT INTO crm.activity_participant (activity_id, user_role) VALUES (:meeting, 'crm_sales');
INSERT INTO crm.activity_participant (activity_id, contact_id) VALUES (:meeting, 1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.activity_participant (activity_id, contact_id, user_role) VALUES (:meeting, 1, 'crm_sales');
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.activity_participant SET response_status = 'Accepted' WHERE contact_id = 1;
SELECT contact_id, user_role, response_status, responded_at IS NOT NULL AS responded FROM crm.activity_participant ORDER BY id;

-- completed_at follows the status, whatever the client sends.
BEGIN;
UPDATE crm.activity SET status = 'Completed', completed_at = '2001-01-01' WHERE id = :meeting;
SELECT status, completed_at = now() AS completed_now FROM crm.activity WHERE id = :meeting;
COMMIT;
UPDATE crm.activity SET status = 'In Progress' WHERE id = :meeting;
SELECT status, completed_at FROM crm.activity WHERE id = :meeting;
INSERT INTO crm.activity (type, subject, lead_id, completed_at) VALUES ('task', 'Sneaky', 1, '2001-01-01');
SELECT completed_at FROM crm.activity WHERE subject = 'Sneaky';

-- Overdue tasks: open tasks past their due time, and how many per owner.
INSERT INTO crm.activity (type, subject, lead_id, due_at, priority, owner) VALUES
    ('task', 'Send proposal', 1, now() - interval '1 hour', 'Urgent', 'crm_sales'),
    ('task', 'Done already', 1, now() - interval '3 days', 'Normal', 'crm_sales'),
    ('task', 'Not yet due', 1, now() + interval '1 day', 'Normal', 'crm_sales');
UPDATE crm.activity SET status = 'Completed' WHERE subject = 'Done already';
SELECT subject, priority, overdue_by > interval '0' AS overdue FROM crm.overdue_task ORDER BY due_at;
SELECT owner, overdue_tasks, high_priority FROM crm.overdue_tasks_by_owner ORDER BY owner::text;

-- A lead's follow-up: last completed and next open activity.
SELECT lead_id, last_follow_up_at IS NOT NULL AS has_last,
       next_follow_up_at = (SELECT min(due_at) FROM crm.activity WHERE lead_id = 1 AND status NOT IN ('Completed', 'Cancelled')) AS next_is_earliest_open,
       activities
  FROM crm.lead_follow_up;

-- Deleting the record deletes its activities.
DELETE FROM crm.lead WHERE id = 1;
SELECT count(*) AS activities_left FROM crm.activity WHERE lead_id = 1;
