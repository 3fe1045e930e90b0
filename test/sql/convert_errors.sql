-- convert_errors: each way a conversion can be refused, with its SQLSTATE
-- (class ZC is the extension's own; see README "SQLSTATEs"), the lead named in
-- the message, and nothing changed.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;

INSERT INTO crm.account (name) VALUES ('Umbrella'), ('Cyberdyne');
INSERT INTO crm.contact (name, account_id) VALUES ('Alice', 1);
INSERT INTO crm.lead (name, company) VALUES ('Chris', 'Umbrella'), ('Jill', 'Umbrella');
INSERT INTO crm.lead (name, status) VALUES ('Nemesis', 'Not Qualified');

-- ZC001: unknown lead (also for negative and huge ids).
SELECT * FROM crm.convert_lead(999);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM crm.convert_lead(-1);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM crm.convert_lead(9223372036854775807);
\echo :LAST_ERROR_SQLSTATE

-- ZC002: already converted (the second call; the first succeeds).
SELECT lead_id FROM crm.convert_lead(1);
\set VERBOSITY terse
SELECT * FROM crm.convert_lead(1);
\set VERBOSITY default
\echo :LAST_ERROR_SQLSTATE

-- ZC003: a Not Qualified lead is not converted.
SELECT * FROM crm.convert_lead(3);
\echo :LAST_ERROR_SQLSTATE

-- ZC004: account_id that does not exist.
SELECT * FROM crm.convert_lead(2, account_id => 42);
\echo :LAST_ERROR_SQLSTATE

-- ZC005: contact_id that does not exist.
SELECT * FROM crm.convert_lead(2, contact_id => 42);
\echo :LAST_ERROR_SQLSTATE

-- ZC006: contact not on the named account.
SELECT * FROM crm.convert_lead(2, account_id => 2, contact_id => 1);
\echo :LAST_ERROR_SQLSTATE

-- ZC007: no open stage to start the opportunity in ...
UPDATE crm.opportunity_stage SET active = false WHERE NOT is_closed;
SELECT * FROM crm.convert_lead(2);
\echo :LAST_ERROR_SQLSTATE
-- ... which create_opportunity => false does not need.
BEGIN;
SELECT opportunity_id FROM crm.convert_lead(2, create_opportunity => false);
ROLLBACK;
UPDATE crm.opportunity_stage SET active = true;

-- 22004: NULL where a value is required.
SELECT * FROM crm.convert_lead(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM crm.convert_lead(2, create_opportunity => NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM crm.convert_lead(2, dedupe => NULL);
\echo :LAST_ERROR_SQLSTATE

-- 42704: an owner role that does not exist.
SELECT * FROM crm.convert_lead(2, owner => 'nobody_at_all');
\echo :LAST_ERROR_SQLSTATE

-- None of the refused calls left anything behind: one account per company,
-- one contact, only lead 1 converted, one opportunity.
SELECT (SELECT count(*) FROM crm.account) AS accounts,
       (SELECT count(*) FROM crm.contact) AS contacts,
       (SELECT count(*) FROM crm.opportunity) AS opportunities,
       (SELECT array_agg(id ORDER BY id) FROM crm.lead WHERE status = 'Converted') AS converted;
