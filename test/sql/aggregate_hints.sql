-- aggregate_hints: a backend remembers where it last wrote each stripe row
-- and goes straight there next time.  The place is only a guess, checked
-- before use: after compaction deleted the row, after VACUUM freed its slot
-- for another group's row, after VACUUM truncated its block away and after
-- VACUUM FULL rewrote the table, every change still lands in the right row
-- (crm.verify_aggregates() returns no rows) and nothing fails.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;
\set VERBOSITY terse
INSERT INTO crm.account (name) VALUES ('Acme');

-- One group, written twice by this backend: the second write goes to the
-- row the first one left (same HOT chain, so the same index entry).
INSERT INTO crm.opportunity (name, account_id, amount, close_date) VALUES ('A', 1, 10, '2027-01-15');
SELECT ctid AS a_ctid FROM crm_internal.pipeline_aggregate WHERE stripe <> 0 \gset
UPDATE crm.opportunity SET amount = 11 WHERE name = 'A';
SELECT opportunities, amount FROM crm_internal.pipeline_aggregate WHERE stripe <> 0;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- Compaction deletes the stripe row; VACUUM frees its slot; the row of
-- another group takes it.  The remembered place now holds that row, which
-- must not receive group A's next change.
SELECT crm.compact_aggregates() > 0 AS compacted;
VACUUM crm_internal.pipeline_aggregate;
INSERT INTO crm.opportunity (name, account_id, amount, close_date) VALUES ('B', 1, 500, '2031-06-01');
SELECT ctid = :'a_ctid' AS slot_reused_by_b FROM crm_internal.pipeline_aggregate
 WHERE stripe <> 0 AND close_month = '2031-06-01';
UPDATE crm.opportunity SET amount = 12 WHERE name = 'A';
SELECT close_month, stripe <> 0 AS writer_stripe, opportunities, amount FROM crm_internal.pipeline_aggregate ORDER BY 1, 2;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- Many groups spread the stripe rows over many blocks; deleting the deals
-- and compacting empties them, and VACUUM truncates the table.  The places
-- remembered in the removed blocks must not be read.  (Groups A and B are
-- folded into stripe 0 first, at the start of the table.)
SELECT crm.compact_aggregates() > 0 AS compacted;
VACUUM crm_internal.pipeline_aggregate;
INSERT INTO crm.opportunity (name, account_id, amount, close_date)
SELECT 'Many ' || g, 1, g, date '2100-01-01' + make_interval(months => g) FROM generate_series(1, 600) g;
SELECT pg_relation_size('crm_internal.pipeline_aggregate') AS size_before \gset
DELETE FROM crm.opportunity WHERE name LIKE 'Many %';
SELECT crm.compact_aggregates() > 0 AS compacted;
VACUUM crm_internal.pipeline_aggregate;
SELECT pg_relation_size('crm_internal.pipeline_aggregate') < :size_before / 4 AS truncated;
INSERT INTO crm.opportunity (name, account_id, amount, close_date)
SELECT 'Again ' || g, 1, g, date '2100-01-01' + make_interval(months => g) FROM generate_series(1, 600) g;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
UPDATE crm.opportunity SET amount = amount + 1 WHERE name LIKE 'Again %';
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- VACUUM FULL writes a new file: the remembered places are of the old one.
VACUUM FULL crm_internal.pipeline_aggregate;
UPDATE crm.opportunity SET amount = amount + 1 WHERE name LIKE 'Again %';
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
SELECT sum(opportunities) AS opportunities, sum(amount) AS amount FROM crm_internal.pipeline_aggregate;
