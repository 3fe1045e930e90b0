--------------------------------------------------------------------------
-- Activities with reminders
--
-- Tasks, meetings, calls and e-mails, each about exactly one lead, account,
-- contact or opportunity.  Activities on a lead are its follow-up record.
-- crm.claim_due_reminders() hands each due reminder to exactly one worker
-- (FOR UPDATE SKIP LOCKED) and announces it with NOTIFY on channel
-- crm_reminder when the claiming transaction commits.  Any role that can
-- connect may NOTIFY that channel too, so a listener delivers a reminder only
-- when crm.take_reminder() returns it: once per claim, never for a forged or
-- repeated notification.
--------------------------------------------------------------------------

CREATE TYPE crm.activity_type AS ENUM ('task', 'meeting', 'call', 'email');
COMMENT ON TYPE crm.activity_type IS 'Kind of activity: task, meeting, call or email';
CREATE TYPE crm.activity_status AS ENUM ('Planned', 'In Progress', 'Completed', 'Cancelled');
COMMENT ON TYPE crm.activity_status IS 'Activity status: Planned, In Progress, Completed or Cancelled (the last two are closed)';
CREATE TYPE crm.activity_priority AS ENUM ('Low', 'Normal', 'High', 'Urgent');
COMMENT ON TYPE crm.activity_priority IS 'Activity priority, lowest first';

CREATE TABLE crm.activity (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type              crm.activity_type NOT NULL,
    subject           text NOT NULL
                      CONSTRAINT activity_subject_not_blank CHECK (pg_catalog.btrim(subject) OPERATOR(pg_catalog.<>) ''),
    description       text,
    due_at            timestamptz,
    starts_at         timestamptz,
    ends_at           timestamptz,
    status            crm.activity_status NOT NULL DEFAULT 'Planned',
    priority          crm.activity_priority NOT NULL DEFAULT 'Normal',
    lead_id           bigint CONSTRAINT activity_lead_id_fkey REFERENCES crm.lead (id) ON DELETE CASCADE,
    account_id        bigint CONSTRAINT activity_account_id_fkey REFERENCES crm.account (id) ON DELETE CASCADE,
    contact_id        bigint CONSTRAINT activity_contact_id_fkey REFERENCES crm.contact (id) ON DELETE CASCADE,
    opportunity_id    bigint CONSTRAINT activity_opportunity_id_fkey REFERENCES crm.opportunity (id) ON DELETE CASCADE,
    remind_at         timestamptz,
    reminder_sent_at  timestamptz,
    reminder_taken_at timestamptz,
    completed_at      timestamptz,
    owner             regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT activity_about_exactly_one CHECK (pg_catalog.num_nonnulls(lead_id, account_id, contact_id, opportunity_id) OPERATOR(pg_catalog.=) 1),
    CONSTRAINT activity_ends_after_start CHECK (ends_at IS NULL OR starts_at IS NULL OR ends_at OPERATOR(pg_catalog.>=) starts_at),
    CONSTRAINT activity_timed CHECK (
        (type OPERATOR(pg_catalog.=) 'task'::crm.activity_type) OR starts_at IS NOT NULL),
    CONSTRAINT activity_completed_at CHECK (
        (status OPERATOR(pg_catalog.=) 'Completed'::crm.activity_status) = (completed_at IS NOT NULL))
);
COMMENT ON TABLE crm.activity IS 'Tasks, meetings, calls and e-mails about one lead, account, contact or opportunity; those on a lead are its follow-up record';
COMMENT ON COLUMN crm.activity.id IS 'Activity id, assigned by the database';
COMMENT ON COLUMN crm.activity.type IS 'task, meeting, call or email';
COMMENT ON COLUMN crm.activity.subject IS 'Short title';
COMMENT ON COLUMN crm.activity.description IS 'Details, notes, outcome';
COMMENT ON COLUMN crm.activity.due_at IS 'When a task is due (overdue when past and still open)';
COMMENT ON COLUMN crm.activity.starts_at IS 'When a meeting, call or e-mail takes place (required for them)';
COMMENT ON COLUMN crm.activity.ends_at IS 'When it ends, not before starts_at';
COMMENT ON COLUMN crm.activity.status IS 'Planned, In Progress, Completed or Cancelled';
COMMENT ON COLUMN crm.activity.priority IS 'Low, Normal, High or Urgent';
COMMENT ON COLUMN crm.activity.lead_id IS 'The lead it is about (exactly one of lead, account, contact, opportunity)';
COMMENT ON COLUMN crm.activity.account_id IS 'The account it is about';
COMMENT ON COLUMN crm.activity.contact_id IS 'The contact it is about';
COMMENT ON COLUMN crm.activity.opportunity_id IS 'The opportunity it is about';
COMMENT ON COLUMN crm.activity.remind_at IS 'When to remind the owner; claimed by crm.claim_due_reminders()';
COMMENT ON COLUMN crm.activity.reminder_sent_at IS 'When the reminder was claimed for delivery (NULL: not yet); cleared when remind_at changes';
COMMENT ON COLUMN crm.activity.reminder_taken_at IS 'When a listener took the claimed reminder with crm.take_reminder() to deliver it (NULL: not yet); cleared with reminder_sent_at';
COMMENT ON COLUMN crm.activity.completed_at IS 'When the activity was completed; set by the database';
COMMENT ON COLUMN crm.activity.owner IS 'CRM user (database role) the activity is assigned to';
COMMENT ON COLUMN crm.activity.created_at IS 'When the activity was created; set by the database';
COMMENT ON COLUMN crm.activity.updated_at IS 'When the activity was last changed; set by the database';
CREATE INDEX activity_lead_id_idx ON crm.activity (lead_id) WHERE lead_id IS NOT NULL;
CREATE INDEX activity_account_id_idx ON crm.activity (account_id, completed_at) WHERE account_id IS NOT NULL;
CREATE INDEX activity_contact_id_idx ON crm.activity (contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX activity_opportunity_id_idx ON crm.activity (opportunity_id) WHERE opportunity_id IS NOT NULL;
CREATE INDEX activity_owner_due_idx ON crm.activity (owner, due_at);
CREATE INDEX activity_due_reminder_idx ON crm.activity (remind_at) WHERE reminder_sent_at IS NULL AND remind_at IS NOT NULL;

CREATE TYPE crm.participant_response AS ENUM ('Needs Action', 'Accepted', 'Tentative', 'Declined');
COMMENT ON TYPE crm.participant_response IS 'A participant''s answer to an invitation';

CREATE TABLE crm.activity_participant (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    activity_id      bigint NOT NULL CONSTRAINT activity_participant_activity_id_fkey
                     REFERENCES crm.activity (id) ON DELETE CASCADE,
    contact_id       bigint CONSTRAINT activity_participant_contact_id_fkey
                     REFERENCES crm.contact (id) ON DELETE CASCADE,
    user_role        regrole,
    response_status  crm.participant_response NOT NULL DEFAULT 'Needs Action',
    responded_at     timestamptz,
    owner            regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT activity_participant_contact_or_user CHECK (pg_catalog.num_nonnulls(contact_id, user_role) OPERATOR(pg_catalog.=) 1),
    CONSTRAINT activity_participant_contact_key UNIQUE (activity_id, contact_id),
    CONSTRAINT activity_participant_user_key UNIQUE (activity_id, user_role)
);
COMMENT ON TABLE crm.activity_participant IS 'Who takes part in an activity: contacts and CRM users, with their response';
COMMENT ON COLUMN crm.activity_participant.id IS 'Participant id, assigned by the database';
COMMENT ON COLUMN crm.activity_participant.activity_id IS 'The activity';
COMMENT ON COLUMN crm.activity_participant.contact_id IS 'A contact taking part (or user_role)';
COMMENT ON COLUMN crm.activity_participant.user_role IS 'A CRM user (database role) taking part (or contact_id)';
COMMENT ON COLUMN crm.activity_participant.response_status IS 'Needs Action, Accepted, Tentative or Declined';
COMMENT ON COLUMN crm.activity_participant.responded_at IS 'When the response was last changed; set by the database';
COMMENT ON COLUMN crm.activity_participant.owner IS 'CRM user (database role) who added the participant';
COMMENT ON COLUMN crm.activity_participant.created_at IS 'When the participant was added; set by the database';
COMMENT ON COLUMN crm.activity_participant.updated_at IS 'When the participant was last changed; set by the database';
CREATE INDEX activity_participant_contact_id_idx ON crm.activity_participant (contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX activity_participant_user_role_idx ON crm.activity_participant (user_role) WHERE user_role IS NOT NULL;

CREATE FUNCTION crm_internal.activity_lifecycle() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_activity_lifecycle'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.activity_lifecycle() IS 'BEFORE INSERT OR UPDATE row trigger on crm.activity: keeps completed_at with status Completed, re-arms the reminder when remind_at changes, refuses an UPDATE that moves it to a record the writer cannot see (42501), checks the recurrence rule and keeps series_id and occurrence_number';
CREATE TRIGGER activity_lifecycle BEFORE INSERT OR UPDATE ON crm.activity
    FOR EACH ROW EXECUTE FUNCTION crm_internal.activity_lifecycle();
CREATE FUNCTION crm_internal.participant_response() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_participant_response'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.participant_response() IS 'BEFORE INSERT OR UPDATE row trigger on crm.activity_participant: stamps responded_at when the response changes and keeps it otherwise';
CREATE TRIGGER participant_response BEFORE INSERT OR UPDATE ON crm.activity_participant
    FOR EACH ROW EXECUTE FUNCTION crm_internal.participant_response();

CREATE TYPE crm.reminder AS (
    activity_id  bigint,
    owner        regrole,
    type         crm.activity_type,
    subject      text,
    remind_at    timestamptz,
    due_at       timestamptz,
    starts_at    timestamptz,
    lead_id      bigint,
    account_id   bigint,
    contact_id   bigint,
    opportunity_id bigint
);
COMMENT ON TYPE crm.reminder IS 'A reminder handed out by crm.claim_due_reminders(); the NOTIFY payload on channel crm_reminder is the same as JSON';

CREATE FUNCTION crm.claim_due_reminders(max_count integer DEFAULT 100, due_before timestamptz DEFAULT NULL)
    RETURNS SETOF crm.reminder
    AS 'MODULE_PATHNAME', 'crm_claim_due_reminders'
    LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 100
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.claim_due_reminders(integer, timestamptz) IS
'Claims up to max_count due reminders (remind_at <= due_before, default now(), not yet sent, activity open) that the caller may update, oldest first, skipping those another worker holds; marks them sent, returns them, and sends one NOTIFY crm_reminder per reminder (JSON payload) when the transaction commits. Each reminder is claimed exactly once; a rolled-back claim releases it. Listeners deliver what crm.take_reminder() returns for a notification, not the notification itself.';

CREATE FUNCTION crm.take_reminder(activity_id bigint, remind_at timestamptz)
    RETURNS SETOF crm.reminder
    AS 'MODULE_PATHNAME', 'crm_take_reminder'
    LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 1
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.take_reminder(bigint, timestamptz) IS
'For each crm_reminder notification: pass its activity_id and remind_at. Returns the reminder (one row) the first time for a claim that committed and marks it taken; returns no row for a forged notification (not claimed, other remind_at), for one received again, and for an activity the caller may not update. Deliver only what it returns.';

-- Overdue tasks, and how many per owner.
CREATE VIEW crm.overdue_task WITH (security_invoker = true) AS
    SELECT a.id AS activity_id, pg_catalog.pg_get_userbyid(a.owner)::text AS owner, a.subject, a.priority, a.due_at,
           pg_catalog.now() OPERATOR(pg_catalog.-) a.due_at AS overdue_by,
           a.lead_id, a.account_id, a.contact_id, a.opportunity_id
      FROM crm.activity AS a
     WHERE a.type OPERATOR(pg_catalog.=) 'task'::crm.activity_type
       AND a.status OPERATOR(pg_catalog.<>) ALL (ARRAY['Completed', 'Cancelled']::crm.activity_status[])
       AND a.due_at OPERATOR(pg_catalog.<) pg_catalog.now();
COMMENT ON VIEW crm.overdue_task IS 'Open tasks whose due time has passed';
COMMENT ON COLUMN crm.overdue_task.activity_id IS 'The task';
COMMENT ON COLUMN crm.overdue_task.owner IS 'Who the task is assigned to: the role''s name, as text (crm.activity.owner is a regrole)';
COMMENT ON COLUMN crm.overdue_task.subject IS 'Task subject';
COMMENT ON COLUMN crm.overdue_task.priority IS 'Task priority';
COMMENT ON COLUMN crm.overdue_task.due_at IS 'When it was due';
COMMENT ON COLUMN crm.overdue_task.overdue_by IS 'How long ago it was due';
COMMENT ON COLUMN crm.overdue_task.lead_id IS 'Lead it is about, if any';
COMMENT ON COLUMN crm.overdue_task.account_id IS 'Account it is about, if any';
COMMENT ON COLUMN crm.overdue_task.contact_id IS 'Contact it is about, if any';
COMMENT ON COLUMN crm.overdue_task.opportunity_id IS 'Opportunity it is about, if any';

CREATE VIEW crm.overdue_tasks_by_owner WITH (security_invoker = true) AS
    SELECT o.owner, pg_catalog.count(*) AS overdue_tasks, pg_catalog.min(o.due_at) AS oldest_due_at,
           pg_catalog.count(*) FILTER (WHERE o.priority OPERATOR(pg_catalog.>=) 'High'::crm.activity_priority) AS high_priority
      FROM crm.overdue_task AS o
     GROUP BY o.owner;
COMMENT ON VIEW crm.overdue_tasks_by_owner IS 'Number of overdue tasks per owner';
COMMENT ON COLUMN crm.overdue_tasks_by_owner.owner IS 'Who the tasks are assigned to: the role''s name, as text (crm.activity.owner is a regrole)';
COMMENT ON COLUMN crm.overdue_tasks_by_owner.overdue_tasks IS 'How many of their tasks are overdue';
COMMENT ON COLUMN crm.overdue_tasks_by_owner.oldest_due_at IS 'Due time of the oldest overdue task';
COMMENT ON COLUMN crm.overdue_tasks_by_owner.high_priority IS 'How many of them are High or Urgent';

-- A lead's follow-up: its last completed and next open activity.
CREATE VIEW crm.lead_follow_up WITH (security_invoker = true) AS
    SELECT l.id AS lead_id, l.name, l.status, pg_catalog.pg_get_userbyid(l.owner)::text AS owner,
           (SELECT pg_catalog.max(a.completed_at) FROM crm.activity AS a
             WHERE a.lead_id OPERATOR(pg_catalog.=) l.id
               AND a.status OPERATOR(pg_catalog.=) 'Completed'::crm.activity_status) AS last_follow_up_at,
           (SELECT pg_catalog.min(COALESCE(a.starts_at, a.due_at)) FROM crm.activity AS a
             WHERE a.lead_id OPERATOR(pg_catalog.=) l.id
               AND a.status OPERATOR(pg_catalog.<>) ALL (ARRAY['Completed', 'Cancelled']::crm.activity_status[])) AS next_follow_up_at,
           (SELECT pg_catalog.count(*) FROM crm.activity AS a
             WHERE a.lead_id OPERATOR(pg_catalog.=) l.id) AS activities
      FROM crm.lead AS l;
COMMENT ON VIEW crm.lead_follow_up IS 'Follow-up of each lead: when it was last worked (last completed activity) and what is next (earliest open activity)';
COMMENT ON COLUMN crm.lead_follow_up.lead_id IS 'The lead';
COMMENT ON COLUMN crm.lead_follow_up.name IS 'Lead name';
COMMENT ON COLUMN crm.lead_follow_up.status IS 'Lead status';
COMMENT ON COLUMN crm.lead_follow_up.owner IS 'Lead owner: the role''s name, as text (crm.lead.owner is a regrole)';
COMMENT ON COLUMN crm.lead_follow_up.last_follow_up_at IS 'When the last follow-up activity was completed (NULL: never)';
COMMENT ON COLUMN crm.lead_follow_up.next_follow_up_at IS 'When the next open follow-up activity is due or starts (NULL: none planned)';
COMMENT ON COLUMN crm.lead_follow_up.activities IS 'Number of activities on the lead';

--------------------------------------------------------------------------
-- Recurring activities (src/recurrence.c)
--
-- An activity with a recurrence rule (a subset of iCalendar RRULE) is an
-- occurrence of a series.  Closing an open occurrence (Completed or
-- Cancelled) creates the next one, exactly once: the closing UPDATE holds
-- the row lock, and the unique index on (series_id, occurrence_number)
-- refuses a second one.  crm.activity_occurrences() expands the series for
-- calendar views without writing.
--------------------------------------------------------------------------
ALTER TABLE crm.activity
    ADD COLUMN recurrence text,
    ADD COLUMN recurrence_time_zone text,
    ADD COLUMN series_id bigint,
    ADD COLUMN occurrence_number integer,
    ADD COLUMN occurs_at timestamptz GENERATED ALWAYS AS (COALESCE(starts_at, due_at)) STORED,
    ADD CONSTRAINT activity_series_numbered CHECK ((series_id IS NULL) = (occurrence_number IS NULL)),
    ADD CONSTRAINT activity_occurrence_positive CHECK (occurrence_number OPERATOR(pg_catalog.>=) 1);
COMMENT ON COLUMN crm.activity.recurrence IS 'How the activity repeats: an iCalendar RRULE subset (FREQ=DAILY|WEEKLY|MONTHLY; INTERVAL, COUNT or UNTIL, BYDAY for WEEKLY), stored in canonical form; NULL: does not repeat. Completing or cancelling the occurrence creates the next one';
COMMENT ON COLUMN crm.activity.recurrence_time_zone IS 'Time zone in which the series repeats (a 09:00 meeting stays at 09:00 local time); defaults to the session time zone when the rule is set';
COMMENT ON COLUMN crm.activity.series_id IS 'Series the activity is an occurrence of: the id of its first occurrence (NULL: not recurring); set by the database';
COMMENT ON COLUMN crm.activity.occurrence_number IS 'Position of the occurrence in its series, from 1; set by the database';
COMMENT ON COLUMN crm.activity.occurs_at IS 'When the activity takes place on a calendar: starts_at, or due_at when there is none; computed by the database';
CREATE UNIQUE INDEX activity_series_occurrence_key ON crm.activity (series_id, occurrence_number)
    WHERE series_id IS NOT NULL;
CREATE INDEX activity_occurs_at_idx ON crm.activity (occurs_at);
CREATE INDEX activity_series_head_idx ON crm.activity (occurs_at)
    WHERE recurrence IS NOT NULL
      AND status OPERATOR(pg_catalog.<>) ALL (ARRAY['Completed', 'Cancelled']::crm.activity_status[]);
COMMENT ON INDEX crm.activity_series_occurrence_key IS 'One activity per position of a series: the next occurrence is created once';

CREATE FUNCTION crm_internal.activity_next_occurrence() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_activity_next_occurrence'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.activity_next_occurrence() IS 'AFTER UPDATE OF status row trigger on crm.activity: when a recurring occurrence goes from Planned or In Progress to Completed or Cancelled, inserts the next occurrence of its series (at most once)';
CREATE TRIGGER activity_next_occurrence AFTER UPDATE OF status ON crm.activity
    FOR EACH ROW
    WHEN (NEW.recurrence IS NOT NULL AND OLD.status OPERATOR(pg_catalog.<>) NEW.status)
    EXECUTE FUNCTION crm_internal.activity_next_occurrence();

CREATE FUNCTION crm.activity_occurrences("from" timestamptz, "to" timestamptz)
    RETURNS TABLE (activity_id bigint, series_id bigint, occurrence_number integer, is_virtual boolean,
                   occurs_at timestamptz, type crm.activity_type, subject text, status crm.activity_status,
                   owner regrole, due_at timestamptz, starts_at timestamptz, ends_at timestamptz,
                   lead_id bigint, account_id bigint, contact_id bigint, opportunity_id bigint)
    AS 'MODULE_PATHNAME', 'crm_activity_occurrences'
    LANGUAGE C STABLE PARALLEL UNSAFE ROWS 100
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.activity_occurrences(timestamptz, timestamptz) IS
'Calendar view of activities the caller sees from "from" (included) to "to" (excluded): the stored activities (is_virtual false) and the future occurrences the open occurrence of each recurring series will create (is_virtual true, activity_id NULL), without writing anything. occurs_at is starts_at, or due_at for tasks. At most 10,000 future occurrences per call (54000 beyond)';
