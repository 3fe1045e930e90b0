-- pipeline_as_of: crm.pipeline_as_of(at) is the pipeline by stage, owner and
-- currency as it was at that moment, exactly, from crm.opportunity_history,
-- which records owner, currency and deletion and outlives its deal; row
-- security of the history applies.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_asof_rep1;
DROP ROLE IF EXISTS regress_asof_rep2;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_asof_rep1 IN ROLE crm_sales;
CREATE ROLE regress_asof_rep2 IN ROLE crm_sales;
-- one euro is 1.10 USD (the corporate currency) from January 2027
INSERT INTO crm.exchange_rate (currency, valid_from, rate) VALUES ('EUR', '2027-01-01', 1.10);
INSERT INTO crm.account (name, owner) VALUES ('Acme', 'regress_asof_rep1');

-- Before any deal: the pipeline was empty.
SELECT clock_timestamp() AS t0 \gset
INSERT INTO crm.opportunity (name, account_id, stage, amount, close_date, owner, currency) VALUES
    ('A', 1, 'Proposal', 1000, '2027-01-15', 'regress_asof_rep1', 'USD'),
    ('B', 1, 'Negotiation', 500, '2027-02-10', 'regress_asof_rep2', 'EUR'),
    ('C', 1, 'Qualification', 300, NULL, 'regress_asof_rep1', 'USD');
SELECT clock_timestamp() AS t1 \gset
SELECT count(*) AS rows_at_t0 FROM crm.pipeline_as_of(:'t0');

-- At t1: the three deals as created (EUR converted at the close month's
-- rate, weighted by the stage's probability).
SELECT stage, owner, opportunities, amount, weighted_amount, currency, amount_in_currency
  FROM crm.pipeline_as_of(:'t1') ORDER BY sort_order, owner, currency;

-- Changes: A moves on with a new amount, B is handed to rep1, C is deleted;
-- twice in one transaction counts once (the last state).
UPDATE crm.opportunity SET stage = 'Negotiation', amount = 1500 WHERE name = 'A';
UPDATE crm.opportunity SET owner = 'regress_asof_rep1' WHERE name = 'B';
DELETE FROM crm.opportunity WHERE name = 'C';
BEGIN;
UPDATE crm.opportunity SET amount = 1600 WHERE name = 'A';
UPDATE crm.opportunity SET amount = 1700 WHERE name = 'A';
COMMIT;
SELECT clock_timestamp() AS t2 \gset

-- At t1 still the deals as they were then; at t2 the changes.
SELECT stage, owner, opportunities, amount, weighted_amount, currency
  FROM crm.pipeline_as_of(:'t1') ORDER BY sort_order, owner, currency;
SELECT stage, owner, opportunities, amount, weighted_amount, currency
  FROM crm.pipeline_as_of(:'t2') ORDER BY sort_order, owner, currency;

-- The history outlives the deleted deal: its entries and the deletion entry
-- (which repeats the last values) stay; owner changes are recorded.
SELECT h.new_stage, h.old_owner, h.new_owner, h.currency, h.deleted,
       h.id = (SELECT max(m.id) FROM crm.opportunity_history m WHERE m.opportunity_id = h.opportunity_id) AS current
  FROM crm.opportunity_history h WHERE h.opportunity_id = 3 ORDER BY h.id;
SELECT h.old_owner, h.new_owner, h.currency FROM crm.opportunity_history h
 WHERE h.opportunity_id = 2 ORDER BY h.id;
-- A deal's current entry, its last, is its state (a deleted deal's is its
-- deletion).
SELECT count(*) AS deals_whose_last_entry_is_not_their_state FROM crm.opportunity o
 WHERE NOT EXISTS (SELECT 1 FROM crm.opportunity_history h
                    WHERE h.id = (SELECT max(m.id) FROM crm.opportunity_history m WHERE m.opportunity_id = o.id)
                      AND NOT h.deleted
                      AND (h.new_stage, h.new_amount, h.new_owner, h.currency) = (o.stage, o.amount, o.owner, o.currency));

-- A moment after the last change: exactly crm.pipeline_by_stage.
SELECT count(*) AS differences FROM (
    (SELECT * FROM crm.pipeline_as_of(now() + interval '1 day') EXCEPT ALL SELECT * FROM crm.pipeline_by_stage)
    UNION ALL
    (SELECT * FROM crm.pipeline_by_stage EXCEPT ALL SELECT * FROM crm.pipeline_as_of(now() + interval '1 day'))) AS d;
-- The same columns as crm.pipeline_by_stage.
SELECT string_agg(format_type(a.atttypid, NULL), ', ' ORDER BY a.attnum) = (
       SELECT string_agg(format_type(t, NULL), ', ' ORDER BY n)
         FROM unnest((SELECT proallargtypes[2:] FROM pg_proc WHERE oid = 'crm.pipeline_as_of'::regproc)) WITH ORDINALITY AS u (t, n))
       AS same_types
  FROM pg_attribute a WHERE a.attrelid = 'crm.pipeline_by_stage'::regclass AND a.attnum > 0;

-- STRICT: no moment, no rows.
SELECT count(*) AS rows_at_null FROM crm.pipeline_as_of(NULL);

-- As a rep: rep2 sees B at t1 (theirs then), nothing at t2 (handed on);
-- rep1 sees at t1 their deals and B under rep2 (a deal they see now:
-- its whole history), and now exactly their crm.pipeline_by_stage.
SET ROLE regress_asof_rep2;
SELECT stage, owner, opportunities, amount FROM crm.pipeline_as_of(:'t1') ORDER BY sort_order, owner;
SELECT count(*) AS rows_at_t2 FROM crm.pipeline_as_of(:'t2');
SET ROLE regress_asof_rep1;
SELECT stage, owner, opportunities, amount FROM crm.pipeline_as_of(:'t1') ORDER BY sort_order, owner;
SELECT count(*) AS differences FROM (
    (SELECT * FROM crm.pipeline_as_of(now() + interval '1 day') EXCEPT ALL SELECT * FROM crm.pipeline_by_stage)
    UNION ALL
    (SELECT * FROM crm.pipeline_by_stage EXCEPT ALL SELECT * FROM crm.pipeline_as_of(now() + interval '1 day'))) AS d;
-- The history is written only by the database.
INSERT INTO crm.opportunity_history (opportunity_id, new_stage, new_amount, changed_by, new_owner, currency)
VALUES (1, 'Proposal', 1, 'regress_asof_rep1', 'regress_asof_rep1', 'USD');
UPDATE crm.opportunity_history SET new_amount = 0;
RESET ROLE;

-- A renamed stage: the entries keep the name they were recorded with (the
-- deals' next change records the new one); the rename is recorded, and
-- the as-of pipeline shows the deals under the name the stage had at the
-- moment asked, with its sort_order: before the rename the old name, after
-- it the new one, and a moment later exactly crm.pipeline_by_stage.
SELECT stage, sort_order, opportunities, currency FROM crm.pipeline_as_of(:'t2') WHERE opportunities > 0 ORDER BY sort_order, currency;
UPDATE crm.opportunity_stage SET name = 'Negotiation/Review' WHERE name = 'Negotiation';
SELECT count(*) AS renames_in_history FROM crm.opportunity_history WHERE new_stage = 'Negotiation/Review';
SELECT old_name, new_name FROM crm.opportunity_stage_rename ORDER BY id;
SELECT clock_timestamp() AS t3 \gset
SELECT stage, sort_order, opportunities, currency FROM crm.pipeline_as_of(:'t2') WHERE opportunities > 0 ORDER BY sort_order, currency;
SELECT stage, sort_order, opportunities, currency FROM crm.pipeline_as_of(:'t3') WHERE opportunities > 0 ORDER BY sort_order, currency;
SELECT count(*) AS differences FROM (
    (SELECT * FROM crm.pipeline_as_of(now() + interval '1 day') EXCEPT ALL SELECT * FROM crm.pipeline_by_stage)
    UNION ALL
    (SELECT * FROM crm.pipeline_by_stage EXCEPT ALL SELECT * FROM crm.pipeline_as_of(now() + interval '1 day'))) AS d;

-- A chain (renamed again) and an old name used again: 'Negotiation' is
-- now a new stage (sort_order 45), another stage than the one renamed
-- 'Negotiation/Review' then 'Review'.  Deal B moves into the new one.  At
-- t2 both deals were in the first 'Negotiation' (sort_order 40), and the
-- new stage did not exist yet: no zero row, its name then belonged to the
-- stage renamed since.  At t3 the first stage was 'Negotiation/Review'; the
-- new stage shows as a zero row (stages keep no creation time: only one
-- whose name was another's at the moment is known to be newer).  Now A is
-- in 'Review' and B in the new stage.  A stage without deals appears under
-- its name at the moment asked too ('Deal Closed', renamed 'Signature').
UPDATE crm.opportunity_stage SET name = 'Review' WHERE name = 'Negotiation/Review';
INSERT INTO crm.opportunity_stage (name, sort_order, probability) VALUES ('Negotiation', 45, 80);
UPDATE crm.opportunity SET stage = 'Negotiation' WHERE name = 'B';
UPDATE crm.opportunity_stage SET name = 'Signature' WHERE name = 'Deal Closed';
SELECT clock_timestamp() AS t4 \gset
SELECT sort_order, stage, owner, opportunities, amount, currency FROM crm.pipeline_as_of(:'t2') ORDER BY sort_order, owner, currency;
SELECT sort_order, stage, owner, opportunities, amount, currency FROM crm.pipeline_as_of(:'t3') WHERE sort_order BETWEEN 40 AND 50 ORDER BY sort_order, owner, currency;
SELECT sort_order, stage, owner, opportunities, amount, currency FROM crm.pipeline_as_of(:'t4') WHERE sort_order BETWEEN 40 AND 50 ORDER BY sort_order, owner, currency;
SELECT count(*) AS differences FROM (
    (SELECT * FROM crm.pipeline_as_of(now() + interval '1 day') EXCEPT ALL SELECT * FROM crm.pipeline_by_stage)
    UNION ALL
    (SELECT * FROM crm.pipeline_by_stage EXCEPT ALL SELECT * FROM crm.pipeline_as_of(now() + interval '1 day'))) AS d;
-- As the rep: the same (the renames are readable by whoever reads the
-- stages, but written by nobody: 42501).
SET ROLE regress_asof_rep1;
SELECT count(*) AS differences FROM (
    (SELECT * FROM crm.pipeline_as_of(now() + interval '1 day') EXCEPT ALL SELECT * FROM crm.pipeline_by_stage)
    UNION ALL
    (SELECT * FROM crm.pipeline_by_stage EXCEPT ALL SELECT * FROM crm.pipeline_as_of(now() + interval '1 day'))) AS d;
SELECT old_name, new_name FROM crm.opportunity_stage_rename ORDER BY id;
UPDATE crm.opportunity_stage_rename SET new_name = 'Forged';
RESET ROLE;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- TRUNCATE empties the history with the deals (as the aggregates).
TRUNCATE crm.opportunity CASCADE;
SELECT count(*) AS entries_left FROM crm.opportunity_history;
SELECT count(*) AS rows_now FROM crm.pipeline_as_of(now());

DROP ROLE regress_asof_rep1;
DROP ROLE regress_asof_rep2;
