-- lead_history_statements: crm.lead_status_history is written per statement,
-- from the statement's transition tables (crm_internal.record_lead_status(),
-- one AFTER ... FOR EACH STATEMENT trigger for INSERT and one for UPDATE),
-- with exactly the entries the row trigger wrote before: one per captured
-- lead (from NULL) and one per lead whose status changed, by the role that
-- ran the statement, at the time of its transaction, in the order the
-- statement wrote the rows.  Multi-row INSERT, UPDATE, COPY, MERGE and
-- INSERT ... ON CONFLICT DO UPDATE; a statement that changes no status
-- records nothing.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_lhs_rep;
CREATE ROLE regress_lhs_rep IN ROLE crm_sales;
RESET client_min_messages;
\set VERBOSITY terse

-- The entries with their lead's name, in order of recording.
CREATE TEMP VIEW status_log AS
SELECT h.id, l.name, h.from_status, h.to_status, h.changed_by, h.changed_at = now() AS this_transaction
  FROM crm.lead_status_history AS h JOIN crm.lead AS l ON l.id = h.lead_id;
GRANT SELECT ON status_log TO regress_lhs_rep;

-- The triggers: one statement trigger per event, each with its transition
-- tables; no row trigger is left.
SELECT tgname, pg_get_triggerdef(oid) LIKE '%FOR EACH STATEMENT%' AS per_statement,
       tgoldtable IS NOT NULL AS old_rows, tgnewtable IS NOT NULL AS new_rows
  FROM pg_trigger WHERE tgfoid = 'crm_internal.record_lead_status'::regproc ORDER BY tgname;

-- A multi-row INSERT by a sales rep: one entry per lead, from NULL to its
-- status, by the rep, in the order of the rows.
SET ROLE regress_lhs_rep;
BEGIN;
INSERT INTO crm.lead (name, status)
VALUES ('Ada Hist', 'New Lead'), ('Bo Hist', 'Processing'), ('Cy Hist', 'Not Qualified');
SELECT name, from_status, to_status, changed_by, this_transaction FROM status_log ORDER BY id;
COMMIT;
RESET ROLE;

-- A multi-row UPDATE that changes the status of two of the three: two
-- entries, each with its own lead's old and new status.
UPDATE crm.lead SET status = CASE name WHEN 'Ada Hist' THEN 'Processing'::crm.lead_status
                                       WHEN 'Bo Hist' THEN 'Processing'::crm.lead_status
                                       ELSE 'New Lead'::crm.lead_status END,
                    remarks = 'sorted'
 WHERE name LIKE '% Hist';
SELECT name, from_status, to_status, changed_by FROM status_log WHERE from_status IS NOT NULL ORDER BY id;

-- UPDATEs that change no status record nothing: other columns only, the
-- same status again, no row found.
SELECT count(*) AS entries_before FROM crm.lead_status_history \gset
UPDATE crm.lead SET remarks = 'called again' WHERE name LIKE '% Hist';
UPDATE crm.lead SET status = status, title = 'same';
UPDATE crm.lead SET status = 'Completed' WHERE false;
SELECT count(*) - :entries_before AS new_entries FROM crm.lead_status_history;

-- COPY: one entry per copied lead.
COPY crm.lead (name, status) FROM stdin;
Di Copy	Following Up
Ed Copy	New Lead
\.
SELECT name, from_status, to_status FROM status_log WHERE name LIKE '% Copy' ORDER BY id;

-- MERGE: an insert, an update that changes the status, one that does not,
-- and a delete -- entries for the first two only.
MERGE INTO crm.lead AS l
USING (VALUES ('Di Copy', 'Completed'), ('Ed Copy', 'New Lead'), ('Ada Hist', NULL), ('Fay Merge', 'Processing'))
      AS s (name, status)
   ON l.name = s.name
 WHEN MATCHED AND s.status IS NULL THEN DELETE
 WHEN MATCHED THEN UPDATE SET status = s.status::crm.lead_status
 WHEN NOT MATCHED THEN INSERT (name, status) VALUES (s.name, s.status::crm.lead_status);
SELECT name, from_status, to_status FROM status_log WHERE name IN ('Di Copy', 'Ed Copy', 'Fay Merge') ORDER BY id;
-- the deleted lead's entries went with it (ON DELETE CASCADE)
SELECT count(*) AS entries_of_deleted FROM crm.lead_status_history
 WHERE lead_id NOT IN (SELECT id FROM crm.lead);

-- INSERT ... ON CONFLICT DO UPDATE: the inserted row gets its capture entry,
-- the updated one its change.
INSERT INTO crm.lead (id, name, status) OVERRIDING SYSTEM VALUE
SELECT l.id, l.name, 'In Transaction'::crm.lead_status FROM crm.lead AS l WHERE l.name = 'Fay Merge'
UNION ALL
SELECT 100000, 'Gus Upsert', 'Processing'::crm.lead_status
    ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status;
SELECT name, from_status, to_status FROM status_log WHERE name IN ('Fay Merge', 'Gus Upsert') ORDER BY id;

-- A statement that fails records nothing.
SELECT count(*) AS entries_before FROM crm.lead_status_history \gset
INSERT INTO crm.lead (name) VALUES ('Hal Fails'), (' ');
UPDATE crm.lead SET status = 'Completed', name = CASE WHEN name = 'Fay Merge' THEN ' ' ELSE name END;
SELECT count(*) - :entries_before AS new_entries FROM crm.lead_status_history;

-- Many rows, in batches of 10,000 and with little memory (the transition
-- tables spill to disk): every lead gets its entry, with its own old status.
SET work_mem = '64kB';
INSERT INTO crm.lead (name, status)
SELECT 'Bulk ' || i, CASE WHEN i % 2 = 0 THEN 'New Lead' ELSE 'Processing' END::crm.lead_status
  FROM generate_series(1, 10005) AS i;
UPDATE crm.lead SET status = 'Following Up' WHERE name LIKE 'Bulk %' AND status = 'New Lead';
UPDATE crm.lead SET status = CASE WHEN status = 'Processing' THEN 'Completed' ELSE status END
 WHERE name LIKE 'Bulk %';
SELECT h.from_status, h.to_status, count(*) AS entries
  FROM crm.lead_status_history AS h JOIN crm.lead AS l ON l.id = h.lead_id
 WHERE l.name LIKE 'Bulk %'
 GROUP BY 1, 2 ORDER BY 1 NULLS FIRST, 2;
-- each lead's entries, in order of recording, end at its current status
SELECT count(*) AS leads_whose_last_entry_is_not_their_status
  FROM crm.lead AS l
 WHERE l.name LIKE 'Bulk %'
   AND l.status IS DISTINCT FROM (SELECT h.to_status FROM crm.lead_status_history AS h
                                   WHERE h.lead_id = l.id ORDER BY h.id DESC LIMIT 1);
-- and the entries of a statement are in the order of its rows (ids)
SELECT bool_and(ordered) AS in_row_order
  FROM (SELECT (h.lead_id > lag(h.lead_id) OVER (ORDER BY h.id)) IS NOT FALSE AS ordered
          FROM crm.lead_status_history AS h JOIN crm.lead AS l ON l.id = h.lead_id
         WHERE l.name LIKE 'Bulk %' AND h.from_status IS NULL) AS x;
RESET work_mem;
DELETE FROM crm.lead WHERE name LIKE 'Bulk %';

-- A conversion records its Converted entry, by the caller.
INSERT INTO crm.lead (name, company, email, owner)
VALUES ('Ivy Convert', 'Ivy Co', 'ivy@ivy.example', 'regress_lhs_rep');
SET ROLE regress_lhs_rep;
SELECT 1 AS converted FROM crm.convert_lead((SELECT id FROM crm.lead WHERE name = 'Ivy Convert'));
SELECT name, from_status, to_status, changed_by FROM status_log WHERE name = 'Ivy Convert' ORDER BY id;

-- The conversion guard fires on an UPDATE that names a column of the
-- conversion record, whatever the write path; other columns stay editable.
UPDATE crm.lead SET remarks = 'won' WHERE name = 'Ivy Convert';
UPDATE crm.lead SET status = 'Processing', remarks = 'again' WHERE name = 'Ivy Convert';
\echo :LAST_ERROR_SQLSTATE
MERGE INTO crm.lead AS l USING (VALUES ('Ivy Convert')) AS s (name) ON l.name = s.name
 WHEN MATCHED THEN UPDATE SET status = 'New Lead';
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
INSERT INTO crm.lead (id, name) OVERRIDING SYSTEM VALUE
SELECT id, name FROM crm.lead WHERE name = 'Ivy Convert'
    ON CONFLICT (id) DO UPDATE SET converted_at = NULL;
\echo :LAST_ERROR_SQLSTATE
SET ROLE regress_lhs_rep;
SELECT name, status, remarks, converted_at IS NOT NULL AS still_converted FROM crm.lead WHERE name = 'Ivy Convert';

-- The history stays the database's: the rep cannot write it.
INSERT INTO crm.lead_status_history (lead_id, to_status, changed_by)
SELECT id, 'Completed', 'regress_lhs_rep' FROM crm.lead WHERE name = 'Ivy Convert';
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- The trigger function refuses to be fired for another event, or per
-- statement without its transition tables.
BEGIN;
CREATE TRIGGER probe AFTER DELETE ON crm.lead
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.record_lead_status();
DELETE FROM crm.lead WHERE false;
ROLLBACK;
BEGIN;
CREATE TRIGGER probe AFTER INSERT ON crm.lead
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.record_lead_status();
INSERT INTO crm.lead (name) VALUES ('Jo Probe');
ROLLBACK;

-- A database not yet updated from 0.6 keeps the row trigger of 0.6 until
-- ALTER EXTENSION crm UPDATE: fired FOR EACH ROW the function still records
-- the captured lead and each change of status, and nothing else.
BEGIN;
ALTER TABLE crm.lead DISABLE TRIGGER record_lead_status_insert;
ALTER TABLE crm.lead DISABLE TRIGGER record_lead_status_update;
CREATE TRIGGER record_lead_status AFTER INSERT OR UPDATE OF status ON crm.lead
    FOR EACH ROW EXECUTE FUNCTION crm_internal.record_lead_status();
INSERT INTO crm.lead (name, status) VALUES ('Kim Row', 'New Lead'), ('Lou Row', 'Processing');
UPDATE crm.lead SET status = 'Processing' WHERE name IN ('Kim Row', 'Lou Row');
SELECT name, from_status, to_status, changed_by FROM status_log WHERE name LIKE '% Row' ORDER BY id;
ROLLBACK;

SET client_min_messages = warning;
DROP EXTENSION crm CASCADE;
DROP ROLE regress_lhs_rep;
