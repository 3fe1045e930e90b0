-- Recurring activities: the recurrence rule (an iCalendar RRULE subset),
-- the next occurrence created once when one is completed or cancelled, and
-- crm.activity_occurrences() for calendar views.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_rec_rep1;
DROP ROLE IF EXISTS regress_rec_rep2;
CREATE ROLE regress_rec_rep1 IN ROLE crm_sales;
CREATE ROLE regress_rec_rep2 IN ROLE crm_sales;
RESET client_min_messages;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO';

INSERT INTO crm.account (name, owner) VALUES ('Acme', 'regress_rec_rep1');   -- account 1

-- try_rule: the stored (canonical) rule, or the SQLSTATE and detail of the refusal
CREATE FUNCTION pg_temp.try_rule(rule text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    stored text;
    st text;
    detail text;
BEGIN
    INSERT INTO crm.activity (type, subject, account_id, due_at, recurrence)
        VALUES ('task', 'Rule', 1, '2027-01-04 09:00+00', rule) RETURNING recurrence INTO stored;
    RAISE EXCEPTION USING ERRCODE = 'XX999', MESSAGE = stored;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, detail = PG_EXCEPTION_DETAIL;
    RETURN CASE WHEN st = 'XX999' THEN SQLERRM ELSE st || ': ' || detail END;
END $$;

-- Valid rules are stored in canonical form: upper case, FREQ, INTERVAL (when
-- not 1), BYDAY in week order, COUNT or UNTIL; "RRULE:" and surrounding white
-- space are dropped.
SELECT rule, pg_temp.try_rule(rule) AS stored FROM (VALUES
    ('FREQ=DAILY'),
    ('freq=weekly;interval=2;byday=we,mo'),
    ('RRULE:FREQ=MONTHLY;COUNT=12'),
    ('  FREQ=DAILY;UNTIL=20270131  '),
    ('FREQ=DAILY;UNTIL=20270131T235959Z'),
    ('FREQ=WEEKLY;INTERVAL=1'),
    ('INTERVAL=999;FREQ=DAILY'),
    ('FREQ=DAILY;COUNT=100000'),
    ('FREQ=WEEKLY;BYDAY=SU,SA,FR,TH,WE,TU,MO')) AS t(rule);

-- Bad rules: ZC420, the detail names the offending part.
SELECT rule, pg_temp.try_rule(rule) AS refused FROM (VALUES
    (''), ('   '), ('RRULE:'), ('FREQ'), ('FREQ='), ('=DAILY'),
    ('FREQ=YEARLY'), ('FREQ=HOURLY'), ('INTERVAL=2'), ('FREQ = DAILY'),
    ('FREQ=DAILY;'), (';FREQ=DAILY'), ('FREQ=DAILY;;COUNT=2'),
    ('FREQ=DAILY;FREQ=WEEKLY'), ('FREQ=DAILY;COUNT=2;COUNT=3'),
    ('FREQ=DAILY;WKST=MO'), ('FREQ=MONTHLY;BYMONTHDAY=1'), ('FREQ=DAILY;X-NAME=1'),
    ('FREQ=DAILY;INTERVAL=0'), ('FREQ=DAILY;INTERVAL=1000'), ('FREQ=DAILY;INTERVAL=-1'),
    ('FREQ=DAILY;INTERVAL=abc'), ('FREQ=DAILY;INTERVAL=9999999'),
    ('FREQ=DAILY;COUNT=0'), ('FREQ=DAILY;COUNT=100001'),
    ('FREQ=DAILY;COUNT=5;UNTIL=20270101'),
    ('FREQ=DAILY;UNTIL=2027-01-01'), ('FREQ=DAILY;UNTIL=20270230'),
    ('FREQ=DAILY;UNTIL=20270101T120000'), ('FREQ=DAILY;UNTIL=20270101T250000Z'),
    ('FREQ=DAILY;UNTIL=00000101'),
    ('FREQ=DAILY;BYDAY=MO'), ('FREQ=MONTHLY;BYDAY=MO'),
    ('FREQ=WEEKLY;BYDAY=1MO'), ('FREQ=WEEKLY;BYDAY=-1FR'), ('FREQ=WEEKLY;BYDAY=MO,MO'),
    ('FREQ=WEEKLY;BYDAY=XX'), ('FREQ=WEEKLY;BYDAY=MO,'), ('FREQ=WEEKLY;BYDAY=MO,,TU'),
    ('FREQ=WEEKLY;BYDAY=MONDAY')) AS t(rule);
-- A long part is shown by its first 60 bytes (whole characters).
SELECT pg_temp.try_rule('FREQ=DAILY;X-' || repeat('é', 100)) AS refused;

\set VERBOSITY default
-- A recurring activity needs a time to repeat from (starts_at, or due_at).
INSERT INTO crm.activity (type, subject, account_id, recurrence) VALUES ('task', 'No date', 1, 'FREQ=DAILY');
-- The time zone must be one PostgreSQL knows.
INSERT INTO crm.activity (type, subject, account_id, due_at, recurrence, recurrence_time_zone)
    VALUES ('task', 'Bad zone', 1, '2027-01-04', 'FREQ=DAILY', 'Mars/Olympus');
\set VERBOSITY terse

-- The time zone defaults to the session's when the rule is set.
SET TimeZone = 'America/New_York';
INSERT INTO crm.activity (type, subject, account_id, due_at, recurrence)
    VALUES ('task', 'Zone', 1, '2027-01-04 09:00', 'FREQ=DAILY') RETURNING recurrence_time_zone, series_id = id AS first, occurrence_number;
SET TimeZone = 'UTC';
DELETE FROM crm.activity;

-- A daily task, three occurrences (COUNT=3), with a reminder an hour before.
SET ROLE regress_rec_rep1;
INSERT INTO crm.activity (type, subject, account_id, due_at, remind_at, recurrence, recurrence_time_zone)
    VALUES ('task', 'Stand-up notes', 1, '2027-01-04 09:00+00', '2027-01-04 08:00+00', 'FREQ=DAILY;COUNT=3', 'UTC');
CREATE TEMP VIEW series AS
    SELECT occurrence_number AS n, status, due_at, remind_at, reminder_sent_at IS NOT NULL AS sent,
           owner, account_id, recurrence
      FROM crm.activity ORDER BY series_id, occurrence_number;
SELECT * FROM series;
-- Completing it creates the next one; the reminder moves with it, unsent.
UPDATE crm.activity SET reminder_sent_at = now() WHERE occurrence_number = 1;
UPDATE crm.activity SET status = 'Completed' WHERE occurrence_number = 1;
SELECT * FROM series;
-- Cancelling creates the next one too; the third is the last (COUNT=3).
UPDATE crm.activity SET status = 'Cancelled' WHERE occurrence_number = 2;
UPDATE crm.activity SET status = 'In Progress' WHERE occurrence_number = 3;
UPDATE crm.activity SET status = 'Completed' WHERE occurrence_number = 3;
SELECT * FROM series;
-- Re-opening a closed occurrence and closing it again creates nothing more.
UPDATE crm.activity SET status = 'Planned' WHERE occurrence_number = 1;
UPDATE crm.activity SET status = 'Completed' WHERE occurrence_number = 1;
UPDATE crm.activity SET status = 'Planned' WHERE occurrence_number = 1;
UPDATE crm.activity SET status = 'Cancelled' WHERE occurrence_number = 1;
SELECT count(*) AS occurrences FROM crm.activity;
-- series_id and occurrence_number are the database's: no role may write
-- them (42501) ...
INSERT INTO crm.activity (type, subject, account_id, due_at, recurrence, series_id, occurrence_number)
    SELECT 'task', 'Forged', 1, '2027-01-04', 'FREQ=DAILY', series_id, 4 FROM crm.activity WHERE occurrence_number = 1
    RETURNING series_id = id AS own_series, occurrence_number;
INSERT INTO crm.activity (type, subject, account_id, due_at, series_id, occurrence_number)
    SELECT 'task', 'Forged', 1, '2027-01-04', series_id, 5 FROM crm.activity WHERE subject = 'Stand-up notes' AND occurrence_number = 1
    RETURNING series_id, occurrence_number;
UPDATE crm.activity SET series_id = 1, occurrence_number = 9 WHERE subject = 'Forged' AND recurrence IS NOT NULL
    RETURNING series_id = id AS own_series, occurrence_number;
-- ... and where a superuser does, a forged position is replaced (a new
-- series, or none without a rule), an update keeps them.
RESET ROLE;
INSERT INTO crm.activity (type, subject, account_id, due_at, recurrence, series_id, occurrence_number)
    SELECT 'task', 'Forged', 1, '2027-01-04', 'FREQ=DAILY', series_id, 4 FROM crm.activity WHERE occurrence_number = 1
    RETURNING series_id = id AS own_series, occurrence_number;
INSERT INTO crm.activity (type, subject, account_id, due_at, series_id, occurrence_number)
    SELECT 'task', 'Forged', 1, '2027-01-04', series_id, 5 FROM crm.activity WHERE subject = 'Stand-up notes' AND occurrence_number = 1
    RETURNING series_id, occurrence_number;
UPDATE crm.activity SET series_id = 1, occurrence_number = 9 WHERE subject = 'Forged' AND recurrence IS NOT NULL
    RETURNING series_id = id AS own_series, occurrence_number;
DELETE FROM crm.activity;

-- Weekly on Monday, Wednesday and Friday every other week: after Friday
-- comes Monday two weeks on, then Wednesday.  Weeks start on Monday.
INSERT INTO crm.activity (type, subject, account_id, due_at, recurrence, recurrence_time_zone)
    VALUES ('task', 'Fortnightly', 1, '2027-01-08 10:00+00', 'FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE,FR', 'UTC');
UPDATE crm.activity SET status = 'Completed' WHERE occurrence_number = 1;
UPDATE crm.activity SET status = 'Completed' WHERE occurrence_number = 2;
UPDATE crm.activity SET status = 'Completed' WHERE occurrence_number = 3;
SELECT occurrence_number AS n, due_at, to_char(due_at, 'Dy') AS day FROM crm.activity ORDER BY 1;
DELETE FROM crm.activity;

-- Monthly on the 31st skips the months without one (RFC 5545).
INSERT INTO crm.activity (type, subject, account_id, due_at, recurrence, recurrence_time_zone)
    VALUES ('task', 'Month end', 1, '2027-01-31 17:00+00', 'FREQ=MONTHLY', 'UTC');
UPDATE crm.activity SET status = 'Completed' WHERE occurrence_number = 1;
UPDATE crm.activity SET status = 'Completed' WHERE occurrence_number = 2;
SELECT occurrence_number AS n, due_at FROM crm.activity ORDER BY 1;
DELETE FROM crm.activity;

-- A weekly 09:00 meeting in Berlin stays at 09:00 local time across the
-- change to summer time (28 March 2027): 08:00 UTC, then 07:00 UTC.  The
-- end and the reminder move the same way.
INSERT INTO crm.activity (type, subject, account_id, starts_at, ends_at, remind_at, recurrence, recurrence_time_zone)
    VALUES ('meeting', 'Weekly sync', 1, '2027-03-22 09:00+01', '2027-03-22 09:30+01', '2027-03-22 08:45+01',
            'FREQ=WEEKLY', 'Europe/Berlin');
UPDATE crm.activity SET status = 'Completed' WHERE occurrence_number = 1;
SELECT occurrence_number AS n, starts_at, starts_at AT TIME ZONE 'Europe/Berlin' AS berlin,
       ends_at AT TIME ZONE 'Europe/Berlin' AS ends, remind_at AT TIME ZONE 'Europe/Berlin' AS remind
  FROM crm.activity ORDER BY 1;
DELETE FROM crm.activity;

-- UNTIL as a date: the last day, in the series' time zone (inclusive).
INSERT INTO crm.activity (type, subject, account_id, due_at, recurrence, recurrence_time_zone)
    VALUES ('task', 'Until date', 1, '2027-01-04 23:30+00', 'FREQ=DAILY;UNTIL=20270105', 'UTC');
UPDATE crm.activity SET status = 'Completed' WHERE occurrence_number = 1;
UPDATE crm.activity SET status = 'Completed' WHERE occurrence_number = 2;
SELECT occurrence_number AS n, due_at FROM crm.activity ORDER BY 1;
DELETE FROM crm.activity;
-- UNTIL as a UTC date-time: no occurrence after it.
INSERT INTO crm.activity (type, subject, account_id, due_at, recurrence, recurrence_time_zone)
    VALUES ('task', 'Until time', 1, '2027-01-04 09:00+00', 'FREQ=DAILY;UNTIL=20270105T085959Z', 'UTC');
UPDATE crm.activity SET status = 'Completed' WHERE occurrence_number = 1;
SELECT occurrence_number AS n, due_at FROM crm.activity ORDER BY 1;
DELETE FROM crm.activity;

-- Editing the rule of the open occurrence applies to the occurrences created
-- from then on; removing it ends the series; deleting the open occurrence too.
INSERT INTO crm.activity (type, subject, account_id, due_at, recurrence, recurrence_time_zone)
    VALUES ('task', 'Edited', 1, '2027-01-04 09:00+00', 'FREQ=DAILY', 'UTC');
UPDATE crm.activity SET recurrence = 'FREQ=WEEKLY' WHERE occurrence_number = 1;
UPDATE crm.activity SET status = 'Completed' WHERE occurrence_number = 1;
UPDATE crm.activity SET recurrence = NULL WHERE occurrence_number = 2;
UPDATE crm.activity SET status = 'Completed' WHERE occurrence_number = 2;
SELECT occurrence_number AS n, due_at, recurrence FROM crm.activity ORDER BY 1;
UPDATE crm.activity SET recurrence = 'FREQ=DAILY', status = 'Planned' WHERE occurrence_number = 2;
DELETE FROM crm.activity WHERE occurrence_number = 2;
UPDATE crm.activity SET status = 'Planned' WHERE occurrence_number = 1;
SELECT occurrence_number AS n, due_at, status FROM crm.activity ORDER BY 1;
DELETE FROM crm.activity;

-- crm.activity_occurrences(from, to): stored activities in the window and
-- the occurrences each open series will create, flagged is_virtual.
SET ROLE regress_rec_rep1;
INSERT INTO crm.activity (type, subject, account_id, due_at, recurrence, recurrence_time_zone)
    VALUES ('task', 'Daily, 4 times', 1, '2027-02-01 09:00+00', 'FREQ=DAILY;COUNT=4', 'UTC');
INSERT INTO crm.activity (type, subject, account_id, starts_at, ends_at, recurrence, recurrence_time_zone)
    VALUES ('meeting', 'Weekly', 1, '2027-01-25 14:00+00', '2027-01-25 15:00+00', 'FREQ=WEEKLY', 'UTC');
INSERT INTO crm.activity (type, subject, account_id, due_at)
    VALUES ('task', 'One-off', 1, '2027-02-02 12:00+00');
UPDATE crm.activity SET status = 'Completed' WHERE subject = 'Daily, 4 times';
SELECT activity_id IS NOT NULL AS stored, is_virtual, occurrence_number AS n, occurs_at, subject, status,
       due_at, starts_at, ends_at, owner, account_id
  FROM crm.activity_occurrences('2027-02-01', '2027-02-10') ORDER BY occurs_at, subject;
-- Nothing was written.
SELECT count(*) AS stored FROM crm.activity;
-- Another rep sees nothing of these series.
SET ROLE regress_rec_rep2;
SELECT count(*) FROM crm.activity_occurrences('2027-01-01', '2028-01-01');
-- Expansion is bounded: at most 10,000 future occurrences per call.
SET ROLE regress_rec_rep1;
SELECT count(*) FROM crm.activity_occurrences('2027-01-01', '2027-12-31');
SELECT count(*) FROM crm.activity_occurrences('2027-01-01', '2227-01-01');
INSERT INTO crm.activity (type, subject, account_id, due_at, recurrence, recurrence_time_zone)
    VALUES ('task', 'Daily forever', 1, '2027-01-01 09:00+00', 'FREQ=DAILY', 'UTC');
SELECT count(*) FROM crm.activity_occurrences('2027-01-01', '2127-01-01');
SELECT count(*) FROM crm.activity_occurrences('2400-01-01', '2400-01-02');
SELECT count(*) FROM crm.activity_occurrences('2027-01-01', '2027-12-31');
-- The window must be given and end after it starts.
SELECT count(*) FROM crm.activity_occurrences(NULL, '2027-01-01');
SELECT count(*) FROM crm.activity_occurrences('2027-01-01', '2027-01-01');
-- The other rep can neither see nor complete the series.
SET ROLE regress_rec_rep2;
UPDATE crm.activity SET status = 'Completed' WHERE subject = 'Daily forever';
RESET ROLE;
DELETE FROM crm.activity;

-- Conversion: a lead's open recurring task moves to the new opportunity,
-- and the next occurrence follows it there.
SET ROLE regress_rec_rep1;
INSERT INTO crm.lead (name, company, email) VALUES ('Lena', 'Lenaco', 'lena@lenaco.example');
INSERT INTO crm.activity (type, subject, lead_id, due_at, recurrence, recurrence_time_zone)
    SELECT 'task', 'Follow up', id, '2027-01-04 09:00+00', 'FREQ=WEEKLY', 'UTC' FROM crm.lead;
SELECT opportunity_id IS NOT NULL AS has_deal FROM crm.convert_lead((SELECT id FROM crm.lead));
UPDATE crm.activity SET status = 'Completed' WHERE occurrence_number = 1;
SELECT occurrence_number AS n, status, due_at, lead_id IS NOT NULL AS on_lead,
       opportunity_id IS NOT NULL AS on_deal, owner
  FROM crm.activity ORDER BY 1;
RESET ROLE;
