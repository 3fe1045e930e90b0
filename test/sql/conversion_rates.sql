-- conversion_rates: crm.lead_conversion_rates reads the maintained lead
-- aggregates (by source, owner, campaign, month of capture in UTC) and
-- gives exactly what a GROUP BY over crm.lead gives: after inserts, COPY,
-- conversions, bulk updates, deletes and TRUNCATE, in any session time
-- zone, and, for a rep, only over the leads the rep may read.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_rates_rep;
DROP ROLE IF EXISTS regress_rates_other;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_rates_rep IN ROLE crm_sales;
CREATE ROLE regress_rates_other IN ROLE crm_sales;

-- The reference: the report's former definition, a GROUP BY over every lead
-- (the month of capture taken in UTC).
CREATE TEMP VIEW rates_actual WITH (security_invoker = true) AS
    SELECT CASE WHEN GROUPING(l.source) = 0 THEN 'source'
                WHEN GROUPING(l.owner) = 0 THEN 'owner'
                WHEN GROUPING(l.campaign_id) = 0 THEN 'campaign'
                ELSE 'month' END AS dimension,
           COALESCE(l.source, l.owner::text, c.name,
                    to_char(date_trunc('month', l.created_at AT TIME ZONE 'UTC'), 'YYYY-MM'), '(none)') AS value,
           count(*) AS leads,
           count(*) FILTER (WHERE l.status = 'Converted') AS converted,
           round(count(*) FILTER (WHERE l.status = 'Converted')::numeric / count(*), 4) AS conversion_rate
      FROM crm.lead AS l LEFT JOIN crm.campaign AS c ON c.id = l.campaign_id
     GROUP BY GROUPING SETS ((l.source), (l.owner), (l.campaign_id, c.name), (date_trunc('month', l.created_at AT TIME ZONE 'UTC')));
GRANT SELECT ON rates_actual TO regress_rates_rep;
-- rows of the report that the reference lacks, and the other way round
CREATE TEMP VIEW rates_differences WITH (security_invoker = true) AS
    SELECT count(*) AS differences
      FROM ((TABLE crm.lead_conversion_rates EXCEPT ALL TABLE rates_actual)
            UNION ALL (TABLE rates_actual EXCEPT ALL TABLE crm.lead_conversion_rates)) AS d;
GRANT SELECT ON rates_differences TO regress_rates_rep;

-- A varied set: 240 leads of every source, seven statuses, three owners,
-- two campaigns and none; some of them converted (the duplicate warnings
-- of the conversions silenced).
INSERT INTO crm.campaign (name) VALUES ('Expo'), ('Webinar');
INSERT INTO crm.lead (name, company, email, source, status, campaign_id, owner)
SELECT 'Lead ' || g, 'Company ' || g, 'lead' || g || '@example.com',
       (ARRAY['website', 'phone', 'email', 'referral', 'campaign', 'event', 'partner', 'social', 'other'])[1 + g % 9],
       (ARRAY['New Lead', 'Processing', 'Following Up', 'In Transaction', 'Completed', 'Not Qualified'])[1 + g % 6]::crm.lead_status,
       NULLIF(g / 2 % 3, 0),
       (ARRAY['regress_rates_rep', 'regress_rates_other', 'crm_manager'])[1 + g % 4 % 3]::regrole
  FROM generate_series(1, 240) AS g;
SET client_min_messages = error;
SELECT count(*) AS converted FROM (SELECT crm.convert_lead(l.id) FROM crm.lead AS l
                                    WHERE l.status IN ('In Transaction', 'Completed') AND l.id % 5 <> 0 ORDER BY l.id) AS c;
RESET client_min_messages;
SELECT count(*) AS differences FROM crm.verify_aggregates();
SELECT * FROM rates_differences;

-- Capture times spread over months, some of them minutes from a month's
-- end in UTC (already the next month east of Greenwich, still the month
-- west of it).  created_at is set by the database: a bulk load of old
-- leads is a restore (replica mode, no triggers), then a rebuild.
SET session_replication_role = replica;
UPDATE crm.lead SET created_at = timestamptz '2026-01-31 23:50:00+00' - (id % 7) * interval '1 month' + (id % 3) * interval '20 minutes';
RESET session_replication_role;
SELECT crm.rebuild_aggregates() > 0 AS rebuilt;
SELECT count(*) AS differences FROM crm.verify_aggregates();
SELECT * FROM rates_differences;
SELECT value, leads, converted, conversion_rate FROM crm.lead_conversion_rates WHERE dimension = 'month' ORDER BY value;

-- The month is the month in UTC, whatever the session's time zone.
SET TimeZone = 'Asia/Tokyo';
SELECT value, leads FROM crm.lead_conversion_rates WHERE dimension = 'month' ORDER BY value LIMIT 2;
SELECT * FROM rates_differences;
SET TimeZone = 'America/Los_Angeles';
SELECT * FROM rates_differences;
RESET TimeZone;

-- Every dimension; campaign (none) is the leads without a campaign.
SELECT dimension, value, leads, converted, conversion_rate
  FROM crm.lead_conversion_rates WHERE dimension <> 'month' ORDER BY dimension, value;
SELECT pg_typeof(leads) AS leads_type, pg_typeof(converted) AS converted_type, pg_typeof(conversion_rate) AS rate_type
  FROM crm.lead_conversion_rates LIMIT 1;

-- Bulk updates of source, status, owner and campaign; COPY; deletes.
UPDATE crm.lead SET source = 'referral' WHERE id % 5 = 0 AND status <> 'Converted';
UPDATE crm.lead SET status = 'Not Qualified' WHERE id % 7 = 0 AND status <> 'Converted';
UPDATE crm.lead SET owner = 'regress_rates_rep', campaign_id = NULL WHERE id % 11 = 0;
UPDATE crm.lead SET campaign_id = 2 WHERE id % 13 = 0;
COPY crm.lead (name, company, source, status, owner) FROM stdin;
Copied A	Copy Co A	event	New Lead	regress_rates_other
Copied B	Copy Co B	social	Processing	crm_manager
\.
DELETE FROM crm.lead WHERE id % 17 = 0 AND status <> 'Converted';
SELECT count(*) AS differences FROM crm.verify_aggregates();
SELECT * FROM rates_differences;

-- Renaming a source code cascades to the leads: the report follows.
UPDATE crm.lead_source SET code = 'web' WHERE code = 'website';
SELECT * FROM rates_differences;
SELECT value, leads FROM crm.lead_conversion_rates WHERE dimension = 'source' AND value IN ('web', 'website');

-- Statements big enough to spill their transition tables to disk.
SET work_mem = '64kB';
INSERT INTO crm.lead (name, company, source, status, owner)
SELECT 'Bulk ' || g, 'Bulk Co ' || g, (ARRAY['web', 'phone', 'event'])[1 + g % 3],
       (ARRAY['New Lead', 'Processing'])[1 + g % 2]::crm.lead_status, 'crm_manager'
  FROM generate_series(1, 3000) AS g;
UPDATE crm.lead SET status = 'Not Qualified', campaign_id = 1 WHERE name LIKE 'Bulk %' AND id % 2 = 0;
DELETE FROM crm.lead WHERE name LIKE 'Bulk %' AND id % 3 = 0;
RESET work_mem;
SELECT count(*) AS differences FROM crm.verify_aggregates();
SELECT * FROM rates_differences;

-- A campaign's deletion sets its leads' campaign to none.
DELETE FROM crm.campaign WHERE name = 'Webinar';
SELECT * FROM rates_differences;
SELECT value, leads FROM crm.lead_conversion_rates WHERE dimension = 'campaign' ORDER BY value;

-- Rolled back and rolled back to a savepoint: no trace.
BEGIN;
UPDATE crm.lead SET source = 'phone' WHERE status <> 'Converted';
SAVEPOINT s;
DELETE FROM crm.lead WHERE status = 'New Lead';
ROLLBACK TO SAVEPOINT s;
SELECT * FROM rates_differences;
ROLLBACK;
SELECT * FROM rates_differences;

-- A rep sees the rates of the leads the rep may read: the same as the
-- GROUP BY over them (row-level security on the leads and the aggregates).
SET ROLE regress_rates_rep;
SELECT count(*) > 0 AS sees_leads, count(*) FILTER (WHERE owner <> 'regress_rates_rep'::regrole) AS others FROM crm.lead;
SELECT * FROM rates_differences;
SELECT dimension, value, leads FROM crm.lead_conversion_rates WHERE dimension IN ('owner', 'campaign') ORDER BY dimension, value;
-- ... and cannot write the aggregates.
INSERT INTO crm_internal.lead_source_aggregate (owner, source, status, stripe, leads) VALUES ('regress_rates_rep', 'phone', 'New Lead', 0, 100);
\echo :LAST_ERROR_SQLSTATE
UPDATE crm_internal.lead_month_aggregate SET leads = leads + 1;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- The stripes compacted, then TRUNCATE empties the report.
SELECT crm.compact_aggregates() > 0 AS compacted;
SELECT * FROM rates_differences;
SET client_min_messages = warning;
TRUNCATE crm.lead CASCADE;
RESET client_min_messages;
SELECT count(*) AS rows_after_truncate FROM crm.lead_conversion_rates;
SELECT count(*) AS aggregate_rows FROM crm_internal.lead_source_aggregate, crm_internal.lead_month_aggregate;
SELECT count(*) AS differences FROM crm.verify_aggregates();

DROP VIEW rates_differences, rates_actual;
SET client_min_messages = warning;
DROP EXTENSION crm CASCADE;
RESET client_min_messages;
DROP ROLE regress_rates_rep;
DROP ROLE regress_rates_other;
