--------------------------------------------------------------------------
-- crm.top_accounts(by, n): the top N accounts by open or won amount from
-- the settled account figures (see 88_aggregates_top_accounts.sql)
--------------------------------------------------------------------------

-- The arguments of crm.top_accounts(), checked by casting to these domains
-- (no role may execute a function of crm_internal, and a SQL function
-- cannot raise): 23514 for another measure or a negative number, 23502 for
-- NULL.
CREATE DOMAIN crm_internal.top_accounts_by AS text NOT NULL
    CONSTRAINT top_accounts_by_measure CHECK (VALUE OPERATOR(pg_catalog.=) ANY (ARRAY['open_amount', 'won_amount']));
COMMENT ON DOMAIN crm_internal.top_accounts_by IS 'What crm.top_accounts() orders by: open_amount or won_amount';
CREATE DOMAIN crm_internal.top_accounts_count AS integer NOT NULL
    CONSTRAINT top_accounts_count_not_negative CHECK (VALUE OPERATOR(pg_catalog.>=) 0);
COMMENT ON DOMAIN crm_internal.top_accounts_count IS 'How many accounts crm.top_accounts() returns at most: 0 or more';

-- The top N accounts by open or won amount, as crm.account_rollup shows
-- them to the caller: SELECT * FROM crm.account_rollup WHERE <by> > 0
-- ORDER BY <by> DESC, account_id LIMIT n, without reading every account;
-- with owner, among the accounts that role owns (the account's owner, as
-- the view's owner column): the same walks, of that owner's settled rows
-- (account_settled_account_owner_open_idx / _won_idx: account_owner is
-- the account's owner, but for the accounts in account_owner_moved, which
-- are pending), and that owner's pending accounts;
-- a manager's team sum reads all that owner's accounts (account_owner_idx).
-- A SQL-standard body: its tables were resolved when it was made, so the
-- caller needs no access to schema crm_internal, only the SELECT privilege
-- that row-level security then filters, as in crm.account_rollup.
-- (jit off: the planner prices the walks it will skip, a manager's with
-- the row-level security of every account, high enough to compile the plan
-- on every call -- 250 ms for a query that runs in a few)
CREATE FUNCTION crm.top_accounts(by text, n integer, owner text DEFAULT NULL) RETURNS SETOF crm.account_rollup
    LANGUAGE sql
    STABLE
    SET search_path = pg_catalog, pg_temp
    SET jit = off
BEGIN ATOMIC
    WITH
    -- Whose settled rows are the caller's figures (row-level security
    -- decides, as in crm.account_rollup): the all-owners rows (owner 0) are
    -- visible exactly to those who see every group (admins, analysts); a
    -- rep's are their own (a team of one); NULL: a manager's team, summed.
    k AS (
        -- (the first all-owners row in the order of account_settled_open_idx)
        SELECT CASE WHEN (SELECT s.owner FROM crm_internal.account_settled AS s
                           WHERE s.owner OPERATOR(pg_catalog.=) 0::pg_catalog.oid::pg_catalog.regrole
                           ORDER BY s.owner, pg_catalog.round(s.open_amount, 2) DESC, s.account_id
                           LIMIT 1) IS NOT NULL
                    THEN 0::pg_catalog.oid::pg_catalog.regrole
                    WHEN (SELECT pg_catalog.count(*) FROM crm.team_roles() AS t) OPERATOR(pg_catalog.=) 1
                    THEN (SELECT pg_catalog.min(t.t) FROM crm.team_roles() AS t (t))::pg_catalog.regrole
               END AS key),
    -- The role named by owner (none: no account is that owner's)
    o AS (
        SELECT r.oid FROM pg_catalog.pg_roles AS r WHERE r.rolname OPERATOR(pg_catalog.=) top_accounts.owner),
    -- Pending: the accounts with stripes not compacted yet (those the caller
    -- sees: account_aggregate_pending_idx), those whose owner changed since
    -- they were settled, and settled rows without a rate.
    pending AS (
        SELECT ARRAY(SELECT a.account_id FROM crm_internal.account_aggregate AS a
                      WHERE a.stripe OPERATOR(pg_catalog.<>) 0
                     UNION
                     SELECT m.account_id FROM crm_internal.account_owner_moved AS m
                     UNION
                     SELECT s.account_id FROM crm_internal.account_settled AS s
                      WHERE (s.open_amount IS NULL OR s.won_amount IS NULL)
                        AND (s.owner OPERATOR(pg_catalog.=) (SELECT k.key FROM k)
                             OR (SELECT k.key FROM k) IS NULL
                                AND s.owner OPERATOR(pg_catalog.<>) 0::pg_catalog.oid::pg_catalog.regrole)) AS ids),
    -- The best n settled accounts that are not pending and that the caller
    -- sees, in index order: their settled figures are exact.  One walk per
    -- measure (each its own index), one for a team; two of the three do
    -- nothing (their condition is a one-time filter).
    candidates AS (
        SELECT ARRAY(
        (SELECT s.account_id FROM crm_internal.account_settled AS s
          WHERE by OPERATOR(pg_catalog.=) 'open_amount' AND top_accounts.owner IS NULL
            AND s.owner OPERATOR(pg_catalog.=) (SELECT k.key FROM k)
            AND pg_catalog.round(s.open_amount, 2) OPERATOR(pg_catalog.>) 0
            AND NOT s.account_id OPERATOR(pg_catalog.=) ANY ((SELECT p.ids FROM pending AS p)::bigint[])
            AND EXISTS (SELECT 1 FROM crm.account AS ac WHERE ac.id OPERATOR(pg_catalog.=) s.account_id)
          ORDER BY s.owner, pg_catalog.round(s.open_amount, 2) DESC, s.account_id
          LIMIT GREATEST(n, 0))
        UNION ALL
        (SELECT s.account_id FROM crm_internal.account_settled AS s
          WHERE by OPERATOR(pg_catalog.=) 'won_amount' AND top_accounts.owner IS NULL
            AND s.owner OPERATOR(pg_catalog.=) (SELECT k.key FROM k)
            AND pg_catalog.round(s.won_amount, 2) OPERATOR(pg_catalog.>) 0
            AND NOT s.account_id OPERATOR(pg_catalog.=) ANY ((SELECT p.ids FROM pending AS p)::bigint[])
            AND EXISTS (SELECT 1 FROM crm.account AS ac WHERE ac.id OPERATOR(pg_catalog.=) s.account_id)
          ORDER BY s.owner, pg_catalog.round(s.won_amount, 2) DESC, s.account_id
          LIMIT GREATEST(n, 0))
        UNION ALL
        -- a manager's team: the sum over the team's owners, per account
        -- (O(the team's settled rows))
        (SELECT s.account_id FROM crm_internal.account_settled AS s
          WHERE (SELECT k.key FROM k) IS NULL AND top_accounts.owner IS NULL
            AND s.owner OPERATOR(pg_catalog.<>) 0::pg_catalog.oid::pg_catalog.regrole
            AND NOT s.account_id OPERATOR(pg_catalog.=) ANY ((SELECT p.ids FROM pending AS p)::bigint[])
            AND EXISTS (SELECT 1 FROM crm.account AS ac WHERE ac.id OPERATOR(pg_catalog.=) s.account_id)
          GROUP BY s.account_id
         HAVING pg_catalog.round(pg_catalog.sum(CASE WHEN by OPERATOR(pg_catalog.=) 'open_amount'
                                                     THEN s.open_amount ELSE s.won_amount END), 2)
                OPERATOR(pg_catalog.>) 0
          ORDER BY pg_catalog.round(pg_catalog.sum(CASE WHEN by OPERATOR(pg_catalog.=) 'open_amount'
                                                       THEN s.open_amount ELSE s.won_amount END), 2) DESC,
                   s.account_id
          LIMIT GREATEST(n, 0))
        UNION ALL
        -- the pending accounts
        SELECT pg_catalog.unnest(p.ids) FROM pending AS p WHERE top_accounts.owner IS NULL
        UNION ALL
        -- one owner's accounts: the best n settled ones of that owner (the
        -- same walks, on the indexes that put account_owner second) ...
        (SELECT s.account_id FROM crm_internal.account_settled AS s
          WHERE by OPERATOR(pg_catalog.=) 'open_amount' AND top_accounts.owner IS NOT NULL
            AND s.owner OPERATOR(pg_catalog.=) (SELECT k.key FROM k)
            AND s.account_owner::pg_catalog.oid OPERATOR(pg_catalog.=) (SELECT o.oid FROM o)
            AND pg_catalog.round(s.open_amount, 2) OPERATOR(pg_catalog.>) 0
            AND NOT s.account_id OPERATOR(pg_catalog.=) ANY ((SELECT p.ids FROM pending AS p)::bigint[])
            AND EXISTS (SELECT 1 FROM crm.account AS ac WHERE ac.id OPERATOR(pg_catalog.=) s.account_id)
          ORDER BY s.owner, s.account_owner, pg_catalog.round(s.open_amount, 2) DESC, s.account_id
          LIMIT GREATEST(n, 0))
        UNION ALL
        (SELECT s.account_id FROM crm_internal.account_settled AS s
          WHERE by OPERATOR(pg_catalog.=) 'won_amount' AND top_accounts.owner IS NOT NULL
            AND s.owner OPERATOR(pg_catalog.=) (SELECT k.key FROM k)
            AND s.account_owner::pg_catalog.oid OPERATOR(pg_catalog.=) (SELECT o.oid FROM o)
            AND pg_catalog.round(s.won_amount, 2) OPERATOR(pg_catalog.>) 0
            AND NOT s.account_id OPERATOR(pg_catalog.=) ANY ((SELECT p.ids FROM pending AS p)::bigint[])
            AND EXISTS (SELECT 1 FROM crm.account AS ac WHERE ac.id OPERATOR(pg_catalog.=) s.account_id)
          ORDER BY s.owner, s.account_owner, pg_catalog.round(s.won_amount, 2) DESC, s.account_id
          LIMIT GREATEST(n, 0))
        UNION ALL
        -- ... and that owner's pending accounts
        SELECT ac.id FROM crm.account AS ac
         WHERE top_accounts.owner IS NOT NULL AND (SELECT k.key FROM k) IS NOT NULL
           AND ac.id OPERATOR(pg_catalog.=) ANY ((SELECT p.ids FROM pending AS p)::bigint[])
           AND ac.owner::pg_catalog.oid OPERATOR(pg_catalog.=) (SELECT o.oid FROM o)
        UNION ALL
        -- a manager's team (no one key): all that owner's accounts
        SELECT ac.id FROM crm.account AS ac
         WHERE top_accounts.owner IS NOT NULL AND (SELECT k.key FROM k) IS NULL
           AND ac.owner::pg_catalog.oid OPERATOR(pg_catalog.=) (SELECT o.oid FROM o)) AS ids)
    -- Their exact figures, from the view, one account at a time (OFFSET 0
    -- keeps the subquery apart, so that its account_id = c.account_id
    -- reaches the view's grouped subquery: O(the account's groups); a join
    -- or = ANY would group every account first); the best n of them.
    SELECT r.*
      FROM pg_catalog.unnest((SELECT c.ids FROM candidates AS c)) AS c (account_id)
     CROSS JOIN LATERAL (SELECT v.* FROM crm.account_rollup AS v
                          WHERE v.account_id OPERATOR(pg_catalog.=) c.account_id OFFSET 0) AS r
     WHERE CASE WHEN by OPERATOR(pg_catalog.=) 'open_amount' THEN r.open_amount ELSE r.won_amount END
           OPERATOR(pg_catalog.>) 0
       AND (top_accounts.owner IS NULL OR r.owner OPERATOR(pg_catalog.=) top_accounts.owner)
     ORDER BY CASE WHEN by OPERATOR(pg_catalog.=) 'open_amount' THEN r.open_amount ELSE r.won_amount END DESC,
              r.account_id
     LIMIT CASE WHEN by::crm_internal.top_accounts_by IS NOT NULL THEN n::crm_internal.top_accounts_count END;
END;
COMMENT ON FUNCTION crm.top_accounts(text, integer, text) IS 'The top n accounts by open_amount or won_amount (by), as crm.account_rollup shows them to the caller (row-level security applies): the same rows as SELECT * FROM crm.account_rollup WHERE <by> > 0 [AND owner = <owner>] ORDER BY <by> DESC, account_id LIMIT n, exact at every committed state, in time O(n + accounts written since the last crm.compact_aggregates()) for admins, analysts and reps (a manager with a team: O(the team''s accounts)); with owner (a role name), among the accounts it owns, O(n + that owner''s pending accounts) the same way (a manager with a team: O(that owner''s accounts and their groups)). 23514 for another by or a negative n, 23502 for NULL; ZC120 when a rate is missing for an account it computes';
