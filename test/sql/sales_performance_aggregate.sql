-- sales_performance_aggregate: crm.sales_performance reads the maintained
-- aggregate (deals with a closing time per month of closing in UTC, owner,
-- stage, close month and currency) and gives exactly what a GROUP BY over
-- crm.opportunity gives: won amounts converted at the rate of each deal's
-- close date, the sales cycle exact; after every kind of write, TRUNCATE,
-- a new closed stage or an edit of a rate (shown at once), in
-- any session time zone, and, for a rep, over the deals the rep may read.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_perf_rep;
DROP ROLE IF EXISTS regress_perf_other;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_perf_rep IN ROLE crm_sales;
CREATE ROLE regress_perf_other IN ROLE crm_sales;

-- The reference: the report's former definition, a GROUP BY over every
-- closed deal, with the month of closing taken in UTC and the cycle exact.
CREATE TEMP VIEW perf_actual WITH (security_invoker = true) AS
    SELECT pg_get_userbyid(o.owner)::text AS owner, date_trunc('month', o.closed_at AT TIME ZONE 'UTC')::date AS period,
           count(*) FILTER (WHERE s.is_won) AS won,
           count(*) FILTER (WHERE NOT s.is_won) AS lost,
           COALESCE(round(sum(o.amount * x.rate) FILTER (WHERE s.is_won), 2), 0) AS won_amount,
           round(count(*) FILTER (WHERE s.is_won)::numeric / count(*), 4) AS win_rate,
           round(avg(o.amount * x.rate) FILTER (WHERE s.is_won), 2) AS average_deal_size,
           round(avg(extract(epoch FROM o.closed_at - o.created_at)) FILTER (WHERE s.is_won) / 86400, 1) AS average_cycle_days,
           CASE WHEN min(o.currency) FILTER (WHERE s.is_won) = max(o.currency) FILTER (WHERE s.is_won)
                THEN min(o.currency) FILTER (WHERE s.is_won) END AS currency,
           CASE WHEN min(o.currency) FILTER (WHERE s.is_won) = max(o.currency) FILTER (WHERE s.is_won)
                THEN sum(o.amount) FILTER (WHERE s.is_won) END AS won_amount_in_currency
      FROM crm.opportunity AS o JOIN crm.opportunity_stage AS s ON s.name = o.stage
     CROSS JOIN LATERAL (SELECT CASE WHEN s.is_won THEN crm.exchange_rate_on(o.currency, o.close_date) END AS rate) AS x
     WHERE s.is_closed AND o.closed_at IS NOT NULL
     GROUP BY o.owner, 2;
GRANT SELECT ON perf_actual TO regress_perf_rep;
CREATE TEMP VIEW perf_differences WITH (security_invoker = true) AS
    SELECT count(*) AS differences
      FROM ((TABLE crm.sales_performance EXCEPT ALL TABLE perf_actual)
            UNION ALL (TABLE perf_actual EXCEPT ALL TABLE crm.sales_performance)) AS d;
GRANT SELECT ON perf_differences TO regress_perf_rep;

-- USD is the corporate currency; EUR at 1.05 before 2026, 1.10 from
-- January 2026, 1.08 from March 2026 (the latest rate).
INSERT INTO crm.exchange_rate (currency, valid_from, rate) VALUES
    ('EUR', '2000-01-01', 1.05), ('EUR', '2026-01-01', 1.10), ('EUR', '2026-03-01', 1.08);
INSERT INTO crm.account (name) VALUES ('Acme');

-- A varied set: 200 deals of three owners in two currencies, close dates
-- over four months and none; two thirds of them closed (won or lost).
INSERT INTO crm.opportunity (name, account_id, amount, currency, close_date, owner)
SELECT 'Deal ' || g, 1, 100 + g * 7.25, (ARRAY['USD', 'EUR'])[1 + g % 2],
       CASE WHEN g % 9 <> 0 THEN date '2025-12-05' + (g % 4) * 31 END,
       (ARRAY['regress_perf_rep', 'regress_perf_other', 'crm_manager'])[1 + g % 5 % 3]::regrole
  FROM generate_series(1, 200) AS g;
UPDATE crm.opportunity SET stage = 'Successful' WHERE id % 3 = 0;
UPDATE crm.opportunity SET stage = 'Failed', loss_reason_code = 'price' WHERE id % 3 = 1;
SELECT count(*) FILTER (WHERE closed_at IS NOT NULL) AS closed, count(*) AS deals FROM crm.opportunity;
SELECT count(*) AS differences FROM crm.verify_aggregates();
SELECT * FROM perf_differences;

-- Creation and closing times spread over months, some closings minutes
-- from a month's end in UTC.  Both are set by the database: a bulk load of
-- old deals is a restore (replica mode, no triggers), then a rebuild.
SET session_replication_role = replica;
UPDATE crm.opportunity
   SET created_at = timestamptz '2025-10-01 08:00:00+00' + (id % 10) * interval '1 day 3 hours 7 minutes 11.5 seconds',
       closed_at = CASE WHEN closed_at IS NOT NULL
                        THEN timestamptz '2026-01-31 23:50:00+00' - (id % 4) * interval '1 month' + (id % 3) * interval '20 minutes' END;
RESET session_replication_role;
SELECT crm.rebuild_aggregates() > 0 AS rebuilt;
SELECT count(*) AS differences FROM crm.verify_aggregates();
SELECT * FROM perf_differences;
SELECT owner, period, won, lost, won_amount, win_rate, average_deal_size, average_cycle_days, currency, won_amount_in_currency
  FROM crm.sales_performance ORDER BY owner, period;
-- The former float average of the cycle agrees here too.
SELECT count(*) AS float_differences
  FROM crm.sales_performance AS p
  JOIN (SELECT pg_get_userbyid(o.owner)::text AS owner, date_trunc('month', o.closed_at AT TIME ZONE 'UTC')::date AS period,
               round((avg(date_part('epoch', o.closed_at - o.created_at)) FILTER (WHERE s.is_won) / 86400)::numeric, 1) AS days
          FROM crm.opportunity AS o JOIN crm.opportunity_stage AS s ON s.name = o.stage
         WHERE s.is_closed AND o.closed_at IS NOT NULL GROUP BY 1, 2) AS f USING (owner, period)
 WHERE p.average_cycle_days IS DISTINCT FROM f.days;
SELECT pg_typeof(won) AS won_type, pg_typeof(lost) AS lost_type, pg_typeof(won_amount) AS amount_type
  FROM crm.sales_performance LIMIT 1;

-- The month is the month in UTC, whatever the session's time zone.
SET TimeZone = 'Asia/Tokyo';
SELECT * FROM perf_differences;
SELECT DISTINCT period FROM crm.sales_performance ORDER BY period;
SET TimeZone = 'America/Los_Angeles';
SELECT * FROM perf_differences;
RESET TimeZone;

-- Bulk updates: amounts, currency, close dates (another rate), owners,
-- reopening (closed_at cleared), closing; COPY; deletes.
UPDATE crm.opportunity SET amount = amount * 2 WHERE id % 4 = 0;
UPDATE crm.opportunity SET close_date = NULL WHERE id % 10 = 3;
UPDATE crm.opportunity SET close_date = '2026-03-15' WHERE id % 10 = 6;
UPDATE crm.opportunity SET owner = 'regress_perf_rep' WHERE id % 7 = 0;
UPDATE crm.opportunity SET stage = 'Proposal' WHERE id % 12 = 0;
UPDATE crm.opportunity SET stage = 'Successful' WHERE id % 3 = 2 AND id % 5 = 0;
COPY crm.opportunity (name, account_id, amount, currency, close_date, stage) FROM stdin;
Copied won	1	999.99	EUR	2026-02-02	Successful
Copied open	1	50	USD	\N	Proposal
\.
DELETE FROM crm.opportunity WHERE id % 11 = 0;
SELECT count(*) AS differences FROM crm.verify_aggregates();
SELECT * FROM perf_differences;

-- A rate edit shows at once.
UPDATE crm.exchange_rate SET rate = 1.20 WHERE currency = 'EUR' AND valid_from = '2026-01-01';
SELECT * FROM perf_differences;

-- The stages are read at read time: a new won stage counts as won, and a
-- closed stage made won while empty counts its deals as won from then on.
INSERT INTO crm.opportunity_stage (name, sort_order, probability, is_closed, is_won, forecast_category)
    VALUES ('Won Late', 65, 100, true, true, 'Closed'), ('Parked', 66, 0, true, false, 'Omitted');
UPDATE crm.opportunity SET stage = 'Won Late' WHERE id % 6 = 3;
UPDATE crm.opportunity SET stage = 'Parked', loss_reason_code = 'price' WHERE id % 6 = 4;
SELECT * FROM perf_differences;
UPDATE crm.opportunity SET stage = 'Failed' WHERE stage = 'Parked';
UPDATE crm.opportunity_stage SET is_won = true WHERE name = 'Parked';
UPDATE crm.opportunity SET stage = 'Parked' WHERE id % 6 = 4;
SELECT * FROM perf_differences;
SELECT sum(won) AS won, sum(lost) AS lost FROM crm.sales_performance;

-- Rolled back and rolled back to a savepoint: no trace.
BEGIN;
UPDATE crm.opportunity SET amount = amount + 1;
SAVEPOINT s;
DELETE FROM crm.opportunity WHERE stage = 'Successful';
ROLLBACK TO SAVEPOINT s;
SELECT * FROM perf_differences;
ROLLBACK;
SELECT * FROM perf_differences;

-- Statements big enough to spill their transition tables to disk.
SET work_mem = '64kB';
INSERT INTO crm.opportunity (name, account_id, amount, currency, close_date, stage)
SELECT 'Bulk ' || g, 1, g, (ARRAY['USD', 'EUR'])[1 + g % 2], date '2026-01-10' + g % 60, 'Qualification'
  FROM generate_series(1, 3000) AS g;
UPDATE crm.opportunity SET stage = 'Successful' WHERE name LIKE 'Bulk %' AND id % 2 = 0;
UPDATE crm.opportunity SET stage = 'Failed', loss_reason_code = 'price' WHERE name LIKE 'Bulk %' AND id % 2 = 1;
RESET work_mem;
SELECT count(*) AS differences FROM crm.verify_aggregates();
SELECT * FROM perf_differences;

-- A rep sees the performance of the deals the rep may read: the same as
-- the GROUP BY over them.
SET ROLE regress_perf_rep;
SELECT count(*) > 0 AS sees_deals, count(*) FILTER (WHERE owner <> 'regress_perf_rep'::regrole) AS others FROM crm.opportunity;
SELECT * FROM perf_differences;
SELECT DISTINCT owner FROM crm.sales_performance;
-- ... and cannot write the aggregate.
INSERT INTO crm_internal.sales_performance_aggregate (closed_month, owner, stage, close_month, currency, stripe, opportunities)
    VALUES ('2026-01-01', 'regress_perf_rep', 'Successful', 'infinity', 'USD', 0, 100);
\echo :LAST_ERROR_SQLSTATE
DELETE FROM crm_internal.sales_performance_aggregate;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- The stripes compacted; TRUNCATE empties the report.
SELECT crm.compact_aggregates() > 0 AS compacted;
SELECT * FROM perf_differences;
SET client_min_messages = warning;
TRUNCATE crm.opportunity CASCADE;
RESET client_min_messages;
SELECT count(*) AS rows_after_truncate FROM crm.sales_performance;
SELECT count(*) AS aggregate_rows FROM crm_internal.sales_performance_aggregate;

DROP VIEW perf_differences, perf_actual;
SET client_min_messages = warning;
DROP EXTENSION crm CASCADE;
RESET client_min_messages;
DROP ROLE regress_perf_rep;
DROP ROLE regress_perf_other;
