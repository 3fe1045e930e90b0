-- privacy_export: crm.export_person(email) answers an access request with
-- one JSON document of every row crm holds about the person with that
-- e-mail address (case-insensitive), for privacy officers (and admins) only.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_export_officer;
DROP ROLE IF EXISTS regress_export_admin;
DROP ROLE IF EXISTS regress_export_rep;
CREATE ROLE regress_export_officer IN ROLE crm_privacy_officer;
CREATE ROLE regress_export_admin IN ROLE crm_admin;
CREATE ROLE regress_export_rep IN ROLE crm_sales;
RESET client_min_messages;
\set VERBOSITY terse

-- Maria has a lead (converted: a contact), an older deleted lead, an
-- activity, a meeting she attends and a campaign membership; Tom is someone
-- else.  The rows belong to a rep: officers read them all the same.
SET ROLE regress_export_rep;
INSERT INTO crm.lead (name, email, phone, status) VALUES ('Maria Old', 'MARIA@garcia.example', '+34 600 000 001', 'New Lead');
DELETE FROM crm.lead WHERE name = 'Maria Old';
INSERT INTO crm.lead (name, company, email, phone, status, consent_basis)
VALUES ('Maria Garcia', 'Garcia SL', 'maria@garcia.example', '+34 600 000 002', 'Processing', 'consent');
INSERT INTO crm.lead (name, email) VALUES ('Tom Other', 'tom@other.example');
UPDATE crm.lead SET remarks = 'asked for a demo' WHERE name = 'Maria Garcia';
SELECT contact_id AS maria_contact FROM crm.convert_lead((SELECT id FROM crm.lead WHERE name = 'Maria Garcia')) \gset
INSERT INTO crm.activity (type, subject, contact_id, starts_at) VALUES ('call', 'Call Maria', :maria_contact, '2027-02-01 10:00+00');
INSERT INTO crm.activity (type, subject, account_id, starts_at)
VALUES ('meeting', 'Kick-off', (SELECT account_id FROM crm.contact WHERE id = :maria_contact), '2027-02-02 10:00+00');
INSERT INTO crm.activity_participant (activity_id, contact_id)
VALUES ((SELECT id FROM crm.activity WHERE subject = 'Kick-off'), :maria_contact);
RESET ROLE;
INSERT INTO crm.campaign (name, type) VALUES ('Spring', 'Email');
INSERT INTO crm.campaign_member (campaign_id, contact_id) VALUES (1, :maria_contact);

-- The document: one section per kind of row that holds rows about her
-- (the address is matched whatever its case).
SET ROLE regress_export_officer;
SELECT k AS section FROM jsonb_object_keys(crm.export_person('Maria@Garcia.example')) AS k ORDER BY k;
-- Each section holds the rows: the lead and its contact ...
SELECT jsonb_array_length(d->'leads') AS leads, d->'leads'->0->>'name' AS lead_name,
       d->'leads'->0->>'consent_basis' AS basis,
       jsonb_array_length(d->'contacts') AS contacts, d->'contacts'->0->>'email' AS contact_email,
       jsonb_array_length(d->'activities') AS activities, d->'activities'->0->>'subject' AS subject,
       jsonb_array_length(d->'activity_participation') AS attends,
       d->'campaign_memberships'->0->>'campaign_name' AS campaign,
       jsonb_array_length(d->'lead_status_history') AS statuses
  FROM crm.export_person('maria@garcia.example') AS d;
-- ... and the change log about her rows, the deleted lead included.
SELECT e->>'table_name' AS table_name, e->>'operation' AS operation,
       (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(e->'changes') k) AS fields
  FROM crm.export_person('maria@garcia.example') AS d, jsonb_array_elements(d->'change_log') e
 ORDER BY (e->>'id')::bigint;
-- Nothing about Tom is in it.
SELECT strpos(crm.export_person('maria@garcia.example')::text, 'tom@other.example') AS tom_found;

-- A person crm knows nothing about: an empty document, not an error.
SELECT crm.export_person('nobody@nowhere.example') AS nobody;
-- LIKE wildcards are plain characters: nobody has this address.
SELECT crm.export_person('%@%.%') AS wildcards;

-- Bad input: NULL (22004), not one e-mail address (ZC801).
SELECT crm.export_person(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.export_person('');
\echo :LAST_ERROR_SQLSTATE
SELECT crm.export_person('maria');
\echo :LAST_ERROR_SQLSTATE
SELECT crm.export_person('maria@garcia');
\echo :LAST_ERROR_SQLSTATE
SELECT crm.export_person('maria@garcia.example, tom@other.example');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- Admins are privacy officers too; a rep is not (42501), not even for its
-- own people, and neither is an analyst.
SET ROLE regress_export_admin;
SELECT jsonb_array_length(crm.export_person('maria@garcia.example')->'leads') AS admin_leads;
RESET ROLE;
SET ROLE regress_export_rep;
SELECT crm.export_person('maria@garcia.example');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE crm_analyst;
SELECT crm.export_person('maria@garcia.example');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
