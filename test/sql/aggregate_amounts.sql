-- aggregate_amounts: the aggregates add amounts exactly, to the cent, at
-- every size.  The triggers add whole cents as integers and fall back to
-- numeric arithmetic for what does not fit (amounts past 10^10 weighted,
-- sums past 64 bits, stored values with more decimals); either way the kept
-- totals equal a fresh GROUP BY, shown with two decimals.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;
\set VERBOSITY terse
INSERT INTO crm.account (name) VALUES ('Acme');

-- Weighted amounts round half away from zero, as round(x, 2) does:
-- 0.005 -> 0.01 (and 0.015 -> 0.02 beside it in January), 0.015 -> 0.02,
-- 0.004999 -> 0.00, 4114.811811 -> 4114.81.
INSERT INTO crm.opportunity (name, account_id, amount, probability, close_date) VALUES
  ('half a cent', 1, 0.01, 50, '2027-01-10'),
  ('stays', 1, 0.03, 50, '2027-01-20'),
  ('one and a half', 1, 0.03, 50, '2027-02-10'),
  ('just below half', 1, 0.01, 49.99, '2027-03-10'),
  ('odd', 1, 12345.67, 33.33, '2027-04-10'),
  ('stage probability', 1, 100, NULL, '2027-05-10');  -- the stage's 10 %
SELECT close_month, amount, weighted_amount FROM crm.pipeline_totals ORDER BY close_month;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- The same rounding when a row leaves again: January keeps 0.02 of 0.03.
DELETE FROM crm.opportunity WHERE name = 'half a cent';
SELECT close_month, opportunities, amount, weighted_amount
  FROM crm.pipeline_totals WHERE close_month = '2027-01-01';
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- The largest amounts: weighting 99999999999999.99 at 99.99 % goes the
-- numeric way (99989999999999.990001 -> 99989999999999.99), 10^9 at 12.34 %
-- the integer way; both equal the GROUP BY.
INSERT INTO crm.opportunity (name, account_id, amount, probability, close_date) VALUES
  ('largest', 1, 99999999999999.99, 99.99, '2027-06-10'),
  ('large', 1, 1000000000, 12.34, '2027-06-10');
SELECT amount, weighted_amount FROM crm.pipeline_totals WHERE close_month = '2027-06-01';
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- Where numeric division rounds to four decimals before round(x, 2) does:
-- 32020681028444.45 x 9.19 / 100 = 2942700586514.044955 -> .0450 -> .05
-- (not .04); the triggers give what SQL gives.
INSERT INTO crm.opportunity (name, account_id, amount, probability, close_date) VALUES
  ('rounded twice', 1, 32020681028444.45, 9.19, '2027-09-10');
SELECT weighted_amount, round(32020681028444.45 * 9.19 / 100, 2) AS sql_gives
  FROM crm.pipeline_totals WHERE close_month = '2027-09-01';
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- A sum past 64 bits of cents: 1,000 of the largest amounts in one
-- statement (9.99 x 10^18 cents), then one more added to the stored row.
INSERT INTO crm.opportunity (name, account_id, amount, probability, close_date)
SELECT 'many ' || g, 1, 99999999999999.99, 100, '2027-07-10' FROM generate_series(1, 1000) g;
UPDATE crm.opportunity SET close_date = '2027-07-20' WHERE name = 'largest';
SELECT opportunities, amount, weighted_amount FROM crm.pipeline_totals WHERE close_month = '2027-07-01';
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
-- And past 64 bits only when added to the stored row: 900 (9.0 x 10^18
-- cents, which fit), then 100 more.
INSERT INTO crm.opportunity (name, account_id, amount, probability, close_date)
SELECT 'many ' || g, 1, 99999999999999.99, 100, '2027-08-10' FROM generate_series(1, 900) g;
INSERT INTO crm.opportunity (name, account_id, amount, probability, close_date)
SELECT 'many more ' || g, 1, 99999999999999.99, 100, '2027-08-10' FROM generate_series(1, 100) g;
SELECT opportunities, amount, weighted_amount FROM crm.pipeline_totals WHERE close_month = '2027-08-01';
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
DELETE FROM crm.opportunity WHERE name LIKE 'many %';
SELECT opportunities, amount, weighted_amount FROM crm.pipeline_totals WHERE close_month = '2027-07-01';
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- A stored value with a third decimal (written by hand by a superuser, who
-- may) is added to as numeric, exactly: the kept total stays 0.001 off the
-- base tables, no more, no less, and shows three decimals.
UPDATE crm_internal.pipeline_aggregate SET amount = amount + 0.001
 WHERE close_month = '2027-04-01' AND stripe <> 0;
UPDATE crm.opportunity SET amount = amount + 1 WHERE name = 'odd';
SELECT aggregate, measure, kept, actual, kept - actual AS off_by FROM crm.verify_aggregates();

-- A stored value shown with three decimals keeps them, as numeric addition
-- does (12347.670, not 12347.67), though it is whole cents.
UPDATE crm_internal.pipeline_aggregate SET amount = round(amount, 2)::numeric(20, 3)
 WHERE close_month = '2027-04-01' AND stripe <> 0;
UPDATE crm.opportunity SET amount = amount + 1 WHERE name = 'odd';
SELECT amount::text FROM crm_internal.pipeline_aggregate WHERE close_month = '2027-04-01' AND stripe <> 0;
SELECT crm.rebuild_aggregates() > 0 AS rebuilt;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- Negative stripe values: after a rebuild (stripe 0), removing deals leaves
-- this backend's stripe below zero; later additions to it stay exact.
DELETE FROM crm.opportunity WHERE name = 'odd';
SELECT amount < 0 AS below_zero FROM crm_internal.pipeline_aggregate
 WHERE close_month = '2027-04-01' AND stripe <> 0;
INSERT INTO crm.opportunity (name, account_id, amount, probability, close_date) VALUES
  ('again', 1, 0.07, 50, '2027-04-10');
SELECT amount, weighted_amount FROM crm.pipeline_totals WHERE close_month = '2027-04-01';
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
