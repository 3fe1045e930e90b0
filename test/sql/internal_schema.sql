-- internal_schema: the extension's internals (aggregate tables, transition
-- tables, secrets, helper and trigger functions) live in schema
-- crm_internal, out of the way of catalog-driven tools; schema crm holds
-- the CRM of the README.  No CRM role has USAGE on crm_internal, and none
-- needs it: views, policies, defaults and triggers refer to its objects by
-- OID, and the C code reads it as the extension owner.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_int_rep IN ROLE crm_sales;
CREATE ROLE regress_int_rep2 IN ROLE crm_sales;
CREATE ROLE regress_int_analyst IN ROLE crm_analyst;

-- crm_internal belongs to the extension (DROP EXTENSION drops it) and to
-- the role that created it.
SELECT pg_describe_object(d.classid, d.objid, 0) AS member, n.nspowner = e.extowner AS owned_like_the_extension
  FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'crm'
  JOIN pg_namespace n ON n.oid = d.objid
 WHERE d.classid = 'pg_namespace'::regclass AND d.deptype = 'e';
-- No CRM role (nor PUBLIC) has USAGE on it; every CRM role but the intake
-- has USAGE on schema crm.
SELECT r.rolname, has_schema_privilege(r.oid, 'crm', 'USAGE') AS crm_usage,
       has_schema_privilege(r.oid, 'crm_internal', 'USAGE') AS internal_usage
  FROM pg_roles r WHERE r.rolname LIKE 'crm\_%' OR r.rolname LIKE 'regress\_int\_%' ORDER BY 1;

-- What is internal: the aggregate tables and their checking views, the
-- transition tables, the secrets, two helper functions of the aggregates,
-- two of the erasure, and every trigger function.
SELECT c.relkind, c.relname FROM pg_class c
 WHERE c.relnamespace = 'crm_internal'::regnamespace AND c.relkind IN ('r', 'v') ORDER BY 1, 2;
SELECT p.proname FROM pg_proc p
 WHERE p.pronamespace = 'crm_internal'::regnamespace AND p.prorettype <> 'trigger'::regtype ORDER BY 1;
SELECT count(*) > 30 AS many_trigger_functions FROM pg_proc p
 WHERE p.pronamespace = 'crm_internal'::regnamespace AND p.prorettype = 'trigger'::regtype;
-- Schema crm, as a catalog-driven tool lists it: no aggregate table, no
-- transition table, no trigger function.
SELECT c.relname FROM pg_class c
 WHERE c.relnamespace = 'crm'::regnamespace
   AND (c.relname ~ '_aggregate$|_transition$|_secret$|_salt$|^aggregates_compared$|^pipeline_actual$');
SELECT p.proname FROM pg_proc p
 WHERE p.pronamespace = 'crm'::regnamespace
   AND (p.prorettype = 'trigger'::regtype OR p.proname IN ('aggregate_definitions', 'aggregates_compaction_lock',
                                                            'erased_text', 'erased_value'));
-- Every trigger on a table of crm fires a function of crm_internal.
SELECT count(*) AS triggers_on_crm_tables,
       count(*) FILTER (WHERE p.pronamespace <> 'crm_internal'::regnamespace) AS firing_a_crm_function
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid
 WHERE c.relnamespace = 'crm'::regnamespace AND NOT t.tgisinternal;

-- Every view of schema crm an analyst may select (a BI tool lists those)
-- it reads whole, without 42501; the others are listed but not granted.
CREATE FUNCTION pg_temp.analyst_reads(v regclass) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    SET LOCAL ROLE regress_int_analyst;
    EXECUTE format('SELECT count(*) FROM %s', v);
    RETURN 'reads';
EXCEPTION WHEN insufficient_privilege THEN
    RETURN '42501';
END
$$;
SELECT c.relname AS view, has_table_privilege('regress_int_analyst', c.oid, 'SELECT') AS analyst_may_select,
       CASE WHEN has_table_privilege('regress_int_analyst', c.oid, 'SELECT') THEN pg_temp.analyst_reads(c.oid::regclass) END AS analyst
  FROM pg_class c WHERE c.relnamespace = 'crm'::regnamespace AND c.relkind = 'v' ORDER BY 1;
RESET ROLE;

-- Without USAGE on crm_internal everything still works.  Two reps' deals
-- feed crm_internal.pipeline_aggregate through the aggregate triggers.
INSERT INTO crm.product (code, name, list_price) VALUES ('INT-1', 'Internal widget', 100);
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price) VALUES (1, 1, 100);
SET ROLE regress_int_rep;
INSERT INTO crm.account (name) VALUES ('Rep One Ltd');
INSERT INTO crm.opportunity (name, account_id, amount, close_date) VALUES ('Rep one deal', 1, 1000, '2027-03-15');
-- a lead converted (lock keys keyed by crm_internal.lock_key_secret)
INSERT INTO crm.lead (name, company, email, status) VALUES ('Ida Internal', 'Internal GmbH', 'ida@internal.example', 'Completed');
SELECT account_created, contact_created, opportunity_created FROM crm.convert_lead(1);
-- a quote moves along crm_internal.quote_transition; an illegal move is refused
SELECT crm.create_quote(1, 'Q internal') AS quote_id;
UPDATE crm.quote SET status = 'Accepted' WHERE id = 1;
SELECT crm.submit_quote(1);
RESET ROLE;
SET ROLE regress_int_rep2;
INSERT INTO crm.account (name) VALUES ('Rep Two Ltd');
INSERT INTO crm.opportunity (name, account_id, amount, close_date) VALUES ('Rep two deal', 3, 500, '2027-03-20');
RESET ROLE;
-- The security_invoker view over the row-secured aggregate table: each rep
-- reads their own figures (policy crm_team_select calls crm.team_roles()).
SET ROLE regress_int_rep;
SELECT stage, owner, close_month, opportunities, amount FROM crm.pipeline_totals ORDER BY 1, 2, 3;
-- but not the internal table itself
SELECT count(*) FROM crm_internal.pipeline_aggregate;
SELECT crm_internal.erased_text('abc', ARRAY['b'], 'x');
RESET ROLE;
SET ROLE regress_int_rep2;
SELECT stage, owner, close_month, opportunities, amount FROM crm.pipeline_totals ORDER BY 1, 2, 3;
RESET ROLE;
-- An analyst checks the aggregates (crm_internal.aggregates_compared, read
-- through a function body stored by OID).
SET ROLE regress_int_analyst;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
SELECT count(*) AS groups FROM crm.pipeline_totals;
RESET ROLE;

-- DROP EXTENSION drops schema crm_internal with everything in it (schema
-- crm, which CREATE EXTENSION made for crm.control, stays, empty).
DROP EXTENSION crm CASCADE;
SELECT n.nspname, (SELECT count(*) FROM pg_class c WHERE c.relnamespace = n.oid) AS relations
  FROM pg_namespace n WHERE n.nspname IN ('crm', 'crm_internal');
DROP ROLE regress_int_rep, regress_int_rep2, regress_int_analyst;
