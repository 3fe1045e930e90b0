--------------------------------------------------------------------------
-- Pipeline, account and campaign aggregates
--
-- crm_internal.pipeline_aggregate holds, per (stage, owner, close month), the number
-- of opportunities, their amount and their probability-weighted amount;
-- crm_internal.account_aggregate and crm_internal.campaign_opportunity_aggregate the number
-- and amount of opportunities per (account, owner, stage, close month,
-- currency) and (campaign, owner, stage, close month, currency): grouped by
-- currency and close month so that the reports convert each group to the
-- corporate currency at read time (one rate per group: rates change on the
-- first of a month);
-- crm_internal.campaign_lead_aggregate the number of leads per (campaign, status);
-- crm_internal.lead_funnel_aggregate and crm_internal.opportunity_funnel_aggregate
-- the leads and deals per owner, furthest step reached and current step (the
-- deals by close month and currency too), which crm.sales_funnel counts.
-- crm_internal.lead_source_aggregate and crm_internal.lead_month_aggregate the number of
-- leads per (owner, source, status) and (month of capture in UTC, owner,
-- status), for crm.lead_conversion_rates; crm_internal.sales_performance_aggregate
-- the number, amount and summed sales cycle of the deals with a closing
-- time per (month of closing in UTC, owner, stage, close month, currency),
-- for crm.sales_performance (issue 22).
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

-- The aggregates are defined once, in src/aggregates.c (the C fold reads
-- the definitions directly); crm_internal.aggregate_definitions() gives them to the
-- SQL here, which creates the tables and views from them and loops over
-- them in the rebuild and the compaction.
CREATE FUNCTION crm_internal.aggregate_definitions()
    RETURNS TABLE (aggregate text, source_table text, aggregate_table text,
                   group_columns text[], group_types regtype[], measures text[], measure_types regtype[],
                   primary_key text[], actual_query text)
    AS 'MODULE_PATHNAME', 'crm_aggregate_definitions'
    LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION crm_internal.aggregate_definitions() FROM PUBLIC;
COMMENT ON FUNCTION crm_internal.aggregate_definitions() IS 'The maintained aggregates as defined in the extension''s C code, one row each in the order writers lock their tables: the base table (schema crm) it aggregates, its aggregate table, the group columns and their types, the measures (a count, then sums) and their types, the primary key of the aggregate table, and the GROUP BY over the base table that the aggregate must add up to (columns named as the aggregate table''s)';

-- One table per aggregate: the group columns, the stripe, the measures.
DO $tables$
DECLARE
    d record;
BEGIN
    FOR d IN SELECT * FROM crm_internal.aggregate_definitions() LOOP
        EXECUTE pg_catalog.format(
            'CREATE TABLE crm_internal.%I (%s, stripe integer NOT NULL, %s, PRIMARY KEY (%s)) WITH (fillfactor = 20)',
            d.aggregate_table,
            (SELECT pg_catalog.string_agg(pg_catalog.format('%I %s NOT NULL', c.name, c.type), ', ' ORDER BY c.i)
               FROM ROWS FROM (pg_catalog.unnest(d.group_columns), pg_catalog.unnest(d.group_types)) WITH ORDINALITY AS c (name, type, i)),
            (SELECT pg_catalog.string_agg(pg_catalog.format('%I %s NOT NULL DEFAULT 0', m.name, m.type), ', ' ORDER BY m.i)
               FROM ROWS FROM (pg_catalog.unnest(d.measures), pg_catalog.unnest(d.measure_types)) WITH ORDINALITY AS m (name, type, i)),
            (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(k.name), ', ' ORDER BY k.i)
               FROM pg_catalog.unnest(d.primary_key) WITH ORDINALITY AS k (name, i)));
        EXECUTE pg_catalog.format(
            'COMMENT ON COLUMN crm_internal.%I.stripe IS %L', d.aggregate_table,
            'Which writer recorded these changes: its backend id, or that id plus a multiple of 262144 while another transaction (a prepared one, or a compaction) held the row of the id; 0 after a compaction or rebuild. Lets writers add without waiting for each other');
    END LOOP;
END
$tables$;

COMMENT ON TABLE crm_internal.pipeline_aggregate IS 'Pipeline totals per stage, owner, close month and currency, one row per writing backend (stripe); sum over stripes to read; written only by the aggregates_ triggers';
COMMENT ON COLUMN crm_internal.pipeline_aggregate.stage IS 'Opportunity stage';
COMMENT ON COLUMN crm_internal.pipeline_aggregate.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm_internal.pipeline_aggregate.close_month IS 'First day of the close month; infinity when the opportunity has no close date';
COMMENT ON COLUMN crm_internal.pipeline_aggregate.currency IS 'Currency of the amounts (the opportunities'' currency); reports convert per group at read time';
COMMENT ON COLUMN crm_internal.pipeline_aggregate.opportunities IS 'Change in the number of opportunities recorded by this stripe';
COMMENT ON COLUMN crm_internal.pipeline_aggregate.amount IS 'Change in the sum of amounts recorded by this stripe';
COMMENT ON COLUMN crm_internal.pipeline_aggregate.weighted_amount IS 'Change in the sum of round(amount x probability / 100, 2) recorded by this stripe';

-- What the pipeline aggregate must equal: the GROUP BY over the opportunities.
DO $actual$
BEGIN
    EXECUTE (SELECT pg_catalog.format('CREATE OR REPLACE VIEW crm_internal.pipeline_actual WITH (security_invoker = true) AS %s', d.actual_query)
               FROM crm_internal.aggregate_definitions() AS d WHERE d.aggregate OPERATOR(pg_catalog.=) 'pipeline');
END
$actual$;
COMMENT ON VIEW crm_internal.pipeline_actual IS 'The pipeline totals (per stage, owner, close month and currency) computed from the opportunities (a full GROUP BY): what crm_internal.pipeline_aggregate must add up to';
COMMENT ON COLUMN crm_internal.pipeline_actual.stage IS 'Opportunity stage';
COMMENT ON COLUMN crm_internal.pipeline_actual.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm_internal.pipeline_actual.close_month IS 'First day of the close month; infinity without a close date';
COMMENT ON COLUMN crm_internal.pipeline_actual.currency IS 'Currency of the amounts';
COMMENT ON COLUMN crm_internal.pipeline_actual.opportunities IS 'Number of opportunities';
COMMENT ON COLUMN crm_internal.pipeline_actual.amount IS 'Sum of amounts';
COMMENT ON COLUMN crm_internal.pipeline_actual.weighted_amount IS 'Sum of round(amount x probability / 100, 2)';

CREATE VIEW crm.pipeline_totals WITH (security_invoker = true) AS
    SELECT a.stage, pg_catalog.pg_get_userbyid(a.owner)::text AS owner, NULLIF(a.close_month, 'infinity'::pg_catalog.date) AS close_month, a.currency,
           pg_catalog.sum(a.opportunities)::bigint AS opportunities, pg_catalog.sum(a.amount) AS amount,
           pg_catalog.sum(a.weighted_amount) AS weighted_amount
      FROM crm_internal.pipeline_aggregate AS a
     GROUP BY a.stage, a.owner, a.close_month, a.currency
    HAVING pg_catalog.sum(a.opportunities) OPERATOR(pg_catalog.<>) 0;
COMMENT ON VIEW crm.pipeline_totals IS 'Pipeline totals per stage, owner, close month and currency (amounts in that currency), read from the maintained aggregate (stripes summed)';
COMMENT ON COLUMN crm.pipeline_totals.stage IS 'Opportunity stage';
COMMENT ON COLUMN crm.pipeline_totals.owner IS 'Opportunity owner: the role''s name, as text (the aggregate keeps a regrole)';
COMMENT ON COLUMN crm.pipeline_totals.close_month IS 'First day of the close month; NULL without a close date';
COMMENT ON COLUMN crm.pipeline_totals.currency IS 'Currency of the amounts';
COMMENT ON COLUMN crm.pipeline_totals.opportunities IS 'Number of opportunities';
COMMENT ON COLUMN crm.pipeline_totals.amount IS 'Sum of amounts';
COMMENT ON COLUMN crm.pipeline_totals.weighted_amount IS 'Sum of round(amount x probability / 100, 2)';

COMMENT ON TABLE crm_internal.account_aggregate IS 'Opportunities per account, owner, stage, close month and currency, one row per writing backend (stripe); sum over stripes to read (crm.account_rollup does, converting each group to the corporate currency); written only by the aggregates_ triggers';
COMMENT ON COLUMN crm_internal.account_aggregate.account_id IS 'The account';
COMMENT ON COLUMN crm_internal.account_aggregate.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm_internal.account_aggregate.stage IS 'Opportunity stage';
COMMENT ON COLUMN crm_internal.account_aggregate.close_month IS 'First day of the close month; infinity when the opportunity has no close date';
COMMENT ON COLUMN crm_internal.account_aggregate.currency IS 'Currency of the amounts (the opportunities'' currency); reports convert per group at read time';
COMMENT ON COLUMN crm_internal.account_aggregate.opportunities IS 'Change in the number of opportunities recorded by this stripe';
COMMENT ON COLUMN crm_internal.account_aggregate.amount IS 'Change in the sum of amounts recorded by this stripe';

COMMENT ON TABLE crm_internal.campaign_opportunity_aggregate IS 'Opportunities attributed to a campaign, per campaign, owner, stage, close month and currency, one row per writing backend (stripe); crm.campaign_performance converts each group to the corporate currency; written only by the aggregates_ triggers';
COMMENT ON COLUMN crm_internal.campaign_opportunity_aggregate.campaign_id IS 'The campaign';
COMMENT ON COLUMN crm_internal.campaign_opportunity_aggregate.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm_internal.campaign_opportunity_aggregate.stage IS 'Opportunity stage';
COMMENT ON COLUMN crm_internal.campaign_opportunity_aggregate.close_month IS 'First day of the close month; infinity when the opportunity has no close date';
COMMENT ON COLUMN crm_internal.campaign_opportunity_aggregate.currency IS 'Currency of the amounts (the opportunities'' currency); reports convert per group at read time';
COMMENT ON COLUMN crm_internal.campaign_opportunity_aggregate.opportunities IS 'Change in the number of opportunities recorded by this stripe';
COMMENT ON COLUMN crm_internal.campaign_opportunity_aggregate.amount IS 'Change in the sum of amounts recorded by this stripe';

COMMENT ON TABLE crm_internal.campaign_lead_aggregate IS 'Leads attributed to a campaign, per campaign, lead owner and lead status, one row per writing backend (stripe); written only by the aggregates_ triggers';
COMMENT ON COLUMN crm_internal.campaign_lead_aggregate.campaign_id IS 'The campaign';
COMMENT ON COLUMN crm_internal.campaign_lead_aggregate.owner IS 'Lead owner';
COMMENT ON COLUMN crm_internal.campaign_lead_aggregate.status IS 'Lead status';
COMMENT ON COLUMN crm_internal.campaign_lead_aggregate.leads IS 'Change in the number of leads recorded by this stripe';

COMMENT ON TABLE crm_internal.lead_funnel_aggregate IS 'Leads per owner, furthest status reached and current status, one row per writing backend (stripe); crm.sales_funnel counts from it the leads that reached each step, crm.sales_funnel_snapshot the leads in each status; written only by the aggregates_ triggers';
COMMENT ON COLUMN crm_internal.lead_funnel_aggregate.owner IS 'Lead owner';
COMMENT ON COLUMN crm_internal.lead_funnel_aggregate.furthest_status IS 'The furthest working status the leads reached (crm.lead.furthest_status)';
COMMENT ON COLUMN crm_internal.lead_funnel_aggregate.status IS 'Their status now (Not Qualified: they left the funnel)';
COMMENT ON COLUMN crm_internal.lead_funnel_aggregate.leads IS 'Change in the number of leads recorded by this stripe';

COMMENT ON TABLE crm_internal.opportunity_funnel_aggregate IS 'Opportunities per owner, furthest stage reached, current stage, close month and currency, one row per writing backend (stripe); crm.sales_funnel counts from it the deals that reached each stage and the lost ones, converting each group to the corporate currency; written only by the aggregates_ triggers';
COMMENT ON COLUMN crm_internal.opportunity_funnel_aggregate.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm_internal.opportunity_funnel_aggregate.furthest_stage IS 'The furthest stage the deals reached (crm.opportunity.furthest_stage)';
COMMENT ON COLUMN crm_internal.opportunity_funnel_aggregate.stage IS 'Their stage now';
COMMENT ON COLUMN crm_internal.opportunity_funnel_aggregate.close_month IS 'First day of the close month; infinity when the opportunity has no close date';
COMMENT ON COLUMN crm_internal.opportunity_funnel_aggregate.currency IS 'Currency of the amounts (the opportunities'' currency); reports convert per group at read time';
COMMENT ON COLUMN crm_internal.opportunity_funnel_aggregate.opportunities IS 'Change in the number of opportunities recorded by this stripe';
COMMENT ON COLUMN crm_internal.opportunity_funnel_aggregate.amount IS 'Change in the sum of amounts recorded by this stripe';

COMMENT ON TABLE crm_internal.lead_source_aggregate IS 'Leads per owner, lead source and lead status, one row per writing backend (stripe); sum over stripes to read (crm.lead_conversion_rates does, for its source, owner and campaign rows); written only by the aggregates_ triggers';
COMMENT ON COLUMN crm_internal.lead_source_aggregate.owner IS 'Lead owner';
COMMENT ON COLUMN crm_internal.lead_source_aggregate.source IS 'Lead source code (crm.lead_source)';
COMMENT ON COLUMN crm_internal.lead_source_aggregate.status IS 'Lead status';
COMMENT ON COLUMN crm_internal.lead_source_aggregate.leads IS 'Change in the number of leads recorded by this stripe';

COMMENT ON TABLE crm_internal.lead_month_aggregate IS 'Leads per month of capture (in UTC, whatever the session time zone), owner and lead status, one row per writing backend (stripe); sum over stripes to read (crm.lead_conversion_rates does, for its month rows); written only by the aggregates_ triggers';
COMMENT ON COLUMN crm_internal.lead_month_aggregate.created_month IS 'First day of the month the lead was created in, in UTC: date_trunc(''month'', created_at AT TIME ZONE ''UTC'')::date';
COMMENT ON COLUMN crm_internal.lead_month_aggregate.owner IS 'Lead owner';
COMMENT ON COLUMN crm_internal.lead_month_aggregate.status IS 'Lead status';
COMMENT ON COLUMN crm_internal.lead_month_aggregate.leads IS 'Change in the number of leads recorded by this stripe';

COMMENT ON TABLE crm_internal.sales_performance_aggregate IS 'Opportunities with a closing time (closed_at), per month of closing (in UTC), owner, stage, close month and currency, one row per writing backend (stripe); sum over stripes to read (crm.sales_performance does, keeping the closed stages as crm.opportunity_stage says at read time and converting each group to the corporate currency); written only by the aggregates_ triggers';
COMMENT ON COLUMN crm_internal.sales_performance_aggregate.closed_month IS 'First day of the month the opportunity was closed in, in UTC: date_trunc(''month'', closed_at AT TIME ZONE ''UTC'')::date';
COMMENT ON COLUMN crm_internal.sales_performance_aggregate.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm_internal.sales_performance_aggregate.stage IS 'Opportunity stage';
COMMENT ON COLUMN crm_internal.sales_performance_aggregate.close_month IS 'First day of the month of the close date; infinity when the opportunity has no close date (the month picks the exchange rate)';
COMMENT ON COLUMN crm_internal.sales_performance_aggregate.currency IS 'Currency of the amounts (the opportunities'' currency); the report converts per group at read time';
COMMENT ON COLUMN crm_internal.sales_performance_aggregate.opportunities IS 'Change in the number of opportunities recorded by this stripe';
COMMENT ON COLUMN crm_internal.sales_performance_aggregate.amount IS 'Change in the sum of amounts recorded by this stripe';
COMMENT ON COLUMN crm_internal.sales_performance_aggregate.cycle_seconds IS 'Change in the sum of the sales cycles, extract(epoch from closed_at - created_at) in seconds (exact to the microsecond), recorded by this stripe';

CREATE FUNCTION crm_internal.aggregates_maintain() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_aggregates_maintain'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.aggregates_maintain() IS 'AFTER statement trigger on crm.opportunity and crm.lead: folds the statement''s transition tables into per-group changes and adds them to the writing backend''s stripe of every aggregate the table feeds (TRUNCATE empties them)';

CREATE TRIGGER aggregates_opportunity_insert AFTER INSERT ON crm.opportunity
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.aggregates_maintain();
CREATE TRIGGER aggregates_opportunity_update AFTER UPDATE ON crm.opportunity
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.aggregates_maintain();
CREATE TRIGGER aggregates_opportunity_delete AFTER DELETE ON crm.opportunity
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.aggregates_maintain();
CREATE TRIGGER aggregates_opportunity_truncate AFTER TRUNCATE ON crm.opportunity
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.aggregates_maintain();
CREATE TRIGGER aggregates_lead_insert AFTER INSERT ON crm.lead
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.aggregates_maintain();
CREATE TRIGGER aggregates_lead_update AFTER UPDATE ON crm.lead
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.aggregates_maintain();
CREATE TRIGGER aggregates_lead_delete AFTER DELETE ON crm.lead
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.aggregates_maintain();
CREATE TRIGGER aggregates_lead_truncate AFTER TRUNCATE ON crm.lead
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.aggregates_maintain();

-- Every kept group (stripes summed) next to the same group computed from the
-- base tables; verify and rebuild are written from it.  An aggregate's
-- measures are, in order, its items (a count), amount and weighted amount
-- (the second sum: sales_performance's is its cycle seconds).
DO $compared$
DECLARE
    kept text;
    actual text;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.format(
               'SELECT %L::text AS aggregate, pg_catalog.jsonb_build_object(%s) AS group_key, %s'
               ' FROM crm_internal.%I AS g GROUP BY %s',
               d.aggregate, x.group_key, x.kept, d.aggregate_table, x.group_columns), ' UNION ALL ' ORDER BY d.ordinality),
           pg_catalog.string_agg(pg_catalog.format(
               'SELECT %L::text AS aggregate, pg_catalog.jsonb_build_object(%s) AS group_key, %s FROM (%s) AS g',
               d.aggregate, x.group_key, x.actual, d.actual_query), ' UNION ALL ' ORDER BY d.ordinality)
      INTO kept, actual
      FROM crm_internal.aggregate_definitions() WITH ORDINALITY AS d
     CROSS JOIN LATERAL (
           -- (a close month without a close date, infinity in the tables,
           -- is null in the group key: no client reads an infinite date)
           SELECT (SELECT pg_catalog.string_agg(CASE WHEN c.t OPERATOR(pg_catalog.=) 'pg_catalog.date'::pg_catalog.regtype
                                                     THEN pg_catalog.format('%L, NULLIF(g.%I, ''infinity''::pg_catalog.date)', c.c, c.c)
                                                     ELSE pg_catalog.format('%L, g.%I', c.c, c.c) END, ', ' ORDER BY c.i)
                     FROM ROWS FROM (pg_catalog.unnest(d.group_columns), pg_catalog.unnest(d.group_types)) WITH ORDINALITY AS c (c, t, i)) AS group_key,
                  (SELECT pg_catalog.string_agg(pg_catalog.format('g.%I', c), ', ' ORDER BY c.i)
                     FROM pg_catalog.unnest(d.group_columns) WITH ORDINALITY AS c (c, i)) AS group_columns,
                  (SELECT pg_catalog.string_agg(CASE WHEN d.measures[m.i] IS NULL THEN 'NULL::numeric'
                                                     ELSE pg_catalog.format('pg_catalog.sum(g.%I)::numeric', d.measures[m.i])
                                                END || ' AS ' || m.name, ', ' ORDER BY m.i)
                     FROM pg_catalog.unnest(ARRAY['items', 'amount', 'weighted_amount']) WITH ORDINALITY AS m (name, i)) AS kept,
                  (SELECT pg_catalog.string_agg(CASE WHEN d.measures[m.i] IS NULL THEN 'NULL::numeric'
                                                     ELSE pg_catalog.format('g.%I::numeric', d.measures[m.i])
                                                END || ' AS ' || m.name, ', ' ORDER BY m.i)
                     FROM pg_catalog.unnest(ARRAY['items', 'amount', 'weighted_amount']) WITH ORDINALITY AS m (name, i)) AS actual
           ) AS x;
    EXECUTE pg_catalog.format(
        'CREATE OR REPLACE VIEW crm_internal.aggregates_compared WITH (security_invoker = true) AS'
        ' WITH kept AS (%s), actual AS (%s)'
        ' SELECT COALESCE(k.aggregate, a.aggregate) AS aggregate, COALESCE(k.group_key, a.group_key) AS group_key,'
        '        COALESCE(k.items, 0) AS kept_items, COALESCE(a.items, 0) AS actual_items,'
        '        COALESCE(k.amount, 0) AS kept_amount, COALESCE(a.amount, 0) AS actual_amount,'
        '        COALESCE(k.weighted_amount, 0) AS kept_weighted_amount,'
        '        COALESCE(a.weighted_amount, 0) AS actual_weighted_amount'
        '   FROM kept AS k'
        '   FULL JOIN actual AS a'
        '     ON a.aggregate OPERATOR(pg_catalog.=) k.aggregate AND a.group_key OPERATOR(pg_catalog.=) k.group_key',
        kept, actual);
END
$compared$;
COMMENT ON VIEW crm_internal.aggregates_compared IS 'Every group of every maintained aggregate, kept (stripes summed) next to a fresh GROUP BY over the base tables; a full scan, for checking only';
COMMENT ON COLUMN crm_internal.aggregates_compared.aggregate IS 'pipeline, account, campaign_opportunity, campaign_lead, lead_funnel, opportunity_funnel, lead_source, lead_month or sales_performance';
COMMENT ON COLUMN crm_internal.aggregates_compared.group_key IS 'The group, as a JSON object of its key columns (a close month is null for the deals without a close date)';
COMMENT ON COLUMN crm_internal.aggregates_compared.kept_items IS 'Opportunities (or leads) in the group, as kept';
COMMENT ON COLUMN crm_internal.aggregates_compared.actual_items IS 'Opportunities (or leads) in the group, counted now';
COMMENT ON COLUMN crm_internal.aggregates_compared.kept_amount IS 'Sum of amounts, as kept (0 where the aggregate has none)';
COMMENT ON COLUMN crm_internal.aggregates_compared.actual_amount IS 'Sum of amounts, computed now';
COMMENT ON COLUMN crm_internal.aggregates_compared.kept_weighted_amount IS 'The aggregate''s second sum, as kept: weighted amounts (pipeline), sales cycle seconds (sales_performance); 0 where it has none';
COMMENT ON COLUMN crm_internal.aggregates_compared.actual_weighted_amount IS 'The second sum, computed now';

-- crm.verify_aggregates() is in 90_reports.sql: it checks the reports'
-- currency conversion too.

CREATE FUNCTION crm.rebuild_aggregates() RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    agg record;
    n bigint;
    total bigint := 0;
BEGIN
    -- the lock of compactions and of everything that settles accounts
    -- (88_aggregates_top_accounts.sql), first, as they take it
    PERFORM crm_internal.aggregates_compaction_lock();
    -- writers wait until the rebuild commits; readers keep reading
    EXECUTE (SELECT format('LOCK TABLE %s IN SHARE MODE', string_agg(DISTINCT format('crm.%I', d.source_table), ', '))
               FROM crm_internal.aggregate_definitions() AS d);
    EXECUTE (SELECT format('LOCK TABLE %s IN EXCLUSIVE MODE',
                           string_agg(format('crm_internal.%I', d.aggregate_table), ', ' ORDER BY d.ordinality))
               FROM crm_internal.aggregate_definitions() WITH ORDINALITY AS d);
    FOR agg IN SELECT * FROM crm_internal.aggregate_definitions() LOOP
        EXECUTE format('DELETE FROM crm_internal.%I', agg.aggregate_table);
    END LOOP;
    -- one row per group of the GROUP BY the aggregate must add up to
    FOR agg IN SELECT * FROM crm_internal.aggregate_definitions() LOOP
        EXECUTE format('INSERT INTO crm_internal.%1$I (%2$s, stripe, %3$s) SELECT %2$s, 0, %3$s FROM (%4$s) AS a',
                       agg.aggregate_table,
                       (SELECT string_agg(format('%I', c), ', ' ORDER BY c.i)
                          FROM unnest(agg.group_columns) WITH ORDINALITY AS c (c, i)),
                       (SELECT string_agg(format('%I', m), ', ' ORDER BY m.i)
                          FROM unnest(agg.measures) WITH ORDINALITY AS m (m, i)),
                       agg.actual_query);
        GET DIAGNOSTICS n = ROW_COUNT;
        total := total + n;
    END LOOP;
    -- the stage passages (88_stage_velocity.sql), from the history
    LOCK TABLE crm_internal.stage_velocity_aggregate IN EXCLUSIVE MODE;
    DELETE FROM crm_internal.stage_velocity_aggregate;
    INSERT INTO crm_internal.stage_velocity_aggregate (stage, owner, stripe, passages, seconds)
    SELECT a.stage, a.owner, 0, a.passages, a.seconds FROM crm_internal.stage_velocity_actual AS a;
    GET DIAGNOSTICS n = ROW_COUNT;
    total := total + n;
    PERFORM crm_internal.account_settle(NULL);
    RETURN total;
END
$$;
COMMENT ON FUNCTION crm.rebuild_aggregates() IS 'Recomputes every aggregate from the base tables into one row per group (stripe 0), folding all stripes and dropping groups that emptied; returns the number of groups. Blocks writers of leads and opportunities until it commits. Runs as the extension owner (it reads every row and writes the aggregates, which nobody else may); admins only.';

CREATE FUNCTION crm_internal.aggregates_compaction_lock() RETURNS void
    AS 'MODULE_PATHNAME', 'crm_aggregates_compaction_lock'
    LANGUAGE C VOLATILE;
COMMENT ON FUNCTION crm_internal.aggregates_compaction_lock() IS 'Used by crm.compact_aggregates(): takes the lock that lets one compaction run at a time, until the transaction ends (a lock no SQL command or advisory lock function can take, and no maintenance command waits for)';

CREATE FUNCTION crm.compact_aggregates() RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    agg record;
    keys text;
    moved_keys text[];
    total bigint := 0;
    n bigint;
BEGIN
    -- One compaction at a time: a lock only compactions take, first, while
    -- this transaction holds no other.
    PERFORM crm_internal.aggregates_compaction_lock();
    -- A TRUNCATE of the base tables (which empties the aggregates) waits for
    -- the compaction and vice versa.
    EXECUTE (SELECT format('LOCK TABLE %s IN ACCESS SHARE MODE', string_agg(DISTINCT format('crm.%I', d.source_table), ', '))
               FROM crm_internal.aggregate_definitions() AS d);
    -- Every table it writes up front, in the order writers and
    -- crm.rebuild_aggregates() lock them, in the mode writers take.  ROW
    -- EXCLUSIVE conflicts with nothing REINDEX CONCURRENTLY, CREATE INDEX
    -- CONCURRENTLY, VACUUM or ANALYZE hold, which wait for this transaction's
    -- snapshot: waiting for them would be a deadlock.  It waits only for
    -- VACUUM FULL, CLUSTER, REINDEX, TRUNCATE and a rebuild, which wait for
    -- no snapshot, and never for a table lock once the work has begun.
    EXECUTE (SELECT format('LOCK TABLE %s IN ROW EXCLUSIVE MODE',
                           string_agg(format('crm_internal.%I', d.aggregate_table), ', ' ORDER BY d.ordinality))
               FROM crm_internal.aggregate_definitions() WITH ORDINALITY AS d);
    -- Per aggregate table: move every stripe row that no open transaction
    -- is writing into stripe 0 (rows a writer holds are skipped and moved
    -- next time), then drop stripe-0 rows that add up to nothing.  Writers
    -- only ever touch their own stripes, never stripe 0, and write to another
    -- of theirs rather than wait for a row the compaction holds, so nobody
    -- waits for a compaction.
    FOR agg IN SELECT * FROM crm_internal.aggregate_definitions() LOOP
        keys := (SELECT string_agg(format('%I', c), ', ' ORDER BY c.i)
                   FROM unnest(agg.group_columns) WITH ORDINALITY AS c (c, i));
        -- (returns the first keys of the groups moved: the accounts whose
        -- settled figures change, see 88_aggregates_top_accounts.sql)
        EXECUTE format(
            'WITH moved AS ('
            '    DELETE FROM crm_internal.%1$I AS a'
            '     WHERE a.ctid OPERATOR(pg_catalog.=) ANY (ARRAY('
            '               SELECT x.ctid FROM crm_internal.%1$I AS x'
            '                WHERE x.stripe OPERATOR(pg_catalog.<>) 0 FOR UPDATE SKIP LOCKED))'
            '    RETURNING a.*),'
            ' folded AS ('
            '    INSERT INTO crm_internal.%1$I AS t (%2$s, stripe, %3$s)'
            '    SELECT %2$s, 0, %4$s FROM moved GROUP BY %2$s'
            '    ON CONFLICT (%2$s, stripe) DO UPDATE SET %5$s)'
            ' SELECT ARRAY(SELECT DISTINCT m.%6$I::text FROM moved AS m)',
            agg.aggregate_table, keys,
            (SELECT string_agg(format('%I', m), ', ' ORDER BY m.i)
               FROM unnest(agg.measures) WITH ORDINALITY AS m (m, i)),
            (SELECT string_agg(format('pg_catalog.sum(%I)', m), ', ' ORDER BY m.i)
               FROM unnest(agg.measures) WITH ORDINALITY AS m (m, i)),
            (SELECT string_agg(format('%1$I = t.%1$I OPERATOR(pg_catalog.+) EXCLUDED.%1$I', m), ', ' ORDER BY m.i)
               FROM unnest(agg.measures) WITH ORDINALITY AS m (m, i)),
            agg.group_columns[1]) INTO moved_keys;
        IF agg.aggregate OPERATOR(pg_catalog.=) 'account' THEN
            PERFORM crm_internal.account_settle(moved_keys::bigint[]);
        END IF;
        EXECUTE format('DELETE FROM crm_internal.%I AS a WHERE a.stripe OPERATOR(pg_catalog.=) 0 AND %s', agg.aggregate_table,
                       (SELECT string_agg(format('a.%I OPERATOR(pg_catalog.=) 0', m), ' AND ' ORDER BY m.i)
                          FROM unnest(agg.measures) WITH ORDINALITY AS m (m, i)));
        EXECUTE format('SELECT pg_catalog.count(*) FROM crm_internal.%I', agg.aggregate_table) INTO n;
        total := total + n;
    END LOOP;
    -- the stage passages (88_stage_velocity.sql, written after the others
    -- by the same statements), the same way
    LOCK TABLE crm_internal.stage_velocity_aggregate IN ROW EXCLUSIVE MODE;
    WITH moved AS (
        DELETE FROM crm_internal.stage_velocity_aggregate AS a
         WHERE a.ctid OPERATOR(pg_catalog.=) ANY (ARRAY(
                   SELECT x.ctid FROM crm_internal.stage_velocity_aggregate AS x
                    WHERE x.stripe OPERATOR(pg_catalog.<>) 0 FOR UPDATE SKIP LOCKED))
        RETURNING a.*)
    INSERT INTO crm_internal.stage_velocity_aggregate AS t (stage, owner, stripe, passages, seconds)
    SELECT m.stage, m.owner, 0, pg_catalog.sum(m.passages), pg_catalog.sum(m.seconds) FROM moved AS m GROUP BY m.stage, m.owner
    ON CONFLICT (stage, owner, stripe) DO UPDATE
       SET passages = t.passages OPERATOR(pg_catalog.+) EXCLUDED.passages, seconds = t.seconds OPERATOR(pg_catalog.+) EXCLUDED.seconds;
    DELETE FROM crm_internal.stage_velocity_aggregate AS a
     WHERE a.stripe OPERATOR(pg_catalog.=) 0 AND a.passages OPERATOR(pg_catalog.=) 0 AND a.seconds OPERATOR(pg_catalog.=) 0;
    total := total + (SELECT pg_catalog.count(*) FROM crm_internal.stage_velocity_aggregate);
    RETURN total;
END
$$;
COMMENT ON FUNCTION crm.compact_aggregates() IS 'Folds the per-backend stripes of every aggregate into one row per group (stripe 0) and drops groups that add up to nothing, without blocking writers (rows a running transaction is writing are left for the next call); returns the number of aggregate rows left. Totals do not change; reads get faster. Run it periodically (e.g. every few minutes) on busy systems, in a transaction of its own: the rows it folds stay locked until its transaction ends. Admins only.';

-- Per account, computed from the groups: the open and won opportunities
-- and their amounts in the corporate currency, unrounded (crm.account_rollup,
-- 88_aggregates_top_accounts.sql, rounds them once), each group of the
-- aggregate (one close month, one currency) converted at read time with
-- crm.exchange_rate_on() (ZC120 when a rate is missing), and the deals'
-- currency and the amounts in it when the open and won deals all share one.
-- A filter on account_id reaches the groups (the aggregate's primary key
-- starts with account_id): crm.account_rollup reads it, one account at a
-- time, only for the accounts whose settled figures are not current
-- (pending), about 0.1 ms per account (a rate lookup per group).  An account without
-- open or won deals the caller sees has no row.
CREATE VIEW crm_internal.account_rollup_live WITH (security_invoker = true) AS
    SELECT g.account_id,
           pg_catalog.sum(g.opportunities) FILTER (WHERE NOT g.is_closed) AS open_opportunities,
           pg_catalog.sum(g.amount OPERATOR(pg_catalog.*) g.rate) FILTER (WHERE NOT g.is_closed) AS open_amount,
           pg_catalog.sum(g.opportunities) FILTER (WHERE g.is_won) AS won_opportunities,
           pg_catalog.sum(g.amount OPERATOR(pg_catalog.*) g.rate) FILTER (WHERE g.is_won) AS won_amount,
           CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                THEN pg_catalog.min(g.currency) END AS currency,
           CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE NOT g.is_closed), 0) END AS open_amount_in_currency,
           CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE g.is_won), 0) END AS won_amount_in_currency
      FROM (SELECT a.account_id, a.currency, s.is_closed, s.is_won,
                   pg_catalog.sum(a.opportunities) AS opportunities, pg_catalog.sum(a.amount) AS amount,
                   crm.exchange_rate_on(a.currency, NULLIF(a.close_month, 'infinity'::pg_catalog.date)) AS rate
              FROM crm_internal.account_aggregate AS a
              JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) a.stage
             WHERE s.is_won OR NOT s.is_closed
             GROUP BY a.account_id, a.stage, a.close_month, a.currency, s.is_closed, s.is_won
            HAVING pg_catalog.sum(a.opportunities) OPERATOR(pg_catalog.<>) 0) AS g
     GROUP BY g.account_id;
COMMENT ON VIEW crm_internal.account_rollup_live IS 'Per account, the figures crm.account_rollup shows, computed from the aggregate groups the caller sees at read time (each group converted at the rate of its close month, ZC120 when one is missing), amounts unrounded: crm.account_rollup reads it for the accounts whose settled figures are not current';
COMMENT ON COLUMN crm_internal.account_rollup_live.account_id IS 'The account';
COMMENT ON COLUMN crm_internal.account_rollup_live.open_opportunities IS 'Opportunities in a stage that is not closed';
COMMENT ON COLUMN crm_internal.account_rollup_live.open_amount IS 'Their amount, in the corporate currency, unrounded';
COMMENT ON COLUMN crm_internal.account_rollup_live.won_opportunities IS 'Opportunities won';
COMMENT ON COLUMN crm_internal.account_rollup_live.won_amount IS 'Their amount, in the corporate currency, unrounded';
COMMENT ON COLUMN crm_internal.account_rollup_live.currency IS 'Currency of the open and won deals when they all share one; NULL when mixed';
COMMENT ON COLUMN crm_internal.account_rollup_live.open_amount_in_currency IS 'Amount of the open deals in that currency (NULL when mixed)';
COMMENT ON COLUMN crm_internal.account_rollup_live.won_amount_in_currency IS 'Amount of the won deals in that currency (NULL when mixed)';
-- (security_invoker: the caller's own rights and row-level security apply)
GRANT SELECT ON crm_internal.account_rollup_live TO crm_admin, crm_manager, crm_sales, crm_analyst;
