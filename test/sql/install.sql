-- install: CREATE EXTENSION builds the whole schema, and it can be dropped
-- and created again (roles are cluster-wide and survive).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;

-- The extension lives in schema crm and is not relocatable.
SELECT extname, extversion, nspname, extrelocatable
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE extname = 'crm';

-- The tables of the core model.
SELECT c.relname, c.relkind
  FROM pg_class c
 WHERE c.relnamespace = 'crm'::regnamespace AND c.relkind IN ('r', 'v')
 ORDER BY c.relname;

-- The six group roles exist and cannot log in.
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'crm\_%' ORDER BY rolname;

-- Every table, view and column, and every function, carries a comment a BI
-- user can read in \d+ (this query lists what lacks one: nothing).
SELECT c.relname, a.attname
  FROM pg_class c
  LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relnamespace = 'crm'::regnamespace AND c.relkind IN ('r', 'v')
   AND (obj_description(c.oid, 'pg_class') IS NULL
        OR col_description(c.oid, a.attnum) IS NULL);
SELECT p.proname FROM pg_proc p
 WHERE p.pronamespace = 'crm'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL;

-- Every C trigger is attached where the design says.
SELECT tgrelid::regclass AS "table", tgname, tgfoid::regproc AS function
  FROM pg_trigger
 WHERE NOT tgisinternal AND tgrelid::regclass::text LIKE 'crm.%'
 ORDER BY 1, 2;

-- convert_lead acts for its caller: SECURITY INVOKER (it raises privileges in
-- C only for the duplicate search), with a pinned search_path; PUBLIC cannot
-- execute it.
SELECT prosecdef, proconfig,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_can_execute,
       has_function_privilege('crm_sales', p.oid, 'EXECUTE') AS sales_can_execute,
       has_function_privilege('crm_analyst', p.oid, 'EXECUTE') AS analyst_can_execute
  FROM pg_proc p WHERE p.oid = 'crm.convert_lead'::regproc;

-- Every table and sequence of the extension is dumped whole by pg_dump:
-- user data, seeded rows, aggregates, id sequences (README "Backup and restore").
SELECT unnest(extconfig)::regclass::text AS dumped FROM pg_extension WHERE extname = 'crm' ORDER BY 1;
SELECT count(*) AS filtered FROM pg_extension, unnest(extcondition) c WHERE extname = 'crm' AND c <> '';
SELECT c.oid::regclass AS not_dumped FROM pg_class c, pg_extension e
 WHERE e.extname = 'crm' AND c.relnamespace = 'crm'::regnamespace AND c.relkind IN ('r', 'S')
   AND c.oid <> ALL (e.extconfig);

-- Drop and create again: the roles already exist, which is fine.
DROP EXTENSION crm;
CREATE EXTENSION crm;
SELECT count(*) AS crm_roles FROM pg_roles WHERE rolname LIKE 'crm\_%';

-- No function that changes state through a guarded path, and no trigger
-- function, is executable by PUBLIC.
SELECT p.oid::regprocedure AS open_to_public
  FROM pg_proc p
 WHERE p.pronamespace = 'crm'::regnamespace
   AND has_function_privilege('public', p.oid, 'EXECUTE')
 ORDER BY p.oid::regprocedure::text;

-- A schema crm that someone else created first is refused.
DROP EXTENSION crm;
DROP SCHEMA crm;
DROP ROLE IF EXISTS regress_squatter;
CREATE ROLE regress_squatter;
CREATE SCHEMA crm AUTHORIZATION regress_squatter;
\set SHOW_CONTEXT never
CREATE EXTENSION crm;
\set SHOW_CONTEXT errors
\echo :LAST_ERROR_SQLSTATE
DROP SCHEMA crm;
DROP ROLE regress_squatter;
CREATE EXTENSION crm;
SELECT extname FROM pg_extension WHERE extname = 'crm';
