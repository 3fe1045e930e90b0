-- red_team_merged: a hostile rep, manager and analyst against the merged
-- internal schema, column privileges, conversion and order guards and the
-- exchange-rate cache.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_rtx_admin, regress_rtx_rep, regress_rtx_boss, regress_rtx_analyst;
RESET client_min_messages;
\set VERBOSITY terse
SET DateStyle = ISO;
CREATE ROLE regress_rtx_admin IN ROLE crm_admin;
CREATE ROLE regress_rtx_rep IN ROLE crm_sales;
CREATE ROLE regress_rtx_boss IN ROLE crm_manager;
CREATE ROLE regress_rtx_analyst IN ROLE crm_analyst;

-- Every function of the extension not in C runs with a fixed search_path
-- (none: the list must be empty).  The only SECURITY DEFINER functions are
-- the six that rebuild, compact and settle the aggregates, which write
-- tables no CRM role may write; any other one in the list is a finding.
SELECT p.oid::regprocedure AS unpinned
  FROM pg_proc AS p JOIN pg_language AS l ON l.oid = p.prolang
 WHERE p.pronamespace IN ('crm'::regnamespace, 'crm_internal'::regnamespace)
   AND l.lanname <> 'c' AND p.prokind <> 'a'
   AND NOT coalesce(p.proconfig::text[] && ARRAY['search_path=pg_catalog, pg_temp'], false)
 ORDER BY p.oid::regprocedure::text;
SELECT p.oid::regprocedure AS definer
  FROM pg_proc AS p
 WHERE p.pronamespace IN ('crm'::regnamespace, 'crm_internal'::regnamespace) AND p.prosecdef
 ORDER BY p.oid::regprocedure::text;
-- No CRM role reaches crm_internal: no USAGE, and no role may execute its
-- functions directly.
SELECT r AS role, has_schema_privilege(r, 'crm_internal', 'USAGE') AS usage
  FROM unnest(ARRAY['crm_admin', 'crm_manager', 'crm_sales', 'crm_analyst', 'crm_intake', 'crm_privacy_officer']) AS r
 ORDER BY 1;
SELECT p.oid::regprocedure AS executable_internal, r AS role
  FROM pg_proc AS p,
       unnest(ARRAY['crm_admin', 'crm_manager', 'crm_sales', 'crm_analyst', 'crm_intake', 'public']) AS r
 WHERE p.pronamespace = 'crm_internal'::regnamespace
   AND r <> 'public' AND has_function_privilege(r, p.oid, 'EXECUTE')
 ORDER BY p.oid::regprocedure::text, 2;
SET ROLE regress_rtx_rep;
SELECT count(*) FROM crm_internal.pipeline_aggregate;
SELECT * FROM crm_internal.lock_key_secret;
SET search_path = crm_internal, crm, public;
SELECT count(*) FROM pipeline_aggregate;
RESET search_path;
RESET ROLE;

-- Orders: a rep's order number of the drawn form is refused: see
-- order_numbers.sql.
-- A rep cannot insert or fill an order by any statement.
SET ROLE regress_rtx_rep;
INSERT INTO crm.sales_order (quote_id, account_id, order_number, total) VALUES (1, 1, 'X', 0);
INSERT INTO crm.sales_order (quote_id, account_id) VALUES (1, 1);
COPY crm.sales_order (quote_id, account_id) FROM STDIN;
1	1
\.
UPDATE crm.sales_order SET total = DEFAULT;
MERGE INTO crm.sales_order AS o USING (SELECT 1) AS s ON true
  WHEN MATCHED THEN UPDATE SET subtotal = 1;
RESET ROLE;

-- Conversion: after a conversion that fails inside a savepoint, the lead
-- cannot be given a conversion record by hand.
SET ROLE regress_rtx_rep;
INSERT INTO crm.lead (name, company, email) VALUES ('Fay Fox', 'Foxco', 'fay@foxco.example');
BEGIN;
SAVEPOINT s;
SELECT crm.convert_lead(id, -1) FROM crm.lead WHERE name = 'Fay Fox';
ROLLBACK TO SAVEPOINT s;
UPDATE crm.lead SET status = 'Converted' WHERE name = 'Fay Fox';
ROLLBACK;
RESET ROLE;

-- Exchange rates: a function that writes a rate and then reads it sees the
-- new rate, not one cached by an earlier call of the statement; a call of
-- the outer statement reads with the outer statement's snapshot, before
-- and after the function's change alike (what an uncached read gives).
INSERT INTO crm.currency (code, name) VALUES ('XTS', 'Test') ON CONFLICT DO NOTHING;
INSERT INTO crm.exchange_rate (currency, valid_from, rate) VALUES ('XTS', '2026-01-01', 2);
CREATE FUNCTION pg_temp.rerate(r numeric) RETURNS numeric LANGUAGE plpgsql AS $$
BEGIN
    UPDATE crm.exchange_rate SET rate = r WHERE currency = 'XTS';
    RETURN crm.exchange_rate_on('XTS', '2026-03-05');
END
$$;
SELECT pg_temp.rerate(3) AS r3, pg_temp.rerate(4) AS r4;
SELECT crm.exchange_rate_on('XTS', '2026-03-05') AS before_, pg_temp.rerate(5) AS changed,
       crm.exchange_rate_on('XTS', '2026-03-05') AS same_statement;
SELECT crm.exchange_rate_on('XTS', '2026-03-05') AS after_;
-- a rate written by a data-modifying CTE is not seen by the same statement
-- (one snapshot), cached or not
WITH w AS (UPDATE crm.exchange_rate SET rate = 6 WHERE currency = 'XTS' RETURNING rate)
SELECT (SELECT rate FROM w) AS written, crm.exchange_rate_on('XTS', '2026-03-05') AS read_;
SELECT crm.exchange_rate_on('XTS', '2026-03-05') AS next_statement;
