--------------------------------------------------------------------------
-- Reporting views for BI tools
--
-- Plain views over the base tables, security_invoker so that whatever
-- row-level security applies to the querying role applies to them too.
-- The pipeline, forecast, campaign, lead conversion and sales performance
-- views read the aggregates that the aggregates_ triggers keep
-- (88_aggregates.sql); the others compute from the base tables.  Every amount is in the corporate currency: the aggregates
-- are grouped by currency and close month and converted per group at read
-- time; the views over base tables convert each row at
-- crm.exchange_rate_on(currency, day) (an opportunity at its close date, an
-- order at the day it was made).  Where a row of a report has deals of one
-- currency only, that currency and the amounts in it are beside the
-- converted ones.
--------------------------------------------------------------------------

-- The funnel (issue 22 §2): per step in pipeline order, the leads and the
-- opportunities that reached it -- their furthest step (crm.lead.
-- furthest_status, crm.opportunity.furthest_stage, 31_furthest_step.sql)
-- is that step or a later one -- so the counts never widen down the
-- funnel; the exits (Not Qualified leads, lost deals, by the step they are
-- in now) are rows of their own.  Read from the funnel aggregates: time
-- proportional to the groups (owner x furthest step x step x close month x
-- currency), not to the records; the deals' amounts converted per group at
-- read time like crm.pipeline_by_stage.  Every step appears, with 0 when no
-- record reached it (inactive stages only while records reached them or
-- are in them).
CREATE VIEW crm.sales_funnel WITH (security_invoker = true) AS
    WITH lead_groups AS (
        SELECT a.furthest_status, a.status, pg_catalog.sum(a.leads) AS leads
          FROM crm_internal.lead_funnel_aggregate AS a
         GROUP BY a.furthest_status, a.status
        HAVING pg_catalog.sum(a.leads) OPERATOR(pg_catalog.<>) 0),
    deal_groups AS (
        SELECT a.furthest_stage, a.stage, a.close_month, a.currency,
               pg_catalog.sum(a.opportunities) AS opportunities, pg_catalog.sum(a.amount) AS amount
          FROM crm_internal.opportunity_funnel_aggregate AS a
         GROUP BY a.furthest_stage, a.stage, a.close_month, a.currency
        HAVING pg_catalog.sum(a.opportunities) OPERATOR(pg_catalog.<>) 0),
    deals AS (
        SELECT g.furthest_stage, g.stage, g.currency, g.opportunities, g.amount,
               g.amount OPERATOR(pg_catalog.*) x.rate AS converted,
               f.sort_order AS furthest_order, COALESCE(f.is_won, false) AS furthest_won
          FROM deal_groups AS g
          LEFT JOIN crm.opportunity_stage AS f ON f.name OPERATOR(pg_catalog.=) g.furthest_stage
          JOIN (SELECT c.currency, c.close_month,
                       crm.exchange_rate_on(c.currency, NULLIF(c.close_month, 'infinity'::pg_catalog.date)) AS rate
                  FROM (SELECT DISTINCT d.currency, d.close_month FROM deal_groups AS d) AS c) AS x
            ON x.currency OPERATOR(pg_catalog.=) g.currency AND x.close_month OPERATOR(pg_catalog.=) g.close_month)
    SELECT 1 AS position, e.step_order::integer AS step_order, 'lead'::text AS kind, e.status::text AS step,
           e.status OPERATOR(pg_catalog.=) 'Not Qualified'::crm.lead_status AS is_exit,
           COALESCE(pg_catalog.sum(g.leads), 0)::bigint AS items,
           NULL::numeric AS amount, NULL::text AS currency, NULL::numeric AS amount_in_currency
      FROM pg_catalog.unnest(pg_catalog.enum_range(NULL::crm.lead_status)) WITH ORDINALITY AS e (status, step_order)
      LEFT JOIN lead_groups AS g
        ON CASE WHEN e.status OPERATOR(pg_catalog.=) 'Not Qualified'::crm.lead_status
                THEN g.status OPERATOR(pg_catalog.=) e.status
                ELSE g.furthest_status OPERATOR(pg_catalog.>=) e.status END
     GROUP BY e.status, e.step_order
    UNION ALL
    SELECT 2, s.sort_order, 'opportunity', s.name, s.is_closed AND NOT s.is_won,
           COALESCE(pg_catalog.sum(d.opportunities), 0)::bigint,
           COALESCE(pg_catalog.round(pg_catalog.sum(d.converted), 2), 0.00),
           CASE WHEN pg_catalog.min(d.currency) OPERATOR(pg_catalog.=) pg_catalog.max(d.currency) THEN pg_catalog.min(d.currency) END,
           CASE WHEN pg_catalog.min(d.currency) OPERATOR(pg_catalog.=) pg_catalog.max(d.currency) THEN pg_catalog.sum(d.amount) END
      FROM crm.opportunity_stage AS s
      LEFT JOIN deals AS d
        ON CASE WHEN s.is_won THEN d.furthest_stage OPERATOR(pg_catalog.=) s.name
                WHEN s.is_closed THEN d.stage OPERATOR(pg_catalog.=) s.name
                ELSE d.furthest_won OR d.furthest_order OPERATOR(pg_catalog.>=) s.sort_order END
     GROUP BY s.name, s.sort_order, s.is_closed, s.is_won
    HAVING s.active OR pg_catalog.count(d.stage) OPERATOR(pg_catalog.>) 0;
COMMENT ON VIEW crm.sales_funnel IS 'Sales funnel: per step in pipeline order, the leads and opportunities that reached it (their furthest status or stage is that step or a later one), so the counts never widen down the funnel; the exits are rows of their own (is_exit: leads Not Qualified now, deals in a lost stage now). ORDER BY position, is_exit, step_order. Amounts in the corporate currency (each deal at the rate of its close month, the latest rate without a close date), and in the deals'' own currency when a step has one currency only. Read from the maintained funnel aggregates (O(groups)); a rep sees their own records, a manager their team''s. Today''s records by status and stage: crm.sales_funnel_snapshot';
COMMENT ON COLUMN crm.sales_funnel.position IS '1 lead steps, 2 opportunity steps';
COMMENT ON COLUMN crm.sales_funnel.step_order IS 'Order of the step within its part: the lead status''s position in crm.lead_status, the stage''s sort_order';
COMMENT ON COLUMN crm.sales_funnel.kind IS 'lead or opportunity';
COMMENT ON COLUMN crm.sales_funnel.step IS 'Lead status or opportunity stage';
COMMENT ON COLUMN crm.sales_funnel.is_exit IS 'False for a step of the funnel (records that reached it); true for an exit (records that left the funnel there and are there now: Not Qualified leads, deals in a lost stage)';
COMMENT ON COLUMN crm.sales_funnel.items IS 'For a step: leads or opportunities that reached it (furthest step at or beyond it); for an exit: those in it now';
COMMENT ON COLUMN crm.sales_funnel.amount IS 'Total amount of those opportunities, in the corporate currency, 0.00 when none (NULL for lead rows)';
COMMENT ON COLUMN crm.sales_funnel.currency IS 'Currency of those opportunities when they all share one; NULL when mixed, none, or a lead row';
COMMENT ON COLUMN crm.sales_funnel.amount_in_currency IS 'Their total amount in that currency (NULL when mixed or none)';

-- Today's records by where they are now (the funnel before 0.7): leads by
-- current status, opportunities by current stage, the won total; from the
-- lead funnel and pipeline aggregates (O(groups)).  Every status and every
-- active stage appears, with 0 when empty.
CREATE VIEW crm.sales_funnel_snapshot WITH (security_invoker = true) AS
    WITH lead_groups AS (
        SELECT a.status, pg_catalog.sum(a.leads) AS leads
          FROM crm_internal.lead_funnel_aggregate AS a
         GROUP BY a.status),
    deals AS (
        SELECT t.stage, t.currency, t.opportunities, t.amount, t.amount OPERATOR(pg_catalog.*) r.rate AS converted
          FROM crm.pipeline_totals AS t
         CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(t.currency, t.close_month) AS rate) AS r)
    SELECT 1 AS position, e.step_order::integer AS step_order, 'lead'::text AS kind, e.status::text AS step,
           COALESCE(pg_catalog.sum(g.leads), 0)::bigint AS items,
           NULL::numeric AS amount, NULL::text AS currency, NULL::numeric AS amount_in_currency
      FROM pg_catalog.unnest(pg_catalog.enum_range(NULL::crm.lead_status)) WITH ORDINALITY AS e (status, step_order)
      LEFT JOIN lead_groups AS g ON g.status OPERATOR(pg_catalog.=) e.status
     GROUP BY e.status, e.step_order
    UNION ALL
    SELECT 2, s.sort_order, 'opportunity', s.name,
           COALESCE(pg_catalog.sum(d.opportunities), 0)::bigint,
           COALESCE(pg_catalog.round(pg_catalog.sum(d.converted), 2), 0.00),
           CASE WHEN pg_catalog.min(d.currency) OPERATOR(pg_catalog.=) pg_catalog.max(d.currency) THEN pg_catalog.min(d.currency) END,
           CASE WHEN pg_catalog.min(d.currency) OPERATOR(pg_catalog.=) pg_catalog.max(d.currency) THEN pg_catalog.sum(d.amount) END
      FROM crm.opportunity_stage AS s LEFT JOIN deals AS d ON d.stage OPERATOR(pg_catalog.=) s.name
     GROUP BY s.name, s.sort_order
    HAVING s.active OR pg_catalog.count(d.stage) OPERATOR(pg_catalog.>) 0
    UNION ALL
    SELECT 3, 1, 'won', 'Won', COALESCE(pg_catalog.sum(d.opportunities), 0)::bigint,
           COALESCE(pg_catalog.round(pg_catalog.sum(d.converted), 2), 0.00),
           CASE WHEN pg_catalog.min(d.currency) OPERATOR(pg_catalog.=) pg_catalog.max(d.currency) THEN pg_catalog.min(d.currency) END,
           CASE WHEN pg_catalog.min(d.currency) OPERATOR(pg_catalog.=) pg_catalog.max(d.currency) THEN pg_catalog.sum(d.amount) END
      FROM deals AS d JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) d.stage
     WHERE s.is_won;
COMMENT ON VIEW crm.sales_funnel_snapshot IS 'Where the records are now: leads by current status, opportunities by current stage, won deals; ORDER BY position, step_order. Amounts in the corporate currency (each deal at the rate of its close month, the latest rate without a close date), and in the deals'' own currency when a step has one currency only. Read from the maintained aggregates (O(groups)). How many reached each step: crm.sales_funnel';
COMMENT ON COLUMN crm.sales_funnel_snapshot.position IS '1 leads, 2 opportunities, 3 won';
COMMENT ON COLUMN crm.sales_funnel_snapshot.step_order IS 'Order of the step within its part: the lead status''s position in crm.lead_status, the stage''s sort_order';
COMMENT ON COLUMN crm.sales_funnel_snapshot.kind IS 'lead, opportunity or won';
COMMENT ON COLUMN crm.sales_funnel_snapshot.step IS 'Lead status or opportunity stage (Won for the won total)';
COMMENT ON COLUMN crm.sales_funnel_snapshot.items IS 'Number of leads or opportunities in the step now (0 when none)';
COMMENT ON COLUMN crm.sales_funnel_snapshot.amount IS 'Total opportunity amount in the step, in the corporate currency, 0.00 when none (NULL for lead steps)';
COMMENT ON COLUMN crm.sales_funnel_snapshot.currency IS 'Currency of the step''s opportunities when they all share one; NULL when mixed, empty or a lead step';
COMMENT ON COLUMN crm.sales_funnel_snapshot.amount_in_currency IS 'Their total amount in that currency (NULL when mixed or empty)';

-- Read from the maintained aggregates (stripes summed): time proportional to
-- the number of groups, not of leads.  Sources and owners from
-- crm_internal.lead_source_aggregate, months from crm_internal.lead_month_aggregate,
-- campaigns from crm_internal.campaign_lead_aggregate; the leads without a
-- campaign ('(none)') are all leads less those of a campaign, per owner
-- (the aggregates are read under the same row-level security, by owner).
-- The month of capture is the month in UTC, whatever the session's
-- TimeZone.
CREATE VIEW crm.lead_conversion_rates WITH (security_invoker = true) AS
    WITH by_source AS (
        SELECT a.owner, a.source, pg_catalog.sum(a.leads) AS leads,
               COALESCE(pg_catalog.sum(a.leads) FILTER (WHERE a.status OPERATOR(pg_catalog.=) 'Converted'::crm.lead_status), 0) AS converted
          FROM crm_internal.lead_source_aggregate AS a
         GROUP BY a.owner, a.source),
    by_campaign AS (
        SELECT a.campaign_id, pg_catalog.sum(a.leads) AS leads,
               COALESCE(pg_catalog.sum(a.leads) FILTER (WHERE a.status OPERATOR(pg_catalog.=) 'Converted'::crm.lead_status), 0) AS converted
          FROM crm_internal.campaign_lead_aggregate AS a
         GROUP BY a.campaign_id),
    groups AS (
        SELECT 'source'::text AS dimension, s.source AS value, pg_catalog.sum(s.leads) AS leads, pg_catalog.sum(s.converted) AS converted
          FROM by_source AS s GROUP BY s.source
        UNION ALL
        SELECT 'owner', s.owner::text, pg_catalog.sum(s.leads), pg_catalog.sum(s.converted)
          FROM by_source AS s GROUP BY s.owner
        UNION ALL
        SELECT 'campaign', COALESCE(c.name, '(none)'), g.leads, g.converted
          FROM by_campaign AS g LEFT JOIN crm.campaign AS c ON c.id OPERATOR(pg_catalog.=) g.campaign_id
        UNION ALL
        SELECT 'campaign', '(none)',
               (SELECT pg_catalog.sum(s.leads) FROM by_source AS s) OPERATOR(pg_catalog.-) COALESCE((SELECT pg_catalog.sum(g.leads) FROM by_campaign AS g), 0),
               (SELECT pg_catalog.sum(s.converted) FROM by_source AS s) OPERATOR(pg_catalog.-) COALESCE((SELECT pg_catalog.sum(g.converted) FROM by_campaign AS g), 0)
        UNION ALL
        SELECT 'month', pg_catalog.to_char(a.created_month, 'YYYY-MM'), pg_catalog.sum(a.leads),
               COALESCE(pg_catalog.sum(a.leads) FILTER (WHERE a.status OPERATOR(pg_catalog.=) 'Converted'::crm.lead_status), 0)
          FROM crm_internal.lead_month_aggregate AS a GROUP BY a.created_month)
    SELECT g.dimension, g.value, g.leads::bigint AS leads, g.converted::bigint AS converted,
           pg_catalog.round(g.converted OPERATOR(pg_catalog./) g.leads, 4) AS conversion_rate
      FROM groups AS g
     WHERE g.leads OPERATOR(pg_catalog.<>) 0;
COMMENT ON VIEW crm.lead_conversion_rates IS 'Share of leads converted, by source, by owner, by campaign and by month of capture (the month in UTC, whatever the session time zone); read from the maintained aggregates (time grows with the groups, not the leads); each role sees the leads it may read';
COMMENT ON COLUMN crm.lead_conversion_rates.dimension IS 'source, owner, campaign or month';
COMMENT ON COLUMN crm.lead_conversion_rates.value IS 'The source code, owner (the role, as regrole text), campaign name or month of capture in UTC (YYYY-MM); (none) for leads without a campaign';
COMMENT ON COLUMN crm.lead_conversion_rates.leads IS 'Leads in the group';
COMMENT ON COLUMN crm.lead_conversion_rates.converted IS 'Of those, converted';
COMMENT ON COLUMN crm.lead_conversion_rates.conversion_rate IS 'converted / leads, 0-1';

-- Amounts in the corporate currency: each group of the aggregate (one close
-- month, one currency: one rate, since rates change on the first of a month)
-- converted at read time, summed exactly, rounded once; the amounts in the
-- deals' own currency beside them.
CREATE VIEW crm.pipeline_by_stage WITH (security_invoker = true) AS
    WITH totals AS (
        SELECT s.sort_order, s.name AS stage, s.is_closed, s.is_won, t.owner,
               pg_catalog.sum(t.opportunities)::bigint AS opportunities,
               pg_catalog.round(pg_catalog.sum(t.amount OPERATOR(pg_catalog.*) r.rate), 2) AS amount,
               pg_catalog.round(pg_catalog.sum(t.weighted_amount OPERATOR(pg_catalog.*) r.rate), 2) AS weighted_amount,
               t.currency,
               pg_catalog.sum(t.amount) AS amount_in_currency,
               pg_catalog.sum(t.weighted_amount) AS weighted_amount_in_currency
          FROM crm.pipeline_totals AS t JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) t.stage
         CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(t.currency, t.close_month) AS rate) AS r
         GROUP BY s.sort_order, s.name, s.is_closed, s.is_won, t.owner, t.currency)
    SELECT t.sort_order, t.stage, t.is_closed, t.is_won, t.owner, t.opportunities, t.amount, t.weighted_amount,
           t.currency, t.amount_in_currency, t.weighted_amount_in_currency
      FROM totals AS t
    UNION ALL
    -- an active stage without deals (that the reader sees): one row of zeros
    SELECT s.sort_order, s.name, s.is_closed, s.is_won, NULL::text, 0::bigint, 0.00::numeric, 0.00::numeric,
           NULL::text, 0.00::numeric, 0.00::numeric
      FROM crm.opportunity_stage AS s
     WHERE s.active AND NOT EXISTS (SELECT 1 FROM totals AS t WHERE t.stage OPERATOR(pg_catalog.=) s.name);
COMMENT ON VIEW crm.pipeline_by_stage IS 'Pipeline by stage, owner and currency: number of opportunities, amount and probability-weighted amount in the corporate currency (each deal at the rate of its close month, the latest rate without a close date) and in the deals'' currency, read from the maintained aggregate. Every active stage appears: one without deals (that the reader sees) as one row with owner and currency NULL, counts 0 and amounts 0.00';
COMMENT ON COLUMN crm.pipeline_by_stage.sort_order IS 'Position of the stage in the pipeline';
COMMENT ON COLUMN crm.pipeline_by_stage.stage IS 'Stage';
COMMENT ON COLUMN crm.pipeline_by_stage.is_closed IS 'True for closed stages';
COMMENT ON COLUMN crm.pipeline_by_stage.is_won IS 'True for won stages';
COMMENT ON COLUMN crm.pipeline_by_stage.owner IS 'Opportunity owner: the role''s name, as text (crm.opportunity.owner is a regrole); NULL on the row of a stage without deals';
COMMENT ON COLUMN crm.pipeline_by_stage.opportunities IS 'Number of opportunities';
COMMENT ON COLUMN crm.pipeline_by_stage.amount IS 'Sum of their amounts, in the corporate currency (rounded to cents once, after converting)';
COMMENT ON COLUMN crm.pipeline_by_stage.weighted_amount IS 'Sum of amount x probability / 100 (each rounded to cents), in the corporate currency';
COMMENT ON COLUMN crm.pipeline_by_stage.currency IS 'Currency of the opportunities; NULL on the row of a stage without deals';
COMMENT ON COLUMN crm.pipeline_by_stage.amount_in_currency IS 'Sum of their amounts in that currency';
COMMENT ON COLUMN crm.pipeline_by_stage.weighted_amount_in_currency IS 'Sum of the weighted amounts in that currency';

-- The pipeline as it was at a moment, from crm.opportunity_history: every
-- deal's state then (its last entry by id made at or before at, unless a
-- deletion), grouped like the aggregate (stage, owner, close month,
-- currency) and converted per group as crm.pipeline_by_stage does, so that
-- a moment after the last change gives exactly crm.pipeline_by_stage.
-- In C (src/pipeline_as_of.c), acting for the caller: a deal counts when
-- the caller may read its state's entry (row security of the history: a
-- rep sees the deals their team owned at that moment and the deals they
-- see now), checked once per deal, not once per entry; the history is read
-- with the extension owner's rights only for that (everything else as the
-- caller).  Stage renames (61_stage_renames.sql): an entry's stage is the
-- stage its recorded name meant then, followed through the renames made
-- after the entry was recorded (the first such rename of the name, from a
-- map per stage name) to the stage's name now, which gives sort_order,
-- is_closed and is_won (NULL for a stage since removed); it is shown under
-- the name that stage had at `at`.  Every active stage appears, as in
-- crm.pipeline_by_stage, under its name at `at` (not one known to have been
-- created after `at`).  Cost: every entry made up to `at`, read once.
-- (jit off: compiling the plan costs more than it saves)
CREATE FUNCTION crm.pipeline_as_of("at" timestamptz)
    RETURNS TABLE (sort_order integer, stage text, is_closed boolean, is_won boolean, owner text,
                   opportunities bigint, amount numeric, weighted_amount numeric, currency text,
                   amount_in_currency numeric, weighted_amount_in_currency numeric)
    AS 'MODULE_PATHNAME', 'crm_pipeline_as_of'
    LANGUAGE C STABLE STRICT SECURITY INVOKER PARALLEL UNSAFE ROWS 100
    SET search_path = pg_catalog, pg_temp
    SET jit = off;
COMMENT ON FUNCTION crm.pipeline_as_of(timestamptz) IS 'The pipeline as it was at a moment, exactly, from crm.opportunity_history: the columns of crm.pipeline_by_stage (by stage, owner and currency; amounts in the corporate currency at the rate of the close month, today''s rates), for the deals that existed then in the state they had then; a moment after the last change (stage renames included) gives crm.pipeline_by_stage; every active stage appears (zeros without deals). A renamed stage keeps its identity: its deals show under the name the stage had at that moment, with its current sort_order (crm.opportunity_stage_rename); a stage created later with an old name is another stage. A deal counts when the caller may read the history entry of its state then (row security of the history: a rep sees the deals their team owned at that moment and the deals they see now). See README "Reports"';

CREATE VIEW crm.forecast_by_month WITH (security_invoker = true) AS
    SELECT t.close_month,
           COALESCE(pg_catalog.to_char(t.close_month, 'YYYY-MM'), 'no close date') AS month_label,
           s.forecast_category, t.owner,
           pg_catalog.sum(t.opportunities)::bigint AS opportunities,
           pg_catalog.round(pg_catalog.sum(t.amount OPERATOR(pg_catalog.*) r.rate), 2) AS amount,
           pg_catalog.round(pg_catalog.sum(t.weighted_amount OPERATOR(pg_catalog.*) r.rate), 2) AS weighted_amount,
           t.currency,
           pg_catalog.sum(t.amount) AS amount_in_currency,
           pg_catalog.sum(t.weighted_amount) AS weighted_amount_in_currency
      FROM crm.pipeline_totals AS t JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) t.stage
     CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(t.currency, t.close_month) AS rate) AS r
     WHERE NOT s.is_closed OR s.is_won
     GROUP BY t.close_month, s.forecast_category, t.owner, t.currency;
COMMENT ON VIEW crm.forecast_by_month IS 'Forecast: open and won opportunities by expected close month (deals without a close date in the bucket month_label = ''no close date''), forecast category, owner and currency, amounts in the corporate currency (at the rate of the close month) and in the deals'' currency, read from the maintained aggregate';
COMMENT ON COLUMN crm.forecast_by_month.close_month IS 'First day of the close month (NULL: no close date yet; month_label names that bucket)';
COMMENT ON COLUMN crm.forecast_by_month.month_label IS 'The close month as YYYY-MM, or ''no close date'' for the deals without one: an explicit bucket for a chart''s axis (sorts after every month)';
COMMENT ON COLUMN crm.forecast_by_month.forecast_category IS 'Pipeline, Best Case, Commit or Closed (from the stage)';
COMMENT ON COLUMN crm.forecast_by_month.owner IS 'Opportunity owner: the role''s name, as text (crm.opportunity.owner is a regrole)';
COMMENT ON COLUMN crm.forecast_by_month.opportunities IS 'Number of opportunities';
COMMENT ON COLUMN crm.forecast_by_month.amount IS 'Sum of their amounts, in the corporate currency';
COMMENT ON COLUMN crm.forecast_by_month.weighted_amount IS 'Sum of amount x probability / 100, in the corporate currency';
COMMENT ON COLUMN crm.forecast_by_month.currency IS 'Currency of the opportunities';
COMMENT ON COLUMN crm.forecast_by_month.amount_in_currency IS 'Sum of their amounts in that currency';
COMMENT ON COLUMN crm.forecast_by_month.weighted_amount_in_currency IS 'Sum of the weighted amounts in that currency';

-- Read from the maintained aggregate crm_internal.sales_performance_aggregate
-- (stripes summed): time proportional to the number of groups, not of deals.
-- The stages are joined at read time, so an edit of is_closed or is_won
-- shows at once.  Won amounts in the corporate currency: each group (one
-- close month, one currency: one rate, since rates change on the first of a
-- month) converted at read time at the rate of its close date's month, as
-- each deal at the rate of its close date, summed exactly, rounded once.
-- The month of closing is the month of closed_at in UTC, whatever the
-- session's TimeZone; the sales cycle is summed exactly (seconds).
CREATE VIEW crm.sales_performance WITH (security_invoker = true) AS
    WITH closed_groups AS (
        SELECT a.owner, a.closed_month, a.close_month, a.currency, s.is_won,
               pg_catalog.sum(a.opportunities) AS deals, pg_catalog.sum(a.amount) AS amount,
               pg_catalog.sum(a.cycle_seconds) AS cycle_seconds
          FROM crm_internal.sales_performance_aggregate AS a
          JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) a.stage
         WHERE s.is_closed
         GROUP BY a.owner, a.closed_month, a.close_month, a.currency, s.is_won
        HAVING pg_catalog.sum(a.opportunities) OPERATOR(pg_catalog.<>) 0)
    SELECT pg_catalog.pg_get_userbyid(g.owner)::text AS owner, g.closed_month AS period,
           COALESCE(pg_catalog.sum(g.deals) FILTER (WHERE g.is_won), 0)::bigint AS won,
           COALESCE(pg_catalog.sum(g.deals) FILTER (WHERE NOT g.is_won), 0)::bigint AS lost,
           COALESCE(pg_catalog.round(pg_catalog.sum(g.amount OPERATOR(pg_catalog.*) x.rate) FILTER (WHERE g.is_won), 2), 0) AS won_amount,
           pg_catalog.round(COALESCE(pg_catalog.sum(g.deals) FILTER (WHERE g.is_won), 0) OPERATOR(pg_catalog./) pg_catalog.sum(g.deals), 4) AS win_rate,
           pg_catalog.round(pg_catalog.sum(g.amount OPERATOR(pg_catalog.*) x.rate) FILTER (WHERE g.is_won)
                            OPERATOR(pg_catalog./) pg_catalog.sum(g.deals) FILTER (WHERE g.is_won), 2) AS average_deal_size,
           pg_catalog.round(pg_catalog.sum(g.cycle_seconds) FILTER (WHERE g.is_won)
                            OPERATOR(pg_catalog./) (pg_catalog.sum(g.deals) FILTER (WHERE g.is_won) OPERATOR(pg_catalog.*) 86400), 1) AS average_cycle_days,
           CASE WHEN pg_catalog.min(g.currency) FILTER (WHERE g.is_won) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency) FILTER (WHERE g.is_won)
                THEN pg_catalog.min(g.currency) FILTER (WHERE g.is_won) END AS currency,
           CASE WHEN pg_catalog.min(g.currency) FILTER (WHERE g.is_won) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency) FILTER (WHERE g.is_won)
                THEN pg_catalog.sum(g.amount) FILTER (WHERE g.is_won) END AS won_amount_in_currency
      FROM closed_groups AS g
     CROSS JOIN LATERAL (SELECT CASE WHEN g.is_won
                                     THEN crm.exchange_rate_on(g.currency, NULLIF(g.close_month, 'infinity'::pg_catalog.date)) END AS rate) AS x
     GROUP BY g.owner, g.closed_month;
COMMENT ON VIEW crm.sales_performance IS 'Sales performance per owner and month of closing (the month of closed_at in UTC, whatever the session time zone): deals won and lost (by the stages'' is_closed and is_won now), won amount (in the corporate currency, each deal at the rate of its close date), win rate, average deal size, sales cycle length; the won deals'' currency and won amount in it when they share one currency. Read from the maintained aggregate (time grows with the groups, not the deals); each role sees the deals it may read';
COMMENT ON COLUMN crm.sales_performance.owner IS 'Opportunity owner: the role''s name, as text (crm.opportunity.owner is a regrole)';
COMMENT ON COLUMN crm.sales_performance.period IS 'First day of the month the deals closed in, in UTC';
COMMENT ON COLUMN crm.sales_performance.won IS 'Deals won';
COMMENT ON COLUMN crm.sales_performance.lost IS 'Deals lost';
COMMENT ON COLUMN crm.sales_performance.won_amount IS 'Amount of the won deals, in the corporate currency';
COMMENT ON COLUMN crm.sales_performance.win_rate IS 'won / (won + lost), 0-1';
COMMENT ON COLUMN crm.sales_performance.average_deal_size IS 'Average amount of a won deal, in the corporate currency';
COMMENT ON COLUMN crm.sales_performance.average_cycle_days IS 'Average days from creation to closing of a won deal (exact, rounded to a tenth of a day)';
COMMENT ON COLUMN crm.sales_performance.currency IS 'Currency of the won deals when they all share one; NULL when mixed or none won';
COMMENT ON COLUMN crm.sales_performance.won_amount_in_currency IS 'Amount of the won deals in that currency (NULL when mixed)';

-- Read from the kept passages (88_stage_velocity.sql) and the pipeline
-- aggregate: O(stages x owners), whatever the size of the history.  A
-- renamed stage's passages are kept under its new name (the rename moved
-- them); the old name's groups add up to nothing and are left out.
CREATE VIEW crm.stage_velocity WITH (security_invoker = true) AS
    WITH kept AS (
        SELECT a.stage, pg_catalog.sum(a.passages) AS passages, pg_catalog.sum(a.seconds) AS seconds
          FROM crm_internal.stage_velocity_aggregate AS a
         GROUP BY a.stage
        HAVING pg_catalog.sum(a.passages) OPERATOR(pg_catalog.<>) 0),
    now_in AS (
        SELECT t.stage, pg_catalog.sum(t.opportunities) AS opportunities
          FROM crm.pipeline_totals AS t
         GROUP BY t.stage)
    SELECT s.sort_order, COALESCE(k.stage, n.stage) AS stage,
           COALESCE(k.passages, 0)::bigint AS passages,
           pg_catalog.round(k.seconds OPERATOR(pg_catalog./) NULLIF(k.passages, 0) OPERATOR(pg_catalog./) 86400, 2) AS average_days,
           COALESCE(n.opportunities, 0)::bigint AS currently_in_stage
      FROM kept AS k FULL JOIN now_in AS n ON n.stage OPERATOR(pg_catalog.=) k.stage
      LEFT JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) COALESCE(k.stage, n.stage);
COMMENT ON VIEW crm.stage_velocity IS 'Average time opportunities spend in each stage: passages (a deal leaving the stage by moving on, deleted deals'' included; a renamed stage''s passages under its name now, whatever it was called then) and their average length, read from the kept passages (equal to crm.opportunity_history, checked by crm.verify_aggregates()), and the deals in the stage now, from the pipeline aggregate';
COMMENT ON COLUMN crm.stage_velocity.sort_order IS 'Position of the stage in the pipeline (NULL for a stage since removed)';
COMMENT ON COLUMN crm.stage_velocity.stage IS 'Stage';
COMMENT ON COLUMN crm.stage_velocity.passages IS 'How many times an opportunity entered and left the stage (moving on; a deal''s deletion is no passage)';
COMMENT ON COLUMN crm.stage_velocity.average_days IS 'Average days between entering and leaving the stage';
COMMENT ON COLUMN crm.stage_velocity.currently_in_stage IS 'Opportunities in the stage now';

-- An order's total converts at the rate of the day the order was made.
CREATE VIEW crm.quote_to_order WITH (security_invoker = true) AS
    SELECT pg_catalog.date_trunc('month', q.created_at)::date AS month,
           pg_catalog.count(*) AS quotes,
           pg_catalog.count(*) FILTER (WHERE q.status OPERATOR(pg_catalog.=) 'Accepted'::crm.quote_status) AS accepted,
           pg_catalog.count(so.id) AS orders,
           pg_catalog.round(pg_catalog.count(so.id)::numeric OPERATOR(pg_catalog./) pg_catalog.count(*), 4) AS order_rate,
           COALESCE(pg_catalog.round(pg_catalog.sum(so.total OPERATOR(pg_catalog.*)
                                                    CASE WHEN so.id IS NOT NULL THEN crm.exchange_rate_on(so.currency, so.created_at::pg_catalog.date) END), 2), 0) AS order_total,
           CASE WHEN pg_catalog.min(so.currency) OPERATOR(pg_catalog.=) pg_catalog.max(so.currency) THEN pg_catalog.min(so.currency) END AS currency,
           CASE WHEN pg_catalog.min(so.currency) OPERATOR(pg_catalog.=) pg_catalog.max(so.currency) THEN pg_catalog.sum(so.total) END AS order_total_in_currency
      FROM crm.quote AS q LEFT JOIN crm.sales_order AS so ON so.quote_id OPERATOR(pg_catalog.=) q.id
     GROUP BY 1;
COMMENT ON VIEW crm.quote_to_order IS 'Quote-to-order conversion per month the quotes were made; order totals in the corporate currency, each order at the rate of the day it was made (created_at, session time zone), and in the orders'' currency when they share one';
COMMENT ON COLUMN crm.quote_to_order.month IS 'First day of the month';
COMMENT ON COLUMN crm.quote_to_order.quotes IS 'Quotes made';
COMMENT ON COLUMN crm.quote_to_order.accepted IS 'Of those, Accepted now';
COMMENT ON COLUMN crm.quote_to_order.orders IS 'Of those, turned into sales orders';
COMMENT ON COLUMN crm.quote_to_order.order_rate IS 'orders / quotes, 0-1';
COMMENT ON COLUMN crm.quote_to_order.order_total IS 'Total of those orders, in the corporate currency (each at the rate of the day it was made)';
COMMENT ON COLUMN crm.quote_to_order.currency IS 'Currency of those orders when they all share one; NULL when mixed or none';
COMMENT ON COLUMN crm.quote_to_order.order_total_in_currency IS 'Their total in that currency (NULL when mixed)';

-- One row per campaign (ROI is a campaign's figure): amounts in the
-- corporate currency, each group of the aggregate (one close month, one
-- currency) converted at read time; campaigns have no currency of their
-- own, their costs are in the corporate currency.
CREATE VIEW crm.campaign_performance WITH (security_invoker = true) AS
    WITH campaign_groups AS (
        SELECT a.campaign_id, a.stage, a.close_month, a.currency,
               pg_catalog.sum(a.opportunities) AS opportunities, pg_catalog.sum(a.amount) AS amount
          FROM crm_internal.campaign_opportunity_aggregate AS a
         GROUP BY a.campaign_id, a.stage, a.close_month, a.currency
        HAVING pg_catalog.sum(a.opportunities) OPERATOR(pg_catalog.<>) 0)
    SELECT c.id AS campaign_id, c.name, c.type, c.status, pg_catalog.pg_get_userbyid(c.owner)::text AS owner,
           c.budgeted_cost, c.actual_cost, c.expected_revenue,
           COALESCE(l.leads, 0)::bigint AS leads,
           COALESCE(l.converted_leads, 0)::bigint AS converted_leads,
           COALESCE(o.opportunities, 0)::bigint AS opportunities,
           COALESCE(o.won_opportunities, 0)::bigint AS won_opportunities,
           COALESCE(o.amount, 0) AS opportunity_amount,
           COALESCE(o.won_amount, 0) AS won_amount,
           CASE WHEN c.actual_cost OPERATOR(pg_catalog.>) 0
                THEN pg_catalog.round((COALESCE(o.won_amount, 0) OPERATOR(pg_catalog.-) c.actual_cost)
                                      OPERATOR(pg_catalog./) c.actual_cost, 4)
           END AS roi,
           o.currency, o.amount_in_currency AS opportunity_amount_in_currency, o.won_amount_in_currency
      FROM crm.campaign AS c
      LEFT JOIN (SELECT g.campaign_id, pg_catalog.sum(g.leads) AS leads,
                        pg_catalog.sum(g.leads) FILTER (WHERE g.status OPERATOR(pg_catalog.=) 'Converted'::crm.lead_status) AS converted_leads
                   FROM crm_internal.campaign_lead_aggregate AS g GROUP BY g.campaign_id) AS l
        ON l.campaign_id OPERATOR(pg_catalog.=) c.id
      LEFT JOIN (SELECT g.campaign_id, pg_catalog.sum(g.opportunities) AS opportunities,
                        pg_catalog.sum(g.opportunities) FILTER (WHERE s.is_won) AS won_opportunities,
                        pg_catalog.round(pg_catalog.sum(g.amount OPERATOR(pg_catalog.*) x.rate), 2) AS amount,
                        pg_catalog.round(pg_catalog.sum(g.amount OPERATOR(pg_catalog.*) x.rate) FILTER (WHERE s.is_won), 2) AS won_amount,
                        CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                             THEN pg_catalog.min(g.currency) END AS currency,
                        CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                             THEN pg_catalog.sum(g.amount) END AS amount_in_currency,
                        CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                             THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE s.is_won), 0) END AS won_amount_in_currency
                   FROM campaign_groups AS g
                   JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) g.stage
                   JOIN (SELECT c.currency, c.close_month,
                                crm.exchange_rate_on(c.currency, NULLIF(c.close_month, 'infinity'::pg_catalog.date)) AS rate
                           FROM (SELECT DISTINCT a.currency, a.close_month FROM campaign_groups AS a) AS c) AS x
                     ON x.currency OPERATOR(pg_catalog.=) g.currency AND x.close_month OPERATOR(pg_catalog.=) g.close_month
                  GROUP BY g.campaign_id) AS o
        ON o.campaign_id OPERATOR(pg_catalog.=) c.id;
COMMENT ON VIEW crm.campaign_performance IS 'Per campaign (one row each, as ROI is a campaign''s figure): leads, converted leads, opportunities, won opportunities, their amounts in the corporate currency (each deal at the rate of its close month, the latest rate without a close date; converted per group of the maintained aggregate at read time, so a rate edit shows at once), and ROI = (won amount - actual cost) / actual cost, the cost being in the corporate currency; the deals'' own currency and amounts in it beside them when all the campaign''s deals share one currency';
COMMENT ON COLUMN crm.campaign_performance.campaign_id IS 'The campaign';
COMMENT ON COLUMN crm.campaign_performance.name IS 'Campaign name';
COMMENT ON COLUMN crm.campaign_performance.type IS 'Campaign type';
COMMENT ON COLUMN crm.campaign_performance.status IS 'Campaign status';
COMMENT ON COLUMN crm.campaign_performance.owner IS 'Who runs the campaign: the role''s name, as text (crm.campaign.owner is a regrole)';
COMMENT ON COLUMN crm.campaign_performance.budgeted_cost IS 'Planned cost, in the corporate currency';
COMMENT ON COLUMN crm.campaign_performance.actual_cost IS 'Cost so far, in the corporate currency';
COMMENT ON COLUMN crm.campaign_performance.expected_revenue IS 'Expected revenue';
COMMENT ON COLUMN crm.campaign_performance.leads IS 'Leads attributed to the campaign';
COMMENT ON COLUMN crm.campaign_performance.converted_leads IS 'Of those, converted';
COMMENT ON COLUMN crm.campaign_performance.opportunities IS 'Opportunities attributed to the campaign';
COMMENT ON COLUMN crm.campaign_performance.won_opportunities IS 'Of those, won';
COMMENT ON COLUMN crm.campaign_performance.opportunity_amount IS 'Amount of all attributed opportunities, in the corporate currency';
COMMENT ON COLUMN crm.campaign_performance.won_amount IS 'Amount of the won ones, in the corporate currency';
COMMENT ON COLUMN crm.campaign_performance.roi IS 'Return on investment: (won amount - actual cost) / actual cost, both in the corporate currency; NULL while the actual cost is 0';
COMMENT ON COLUMN crm.campaign_performance.currency IS 'Currency of the attributed deals when they all share one; NULL when mixed or none';
COMMENT ON COLUMN crm.campaign_performance.opportunity_amount_in_currency IS 'Amount of all attributed opportunities in that currency (NULL when mixed)';
COMMENT ON COLUMN crm.campaign_performance.won_amount_in_currency IS 'Amount of the won ones in that currency (NULL when mixed)';

-- Lost deals by reason, owner and month, amounts converted per deal at the
-- rate of its close date.
CREATE VIEW crm.loss_analysis WITH (security_invoker = true) AS
    SELECT o.loss_reason_code AS reason,
           r.label AS reason_label,
           pg_catalog.pg_get_userbyid(o.owner)::text AS owner,
           pg_catalog.date_trunc('month', o.closed_at)::date AS month,
           pg_catalog.count(*) AS deals,
           pg_catalog.round(pg_catalog.sum(o.amount OPERATOR(pg_catalog.*) crm.exchange_rate_on(o.currency, o.close_date)), 2) AS amount,
           CASE WHEN pg_catalog.min(o.currency) OPERATOR(pg_catalog.=) pg_catalog.max(o.currency) THEN pg_catalog.min(o.currency) END AS currency,
           CASE WHEN pg_catalog.min(o.currency) OPERATOR(pg_catalog.=) pg_catalog.max(o.currency) THEN pg_catalog.sum(o.amount) END AS amount_in_currency
      FROM crm.opportunity AS o
      JOIN crm.loss_reason AS r ON r.code OPERATOR(pg_catalog.=) o.loss_reason_code
     GROUP BY o.loss_reason_code, r.label, o.owner, pg_catalog.date_trunc('month', o.closed_at)::date;
COMMENT ON VIEW crm.loss_analysis IS 'Lost deals by loss reason, owner and month of close (in the session time zone): how many and their amount in the corporate currency (each deal at the rate of its close date), and in the deals'' currency when they share one; each role sees the deals it may read';
COMMENT ON COLUMN crm.loss_analysis.reason IS 'Loss reason code';
COMMENT ON COLUMN crm.loss_analysis.reason_label IS 'Loss reason as shown to users';
COMMENT ON COLUMN crm.loss_analysis.owner IS 'Owner of the lost deals: the role''s name, as text (crm.opportunity.owner is a regrole)';
COMMENT ON COLUMN crm.loss_analysis.month IS 'First day of the month the deals were closed in';
COMMENT ON COLUMN crm.loss_analysis.deals IS 'Number of deals lost';
COMMENT ON COLUMN crm.loss_analysis.amount IS 'Sum of their amounts, in the corporate currency';
COMMENT ON COLUMN crm.loss_analysis.currency IS 'Currency of the deals when they all share one; NULL when mixed';
COMMENT ON COLUMN crm.loss_analysis.amount_in_currency IS 'Sum of their amounts in that currency (NULL when mixed)';

-- Every maintained aggregate against a fresh GROUP BY, and the reports that
-- convert the aggregates to the corporate currency at read time
-- (pipeline_by_stage per stage, owner and currency; account_rollup per
-- account; campaign_performance per campaign) against a fresh GROUP BY over
-- the opportunities that converts each one at the rate valid on its own
-- close date.
CREATE FUNCTION crm.verify_aggregates()
    RETURNS TABLE (aggregate text, group_key jsonb, measure text, kept numeric, actual numeric)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH converted AS (
        SELECT o.stage, o.owner, o.currency, o.account_id, o.campaign_id, s.is_closed, s.is_won,
               o.amount OPERATOR(pg_catalog.*) r.rate AS amount,
               pg_catalog.round(o.amount OPERATOR(pg_catalog.*) COALESCE(o.probability, 0) OPERATOR(pg_catalog./) 100, 2)
                   OPERATOR(pg_catalog.*) r.rate AS weighted_amount
          FROM crm.opportunity AS o
          JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) o.stage
         CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(o.currency, o.close_date) AS rate) AS r)
    SELECT v.aggregate, v.group_key, v.measure, v.kept, v.actual
      FROM (SELECT c.aggregate, c.group_key, m.measure, m.kept, m.actual
              FROM crm_internal.aggregates_compared AS c
             CROSS JOIN LATERAL (VALUES ('items', c.kept_items, c.actual_items),
                                        ('amount', c.kept_amount, c.actual_amount),
                                        ('weighted_amount', c.kept_weighted_amount, c.actual_weighted_amount))
                                AS m (measure, kept, actual)
            UNION ALL
            SELECT 'pipeline_by_stage', pg_catalog.jsonb_build_object('stage', COALESCE(k.stage, a.stage),
                       'owner', COALESCE(k.owner, a.owner), 'currency', COALESCE(k.currency, a.currency)),
                   m.measure, m.kept, m.actual
              FROM (SELECT p.stage, p.owner, p.currency, p.opportunities, p.amount, p.weighted_amount
                      FROM crm.pipeline_by_stage AS p) AS k
              FULL JOIN (SELECT o.stage, pg_catalog.pg_get_userbyid(o.owner)::text AS owner, o.currency,
                                pg_catalog.count(*) AS opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount), 2) AS amount,
                                pg_catalog.round(pg_catalog.sum(o.weighted_amount), 2) AS weighted_amount
                           FROM converted AS o
                          GROUP BY o.stage, o.owner, o.currency) AS a
                ON a.stage OPERATOR(pg_catalog.=) k.stage AND a.owner OPERATOR(pg_catalog.=) k.owner
               AND a.currency OPERATOR(pg_catalog.=) k.currency
             CROSS JOIN LATERAL (VALUES ('items', COALESCE(k.opportunities, 0)::numeric, COALESCE(a.opportunities, 0)::numeric),
                                        ('amount', COALESCE(k.amount, 0), COALESCE(a.amount, 0)),
                                        ('weighted_amount', COALESCE(k.weighted_amount, 0), COALESCE(a.weighted_amount, 0)))
                                AS m (measure, kept, actual)
            UNION ALL
            SELECT 'account_rollup', pg_catalog.jsonb_build_object('account_id', COALESCE(k.account_id, a.account_id)),
                   m.measure, m.kept, m.actual
              FROM (SELECT r.account_id, r.open_opportunities, r.open_amount, r.won_opportunities, r.won_amount
                      FROM crm.account_rollup AS r) AS k
              FULL JOIN (SELECT o.account_id,
                                pg_catalog.count(*) FILTER (WHERE NOT o.is_closed) AS open_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE NOT o.is_closed), 2) AS open_amount,
                                pg_catalog.count(*) FILTER (WHERE o.is_won) AS won_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE o.is_won), 2) AS won_amount
                           FROM converted AS o
                          WHERE o.account_id IS NOT NULL
                          GROUP BY o.account_id) AS a
                ON a.account_id OPERATOR(pg_catalog.=) k.account_id
             CROSS JOIN LATERAL (VALUES ('open_opportunities', COALESCE(k.open_opportunities, 0)::numeric, COALESCE(a.open_opportunities, 0)::numeric),
                                        ('open_amount', COALESCE(k.open_amount, 0), COALESCE(a.open_amount, 0)),
                                        ('won_opportunities', COALESCE(k.won_opportunities, 0)::numeric, COALESCE(a.won_opportunities, 0)::numeric),
                                        ('won_amount', COALESCE(k.won_amount, 0), COALESCE(a.won_amount, 0)))
                                AS m (measure, kept, actual)
            UNION ALL
            -- the settled account figures (crm.top_accounts() walks them)
            -- against the compacted groups they are made from, for every
            -- account without uncompacted stripes (those whose settled
            -- figures it uses; a stage renamed since the last compaction
            -- leaves the others' stripe 0 under the old name); a missing
            -- rate (NULL amount) compares as -1
            SELECT 'account_settled', pg_catalog.jsonb_build_object('account_id', COALESCE(k.account_id, a.account_id),
                       'owner', COALESCE(k.owner, a.owner)::pg_catalog.oid),
                   m.measure, m.kept, m.actual
              FROM crm_internal.account_settled AS k
              FULL JOIN crm_internal.account_settled_actual AS a
                ON a.account_id OPERATOR(pg_catalog.=) k.account_id AND a.owner OPERATOR(pg_catalog.=) k.owner
             CROSS JOIN LATERAL (SELECT NOT EXISTS (SELECT 1 FROM crm_internal.account_aggregate AS x
                                                     WHERE x.account_id OPERATOR(pg_catalog.=) COALESCE(k.account_id, a.account_id)
                                                       AND x.stripe OPERATOR(pg_catalog.<>) 0)
                                        AND NOT EXISTS (SELECT 1 FROM crm_internal.account_owner_moved AS x
                                                         WHERE x.account_id OPERATOR(pg_catalog.=) COALESCE(k.account_id, a.account_id))
                                        AS settled) AS p
             CROSS JOIN LATERAL (VALUES ('open_opportunities', COALESCE(k.open_opportunities, 0)::numeric, COALESCE(a.open_opportunities, 0)::numeric),
                                        ('open_amount', CASE WHEN k.account_id IS NULL THEN 0 ELSE COALESCE(k.open_amount, -1) END,
                                                        CASE WHEN a.account_id IS NULL THEN 0 ELSE COALESCE(a.open_amount, -1) END),
                                        ('won_opportunities', COALESCE(k.won_opportunities, 0)::numeric, COALESCE(a.won_opportunities, 0)::numeric),
                                        ('won_amount', CASE WHEN k.account_id IS NULL THEN 0 ELSE COALESCE(k.won_amount, -1) END,
                                                       CASE WHEN a.account_id IS NULL THEN 0 ELSE COALESCE(a.won_amount, -1) END),
                                        -- the account's owner, as its oid
                                        ('account_owner', COALESCE(k.account_owner::pg_catalog.oid::pg_catalog.int8, 0)::numeric,
                                                          COALESCE(a.account_owner::pg_catalog.oid::pg_catalog.int8, 0)::numeric))
                                AS m (measure, kept, actual)
             WHERE p.settled
            UNION ALL
            SELECT 'campaign_performance', pg_catalog.jsonb_build_object('campaign_id', COALESCE(k.campaign_id, a.campaign_id)),
                   m.measure, m.kept, m.actual
              FROM (SELECT p.campaign_id, p.opportunities, p.won_opportunities, p.opportunity_amount, p.won_amount
                      FROM crm.campaign_performance AS p) AS k
              FULL JOIN (SELECT o.campaign_id, pg_catalog.count(*) AS opportunities,
                                pg_catalog.count(*) FILTER (WHERE o.is_won) AS won_opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount), 2) AS opportunity_amount,
                                pg_catalog.round(pg_catalog.sum(o.amount) FILTER (WHERE o.is_won), 2) AS won_amount
                           FROM converted AS o
                          WHERE o.campaign_id IS NOT NULL
                          GROUP BY o.campaign_id) AS a
                ON a.campaign_id OPERATOR(pg_catalog.=) k.campaign_id
             CROSS JOIN LATERAL (VALUES ('opportunities', COALESCE(k.opportunities, 0)::numeric, COALESCE(a.opportunities, 0)::numeric),
                                        ('won_opportunities', COALESCE(k.won_opportunities, 0)::numeric, COALESCE(a.won_opportunities, 0)::numeric),
                                        ('opportunity_amount', COALESCE(k.opportunity_amount, 0), COALESCE(a.opportunity_amount, 0)),
                                        ('won_amount', COALESCE(k.won_amount, 0), COALESCE(a.won_amount, 0)))
                                AS m (measure, kept, actual)
            UNION ALL
            -- stage velocity: the kept passages against the history's
            SELECT 'stage_velocity', pg_catalog.jsonb_build_object('stage', COALESCE(k.stage, a.stage),
                       'owner', pg_catalog.pg_get_userbyid(COALESCE(k.owner, a.owner))::text),
                   m.measure, m.kept, m.actual
              FROM (SELECT v.stage, v.owner::pg_catalog.oid AS owner, pg_catalog.sum(v.passages) AS passages,
                           pg_catalog.sum(v.seconds) AS seconds
                      FROM crm_internal.stage_velocity_aggregate AS v
                     GROUP BY v.stage, v.owner) AS k
              FULL JOIN (SELECT x.stage, x.owner::pg_catalog.oid AS owner, x.passages, x.seconds
                           FROM crm_internal.stage_velocity_actual AS x) AS a
                ON a.stage OPERATOR(pg_catalog.=) k.stage AND a.owner OPERATOR(pg_catalog.=) k.owner
             CROSS JOIN LATERAL (VALUES ('passages', COALESCE(k.passages, 0)::numeric, COALESCE(a.passages, 0)::numeric),
                                        ('seconds', COALESCE(k.seconds, 0), COALESCE(a.seconds, 0)))
                                AS m (measure, kept, actual)) AS v
     WHERE v.kept OPERATOR(pg_catalog.<>) v.actual
     ORDER BY v.aggregate, v.group_key::text, v.measure;
END;
COMMENT ON FUNCTION crm.verify_aggregates() IS 'One row per group and measure where a maintained aggregate differs from a fresh GROUP BY over the base tables, or where a report converted to the corporate currency at read time (pipeline_by_stage per stage, owner and currency; account_rollup per account; campaign_performance per campaign) differs from a GROUP BY converting each opportunity at the rate of its close date (aggregate names the report), or where the kept stage passages (stage_velocity, per stage and owner) differ from crm.opportunity_history, or where the settled account figures crm.top_accounts() reads differ from the compacted groups at the current rates, or name another account owner, for an account without uncompacted stripes whose owner did not change since (account_settled per account and opportunity owner, 0: all owners); no rows: all exact. ZC120 when a rate is missing. Reads every opportunity: for checking, as an admin (who sees every row)';
