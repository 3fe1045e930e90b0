--------------------------------------------------------------------------
-- The top accounts by open or won amount, in time that grows with N and
-- with the writes since the last compaction, not with the data
--
-- crm.account_rollup converts every group of crm_internal.account_aggregate
-- to the corporate currency at read time; ordering all accounts by that
-- amount reads every group (seconds at a million deals).  An index on a
-- per-account total kept by the deal triggers would make the account's row
-- hot (two writers of one account wait for each other; a prepared
-- transaction holding it blocks every writer).  Instead:
--
-- crm_internal.account_settled holds, per account, the totals of its
-- compacted groups only (stripe 0 of the aggregate), converted at the
-- current rates: one row per (account, opportunity owner), for what a rep
-- or a manager sees, and one with owner 0 (all owners), for admins and
-- analysts.  Nobody but the extension writes it, and only in
-- crm_internal.account_settle(), called by crm.compact_aggregates() (the
-- accounts whose stripes it folded), crm.rebuild_aggregates() (all), an edit
-- of the exchange rates (the accounts with a compacted group whose rate the
-- edit changes: see account_settle_rates() below) or of the corporate
-- currency (all), and emptied by a TRUNCATE of crm.opportunity.  Its rows
-- name the account's owner (account_owner, for one owner's top accounts):
-- a change of owner only records the account in
-- crm_internal.account_owner_moved, which makes it pending until the next
-- settling (which settles it, with its new owner, and drops the record).  The deal triggers never
-- touch it: writers stay on their own stripes.
--
-- The invariant: in every committed state, the settled rows of an account
-- without uncompacted stripe rows and not in account_owner_moved are its
-- figures: computed from its stripe-0 groups (all it has) at the current
-- rates and stage flags, with its current owner
-- (crm.verify_aggregates() checks it, as aggregate account_settled).  (An
-- account with stripes may differ -- a stage renamed since the last
-- compaction leaves its stripe-0 group under the old name, its stripes
-- moving it -- but is computed from its groups instead.)  Stage flags
-- change only for stages without deals (ZC111), and a rename moves every
-- deal of the stage, so both leave no settled account's figures wrong.
-- What protects it: stripe 0 is written only by a compaction or a rebuild, each
-- of which settles the accounts it changed in the same transaction; rates
-- and the corporate currency change only in transactions that settle again
-- every account the change can move; an owner changes only in a
-- transaction that records the account in account_owner_moved, and a
-- settling deletes those records first (DELETE ... RETURNING: the records
-- of committed changes) and settles those accounts in later statements,
-- which see those changes;
-- and all of these take the compaction lock first
-- (crm_internal.aggregates_compaction_lock(), held to the end of the
-- transaction), so no two of them interleave: the later one's statements
-- (READ COMMITTED) see the earlier one's commit.  (In REPEATABLE READ or
-- SERIALIZABLE the later one fails with 40001 instead, on the one row of
-- crm_internal.account_settle_epoch that every settling updates.)
--
-- So an account with no uncompacted stripe row (a "pending" account) has
-- its exact figures in its settled row.  crm.top_accounts() takes the
-- pending accounts the caller sees (the partial index
-- account_aggregate_pending_idx: as many as accounts written since the last
-- compaction), walks the settled index in amount order skipping them until
-- it has N accounts the caller sees, computes the exact figures of those N
-- and of the pending ones from crm.account_rollup (O(their groups)), and
-- keeps the best N: exact at every committed state, O(N + pending).
-- Run crm.compact_aggregates() every few minutes (pg_cron) to keep the
-- pending set small.
--
-- crm.account_rollup (at the end of this file) reads the same settled
-- rows: an account that is not pending for the caller takes its settled
-- figures (the settled rows carry the deals' currency and the amounts in
-- it too), a pending one is computed from its groups
-- (crm_internal.account_rollup_live, 88_aggregates.sql), so one owner's
-- accounts, or all of them, cost one settled row per account, not a rate
-- lookup per group.
--------------------------------------------------------------------------

-- Pending accounts: those with stripe rows a compaction has not folded yet.
-- The indexed columns never change when a writer adds to its stripe row, so
-- those updates stay HOT; an entry is added only when a stripe row is made.
CREATE INDEX account_aggregate_pending_idx ON crm_internal.account_aggregate (account_id)
    WHERE stripe OPERATOR(pg_catalog.<>) 0;
COMMENT ON INDEX crm_internal.account_aggregate_pending_idx IS 'The accounts with uncompacted stripe rows (stripe <> 0): the pending accounts crm.top_accounts() computes from their groups rather than from crm_internal.account_settled';

-- The accounts' figures from the compacted groups (stripe 0 only), one row
-- per (account, opportunity owner) and one per account for all owners
-- (owner 0): what crm_internal.account_settled must hold.  Amounts are
-- converted per group, at the rate crm.exchange_rate_on() gives (the same
-- lookup, without its error: NULL when a group that has deals has no rate),
-- and kept unrounded so that a manager's sum over the team's owners rounds
-- once, as crm.account_rollup does.
CREATE VIEW crm_internal.account_settled_groups WITH (security_invoker = true) AS
    SELECT a.account_id, a.owner, s.is_closed, s.is_won, a.opportunities,
           a.amount OPERATOR(pg_catalog.*)
               (CASE WHEN a.currency OPERATOR(pg_catalog.=) (SELECT t.corporate_currency FROM crm.settings AS t)
                     THEN 1::pg_catalog.numeric
                     ELSE (SELECT r.rate FROM crm.exchange_rate AS r
                            WHERE r.currency OPERATOR(pg_catalog.=) a.currency
                              AND r.valid_from OPERATOR(pg_catalog.<=) a.close_month
                            ORDER BY r.valid_from DESC LIMIT 1) END) AS converted,
           a.currency, a.amount
      FROM crm_internal.account_aggregate AS a
      JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) a.stage
     WHERE a.stripe OPERATOR(pg_catalog.=) 0 AND (s.is_won OR NOT s.is_closed);
COMMENT ON VIEW crm_internal.account_settled_groups IS 'The compacted groups (stripe 0) of crm_internal.account_aggregate in open or won stages, each amount converted to the corporate currency at the rate of its close month (NULL: no rate); what crm_internal.account_settled_actual adds up';
COMMENT ON COLUMN crm_internal.account_settled_groups.account_id IS 'The account';
COMMENT ON COLUMN crm_internal.account_settled_groups.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm_internal.account_settled_groups.is_closed IS 'Whether the group''s stage is closed (then it is won)';
COMMENT ON COLUMN crm_internal.account_settled_groups.is_won IS 'Whether the group''s stage is won';
COMMENT ON COLUMN crm_internal.account_settled_groups.opportunities IS 'Opportunities in the group';
COMMENT ON COLUMN crm_internal.account_settled_groups.converted IS 'Their amount in the corporate currency, unrounded; NULL when the group''s currency has no rate for its close month';
COMMENT ON COLUMN crm_internal.account_settled_groups.currency IS 'The group''s currency (the deals'' own)';
COMMENT ON COLUMN crm_internal.account_settled_groups.amount IS 'Their amount in that currency';

CREATE VIEW crm_internal.account_settled_actual WITH (security_invoker = true) AS
    SELECT g.account_id, g.owner,
           COALESCE(pg_catalog.sum(g.opportunities) FILTER (WHERE NOT g.is_closed), 0)::bigint AS open_opportunities,
           CASE WHEN pg_catalog.bool_or(g.converted IS NULL AND g.opportunities OPERATOR(pg_catalog.<>) 0) FILTER (WHERE NOT g.is_closed)
                THEN NULL ELSE COALESCE(pg_catalog.sum(g.converted) FILTER (WHERE NOT g.is_closed), 0) END AS open_amount,
           COALESCE(pg_catalog.sum(g.opportunities) FILTER (WHERE g.is_won), 0)::bigint AS won_opportunities,
           CASE WHEN pg_catalog.bool_or(g.converted IS NULL AND g.opportunities OPERATOR(pg_catalog.<>) 0) FILTER (WHERE g.is_won)
                THEN NULL ELSE COALESCE(pg_catalog.sum(g.converted) FILTER (WHERE g.is_won), 0) END AS won_amount,
           ac.owner AS account_owner,
           -- (as crm.account_rollup: one currency, or NULL when mixed;
           -- groups that add up to no deal do not count: a compaction
           -- settles before it deletes them)
           CASE WHEN pg_catalog.min(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0)
                THEN pg_catalog.min(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0) END AS currency,
           CASE WHEN pg_catalog.min(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0)
                THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE NOT g.is_closed), 0) END AS open_amount_in_currency,
           CASE WHEN pg_catalog.min(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0)
                THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE g.is_won), 0) END AS won_amount_in_currency
      FROM crm_internal.account_settled_groups AS g
      LEFT JOIN crm.account AS ac ON ac.id OPERATOR(pg_catalog.=) g.account_id
     GROUP BY g.account_id, g.owner, ac.owner
    HAVING pg_catalog.sum(g.opportunities) OPERATOR(pg_catalog.<>) 0
    UNION ALL
    SELECT g.account_id, 0::pg_catalog.oid::pg_catalog.regrole,
           COALESCE(pg_catalog.sum(g.opportunities) FILTER (WHERE NOT g.is_closed), 0)::bigint,
           CASE WHEN pg_catalog.bool_or(g.converted IS NULL AND g.opportunities OPERATOR(pg_catalog.<>) 0) FILTER (WHERE NOT g.is_closed)
                THEN NULL ELSE COALESCE(pg_catalog.sum(g.converted) FILTER (WHERE NOT g.is_closed), 0) END,
           COALESCE(pg_catalog.sum(g.opportunities) FILTER (WHERE g.is_won), 0)::bigint,
           CASE WHEN pg_catalog.bool_or(g.converted IS NULL AND g.opportunities OPERATOR(pg_catalog.<>) 0) FILTER (WHERE g.is_won)
                THEN NULL ELSE COALESCE(pg_catalog.sum(g.converted) FILTER (WHERE g.is_won), 0) END,
           ac.owner,
           CASE WHEN pg_catalog.min(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0)
                THEN pg_catalog.min(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0) END,
           CASE WHEN pg_catalog.min(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0)
                THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE NOT g.is_closed), 0) END,
           CASE WHEN pg_catalog.min(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency) FILTER (WHERE g.opportunities OPERATOR(pg_catalog.<>) 0)
                THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE g.is_won), 0) END
      FROM crm_internal.account_settled_groups AS g
      LEFT JOIN crm.account AS ac ON ac.id OPERATOR(pg_catalog.=) g.account_id
     GROUP BY g.account_id, ac.owner
    HAVING pg_catalog.sum(g.opportunities) OPERATOR(pg_catalog.<>) 0;
COMMENT ON VIEW crm_internal.account_settled_actual IS 'What crm_internal.account_settled must hold, computed now from the compacted groups (stripe 0) of crm_internal.account_aggregate at the current rates: per account and opportunity owner, and per account for all owners (owner 0)';
COMMENT ON COLUMN crm_internal.account_settled_actual.account_id IS 'The account';
COMMENT ON COLUMN crm_internal.account_settled_actual.owner IS 'Opportunity owner; 0 (shown as -): all owners';
COMMENT ON COLUMN crm_internal.account_settled_actual.open_opportunities IS 'Opportunities in a stage that is not closed';
COMMENT ON COLUMN crm_internal.account_settled_actual.open_amount IS 'Their amount in the corporate currency, unrounded; NULL when one of their groups has no rate';
COMMENT ON COLUMN crm_internal.account_settled_actual.won_opportunities IS 'Opportunities won';
COMMENT ON COLUMN crm_internal.account_settled_actual.won_amount IS 'Their amount in the corporate currency, unrounded; NULL when one of their groups has no rate';
COMMENT ON COLUMN crm_internal.account_settled_actual.account_owner IS 'The account''s owner now (crm.account.owner; NULL: no such account)';
COMMENT ON COLUMN crm_internal.account_settled_actual.currency IS 'Currency of these open and won deals when they all share one; NULL when mixed';
COMMENT ON COLUMN crm_internal.account_settled_actual.open_amount_in_currency IS 'Amount of the open deals in that currency (NULL when mixed)';
COMMENT ON COLUMN crm_internal.account_settled_actual.won_amount_in_currency IS 'Amount of the won deals in that currency (NULL when mixed)';

CREATE TABLE crm_internal.account_settled (
    account_id          bigint NOT NULL,
    owner               regrole NOT NULL,
    open_opportunities  bigint NOT NULL,
    open_amount         numeric,
    won_opportunities   bigint NOT NULL,
    won_amount          numeric,
    PRIMARY KEY (account_id, owner),
    account_owner       regrole,
    currency            text,
    open_amount_in_currency numeric,
    won_amount_in_currency  numeric
);
COMMENT ON TABLE crm_internal.account_settled IS 'Per account, the figures of its compacted aggregate groups (stripe 0 of crm_internal.account_aggregate) in the corporate currency: per opportunity owner, and for all owners (owner 0). Written only by crm.compact_aggregates(), crm.rebuild_aggregates() and edits of the exchange rates (the accounts they affect) or of the corporate currency (never by the deal triggers: no hot rows); exact for an account without uncompacted stripe rows. crm.top_accounts() walks its indexes';
COMMENT ON COLUMN crm_internal.account_settled.account_id IS 'The account';
COMMENT ON COLUMN crm_internal.account_settled.owner IS 'Opportunity owner whose deals these are; 0 (shown as -): all owners, read by admins and analysts';
COMMENT ON COLUMN crm_internal.account_settled.open_opportunities IS 'Compacted opportunities in a stage that is not closed';
COMMENT ON COLUMN crm_internal.account_settled.open_amount IS 'Their amount in the corporate currency at the current rates, unrounded; NULL when a group has no rate (crm.top_accounts() then computes the account, raising ZC120 as crm.account_rollup does)';
COMMENT ON COLUMN crm_internal.account_settled.won_opportunities IS 'Compacted opportunities won';
COMMENT ON COLUMN crm_internal.account_settled.won_amount IS 'Their amount in the corporate currency at the current rates, unrounded; NULL when a group has no rate';
COMMENT ON COLUMN crm_internal.account_settled.currency IS 'Currency of these compacted open and won deals when they all share one; NULL when mixed (crm.account_rollup shows it)';
COMMENT ON COLUMN crm_internal.account_settled.open_amount_in_currency IS 'Amount of these open deals in that currency (NULL when mixed)';
COMMENT ON COLUMN crm_internal.account_settled.won_amount_in_currency IS 'Amount of these won deals in that currency (NULL when mixed)';
COMMENT ON COLUMN crm_internal.account_settled.account_owner IS 'The account''s owner (crm.account.owner) when settled; an account whose owner changed since is in crm_internal.account_owner_moved until the next settling; crm.top_accounts(by, n, owner) walks one owner''s accounts by it';
-- the walks of crm.top_accounts(): per owner key, amount as account_rollup rounds it, then account
CREATE INDEX account_settled_open_idx ON crm_internal.account_settled
    (owner, pg_catalog.round(open_amount, 2) DESC, account_id);
COMMENT ON INDEX crm_internal.account_settled_open_idx IS 'crm.top_accounts(''open_amount'', n): accounts of one owner key in the order of their rounded open amount';
CREATE INDEX account_settled_won_idx ON crm_internal.account_settled
    (owner, pg_catalog.round(won_amount, 2) DESC, account_id);
COMMENT ON INDEX crm_internal.account_settled_won_idx IS 'crm.top_accounts(''won_amount'', n): accounts of one owner key in the order of their rounded won amount';
CREATE INDEX account_settled_unpriced_idx ON crm_internal.account_settled (account_id)
    WHERE open_amount IS NULL OR won_amount IS NULL;
-- the walks of crm.top_accounts(by, n, owner): per owner key and account owner
CREATE INDEX account_settled_account_owner_open_idx ON crm_internal.account_settled
    (owner, account_owner, pg_catalog.round(open_amount, 2) DESC, account_id);
COMMENT ON INDEX crm_internal.account_settled_account_owner_open_idx IS 'crm.top_accounts(''open_amount'', n, owner): one account owner''s accounts, for one owner key, in the order of their rounded open amount';
CREATE INDEX account_settled_account_owner_won_idx ON crm_internal.account_settled
    (owner, account_owner, pg_catalog.round(won_amount, 2) DESC, account_id);
COMMENT ON INDEX crm_internal.account_settled_account_owner_won_idx IS 'crm.top_accounts(''won_amount'', n, owner): one account owner''s accounts, for one owner key, in the order of their rounded won amount';
COMMENT ON INDEX crm_internal.account_settled_unpriced_idx IS 'Accounts with a group in a currency without a rate: crm.top_accounts() computes them (and raises ZC120) rather than trust the settled amount';

-- Every settling counts itself in one row, which only settling (under the
-- compaction lock: never two at once) writes.  In READ COMMITTED it costs
-- nothing; in REPEATABLE READ or SERIALIZABLE a settling whose snapshot was
-- taken before another one committed would compute from stale groups or
-- rates, and its update of this row fails with 40001 instead.
CREATE TABLE crm_internal.account_settle_epoch (
    settlings   bigint NOT NULL,
    one_row     boolean PRIMARY KEY DEFAULT true CONSTRAINT account_settle_epoch_one_row CHECK (one_row)
);
-- the row, but in a restore (session_replication_role = replica), whose dump
-- brings it (pg_extension_config_dump)
INSERT INTO crm_internal.account_settle_epoch (settlings)
SELECT 0 WHERE pg_catalog.current_setting('session_replication_role') OPERATOR(pg_catalog.<>) 'replica';
COMMENT ON TABLE crm_internal.account_settle_epoch IS 'How many times account figures were settled (crm_internal.account_settle()); one row, written only under the compaction lock, so that a settling under a snapshot older than the last one fails (40001) rather than write stale figures';
COMMENT ON COLUMN crm_internal.account_settle_epoch.settlings IS 'Settlings so far';
COMMENT ON COLUMN crm_internal.account_settle_epoch.one_row IS 'Always true: the table has one row';

-- The accounts whose owner changed since they were last settled: pending
-- for crm.top_accounts() (their settled account_owner may be the old one)
-- until the next settling takes them.  Written by the owner trigger below
-- (no lock: an owner change never waits for a compaction), emptied by
-- crm_internal.account_settle().  No key: two changes of one account never
-- wait for each other.
CREATE TABLE crm_internal.account_owner_moved (
    account_id  bigint NOT NULL
);
CREATE INDEX account_owner_moved_account_idx ON crm_internal.account_owner_moved (account_id);
COMMENT ON TABLE crm_internal.account_owner_moved IS 'Accounts whose owner changed since their settled rows (crm_internal.account_settled) were written: crm.top_accounts() computes them from their groups; the next settling (a compaction, a rate edit, a rebuild) settles them with their new owner and deletes these rows';
COMMENT ON COLUMN crm_internal.account_owner_moved.account_id IS 'The account (one row per change of its owner)';
COMMENT ON INDEX crm_internal.account_owner_moved_account_idx IS 'One account''s records (crm.verify_aggregates() skips those accounts)';

-- Settle the given accounts (NULL: all) and the accounts whose owner
-- changed (account_owner_moved, whose rows it deletes first): their settled
-- rows made again from crm_internal.account_settled_actual.  Callers hold
-- the compaction lock.
CREATE FUNCTION crm_internal.account_settle(accounts bigint[]) RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    moved bigint[];
BEGIN
    UPDATE crm_internal.account_settle_epoch SET settlings = settlings OPERATOR(pg_catalog.+) 1;
    -- the owner changes committed so far (the statements below see them)
    WITH d AS (DELETE FROM crm_internal.account_owner_moved RETURNING account_id)
    SELECT ARRAY(SELECT DISTINCT d.account_id FROM d) INTO moved;
    IF accounts IS NOT NULL THEN	-- (NULL, all, takes them; NULL || moved would be moved)
        accounts := accounts OPERATOR(pg_catalog.||) moved;
    END IF;
    IF accounts IS NULL THEN
        DELETE FROM crm_internal.account_settled;
        INSERT INTO crm_internal.account_settled
               (account_id, owner, open_opportunities, open_amount, won_opportunities, won_amount, account_owner,
                currency, open_amount_in_currency, won_amount_in_currency)
        SELECT x.account_id, x.owner, x.open_opportunities, x.open_amount, x.won_opportunities, x.won_amount, x.account_owner,
               x.currency, x.open_amount_in_currency, x.won_amount_in_currency
          FROM crm_internal.account_settled_actual AS x;
    ELSE
        DELETE FROM crm_internal.account_settled AS t WHERE t.account_id OPERATOR(pg_catalog.=) ANY (accounts);
        INSERT INTO crm_internal.account_settled
               (account_id, owner, open_opportunities, open_amount, won_opportunities, won_amount, account_owner,
                currency, open_amount_in_currency, won_amount_in_currency)
        SELECT x.account_id, x.owner, x.open_opportunities, x.open_amount, x.won_opportunities, x.won_amount, x.account_owner,
               x.currency, x.open_amount_in_currency, x.won_amount_in_currency
          FROM crm_internal.account_settled_actual AS x
         WHERE x.account_id OPERATOR(pg_catalog.=) ANY (accounts);
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION crm_internal.account_settle(bigint[]) FROM PUBLIC;
COMMENT ON FUNCTION crm_internal.account_settle(bigint[]) IS 'Makes the settled rows (crm_internal.account_settled) of the given accounts (NULL: all), and of the accounts in crm_internal.account_owner_moved (whose rows it deletes), again from their compacted aggregate groups at the current rates; returns the number of rows written. Called by crm.compact_aggregates(), crm.rebuild_aggregates() and the triggers on rates (the accounts an edit affects) and the corporate currency (all), which hold the compaction lock';

-- The corporate currency: the settled amounts are converted to it, so a
-- change settles every account again, in the editing transaction, after
-- taking the compaction lock (a compaction running meanwhile used the old
-- currency; this waits for it and settles after it).  O(groups), once per
-- statement: a rare admin action (and it needs a rates table without rows,
-- ZC121).  A TRUNCATE of the rates settles every account the same way.
CREATE FUNCTION crm_internal.account_settle_all() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_LEVEL OPERATOR(pg_catalog.<>) 'STATEMENT' OR TG_WHEN OPERATOR(pg_catalog.<>) 'AFTER' THEN
        RAISE EXCEPTION 'crm_internal.account_settle_all() must be fired AFTER ... FOR EACH STATEMENT'
            USING ERRCODE = 'triggered_action_exception';
    END IF;
    PERFORM crm_internal.aggregates_compaction_lock();
    IF TG_OP OPERATOR(pg_catalog.=) 'TRUNCATE' AND TG_TABLE_NAME OPERATOR(pg_catalog.=) 'opportunity' THEN
        DELETE FROM crm_internal.account_settled;	-- the aggregates were emptied too
    ELSE
        PERFORM crm_internal.account_settle(NULL);
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION crm_internal.account_settle_all() FROM PUBLIC;
COMMENT ON FUNCTION crm_internal.account_settle_all() IS 'AFTER statement trigger on the corporate currency of crm.settings and on TRUNCATE of crm.exchange_rate: settles every account again (under the compaction lock); on TRUNCATE of crm.opportunity, empties crm_internal.account_settled as the aggregates are emptied';
CREATE TRIGGER account_settle_rates_truncate AFTER TRUNCATE ON crm.exchange_rate
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.account_settle_all();
CREATE TRIGGER account_settle_corporate_currency AFTER UPDATE OF corporate_currency ON crm.settings
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.account_settle_all();
CREATE TRIGGER account_settle_truncate AFTER TRUNCATE ON crm.opportunity
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.account_settle_all();

-- An edit of the rates (INSERT, UPDATE, DELETE) settles only the accounts
-- whose converted figures it can change.  A group (currency c, close month
-- m) is converted at the rate of c with the latest valid_from <= m (m is
-- infinity without a close date: the latest rate).  If an edit changes the
-- rate a group gets, the rate row it got before or gets after is one the
-- statement deleted, inserted or updated -- a changed row (c, v) -- and m
-- lies in [v, the next valid_from of c after v in the rates as they are
-- now): a later rate still there would be chosen instead, before and after.
-- So the accounts to settle are those with a compacted group (stripe 0:
-- the settled figures are made from those only) of a changed currency in
-- one of those ranges, found through account_aggregate_rate_idx: the
-- statement costs O(the groups and accounts it affects), not O(accounts).
-- The lock and the snapshot: the compaction lock is taken first, as above,
-- and the groups are looked up in a statement after it (READ COMMITTED:
-- a new snapshot, which sees a compaction that committed meanwhile and the
-- groups it made); account_settle() is called even for no account, so that
-- its update of crm_internal.account_settle_epoch fails with 40001 under a
-- REPEATABLE READ snapshot older than another settling's commit.
CREATE INDEX account_aggregate_rate_idx ON crm_internal.account_aggregate (currency, close_month, account_id)
    WHERE stripe OPERATOR(pg_catalog.=) 0;
COMMENT ON INDEX crm_internal.account_aggregate_rate_idx IS 'The compacted groups (stripe 0) of one currency and range of close months: the accounts a rate edit settles again (crm_internal.account_settle_rates()); writers never write stripe 0, so their inserts never touch it';

CREATE FUNCTION crm_internal.account_settle_rates() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    currencies text[] := '{}';
    months date[] := '{}';
BEGIN
    IF TG_LEVEL OPERATOR(pg_catalog.<>) 'STATEMENT' OR TG_WHEN OPERATOR(pg_catalog.<>) 'AFTER'
       OR TG_OP OPERATOR(pg_catalog.=) 'TRUNCATE' THEN
        RAISE EXCEPTION 'crm_internal.account_settle_rates() must be fired AFTER INSERT, UPDATE or DELETE ... FOR EACH STATEMENT'
            USING ERRCODE = 'triggered_action_exception';
    END IF;
    -- the changed rate rows, before and after (transition tables)
    IF TG_OP OPERATOR(pg_catalog.<>) 'DELETE' THEN
        SELECT currencies OPERATOR(pg_catalog.||) COALESCE(pg_catalog.array_agg(n.currency), '{}'),
               months OPERATOR(pg_catalog.||) COALESCE(pg_catalog.array_agg(n.valid_from), '{}')
          INTO currencies, months FROM new_rates AS n;
    END IF;
    IF TG_OP OPERATOR(pg_catalog.<>) 'INSERT' THEN
        SELECT currencies OPERATOR(pg_catalog.||) COALESCE(pg_catalog.array_agg(o.currency), '{}'),
               months OPERATOR(pg_catalog.||) COALESCE(pg_catalog.array_agg(o.valid_from), '{}')
          INTO currencies, months FROM old_rates AS o;
    END IF;
    PERFORM crm_internal.aggregates_compaction_lock();
    PERFORM crm_internal.account_settle(ARRAY(
        SELECT DISTINCT a.account_id
          FROM (SELECT DISTINCT c.currency, c.valid_from
                  FROM ROWS FROM (pg_catalog.unnest(currencies), pg_catalog.unnest(months)) AS c (currency, valid_from)) AS c
         CROSS JOIN LATERAL (SELECT pg_catalog.min(r.valid_from) AS next_from FROM crm.exchange_rate AS r
                              WHERE r.currency OPERATOR(pg_catalog.=) c.currency
                                AND r.valid_from OPERATOR(pg_catalog.>) c.valid_from) AS u
          JOIN crm_internal.account_aggregate AS a
            ON a.stripe OPERATOR(pg_catalog.=) 0
           AND a.currency OPERATOR(pg_catalog.=) c.currency
           AND a.close_month OPERATOR(pg_catalog.>=) c.valid_from
           -- before the next rate (valid_from is a month's first day, close_month too); none: to infinity
           AND a.close_month OPERATOR(pg_catalog.<=)
               COALESCE(u.next_from OPERATOR(pg_catalog.-) 1, 'infinity'::pg_catalog.date)));
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION crm_internal.account_settle_rates() FROM PUBLIC;
COMMENT ON FUNCTION crm_internal.account_settle_rates() IS 'AFTER INSERT, UPDATE and DELETE statement triggers on crm.exchange_rate: settles again (under the compaction lock) only the accounts with a compacted group whose rate the statement changes (its currency, close month from the changed valid_from to the next rate), found through account_aggregate_rate_idx';
CREATE TRIGGER account_settle_rates_insert AFTER INSERT ON crm.exchange_rate
    REFERENCING NEW TABLE AS new_rates
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.account_settle_rates();
CREATE TRIGGER account_settle_rates_update AFTER UPDATE ON crm.exchange_rate
    REFERENCING OLD TABLE AS old_rates NEW TABLE AS new_rates
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.account_settle_rates();
CREATE TRIGGER account_settle_rates_delete AFTER DELETE ON crm.exchange_rate
    REFERENCING OLD TABLE AS old_rates
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.account_settle_rates();

-- An account's owner is in its settled rows (account_owner: one owner's
-- top accounts walk them), so a change of it records the account in
-- account_owner_moved (pending until the next settling), without a lock: a
-- rep reassigning an account never waits for a compaction, nor makes one
-- wait.  Updates that change no owner write nothing.
CREATE FUNCTION crm_internal.account_settle_owners() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_LEVEL OPERATOR(pg_catalog.<>) 'STATEMENT' OR TG_WHEN OPERATOR(pg_catalog.<>) 'AFTER'
       OR TG_OP OPERATOR(pg_catalog.<>) 'UPDATE' THEN
        RAISE EXCEPTION 'crm_internal.account_settle_owners() must be fired AFTER UPDATE ... FOR EACH STATEMENT'
            USING ERRCODE = 'triggered_action_exception';
    END IF;
    INSERT INTO crm_internal.account_owner_moved (account_id)
    SELECT n.id FROM new_accounts AS n
      JOIN old_accounts AS o ON o.id OPERATOR(pg_catalog.=) n.id
     WHERE o.owner::pg_catalog.oid OPERATOR(pg_catalog.<>) n.owner::pg_catalog.oid;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION crm_internal.account_settle_owners() FROM PUBLIC;
COMMENT ON FUNCTION crm_internal.account_settle_owners() IS 'AFTER UPDATE statement trigger on crm.account: records the accounts whose owner the statement changed in crm_internal.account_owner_moved (pending for crm.top_accounts() until the next settling gives their settled rows the new owner)';
GRANT SELECT ON crm_internal.account_owner_moved TO crm_admin, crm_manager, crm_sales, crm_analyst;
CREATE TRIGGER account_settle_owners AFTER UPDATE ON crm.account
    REFERENCING OLD TABLE AS old_accounts NEW TABLE AS new_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.account_settle_owners();

-- crm.top_accounts() is in 96_top_accounts.sql: it needs crm.team_roles()
-- (95_row_security.sql), which a SQL-standard body resolves when it is made.

-- One owner's accounts: crm.account_rollup WHERE account_id IN (the
-- owner's accounts) reads only their groups through this index.
CREATE INDEX account_owner_idx ON crm.account (owner);
COMMENT ON INDEX crm.account_owner_idx IS 'The accounts of one owner (one owner''s account rollup, the team policies)';

-- One owner's accounts, by account owner: crm.account_rollup WHERE owner =
-- 'name' reads that owner's settled rows in one index range (for one owner
-- key: account_owner, owner, then account_id), not one probe per account;
-- a manager's sums read the owner's rows of every key the same way.
CREATE INDEX account_settled_account_owner_idx ON crm_internal.account_settled (account_owner, owner, account_id);
COMMENT ON INDEX crm_internal.account_settled_account_owner_idx IS 'One account owner''s settled rows for one owner key (or every key above 0, for a manager''s sums): crm.account_rollup WHERE owner = ''name'' reads them in one range';

-- The accounts whose settled figures crm.account_rollup does not use, as
-- the caller sees them (row-level security on each table): those with
-- uncompacted stripe rows (account_aggregate_pending_idx), those whose
-- owner changed since they were settled, and those with a settled row
-- without a rate (computed, so that ZC120 is raised as the live view
-- does).  An account may be listed more than once.  Every other account
-- the caller sees has in its settled rows the figures of the groups the
-- caller sees (the invariant above, per opportunity owner: the rows of an
-- owner without stripes on the account are that owner's exact figures),
-- and its current owner as account_owner.
CREATE VIEW crm_internal.account_pending WITH (security_invoker = true) AS
    SELECT a.account_id FROM crm_internal.account_aggregate AS a
     WHERE a.stripe OPERATOR(pg_catalog.<>) 0
    UNION ALL
    SELECT m.account_id FROM crm_internal.account_owner_moved AS m
    UNION ALL
    SELECT s.account_id FROM crm_internal.account_settled AS s
     WHERE s.open_amount IS NULL OR s.won_amount IS NULL;
COMMENT ON VIEW crm_internal.account_pending IS 'The accounts (as the caller sees them) whose figures crm.account_rollup computes from their groups rather than reads from crm_internal.account_settled: uncompacted stripes, an owner changed since the last settling, or a missing rate; an account may appear more than once';
COMMENT ON COLUMN crm_internal.account_pending.account_id IS 'The account';
GRANT SELECT ON crm_internal.account_pending TO crm_admin, crm_manager, crm_sales, crm_analyst;

-- Per account (one row each): its open and won opportunities and amounts
-- in the corporate currency, as the caller sees them, the last completed
-- activity, the deals' currency.  The settled figures where they are
-- current, the groups (crm_internal.account_rollup_live) only for the
-- pending accounts:
--  * k (once per query): whose settled rows are the caller's figures: the
--    all-owners rows (owner 0), visible exactly to those who see every
--    group (admins, analysts); else, when the caller sees the rows of one
--    opportunity owner only (a rep: its own), that owner's; else (key
--    NULL: a manager with a team) the sum of the visible rows of every
--    owner above 0.
--  * x, per account owner (ro, a role; the accounts of a dropped role
--    apart, below): the owner's accounts (account_owner_idx), joined to the
--    owner's settled rows of that key (s, the first branch: one range of
--    account_settled_account_owner_idx; or the second, a manager's sums,
--    grouped), and to their completed activities (the latest kept by
--    DISTINCT ON; the planner probes activity_account_id_idx per account or
--    hashes the activities, whichever is cheaper).  s is a LATERAL
--    subquery on the role (a UNION ALL, as a plain subquery would be merged
--    into the join and lose the parameter): its branches take the role as
--    a parameter (one owner: a nested loop over that role, a hash join of
--    its accounts and its settled rows inside) and a filter account_id = n
--    still reaches them (one account: an index probe).  Matching the
--    settled rows by account_owner
--    as well as account_id changes nothing: a settled account's rows carry
--    its current owner (the invariant above); an account whose owner
--    changed since is pending.
--  * The accounts of a role dropped since (owner NULL): those whose owner
--    is none of the roles (<> ALL: leakproof, so it is checked before the
--    row-level security policies, which then cost nothing for the other
--    accounts) and, for the planner's estimate, whose regrole text is the
--    bare OID (an existing role's is its name, quoted when it looks like a
--    number); computed from their groups, one account at a time (the same
--    figures as their settled rows, by the invariant).  A filter on
--    owner = 'name' removes this branch when the query is planned, a filter
--    on account_id reaches it.
--  * f: the caller's pending accounts (crm_internal.account_pending), each
--    computed from its groups (a LATERAL subquery per pending account;
--    OFFSET 0 keeps it one, so that the account_id reaches the groups'
--    index); their figures replace the settled ones (CASE on f.account_id:
--    a pending account with no open or won deal the caller sees shows
--    zeros, not its stale settled row).  A join from the pending accounts:
--    the planner prices it by them, not as if every account read its
--    groups.
-- DISTINCT ON (account_id, owner) is one row per account (owner is the
-- account's); owner in it lets a filter on owner reach the roles.  Amounts
-- are rounded once, after summing unrounded amounts.  Exact at every
-- committed state: one statement reads the settled rows, the stripes and
-- the owner records in one snapshot, and the invariant above holds in
-- each committed state (the compaction lock protects it: see the header).  Cost: one account (a
-- filter on account_id, as crm.top_accounts() reads it): O(1), O(its
-- groups) when pending; one owner's accounts (owner = 'name'): O(those
-- accounts) in bulk, plus the caller's pending accounts; every account:
-- O(accounts) plus the pending accounts' groups.
CREATE VIEW crm.account_rollup WITH (security_invoker = true) AS
    WITH k AS (
        -- (the lowest and the highest owner key the caller sees: index ends)
        SELECT CASE WHEN e.lo OPERATOR(pg_catalog.=) 0::pg_catalog.oid OR e.lo OPERATOR(pg_catalog.=) e.hi
                    THEN e.lo END AS key
          FROM (SELECT pg_catalog.min(s.owner::pg_catalog.oid) AS lo, pg_catalog.max(s.owner::pg_catalog.oid) AS hi
                  FROM crm_internal.account_settled AS s) AS e)
    SELECT x.account_id, x.name, x.owner,
           CASE WHEN f.account_id IS NULL THEN COALESCE(x.open_opportunities, 0)
                ELSE COALESCE(f.open_opportunities, 0) END AS open_opportunities,
           CASE WHEN f.account_id IS NULL
                THEN CASE WHEN x.open_opportunities OPERATOR(pg_catalog.>) 0 THEN pg_catalog.round(x.open_amount, 2) ELSE 0 END
                ELSE CASE WHEN f.open_opportunities OPERATOR(pg_catalog.>) 0 THEN pg_catalog.round(f.open_amount, 2) ELSE 0 END
           END AS open_amount,
           CASE WHEN f.account_id IS NULL THEN COALESCE(x.won_opportunities, 0)
                ELSE COALESCE(f.won_opportunities, 0) END AS won_opportunities,
           CASE WHEN f.account_id IS NULL
                THEN CASE WHEN x.won_opportunities OPERATOR(pg_catalog.>) 0 THEN pg_catalog.round(x.won_amount, 2) ELSE 0 END
                ELSE CASE WHEN f.won_opportunities OPERATOR(pg_catalog.>) 0 THEN pg_catalog.round(f.won_amount, 2) ELSE 0 END
           END AS won_amount,
           x.last_activity_at,
           CASE WHEN f.account_id IS NULL THEN x.currency ELSE f.currency END AS currency,
           CASE WHEN f.account_id IS NULL THEN x.open_amount_in_currency ELSE f.open_amount_in_currency END
               AS open_amount_in_currency,
           CASE WHEN f.account_id IS NULL THEN x.won_amount_in_currency ELSE f.won_amount_in_currency END
               AS won_amount_in_currency
      FROM (
        -- the accounts of each role
        (SELECT DISTINCT ON (ac.id, ro.rolname::pg_catalog.text)
               ac.id AS account_id, ac.name, ro.rolname::pg_catalog.text AS owner, act.completed_at AS last_activity_at,
               s.open_opportunities, s.open_amount, s.won_opportunities, s.won_amount, s.currency,
               s.open_amount_in_currency, s.won_amount_in_currency
          FROM crm.account AS ac
          JOIN pg_catalog.pg_roles AS ro ON ro.oid OPERATOR(pg_catalog.=) ac.owner::pg_catalog.oid
          LEFT JOIN LATERAL (
               -- one owner key: its row of each account of the role
               SELECT y.account_id, y.open_opportunities::pg_catalog.numeric AS open_opportunities, y.open_amount,
                      y.won_opportunities::pg_catalog.numeric AS won_opportunities, y.won_amount, y.currency,
                      y.open_amount_in_currency, y.won_amount_in_currency
                 FROM crm_internal.account_settled AS y
                WHERE y.account_owner::pg_catalog.oid OPERATOR(pg_catalog.=) ro.oid
                  AND y.owner::pg_catalog.oid OPERATOR(pg_catalog.=) (SELECT k.key FROM k)
               UNION ALL
               -- no one key (a manager): per account, the sum of the visible owners' rows
               SELECT y.account_id,
                      pg_catalog.sum(y.open_opportunities), pg_catalog.sum(y.open_amount),
                      pg_catalog.sum(y.won_opportunities), pg_catalog.sum(y.won_amount),
                      CASE WHEN pg_catalog.bool_and(y.currency IS NOT NULL)
                            AND pg_catalog.min(y.currency) OPERATOR(pg_catalog.=) pg_catalog.max(y.currency)
                           THEN pg_catalog.min(y.currency) END,
                      CASE WHEN pg_catalog.bool_and(y.currency IS NOT NULL)
                            AND pg_catalog.min(y.currency) OPERATOR(pg_catalog.=) pg_catalog.max(y.currency)
                           THEN pg_catalog.sum(y.open_amount_in_currency) END,
                      CASE WHEN pg_catalog.bool_and(y.currency IS NOT NULL)
                            AND pg_catalog.min(y.currency) OPERATOR(pg_catalog.=) pg_catalog.max(y.currency)
                           THEN pg_catalog.sum(y.won_amount_in_currency) END
                 FROM crm_internal.account_settled AS y
                WHERE (SELECT k.key FROM k) IS NULL
                  AND y.account_owner::pg_catalog.oid OPERATOR(pg_catalog.=) ro.oid
                  AND y.owner::pg_catalog.oid OPERATOR(pg_catalog.>) 0::pg_catalog.oid
                GROUP BY y.account_id) AS s
            ON s.account_id OPERATOR(pg_catalog.=) ac.id
          LEFT JOIN crm.activity AS act
            ON act.account_id OPERATOR(pg_catalog.=) ac.id AND act.completed_at IS NOT NULL
         ORDER BY ac.id, ro.rolname::pg_catalog.text, act.completed_at DESC NULLS LAST)
        UNION ALL
        -- the accounts of a role dropped since (owner NULL), computed from their groups
        (SELECT DISTINCT ON (ac.id, NULL::pg_catalog.name::pg_catalog.text)
               ac.id, ac.name, NULL::pg_catalog.name::pg_catalog.text, act.completed_at,
               l.open_opportunities, l.open_amount, l.won_opportunities, l.won_amount, l.currency,
               l.open_amount_in_currency, l.won_amount_in_currency
          FROM crm.account AS ac
          LEFT JOIN LATERAL (SELECT y.* FROM crm_internal.account_rollup_live AS y
                              WHERE y.account_id OPERATOR(pg_catalog.=) ac.id OFFSET 0) AS l ON true
          LEFT JOIN crm.activity AS act
            ON act.account_id OPERATOR(pg_catalog.=) ac.id AND act.completed_at IS NOT NULL
         WHERE ac.owner::pg_catalog.oid OPERATOR(pg_catalog.<>) ALL (ARRAY(SELECT r.oid FROM pg_catalog.pg_roles AS r))
           AND ac.owner::pg_catalog.text OPERATOR(pg_catalog.=) ac.owner::pg_catalog.oid::pg_catalog.text
         ORDER BY ac.id, NULL::pg_catalog.name::pg_catalog.text, act.completed_at DESC NULLS LAST)) AS x
      LEFT JOIN (
           SELECT q.account_id, l.open_opportunities, l.open_amount, l.won_opportunities, l.won_amount,
                  l.currency, l.open_amount_in_currency, l.won_amount_in_currency
             FROM (SELECT DISTINCT p.account_id FROM crm_internal.account_pending AS p) AS q
             LEFT JOIN LATERAL (SELECT y.* FROM crm_internal.account_rollup_live AS y
                                 WHERE y.account_id OPERATOR(pg_catalog.=) q.account_id OFFSET 0) AS l
               ON true) AS f
        ON f.account_id OPERATOR(pg_catalog.=) x.account_id;
COMMENT ON VIEW crm.account_rollup IS 'Per account (one row each): open opportunities and their amount, won opportunities and their amount, in the corporate currency (each deal at the rate of its close month, the latest rate without a close date; a rate edit shows at once), and the last completed activity logged against the account, as the caller sees them (row-level security). One row per account rather than per currency, so that it joins to accounts and charts as one bar each; the deals'' own currency and amounts in it are beside them when all open and won deals of the account share one currency (NULL when they are mixed). Read from the settled per-account figures, and computed from the aggregate groups for the accounts written since the last crm.compact_aggregates(): exact at every committed state';
COMMENT ON COLUMN crm.account_rollup.account_id IS 'The account';
COMMENT ON COLUMN crm.account_rollup.name IS 'Account name';
COMMENT ON COLUMN crm.account_rollup.owner IS 'Account owner: the role''s name, as text (crm.account.owner is a regrole); NULL when that role was dropped. A filter on it (owner = ''name'') reads only that owner''s accounts';
COMMENT ON COLUMN crm.account_rollup.open_opportunities IS 'Opportunities in a stage that is not closed';
COMMENT ON COLUMN crm.account_rollup.open_amount IS 'Their amount, in the corporate currency (rounded to cents once, after converting)';
COMMENT ON COLUMN crm.account_rollup.won_opportunities IS 'Opportunities won';
COMMENT ON COLUMN crm.account_rollup.won_amount IS 'Their amount, in the corporate currency (rounded to cents once, after converting)';
COMMENT ON COLUMN crm.account_rollup.last_activity_at IS 'When the latest completed activity logged against the account was completed (NULL: none)';
COMMENT ON COLUMN crm.account_rollup.currency IS 'Currency of the open and won deals when they all share one; NULL when they are in several currencies or there are none';
COMMENT ON COLUMN crm.account_rollup.open_amount_in_currency IS 'Amount of the open deals in that currency (NULL when the currencies are mixed)';
COMMENT ON COLUMN crm.account_rollup.won_amount_in_currency IS 'Amount of the won deals in that currency (NULL when the currencies are mixed)';
