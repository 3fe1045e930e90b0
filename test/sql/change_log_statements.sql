-- change_log_statements: crm.change_log is written per statement, from the
-- statement's transition tables (crm_internal.record_change(), one AFTER ...
-- FOR EACH STATEMENT trigger per event), with one entry per changed row --
-- the same entries the row triggers wrote before: who, when, which table and
-- row, what changed.  Multi-row INSERT, UPDATE, DELETE, COPY and MERGE; a
-- statement that changes nothing logs nothing; a DBA's triggers and CHECK
-- constraints on the log hold.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_cls_rep;
CREATE ROLE regress_cls_rep IN ROLE crm_sales;
RESET client_min_messages;
\set VERBOSITY terse

-- The entries of crm.lead, in a stable order (row, then entry).
CREATE TEMP VIEW lead_log AS
SELECT row_id, operation, changed_by, changed_at = now() AS this_transaction, changes
  FROM crm.change_log WHERE table_name = 'crm.lead'::regclass;
GRANT SELECT ON lead_log TO regress_cls_rep;

-- The triggers: one statement trigger per event, each with its transition tables.
SELECT tgname, pg_get_triggerdef(oid) LIKE '%FOR EACH STATEMENT%' AS per_statement,
       tgoldtable IS NOT NULL AS old_rows, tgnewtable IS NOT NULL AS new_rows
  FROM pg_trigger WHERE tgrelid = 'crm.lead'::regclass AND tgname LIKE 'record_change%' ORDER BY tgname;

-- A multi-row INSERT by a sales rep: one INSERT entry per row, by the rep,
-- at the time of its transaction.
SET ROLE regress_cls_rep;
BEGIN;
INSERT INTO crm.lead (name, title) VALUES ('Ada Statement', 'CTO'), ('Bo Statement', 'CFO'), ('Cy Statement', NULL);
SELECT row_id, operation, changed_by, this_transaction, changes FROM lead_log ORDER BY row_id;
COMMIT;
RESET ROLE;

-- A multi-row UPDATE that changes two of the three rows: two entries, each
-- with its own row's old and new value (the old and new versions are paired
-- by position in the transition tables), never updated_at.
UPDATE crm.lead SET title = CASE name WHEN 'Ada Statement' THEN 'CEO' WHEN 'Bo Statement' THEN 'CFO' ELSE 'COO' END,
                    remarks = CASE WHEN name = 'Bo Statement' THEN NULL ELSE 'was ' || coalesce(title, 'none') END;
SELECT row_id, changes FROM lead_log WHERE operation = 'UPDATE' ORDER BY row_id;
SELECT count(*) AS entries_with_updated_at FROM lead_log WHERE changes ? 'updated_at';

-- An UPDATE that changes nothing (same values), and one that finds no row:
-- no entry.
SELECT count(*) AS entries_before FROM crm.change_log \gset
UPDATE crm.lead SET title = title, remarks = remarks;
UPDATE crm.lead SET title = 'x' WHERE false;
DELETE FROM crm.lead WHERE false;
SELECT count(*) - :entries_before AS new_entries FROM crm.change_log;

-- COPY: one entry per copied row.
COPY crm.lead (name, title) FROM stdin;
Di Copy	VP
Ed Copy	\N
\.
SELECT l.name, g.operation, g.changes FROM lead_log AS g JOIN crm.lead AS l ON l.id = g.row_id
 WHERE l.name LIKE '% Copy' ORDER BY l.name;

-- MERGE: the updated, inserted and deleted rows each get their entry.
MERGE INTO crm.lead AS l
USING (VALUES ('Di Copy', 'SVP'), ('Ed Copy', NULL), ('Fay Merge', 'CIO')) AS s (name, title)
   ON l.name = s.name
 WHEN MATCHED AND s.title IS NULL THEN DELETE
 WHEN MATCHED THEN UPDATE SET title = s.title
 WHEN NOT MATCHED THEN INSERT (name, title) VALUES (s.name, s.title);
SELECT g.row_id, g.operation, g.changes->>'name' AS deleted_name, g.changes->'title' AS title_change
  FROM lead_log AS g
 WHERE g.row_id IN (SELECT id FROM crm.lead WHERE name IN ('Di Copy', 'Fay Merge'))
    OR g.changes->>'name' = 'Ed Copy'
 ORDER BY g.row_id, g.operation;

-- A multi-row DELETE: one entry per row with the removed row's values.
DELETE FROM crm.lead WHERE name LIKE '% Statement';
SELECT row_id, changes->>'name' AS name, changes->>'title' AS title, changes ? 'remarks' AS has_remarks,
       changes ? 'created_at' AS has_created_at
  FROM lead_log WHERE operation = 'DELETE' ORDER BY row_id;

-- Long values are bounded in a multi-row statement as in a single-row one.
UPDATE crm.lead SET remarks = repeat('r', 2500) WHERE name IN ('Di Copy', 'Fay Merge');
SELECT row_id, changes->'remarks'->'new'->>'bytes' AS bytes,
       length(changes->'remarks'->'new'->>'truncated') AS kept
  FROM lead_log WHERE operation = 'UPDATE' AND changes->'remarks'->'new' ? 'truncated' ORDER BY row_id;

-- Many rows with little memory: the transition tables spill to disk and every
-- row still gets its entry, paired with its own old version.
SET work_mem = '64kB';
INSERT INTO crm.lead (name, remarks) SELECT 'Spill ' || md5(i::text), 'r' || i FROM generate_series(1, 3000) i;
UPDATE crm.lead SET remarks = remarks || '!' WHERE name LIKE 'Spill %';
SELECT operation, count(*) AS entries,
       count(*) FILTER (WHERE operation <> 'UPDATE' OR changes->'remarks'->>'new' = (changes->'remarks'->>'old') || '!') AS paired
  FROM lead_log WHERE row_id IN (SELECT id FROM crm.lead WHERE name LIKE 'Spill %')
 GROUP BY operation ORDER BY operation;
DELETE FROM crm.lead WHERE name LIKE 'Spill %';
SELECT count(*) AS delete_entries FROM lead_log WHERE operation = 'DELETE' AND changes->>'name' LIKE 'Spill %';
RESET work_mem;

-- The entries are appended below SQL (append_rows.c), yet a DBA's own
-- triggers and constraints on the log tables hold as for any INSERT.
-- A row trigger on crm.change_log fires for every entry, as the extension
-- owner (not as the rep who wrote the leads), and sees the defaults (id,
-- changed_at) filled in.
CREATE TABLE public.cls_seen (log_id bigint, operation text, by_owner boolean, now_at boolean);
CREATE FUNCTION public.cls_row_seen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.cls_seen VALUES (NEW.id, NEW.operation, current_user = 'postgres', NEW.changed_at = now());
    RETURN NEW;
END $$;
CREATE TRIGGER cls_row_seen BEFORE INSERT ON crm.change_log FOR EACH ROW EXECUTE FUNCTION public.cls_row_seen();
SET ROLE regress_cls_rep;
INSERT INTO crm.lead (name) SELECT 'Row Trigger ' || i FROM generate_series(1, 3) i;
RESET ROLE;
SELECT count(*) AS seen, count(DISTINCT log_id) AS ids, bool_and(operation = 'INSERT') AS inserts,
       bool_and(by_owner) AS by_owner, bool_and(now_at) AS now_at FROM public.cls_seen;
DROP TRIGGER cls_row_seen ON crm.change_log;

-- A statement trigger with a transition table fires once per statement,
-- with every entry of the statement in it.
CREATE TABLE public.cls_statements (entries bigint);
CREATE FUNCTION public.cls_statement_seen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.cls_statements SELECT count(*) FROM new_entries;
    RETURN NULL;
END $$;
CREATE TRIGGER cls_statement_seen AFTER INSERT ON crm.change_log REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION public.cls_statement_seen();
UPDATE crm.lead SET title = 'Seen' WHERE name LIKE 'Row Trigger %';
SELECT entries FROM public.cls_statements;
SELECT count(*) AS update_entries FROM lead_log
 WHERE operation = 'UPDATE' AND changes->'title'->>'new' = 'Seen';
DROP TRIGGER cls_statement_seen ON crm.change_log;

-- A CHECK constraint a DBA adds is checked for every entry: the statement fails (23514).
ALTER TABLE crm.change_log ADD CONSTRAINT cls_no_deletes CHECK (operation <> 'DELETE') NOT VALID;
DELETE FROM crm.lead WHERE name = 'Row Trigger 1';
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE crm.change_log DROP CONSTRAINT cls_no_deletes;

-- A column a DBA adds with a default gets it in every new entry; once the
-- column is dropped again, entries are written without it.
ALTER TABLE crm.change_log ADD COLUMN cls_source text DEFAULT 'crm';
UPDATE crm.lead SET title = 'Sourced' WHERE name LIKE 'Row Trigger %';
SELECT count(*) AS sourced FROM crm.change_log WHERE cls_source = 'crm' AND changes->'title'->>'new' = 'Sourced';
ALTER TABLE crm.change_log DROP COLUMN cls_source;
UPDATE crm.lead SET title = 'Unsourced' WHERE name LIKE 'Row Trigger %';
SELECT count(*) AS unsourced FROM lead_log WHERE changes->'title'->>'new' = 'Unsourced';

-- A rolled-back savepoint takes its entries with it.
SELECT count(*) AS entries_before FROM crm.change_log \gset
BEGIN;
SAVEPOINT s;
UPDATE crm.lead SET title = 'Gone' WHERE name LIKE 'Row Trigger %';
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT count(*) - :entries_before AS new_entries FROM crm.change_log;
DROP TABLE public.cls_seen, public.cls_statements;
DROP FUNCTION public.cls_row_seen(), public.cls_statement_seen();

-- The log stays the database's: the rep cannot write it, and the trigger
-- function cannot be fired by a trigger on another schema's table.
SET ROLE regress_cls_rep;
INSERT INTO crm.change_log (table_name, row_id, operation, changes, changed_by)
VALUES ('crm.lead', 1, 'DELETE', '{}', 'regress_cls_rep');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
CREATE TABLE public.cls_probe (id bigint);
CREATE TRIGGER probe AFTER INSERT ON public.cls_probe REFERENCING NEW TABLE AS n
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.record_change();
INSERT INTO public.cls_probe VALUES (1);
\echo :LAST_ERROR_SQLSTATE
DROP TABLE public.cls_probe;

SET client_min_messages = warning;
DROP EXTENSION crm CASCADE;
DROP ROLE regress_cls_rep;
