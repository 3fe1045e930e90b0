--------------------------------------------------------------------------
-- Reporting views for BI tools
--
-- Plain views over the base tables, security_invoker so that whatever
-- row-level security applies to the querying role applies to them too.
-- The pipeline, forecast and campaign views read the aggregates that the
-- aggregates_ triggers keep (88_aggregates.sql); the others compute from the
-- base tables.
--------------------------------------------------------------------------

CREATE VIEW crm.sales_funnel WITH (security_invoker = true) AS
    SELECT 1 AS position, pg_catalog.array_position(pg_catalog.enum_range(NULL::crm.lead_status), l.status) AS step_order,
           'lead'::text AS kind, l.status::text AS step,
           pg_catalog.count(*) AS items, NULL::numeric AS amount
      FROM crm.lead AS l GROUP BY l.status
    UNION ALL
    SELECT 2, s.sort_order, 'opportunity', s.name, pg_catalog.count(o.id), COALESCE(pg_catalog.sum(o.amount), 0)
      FROM crm.opportunity_stage AS s LEFT JOIN crm.opportunity AS o ON o.stage OPERATOR(pg_catalog.=) s.name
     GROUP BY s.name, s.sort_order
    UNION ALL
    SELECT 3, 1, 'won', 'Won', pg_catalog.count(*), COALESCE(pg_catalog.sum(o.amount), 0)
      FROM crm.opportunity AS o JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) o.stage
     WHERE s.is_won;
COMMENT ON VIEW crm.sales_funnel IS 'Sales funnel: leads by status, opportunities by stage, won deals; ORDER BY position, step_order';
COMMENT ON COLUMN crm.sales_funnel.position IS '1 leads, 2 opportunities, 3 won';
COMMENT ON COLUMN crm.sales_funnel.step_order IS 'Order of the step within its part: lead status order, stage sort_order';
COMMENT ON COLUMN crm.sales_funnel.kind IS 'lead, opportunity or won';
COMMENT ON COLUMN crm.sales_funnel.step IS 'Lead status or opportunity stage (Won for the won total)';
COMMENT ON COLUMN crm.sales_funnel.items IS 'Number of leads or opportunities in the step';
COMMENT ON COLUMN crm.sales_funnel.amount IS 'Total opportunity amount in the step (NULL for lead steps)';

CREATE VIEW crm.lead_conversion_rates WITH (security_invoker = true) AS
    SELECT CASE WHEN GROUPING(l.source) OPERATOR(pg_catalog.=) 0 THEN 'source'
                WHEN GROUPING(l.owner) OPERATOR(pg_catalog.=) 0 THEN 'owner'
                WHEN GROUPING(l.campaign_id) OPERATOR(pg_catalog.=) 0 THEN 'campaign'
                ELSE 'month' END AS dimension,
           COALESCE(l.source, l.owner::text, c.name,
                    pg_catalog.to_char(pg_catalog.date_trunc('month', l.created_at), 'YYYY-MM'), '(none)') AS value,
           pg_catalog.count(*) AS leads,
           pg_catalog.count(*) FILTER (WHERE l.status OPERATOR(pg_catalog.=) 'Converted'::crm.lead_status) AS converted,
           pg_catalog.round(pg_catalog.count(*) FILTER (WHERE l.status OPERATOR(pg_catalog.=) 'Converted'::crm.lead_status)::numeric
                            OPERATOR(pg_catalog./) pg_catalog.count(*), 4) AS conversion_rate
      FROM crm.lead AS l LEFT JOIN crm.campaign AS c ON c.id OPERATOR(pg_catalog.=) l.campaign_id
     GROUP BY GROUPING SETS ((l.source), (l.owner), (l.campaign_id, c.name), (pg_catalog.date_trunc('month', l.created_at)));
COMMENT ON VIEW crm.lead_conversion_rates IS 'Share of leads converted, by source, by owner, by campaign and by month of capture';
COMMENT ON COLUMN crm.lead_conversion_rates.dimension IS 'source, owner, campaign or month';
COMMENT ON COLUMN crm.lead_conversion_rates.value IS 'The source code, owner, campaign name or month (YYYY-MM); (none) for leads without a campaign';
COMMENT ON COLUMN crm.lead_conversion_rates.leads IS 'Leads in the group';
COMMENT ON COLUMN crm.lead_conversion_rates.converted IS 'Of those, converted';
COMMENT ON COLUMN crm.lead_conversion_rates.conversion_rate IS 'converted / leads, 0-1';

-- Amounts in the corporate currency: each group of the aggregate (one close
-- month, one currency: one rate, since rates change on the first of a month)
-- converted at read time, summed exactly, rounded once; the amounts in the
-- deals' own currency beside them.
CREATE VIEW crm.pipeline_by_stage WITH (security_invoker = true) AS
    SELECT s.sort_order, s.name AS stage, s.is_closed, s.is_won, t.owner,
           pg_catalog.sum(t.opportunities) AS opportunities,
           pg_catalog.round(pg_catalog.sum(t.amount OPERATOR(pg_catalog.*) r.rate), 2) AS amount,
           pg_catalog.round(pg_catalog.sum(t.weighted_amount OPERATOR(pg_catalog.*) r.rate), 2) AS weighted_amount,
           t.currency,
           pg_catalog.sum(t.amount) AS amount_in_currency,
           pg_catalog.sum(t.weighted_amount) AS weighted_amount_in_currency
      FROM crm.pipeline_totals AS t JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) t.stage
     CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(t.currency, NULLIF(t.close_month, 'infinity'::date)) AS rate) AS r
     GROUP BY s.sort_order, s.name, s.is_closed, s.is_won, t.owner, t.currency;
COMMENT ON VIEW crm.pipeline_by_stage IS 'Pipeline by stage, owner and currency: number of opportunities, amount and probability-weighted amount in the corporate currency (each deal at the rate of its close month, the latest rate without a close date) and in the deals'' currency, read from the maintained aggregate';
COMMENT ON COLUMN crm.pipeline_by_stage.sort_order IS 'Position of the stage in the pipeline';
COMMENT ON COLUMN crm.pipeline_by_stage.stage IS 'Stage';
COMMENT ON COLUMN crm.pipeline_by_stage.is_closed IS 'True for closed stages';
COMMENT ON COLUMN crm.pipeline_by_stage.is_won IS 'True for won stages';
COMMENT ON COLUMN crm.pipeline_by_stage.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm.pipeline_by_stage.opportunities IS 'Number of opportunities';
COMMENT ON COLUMN crm.pipeline_by_stage.amount IS 'Sum of their amounts, in the corporate currency (rounded to cents once, after converting)';
COMMENT ON COLUMN crm.pipeline_by_stage.weighted_amount IS 'Sum of amount x probability / 100 (each rounded to cents), in the corporate currency';
COMMENT ON COLUMN crm.pipeline_by_stage.currency IS 'Currency of the opportunities';
COMMENT ON COLUMN crm.pipeline_by_stage.amount_in_currency IS 'Sum of their amounts in that currency';
COMMENT ON COLUMN crm.pipeline_by_stage.weighted_amount_in_currency IS 'Sum of the weighted amounts in that currency';

CREATE VIEW crm.forecast_by_month WITH (security_invoker = true) AS
    SELECT NULLIF(t.close_month, 'infinity'::date) AS close_month,
           s.forecast_category, t.owner,
           pg_catalog.sum(t.opportunities) AS opportunities,
           pg_catalog.round(pg_catalog.sum(t.amount OPERATOR(pg_catalog.*) r.rate), 2) AS amount,
           pg_catalog.round(pg_catalog.sum(t.weighted_amount OPERATOR(pg_catalog.*) r.rate), 2) AS weighted_amount,
           t.currency,
           pg_catalog.sum(t.amount) AS amount_in_currency,
           pg_catalog.sum(t.weighted_amount) AS weighted_amount_in_currency
      FROM crm.pipeline_totals AS t JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) t.stage
     CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(t.currency, NULLIF(t.close_month, 'infinity'::date)) AS rate) AS r
     WHERE NOT s.is_closed OR s.is_won
     GROUP BY 1, s.forecast_category, t.owner, t.currency;
COMMENT ON VIEW crm.forecast_by_month IS 'Forecast: open and won opportunities by expected close month, forecast category, owner and currency, amounts in the corporate currency (at the rate of the close month) and in the deals'' currency, read from the maintained aggregate';
COMMENT ON COLUMN crm.forecast_by_month.close_month IS 'First day of the close month (NULL: no close date yet)';
COMMENT ON COLUMN crm.forecast_by_month.forecast_category IS 'Pipeline, Best Case, Commit or Closed (from the stage)';
COMMENT ON COLUMN crm.forecast_by_month.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm.forecast_by_month.opportunities IS 'Number of opportunities';
COMMENT ON COLUMN crm.forecast_by_month.amount IS 'Sum of their amounts, in the corporate currency';
COMMENT ON COLUMN crm.forecast_by_month.weighted_amount IS 'Sum of amount x probability / 100, in the corporate currency';
COMMENT ON COLUMN crm.forecast_by_month.currency IS 'Currency of the opportunities';
COMMENT ON COLUMN crm.forecast_by_month.amount_in_currency IS 'Sum of their amounts in that currency';
COMMENT ON COLUMN crm.forecast_by_month.weighted_amount_in_currency IS 'Sum of the weighted amounts in that currency';

-- Every maintained aggregate against a fresh GROUP BY, and the pipeline
-- report's conversion to the corporate currency (per stage, owner and
-- currency) against a fresh GROUP BY that converts each opportunity at the
-- rate valid on its own close date.
CREATE FUNCTION crm.verify_aggregates()
    RETURNS TABLE (aggregate text, group_key jsonb, measure text, kept numeric, actual numeric)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
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
              FULL JOIN (SELECT o.stage, o.owner, o.currency, pg_catalog.count(*) AS opportunities,
                                pg_catalog.round(pg_catalog.sum(o.amount OPERATOR(pg_catalog.*) r.rate), 2) AS amount,
                                pg_catalog.round(pg_catalog.sum(pg_catalog.round(o.amount OPERATOR(pg_catalog.*) COALESCE(o.probability, 0)
                                                                                 OPERATOR(pg_catalog./) 100, 2)
                                                                OPERATOR(pg_catalog.*) r.rate), 2) AS weighted_amount
                           FROM crm.opportunity AS o
                          CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(o.currency, o.close_date) AS rate) AS r
                          GROUP BY o.stage, o.owner, o.currency) AS a
                ON a.stage OPERATOR(pg_catalog.=) k.stage AND a.owner OPERATOR(pg_catalog.=) k.owner
               AND a.currency OPERATOR(pg_catalog.=) k.currency
             CROSS JOIN LATERAL (VALUES ('items', COALESCE(k.opportunities, 0)::numeric, COALESCE(a.opportunities, 0)::numeric),
                                        ('amount', COALESCE(k.amount, 0), COALESCE(a.amount, 0)),
                                        ('weighted_amount', COALESCE(k.weighted_amount, 0), COALESCE(a.weighted_amount, 0)))
                                AS m (measure, kept, actual)) AS v
     WHERE v.kept OPERATOR(pg_catalog.<>) v.actual
     ORDER BY v.aggregate, v.group_key::text, v.measure;
END;
COMMENT ON FUNCTION crm.verify_aggregates() IS 'One row per group and measure where a maintained aggregate differs from a fresh GROUP BY over the base tables, or where crm.pipeline_by_stage''s amounts in the corporate currency differ from a GROUP BY converting each opportunity at the rate of its close date (aggregate pipeline_by_stage); no rows: all exact. ZC120 when a rate is missing';

CREATE VIEW crm.sales_performance WITH (security_invoker = true) AS
    SELECT o.owner, pg_catalog.date_trunc('month', o.closed_at)::date AS period,
           pg_catalog.count(*) FILTER (WHERE s.is_won) AS won,
           pg_catalog.count(*) FILTER (WHERE NOT s.is_won) AS lost,
           COALESCE(pg_catalog.sum(o.amount) FILTER (WHERE s.is_won), 0) AS won_amount,
           pg_catalog.round(pg_catalog.count(*) FILTER (WHERE s.is_won)::numeric OPERATOR(pg_catalog./) pg_catalog.count(*), 4) AS win_rate,
           pg_catalog.round(pg_catalog.avg(o.amount) FILTER (WHERE s.is_won), 2) AS average_deal_size,
           pg_catalog.round((pg_catalog.avg(pg_catalog.date_part('epoch', o.closed_at OPERATOR(pg_catalog.-) o.created_at))
                             FILTER (WHERE s.is_won) OPERATOR(pg_catalog./) 86400)::numeric, 1) AS average_cycle_days
      FROM crm.opportunity AS o JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) o.stage
     WHERE s.is_closed AND o.closed_at IS NOT NULL
     GROUP BY o.owner, 2;
COMMENT ON VIEW crm.sales_performance IS 'Sales performance per owner and month of closing: deals won and lost, won amount, win rate, average deal size, sales cycle length';
COMMENT ON COLUMN crm.sales_performance.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm.sales_performance.period IS 'First day of the month the deals closed in';
COMMENT ON COLUMN crm.sales_performance.won IS 'Deals won';
COMMENT ON COLUMN crm.sales_performance.lost IS 'Deals lost';
COMMENT ON COLUMN crm.sales_performance.won_amount IS 'Amount of the won deals';
COMMENT ON COLUMN crm.sales_performance.win_rate IS 'won / (won + lost), 0-1';
COMMENT ON COLUMN crm.sales_performance.average_deal_size IS 'Average amount of a won deal';
COMMENT ON COLUMN crm.sales_performance.average_cycle_days IS 'Average days from creation to closing of a won deal';

CREATE VIEW crm.stage_velocity WITH (security_invoker = true) AS
    WITH entered AS (
        SELECT h.opportunity_id, h.new_stage AS stage, h.changed_at AS entered_at,
               pg_catalog.lead(h.changed_at) OVER w AS left_at
          FROM crm.opportunity_history AS h
         WHERE h.old_stage IS DISTINCT FROM h.new_stage
        WINDOW w AS (PARTITION BY h.opportunity_id ORDER BY h.id))
    SELECT s.sort_order, e.stage,
           pg_catalog.count(*) FILTER (WHERE e.left_at IS NOT NULL) AS passages,
           pg_catalog.round((pg_catalog.avg(pg_catalog.date_part('epoch', e.left_at OPERATOR(pg_catalog.-) e.entered_at))
                             OPERATOR(pg_catalog./) 86400)::numeric, 2) AS average_days,
           pg_catalog.count(*) FILTER (WHERE e.left_at IS NULL) AS currently_in_stage
      FROM entered AS e LEFT JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) e.stage
     GROUP BY s.sort_order, e.stage;
COMMENT ON VIEW crm.stage_velocity IS 'Average time opportunities spend in each stage, from crm.opportunity_history';
COMMENT ON COLUMN crm.stage_velocity.sort_order IS 'Position of the stage in the pipeline (NULL for a stage since renamed or removed)';
COMMENT ON COLUMN crm.stage_velocity.stage IS 'Stage';
COMMENT ON COLUMN crm.stage_velocity.passages IS 'How many times an opportunity entered and left the stage';
COMMENT ON COLUMN crm.stage_velocity.average_days IS 'Average days between entering and leaving the stage';
COMMENT ON COLUMN crm.stage_velocity.currently_in_stage IS 'Opportunities in the stage now';

CREATE VIEW crm.quote_to_order WITH (security_invoker = true) AS
    SELECT pg_catalog.date_trunc('month', q.created_at)::date AS month,
           pg_catalog.count(*) AS quotes,
           pg_catalog.count(*) FILTER (WHERE q.status OPERATOR(pg_catalog.=) 'Accepted'::crm.quote_status) AS accepted,
           pg_catalog.count(so.id) AS orders,
           pg_catalog.round(pg_catalog.count(so.id)::numeric OPERATOR(pg_catalog./) pg_catalog.count(*), 4) AS order_rate,
           COALESCE(pg_catalog.sum(so.total), 0) AS order_total
      FROM crm.quote AS q LEFT JOIN crm.sales_order AS so ON so.quote_id OPERATOR(pg_catalog.=) q.id
     GROUP BY 1;
COMMENT ON VIEW crm.quote_to_order IS 'Quote-to-order conversion per month the quotes were made';
COMMENT ON COLUMN crm.quote_to_order.month IS 'First day of the month';
COMMENT ON COLUMN crm.quote_to_order.quotes IS 'Quotes made';
COMMENT ON COLUMN crm.quote_to_order.accepted IS 'Of those, Accepted now';
COMMENT ON COLUMN crm.quote_to_order.orders IS 'Of those, turned into sales orders';
COMMENT ON COLUMN crm.quote_to_order.order_rate IS 'orders / quotes, 0-1';
COMMENT ON COLUMN crm.quote_to_order.order_total IS 'Total of those orders';

CREATE VIEW crm.campaign_performance WITH (security_invoker = true) AS
    SELECT c.id AS campaign_id, c.name, c.type, c.status, c.owner,
           c.budgeted_cost, c.actual_cost, c.expected_revenue,
           COALESCE(l.leads, 0) AS leads,
           COALESCE(l.converted_leads, 0) AS converted_leads,
           COALESCE(o.opportunities, 0) AS opportunities,
           COALESCE(o.won_opportunities, 0) AS won_opportunities,
           COALESCE(o.amount, 0) AS opportunity_amount,
           COALESCE(o.won_amount, 0) AS won_amount,
           CASE WHEN c.actual_cost OPERATOR(pg_catalog.>) 0
                THEN pg_catalog.round((COALESCE(o.won_amount, 0) OPERATOR(pg_catalog.-) c.actual_cost)
                                      OPERATOR(pg_catalog./) c.actual_cost, 4)
           END AS roi
      FROM crm.campaign AS c
      LEFT JOIN (SELECT g.campaign_id, pg_catalog.sum(g.leads) AS leads,
                        pg_catalog.sum(g.leads) FILTER (WHERE g.status OPERATOR(pg_catalog.=) 'Converted'::crm.lead_status) AS converted_leads
                   FROM crm_internal.campaign_lead_aggregate AS g GROUP BY g.campaign_id) AS l
        ON l.campaign_id OPERATOR(pg_catalog.=) c.id
      LEFT JOIN (SELECT g.campaign_id, pg_catalog.sum(g.opportunities) AS opportunities,
                        pg_catalog.sum(g.opportunities) FILTER (WHERE s.is_won) AS won_opportunities,
                        pg_catalog.sum(g.amount) AS amount,
                        pg_catalog.sum(g.amount) FILTER (WHERE s.is_won) AS won_amount
                   FROM crm_internal.campaign_opportunity_aggregate AS g
                   JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) g.stage
                  GROUP BY g.campaign_id) AS o
        ON o.campaign_id OPERATOR(pg_catalog.=) c.id;
COMMENT ON VIEW crm.campaign_performance IS 'Per campaign: leads, converted leads, opportunities, won opportunities, their amounts, and ROI = (won amount - actual cost) / actual cost; figures read from the maintained campaign aggregates';
COMMENT ON COLUMN crm.campaign_performance.campaign_id IS 'The campaign';
COMMENT ON COLUMN crm.campaign_performance.name IS 'Campaign name';
COMMENT ON COLUMN crm.campaign_performance.type IS 'Campaign type';
COMMENT ON COLUMN crm.campaign_performance.status IS 'Campaign status';
COMMENT ON COLUMN crm.campaign_performance.owner IS 'Who runs the campaign';
COMMENT ON COLUMN crm.campaign_performance.budgeted_cost IS 'Planned cost';
COMMENT ON COLUMN crm.campaign_performance.actual_cost IS 'Cost so far';
COMMENT ON COLUMN crm.campaign_performance.expected_revenue IS 'Expected revenue';
COMMENT ON COLUMN crm.campaign_performance.leads IS 'Leads attributed to the campaign';
COMMENT ON COLUMN crm.campaign_performance.converted_leads IS 'Of those, converted';
COMMENT ON COLUMN crm.campaign_performance.opportunities IS 'Opportunities attributed to the campaign';
COMMENT ON COLUMN crm.campaign_performance.won_opportunities IS 'Of those, won';
COMMENT ON COLUMN crm.campaign_performance.opportunity_amount IS 'Amount of all attributed opportunities';
COMMENT ON COLUMN crm.campaign_performance.won_amount IS 'Amount of the won ones';
COMMENT ON COLUMN crm.campaign_performance.roi IS 'Return on investment: (won amount - actual cost) / actual cost; NULL while the actual cost is 0';
