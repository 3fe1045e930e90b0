-- stage_velocity: crm.stage_velocity reads kept stage passages (per stage
-- and owner, striped) that equal a recomputation from
-- crm.opportunity_history (crm.verify_aggregates()) through every write
-- path; a passage's time comes from crm.opportunity.stage_changed_at, which
-- only the database writes.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_velocity_rep1;
DROP ROLE IF EXISTS regress_velocity_rep2;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_velocity_rep1 IN ROLE crm_sales;
CREATE ROLE regress_velocity_rep2 IN ROLE crm_sales;
INSERT INTO crm.account (name) VALUES ('Acme');
-- the passages kept, summed over the stripes, read with the reader's rights
-- (USAGE on crm_internal, which no CRM role has, for this test only)
GRANT USAGE ON SCHEMA crm_internal TO crm_sales;
-- (groups that add up to nothing, a renamed stage's old name, left out)
CREATE VIEW kept WITH (security_invoker = true) AS
    SELECT stage, owner::text AS owner, sum(passages) AS passages
      FROM crm_internal.stage_velocity_aggregate GROUP BY 1, 2 HAVING sum(passages) <> 0;
GRANT SELECT ON kept TO crm_sales;

-- Creation enters a stage: no passage yet; stage_changed_at is set.
INSERT INTO crm.opportunity (name, account_id, stage, amount, owner)
SELECT 'Deal ' || g, 1, 'Qualification', 100 * g, CASE WHEN g % 2 = 0 THEN 'regress_velocity_rep2' ELSE 'regress_velocity_rep1' END::regrole
  FROM generate_series(1, 6) g;
SELECT count(*) FILTER (WHERE stage_changed_at = created_at) AS entered_at_creation FROM crm.opportunity;
SELECT stage, passages, currently_in_stage FROM crm.stage_velocity ORDER BY sort_order;

-- A move is a passage of the stage left, under the owner the deal had in it;
-- a change of anything else is none.
UPDATE crm.opportunity SET stage = 'Requirement' WHERE id <= 4;
UPDATE crm.opportunity SET amount = amount + 1;
SELECT * FROM kept ORDER BY stage, owner;
SELECT count(*) FILTER (WHERE stage_changed_at > created_at) AS moved FROM crm.opportunity;

-- Two moves in one transaction: two passages, the first of 0 seconds;
-- a move with an owner change counts for the owner before it.
BEGIN;
UPDATE crm.opportunity SET stage = 'Proposal' WHERE id = 1;
UPDATE crm.opportunity SET stage = 'Negotiation', owner = 'regress_velocity_rep2' WHERE id = 1;
COMMIT;
SELECT * FROM kept ORDER BY stage, owner;
SELECT seconds FROM crm_internal.stage_velocity_aggregate WHERE stage = 'Proposal';
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- A bulk move, MERGE and line items (the sum trigger updates the deal).
UPDATE crm.opportunity SET stage = 'Proposal' WHERE stage = 'Requirement';
MERGE INTO crm.opportunity o USING (VALUES (5, 'Requirement')) AS v (id, stage) ON o.id = v.id
 WHEN MATCHED THEN UPDATE SET stage = v.stage;
INSERT INTO crm.product (code, name, list_price) VALUES ('W', 'Widget', 10);
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price) VALUES (1, 1, 10);
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (2, 1, 7);
SELECT * FROM kept ORDER BY stage, owner;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- A deleted deal's passages stay (its history outlives it); it is no
-- longer in a stage.
DELETE FROM crm.opportunity WHERE id = 1;
SELECT stage, passages, currently_in_stage FROM crm.stage_velocity ORDER BY sort_order;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- A stage rename is no move: no passage, stage_changed_at kept; the
-- stage's passages before it move to the new name with its deals (one row,
-- its sort_order), and the rename is recorded.
SELECT stage_changed_at AS before_rename FROM crm.opportunity WHERE id = 2 \gset
UPDATE crm.opportunity_stage SET name = 'Proposal/Price Quote' WHERE name = 'Proposal';
SELECT stage_changed_at = :'before_rename' AS kept_on_rename FROM crm.opportunity WHERE id = 2;
SELECT sort_order, stage, passages, currently_in_stage FROM crm.stage_velocity ORDER BY sort_order NULLS LAST, stage;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
UPDATE crm.opportunity SET stage = 'Negotiation' WHERE id = 2;
SELECT * FROM kept WHERE stage LIKE 'Proposal%' ORDER BY stage, owner;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- A chain: renamed twice, and back.  The passages follow the stage through
-- every rename (deal 4 leaves it after the first).
BEGIN;
UPDATE crm.opportunity_stage SET name = 'Quote' WHERE name = 'Proposal/Price Quote';
SELECT renamed_at = now() AS at_transaction_time FROM crm.opportunity_stage_rename WHERE new_name = 'Quote';
COMMIT;
UPDATE crm.opportunity SET stage = 'Negotiation' WHERE id = 4;
UPDATE crm.opportunity_stage SET name = 'Offer' WHERE name = 'Quote';
SELECT sort_order, stage, passages, currently_in_stage FROM crm.stage_velocity WHERE sort_order = 30;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
UPDATE crm.opportunity_stage SET name = 'Proposal' WHERE name = 'Offer';
SELECT sort_order, stage, passages, currently_in_stage FROM crm.stage_velocity WHERE sort_order = 30;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- An old name used again: a new stage 'Closing' after 'Deal Closed' was
-- renamed 'Closing' and then 'Signature' is another stage; the passages of
-- the first stay with 'Signature', those of the new one count apart.
UPDATE crm.opportunity SET stage = 'Deal Closed' WHERE id = 3;
UPDATE crm.opportunity SET stage = 'Negotiation' WHERE id = 3;
UPDATE crm.opportunity_stage SET name = 'Closing' WHERE name = 'Deal Closed';
UPDATE crm.opportunity_stage SET name = 'Signature' WHERE name = 'Closing';
INSERT INTO crm.opportunity_stage (name, sort_order, probability) VALUES ('Closing', 45, 80);
UPDATE crm.opportunity SET stage = 'Closing' WHERE id = 3;
UPDATE crm.opportunity SET stage = 'Negotiation' WHERE id = 3;
SELECT sort_order, stage, passages FROM crm.stage_velocity WHERE sort_order IN (45, 50) ORDER BY sort_order;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- Two stages renamed by one statement, by an admin (who may not write the
-- log or the aggregate: the trigger does): each rename recorded, by them.
SET ROLE crm_admin;
UPDATE crm.opportunity_stage SET name = name || ' (renamed)' WHERE name IN ('Requirement', 'Negotiation');
RESET ROLE;
SELECT sort_order, stage, passages, currently_in_stage FROM crm.stage_velocity WHERE sort_order IN (20, 40) ORDER BY sort_order;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
-- The log, in order: who renamed what.
SELECT id, old_name, new_name, renamed_by FROM crm.opportunity_stage_rename ORDER BY id;

-- Compaction folds the rename's rows and drops the emptied old names;
-- the rebuild from the history gives the same figures.
SELECT crm.compact_aggregates() > 0 AS compacted;
SELECT count(*) AS old_names_kept FROM crm_internal.stage_velocity_aggregate
 WHERE stage NOT IN (SELECT name FROM crm.opportunity_stage);
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
SELECT crm.rebuild_aggregates() > 0 AS rebuilt;
SELECT sort_order, stage, passages, currently_in_stage FROM crm.stage_velocity ORDER BY sort_order NULLS LAST, stage;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- The funnel's aggregate is keyed by columns the rename cascades to: it
-- stays exact (no opportunity_funnel row in verify_aggregates above).
SELECT count(*) AS funnel_mismatches FROM crm.verify_aggregates() WHERE aggregate IN ('opportunity_funnel', 'lead_funnel');
SELECT count(*) AS funnel_rows_under_old_names FROM crm.sales_funnel f
 WHERE f.step IN (SELECT old_name FROM crm.opportunity_stage_rename) AND f.step NOT IN (SELECT name FROM crm.opportunity_stage);

-- Nobody writes the rename log, not even an admin (42501).
SET ROLE crm_admin;
INSERT INTO crm.opportunity_stage_rename (old_name, new_name, renamed_by, last_entry) VALUES ('A', 'B', 'crm_admin', 0);
DELETE FROM crm.opportunity_stage_rename;
RESET ROLE;

-- stage_changed_at is the database's: a rep may not write it (42501) ...
SET ROLE regress_velocity_rep2;
UPDATE crm.opportunity SET stage_changed_at = now() - interval '1 year' WHERE id = 2;
INSERT INTO crm.opportunity (name, account_id, stage_changed_at) VALUES ('Forged', 1, now() - interval '1 year');
-- ... and a rep reads the passages of their own deals only.
SELECT stage, owner FROM kept ORDER BY stage, owner;
SELECT stage, passages FROM crm.stage_velocity WHERE passages > 0 ORDER BY sort_order NULLS LAST, stage;
RESET ROLE;
-- ... and not even the table's owner moves it.
UPDATE crm.opportunity SET stage_changed_at = now() - interval '1 year' WHERE id = 3;
SELECT count(*) AS forged FROM crm.opportunity WHERE stage_changed_at < now() - interval '1 day';
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- The view equals a GROUP BY over the history, each recorded name taken
-- through the renames made after the entry (a rename applies to the
-- entries up to its last_entry; the next one is the first rename of the
-- new name after it): passages and average days.
SELECT count(*) AS differences FROM (
    (SELECT v.stage, v.passages, v.average_days
       FROM crm.stage_velocity v WHERE v.passages > 0
     EXCEPT
     SELECT n.stage, count(*), round(avg(extract(epoch FROM p.changed_at - p.entered_at)) / 86400, 2)
       FROM (SELECT h.id, h.old_stage, h.changed_at, lag(h.changed_at) OVER (PARTITION BY h.opportunity_id ORDER BY h.id) AS entered_at
               FROM crm.opportunity_history h WHERE h.old_stage IS DISTINCT FROM h.new_stage AND NOT h.deleted) p
      CROSS JOIN LATERAL (
            WITH RECURSIVE walk (stage, after) AS (
                SELECT p.old_stage, 0::bigint
                UNION ALL
                SELECT r.new_name, r.id FROM walk w
                  JOIN crm.opportunity_stage_rename r ON r.old_name = w.stage AND r.last_entry >= p.id AND r.id > w.after
                 WHERE r.id = (SELECT min(x.id) FROM crm.opportunity_stage_rename x
                                WHERE x.old_name = w.stage AND x.last_entry >= p.id AND x.id > w.after))
            SELECT w.stage FROM walk w ORDER BY w.after DESC LIMIT 1) n
      WHERE p.old_stage IS NOT NULL GROUP BY n.stage)) d;

-- TRUNCATE empties the passages with the history.
TRUNCATE crm.opportunity CASCADE;
SELECT count(*) AS passages_left FROM crm_internal.stage_velocity_aggregate;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

DROP VIEW kept;
DROP ROLE regress_velocity_rep1;
DROP ROLE regress_velocity_rep2;
