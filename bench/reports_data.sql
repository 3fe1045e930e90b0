-- bench/reports_data.sql: the data of bench/reports.sh, loaded into a
-- database where crm is installed and the roles bench_rep1..bench_repOWNERS
-- (crm_sales logins) exist.  psql variables: n_leads, n_opps, n_accounts
-- (a multiple of owners), owners, campaigns.
--
-- Shape: n_accounts accounts with one contact each; n_opps opportunities,
-- n_accounts / n_opps per account, in 3 currencies (USD, the corporate
-- one, 60%; EUR 25%; GBP 15%) with a rate per month, created over the last
-- 24 months, close dates over 24 months (3% of the open ones without one),
-- 50% open over 5 stages, 25% won, 25% lost (with a loss reason), closed
-- ones with closed_at; two history rows per opportunity (its creation in
-- Qualification, then its move to the current stage; for those still in
-- Qualification an amount change); n_leads leads over every status (15%
-- converted, to the account and contact of their number and to the
-- opportunity of their number), sources and campaigns, with their status
-- history (the capture as New Lead, then the move to the current status).
-- Every row of number g belongs to bench_rep(1 + (g - 1) % owners): an
-- account, its contact, its deals and the leads converted into it have one
-- owner, so each rep owns 1/owners of every table.
--
-- Loaded with session_replication_role = replica (the extension's triggers
-- off; search_text, a generated column, is computed all the same): the
-- database-set columns (created_at, updated_at, closed_at, probability,
-- currency, the histories) are written here as the triggers would, and the
-- caller then runs crm.rebuild_aggregates(); bench/reports.sh proves the
-- load faithful with crm.verify_aggregates() at the small size.

\set ON_ERROR_STOP on
SET client_min_messages = warning;
SET maintenance_work_mem = '512MB';
SELECT setseed(0.22);

-- rates: the 1st of every month from 2024 to 2028
INSERT INTO crm.exchange_rate (currency, valid_from, rate)
SELECT c.code, (date '2024-01-01' + pg_catalog.make_interval(months => m))::date, c.base + m * 0.002
  FROM (VALUES ('EUR', 1.08), ('GBP', 1.27)) AS c (code, base), generate_series(0, 59) AS m;

INSERT INTO crm.campaign (name, type, status, actual_cost, budgeted_cost, owner)
SELECT 'Campaign ' || g, (ARRAY['Email', 'Event', 'Webinar', 'Advertisement', 'Partner'])[1 + g % 5],
       'In Progress', 5000 * g, 6000 * g, ('bench_rep' || (1 + (g - 1) % :owners))::regrole
  FROM generate_series(1, :campaigns) g;

SET session_replication_role = replica;

CREATE TEMP TABLE stage_pick (i int PRIMARY KEY, stage text NOT NULL);
-- 20 slots: 50% open over 5 stages, 25% won, 25% lost
INSERT INTO stage_pick
SELECT i - 1, s FROM unnest(ARRAY['Qualification', 'Qualification', 'Qualification', 'Requirement', 'Requirement',
                                  'Proposal', 'Proposal', 'Negotiation', 'Negotiation', 'Deal Closed',
                                  'Successful', 'Successful', 'Successful', 'Successful', 'Successful',
                                  'Failed', 'Failed', 'Failed', 'Failed', 'Failed']) WITH ORDINALITY AS t (s, i);

INSERT INTO crm.account (name, industry, website, phone, owner, created_at, updated_at)
SELECT 'Account ' || g, 'Industry ' || g % 17, 'https://account' || g || '.example',
       '+1 555 ' || lpad(g::text, 7, '0'), ('bench_rep' || (1 + (g - 1) % :owners))::regrole,
       now() - interval '760 days', now() - interval '760 days'
  FROM generate_series(1, :n_accounts) g;

INSERT INTO crm.contact (name, email, account_id, owner, created_at, updated_at)
SELECT 'Contact ' || g, 'contact' || g || '@account' || g || '.example', g,
       ('bench_rep' || (1 + (g - 1) % :owners))::regrole, now() - interval '760 days', now() - interval '760 days'
  FROM generate_series(1, :n_accounts) g;

-- opportunities: the random draws first, then the rows
CREATE TEMP TABLE opp AS
SELECT g, p.stage, s.probability, s.is_closed, s.is_won,
       now() - pg_catalog.make_interval(days => 1 + (random() * 728)::int, secs => (random() * 86399)::int) AS created_at,
       round((100 + random() * 99900)::numeric, 2) AS amount,
       (ARRAY['USD', 'USD', 'USD', 'USD', 'USD', 'USD', 'EUR', 'EUR', 'EUR', 'GBP'])[1 + (random() * 9.99)::int % 10]
           AS currency,
       (random() * 120)::int AS days_to_close, 1 + (random() * 60)::int AS days_to_move,
       random() < 0.03 AS no_close_date,
       CASE WHEN random() < 0.2 THEN 1 + (random() * (:campaigns - 1))::int END AS campaign_id
  FROM generate_series(1, :n_opps) g
  JOIN stage_pick AS p ON p.i = (g * 7) % 20
  JOIN crm.opportunity_stage AS s ON s.name = p.stage;
ALTER TABLE opp ADD COLUMN closed_at timestamptz, ADD COLUMN moved_at timestamptz, ADD COLUMN close_date date;
UPDATE opp SET moved_at = least(created_at + pg_catalog.make_interval(days => days_to_move), now() - interval '1 minute'),
               closed_at = CASE WHEN is_closed THEN least(created_at + pg_catalog.make_interval(days => days_to_move), now() - interval '1 minute') END;
UPDATE opp SET close_date = CASE WHEN is_closed THEN closed_at::date
                                 WHEN NOT no_close_date THEN (created_at + pg_catalog.make_interval(days => 15 + days_to_close))::date END;

-- lead g is converted when (g * 3) % 20 < 3 (the leads below), into the
-- opportunity of its number
INSERT INTO crm.opportunity (name, account_id, contact_id, lead_id, stage, amount, probability, close_date, loss_reason_code,
                             owner, currency, campaign_id, closed_at, created_at, updated_at, furthest_stage, stage_changed_at)
OVERRIDING SYSTEM VALUE
SELECT 'Deal ' || g, 1 + (g - 1) % :n_accounts, 1 + (g - 1) % :n_accounts,
       CASE WHEN (g * 3) % 20 < 3 AND g <= :n_leads THEN g END, stage, amount, probability, close_date,
       CASE WHEN is_closed AND NOT is_won THEN (ARRAY['price', 'competitor', 'no_budget', 'no_decision', 'timing'])[1 + g % 5] END,
       ('bench_rep' || (1 + (g - 1) % :owners))::regrole, currency, campaign_id, closed_at, created_at, moved_at,
       -- the furthest stage of its history (Qualification, then its stage):
       -- a lost deal's is Qualification
       CASE WHEN is_closed AND NOT is_won THEN 'Qualification' ELSE stage END,
       CASE WHEN stage = 'Qualification' THEN created_at ELSE moved_at END
  FROM opp ORDER BY g;
SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence('crm.opportunity', 'id'), :n_opps);

-- two history rows per opportunity: its creation in Qualification, then the
-- move to its stage (or, still in Qualification, a change of amount)
INSERT INTO crm.opportunity_history (opportunity_id, old_stage, new_stage, old_amount, new_amount,
                                     old_probability, new_probability, old_close_date, new_close_date, changed_at, changed_by,
                                     old_owner, new_owner, currency)
SELECT h.*
  FROM opp AS o
 CROSS JOIN LATERAL (
    VALUES (o.g, NULL::text, 'Qualification'::text, NULL::numeric,
            CASE WHEN o.stage = 'Qualification' THEN round(o.amount * 0.8, 2) ELSE o.amount END,
            NULL::numeric, 10.00::numeric, NULL::date, o.close_date, o.created_at,
            ('bench_rep' || (1 + (o.g - 1) % :owners))::regrole,
            NULL::regrole, ('bench_rep' || (1 + (o.g - 1) % :owners))::regrole, o.currency),
           (o.g, 'Qualification', o.stage,
            CASE WHEN o.stage = 'Qualification' THEN round(o.amount * 0.8, 2) ELSE o.amount END, o.amount,
            10.00, o.probability, o.close_date, o.close_date, o.moved_at,
            ('bench_rep' || (1 + (o.g - 1) % :owners))::regrole,
            ('bench_rep' || (1 + (o.g - 1) % :owners))::regrole, ('bench_rep' || (1 + (o.g - 1) % :owners))::regrole,
            o.currency)) AS h
 ORDER BY o.g, h.column2 IS NOT NULL;

-- the stage passages those entries hold (crm.rebuild_aggregates() does not
-- rebuild them; crm.verify_aggregates() checks them against the history)
INSERT INTO crm_internal.stage_velocity_aggregate (stage, owner, stripe, passages, seconds)
SELECT 'Qualification', ('bench_rep' || (1 + (o.g - 1) % :owners))::regrole, 0, count(*),
       sum(extract(epoch FROM o.moved_at - o.created_at))
  FROM opp AS o WHERE o.stage <> 'Qualification'
 GROUP BY 2;

-- leads
CREATE TEMP TABLE ld AS
SELECT g, (ARRAY['Converted', 'Converted', 'Converted', 'Not Qualified', 'Not Qualified', 'New Lead', 'New Lead',
                 'New Lead', 'New Lead', 'New Lead', 'Processing', 'Processing', 'Processing', 'Following Up',
                 'Following Up', 'Following Up', 'In Transaction', 'In Transaction', 'Completed', 'Completed'])[1 + (g * 3) % 20]::crm.lead_status
           AS status,
       now() - pg_catalog.make_interval(days => 2 + (random() * 727)::int, secs => (random() * 86399)::int) AS created_at,
       1 + (random() * 40)::int AS days_to_move,
       (SELECT array_agg(code ORDER BY sort_order) FROM crm.lead_source)[1 + (random() * 8.99)::int % 9] AS source,
       CASE WHEN random() < 0.3 THEN 1 + (random() * (:campaigns - 1))::int END AS campaign_id
  FROM generate_series(1, :n_leads) g;
ALTER TABLE ld ADD COLUMN moved_at timestamptz;
UPDATE ld SET moved_at = least(created_at + pg_catalog.make_interval(days => days_to_move), now() - interval '1 minute');

INSERT INTO crm.lead (name, company, email, source, status, account_id, contact_id, opportunity_id, converted_at,
                      converted_by, owner, campaign_id, created_at, updated_at, furthest_status)
OVERRIDING SYSTEM VALUE
SELECT 'Lead ' || g, 'Company ' || g, 'lead' || g || '@company' || g || '.example', source, status,
       CASE WHEN status = 'Converted' THEN 1 + (g - 1) % :n_accounts END,
       CASE WHEN status = 'Converted' THEN 1 + (g - 1) % :n_accounts END,
       CASE WHEN status = 'Converted' AND g <= :n_opps THEN g END,
       CASE WHEN status = 'Converted' THEN moved_at END,
       CASE WHEN status = 'Converted' THEN ('bench_rep' || (1 + (g - 1) % :owners))::regrole END,
       ('bench_rep' || (1 + (g - 1) % :owners))::regrole, campaign_id, created_at,
       CASE WHEN status = 'New Lead' THEN created_at ELSE moved_at END,
       -- the furthest status of its history (New Lead, then its status)
       CASE WHEN status = 'Not Qualified' THEN 'New Lead'::crm.lead_status ELSE status END
  FROM ld ORDER BY g;
SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence('crm.lead', 'id'), :n_leads);

-- status history: the capture as New Lead, then the move to the status
INSERT INTO crm.lead_status_history (lead_id, from_status, to_status, changed_at, changed_by)
SELECT h.*
  FROM ld AS l
 CROSS JOIN LATERAL (
    VALUES (l.g, NULL::crm.lead_status, 'New Lead'::crm.lead_status, l.created_at, ('bench_rep' || (1 + (l.g - 1) % :owners))::regrole),
           (l.g, 'New Lead', l.status, l.moved_at, ('bench_rep' || (1 + (l.g - 1) % :owners))::regrole)) AS h
 WHERE h.column2 IS NULL OR l.status <> 'New Lead'
 ORDER BY l.g, h.column2 IS NOT NULL;

RESET session_replication_role;
