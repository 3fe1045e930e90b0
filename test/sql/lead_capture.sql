-- lead_capture: crm.capture_lead() for web forms and integrations (role
-- crm_intake): a new lead, or the open lead with the same e-mail or phone
-- filled in; every capture kept in crm.lead_capture, refused ones too (with
-- their SQLSTATE), and no partial rows; the role's rights.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_capture_web;
DROP ROLE IF EXISTS regress_capture_rep;
DROP ROLE IF EXISTS regress_capture_other;
DROP ROLE IF EXISTS regress_capture_admin;
CREATE ROLE regress_capture_web IN ROLE crm_intake;
CREATE ROLE regress_capture_rep IN ROLE crm_sales;
CREATE ROLE regress_capture_other IN ROLE crm_sales;
CREATE ROLE regress_capture_admin IN ROLE crm_admin;
RESET client_min_messages;
\set VERBOSITY terse

-- A capture creates a lead owned by crm_intake (until assignment routes it);
-- the mapped details keys fill lead columns, the others stay in the payload.
SET ROLE regress_capture_web;
SELECT crm.capture_lead('Ann Field', 'Fieldco', 'Ann.Field@Fieldco.example', NULL, 'website', NULL,
                        '{"title": "CTO", "city": "Berlin", "website": "https://fieldco.example", "utm_campaign": "spring"}') AS ann;
RESET ROLE;
SELECT id, name, company, email, phone, title, city, website, source, status, owner
  FROM crm.lead ORDER BY id;
SELECT id, captured_by, source, campaign_id, outcome, lead_id, sqlstate,
       payload->>'email' AS email, payload->'details'->>'utm_campaign' AS utm
  FROM crm.lead_capture ORDER BY id;

-- The same e-mail (any case) is merged into the open lead: empty fields are
-- filled (phone, industry), nothing is overwritten (name, company, title).
SET ROLE regress_capture_web;
SELECT crm.capture_lead('Ann F.', 'Other Co', 'ann.field@FIELDCO.example', '+49 30 1234567', 'email', NULL,
                        '{"title": "CEO", "industry": "Software"}') AS same_lead;
-- the same phone digits written another way reach it too
SELECT crm.capture_lead('A. Field', NULL, NULL, '0049 (30) 123-4567', 'phone', NULL,
                        '{"country": "DE"}') AS same_lead_by_phone;
RESET ROLE;
SELECT id, name, company, email, phone, title, industry, country, source FROM crm.lead ORDER BY id;
SELECT id, source, outcome, lead_id FROM crm.lead_capture ORDER BY id;

-- A converted lead receives no more captures: a new lead is made.
UPDATE crm.lead SET status = 'Processing';
SELECT lead_id IS NOT NULL AS converted FROM crm.convert_lead(1, create_opportunity => false) AS r(lead_id);
SET ROLE regress_capture_web;
SELECT crm.capture_lead('Ann Field', NULL, 'ann.field@fieldco.example') AS new_lead;
RESET ROLE;
SELECT id, name, status, owner FROM crm.lead ORDER BY id;

-- Bad input: a documented SQLSTATE, no lead written, the capture kept as
-- refused with its SQLSTATE.
SET ROLE regress_capture_web;
SELECT crm.capture_lead(NULL, NULL, 'x@y.example');          -- no name
\echo :LAST_ERROR_SQLSTATE
SELECT crm.capture_lead('   ', NULL, 'x@y.example');         -- blank name
\echo :LAST_ERROR_SQLSTATE
SELECT crm.capture_lead('No Way', 'Co');                      -- neither e-mail nor phone
\echo :LAST_ERROR_SQLSTATE
SELECT crm.capture_lead('Bad Mail', NULL, 'bad mail@example');  -- malformed e-mail
\echo :LAST_ERROR_SQLSTATE
SELECT crm.capture_lead('Bad Phone', NULL, NULL, 'call me');  -- malformed phone
\echo :LAST_ERROR_SQLSTATE
SELECT crm.capture_lead('Bad Site', NULL, 'site@bad.example', NULL, 'website', NULL, '{"website": "not a url"}');
\echo :LAST_ERROR_SQLSTATE
SELECT crm.capture_lead('Bad Source', NULL, 'src@bad.example', NULL, 'billboard');  -- unknown source
\echo :LAST_ERROR_SQLSTATE
SELECT crm.capture_lead('Null Source', NULL, 'src@bad.example', NULL, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.capture_lead('Bad Campaign', NULL, 'cmp@bad.example', NULL, 'website', 424242);  -- unknown campaign
\echo :LAST_ERROR_SQLSTATE
SELECT crm.capture_lead(repeat('n', 201), NULL, 'long@bad.example');  -- over-long name
\echo :LAST_ERROR_SQLSTATE
SELECT crm.capture_lead('Long Mail', NULL, repeat('m', 250) || '@bad.example');  -- over 254
\echo :LAST_ERROR_SQLSTATE
SELECT crm.capture_lead('Array', NULL, 'arr@bad.example', NULL, 'website', NULL, '[1, 2]');  -- details not an object
\echo :LAST_ERROR_SQLSTATE
SELECT crm.capture_lead('Scalar', NULL, 'sca@bad.example', NULL, 'website', NULL, '"text"');
\echo :LAST_ERROR_SQLSTATE
SELECT crm.capture_lead('Typed', NULL, 'typ@bad.example', NULL, 'website', NULL, '{"title": 42}');  -- a mapped key not a string
\echo :LAST_ERROR_SQLSTATE
SELECT crm.capture_lead('Big', NULL, 'big@bad.example', NULL, 'website', NULL,
                        jsonb_build_object('notes', repeat('x', 70000)));  -- details over 64 kB
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- no lead was written; every refusal was kept, with its SQLSTATE
SELECT count(*) AS leads FROM crm.lead;
SELECT id, outcome, lead_id, sqlstate, source, campaign_id, left(payload->>'name', 24) AS name,
       left(payload->>'details', 30) AS details
  FROM crm.lead_capture WHERE outcome = 'refused' ORDER BY id;
-- an over-long value is kept as its start and its length
SELECT length(payload->'name'->>'truncated') AS kept, payload->'name'->>'bytes' AS bytes,
       (payload->'details'->>'bytes')::int > 65536 AS big_details
  FROM crm.lead_capture WHERE payload->>'email' IN ('long@bad.example', 'big@bad.example') ORDER BY id;

-- The error names the kept capture.
\set VERBOSITY default
SET ROLE regress_capture_web;
SELECT crm.capture_lead('Inactive', NULL, 'old@source.example', NULL, 'fax');
RESET ROLE;
\set VERBOSITY terse
-- an inactive source is refused like an unknown one
UPDATE crm.lead_source SET active = false WHERE code = 'social';
SET ROLE regress_capture_web;
SELECT crm.capture_lead('Inactive', NULL, 'old@source.example', NULL, 'social');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- Refused by the database: under duplicate policy block a capture whose
-- company matches an account is refused (ZC701) and kept as refused.
INSERT INTO crm.account (name) VALUES ('Blockco GmbH');
UPDATE crm.settings SET duplicate_policy_lead = 'block';
SET ROLE regress_capture_web;
SELECT crm.capture_lead('Bo Block', 'Blockco', 'bo@blockco-mail.example');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
UPDATE crm.settings SET duplicate_policy_lead = 'warn';
SELECT outcome, sqlstate, payload->>'company' AS company FROM crm.lead_capture ORDER BY id DESC LIMIT 1;
SELECT count(*) AS blockco_leads FROM crm.lead WHERE company = 'Blockco';

-- A refusal inside the caller's transaction: the transaction is rolled
-- back, the refusal row stays.
BEGIN;
SET LOCAL ROLE regress_capture_web;
SELECT crm.capture_lead('In Tx', NULL, 'tx@ok.example') > 0 AS captured;
SELECT crm.capture_lead('In Tx', NULL, 'tx bad');
ROLLBACK;
SELECT outcome, sqlstate, payload->>'email' AS email FROM crm.lead_capture
 WHERE payload->>'name' = 'In Tx' ORDER BY id;
SELECT count(*) AS tx_leads FROM crm.lead WHERE name = 'In Tx';

-- A campaign: the lead becomes a member once.
INSERT INTO crm.campaign (name, type, status) VALUES ('Spring webinar', 'Webinar', 'In Progress');
SET ROLE regress_capture_web;
SELECT crm.capture_lead('Cara Camp', NULL, 'cara@camp.example', NULL, 'campaign', 1) AS cara;
SELECT crm.capture_lead('Cara Camp', NULL, 'cara@camp.example', NULL, 'campaign', 1) AS cara_again;
RESET ROLE;
SELECT m.campaign_id, l.name, m.owner, l.campaign_id AS lead_campaign
  FROM crm.campaign_member AS m JOIN crm.lead AS l ON l.id = m.lead_id ORDER BY m.id;

-- Who reads the captures: admins all of them; a rep those of the leads it
-- sees; refused ones only admins.
UPDATE crm.lead SET owner = 'regress_capture_rep' WHERE name = 'Cara Camp';
SET ROLE regress_capture_rep;
SELECT outcome, lead_id FROM crm.lead_capture ORDER BY id;
SET ROLE regress_capture_other;
SELECT count(*) AS others_see FROM crm.lead_capture;
SET ROLE regress_capture_admin;
SELECT outcome, count(*) FROM crm.lead_capture GROUP BY outcome ORDER BY outcome;
-- nobody writes the table directly
INSERT INTO crm.lead_capture (captured_by, payload, outcome, lead_id) VALUES ('regress_capture_admin', '{}', 'created', 1);
\echo :LAST_ERROR_SQLSTATE
SET ROLE regress_capture_rep;
UPDATE crm.lead_capture SET outcome = 'merged';
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- crm_intake reads no table and executes capture_lead and log_email only (and the
-- PUBLIC helpers every role may call).
SELECT c.relname FROM pg_class AS c
 WHERE c.relnamespace = 'crm'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'S', 'p')
   AND (has_table_privilege('regress_capture_web', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
        OR (c.relkind = 'S' AND has_sequence_privilege('regress_capture_web', c.oid, 'USAGE, SELECT, UPDATE')));
SELECT p.oid::regprocedure AS executable FROM pg_proc AS p
 WHERE p.pronamespace = 'crm'::regnamespace
   AND has_function_privilege('regress_capture_web', p.oid, 'EXECUTE')
   AND NOT has_function_privilege('public', p.oid, 'EXECUTE')
 ORDER BY 1;
SET ROLE regress_capture_web;
SELECT count(*) FROM crm.lead;
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM crm.convert_lead(2);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- a sales rep may not capture
SET ROLE regress_capture_rep;
SELECT crm.capture_lead('Rep', NULL, 'rep@x.example');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

DROP EXTENSION crm CASCADE;
DROP ROLE regress_capture_web, regress_capture_rep, regress_capture_other, regress_capture_admin;
