-- pipeline_as_of: crm.pipeline_as_of(at) is the pipeline by stage, owner and
-- currency as it was at that moment, exactly, from crm.opportunity_history,
-- which records owner, currency and deletion and outlives its deal; row
-- security of the history applies.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_asof_rep1;
DROP ROLE IF EXISTS regress_asof_rep2;
DROP ROLE IF EXISTS regress_asof_rep3;
DROP ROLE IF EXISTS regress_asof_mgr;
DROP ROLE IF EXISTS regress_asof_analyst;
DROP ROLE IF EXISTS regress_asof_outsider;
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

-- Who sees what (issue 22, session 36).  A deal counts when its state at
-- the moment -- its last entry by then -- is an entry the caller may read:
-- one that leaves the deal with the caller's team, or any entry of a deal
-- the caller sees now.  The reader checks that once per deal (not per
-- entry, src/pipeline_as_of.c); these cases pin it to row security.
-- Fresh deals, in stages never renamed, so the renames above stay apart:
-- D stays with rep1; E is rep1's, handed to rep2; F is rep2's, deleted;
-- G is rep3's (outside rep1's and rep2's teams).  rep1 and rep2 report to
-- the manager.
CREATE ROLE regress_asof_rep3 IN ROLE crm_sales;
CREATE ROLE regress_asof_mgr IN ROLE crm_manager;
CREATE ROLE regress_asof_analyst IN ROLE crm_analyst;
INSERT INTO crm.reporting_line (member, manager) VALUES ('regress_asof_rep1', 'regress_asof_mgr'),
                                                        ('regress_asof_rep2', 'regress_asof_mgr');
INSERT INTO crm.account (name, owner) VALUES ('Initech', 'regress_asof_rep2'), ('Hooli', 'regress_asof_rep3');
INSERT INTO crm.opportunity (name, account_id, stage, amount, close_date, owner, currency) VALUES
    ('D', 1, 'Requirement', 10, '2027-03-01', 'regress_asof_rep1', 'USD'),
    ('E', 1, 'Requirement', 20, '2027-03-01', 'regress_asof_rep1', 'USD'),
    ('F', (SELECT id FROM crm.account WHERE name = 'Initech'), 'Requirement', 40, '2027-03-01', 'regress_asof_rep2', 'USD'),
    ('G', (SELECT id FROM crm.account WHERE name = 'Hooli'), 'Requirement', 80, '2027-03-01', 'regress_asof_rep3', 'USD');
SELECT clock_timestamp() AS t5 \gset
UPDATE crm.opportunity SET owner = 'regress_asof_rep2' WHERE name = 'E';
DELETE FROM crm.opportunity WHERE name = 'F';
SELECT clock_timestamp() AS t6 \gset
-- The Requirement row at t5 and at t6, per role: the deals counted and
-- their owners then.
CREATE FUNCTION pg_temp.requirement(r text, t timestamptz) RETURNS text LANGUAGE plpgsql AS $$
DECLARE result text;
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', r);
    SELECT string_agg(coalesce(p.owner, '-') || ':' || p.opportunities || '/' || p.amount, ' ' ORDER BY p.owner)
      INTO result FROM crm.pipeline_as_of(t) AS p WHERE p.stage = 'Requirement';
    RETURN result;
END
$$;
-- rep1 at t5: D and E (theirs then); at t6 only D: E was handed to rep2
-- before t6 -- rep1 still reads E's first entry, but E's state at t6 is
-- rep2's, which rep1 may not read.
-- rep2 at t5: F (theirs) and E under rep1 (rep2 sees E now: its whole
-- history); at t6: E (theirs now), F no more (deleted before t6), while at
-- t5 the deleted F still counts (deleted after t5).
-- rep3: G only, at both moments.  The manager: the team's deals (D, E, F),
-- not G.  The analyst and the superuser: every deal.
SELECT r AS role, pg_temp.requirement(r, :'t5') AS at_t5, pg_temp.requirement(r, :'t6') AS at_t6
  FROM unnest(ARRAY['regress_asof_rep1', 'regress_asof_rep2', 'regress_asof_rep3', 'regress_asof_mgr',
                    'regress_asof_analyst', current_user]) AS r;
-- The same as row security gives on each deal's state: the states at t5
-- and t6 (found as the superuser), read back as each role, add up to what
-- the report counts for that role.
CREATE TABLE pg_temp.states AS
SELECT m.t, s.id FROM (VALUES (:'t5'::timestamptz), (:'t6'::timestamptz), (now() + interval '1 day')) AS m (t)
 CROSS JOIN LATERAL (SELECT DISTINCT ON (h.opportunity_id) h.id, h.deleted FROM crm.opportunity_history h
                      WHERE h.changed_at <= m.t ORDER BY h.opportunity_id, h.id DESC) AS s
 WHERE NOT s.deleted;
GRANT SELECT ON pg_temp.states TO PUBLIC;
CREATE FUNCTION pg_temp.mismatches(r text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', r);
    SELECT count(*) INTO n FROM (SELECT DISTINCT s.t FROM pg_temp.states s) AS m
     WHERE (SELECT coalesce(sum(p.opportunities), 0) || '/' || coalesce(sum(p.amount_in_currency), 0)
              FROM crm.pipeline_as_of(m.t) AS p WHERE p.currency = 'USD')
           IS DISTINCT FROM
           (SELECT count(*) || '/' || coalesce(sum(h.new_amount), 0)
              FROM pg_temp.states s JOIN crm.opportunity_history h ON h.id = s.id
             WHERE s.t = m.t AND h.currency = 'USD');
    RETURN n;
END
$$;
SELECT r AS role, pg_temp.mismatches(r) AS moments_that_differ
  FROM unnest(ARRAY['regress_asof_rep1', 'regress_asof_rep2', 'regress_asof_rep3', 'regress_asof_mgr',
                    'regress_asof_analyst', current_user]) AS r;
-- Under a policy the reader does not know (a DBA's restrictive one), the
-- policies themselves decide, once per deal, with the same meaning: rep2
-- may no more read entries of amount 40 or more, so F leaves their t5.
CREATE POLICY regress_small_only ON crm.opportunity_history AS RESTRICTIVE FOR SELECT TO crm_sales
    USING (new_amount < 40);
SELECT pg_temp.requirement('regress_asof_rep2', :'t5') AS rep2_at_t5, pg_temp.requirement('regress_asof_rep2', :'t6') AS rep2_at_t6;
SELECT r AS role, pg_temp.mismatches(r) AS moments_that_differ
  FROM unnest(ARRAY['regress_asof_rep1', 'regress_asof_rep2']) AS r;
DROP POLICY regress_small_only ON crm.opportunity_history;
-- The reader acts for its caller: a role allowed to run it but not to read
-- the history gets 42501, as from the history itself.
CREATE ROLE regress_asof_outsider;
GRANT USAGE ON SCHEMA crm TO regress_asof_outsider;
GRANT EXECUTE ON FUNCTION crm.pipeline_as_of(timestamptz) TO regress_asof_outsider;
SET ROLE regress_asof_outsider;
SELECT count(*) FROM crm.pipeline_as_of(now());
RESET ROLE;
REVOKE ALL ON SCHEMA crm FROM regress_asof_outsider;
REVOKE ALL ON FUNCTION crm.pipeline_as_of(timestamptz) FROM regress_asof_outsider;
DROP ROLE regress_asof_outsider;

-- Renames after the moment, as a chain: 'Proposal' (empty since A moved
-- on, D moves into it) is renamed 'Offer' and then 'Quote'.  At t7 D was
-- in 'Proposal'; at t8, after the first rename, in 'Offer'; now in
-- 'Quote'; always at Proposal's sort_order (30), and D's entry recorded
-- 'Proposal' throughout.
UPDATE crm.opportunity SET stage = 'Proposal' WHERE name = 'D';
SELECT clock_timestamp() AS t7 \gset
UPDATE crm.opportunity_stage SET name = 'Offer' WHERE name = 'Proposal';
SELECT clock_timestamp() AS t8 \gset
UPDATE crm.opportunity_stage SET name = 'Quote' WHERE name = 'Offer';
SELECT m AS moment, p.sort_order, p.stage, p.owner, p.opportunities, p.amount
  FROM (VALUES ('t7', :'t7'::timestamptz), ('t8', :'t8'), ('now', now() + interval '1 day')) AS v (m, t)
 CROSS JOIN LATERAL crm.pipeline_as_of(v.t) AS p WHERE p.sort_order = 30 ORDER BY v.t;
SELECT new_stage FROM crm.opportunity_history
 WHERE opportunity_id = (SELECT id FROM crm.opportunity WHERE name = 'D') ORDER BY id;
-- For every role, a moment after the last change is its
-- crm.pipeline_by_stage, renames included (the SQL function before the
-- reader in C showed a deal handed to another team under its former owner).
CREATE FUNCTION pg_temp.differences_now(r text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', r);
    SELECT count(*) INTO n FROM (
        (SELECT * FROM crm.pipeline_as_of(now() + interval '1 day') EXCEPT ALL SELECT * FROM crm.pipeline_by_stage)
        UNION ALL
        (SELECT * FROM crm.pipeline_by_stage EXCEPT ALL SELECT * FROM crm.pipeline_as_of(now() + interval '1 day'))) AS d;
    RETURN n;
END
$$;
SELECT r AS role, pg_temp.differences_now(r) AS differences
  FROM unnest(ARRAY['regress_asof_rep1', 'regress_asof_rep2', 'regress_asof_rep3', 'regress_asof_mgr',
                    'regress_asof_analyst', current_user]) AS r;
DELETE FROM crm.reporting_line WHERE manager = 'regress_asof_mgr'::regrole;

-- TRUNCATE empties the history with the deals (as the aggregates).
TRUNCATE crm.opportunity CASCADE;
SELECT count(*) AS entries_left FROM crm.opportunity_history;
SELECT count(*) AS rows_now FROM crm.pipeline_as_of(now());

DROP ROLE regress_asof_rep1;
DROP ROLE regress_asof_rep2;
DROP ROLE regress_asof_rep3;
DROP ROLE regress_asof_mgr;
DROP ROLE regress_asof_analyst;
