-- demo/duplicates_and_search.sql: after the conversions, the duplicate
-- pairs the database queued on entry (and the conversion settled), a
-- duplicate check before a new lead is typed in, and search as a sales rep.
\pset footer off
\echo
\echo '== Duplicates: the pairs queued on entry, and a check before typing a new lead'
SELECT kind, id, duplicate_kind, duplicate_of, rule, round(score::numeric, 2) AS score, status
  FROM crm.duplicate_candidate ORDER BY kind, id, duplicate_kind, duplicate_of;
SET ROLE bob;
SELECT kind, id, owner, rule, round(score::numeric, 2) AS score
  FROM crm.find_duplicates('lead', '{"name": "Nancy Davolo", "company": "Northwind Traders Inc.", "email": "Nancy.Davolio@NORTHWIND.example", "phone": "(206) 555-0101"}'::jsonb);
RESET ROLE;

\echo
\echo '== Search as alice: a typo, a prefix, a phone fragment (only what alice sees)'
SET ROLE alice;
SELECT kind, id, title, subtitle, round(score::numeric, 2) AS score FROM crm.search('northwnd traders', max_results => 5);
SELECT kind, id, title, subtitle, round(score::numeric, 2) AS score FROM crm.search('litw', max_results => 5);
SELECT kind, id, title, subtitle, round(score::numeric, 2) AS score FROM crm.search('206-555-0100', max_results => 5);
RESET ROLE;
