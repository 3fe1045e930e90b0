-- conversion_guard: only crm.convert_lead() converts.  No INSERT, UPDATE or
-- COPY can set status Converted or the conversion fields, a converted lead
-- cannot be converted again, set back, or re-linked -- not by its owner, not
-- by an admin, not by a superuser -- and an opportunity's source lead is set
-- only by the conversion.  Everything else on a converted lead stays editable.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;

INSERT INTO crm.account (name) VALUES ('Tyrell Corp');
INSERT INTO crm.contact (name, account_id) VALUES ('Rachael', 1);
INSERT INTO crm.lead (name, company) VALUES ('Deckard', 'LAPD'), ('Roy', 'Nexus');

-- A plain UPDATE cannot convert, nor set any conversion field.
UPDATE crm.lead SET status = 'Converted' WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.lead SET account_id = 1 WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.lead SET contact_id = 1 WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.lead SET converted_at = now() WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.lead SET converted_by = current_user::regrole WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
-- Not even all of them together, consistent as they would be.
INSERT INTO crm.opportunity (name, account_id) VALUES ('Voight-Kampff kits', 1);
UPDATE crm.lead SET status = 'Converted', account_id = 1, contact_id = 1, opportunity_id = 1,
       converted_at = now(), converted_by = current_user::regrole WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE

-- A new lead cannot arrive converted, by INSERT or by COPY.
INSERT INTO crm.lead (name, status) VALUES ('Pris', 'Converted');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.lead (name, account_id) VALUES ('Pris', 1);
\echo :LAST_ERROR_SQLSTATE
COPY crm.lead (name, status, account_id, contact_id, converted_at, converted_by) FROM stdin;
Zhora	Converted	1	1	2020-01-01	postgres
\.
\echo :LAST_ERROR_SQLSTATE

-- Other status changes are free, back and forth.
UPDATE crm.lead SET status = 'Completed' WHERE id = 1;
UPDATE crm.lead SET status = 'Processing' WHERE id = 1;
SELECT status FROM crm.lead WHERE id = 1;

-- Convert lead 1 properly; then it is frozen.
SELECT lead_id, opportunity_id FROM crm.convert_lead(1);
-- Converting again is refused ...
\set VERBOSITY terse
SELECT lead_id FROM crm.convert_lead(1);
\set VERBOSITY default
\echo :LAST_ERROR_SQLSTATE
-- ... and so is setting it back, or re-linking it, even as superuser.
UPDATE crm.lead SET status = 'New Lead' WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.lead SET account_id = 1 WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.lead SET opportunity_id = NULL WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.lead SET converted_at = now() - interval '1 year' WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.lead SET converted_by = 'crm_admin' WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
-- The CHECK constraint would catch a half record even if the trigger were
-- disabled by a superuser.
ALTER TABLE crm.lead DISABLE TRIGGER lead_conversion_guard;
\set VERBOSITY terse
UPDATE crm.lead SET status = 'Converted' WHERE id = 2;
\set VERBOSITY default
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE crm.lead ENABLE TRIGGER lead_conversion_guard;

-- The rest of a converted lead stays editable (remarks, phone, owner, ...).
UPDATE crm.lead SET remarks = 'won the account', phone = '+1 555 2019' WHERE id = 1;
SELECT status, remarks, phone FROM crm.lead WHERE id = 1;

-- An opportunity's source lead: not settable by INSERT or UPDATE ...
INSERT INTO crm.opportunity (name, account_id, lead_id) VALUES ('Fake', 1, 2);
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.opportunity SET lead_id = 2 WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
SELECT id, lead_id FROM crm.opportunity ORDER BY id;
-- ... but it may be cleared, which is what deleting the lead does.  A
-- converted lead can be deleted (e.g. to erase personal data); its accounts,
-- contacts and opportunities stay.
UPDATE crm.opportunity SET stage = 'Proposal' WHERE lead_id = 1;
DELETE FROM crm.lead WHERE id = 1;
SELECT id, lead_id, stage FROM crm.opportunity ORDER BY id;

-- The conversion of one lead opens the guard for that lead only: a user
-- trigger that fires inside the conversion of lead 2 and tries to convert the
-- lead Leon by hand is refused, and the whole conversion with it.
INSERT INTO crm.lead (name, company) VALUES ('Leon', 'Tyrell Corp');
CREATE FUNCTION public.sneaky() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE crm.lead SET status = 'Converted', account_id = NEW.account_id, contact_id = NEW.contact_id,
         converted_at = now(), converted_by = current_user::regrole WHERE name = 'Leon';
  RETURN NEW;
END $$;
CREATE TRIGGER sneaky AFTER INSERT ON crm.opportunity FOR EACH ROW EXECUTE FUNCTION public.sneaky();
SELECT lead_id FROM crm.convert_lead(2);
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER sneaky ON crm.opportunity;
DROP FUNCTION public.sneaky();
SELECT id, status FROM crm.lead ORDER BY id;
-- And once the conversion is over, the guard is shut again.
SELECT lead_id FROM crm.convert_lead(2);
UPDATE crm.lead SET status = 'Converted' WHERE name = 'Leon';
\echo :LAST_ERROR_SQLSTATE
