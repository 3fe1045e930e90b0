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
