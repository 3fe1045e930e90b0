-- demo/convert_ready_leads.sql: the demo's main job.  Every lead that is
-- ready (In Transaction or Completed) is converted in one statement; the
-- report shows what each conversion created and what it reused.
\pset footer off
\echo
\echo '== Leads before conversion'
SELECT id, name, coalesce(company, '-') AS company, status, source, owner FROM crm.lead ORDER BY id;

\echo
\echo '== Converting every lead that is In Transaction or Completed'
CREATE TEMP TABLE conversion AS
SELECT c.*
  FROM crm.lead AS l
 CROSS JOIN LATERAL crm.convert_lead(l.id) AS c
 WHERE l.status IN ('In Transaction', 'Completed')
 ORDER BY l.id;

SELECT l.name AS lead,
       a.name || CASE WHEN c.account_created THEN ' (new)' ELSE ' (existing)' END AS account,
       ct.name || CASE WHEN c.contact_created THEN ' (new)' ELSE ' (existing)' END AS contact,
       o.name AS opportunity, o.stage
  FROM conversion c
  JOIN crm.lead l ON l.id = c.lead_id
  JOIN crm.account a ON a.id = c.account_id
  JOIN crm.contact ct ON ct.id = c.contact_id
  JOIN crm.opportunity o ON o.id = c.opportunity_id
 ORDER BY c.lead_id;

\echo
\echo '== Summary'
SELECT count(*) AS leads_converted,
       count(*) FILTER (WHERE account_created) AS accounts_created,
       count(*) FILTER (WHERE NOT account_created) AS accounts_reused,
       count(*) FILTER (WHERE contact_created) AS contacts_created,
       count(*) FILTER (WHERE NOT contact_created) AS contacts_reused,
       count(*) FILTER (WHERE opportunity_created) AS opportunities_created
  FROM conversion;

\echo
\echo '== A second conversion of the same lead is refused'
\set ON_ERROR_STOP 0
SELECT * FROM crm.convert_lead((SELECT min(lead_id) FROM conversion));
\set ON_ERROR_STOP 1

\echo
\echo '== Status history of the first converted lead'
SELECT from_status, to_status, changed_by FROM crm.lead_status_history
 WHERE lead_id = (SELECT min(lead_id) FROM conversion) ORDER BY id;

\echo
\echo '== Sales Cloud tour: Blue Yonder Airlines buys coffee'
\set ON_ERROR_STOP 1
SELECT o.id AS opp FROM crm.opportunity o JOIN crm.lead l ON l.id = o.lead_id WHERE l.name = 'Oliver Brooks' \gset
-- bob prices the deal from the catalog; the amount follows the lines
SET ROLE bob;
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity, discount)
SELECT :opp, p.id, q.quantity, q.discount FROM crm.product p,
       (VALUES ('NW-CHAI-24', 20, 0), ('NW-COF-12', 15, 15), ('NW-SLA-Y', 1, 0)) AS q(code, quantity, discount)
 WHERE p.code = q.code;
UPDATE crm.opportunity SET stage = 'Proposal', close_date = current_date + 14 WHERE id = :opp;
SELECT name, stage, probability, amount FROM crm.opportunity WHERE id = :opp;
-- a quote with 15 % off a line: above the 10 % threshold, so it needs approval
SELECT crm.create_quote(:opp, tax_rate => 8.5) AS quote \gset
SELECT crm.submit_quote(:quote, 'volume deal, 15% on espresso');
RESET ROLE;
SET ROLE carol;
SELECT crm.approve_quote(:quote, 'ok for a 2-year supply contract');
RESET ROLE;
SET ROLE bob;
UPDATE crm.quote SET status = 'Presented' WHERE id = :quote;
UPDATE crm.quote SET status = 'Accepted' WHERE id = :quote;
SELECT name, status, subtotal, discount_amount, tax, total FROM crm.quote WHERE id = :quote;
SELECT action, comment, acted_by FROM crm.quote_approval WHERE quote_id = :quote ORDER BY id;
-- the accepted quote becomes an order; activation reserves the stock
SELECT crm.create_order(:quote) AS order_id \gset
SELECT crm.activate_order(:order_id);
UPDATE crm.opportunity SET stage = 'Successful' WHERE id = :opp;
RESET ROLE;
SELECT order_number, status, total, activated_by FROM crm.sales_order WHERE id = :order_id;
SELECT code, inventory FROM crm.product WHERE track_inventory ORDER BY code;

\echo
\echo '== Campaign performance'
SELECT name, leads, converted_leads, opportunities, won_opportunities, won_amount, actual_cost, roi
  FROM crm.campaign_performance ORDER BY campaign_id;

\echo
\echo '== Overdue tasks, and reminders handed to a worker (NOTIFY crm_reminder)'
SELECT owner, overdue_tasks, oldest_due_at::date FROM crm.overdue_tasks_by_owner;
SELECT subject, owner FROM crm.claim_due_reminders(10);

