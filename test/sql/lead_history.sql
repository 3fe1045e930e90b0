-- lead_history: every status change of a lead is recorded (from, to, when,
-- by whom), and every change of a lead's fields lands in the update log.
-- Users can read the history but not write it.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;
DROP ROLE IF EXISTS regress_hist_rep;
CREATE ROLE regress_hist_rep IN ROLE crm_sales;

-- Capture records the first status; each change adds a row; a non-change adds none.
-- (the lead is the rep's: row-level security lets a rep change only their own)
INSERT INTO crm.lead (name, company, email, owner) VALUES ('Monica Hall', 'Raviga', 'monica@raviga.example', 'regress_hist_rep');
UPDATE crm.lead SET status = 'Processing' WHERE id = 1;
UPDATE crm.lead SET status = 'Processing' WHERE id = 1;
SET ROLE regress_hist_rep;
UPDATE crm.lead SET status = 'Following Up', remarks = 'demo booked' WHERE id = 1;
RESET ROLE;
SELECT lead_id, from_status, to_status, changed_by, changed_at > now() - interval '1 hour' AS recent
  FROM crm.lead_status_history ORDER BY id;

-- The update log holds the creation and each real change with old and new values
-- (an UPDATE that changed nothing leaves no entry).
UPDATE crm.lead SET remarks = remarks WHERE id = 1;
UPDATE crm.lead SET phone = '+1 555 0142', email = NULL WHERE id = 1;
SELECT lead_id, operation, changes, changed_by FROM crm.lead_update_log ORDER BY id;

-- Deleting a lead logs the removed values; its status history goes with it.
INSERT INTO crm.lead (name) VALUES ('Erlich Bachman');
DELETE FROM crm.lead WHERE id = 2;
SELECT lead_id, operation, changes->>'name' AS name FROM crm.lead_update_log WHERE lead_id = 2 ORDER BY id;
SELECT count(*) AS history_of_deleted FROM crm.lead_status_history WHERE lead_id = 2;

-- COPY is logged like INSERT.
COPY crm.lead (name) FROM stdin;
Jared Dunn
\.
SELECT operation FROM crm.lead_update_log WHERE lead_id = 3;

-- Users can read history but cannot write, change or delete it.
SET ROLE regress_hist_rep;
SELECT count(*) > 0 AS can_read FROM crm.lead_status_history;
INSERT INTO crm.lead_status_history (lead_id, to_status, changed_by) VALUES (1, 'Completed', 'regress_hist_rep');
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.change_log SET changed_by = 'postgres';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM crm.lead_status_history;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- The change log never shrinks, so what one value adds to it is bounded: a
-- value longer than 2000 bytes is kept as its first characters (up to 2000
-- bytes), its length in bytes and its SHA-256.  Here a 2 MB remark, set,
-- changed again (old and new both bounded), and deleted with its lead.
INSERT INTO crm.lead (name) VALUES ('Big Head');
UPDATE crm.lead SET remarks = (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 65536) AS g)
 WHERE name = 'Big Head';
UPDATE crm.lead SET remarks = remarks || '!' WHERE name = 'Big Head';
SELECT c.id - min(c.id) OVER () AS entry,
       jsonb_typeof(c.changes->'remarks'->'old') AS old,
       c.changes->'remarks'->'new'->>'bytes' AS new_bytes,
       length(c.changes->'remarks'->'new'->>'truncated') AS new_kept,
       c.changes->'remarks'->'new'->>'sha256' = encode(sha256(convert_to(l.remarks, 'UTF8')), 'hex') AS sha256_of_current,
       left(c.changes->'remarks'->'new'->>'truncated', 40) AS starts_with,
       octet_length(c.changes::text) < 5000 AS bounded
  FROM crm.change_log c JOIN crm.lead l ON l.id = c.row_id
 WHERE c.table_name = 'crm.lead'::regclass AND l.name = 'Big Head' AND c.operation = 'UPDATE'
 ORDER BY c.id;
SELECT (c.changes->'remarks'->'old'->>'sha256') = encode(sha256(convert_to(
          (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 65536) AS g), 'UTF8')), 'hex') AS old_hash_matches
  FROM crm.change_log c
 WHERE c.table_name = 'crm.lead'::regclass AND c.changes->'remarks'->'old'->>'bytes' = '2097152';
DELETE FROM crm.lead WHERE name = 'Big Head';
SELECT changes->'remarks'->>'bytes' AS deleted_bytes, octet_length(changes::text) < 5000 AS bounded
  FROM crm.change_log WHERE operation = 'DELETE' AND changes->>'name' = 'Big Head';
-- Up to 2000 bytes a value is kept whole, as a string; longer ones are cut
-- at a whole character (2 bytes each here: 1000 of them fit).
INSERT INTO crm.lead (name, remarks) VALUES ('Gavin', repeat('x', 1999));
UPDATE crm.lead SET remarks = repeat('y', 2000) WHERE name = 'Gavin';
UPDATE crm.lead SET remarks = repeat('é', 1001) WHERE name = 'Gavin';
SELECT jsonb_typeof(changes->'remarks'->'old') AS old_type, length(changes->'remarks'->>'old') AS old_length,
       jsonb_typeof(changes->'remarks'->'new') AS new_type,
       length(changes->'remarks'->'new'->>'truncated') AS new_kept, changes->'remarks'->'new'->>'bytes' AS new_bytes
  FROM crm.lead_update_log WHERE operation = 'UPDATE' AND changes ? 'remarks'
   AND lead_id = (SELECT id FROM crm.lead WHERE name = 'Gavin') ORDER BY id;

-- TRUNCATE is logged too.
TRUNCATE crm.lead CASCADE;
SELECT operation, row_id FROM crm.change_log WHERE operation = 'TRUNCATE';

RESET ROLE;
DROP EXTENSION crm CASCADE;
DROP ROLE regress_hist_rep;
