-- privacy_erase: crm.erase_person(email, reason) pseudonymises every lead
-- and contact of the address, redacts the rows and change-log entries that
-- hold their values (the one sanctioned rewrite of the append-only log),
-- and records the erasure in crm.erasure_log.  Aggregates, conversion
-- records and amounts stay as they were.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
-- This file tests the internal objects' own privileges and policies too
-- (defence in depth), so its roles get USAGE on schema crm_internal, which
-- no CRM role has (test/sql/internal_schema.sql).
GRANT USAGE ON SCHEMA crm_internal TO crm_admin, crm_manager, crm_sales, crm_analyst, crm_privacy_officer;
DROP ROLE IF EXISTS regress_erase_officer;
DROP ROLE IF EXISTS regress_erase_admin;
DROP ROLE IF EXISTS regress_erase_rep;
CREATE ROLE regress_erase_officer IN ROLE crm_privacy_officer;
CREATE ROLE regress_erase_admin IN ROLE crm_admin;
CREATE ROLE regress_erase_rep IN ROLE crm_sales;
RESET client_min_messages;
\set VERBOSITY terse

-- Where does a text occur?  Every table of schema crm, read whole (as the
-- superuser), in lower case.
CREATE FUNCTION pg_temp.found_in(needle text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(c.relname, ', ' ORDER BY c.relname), '(nowhere)')
      FROM pg_class c
     WHERE c.relnamespace = 'crm'::regnamespace AND c.relkind = 'r'
       AND (xpath('/row/n/text()', query_to_xml(format(
              'SELECT count(*) AS n FROM %s AS t WHERE strpos(lower(t::text), %L) > 0',
              c.oid::regclass, lower(needle)), false, true, '')))[1]::text::int > 0
$$;

-- Maria Garcia, a rep's: a private customer (no company; conversion names
-- the account after her), then a second lead with a company, reusing her
-- contact; a deleted lead with her old phone; a rename; activities; a
-- campaign.  Tom is someone else.
SET ROLE regress_erase_rep;
INSERT INTO crm.lead (name, email, phone) VALUES ('Maria G.', 'maria@garcia.example', '+34 600 000 009');
DELETE FROM crm.lead WHERE name = 'Maria G.';
INSERT INTO crm.lead (name, email, phone, status, remarks)
VALUES ('Maria Garcia', 'Maria@Garcia.example', '+34 600 000 001', 'Processing', 'prefers calls after 5');
UPDATE crm.lead SET name = 'María García' WHERE name = 'Maria Garcia';
-- a web form made her a second lead with her old phone; merged into the
-- first, it lives on in crm.merge_record
INSERT INTO crm.lead (name, email, phone) VALUES ('María García', 'maria@garcia.example', '+34 600 000 009');
SELECT crm.merge_leads(min(id), max(id)) > 0 AS merged FROM crm.lead WHERE name = 'María García';
SELECT account_id AS home, contact_id AS maria, opportunity_id AS deal1
  FROM crm.convert_lead((SELECT id FROM crm.lead WHERE name = 'María García')) \gset
UPDATE crm.opportunity SET amount = 1200 WHERE id = :deal1;
INSERT INTO crm.lead (name, company, email, status) VALUES ('María García', 'Garcia Consulting', 'maria@garcia.example', 'Processing');
SELECT opportunity_id AS deal2 FROM crm.convert_lead((SELECT id FROM crm.lead WHERE company = 'Garcia Consulting')) \gset
UPDATE crm.opportunity SET amount = 5000, stage = 'Successful' WHERE id = :deal2;
INSERT INTO crm.activity (type, subject, description, contact_id, starts_at)
VALUES ('email', 'Offer for María García', 'Dear María, ...', :maria, '2027-02-01 10:00+00');
INSERT INTO crm.activity (type, subject, opportunity_id, due_at) VALUES ('task', 'Send contract to María García', :deal2, '2027-02-03');
INSERT INTO crm.lead (name, company, email, phone, status, remarks) VALUES ('Tom Other', 'Otherco', 'tom@other.example', '+34 600 000 777', 'Processing',
    'met Maria at the fair (María García of Garcia Consulting); write to MARIA@garcia.example or call +34 600 000 001');
SELECT opportunity_id AS tom_deal FROM crm.convert_lead((SELECT id FROM crm.lead WHERE name = 'Tom Other')) \gset
UPDATE crm.opportunity SET amount = 700 WHERE id = :tom_deal;
RESET ROLE;
INSERT INTO crm.campaign (name, type) VALUES ('Spring', 'Email');
INSERT INTO crm.campaign_member (campaign_id, contact_id) VALUES (1, :maria);

-- Before: her address, names and phones are in many tables.
SELECT pg_temp.found_in('maria@garcia.example') AS email,
       pg_temp.found_in('María García') AS name, pg_temp.found_in('Maria G.') AS old_name,
       pg_temp.found_in('+34 600 000 001') AS phone, pg_temp.found_in('+34 600 000 009') AS old_phone;
CREATE TEMP TABLE before AS
SELECT (SELECT sum(amount) FROM crm.opportunity) AS amounts,
       (SELECT count(*) FROM crm.change_log) AS log_entries;

-- The erasure, by a privacy officer: the logged row comes back.
SET ROLE regress_erase_officer;
SELECT id, erased_by, reason, leads, contacts, related_rows, change_log_entries, length(email_hash) AS hash_length
  FROM crm.erase_person('MARIA@garcia.example', 'request #17 of 2027-03-01');
RESET ROLE;

-- Afterwards her address, names and phones are nowhere.
SELECT pg_temp.found_in('maria@garcia.example') AS email,
       pg_temp.found_in('María García') AS name, pg_temp.found_in('Maria G.') AS old_name,
       pg_temp.found_in('+34 600 000 001') AS phone, pg_temp.found_in('+34 600 000 009') AS old_phone;
-- Her leads and contact are pseudonymised, with every opt-out set; the
-- company of the second lead (not personal) stays.
SELECT id, name, company, email, phone, remarks, status, do_not_contact, email_opt_out FROM crm.lead ORDER BY id;
SELECT id, name, email, phone, do_not_contact FROM crm.contact ORDER BY id;
-- The account named after her, the deals and activities naming her.
SELECT id, name FROM crm.account ORDER BY id;
SELECT id, name, amount, stage FROM crm.opportunity ORDER BY id;
SELECT subject, description FROM crm.activity ORDER BY id;
-- Tom is untouched.
SELECT pg_temp.found_in('tom@other.example') AS tom_email, pg_temp.found_in('Tom Other') AS tom_name;
-- Her name, address and phone in someone else's record are erased too (a
-- lone first name, not distinctive, stays).
SELECT remarks FROM crm.lead WHERE name = 'Tom Other';

-- The change log keeps every entry, with her values replaced by "[erased]";
-- the erasure's own updates do not log the old values.
SELECT (SELECT count(*) FROM crm.change_log) - log_entries AS entries_added_by_erasure FROM before;
SELECT changes->'name' AS name_change FROM crm.change_log
 WHERE table_name = 'crm.lead'::regclass AND operation = 'UPDATE' AND changes ? 'name' ORDER BY id;
SELECT changes->>'name' AS deleted_name, changes->>'phone' AS deleted_phone, changes->>'source' AS source
  FROM crm.change_log WHERE operation = 'DELETE';

-- The merge record of her second lead keeps its other values, not hers.
SELECT kind, merged_values->>'name' AS name, merged_values->>'email' AS email,
       merged_values->>'phone' AS phone, merged_values->>'source' AS source
  FROM crm.merge_record;

-- Conversion records complete, aggregates exact, amounts unchanged.
SELECT name, status, account_id IS NOT NULL AND contact_id IS NOT NULL AND converted_at IS NOT NULL AS conversion_record
  FROM crm.lead ORDER BY id;
SELECT count(*) AS aggregate_differences FROM crm.verify_aggregates();
SELECT (SELECT sum(amount) FROM crm.opportunity) = amounts AS amounts_unchanged FROM before;
-- She is still a campaign member (the campaign's figures stay), as the pseudonym.
SELECT c.name FROM crm.campaign_member m JOIN crm.contact c ON c.id = m.contact_id;

-- The erasure log holds a salted hash of the address, not the address: the
-- salt is the extension owner's secret.
SELECT e.email_hash = encode(sha256(s.salt || convert_to('maria@garcia.example', 'UTF8')), 'hex') AS hash_matches,
       e.email_hash <> encode(sha256(convert_to('maria@garcia.example', 'UTF8')), 'hex') AS salted
  FROM crm.erasure_log e, crm_internal.erasure_salt s;
SET ROLE regress_erase_officer;
SELECT count(*) FROM crm_internal.erasure_salt;
\echo :LAST_ERROR_SQLSTATE
SELECT id, erased_by, reason FROM crm.erasure_log;
RESET ROLE;

-- Neither log can be changed afterwards, not even by the superuser (ZC602).
UPDATE crm.change_log SET changes = '{}' WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM crm.change_log WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.erasure_log SET reason = 'none';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM crm.erasure_log;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE crm.erasure_log;
\echo :LAST_ERROR_SQLSTATE

-- An address crm does not know (or no longer knows): nothing changes, and
-- the request is still logged, with zero counts.
SET ROLE regress_erase_officer;
SELECT id, leads, contacts, related_rows, change_log_entries FROM crm.erase_person('maria@garcia.example', 'repeated request');
SELECT id, leads, contacts, related_rows, change_log_entries FROM crm.erase_person('nobody@nowhere.example', 'request #18');

-- Bad input: NULL (22004), not an address (ZC801), no reason (22004, 22023).
SELECT crm.erase_person(NULL, 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT crm.erase_person('maria at garcia.example', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT crm.erase_person('tom@other.example', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.erase_person('tom@other.example', '   ');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- Admins are privacy officers; reps and analysts are not (42501).
SET ROLE regress_erase_rep;
SELECT crm.erase_person('tom@other.example', 'x');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE crm_analyst;
SELECT crm.erase_person('tom@other.example', 'x');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE regress_erase_admin;
SELECT leads, contacts FROM crm.erase_person('tom@other.example', 'request #19');
RESET ROLE;
SELECT id, erased_by, reason, leads, contacts FROM crm.erasure_log ORDER BY id;
SELECT count(*) AS aggregate_differences FROM crm.verify_aggregates();
