-- reports: the BI views (funnel, conversion rates, pipeline, forecast,
-- performance, stage velocity, quote-to-order) give what a GROUP BY over the
-- base tables gives.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;

INSERT INTO crm.campaign (name) VALUES ('Expo');
INSERT INTO crm.lead (name, company, source, status, campaign_id, owner) VALUES
    ('A', 'Alpha', 'website', 'In Transaction', 1, 'crm_sales'),
    ('B', 'Beta', 'website', 'New Lead', 1, 'crm_sales'),
    ('C', 'Gamma', 'phone', 'Completed', NULL, 'crm_manager'),
    ('D', 'Delta', 'phone', 'Not Qualified', NULL, 'crm_manager');
SELECT count(*) FROM crm.lead l CROSS JOIN LATERAL crm.convert_lead(l.id) c WHERE l.status IN ('In Transaction', 'Completed');
UPDATE crm.opportunity SET amount = 1000, close_date = '2027-01-15' WHERE lead_id = 1;
UPDATE crm.opportunity SET amount = 500, close_date = '2027-02-10', stage = 'Proposal' WHERE lead_id = 3;
INSERT INTO crm.opportunity (name, account_id, amount, stage, close_date, owner) VALUES ('E', 1, 200, 'Negotiation', '2027-01-20', 'crm_sales');
UPDATE crm.opportunity SET stage = 'Successful' WHERE lead_id = 1;

-- Funnel: per step, the leads and deals that reached it; exits after the steps.
SELECT position, kind, step, is_exit, items, amount FROM crm.sales_funnel ORDER BY position, is_exit, step_order;
-- Today's records: leads by status, opportunities by stage, won.
SELECT position, kind, step, items, amount FROM crm.sales_funnel_snapshot ORDER BY position, step_order;

-- Conversion rates by source, owner, campaign and month (the month is today's).
SELECT dimension, CASE WHEN dimension = 'month' THEN 'this month' ELSE value END AS value, leads, converted, conversion_rate
  FROM crm.lead_conversion_rates ORDER BY dimension, value;

-- Pipeline by stage and owner, with probability-weighted amounts.
SELECT stage, owner, opportunities, amount, weighted_amount FROM crm.pipeline_by_stage ORDER BY sort_order, owner::text;
-- ... equal to the GROUP BY over the opportunities.
SELECT (SELECT sum(amount) FROM crm.pipeline_by_stage) = (SELECT sum(amount) FROM crm.opportunity) AS pipeline_total_matches;

-- Forecast by close month and category (lost deals excluded).
SELECT close_month, forecast_category, owner, opportunities, amount, weighted_amount
  FROM crm.forecast_by_month ORDER BY close_month, forecast_category, owner::text;

-- Performance: won deals per owner and month of closing.
SELECT owner, won, lost, won_amount, win_rate, average_deal_size, average_cycle_days >= 0 AS cycle_known
  FROM crm.sales_performance ORDER BY owner::text;

-- Stage velocity from the history: stages passed through and where deals are now.
SELECT stage, passages, currently_in_stage, average_days >= 0 AS measured
  FROM crm.stage_velocity ORDER BY sort_order;

-- Quote-to-order.
SELECT crm.create_quote(id) FROM crm.opportunity WHERE lead_id = 1;
UPDATE crm.quote SET status = 'Presented';
UPDATE crm.quote SET status = 'Accepted';
SELECT crm.create_order(1) > 0 AS ordered;
SELECT crm.create_quote(id) > 0 AS second_quote FROM crm.opportunity WHERE lead_id = 3;
SELECT quotes, accepted, orders, order_rate FROM crm.quote_to_order;

-- Every report is security_invoker: row-level security applies to its reader.
SELECT c.relname, c.reloptions FROM pg_class c
 WHERE c.relnamespace = 'crm'::regnamespace AND c.relkind = 'v'
   AND NOT coalesce(c.reloptions, '{}') @> '{security_invoker=true}' ;

-- Owners in views are role names as text (every BI tool types them), not
-- quoted even where the name needs quotes; the tables keep regrole.
SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.relnamespace = 'crm'::regnamespace AND c.relkind = 'v' AND a.atttypid = 'regrole'::regtype;
CREATE ROLE "Regress Report Rep" IN ROLE crm_sales;
UPDATE crm.opportunity SET owner = '"Regress Report Rep"' WHERE name = 'E';
SELECT o.owner AS table_owner, pg_typeof(o.owner) AS table_type, p.owner AS view_owner, pg_typeof(p.owner) AS view_type
  FROM crm.opportunity o JOIN crm.pipeline_by_stage p ON p.stage = o.stage WHERE o.name = 'E';
SELECT owner, opportunities FROM crm.forecast_by_month WHERE owner = 'Regress Report Rep';
UPDATE crm.opportunity SET owner = 'crm_sales' WHERE name = 'E';
DROP ROLE "Regress Report Rep";
