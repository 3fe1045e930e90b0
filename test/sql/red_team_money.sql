-- red_team_money: attacks on custom fields, recurring activities, quotes and
-- contact roles by a hostile rep, and the rules that stop them.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_rtm_admin, regress_rtm_a, regress_rtm_b;
RESET client_min_messages;
\set VERBOSITY terse
SET DateStyle = ISO;
CREATE ROLE regress_rtm_admin IN ROLE crm_admin;
CREATE ROLE regress_rtm_a IN ROLE crm_sales;
CREATE ROLE regress_rtm_b IN ROLE crm_sales;

SET ROLE regress_rtm_admin;
INSERT INTO crm.custom_field (object, name, label, type) VALUES
    ('lead', 'note', 'Note', 'text'), ('account', 'note', 'Note', 'text'), ('contact', 'note', 'Note', 'text');
RESET ROLE;

-- Rep B owns an account and its contact; an admin gives rep A a deal on
-- that account, so A sees both (sharing rule) but may not change them.
SET ROLE regress_rtm_b;
INSERT INTO crm.account (name) VALUES ('Bcorp');
INSERT INTO crm.contact (name, email, account_id)
    SELECT 'Bob Bee', 'bob@bcorp.example', id FROM crm.account WHERE name = 'Bcorp';
RESET ROLE;
INSERT INTO crm.opportunity (name, account_id, owner, stage)
    SELECT 'A on Bcorp', id, 'regress_rtm_a', 'Qualification' FROM crm.account WHERE name = 'Bcorp';
SET ROLE regress_rtm_a;
SELECT name FROM crm.account ORDER BY name;
SELECT name FROM crm.contact ORDER BY name;
-- A cannot write B's account directly ...
UPDATE crm.account SET attributes = '{"note": "mine now"}' WHERE name = 'Bcorp';
-- ... nor through a conversion into it: the lead's values are carried only
-- into records the caller may update (or the conversion made).
INSERT INTO crm.lead (name, email, company, attributes)
    VALUES ('Lars Lee', 'lars@q.example', 'Q', '{"note": "written by A"}');
SELECT (crm.convert_lead(l.id, a.id, c.id, false, NULL, NULL, false, NULL)).contact_id IS NOT NULL AS converted
  FROM crm.lead AS l, crm.account AS a, crm.contact AS c
 WHERE l.name = 'Lars Lee' AND a.name = 'Bcorp' AND c.name = 'Bob Bee';
RESET ROLE;
SELECT name, owner, attributes FROM crm.account ORDER BY name;
SELECT name, owner, attributes FROM crm.contact ORDER BY name;
-- Into A's own account and a new contact the values still go.
SET ROLE regress_rtm_a;
INSERT INTO crm.account (name) VALUES ('Acorp');
INSERT INTO crm.lead (name, email, company, attributes)
    VALUES ('Ada Ames', 'ada@acorp.example', 'Acorp', '{"note": "carried"}');
SELECT (crm.convert_lead(l.id, a.id, NULL, false, NULL, NULL, false, NULL)).contact_id IS NOT NULL AS converted
  FROM crm.lead AS l, crm.account AS a WHERE l.name = 'Ada Ames' AND a.name = 'Acorp';
SELECT name, attributes FROM crm.account ORDER BY name;
SELECT name, attributes FROM crm.contact ORDER BY name;
RESET ROLE;

-- activity_occurrences: a rep's many series with heads long ago cannot pin
-- a CPU (each series under its 100000-step bound, together over the call's
-- 5000000 steps: 54000; the loop is also cancellable).
SET ROLE regress_rtm_b;
INSERT INTO crm.activity (type, subject, due_at, account_id, recurrence, recurrence_time_zone)
SELECT 'task', 'Old series ' || g, '1800-01-01 09:00+00', a.id, 'FREQ=DAILY', 'Europe/Berlin'
  FROM crm.account AS a, pg_catalog.generate_series(1, 60) AS g WHERE a.name = 'Bcorp';
SELECT count(*) FROM crm.activity_occurrences('2073-01-01', '2073-01-02');
\echo :LAST_ERROR_SQLSTATE
-- one such series alone is fine
DELETE FROM crm.activity WHERE subject <> 'Old series 1';
SELECT count(*) FROM crm.activity_occurrences('2073-01-01', '2073-01-02');
RESET ROLE;

-- Number fields: JSON allows 1e131071, a few bytes stored that become
-- 131,072 digits in crm.custom_field_value and overflow a cast to double
-- precision; a value is below 1e20 in absolute value, at most 10 decimals.
SET ROLE regress_rtm_admin;
INSERT INTO crm.custom_field (object, name, label, type) VALUES ('account', 'size', 'Size', 'number');
RESET ROLE;
SET ROLE regress_rtm_a;
\set VERBOSITY default
UPDATE crm.account SET attributes = '{"size": 1e400}' WHERE name = 'Acorp';
UPDATE crm.account SET attributes = '{"size": 1e-300}' WHERE name = 'Acorp';
\set VERBOSITY terse
UPDATE crm.account SET attributes = '{"size": -1e20}' WHERE name = 'Acorp';
UPDATE crm.account SET attributes = '{"size": 1.00000000000}' WHERE name = 'Acorp';
UPDATE crm.account SET attributes = '{"size": -99999999999999999999.0000000001}' WHERE name = 'Acorp';
SELECT field, value_text, value_number::float8 FROM crm.custom_field_value WHERE field = 'size';
RESET ROLE;

-- An activity (and so a recurring series) is about a record the caller
-- sees: rep A cannot hang a task on rep B's lead or deal, and a hidden id
-- and a missing one get the same answer (no probing).
SET ROLE regress_rtm_b;
INSERT INTO crm.lead (name, email) VALUES ('Hidden Hugo', 'hugo@hidden.example');
INSERT INTO crm.account (name) VALUES ('Bsecret');
INSERT INTO crm.opportunity (name, stage, account_id)
    SELECT 'B only', 'Qualification', id FROM crm.account WHERE name = 'Bsecret';
RESET ROLE;
SELECT id AS hugo FROM crm.lead WHERE name = 'Hidden Hugo' \gset
SELECT id AS bonly FROM crm.opportunity WHERE name = 'B only' \gset
SET ROLE regress_rtm_a;
INSERT INTO crm.activity (type, subject, due_at, lead_id, recurrence, recurrence_time_zone)
    VALUES ('task', 'Spam', '2027-01-01 09:00+00', :hugo, 'FREQ=DAILY', 'UTC');
INSERT INTO crm.activity (type, subject, due_at, lead_id)
    VALUES ('task', 'Spam', '2027-01-01 09:00+00', :hugo + 1000);
INSERT INTO crm.activity (type, subject, due_at, opportunity_id)
    VALUES ('task', 'Spam', '2027-01-01 09:00+00', :bonly);
-- about A's own records it works; moving it onto B's deal does not
INSERT INTO crm.activity (type, subject, due_at, account_id)
    SELECT 'task', 'Mine', '2027-01-01 09:00+00', id FROM crm.account WHERE name = 'Acorp';
UPDATE crm.activity SET account_id = NULL, opportunity_id = :bonly WHERE subject = 'Mine';
RESET ROLE;
SELECT subject, owner, account_id IS NOT NULL AS on_account FROM crm.activity
 WHERE subject IN ('Spam', 'Mine') ORDER BY 1;
