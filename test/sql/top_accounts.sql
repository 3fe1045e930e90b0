-- top_accounts: crm.top_accounts(by, n), the top n accounts by open or won
-- amount, as a specification.  It returns exactly
--   SELECT * FROM crm.account_rollup WHERE <by> > 0 ORDER BY <by> DESC, account_id LIMIT n
-- for whoever calls it (row-level security applies), at every committed
-- state: before and after crm.compact_aggregates(), with writes since,
-- after rate edits, a missing rate, a prepared transaction, a rebuild and a
-- TRUNCATE.  It reads crm_internal.account_settled (figures of the
-- compacted groups, written only by compactions, rebuilds and rate edits)
-- for the accounts without uncompacted stripes, and computes the others.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_top_rep1, regress_top_rep2, regress_top_boss, regress_top_analyst;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_top_rep1 IN ROLE crm_sales;
CREATE ROLE regress_top_rep2 IN ROLE crm_sales;
CREATE ROLE regress_top_boss IN ROLE crm_manager;
CREATE ROLE regress_top_analyst IN ROLE crm_analyst;
INSERT INTO crm.reporting_line (member, manager) VALUES ('regress_top_rep1', 'regress_top_boss');
INSERT INTO crm.currency (code, name) VALUES ('EUR', 'Euro') ON CONFLICT DO NOTHING;
INSERT INTO crm.exchange_rate (currency, valid_from, rate) VALUES ('EUR', '2026-01-01', 1.10);

-- Six accounts; rep1 and rep2 own deals on them (rep2 on account 1 too).
INSERT INTO crm.account (name, owner)
SELECT 'Acc ' || g, CASE WHEN g <= 3 THEN 'regress_top_rep1' ELSE 'regress_top_rep2' END::regrole
  FROM generate_series(1, 6) g;
INSERT INTO crm.opportunity (name, account_id, amount, close_date, stage, owner, currency) VALUES
    ('a1', 1, 1000, '2027-01-10', 'Proposal',   'regress_top_rep1', 'USD'),
    ('a2', 1,  500, '2027-02-10', 'Proposal',   'regress_top_rep2', 'EUR'),
    ('b1', 2, 1200, '2027-01-10', 'Qualification', 'regress_top_rep1', 'USD'),
    ('b2', 2, 3000, '2027-01-20', 'Successful', 'regress_top_rep1', 'USD'),
    ('c1', 3,  900, NULL,         'Proposal',   'regress_top_rep1', 'EUR'),
    ('d1', 4, 1550, '2027-03-01', 'Negotiation', 'regress_top_rep2', 'USD'),
    ('e1', 5,  300, '2027-03-01', 'Negotiation', 'regress_top_rep2', 'USD'),
    ('f1', 6, 2000, '2027-04-01', 'Successful', 'regress_top_rep2', 'EUR');

-- The check, for the current role: top_accounts is the view, row by row.
PREPARE same(text, integer) AS
SELECT ARRAY(SELECT t FROM crm.top_accounts($1, $2) AS t)
       = ARRAY(SELECT r FROM crm.account_rollup AS r
                WHERE CASE $1 WHEN 'open_amount' THEN r.open_amount ELSE r.won_amount END > 0
                ORDER BY CASE $1 WHEN 'open_amount' THEN r.open_amount ELSE r.won_amount END DESC, r.account_id
                LIMIT $2) AS same;

-- Nothing compacted yet: every account is pending, computed from its groups.
SELECT count(*) AS settled_rows FROM crm_internal.account_settled;
SELECT account_id, name, open_opportunities, open_amount FROM crm.top_accounts('open_amount', 3);
EXECUTE same('open_amount', 3);
EXECUTE same('won_amount', 10);

-- A compaction settles the accounts whose stripes it folds: one row per
-- (account, opportunity owner), and one per account for all owners (-).
SELECT crm.compact_aggregates() > 0 AS compacted;
SELECT account_id, owner, open_opportunities, open_amount, won_opportunities, won_amount
  FROM crm_internal.account_settled ORDER BY account_id, owner::oid <> 0, owner::text;
SELECT account_id, name, open_amount FROM crm.top_accounts('open_amount', 3);
SELECT account_id, name, won_amount FROM crm.top_accounts('won_amount', 3);
EXECUTE same('open_amount', 3);
EXECUTE same('won_amount', 2);
-- n larger than the accounts with an amount; n = 0
SELECT count(*) AS accounts FROM crm.top_accounts('open_amount', 100);
EXECUTE same('open_amount', 100);
SELECT count(*) AS accounts FROM crm.top_accounts('open_amount', 0);
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- Writes since the compaction make their accounts pending: exact at once
-- (d1 grows past account 1; a2 closes as won; b1 is lost).
UPDATE crm.opportunity SET amount = 5000 WHERE name = 'd1';
UPDATE crm.opportunity SET stage = 'Successful' WHERE name = 'a2';
UPDATE crm.opportunity SET stage = 'Failed', loss_reason_code = 'no_budget' WHERE name IN ('b1', 'e1');
SELECT count(DISTINCT account_id) AS pending_accounts FROM crm_internal.account_aggregate WHERE stripe <> 0;
SELECT account_id, name, open_amount FROM crm.top_accounts('open_amount', 3);
EXECUTE same('open_amount', 3);
EXECUTE same('won_amount', 3);
-- ties: equal amounts are ordered by account_id, as the check's ORDER BY
UPDATE crm.opportunity SET amount = 1000 WHERE name = 'c1';
UPDATE crm.exchange_rate SET rate = 1 WHERE currency = 'EUR';
SELECT account_id, open_amount FROM crm.top_accounts('open_amount', 2);
EXECUTE same('open_amount', 2);
SELECT crm.compact_aggregates() > 0 AS compacted;
SELECT account_id, open_amount FROM crm.top_accounts('open_amount', 2);
EXECUTE same('open_amount', 2);

-- A rate edit settles again, in the editing transaction, the accounts it
-- affects: the settled euro amounts change with it.
SELECT open_amount FROM crm_internal.account_settled WHERE account_id = 3 AND owner = 0::oid::regrole;
UPDATE crm.exchange_rate SET rate = 2 WHERE currency = 'EUR';
SELECT open_amount FROM crm_internal.account_settled WHERE account_id = 3 AND owner = 0::oid::regrole;
EXECUTE same('open_amount', 3);
EXECUTE same('won_amount', 3);
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- Only the accounts whose conversion an edit changes are settled again: a
-- group (currency, close month) takes the latest rate not after its month
-- (no close date: the latest rate), so an edit of the rate (c, v) moves the
-- groups of c from v to the next rate of c.  The euro groups now: account 1
-- (a2, won, February 2027), account 3 (c1, open, no close date), account 6
-- (f1, won, April 2027).  Every settled row is remembered (xmin: which
-- transaction wrote it) to show which ones each edit rewrites.
SELECT count(*) AS pending_rows FROM crm_internal.account_aggregate WHERE stripe <> 0;
CREATE TEMP TABLE settled_before AS
SELECT s.account_id, s.owner, s.xmin::text AS written_by, s.open_amount, s.won_amount FROM crm_internal.account_settled AS s;
PREPARE rewritten AS
SELECT s.account_id, pg_catalog.count(*) AS rows_rewritten,
       pg_catalog.bool_and(s.open_amount IS NOT DISTINCT FROM b.open_amount
                           AND s.won_amount IS NOT DISTINCT FROM b.won_amount) AS same_figures
  FROM crm_internal.account_settled AS s
  LEFT JOIN settled_before AS b ON b.account_id = s.account_id AND b.owner = s.owner
 WHERE b.written_by IS DISTINCT FROM s.xmin::text
 GROUP BY s.account_id ORDER BY s.account_id;
-- settled figures against the view computed from the groups, every account
PREPARE settled_is_rollup AS
SELECT count(*) AS accounts,
       count(*) FILTER (WHERE round(s.open_amount, 2) = r.open_amount AND round(s.won_amount, 2) = r.won_amount) AS equal
  FROM crm.account_rollup AS r
  JOIN crm_internal.account_settled AS s ON s.account_id = r.account_id AND s.owner = 0::oid::regrole;
-- a new euro rate from March 2027: accounts 3 (no close date: the latest
-- rate) and 6 (April) change; account 1 (February) keeps the older rate and
-- its settled rows are not rewritten
BEGIN;
INSERT INTO crm.exchange_rate (currency, valid_from, rate) VALUES ('EUR', '2027-03-01', 3);
EXECUTE rewritten;
COMMIT;
SELECT account_id, open_amount, won_amount FROM crm.account_rollup WHERE account_id IN (1, 3, 6) ORDER BY account_id;
EXECUTE settled_is_rollup;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
EXECUTE same('open_amount', 6);
EXECUTE same('won_amount', 6);
-- the older euro rate: only the months before March 2027 (account 1)
TRUNCATE settled_before;
INSERT INTO settled_before SELECT s.account_id, s.owner, s.xmin::text, s.open_amount, s.won_amount FROM crm_internal.account_settled AS s;
BEGIN;
UPDATE crm.exchange_rate SET rate = 2.5 WHERE currency = 'EUR' AND valid_from = '2026-01-01';
EXECUTE rewritten;
COMMIT;
EXECUTE settled_is_rollup;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
-- an edit that changes no group's rate (a euro rate before every other
-- one: no group is that old; a rate of a currency no deal uses) rewrites
-- nothing; a euro rate after every other one is the latest rate, which the
-- deals without a close date take (account 3)
TRUNCATE settled_before;
INSERT INTO settled_before SELECT s.account_id, s.owner, s.xmin::text, s.open_amount, s.won_amount FROM crm_internal.account_settled AS s;
BEGIN;
INSERT INTO crm.exchange_rate (currency, valid_from, rate) VALUES ('EUR', '2025-01-01', 4);
INSERT INTO crm.currency (code, name) VALUES ('SEK', 'Krona') ON CONFLICT DO NOTHING;
INSERT INTO crm.exchange_rate (currency, valid_from, rate) VALUES ('SEK', '2026-01-01', 0.1);
EXECUTE rewritten;
INSERT INTO crm.exchange_rate (currency, valid_from, rate) VALUES ('EUR', '2030-01-01', 4);
EXECUTE rewritten;
EXECUTE settled_is_rollup;
ROLLBACK;
-- deleting the March rate: accounts 3 and 6 fall back to the older one
BEGIN;
DELETE FROM crm.exchange_rate WHERE currency = 'EUR' AND valid_from = '2027-03-01';
EXECUTE rewritten;
COMMIT;
EXECUTE settled_is_rollup;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
EXECUTE same('open_amount', 6);
-- an account with pending writes (account 6): the edit settles it from its
-- compacted groups, and top_accounts computes it from all its groups until
-- a compaction folds the writes and settles it again
UPDATE crm.opportunity SET amount = amount + 1 WHERE name = 'f1';
UPDATE crm.exchange_rate SET rate = 2 WHERE currency = 'EUR' AND valid_from = '2026-01-01';
EXECUTE same('won_amount', 6);
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
UPDATE crm.opportunity SET amount = amount - 1 WHERE name = 'f1';
SELECT crm.compact_aggregates() > 0 AS compacted;
EXECUTE settled_is_rollup;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
-- every write path of the rates: MERGE (an update and an insert in one
-- statement), TRUNCATE (every account settled: no rate left) and COPY
MERGE INTO crm.exchange_rate AS r
USING (VALUES ('EUR', date '2026-01-01', 2.2), ('EUR', date '2027-04-01', 3.3)) AS v (currency, valid_from, rate)
   ON r.currency = v.currency AND r.valid_from = v.valid_from
 WHEN MATCHED THEN UPDATE SET rate = v.rate
 WHEN NOT MATCHED THEN INSERT (currency, valid_from, rate) VALUES (v.currency, v.valid_from, v.rate);
EXECUTE settled_is_rollup;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
BEGIN;
TRUNCATE crm.exchange_rate;
SELECT count(*) FILTER (WHERE open_amount IS NULL OR won_amount IS NULL) AS unpriced_accounts
  FROM crm_internal.account_settled WHERE owner = 0::oid::regrole;
COPY crm.exchange_rate (currency, valid_from, rate) FROM stdin;
EUR	2026-01-01	2
\.
COMMIT;
EXECUTE settled_is_rollup;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
EXECUTE same('open_amount', 6);
DEALLOCATE rewritten;
DEALLOCATE settled_is_rollup;
DROP TABLE settled_before;

-- A currency without a rate: the settled amount is NULL, and top_accounts
-- computes the account and raises ZC120, as crm.account_rollup does.
INSERT INTO crm.currency (code, name) VALUES ('CHF', 'Swiss franc') ON CONFLICT DO NOTHING;
INSERT INTO crm.exchange_rate (currency, valid_from, rate) VALUES ('CHF', '2027-01-01', 1.2);
INSERT INTO crm.opportunity (name, account_id, amount, close_date, currency, owner)
VALUES ('g1', 5, 700, '2027-05-01', 'CHF', 'regress_top_rep2');
SELECT crm.compact_aggregates() > 0 AS compacted;
DELETE FROM crm.exchange_rate WHERE currency = 'CHF';
SELECT open_amount IS NULL AS unpriced FROM crm_internal.account_settled WHERE account_id = 5 AND owner = 0::oid::regrole;
SELECT count(*) FROM crm.top_accounts('open_amount', 3);
SELECT open_amount FROM crm.account_rollup WHERE account_id = 5;
INSERT INTO crm.exchange_rate (currency, valid_from, rate) VALUES ('CHF', '2027-01-01', 1.2);
EXECUTE same('open_amount', 6);
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- One owner's accounts (the account's owner, as the view's owner column):
-- all of them are read, through account_owner_idx; an unknown role owns none.
SELECT account_id, name, owner, open_amount FROM crm.top_accounts('open_amount', 10, 'regress_top_rep2');
SELECT ARRAY(SELECT t FROM crm.top_accounts('won_amount', 10, 'regress_top_rep2') AS t)
       = ARRAY(SELECT r FROM crm.account_rollup AS r WHERE r.won_amount > 0 AND r.owner = 'regress_top_rep2'
                ORDER BY r.won_amount DESC, r.account_id LIMIT 10) AS same_for_owner;
SELECT count(*) AS accounts FROM crm.top_accounts('open_amount', 10, 'regress_top_nobody');
-- The owner's top n walk that owner's settled rows (account_owner, kept
-- equal to the account's owner) plus that owner's pending accounts: the
-- same rows as the view filtered on owner, before and after a compaction
-- and after an account changes owner (which settles it again at once).
PREPARE same_owner(text, integer, text) AS
SELECT ARRAY(SELECT t FROM crm.top_accounts($1, $2, $3) AS t)
       = ARRAY(SELECT r FROM crm.account_rollup AS r
                WHERE CASE $1 WHEN 'open_amount' THEN r.open_amount ELSE r.won_amount END > 0 AND r.owner = $3
                ORDER BY CASE $1 WHEN 'open_amount' THEN r.open_amount ELSE r.won_amount END DESC, r.account_id
                LIMIT $2) AS same;
EXECUTE same_owner('open_amount', 1, 'regress_top_rep2');
EXECUTE same_owner('won_amount', 1, 'regress_top_rep1');
SELECT crm.compact_aggregates() >= 0 AS compacted;
SELECT count(*) AS pending_rows FROM crm_internal.account_aggregate WHERE stripe <> 0;
EXECUTE same_owner('open_amount', 1, 'regress_top_rep2');
EXECUTE same_owner('open_amount', 2, 'regress_top_rep1');
EXECUTE same_owner('won_amount', 1, 'regress_top_rep2');
-- account 4 (rep2's, the biggest open amount) moves to rep1: recorded in
-- account_owner_moved, it is pending (computed from its groups) until the
-- next compaction settles it with its new owner
SELECT account_id, open_amount FROM crm.top_accounts('open_amount', 1, 'regress_top_rep1');
UPDATE crm.account SET owner = 'regress_top_rep1' WHERE id = 4;
SELECT account_id FROM crm_internal.account_owner_moved;
SELECT DISTINCT account_owner FROM crm_internal.account_settled WHERE account_id = 4;
SELECT account_id, open_amount FROM crm.top_accounts('open_amount', 1, 'regress_top_rep1');
EXECUTE same_owner('open_amount', 3, 'regress_top_rep1');
EXECUTE same_owner('open_amount', 3, 'regress_top_rep2');
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
SELECT crm.compact_aggregates() >= 0 AS compacted;
SELECT count(*) AS moved FROM crm_internal.account_owner_moved;
SELECT DISTINCT account_owner FROM crm_internal.account_settled WHERE account_id = 4;
EXECUTE same_owner('open_amount', 3, 'regress_top_rep1');
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
-- an update that changes no owner records nothing and settles nothing
CREATE TEMP TABLE settled_before AS SELECT s.account_id, s.owner, s.xmin::text AS written_by FROM crm_internal.account_settled AS s;
UPDATE crm.account SET name = name || '';
SELECT count(*) AS moved FROM crm_internal.account_owner_moved;
SELECT count(*) AS rows_rewritten
  FROM crm_internal.account_settled AS s JOIN settled_before AS b ON b.account_id = s.account_id AND b.owner = s.owner
 WHERE b.written_by <> s.xmin::text;
DROP TABLE settled_before;
-- a rate edit settles the moved accounts too (any settling does)
UPDATE crm.account SET owner = 'regress_top_rep2' WHERE id = 4;
EXECUTE same_owner('open_amount', 3, 'regress_top_rep2');
UPDATE crm.exchange_rate SET rate = rate WHERE currency = 'CHF';
SELECT count(*) AS moved FROM crm_internal.account_owner_moved;
SELECT DISTINCT account_owner FROM crm_internal.account_settled WHERE account_id = 4;
EXECUTE same_owner('open_amount', 3, 'regress_top_rep2');
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- Row-level security: each role gets its own figures, the view's.
SET ROLE regress_top_rep1;
SELECT account_id, name, open_amount, won_amount FROM crm.top_accounts('open_amount', 10);
EXECUTE same('open_amount', 10);
EXECUTE same('won_amount', 10);
EXECUTE same_owner('open_amount', 2, 'regress_top_rep2');
EXECUTE same_owner('won_amount', 2, 'regress_top_rep1');
SET ROLE regress_top_rep2;
SELECT account_id, name, open_amount, won_amount FROM crm.top_accounts('won_amount', 10);
EXECUTE same('open_amount', 10);
EXECUTE same('won_amount', 10);
-- the manager sees rep1's figures and their own (a team: summed per account)
SET ROLE regress_top_boss;
EXECUTE same('open_amount', 10);
EXECUTE same('won_amount', 10);
EXECUTE same_owner('open_amount', 2, 'regress_top_rep2');
SET ROLE regress_top_analyst;
EXECUTE same('open_amount', 10);
EXECUTE same('won_amount', 10);
RESET ROLE;
-- pending writes of another rep: rep1's figures do not change
SET ROLE regress_top_rep2;
UPDATE crm.opportunity SET amount = amount + 1 WHERE name = 'a2';
SET ROLE regress_top_rep1;
EXECUTE same('open_amount', 10);
RESET ROLE;

-- crm.account_rollup reads the same settled figures: an account without
-- pending writes from its settled rows (the caller's owner key, or a
-- manager's team summed), a pending one (uncompacted stripes the caller
-- sees, an owner changed, a missing rate) from its groups.  The check, for
-- the current role and one owner's accounts (owner = name: the path of
-- account_owner_idx) or all: the view's rows equal, column by column and
-- as text (scales too), the rows it gives when every account is pending
-- (recorded as moved in a subtransaction, rolled back): computed from the
-- groups, as before settling.
CREATE FUNCTION regress_all_pending() RETURNS void LANGUAGE sql SECURITY DEFINER
    AS 'INSERT INTO crm_internal.account_owner_moved (account_id) SELECT id FROM crm.account';
CREATE FUNCTION rollup_text(owner_name text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    IF owner_name IS NULL THEN
        RETURN (SELECT string_agg(r::text, ' ' ORDER BY r.account_id) FROM crm.account_rollup AS r);
    END IF;
    RETURN (SELECT string_agg(r::text, ' ' ORDER BY r.account_id) FROM crm.account_rollup AS r WHERE r.owner = owner_name);
END
$$;
CREATE FUNCTION rollup_exact(owner_name text DEFAULT NULL) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    settled text := rollup_text(owner_name);
    live text;
BEGIN
    BEGIN
        PERFORM regress_all_pending();
        live := rollup_text(owner_name);
        RAISE EXCEPTION 'undo';
    EXCEPTION WHEN raise_exception THEN NULL;
    END;
    RETURN CASE WHEN settled IS NOT DISTINCT FROM live THEN 'exact' ELSE 'settled: ' || settled || ' live: ' || live END;
END
$$;
-- every role, all accounts and each owner's
CREATE FUNCTION rollup_exact_for_all() RETURNS TABLE (who text, all_accounts text, rep1s text, rep2s text)
    LANGUAGE plpgsql AS $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['postgres', 'regress_top_rep1', 'regress_top_rep2', 'regress_top_boss', 'regress_top_analyst'] LOOP
        EXECUTE format('SET LOCAL ROLE %I', CASE r WHEN 'postgres' THEN current_user ELSE r END);
        who := r;
        all_accounts := rollup_exact();
        rep1s := rollup_exact('regress_top_rep1');
        rep2s := rollup_exact('regress_top_rep2');
        RETURN NEXT;
    END LOOP;
    RESET ROLE;
END
$$;
-- (rep2's write on account 1 is pending: it is computed from its groups)
SELECT DISTINCT account_id FROM crm_internal.account_pending;
SELECT account_id, name, owner, open_opportunities, open_amount, won_opportunities, won_amount,
       currency, open_amount_in_currency, won_amount_in_currency
  FROM crm.account_rollup WHERE owner = 'regress_top_rep1' ORDER BY account_id;
SELECT * FROM rollup_exact_for_all();
-- compacted: every account from its settled rows
SELECT crm.compact_aggregates() >= 0 AS compacted;
SELECT count(*) AS pending FROM crm_internal.account_pending;
SELECT account_id, name, owner, open_opportunities, open_amount, won_opportunities, won_amount,
       currency, open_amount_in_currency, won_amount_in_currency
  FROM crm.account_rollup WHERE owner = 'regress_top_rep1' ORDER BY account_id;
SELECT * FROM rollup_exact_for_all();
-- a rep sees one owner's accounts as row-level security lets it: rep2
-- sees of rep1's accounts only account 1 (its deal a2 shares it), with its
-- own figures; rep1 sees none of rep2's accounts (no deal of its on them)
SET ROLE regress_top_rep2;
SELECT account_id, owner, open_opportunities, open_amount, won_amount, currency
  FROM crm.account_rollup WHERE owner = 'regress_top_rep1' ORDER BY account_id;
SET ROLE regress_top_rep1;
SELECT count(*) AS rep2s_accounts_seen FROM crm.account_rollup WHERE owner = 'regress_top_rep2';
RESET ROLE;
-- a rate edit: the accounts it changes are settled again at once (account 1,
-- a2 in February 2027; account 3, c1 without a close date)
SELECT rate AS eur_rate FROM crm.exchange_rate WHERE currency = 'EUR' AND valid_from = '2026-01-01' \gset
UPDATE crm.exchange_rate SET rate = 1.20 WHERE currency = 'EUR' AND valid_from = '2026-01-01';
SELECT account_id, open_amount, won_amount FROM crm.account_rollup WHERE owner = 'regress_top_rep1' ORDER BY account_id;
SELECT * FROM rollup_exact_for_all();
-- a stage flag change: only for a stage without deals; a deal moved into
-- the stage is pending until a compaction settles it as won; the flags of
-- a stage with deals stay (ZC111)
INSERT INTO crm.opportunity_stage (name, sort_order, probability) VALUES ('Signed', 99, 100);
UPDATE crm.opportunity_stage SET is_closed = true, is_won = true, forecast_category = 'Closed' WHERE name = 'Signed';
UPDATE crm.opportunity SET stage = 'Signed' WHERE name = 'b1';
SELECT account_id, open_opportunities, won_opportunities, won_amount FROM crm.account_rollup WHERE account_id = 2;
SELECT * FROM rollup_exact_for_all();
UPDATE crm.opportunity_stage SET is_won = false WHERE name = 'Signed';
SELECT crm.compact_aggregates() >= 0 AS compacted;
SELECT account_id, open_opportunities, won_opportunities, won_amount FROM crm.account_rollup WHERE account_id = 2;
SELECT * FROM rollup_exact_for_all();
-- an owner change: account 2 moves to rep2 (pending until the next
-- settling); one owner's accounts follow at once, and rep1 still sees it
-- (its deals share it), under its new owner, with rep1's figures
UPDATE crm.account SET owner = 'regress_top_rep2' WHERE id = 2;
SELECT account_id, owner, open_amount, won_amount FROM crm.account_rollup WHERE owner = 'regress_top_rep2' ORDER BY account_id;
SET ROLE regress_top_rep1;
SELECT account_id, owner, open_amount, won_amount FROM crm.account_rollup WHERE owner = 'regress_top_rep2' ORDER BY account_id;
RESET ROLE;
SELECT * FROM rollup_exact_for_all();
SELECT crm.compact_aggregates() >= 0 AS compacted;
SELECT count(*) AS pending FROM crm_internal.account_pending;
SELECT * FROM rollup_exact_for_all();
-- a deleted account (its deals first) leaves the view; its settled rows
-- stay until the next settling, unread
BEGIN;
DELETE FROM crm.opportunity WHERE account_id = 5;
DELETE FROM crm.account WHERE id = 5;
SELECT count(*) AS account_5 FROM crm.account_rollup WHERE account_id = 5;
SELECT count(*) AS settled_rows_5 FROM crm_internal.account_settled WHERE account_id = 5;
SELECT * FROM rollup_exact_for_all();
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
ROLLBACK;
-- The accounts of a role dropped since: owner NULL, their figures from
-- their groups (the same as their settled rows); a filter on the account or
-- on owner IS NULL finds them, a filter on a role's name does not.  Their
-- last completed activity, and that of one owner's accounts, is the latest.
BEGIN;
CREATE ROLE regress_top_gone;
UPDATE crm.account SET owner = 'regress_top_gone' WHERE id = 6;
INSERT INTO crm.activity (type, subject, account_id, starts_at, status)
VALUES ('call', 'Call 6', 6, '2026-03-01 09:00+00', 'Completed'),
       ('call', 'Call 4', 4, '2026-03-01 09:00+00', 'Completed'),
       ('call', 'Later 4', 4, '2026-03-02 09:00+00', 'Planned');
SELECT crm.compact_aggregates() >= 0 AS compacted;
DROP ROLE regress_top_gone;
SELECT account_id, name, owner, open_opportunities, open_amount, won_opportunities, won_amount,
       currency, open_amount_in_currency, won_amount_in_currency, last_activity_at IS NOT NULL AS has_activity
  FROM crm.account_rollup WHERE owner IS NULL;
SELECT account_id, owner, won_amount FROM crm.account_rollup WHERE account_id = 6;
SELECT count(*) AS rep2s_with_6 FROM crm.account_rollup WHERE owner = 'regress_top_rep2' AND account_id = 6;
SELECT account_id, owner,
       last_activity_at IS NOT DISTINCT FROM (SELECT max(a.completed_at) FROM crm.activity AS a
                                               WHERE a.account_id = r.account_id) AS last_activity_ok,
       last_activity_at IS NOT NULL AS has_activity
  FROM crm.account_rollup AS r WHERE owner = 'regress_top_rep2' OR owner IS NULL ORDER BY account_id;
SET ROLE regress_top_rep2;
SELECT account_id, owner, won_amount FROM crm.account_rollup WHERE owner IS NULL;
RESET ROLE;
SELECT * FROM rollup_exact_for_all();
ROLLBACK;
-- (the euro rate as before, for what follows)
UPDATE crm.exchange_rate SET rate = :eur_rate WHERE currency = 'EUR' AND valid_from = '2026-01-01';
SELECT * FROM rollup_exact_for_all();

-- Nobody writes the settled figures but the extension (42501).
SET ROLE regress_top_analyst;
UPDATE crm_internal.account_settled SET open_amount = 10 ^ 9;
RESET ROLE;
CREATE ROLE regress_top_admin IN ROLE crm_admin;
SET ROLE regress_top_admin;
INSERT INTO crm_internal.account_settled (account_id, owner, open_opportunities, open_amount, won_opportunities, won_amount)
VALUES (4, 0, 1, 10 ^ 9, 0, 0);
DELETE FROM crm_internal.account_settled;
SELECT crm_internal.account_settle(NULL);
RESET ROLE;
DROP ROLE regress_top_admin;

-- A settled row that is wrong is reported by crm.verify_aggregates() and
-- made right by crm.rebuild_aggregates().
UPDATE crm_internal.account_settled SET open_amount = open_amount + 1 WHERE account_id = 4 AND owner::oid = 0;
SELECT aggregate, group_key ->> 'account_id' AS account, measure, kept - actual AS off
  FROM crm.verify_aggregates() WHERE aggregate = 'account_settled';
SELECT crm.rebuild_aggregates() > 0 AS rebuilt;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
EXECUTE same('open_amount', 10);
-- The same for the deals' one currency and their amount in it, which
-- crm.account_rollup reads from the settled row.
UPDATE crm_internal.account_settled SET currency = 'XXX', open_amount_in_currency = COALESCE(open_amount_in_currency, 0) + 1
 WHERE account_id = 4 AND owner::oid = 0;
SELECT measure FROM crm.verify_aggregates() WHERE aggregate = 'account_settled' ORDER BY measure;
SELECT crm.rebuild_aggregates() > 0 AS rebuilt;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- A prepared transaction holding a stripe row: the compaction skips that
-- row (its account stays pending), the session that prepared it writes to
-- another stripe of its own, nobody waits, and the top accounts stay exact
-- before and after it commits.
SET statement_timeout = '5s';
UPDATE crm.opportunity SET amount = amount + 1 WHERE name = 'c1';
BEGIN;
UPDATE crm.opportunity SET amount = amount + 100000 WHERE name = 'c1';
PREPARE TRANSACTION 'top_accounts_1';
INSERT INTO crm.opportunity (name, account_id, amount, close_date, stage, owner, currency)
VALUES ('c3', 3, 10, NULL, 'Proposal', 'regress_top_rep1', 'EUR');
SELECT crm.compact_aggregates() > 0 AS compacted;
SELECT count(*) > 0 AS account_3_pending FROM crm_internal.account_aggregate WHERE stripe <> 0 AND account_id = 3;
SELECT account_id, open_opportunities, open_amount FROM crm.top_accounts('open_amount', 1);
EXECUTE same('open_amount', 3);
COMMIT PREPARED 'top_accounts_1';
SELECT account_id, open_opportunities, open_amount FROM crm.top_accounts('open_amount', 1);
EXECUTE same('open_amount', 3);
SELECT crm.compact_aggregates() > 0 AS compacted;
SELECT count(*) AS pending_rows FROM crm_internal.account_aggregate WHERE stripe <> 0;
EXECUTE same('open_amount', 3);
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
RESET statement_timeout;

-- TRUNCATE empties the settled figures with the aggregates.
TRUNCATE crm.opportunity CASCADE;
SELECT count(*) AS settled_rows FROM crm_internal.account_settled;
SELECT count(*) AS accounts FROM crm.top_accounts('open_amount', 10);

-- Bad arguments: another measure or a negative n (23514), NULL (23502).
SELECT * FROM crm.top_accounts('amount', 10);
SELECT * FROM crm.top_accounts(NULL, 10);
SELECT * FROM crm.top_accounts('open_amount', -1);

DEALLOCATE same;
DEALLOCATE same_owner;
DROP ROLE regress_top_rep1, regress_top_rep2, regress_top_boss, regress_top_analyst;
