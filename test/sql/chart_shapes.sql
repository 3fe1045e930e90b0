-- chart_shapes: the reporting views are shaped for charts (issue 22 §3):
-- every active stage appears even without deals, deals without a close
-- date fall in an explicit bucket of the forecast, counts are bigint and
-- amounts numeric with two decimals, and no view hands out 'infinity'.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;

INSERT INTO crm.account (name) VALUES ('Alpha');
INSERT INTO crm.opportunity (name, account_id, amount, stage, close_date, owner) VALUES
    ('dated', 1, 100, 'Proposal', '2027-02-10', 'crm_sales'),
    ('undated', 1, 250.5, 'Proposal', NULL, 'crm_sales');

-- Every active stage is a row of the pipeline: the stages without deals
-- with owner NULL, 0 deals and 0.00 amounts.
SELECT stage, owner, opportunities, amount, weighted_amount, currency
  FROM crm.pipeline_by_stage ORDER BY sort_order, owner;
-- An inactive stage without deals is left out; one with deals stays.
UPDATE crm.opportunity_stage SET active = false WHERE name IN ('Requirement', 'Proposal');
SELECT stage, opportunities FROM crm.pipeline_by_stage WHERE stage IN ('Requirement', 'Proposal');
UPDATE crm.opportunity_stage SET active = true WHERE name IN ('Requirement', 'Proposal');

-- The forecast's deals without a close date: their own bucket, labelled.
SELECT close_month, month_label, opportunities, amount FROM crm.forecast_by_month ORDER BY month_label;

-- Counts are bigint, amounts numeric, owners text, in every view a chart
-- reads from here.
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) AS type
  FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid
 WHERE c.relnamespace = 'crm'::regnamespace
   AND c.relname IN ('pipeline_totals', 'pipeline_by_stage', 'forecast_by_month', 'sales_funnel',
                     'sales_funnel_snapshot', 'campaign_performance')
   AND a.attname IN ('opportunities', 'items', 'leads', 'converted_leads', 'won_opportunities',
                     'amount', 'owner', 'month_label', 'is_exit')
 ORDER BY 1, 2;

-- Amounts have two decimals, zeros too.
SELECT DISTINCT scale(amount) AS pipeline_scale FROM crm.pipeline_by_stage;
SELECT DISTINCT scale(amount) AS funnel_scale FROM crm.sales_funnel WHERE kind = 'opportunity';

-- No view of schema crm hands out an infinite date or time: every date and
-- timestamp column of every view, read whole (as the superuser: every row).
DO $$
DECLARE
    c record;
    n bigint;
BEGIN
    FOR c IN
        SELECT v.oid::regclass AS view, a.attname
          FROM pg_class AS v JOIN pg_attribute AS a ON a.attrelid = v.oid AND a.attnum > 0
         WHERE v.relnamespace = 'crm'::regnamespace AND v.relkind = 'v'
           AND a.atttypid IN ('date'::regtype, 'timestamp'::regtype, 'timestamptz'::regtype)
         ORDER BY 1, 2
    LOOP
        EXECUTE format('SELECT count(*) FROM %s WHERE NOT isfinite(%I)', c.view, c.attname) INTO n;
        IF n > 0 THEN
            RAISE WARNING '% rows of %.% are infinite', n, c.view, c.attname;
        END IF;
    END LOOP;
END
$$;
SELECT count(*) AS date_columns_checked
  FROM pg_class AS v JOIN pg_attribute AS a ON a.attrelid = v.oid AND a.attnum > 0
 WHERE v.relnamespace = 'crm'::regnamespace AND v.relkind = 'v'
   AND a.atttypid IN ('date'::regtype, 'timestamp'::regtype, 'timestamptz'::regtype);

-- Nor does crm.verify_aggregates(): the group of the deals without a close
-- date has close_month null in its key.
SELECT count(*) AS infinite_keys FROM crm_internal.aggregates_compared WHERE group_key::text LIKE '%infinity%';
SELECT DISTINCT group_key -> 'close_month' AS undated FROM crm_internal.aggregates_compared
 WHERE aggregate = 'pipeline' AND group_key -> 'close_month' = 'null';

DROP EXTENSION crm CASCADE;
