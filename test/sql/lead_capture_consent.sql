-- lead_capture_consent: consent sent with a capture (details.consent) is
-- validated and recorded on the lead; on a lead that receives a capture an
-- opt-out always wins and a basis is only filled in; an opted-out person
-- captured into a campaign is marked; an access request exports the
-- person's captures and an erasure redacts them.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_consent_web;
DROP ROLE IF EXISTS regress_consent_officer;
CREATE ROLE regress_consent_web IN ROLE crm_intake;
CREATE ROLE regress_consent_officer IN ROLE crm_privacy_officer;
RESET client_min_messages;
\set VERBOSITY terse

-- A new lead takes the consent: basis, opt-outs, consent_at = the capture's
-- time, consent_source the form's or 'capture:<source>'.
SET ROLE regress_consent_web;
SELECT crm.capture_lead('Cleo Consent', NULL, 'cleo@consent.example', NULL, 'website', NULL,
                        '{"consent": {"basis": "consent", "source": "form /trial v2"}}') AS cleo;
SELECT crm.capture_lead('Otto Out', NULL, 'otto@out.example', '+1 555 0199', 'event', NULL,
                        '{"consent": {"basis": "legitimate interest", "phone_opt_out": true}}') AS otto;
SELECT crm.capture_lead('Nina None', NULL, 'nina@none.example') AS nina;
RESET ROLE;
SELECT name, email_opt_out, phone_opt_out, do_not_contact, consent_basis,
       consent_at = (SELECT captured_at FROM crm.lead_capture WHERE lead_id = l.id ORDER BY id LIMIT 1) AS at_capture,
       consent_source
  FROM crm.lead AS l ORDER BY id;

-- A capture into an existing lead: an opt-out is added, never cleared; a
-- basis is recorded only where there is none.
SET ROLE regress_consent_web;
SELECT crm.capture_lead('Cleo C.', NULL, 'CLEO@consent.example', NULL, 'email', NULL,
                        '{"consent": {"basis": "contract", "email_opt_out": true}}') = 1 AS same_cleo;
SELECT crm.capture_lead('Otto Out', NULL, 'otto@out.example', NULL, 'website', NULL,
                        '{"consent": {"phone_opt_out": false, "do_not_contact": false}}') = 2 AS same_otto;
SELECT crm.capture_lead('Nina None', NULL, 'nina@none.example', NULL, 'website', NULL,
                        '{"consent": {"basis": "consent", "do_not_contact": true}}') = 3 AS same_nina;
RESET ROLE;
SELECT name, email_opt_out, phone_opt_out, do_not_contact, consent_basis, consent_at IS NOT NULL AS has_time, consent_source
  FROM crm.lead ORDER BY id;

-- Bad consent is refused (22023) and kept as refused; nothing is written.
SET ROLE regress_consent_web;
SELECT crm.capture_lead('Bad Basis', NULL, 'b1@consent.example', NULL, 'website', NULL,
                        '{"consent": {"basis": "because"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT crm.capture_lead('Bad Flag', NULL, 'b2@consent.example', NULL, 'website', NULL,
                        '{"consent": {"email_opt_out": "yes"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT crm.capture_lead('Typo', NULL, 'b3@consent.example', NULL, 'website', NULL,
                        '{"consent": {"email_optout": true}}');      -- a misspelt opt-out is not lost silently
\echo :LAST_ERROR_SQLSTATE
SELECT crm.capture_lead('Not Object', NULL, 'b4@consent.example', NULL, 'website', NULL,
                        '{"consent": true}');
\echo :LAST_ERROR_SQLSTATE
SELECT crm.capture_lead('Long Source', NULL, 'b5@consent.example', NULL, 'website', NULL,
                        jsonb_build_object('consent', jsonb_build_object('basis', 'consent', 'source', repeat('s', 201))));
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT payload->>'name' AS name, outcome, sqlstate FROM crm.lead_capture WHERE outcome = 'refused' ORDER BY id;
SELECT count(*) AS leads FROM crm.lead;

-- An opted-out person captured into an e-mail campaign: the membership is
-- marked opted_out, with a WARNING (ZC802).
INSERT INTO crm.campaign (name, type) VALUES ('Newsletter', 'Email');
SET ROLE regress_consent_web;
SELECT crm.capture_lead('Cleo Consent', NULL, 'cleo@consent.example', NULL, 'campaign', 1) = 1 AS same_cleo;
RESET ROLE;
SELECT l.name, m.opted_out FROM crm.campaign_member AS m JOIN crm.lead AS l ON l.id = m.lead_id;

-- An access request lists the person's captures, refused ones too; an
-- erasure redacts them.
SET ROLE regress_consent_web;
SELECT crm.capture_lead('Cleo Consent', NULL, 'cleo@consent', NULL, 'website', NULL,
                        '{"remarks": "call Cleo after 5"}');         -- refused: malformed
\echo :LAST_ERROR_SQLSTATE
SELECT crm.capture_lead('Cleo Consent', NULL, 'cleo@consent.example', NULL, 'billboard', NULL,
                        '{"remarks": "Cleo asked for a demo", "title": "Head of Ops"}');  -- refused: source
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE regress_consent_officer;
SELECT k->>'outcome' AS outcome, k->>'sqlstate' AS sqlstate, k->'payload'->>'source' AS source
  FROM jsonb_array_elements(crm.export_person('Cleo@Consent.example')->'captures') AS k
 ORDER BY (k->>'id')::int;
SELECT leads FROM crm.erase_person('cleo@consent.example', 'request 7');
RESET ROLE;
SELECT id, outcome, payload->>'name' AS name, payload->>'email' AS email,
       payload->'details'->>'remarks' AS remarks, payload->'details'->>'title' AS title,
       payload->>'source' AS source
  FROM crm.lead_capture
 WHERE lead_id = 1 OR payload->>'source' = 'billboard' OR payload->>'email' = 'cleo@consent' ORDER BY id;
-- her name, address and phone are left in no capture (a first name alone
-- in free text, as in "call Cleo after 5", is not one of them)
SELECT count(*) AS mentions FROM crm.lead_capture
 WHERE payload::text ILIKE '%cleo consent%' OR payload::text ILIKE '%cleo@consent.example%' OR message ILIKE '%cleo%';

DROP EXTENSION crm CASCADE;
DROP ROLE regress_consent_web, regress_consent_officer;
