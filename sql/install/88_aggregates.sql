--------------------------------------------------------------------------
-- Pipeline, account and campaign aggregates
--
-- crm.pipeline_aggregate holds, per (stage, owner, close month), the number
-- of opportunities, their amount and their probability-weighted amount;
-- crm.account_aggregate and crm.campaign_opportunity_aggregate the number
-- and amount of opportunities per (account, stage) and (campaign, stage);
-- crm.campaign_lead_aggregate the number of leads per (campaign, status).
-- All are kept by statement-level C triggers (names start with aggregates_)
-- from the transition tables.  No hot rows: each backend adds its deltas to its own
-- stripe (one row per group and backend id; another of its own, above every
-- backend id, while a prepared transaction or a compaction holds that row),
-- so concurrent writers never wait for each other, and readers sum the stripes -- time proportional to
-- the number of groups times the backends that wrote, not to the number of
-- opportunities.  The stripes are ordinary rows written in the writer's
-- transaction: exact after commit, rollback, ROLLBACK TO SAVEPOINT, COPY,
-- bulk UPDATE and DELETE; TRUNCATE empties them.  The primary keys put the
-- text (or enum) column last, after the stripe: a writer finds its row with
-- integer comparisons and compares text only between the stages of one group.
-- A fill factor of 20 leaves each page room for the next versions of its
-- rows: a stripe row is updated over and over, and a new version on the
-- same page is a HOT update that touches no index and is cheap to prune.
--------------------------------------------------------------------------

CREATE TABLE crm.pipeline_aggregate (
    stage            text NOT NULL,
    owner            regrole NOT NULL,
    close_month      date NOT NULL,
    stripe           integer NOT NULL,
    opportunities    bigint NOT NULL DEFAULT 0,
    amount           numeric NOT NULL DEFAULT 0,
    weighted_amount  numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (owner, close_month, stripe, stage)
) WITH (fillfactor = 20);
COMMENT ON TABLE crm.pipeline_aggregate IS 'Pipeline totals per stage, owner and close month, one row per writing backend (stripe); sum over stripes to read; written only by the aggregates_ triggers';
COMMENT ON COLUMN crm.pipeline_aggregate.stage IS 'Opportunity stage';
COMMENT ON COLUMN crm.pipeline_aggregate.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm.pipeline_aggregate.close_month IS 'First day of the close month; infinity when the opportunity has no close date';
COMMENT ON COLUMN crm.pipeline_aggregate.stripe IS 'Which writer recorded these changes: its backend id, or that id plus a multiple of 262144 while another transaction (a prepared one, or a compaction) held the row of the id; 0 after a compaction or rebuild. Lets writers add without waiting for each other';
COMMENT ON COLUMN crm.pipeline_aggregate.opportunities IS 'Change in the number of opportunities recorded by this stripe';
COMMENT ON COLUMN crm.pipeline_aggregate.amount IS 'Change in the sum of amounts recorded by this stripe';
COMMENT ON COLUMN crm.pipeline_aggregate.weighted_amount IS 'Change in the sum of round(amount x probability / 100, 2) recorded by this stripe';

-- What the aggregate must equal: the GROUP BY over the opportunities.
CREATE VIEW crm.pipeline_actual WITH (security_invoker = true) AS
    SELECT o.stage, o.owner,
           -- the first of the month, by date arithmetic (date_trunc would go
           -- through timestamp and fail for dates beyond its range)
           CASE WHEN o.close_date IS NULL THEN 'infinity'::date
                WHEN NOT pg_catalog.isfinite(o.close_date) THEN o.close_date
                ELSE o.close_date OPERATOR(pg_catalog.-)
                     (pg_catalog."extract"('day', o.close_date)::integer OPERATOR(pg_catalog.-) 1)
           END AS close_month,
           pg_catalog.count(*) AS opportunities, pg_catalog.sum(o.amount) AS amount,
           pg_catalog.sum(pg_catalog.round(o.amount OPERATOR(pg_catalog.*) COALESCE(o.probability, 0)
                                           OPERATOR(pg_catalog./) 100, 2)) AS weighted_amount
      FROM crm.opportunity AS o
     GROUP BY 1, 2, 3;
COMMENT ON VIEW crm.pipeline_actual IS 'The pipeline totals computed from the opportunities (a full GROUP BY): what crm.pipeline_aggregate must add up to';
COMMENT ON COLUMN crm.pipeline_actual.stage IS 'Opportunity stage';
COMMENT ON COLUMN crm.pipeline_actual.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm.pipeline_actual.close_month IS 'First day of the close month; infinity without a close date';
COMMENT ON COLUMN crm.pipeline_actual.opportunities IS 'Number of opportunities';
COMMENT ON COLUMN crm.pipeline_actual.amount IS 'Sum of amounts';
COMMENT ON COLUMN crm.pipeline_actual.weighted_amount IS 'Sum of round(amount x probability / 100, 2)';

CREATE VIEW crm.pipeline_totals WITH (security_invoker = true) AS
    SELECT a.stage, a.owner, a.close_month,
           pg_catalog.sum(a.opportunities) AS opportunities, pg_catalog.sum(a.amount) AS amount,
           pg_catalog.sum(a.weighted_amount) AS weighted_amount
      FROM crm.pipeline_aggregate AS a
     GROUP BY 1, 2, 3
    HAVING pg_catalog.sum(a.opportunities) OPERATOR(pg_catalog.<>) 0;
COMMENT ON VIEW crm.pipeline_totals IS 'Pipeline totals per stage, owner and close month, read from the maintained aggregate (stripes summed)';
COMMENT ON COLUMN crm.pipeline_totals.stage IS 'Opportunity stage';
COMMENT ON COLUMN crm.pipeline_totals.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm.pipeline_totals.close_month IS 'First day of the close month; infinity without a close date';
COMMENT ON COLUMN crm.pipeline_totals.opportunities IS 'Number of opportunities';
COMMENT ON COLUMN crm.pipeline_totals.amount IS 'Sum of amounts';
COMMENT ON COLUMN crm.pipeline_totals.weighted_amount IS 'Sum of round(amount x probability / 100, 2)';

CREATE TABLE crm.account_aggregate (
    account_id       bigint NOT NULL,
    owner            regrole NOT NULL,
    stage            text NOT NULL,
    stripe           integer NOT NULL,
    opportunities    bigint NOT NULL DEFAULT 0,
    amount           numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, owner, stripe, stage)
) WITH (fillfactor = 20);
COMMENT ON TABLE crm.account_aggregate IS 'Opportunities per account, owner and stage, one row per writing backend (stripe); sum over stripes to read (crm.account_rollup does); written only by the aggregates_ triggers';
COMMENT ON COLUMN crm.account_aggregate.account_id IS 'The account';
COMMENT ON COLUMN crm.account_aggregate.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm.account_aggregate.stage IS 'Opportunity stage';
COMMENT ON COLUMN crm.account_aggregate.stripe IS 'Which writer recorded these changes: its backend id, or that id plus a multiple of 262144 while another transaction (a prepared one, or a compaction) held the row of the id; 0 after a compaction or rebuild. Lets writers add without waiting for each other';
COMMENT ON COLUMN crm.account_aggregate.opportunities IS 'Change in the number of opportunities recorded by this stripe';
COMMENT ON COLUMN crm.account_aggregate.amount IS 'Change in the sum of amounts recorded by this stripe';

CREATE TABLE crm.campaign_opportunity_aggregate (
    campaign_id      bigint NOT NULL,
    owner            regrole NOT NULL,
    stage            text NOT NULL,
    stripe           integer NOT NULL,
    opportunities    bigint NOT NULL DEFAULT 0,
    amount           numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, owner, stripe, stage)
) WITH (fillfactor = 20);
COMMENT ON TABLE crm.campaign_opportunity_aggregate IS 'Opportunities attributed to a campaign, per campaign, owner and stage, one row per writing backend (stripe); written only by the aggregates_ triggers';
COMMENT ON COLUMN crm.campaign_opportunity_aggregate.campaign_id IS 'The campaign';
COMMENT ON COLUMN crm.campaign_opportunity_aggregate.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm.campaign_opportunity_aggregate.stage IS 'Opportunity stage';
COMMENT ON COLUMN crm.campaign_opportunity_aggregate.stripe IS 'Which writer recorded these changes: its backend id, or that id plus a multiple of 262144 while another transaction (a prepared one, or a compaction) held the row of the id; 0 after a compaction or rebuild. Lets writers add without waiting for each other';
COMMENT ON COLUMN crm.campaign_opportunity_aggregate.opportunities IS 'Change in the number of opportunities recorded by this stripe';
COMMENT ON COLUMN crm.campaign_opportunity_aggregate.amount IS 'Change in the sum of amounts recorded by this stripe';

CREATE TABLE crm.campaign_lead_aggregate (
    campaign_id      bigint NOT NULL,
    owner            regrole NOT NULL,
    status           crm.lead_status NOT NULL,
    stripe           integer NOT NULL,
    leads            bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, owner, stripe, status)
) WITH (fillfactor = 20);
COMMENT ON TABLE crm.campaign_lead_aggregate IS 'Leads attributed to a campaign, per campaign, lead owner and lead status, one row per writing backend (stripe); written only by the aggregates_ triggers';
COMMENT ON COLUMN crm.campaign_lead_aggregate.campaign_id IS 'The campaign';
COMMENT ON COLUMN crm.campaign_lead_aggregate.owner IS 'Lead owner';
COMMENT ON COLUMN crm.campaign_lead_aggregate.status IS 'Lead status';
COMMENT ON COLUMN crm.campaign_lead_aggregate.stripe IS 'Which writer recorded these changes: its backend id, or that id plus a multiple of 262144 while another transaction (a prepared one, or a compaction) held the row of the id; 0 after a compaction or rebuild. Lets writers add without waiting for each other';
COMMENT ON COLUMN crm.campaign_lead_aggregate.leads IS 'Change in the number of leads recorded by this stripe';

CREATE FUNCTION crm.aggregates_maintain() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_aggregates_maintain'
    LANGUAGE C;
COMMENT ON FUNCTION crm.aggregates_maintain() IS 'AFTER statement trigger on crm.opportunity and crm.lead: folds the statement''s transition tables into per-group changes and adds them to the writing backend''s stripe of every aggregate the table feeds (TRUNCATE empties them)';

CREATE TRIGGER aggregates_opportunity_insert AFTER INSERT ON crm.opportunity
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.aggregates_maintain();
CREATE TRIGGER aggregates_opportunity_update AFTER UPDATE ON crm.opportunity
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.aggregates_maintain();
CREATE TRIGGER aggregates_opportunity_delete AFTER DELETE ON crm.opportunity
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.aggregates_maintain();
CREATE TRIGGER aggregates_opportunity_truncate AFTER TRUNCATE ON crm.opportunity
    FOR EACH STATEMENT EXECUTE FUNCTION crm.aggregates_maintain();
CREATE TRIGGER aggregates_lead_insert AFTER INSERT ON crm.lead
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.aggregates_maintain();
CREATE TRIGGER aggregates_lead_update AFTER UPDATE ON crm.lead
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.aggregates_maintain();
CREATE TRIGGER aggregates_lead_delete AFTER DELETE ON crm.lead
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.aggregates_maintain();
CREATE TRIGGER aggregates_lead_truncate AFTER TRUNCATE ON crm.lead
    FOR EACH STATEMENT EXECUTE FUNCTION crm.aggregates_maintain();

-- Every kept group (stripes summed) next to the same group computed from the
-- base tables; verify and rebuild are written from it.
CREATE VIEW crm.aggregates_compared WITH (security_invoker = true) AS
    WITH kept AS (
        SELECT 'pipeline'::text AS aggregate,
               pg_catalog.jsonb_build_object('stage', p.stage, 'owner', p.owner, 'close_month', p.close_month) AS group_key,
               pg_catalog.sum(p.opportunities)::numeric AS items, pg_catalog.sum(p.amount) AS amount,
               pg_catalog.sum(p.weighted_amount) AS weighted_amount
          FROM crm.pipeline_aggregate AS p GROUP BY p.stage, p.owner, p.close_month
        UNION ALL
        SELECT 'account', pg_catalog.jsonb_build_object('account_id', g.account_id, 'owner', g.owner, 'stage', g.stage),
               pg_catalog.sum(g.opportunities), pg_catalog.sum(g.amount), NULL
          FROM crm.account_aggregate AS g GROUP BY g.account_id, g.owner, g.stage
        UNION ALL
        SELECT 'campaign_opportunity', pg_catalog.jsonb_build_object('campaign_id', g.campaign_id, 'owner', g.owner, 'stage', g.stage),
               pg_catalog.sum(g.opportunities), pg_catalog.sum(g.amount), NULL
          FROM crm.campaign_opportunity_aggregate AS g GROUP BY g.campaign_id, g.owner, g.stage
        UNION ALL
        SELECT 'campaign_lead', pg_catalog.jsonb_build_object('campaign_id', g.campaign_id, 'owner', g.owner, 'status', g.status),
               pg_catalog.sum(g.leads), NULL, NULL
          FROM crm.campaign_lead_aggregate AS g GROUP BY g.campaign_id, g.owner, g.status),
    actual AS (
        SELECT 'pipeline'::text AS aggregate,
               pg_catalog.jsonb_build_object('stage', a.stage, 'owner', a.owner, 'close_month', a.close_month) AS group_key,
               a.opportunities::numeric AS items, a.amount, a.weighted_amount
          FROM crm.pipeline_actual AS a
        UNION ALL
        SELECT 'account', pg_catalog.jsonb_build_object('account_id', o.account_id, 'owner', o.owner, 'stage', o.stage),
               pg_catalog.count(*), pg_catalog.sum(o.amount), NULL
          FROM crm.opportunity AS o GROUP BY o.account_id, o.owner, o.stage
        UNION ALL
        SELECT 'campaign_opportunity', pg_catalog.jsonb_build_object('campaign_id', o.campaign_id, 'owner', o.owner, 'stage', o.stage),
               pg_catalog.count(*), pg_catalog.sum(o.amount), NULL
          FROM crm.opportunity AS o WHERE o.campaign_id IS NOT NULL GROUP BY o.campaign_id, o.owner, o.stage
        UNION ALL
        SELECT 'campaign_lead', pg_catalog.jsonb_build_object('campaign_id', l.campaign_id, 'owner', l.owner, 'status', l.status),
               pg_catalog.count(*), NULL, NULL
          FROM crm.lead AS l WHERE l.campaign_id IS NOT NULL GROUP BY l.campaign_id, l.owner, l.status)
    SELECT COALESCE(k.aggregate, a.aggregate) AS aggregate, COALESCE(k.group_key, a.group_key) AS group_key,
           COALESCE(k.items, 0) AS kept_items, COALESCE(a.items, 0) AS actual_items,
           COALESCE(k.amount, 0) AS kept_amount, COALESCE(a.amount, 0) AS actual_amount,
           COALESCE(k.weighted_amount, 0) AS kept_weighted_amount, COALESCE(a.weighted_amount, 0) AS actual_weighted_amount
      FROM kept AS k
      FULL JOIN actual AS a
        ON a.aggregate OPERATOR(pg_catalog.=) k.aggregate AND a.group_key OPERATOR(pg_catalog.=) k.group_key;
COMMENT ON VIEW crm.aggregates_compared IS 'Every group of every maintained aggregate, kept (stripes summed) next to a fresh GROUP BY over the base tables; a full scan, for checking only';
COMMENT ON COLUMN crm.aggregates_compared.aggregate IS 'pipeline, account, campaign_opportunity or campaign_lead';
COMMENT ON COLUMN crm.aggregates_compared.group_key IS 'The group, as a JSON object of its key columns';
COMMENT ON COLUMN crm.aggregates_compared.kept_items IS 'Opportunities (or leads) in the group, as kept';
COMMENT ON COLUMN crm.aggregates_compared.actual_items IS 'Opportunities (or leads) in the group, counted now';
COMMENT ON COLUMN crm.aggregates_compared.kept_amount IS 'Sum of amounts, as kept (0 where the aggregate has none)';
COMMENT ON COLUMN crm.aggregates_compared.actual_amount IS 'Sum of amounts, computed now';
COMMENT ON COLUMN crm.aggregates_compared.kept_weighted_amount IS 'Sum of weighted amounts, as kept (pipeline only)';
COMMENT ON COLUMN crm.aggregates_compared.actual_weighted_amount IS 'Sum of weighted amounts, computed now';

CREATE FUNCTION crm.verify_aggregates()
    RETURNS TABLE (aggregate text, group_key jsonb, measure text, kept numeric, actual numeric)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT c.aggregate, c.group_key, m.measure, m.kept, m.actual
      FROM crm.aggregates_compared AS c
     CROSS JOIN LATERAL (VALUES ('items', c.kept_items, c.actual_items),
                                ('amount', c.kept_amount, c.actual_amount),
                                ('weighted_amount', c.kept_weighted_amount, c.actual_weighted_amount))
                        AS m (measure, kept, actual)
     WHERE m.kept OPERATOR(pg_catalog.<>) m.actual
     ORDER BY c.aggregate, c.group_key::text, m.measure;
END;
COMMENT ON FUNCTION crm.verify_aggregates() IS 'One row per group and measure where a maintained aggregate differs from a fresh GROUP BY over the base tables; no rows: all exact';

CREATE FUNCTION crm.rebuild_aggregates() RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    total bigint := 0;
BEGIN
    -- writers wait until the rebuild commits; readers keep reading
    LOCK TABLE crm.lead, crm.opportunity IN SHARE MODE;
    LOCK TABLE crm.pipeline_aggregate, crm.account_aggregate, crm.campaign_opportunity_aggregate,
               crm.campaign_lead_aggregate IN EXCLUSIVE MODE;
    DELETE FROM crm.pipeline_aggregate;
    DELETE FROM crm.account_aggregate;
    DELETE FROM crm.campaign_opportunity_aggregate;
    DELETE FROM crm.campaign_lead_aggregate;
    INSERT INTO crm.pipeline_aggregate (stage, owner, close_month, stripe, opportunities, amount, weighted_amount)
    SELECT a.stage, a.owner, a.close_month, 0, a.opportunities, a.amount, a.weighted_amount
      FROM crm.pipeline_actual AS a;
    GET DIAGNOSTICS n = ROW_COUNT;
    total := total + n;
    INSERT INTO crm.account_aggregate (account_id, owner, stage, stripe, opportunities, amount)
    SELECT o.account_id, o.owner, o.stage, 0, count(*), sum(o.amount) FROM crm.opportunity AS o GROUP BY 1, 2, 3;
    GET DIAGNOSTICS n = ROW_COUNT;
    total := total + n;
    INSERT INTO crm.campaign_opportunity_aggregate (campaign_id, owner, stage, stripe, opportunities, amount)
    SELECT o.campaign_id, o.owner, o.stage, 0, count(*), sum(o.amount) FROM crm.opportunity AS o
     WHERE o.campaign_id IS NOT NULL GROUP BY 1, 2, 3;
    GET DIAGNOSTICS n = ROW_COUNT;
    total := total + n;
    INSERT INTO crm.campaign_lead_aggregate (campaign_id, owner, status, stripe, leads)
    SELECT l.campaign_id, l.owner, l.status, 0, count(*) FROM crm.lead AS l
     WHERE l.campaign_id IS NOT NULL GROUP BY 1, 2, 3;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN total + n;
END
$$;
COMMENT ON FUNCTION crm.rebuild_aggregates() IS 'Recomputes every aggregate from the base tables into one row per group (stripe 0), folding all stripes and dropping groups that emptied; returns the number of groups. Blocks writers of leads and opportunities until it commits. Runs as the extension owner (it reads every row and writes the aggregates, which nobody else may); admins only.';

CREATE FUNCTION crm.aggregates_compaction_lock() RETURNS void
    AS 'MODULE_PATHNAME', 'crm_aggregates_compaction_lock'
    LANGUAGE C VOLATILE;
COMMENT ON FUNCTION crm.aggregates_compaction_lock() IS 'Used by crm.compact_aggregates(): takes the lock that lets one compaction run at a time, until the transaction ends (a lock no SQL command or advisory lock function can take, and no maintenance command waits for)';

CREATE FUNCTION crm.compact_aggregates() RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    spec text[];
    measures text[];
    total bigint := 0;
    n bigint;
BEGIN
    -- One compaction at a time: a lock only compactions take, first, while
    -- this transaction holds no other.
    PERFORM crm.aggregates_compaction_lock();
    -- A TRUNCATE of the base tables (which empties the aggregates) waits for
    -- the compaction and vice versa.
    LOCK TABLE crm.lead, crm.opportunity IN ACCESS SHARE MODE;
    -- Every table it writes up front, in the order writers and
    -- crm.rebuild_aggregates() lock them, in the mode writers take.  ROW
    -- EXCLUSIVE conflicts with nothing REINDEX CONCURRENTLY, CREATE INDEX
    -- CONCURRENTLY, VACUUM or ANALYZE hold, which wait for this transaction's
    -- snapshot: waiting for them would be a deadlock.  It waits only for
    -- VACUUM FULL, CLUSTER, REINDEX, TRUNCATE and a rebuild, which wait for
    -- no snapshot, and never for a table lock once the work has begun.
    LOCK TABLE crm.pipeline_aggregate, crm.account_aggregate, crm.campaign_opportunity_aggregate,
               crm.campaign_lead_aggregate IN ROW EXCLUSIVE MODE;
    -- Per aggregate table (name, its group key, its measures -- fixed names,
    -- no user input): move every stripe row that no open transaction is
    -- writing into stripe 0 (rows a writer holds are skipped and moved next
    -- time), then drop stripe-0 rows that add up to nothing.  Writers only
    -- ever touch their own stripes, never stripe 0, and write to another of
    -- theirs rather than wait for a row the compaction holds, so nobody waits
    -- for a compaction.
    FOREACH spec SLICE 1 IN ARRAY ARRAY[
        ['pipeline_aggregate', 'stage, owner, close_month', 'opportunities, amount, weighted_amount'],
        ['account_aggregate', 'account_id, owner, stage', 'opportunities, amount'],
        ['campaign_opportunity_aggregate', 'campaign_id, owner, stage', 'opportunities, amount'],
        ['campaign_lead_aggregate', 'campaign_id, owner, status', 'leads']]
    LOOP
        measures := string_to_array(spec[3], ', ');
        EXECUTE format(
            'WITH moved AS ('
            '    DELETE FROM crm.%1$I AS a'
            '     WHERE a.ctid OPERATOR(pg_catalog.=) ANY (ARRAY('
            '               SELECT x.ctid FROM crm.%1$I AS x'
            '                WHERE x.stripe OPERATOR(pg_catalog.<>) 0 FOR UPDATE SKIP LOCKED))'
            '    RETURNING a.*)'
            ' INSERT INTO crm.%1$I AS t (%2$s, stripe, %3$s)'
            ' SELECT %2$s, 0, %4$s FROM moved GROUP BY %2$s'
            ' ON CONFLICT (%2$s, stripe) DO UPDATE SET %5$s',
            spec[1], spec[2], spec[3],
            (SELECT string_agg(format('pg_catalog.sum(%I)', m), ', ') FROM unnest(measures) AS m),
            (SELECT string_agg(format('%1$I = t.%1$I OPERATOR(pg_catalog.+) EXCLUDED.%1$I', m), ', ')
               FROM unnest(measures) AS m));
        EXECUTE format('DELETE FROM crm.%I AS a WHERE a.stripe OPERATOR(pg_catalog.=) 0 AND %s', spec[1],
                       (SELECT string_agg(format('a.%I OPERATOR(pg_catalog.=) 0', m), ' AND ') FROM unnest(measures) AS m));
        EXECUTE format('SELECT pg_catalog.count(*) FROM crm.%I', spec[1]) INTO n;
        total := total + n;
    END LOOP;
    RETURN total;
END
$$;
COMMENT ON FUNCTION crm.compact_aggregates() IS 'Folds the per-backend stripes of every aggregate into one row per group (stripe 0) and drops groups that add up to nothing, without blocking writers (rows a running transaction is writing are left for the next call); returns the number of aggregate rows left. Totals do not change; reads get faster. Run it periodically (e.g. every few minutes) on busy systems, in a transaction of its own: the rows it folds stay locked until its transaction ends. Admins only.';

-- Per account: open and won opportunities from the aggregate, and the last
-- completed activity logged against the account from the activity index.
CREATE VIEW crm.account_rollup WITH (security_invoker = true) AS
    SELECT ac.id AS account_id, ac.name, ac.owner,
           COALESCE(r.open_opportunities, 0) AS open_opportunities,
           COALESCE(r.open_amount, 0) AS open_amount,
           COALESCE(r.won_opportunities, 0) AS won_opportunities,
           COALESCE(r.won_amount, 0) AS won_amount,
           (SELECT pg_catalog.max(act.completed_at) FROM crm.activity AS act
             WHERE act.account_id OPERATOR(pg_catalog.=) ac.id) AS last_activity_at
      FROM crm.account AS ac
      LEFT JOIN (SELECT g.account_id,
                        pg_catalog.sum(g.opportunities) FILTER (WHERE NOT s.is_closed) AS open_opportunities,
                        pg_catalog.sum(g.amount) FILTER (WHERE NOT s.is_closed) AS open_amount,
                        pg_catalog.sum(g.opportunities) FILTER (WHERE s.is_won) AS won_opportunities,
                        pg_catalog.sum(g.amount) FILTER (WHERE s.is_won) AS won_amount
                   FROM crm.account_aggregate AS g
                   JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) g.stage
                  GROUP BY g.account_id) AS r
        ON r.account_id OPERATOR(pg_catalog.=) ac.id;
COMMENT ON VIEW crm.account_rollup IS 'Per account: open opportunities and their amount, won opportunities and their amount (from the maintained aggregate), and the last completed activity logged against the account';
COMMENT ON COLUMN crm.account_rollup.account_id IS 'The account';
COMMENT ON COLUMN crm.account_rollup.name IS 'Account name';
COMMENT ON COLUMN crm.account_rollup.owner IS 'Account owner';
COMMENT ON COLUMN crm.account_rollup.open_opportunities IS 'Opportunities in a stage that is not closed';
COMMENT ON COLUMN crm.account_rollup.open_amount IS 'Their amount';
COMMENT ON COLUMN crm.account_rollup.won_opportunities IS 'Opportunities won';
COMMENT ON COLUMN crm.account_rollup.won_amount IS 'Their amount';
COMMENT ON COLUMN crm.account_rollup.last_activity_at IS 'When the latest completed activity logged against the account was completed (NULL: none)';
