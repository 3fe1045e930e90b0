-- security_attacks: attacks by unprivileged roles, each of which must fail
-- to do harm.  Every attack shows its error (SQLSTATE) and then, as the
-- superuser, that nothing changed.
--   1. search_path hijacking of every public function, the triggers and the views
--   2. another rep's lead, opportunity, quote and order through each function
--   3. another rep's figures through every BI view and aggregate
--   4. writing the aggregates, the history and the audit trail directly
--   5. spoofing owners, the conversion record, timestamps and approvals
--   6. hostile text: quotes, backslashes, format specifiers, 1 MB, bad UTF-8
--   7. escaping a check through settings, SET ROLE, SET SESSION AUTHORIZATION
-- regress_atk_rep1 is the attacker; regress_atk_rep2 the victim;
-- regress_atk_boss manages rep1 (not rep2).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
-- This file tests the internal objects' own privileges and policies too
-- (defence in depth), so its roles get USAGE on schema crm_internal, which
-- no CRM role has (test/sql/internal_schema.sql).
GRANT USAGE ON SCHEMA crm_internal TO crm_admin, crm_manager, crm_sales, crm_analyst, crm_privacy_officer;
DROP SCHEMA IF EXISTS regress_atk_evil CASCADE;
DROP ROLE IF EXISTS regress_atk_rep1, regress_atk_rep2, regress_atk_boss, regress_atk_admin;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_atk_rep1 LOGIN IN ROLE crm_sales;
CREATE ROLE regress_atk_rep2 IN ROLE crm_sales;
CREATE ROLE regress_atk_boss IN ROLE crm_manager;
CREATE ROLE regress_atk_admin IN ROLE crm_admin;
SELECT current_user AS superuser \gset

SET ROLE regress_atk_admin;
INSERT INTO crm.reporting_line (member, manager) VALUES ('regress_atk_rep1', 'regress_atk_boss');
INSERT INTO crm.product (code, name, list_price, inventory) VALUES ('W-1', 'Widget', 100, 500);
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price)
SELECT b.id, p.id, 100 FROM crm.price_book b, crm.product p WHERE b.is_standard;
INSERT INTO crm.campaign (name) VALUES ('Expo');
RESET ROLE;

-- The victim's data: large figures (7000, 9000), so that any leak shows.
SET ROLE regress_atk_rep2;
INSERT INTO crm.account (name) VALUES ('Victim Corp');                                    -- account 1
INSERT INTO crm.contact (name, email, account_id) VALUES ('Vic Victim', 'vic@victim.example', 1);  -- contact 1
INSERT INTO crm.lead (name, company, email, campaign_id) VALUES ('Victim Lead', 'Victim Co', 'lead@victim.example', 1);  -- lead 1
INSERT INTO crm.opportunity (name, account_id, close_date, campaign_id) VALUES ('Victim deal', 1, '2027-06-15', 1);  -- opportunity 1
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (1, 1, 70);
INSERT INTO crm.opportunity (name, account_id, amount, close_date) VALUES ('Victim won', 1, 9000, '2027-06-20');  -- opportunity 2
UPDATE crm.opportunity SET stage = 'Successful' WHERE id = 2;
SELECT crm.create_quote(1) AS vq1, crm.create_quote(1, discount => 30) AS vq2,
       crm.create_quote(1) AS vq3, crm.create_quote(1) AS vq4 \gset
SELECT crm.submit_quote(:vq2);
UPDATE crm.quote SET status = 'Presented' WHERE id IN (:vq3, :vq4);
UPDATE crm.quote SET status = 'Accepted' WHERE id IN (:vq3, :vq4);
SELECT crm.create_order(:vq4, 'SO-VICTIM') AS vo \gset
INSERT INTO crm.activity (type, subject, lead_id, due_at, remind_at)
VALUES ('task', 'Victim task', 1, '2020-01-01 09:00+00', '2020-01-01 08:00+00');
RESET ROLE;

-- The attacker's own data.
SET ROLE regress_atk_rep1;
INSERT INTO crm.account (name) VALUES ('Attacker Inc');                                   -- account 2
INSERT INTO crm.contact (name, account_id) VALUES ('Ann Attacker', 2);                    -- contact 2
INSERT INTO crm.lead (name, company, campaign_id) VALUES ('Attacker Lead', 'Hijack Test Co', 1);  -- lead 2
INSERT INTO crm.lead (name, company) VALUES ('Spare Lead', 'Spare Co');                   -- lead 3
INSERT INTO crm.opportunity (name, account_id, close_date, campaign_id) VALUES ('Attacker deal', 2, '2027-06-15', 1);  -- opportunity 3
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (3, 1, 1);
INSERT INTO crm.opportunity (name, account_id, amount, close_date) VALUES ('Attacker lost', 2, 50, '2027-05-15');  -- opportunity 4
UPDATE crm.opportunity SET stage = 'Failed', loss_reason_code = 'price' WHERE id = 4;
SELECT crm.create_quote(3, discount => 20) AS aq1, crm.create_quote(3) AS aq2,
       crm.create_quote(3, discount => 25) AS aq3, crm.create_quote(3) AS aq4 \gset
INSERT INTO crm.activity (type, subject, lead_id, due_at, remind_at) VALUES
    ('task', 'Attacker task', 3, '2020-01-01 09:00+00', '2020-01-01 08:00+00'),
    ('task', 'Attacker call', 3, '2020-01-02 09:00+00', '2020-01-02 08:00+00');
RESET ROLE;

-- =====================================================================
-- 1. search_path hijacking
-- =====================================================================
-- The attacker plants, in a schema of their own and in pg_temp, tables,
-- functions, aggregates, operators and a type named like what the
-- extension uses.  Each planted routine records its call in
-- regress_atk_evil.calls and returns the right answer, so a hijack would go
-- unnoticed -- except in that table.
CREATE SCHEMA regress_atk_evil AUTHORIZATION regress_atk_rep1;
SET ROLE regress_atk_rep1;
CREATE TABLE regress_atk_evil.calls (fn text NOT NULL, by_role name NOT NULL DEFAULT current_user);
GRANT USAGE ON SCHEMA regress_atk_evil TO PUBLIC;
GRANT INSERT ON regress_atk_evil.calls TO PUBLIC;
CREATE FUNCTION regress_atk_evil.lower(text) RETURNS text LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO regress_atk_evil.calls (fn) VALUES ('lower'); RETURN pg_catalog.lower($1); END $$;
CREATE FUNCTION regress_atk_evil.upper(text) RETURNS text LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO regress_atk_evil.calls (fn) VALUES ('upper'); RETURN pg_catalog.upper($1); END $$;
CREATE FUNCTION regress_atk_evil.btrim(text) RETURNS text LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO regress_atk_evil.calls (fn) VALUES ('btrim'); RETURN pg_catalog.btrim($1); END $$;
CREATE FUNCTION regress_atk_evil.length(text) RETURNS integer LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO regress_atk_evil.calls (fn) VALUES ('length'); RETURN pg_catalog.length($1); END $$;
CREATE FUNCTION regress_atk_evil.left(text, integer) RETURNS text LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO regress_atk_evil.calls (fn) VALUES ('left'); RETURN pg_catalog.left($1, $2); END $$;
CREATE FUNCTION regress_atk_evil.lpad(text, integer, text) RETURNS text LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO regress_atk_evil.calls (fn) VALUES ('lpad'); RETURN pg_catalog.lpad($1, $2, $3); END $$;
CREATE FUNCTION regress_atk_evil.now() RETURNS timestamptz LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO regress_atk_evil.calls (fn) VALUES ('now'); RETURN pg_catalog.now(); END $$;
CREATE FUNCTION regress_atk_evil.nextval(regclass) RETURNS bigint LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO regress_atk_evil.calls (fn) VALUES ('nextval'); RETURN pg_catalog.nextval($1); END $$;
CREATE FUNCTION regress_atk_evil.round(numeric, integer) RETURNS numeric LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO regress_atk_evil.calls (fn) VALUES ('round'); RETURN pg_catalog.round($1, $2); END $$;
CREATE FUNCTION regress_atk_evil.date_trunc(text, timestamptz) RETURNS timestamptz LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO regress_atk_evil.calls (fn) VALUES ('date_trunc'); RETURN pg_catalog.date_trunc($1, $2); END $$;
CREATE FUNCTION regress_atk_evil.pg_notify(text, text) RETURNS void LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO regress_atk_evil.calls (fn) VALUES ('pg_notify'); END $$;
CREATE FUNCTION regress_atk_evil.pg_has_role(name, text, text) RETURNS boolean LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO regress_atk_evil.calls (fn) VALUES ('pg_has_role'); RETURN true; END $$;
-- the extension's own names, unqualified
CREATE FUNCTION regress_atk_evil.company_match_key(text) RETURNS text LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO regress_atk_evil.calls (fn) VALUES ('company_match_key'); RETURN crm.company_match_key($1); END $$;
CREATE FUNCTION regress_atk_evil.web_domain(text) RETURNS text LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO regress_atk_evil.calls (fn) VALUES ('web_domain'); RETURN crm.web_domain($1); END $$;
CREATE FUNCTION regress_atk_evil.current_role_id() RETURNS regrole LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO regress_atk_evil.calls (fn) VALUES ('current_role_id'); RETURN 'regress_atk_rep2'::regrole; END $$;
CREATE FUNCTION regress_atk_evil.may_reference_account(bigint) RETURNS boolean LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO regress_atk_evil.calls (fn) VALUES ('may_reference_account'); RETURN true; END $$;
CREATE FUNCTION regress_atk_evil.may_reference_contact(bigint) RETURNS boolean LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO regress_atk_evil.calls (fn) VALUES ('may_reference_contact'); RETURN true; END $$;
CREATE FUNCTION regress_atk_evil.team_roles() RETURNS SETOF oid LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO regress_atk_evil.calls (fn) VALUES ('team_roles'); RETURN QUERY SELECT oid FROM pg_catalog.pg_roles; END $$;
-- aggregates
CREATE FUNCTION regress_atk_evil.count_step(bigint) RETURNS bigint LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO regress_atk_evil.calls (fn) VALUES ('count'); RETURN $1 OPERATOR(pg_catalog.+) 1; END $$;
CREATE AGGREGATE regress_atk_evil.count(*) (SFUNC = regress_atk_evil.count_step, STYPE = bigint, INITCOND = '0');
CREATE FUNCTION regress_atk_evil.sum_step(numeric, numeric) RETURNS numeric LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO regress_atk_evil.calls (fn) VALUES ('sum'); RETURN COALESCE($1, 0) OPERATOR(pg_catalog.+) $2; END $$;
CREATE AGGREGATE regress_atk_evil.sum(numeric) (SFUNC = regress_atk_evil.sum_step, STYPE = numeric);
CREATE AGGREGATE regress_atk_evil.max(numeric) (SFUNC = regress_atk_evil.sum_step, STYPE = numeric);
-- operators for the types the extension compares
CREATE FUNCTION regress_atk_evil.op(text, boolean) RETURNS boolean LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO regress_atk_evil.calls (fn) VALUES ($1); RETURN $2; END $$;
CREATE FUNCTION regress_atk_evil.eq(bigint, bigint) RETURNS boolean LANGUAGE sql
    AS $$ SELECT regress_atk_evil.op('= bigint', pg_catalog.int8eq($1, $2)) $$;
CREATE FUNCTION regress_atk_evil.ne(bigint, bigint) RETURNS boolean LANGUAGE sql
    AS $$ SELECT regress_atk_evil.op('<> bigint', pg_catalog.int8ne($1, $2)) $$;
CREATE FUNCTION regress_atk_evil.eq(integer, integer) RETURNS boolean LANGUAGE sql
    AS $$ SELECT regress_atk_evil.op('= integer', pg_catalog.int4eq($1, $2)) $$;
CREATE FUNCTION regress_atk_evil.eq(text, text) RETURNS boolean LANGUAGE sql
    AS $$ SELECT regress_atk_evil.op('= text', pg_catalog.texteq($1, $2)) $$;
CREATE FUNCTION regress_atk_evil.ne(text, text) RETURNS boolean LANGUAGE sql
    AS $$ SELECT regress_atk_evil.op('<> text', pg_catalog.textne($1, $2)) $$;
CREATE FUNCTION regress_atk_evil.eq(oid, oid) RETURNS boolean LANGUAGE sql
    AS $$ SELECT regress_atk_evil.op('= oid', pg_catalog.oideq($1, $2)) $$;
CREATE FUNCTION regress_atk_evil.eq(regrole, regrole) RETURNS boolean LANGUAGE sql
    AS $$ SELECT regress_atk_evil.op('= regrole', pg_catalog.oideq($1, $2)) $$;
CREATE FUNCTION regress_atk_evil.eq(crm.lead_status, crm.lead_status) RETURNS boolean LANGUAGE sql
    AS $$ SELECT regress_atk_evil.op('= lead_status', pg_catalog.enum_eq($1, $2)) $$;
CREATE FUNCTION regress_atk_evil.eq(crm.quote_status, crm.quote_status) RETURNS boolean LANGUAGE sql
    AS $$ SELECT regress_atk_evil.op('= quote_status', pg_catalog.enum_eq($1, $2)) $$;
CREATE FUNCTION regress_atk_evil.le(timestamptz, timestamptz) RETURNS boolean LANGUAGE sql
    AS $$ SELECT regress_atk_evil.op('<= timestamptz', pg_catalog.timestamptz_le($1, $2)) $$;
CREATE FUNCTION regress_atk_evil.plus(numeric, numeric) RETURNS numeric LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO regress_atk_evil.calls (fn) VALUES ('+ numeric'); RETURN pg_catalog.numeric_add($1, $2); END $$;
CREATE FUNCTION regress_atk_evil.cat(text, text) RETURNS text LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO regress_atk_evil.calls (fn) VALUES ('|| text'); RETURN pg_catalog.textcat($1, $2); END $$;
CREATE OPERATOR regress_atk_evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = regress_atk_evil.eq);
CREATE OPERATOR regress_atk_evil.<> (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = regress_atk_evil.ne);
CREATE OPERATOR regress_atk_evil.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = regress_atk_evil.eq);
CREATE OPERATOR regress_atk_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = regress_atk_evil.eq);
CREATE OPERATOR regress_atk_evil.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = regress_atk_evil.ne);
CREATE OPERATOR regress_atk_evil.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = regress_atk_evil.eq);
CREATE OPERATOR regress_atk_evil.= (LEFTARG = regrole, RIGHTARG = regrole, FUNCTION = regress_atk_evil.eq);
CREATE OPERATOR regress_atk_evil.= (LEFTARG = crm.lead_status, RIGHTARG = crm.lead_status, FUNCTION = regress_atk_evil.eq);
CREATE OPERATOR regress_atk_evil.= (LEFTARG = crm.quote_status, RIGHTARG = crm.quote_status, FUNCTION = regress_atk_evil.eq);
CREATE OPERATOR regress_atk_evil.<= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = regress_atk_evil.le);
CREATE OPERATOR regress_atk_evil.+ (LEFTARG = numeric, RIGHTARG = numeric, FUNCTION = regress_atk_evil.plus);
CREATE OPERATOR regress_atk_evil.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = regress_atk_evil.cat);
-- a type named text
CREATE DOMAIN regress_atk_evil.text AS pg_catalog.text
    CHECK (regress_atk_evil.op('text domain', true));
-- tables named like the extension's, in the attacker's schema and in pg_temp
CREATE TABLE regress_atk_evil.lead (id bigint, status text, owner regrole);
CREATE TABLE regress_atk_evil.account (id bigint, name text);
CREATE TABLE regress_atk_evil.opportunity (id bigint, amount numeric);
CREATE TABLE regress_atk_evil.quote (id bigint, status text);
CREATE TABLE regress_atk_evil.settings (quote_approval_threshold numeric);
INSERT INTO regress_atk_evil.settings VALUES (100);
CREATE TABLE regress_atk_evil.reporting_line (member regrole, manager regrole);
CREATE TEMP TABLE lead (id bigint, status text, owner regrole);
CREATE TEMP TABLE account (id bigint, name text);
CREATE TEMP TABLE contact (id bigint, name text, email text);
CREATE TEMP TABLE opportunity (id bigint, amount numeric);
CREATE TEMP TABLE opportunity_stage (name text, sort_order integer, probability numeric, is_closed boolean, is_won boolean);
CREATE TEMP TABLE quote (id bigint, status text);
CREATE TEMP TABLE quote_transition (from_status text, to_status text, via_function text);
INSERT INTO quote_transition VALUES ('Draft', 'Approved', NULL);
CREATE TEMP TABLE sales_order (id bigint, status text);
CREATE TEMP TABLE product (id bigint, inventory numeric, track_inventory boolean);
CREATE TEMP TABLE price_book (id bigint, is_standard boolean);
CREATE TEMP TABLE settings (quote_approval_threshold numeric);
CREATE TEMP TABLE activity (id bigint, remind_at timestamptz);
CREATE TEMP TABLE change_log (id bigint);
CREATE TEMP TABLE pipeline_aggregate (stage text);
-- and the same functions and operators in pg_temp
CREATE FUNCTION pg_temp.lower(text) RETURNS text LANGUAGE sql
    AS $$ SELECT regress_atk_evil.op('pg_temp.lower', true)::pg_catalog.text $$;
CREATE FUNCTION pg_temp.now() RETURNS timestamptz LANGUAGE sql
    AS $$ SELECT CASE WHEN regress_atk_evil.op('pg_temp.now', true) THEN pg_catalog.now() END $$;
CREATE FUNCTION pg_temp.eq(bigint, bigint) RETURNS boolean LANGUAGE sql
    AS $$ SELECT regress_atk_evil.op('pg_temp.= bigint', pg_catalog.int8eq($1, $2)) $$;
CREATE OPERATOR pg_temp.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = pg_temp.eq);

SET search_path = pg_temp, regress_atk_evil, pg_catalog, crm;
-- The traps work: the attacker's own unqualified references hit them.
SELECT lower('TRAP') AS control_lower, 1::bigint = 1::bigint AS control_eq,
       (SELECT count(*) FROM (VALUES (1), (2)) AS v (x)) AS control_count,
       (SELECT pg_catalog.count(*) FROM lead) AS control_temp_lead;
-- Row-level security still applies (the policies call crm.team_roles(),
-- not the planted team_roles()).
SELECT name FROM crm.lead ORDER BY name;
-- Every function, as the attacker with the planted path.
SELECT lead_id, account_created, contact_created, opportunity_created FROM crm.convert_lead(2);
SELECT crm.create_quote(3, name => 'Hijack quote') IS NOT NULL AS quote_created;
SELECT crm.submit_quote(:aq1, 'please approve');
SELECT crm.submit_quote(:aq3, 'please reject');
UPDATE crm.quote SET status = 'Presented' WHERE id OPERATOR(pg_catalog.=) :aq2;
UPDATE crm.quote SET status = 'Accepted' WHERE id OPERATOR(pg_catalog.=) :aq2;
SELECT crm.sync_quote(:aq2) AS synced_opportunity;
SELECT crm.create_order(:aq2, 'SO-HIJACK') AS ao \gset
SELECT crm.activate_order(:ao);
SELECT p.inventory AS reserved FROM crm.product AS p WHERE p.code OPERATOR(pg_catalog.=) 'W-1';
SELECT crm.cancel_order(:ao, 'changed my mind');
SELECT p.inventory AS returned FROM crm.product AS p WHERE p.code OPERATOR(pg_catalog.=) 'W-1';
SELECT subject FROM crm.claim_due_reminders(1);
SELECT aggregate, measure FROM crm.verify_aggregates();
SELECT crm.rebuild_aggregates();
\echo :LAST_ERROR_SQLSTATE
SELECT crm.compact_aggregates();
\echo :LAST_ERROR_SQLSTATE
-- Plain writes fire the C triggers with the planted path too.
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (3, 1, 2);
UPDATE crm.lead SET status = 'Processing', remarks = 'hijacked?' WHERE id OPERATOR(pg_catalog.=) 3;
UPDATE crm.opportunity SET stage = 'Proposal' WHERE id OPERATOR(pg_catalog.=) 3;
INSERT INTO crm.activity (type, subject, lead_id, starts_at) VALUES ('call', 'Hijack call', 3, '2027-01-01 10:00+00');
DELETE FROM crm.activity WHERE subject OPERATOR(pg_catalog.=) 'Hijack call'::pg_catalog.text;
-- Every view.
SELECT 'sales_funnel' AS view, pg_catalog.count(*) AS rows FROM crm.sales_funnel
UNION ALL SELECT 'lead_conversion_rates', pg_catalog.count(*) FROM crm.lead_conversion_rates
UNION ALL SELECT 'pipeline_by_stage', pg_catalog.count(*) FROM crm.pipeline_by_stage
UNION ALL SELECT 'forecast_by_month', pg_catalog.count(*) FROM crm.forecast_by_month
UNION ALL SELECT 'sales_performance', pg_catalog.count(*) FROM crm.sales_performance
UNION ALL SELECT 'stage_velocity', pg_catalog.count(*) FROM crm.stage_velocity
UNION ALL SELECT 'quote_to_order', pg_catalog.count(*) FROM crm.quote_to_order
UNION ALL SELECT 'campaign_performance', pg_catalog.count(*) FROM crm.campaign_performance
UNION ALL SELECT 'account_rollup', pg_catalog.count(*) FROM crm.account_rollup
UNION ALL SELECT 'pipeline_totals', pg_catalog.count(*) FROM crm.pipeline_totals
UNION ALL SELECT 'pipeline_actual', pg_catalog.count(*) FROM crm_internal.pipeline_actual
UNION ALL SELECT 'aggregates_compared', pg_catalog.count(*) FROM crm_internal.aggregates_compared
UNION ALL SELECT 'overdue_task', pg_catalog.count(*) FROM crm.overdue_task
UNION ALL SELECT 'overdue_tasks_by_owner', pg_catalog.count(*) FROM crm.overdue_tasks_by_owner
UNION ALL SELECT 'lead_follow_up', pg_catalog.count(*) FROM crm.lead_follow_up
ORDER BY 1;
RESET search_path;
RESET ROLE;
-- The manager decides on rep1's quotes and compacts, with the planted path.
SET ROLE regress_atk_boss;
SET search_path = regress_atk_evil, pg_catalog, crm;
SELECT crm.approve_quote(:aq1, 'ok');
SELECT crm.reject_quote(:aq3, 'too deep');
-- (compaction is the admins': refused for a manager)
SELECT crm.compact_aggregates() OPERATOR(pg_catalog.>) 0 AS compacted;
\echo :LAST_ERROR_SQLSTATE
RESET search_path;
RESET ROLE;
-- The admin compacts and rebuilds (SECURITY DEFINER functions), with the
-- planted path.
SET ROLE regress_atk_admin;
SET search_path = regress_atk_evil, pg_catalog, crm;
SELECT crm.compact_aggregates() OPERATOR(pg_catalog.>) 0 AS compacted;
SELECT crm.rebuild_aggregates() OPERATOR(pg_catalog.>) 0 AS rebuilt;
RESET search_path;
RESET ROLE;
-- Nothing but the attacker's own control queries ever reached a planted
-- object ...
SELECT fn, by_role, count(*) FROM regress_atk_evil.calls GROUP BY fn, by_role ORDER BY fn;
-- ... and everything did its job.
SELECT l.status, a.name AS account, c.name AS contact, o.name AS opportunity, l.converted_by
  FROM crm.lead l JOIN crm.account a ON a.id = l.account_id JOIN crm.contact c ON c.id = l.contact_id
  JOIN crm.opportunity o ON o.id = l.opportunity_id WHERE l.id = 2;
SELECT q.name, q.status, q.is_synced FROM crm.quote q WHERE q.owner = 'regress_atk_rep1'::regrole ORDER BY q.id;
SELECT order_number, status, activated_by, cancelled_by, cancel_reason FROM crm.sales_order WHERE id = :ao;
SELECT code, inventory FROM crm.product ORDER BY code;
SELECT quote_id = :aq1 AS first_quote, action, comment, acted_by FROM crm.quote_approval
 WHERE quote_id IN (:aq1, :aq3) ORDER BY id;
SELECT subject, reminder_sent_at IS NOT NULL AS reminded FROM crm.activity ORDER BY id;
SELECT id, status, remarks FROM crm.lead WHERE id = 3;
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- =====================================================================
-- 2. Another rep's lead, opportunity, quote and order, through every function
-- =====================================================================
SET ROLE regress_atk_rep1;
-- Converting the victim's lead: not allowed; with the victim's account or
-- contact: they do not exist for the attacker; pushing the new rows onto
-- the victim: refused by row-level security.
SELECT * FROM crm.convert_lead(1);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM crm.convert_lead(3, account_id => 1);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM crm.convert_lead(3, contact_id => 1);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM crm.convert_lead(3, owner => 'regress_atk_rep2');
\echo :LAST_ERROR_SQLSTATE
-- Quoting the victim's opportunity; submitting, syncing, ordering the
-- victim's quotes; approving and rejecting them; activating and cancelling
-- the victim's order.
SELECT crm.create_quote(1);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.submit_quote(:vq1);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.sync_quote(:vq1);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.create_order(:vq3);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.approve_quote(:vq2, 'approved by a rep');
\echo :LAST_ERROR_SQLSTATE
SELECT crm.reject_quote(:vq2, 'rejected by a rep');
\echo :LAST_ERROR_SQLSTATE
SELECT crm.activate_order(:vo);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.cancel_order(:vo, 'sabotage');
\echo :LAST_ERROR_SQLSTATE
-- A deal, or a contact link, pointing at the victim's account or contact
-- would share it (the sharing rule): refused, so they stay hidden.
INSERT INTO crm.opportunity (name, account_id) VALUES ('Deal on the victim', 1);
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.opportunity SET account_id = 1 WHERE id = 3;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.account_contact (account_id, contact_id) VALUES (2, 1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.account_contact (account_id, contact_id) VALUES (1, 2);
\echo :LAST_ERROR_SQLSTATE
SELECT (SELECT count(*) FROM crm.account WHERE id = 1) AS victim_accounts,
       (SELECT count(*) FROM crm.contact WHERE id = 1) AS victim_contacts;
-- Claiming reminders hands out the attacker's own only.
SELECT subject, owner FROM crm.claim_due_reminders(100);
-- Reading or changing the victim's rows directly finds nothing.
SELECT count(*) AS victim_rows FROM crm.lead WHERE owner = 'regress_atk_rep2'::regrole;
UPDATE crm.opportunity SET stage = 'Failed', loss_reason_code = 'other', loss_reason = 'sabotage' WHERE id = 1 RETURNING id;
DELETE FROM crm.quote WHERE id = :vq1 RETURNING id;
RESET ROLE;
-- A manager decides only on quotes of their team: boss manages rep1, not rep2.
SET ROLE regress_atk_boss;
SELECT crm.approve_quote(:vq2, 'not my team');
\echo :LAST_ERROR_SQLSTATE
SELECT crm.reject_quote(:vq2, 'not my team');
\echo :LAST_ERROR_SQLSTATE
SELECT crm.activate_order(:vo);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- Nothing of the victim's changed.
SELECT id, status, converted_by FROM crm.lead WHERE id = 1;
SELECT id, name, stage, amount FROM crm.opportunity WHERE owner = 'regress_atk_rep2'::regrole ORDER BY id;
SELECT id = :vq1 AS vq1, id = :vq2 AS vq2, status, is_synced FROM crm.quote WHERE owner = 'regress_atk_rep2'::regrole ORDER BY id;
SELECT count(*) AS orders_from_vq3 FROM crm.sales_order WHERE quote_id = :vq3;
SELECT order_number, status FROM crm.sales_order WHERE id = :vo;
SELECT action, acted_by FROM crm.quote_approval WHERE quote_id = :vq2 ORDER BY id;
SELECT subject, reminder_sent_at IS NULL AS still_due FROM crm.activity WHERE owner = 'regress_atk_rep2'::regrole;
SELECT code, inventory FROM crm.product ORDER BY code;

-- =====================================================================
-- 3. Another rep's figures, through every BI view and aggregate: the
--    attacker sees the figures of their own rows only -- none of the
--    victim's 7000 and 9000.
-- =====================================================================
SET ROLE regress_atk_rep1;
SELECT position, kind, step, items, amount FROM crm.sales_funnel WHERE items > 0 ORDER BY position, step_order;
SELECT dimension, CASE WHEN dimension = 'month' THEN '(this month)' ELSE value END AS value, leads, converted
  FROM crm.lead_conversion_rates ORDER BY dimension, value COLLATE "C";
SELECT stage, owner, opportunities, amount, weighted_amount FROM crm.pipeline_by_stage ORDER BY sort_order, owner::text;
SELECT close_month, forecast_category, owner, opportunities, amount FROM crm.forecast_by_month
 ORDER BY close_month, forecast_category;
SELECT owner, won, lost, won_amount FROM crm.sales_performance ORDER BY owner::text;
SELECT stage, passages, currently_in_stage FROM crm.stage_velocity ORDER BY sort_order;
SELECT quotes, accepted, orders, order_total FROM crm.quote_to_order;
SELECT name, leads, converted_leads, opportunities, won_opportunities, opportunity_amount, won_amount
  FROM crm.campaign_performance ORDER BY name;
SELECT name, owner, open_opportunities, open_amount, won_opportunities, won_amount FROM crm.account_rollup ORDER BY name;
SELECT stage, owner, close_month, opportunities, amount FROM crm.pipeline_totals ORDER BY stage, close_month;
SELECT stage, owner, close_month, opportunities, amount FROM crm_internal.pipeline_actual ORDER BY stage, close_month;
SELECT aggregate, group_key ->> 'owner' AS owner, group_key ->> 'stage' AS stage, kept_items, kept_amount
  FROM crm_internal.aggregates_compared ORDER BY aggregate, group_key::text;
SELECT subject, owner FROM crm.overdue_task ORDER BY activity_id;
SELECT owner, overdue_tasks FROM crm.overdue_tasks_by_owner ORDER BY owner::text;
SELECT lead_id, name, status, owner, activities FROM crm.lead_follow_up ORDER BY lead_id;
-- The aggregate tables themselves.
SELECT 'pipeline_aggregate' AS tbl, string_agg(DISTINCT owner::text, ', ') AS owners, sum(amount) AS amount FROM crm_internal.pipeline_aggregate
UNION ALL SELECT 'account_aggregate', string_agg(DISTINCT owner::text, ', '), sum(amount) FROM crm_internal.account_aggregate
UNION ALL SELECT 'campaign_opportunity_aggregate', string_agg(DISTINCT owner::text, ', '), sum(amount) FROM crm_internal.campaign_opportunity_aggregate
UNION ALL SELECT 'campaign_lead_aggregate', string_agg(DISTINCT owner::text, ', '), sum(leads) FROM crm_internal.campaign_lead_aggregate
ORDER BY 1;
-- The change log is not theirs to read at all.
SELECT count(*) FROM crm.lead_update_log;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- For contrast, the superuser's pipeline: the victim's figures are there.
SELECT stage, owner, opportunities, amount FROM crm.pipeline_by_stage ORDER BY sort_order, owner::text;

-- =====================================================================
-- 4. Writing the aggregates, the history and the audit trail directly
-- =====================================================================
CREATE TEMP VIEW protected_digest AS
SELECT md5(concat_ws('|',
    (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM crm_internal.pipeline_aggregate x),
    (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM crm_internal.account_aggregate x),
    (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM crm_internal.campaign_opportunity_aggregate x),
    (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM crm_internal.campaign_lead_aggregate x),
    (SELECT string_agg(x::text, ',' ORDER BY x.id) FROM crm.lead_status_history x),
    (SELECT string_agg(x::text, ',' ORDER BY x.id) FROM crm.opportunity_history x),
    (SELECT string_agg(x::text, ',' ORDER BY x.id) FROM crm.quote_approval x),
    (SELECT string_agg(x::text, ',' ORDER BY x.id) FROM crm.change_log x))) AS digest;
SELECT digest AS before_digest FROM protected_digest \gset
SET ROLE regress_atk_rep1;
INSERT INTO crm_internal.pipeline_aggregate (stage, owner, close_month, stripe, opportunities, amount, weighted_amount)
VALUES ('Qualification', 'regress_atk_rep1', '2027-06-01', 0, 100, 1000000, 1000000);
\echo :LAST_ERROR_SQLSTATE
UPDATE crm_internal.pipeline_aggregate SET amount = amount * 100;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM crm_internal.pipeline_aggregate;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE crm_internal.pipeline_aggregate;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm_internal.account_aggregate (account_id, owner, stage, stripe, opportunities, amount)
VALUES (2, 'regress_atk_rep1', 'Successful', 0, 1, 1000000);
\echo :LAST_ERROR_SQLSTATE
UPDATE crm_internal.campaign_opportunity_aggregate SET amount = 0;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM crm_internal.campaign_lead_aggregate;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.lead_status_history (lead_id, from_status, to_status, changed_by)
VALUES (3, 'New Lead', 'Converted', 'regress_atk_boss');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM crm.lead_status_history WHERE lead_id = 3;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.opportunity_history SET new_stage = 'Successful' WHERE opportunity_id = 3;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.quote_approval (quote_id, action, comment, acted_by) VALUES (:aq4, 'approved', 'forged', 'regress_atk_boss');
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.quote_approval SET acted_by = 'regress_atk_rep1';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM crm.quote_approval;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.change_log (table_name, row_id, operation, changed_by) VALUES ('crm.lead', 1, 'DELETE', 'regress_atk_rep2');
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.change_log SET changed_by = 'regress_atk_rep2';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM crm.change_log;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE crm.change_log;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- Managers and admins may not either.
SET ROLE regress_atk_boss;
DELETE FROM crm.quote_approval WHERE quote_id = :aq3;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM crm.change_log WHERE changed_by = 'regress_atk_boss'::regrole;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm_internal.pipeline_aggregate SET amount = 0;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE regress_atk_admin;
INSERT INTO crm_internal.pipeline_aggregate (stage, owner, close_month, stripe, opportunities, amount, weighted_amount)
VALUES ('Successful', 'regress_atk_admin', '2027-06-01', 0, 1, 1, 1);
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.lead_status_history SET changed_by = 'regress_atk_admin';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM crm.opportunity_history;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.quote_approval (quote_id, action, acted_by) VALUES (:vq2, 'approved', 'regress_atk_admin');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT digest = :'before_digest' AS nothing_changed FROM protected_digest;

-- =====================================================================
-- 5. Spoofing the owner, the conversion record, timestamps and approvals
-- =====================================================================
SET ROLE regress_atk_rep1;
-- Owner: rows cannot be made in someone else's name.
INSERT INTO crm.lead (name, owner) VALUES ('Spoofed owner', 'regress_atk_rep2');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.opportunity (name, account_id, owner) VALUES ('Spoofed owner', 2, 'regress_atk_boss');
\echo :LAST_ERROR_SQLSTATE
-- The conversion record is written only by crm.convert_lead: not on
-- insert, not on an unconverted lead, not on a converted one.  Its columns
-- and the opportunity's lead_id are not writable by any role (42501, column
-- privileges); status Converted alone is refused by the guard (ZC010).
INSERT INTO crm.lead (name, status) VALUES ('Born converted', 'Converted');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.lead (name, converted_by, converted_at) VALUES ('Pre-converted', 'regress_atk_boss', now());
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.lead SET status = 'Converted', account_id = 2, contact_id = 2, converted_at = now(),
       converted_by = 'regress_atk_rep1' WHERE id = 3;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.lead SET converted_by = 'regress_atk_rep2' WHERE id = 2;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.lead SET converted_at = '2000-01-01' WHERE id = 2;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.lead SET account_id = 2 WHERE id = 2;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.lead SET status = 'New Lead' WHERE id = 2;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.opportunity SET lead_id = 3 WHERE id = 3;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- (the superuser is held to it as well)
UPDATE crm.lead SET converted_by = 'regress_atk_boss' WHERE id = 2;
\echo :LAST_ERROR_SQLSTATE
SELECT id, status, converted_by, account_id IS NOT NULL AS has_account FROM crm.lead WHERE id IN (2, 3) ORDER BY id;
SELECT count(*) AS spoofed FROM crm.lead WHERE name IN ('Spoofed owner', 'Born converted', 'Pre-converted');

-- created_at / updated_at are the database's: no role may supply or change
-- them (42501: no INSERT or UPDATE privilege on those columns), and the
-- database stamps the transaction time, on INSERT and on UPDATE.
SET ROLE regress_atk_rep1;
INSERT INTO crm.lead (name, created_at) VALUES ('Backdated', '2000-01-01');
INSERT INTO crm.opportunity (name, account_id, updated_at) VALUES ('Backdated', 2, '2099-01-01');
BEGIN;
INSERT INTO crm.lead (name) VALUES ('Backdated')
RETURNING created_at = now() AS created_now, updated_at = now() AS updated_now;
INSERT INTO crm.opportunity (name, account_id) VALUES ('Backdated', 2)
RETURNING created_at = now() AS created_now, updated_at = now() AS updated_now;
COMMIT;
SELECT created_at::text AS backdated_created FROM crm.lead WHERE name = 'Backdated' \gset
UPDATE crm.lead SET created_at = '2000-01-01' WHERE name = 'Backdated';
UPDATE crm.lead SET updated_at = '2000-01-01' WHERE name = 'Backdated';
UPDATE crm.lead SET remarks = 'edited' WHERE name = 'Backdated'
RETURNING created_at::text = :'backdated_created' AS created_kept, updated_at = now() AS updated_now;
UPDATE crm.quote SET created_at = '2000-01-01' WHERE id = :aq4;
RESET ROLE;
-- A superuser, whom privileges do not stop, is stamped over all the same.
BEGIN;
INSERT INTO crm.lead (name, owner, created_at, updated_at) VALUES ('Backdated', 'regress_atk_rep1', '2000-01-01', '2000-01-01')
RETURNING created_at > '2020-01-01' AS not_backdated, updated_at = now() AS updated_now;
ROLLBACK;

-- Approvals: no status by hand that only the functions may set, no
-- approval record by hand, no approving as a rep.
SET ROLE regress_atk_rep1;
SELECT crm.submit_quote(:aq4);
UPDATE crm.quote SET status = 'Approved' WHERE id = :aq4;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.quote SET status = 'In Review' WHERE id = :aq4;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.approve_quote(:aq4, 'self-approved');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.quote_approval (quote_id, action, acted_by) VALUES (:aq4, 'approved', 'regress_atk_boss');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.quote (opportunity_id, name, status) VALUES (3, 'Pre-approved', 'Approved');
\echo :LAST_ERROR_SQLSTATE
-- a quote over the threshold is not presented without approval
UPDATE crm.quote SET status = 'Draft' WHERE id = :aq4;
UPDATE crm.quote SET discount = 40 WHERE id = :aq4;
UPDATE crm.quote SET status = 'Presented' WHERE id = :aq4;
\echo :LAST_ERROR_SQLSTATE
-- nor are sums, the synced flag, orders or stock written by hand (the
-- subtotal: no role may write it, 42501)
UPDATE crm.quote SET subtotal = 1 WHERE id = :aq4;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.quote SET is_synced = true WHERE id = :aq4;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.opportunity SET amount = 1 WHERE id = 3;
\echo :LAST_ERROR_SQLSTATE
-- (an order's number and sums: no role may write them, 42501; an order
-- without them is still made only by crm.create_order, ZC021)
INSERT INTO crm.sales_order (order_number, quote_id, opportunity_id, total) VALUES ('SO-FAKE', :aq4, 3, 0);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.sales_order (quote_id, opportunity_id) VALUES (:aq4, 3);
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.sales_order SET status = 'Activated' WHERE id = :ao;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.sales_order SET total = 0 WHERE id = :ao;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.product SET inventory = 1000000;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT status, discount, subtotal, is_synced FROM crm.quote WHERE id = :aq4;
SELECT action, acted_by FROM crm.quote_approval WHERE quote_id = :aq4 ORDER BY id;
SELECT count(*) AS fake_quotes FROM crm.quote WHERE name = 'Pre-approved';
SELECT count(*) AS fake_orders FROM crm.sales_order WHERE order_number = 'SO-FAKE';
SELECT status, total FROM crm.sales_order WHERE id = :ao;
SELECT code, inventory FROM crm.product ORDER BY code;

-- =====================================================================
-- 6. Hostile text
-- =====================================================================
SET ROLE regress_atk_rep1;
-- Quotes, backslashes, percent signs, printf specifiers, SQL, '\x00' as
-- text, control characters: stored and converted byte for byte.
CREATE TEMP TABLE hostile AS SELECT
    $h$O'Brien "Bobby" \ Tables'); DROP TABLE crm.lead;-- %s%n%x$h$ AS name,
    $h$Evil \' Co %s%n%x%p %% \x00 \\x00 ${0} {{x}} <script>$h$ AS company,
    $h$o'brien%s%n+x@evil.example$h$ AS email,
    E'%s%s%s%n%n%n %x%x %p %d %lld %*s %1$s\n\t\r\\ \x01\x7f '' " \u00e9\U0001F600' AS remarks;
INSERT INTO crm.lead (name, company, email, remarks)
SELECT name, company, email, remarks FROM hostile RETURNING id AS hostile_lead \gset
-- A lead whose name is 1 MB.
INSERT INTO crm.lead (name, company, remarks) VALUES (repeat('x', 1048576), 'Big Name Ltd', repeat('%n', 524288))
RETURNING id AS big_lead \gset
SELECT account_created, contact_created, opportunity_created FROM crm.convert_lead(:hostile_lead);
SELECT account_created, contact_created, opportunity_created FROM crm.convert_lead(:big_lead);
-- Everything arrived exactly.
SELECT a.name = h.company AS account_name, c.name = h.name AS contact_name, c.email = h.email AS contact_email,
       o.name = h.company || ' - ' || h.name AS opportunity_name, l.remarks = h.remarks AS remarks
  FROM hostile h, crm.lead l JOIN crm.account a ON a.id = l.account_id JOIN crm.contact c ON c.id = l.contact_id
  JOIN crm.opportunity o ON o.id = l.opportunity_id WHERE l.id = :hostile_lead;
SELECT md5(c.name) = md5(repeat('x', 1048576)) AS contact_name, length(c.name) AS contact_length,
       md5(o.name) = md5('Big Name Ltd - ' || repeat('x', 1048576)) AS opportunity_name, length(o.name) AS opportunity_length,
       md5(l.remarks) = md5(repeat('%n', 524288)) AS remarks
  FROM crm.lead l JOIN crm.contact c ON c.id = l.contact_id JOIN crm.opportunity o ON o.id = l.opportunity_id
 WHERE l.id = :big_lead;
-- Hostile names given to the functions, and in the other text fields.
SELECT crm.create_quote(o.id, name => h.name || h.remarks) AS hostile_quote FROM hostile h, crm.lead l
  JOIN crm.opportunity o ON o.id = l.opportunity_id WHERE l.id = :hostile_lead \gset
SELECT q.name = h.name || h.remarks AS quote_name FROM crm.quote q, hostile h WHERE q.id = :hostile_quote;
INSERT INTO crm.lead (name, company) VALUES ('Named deal', 'Named Co') RETURNING id AS named_lead \gset
SELECT opportunity_id AS named_opp FROM crm.convert_lead(:named_lead, opportunity_name => (SELECT remarks FROM hostile)) \gset
SELECT o.name = h.remarks AS opportunity_name FROM crm.opportunity o, hostile h WHERE o.id = :named_opp;
INSERT INTO crm.account (name, description) SELECT company || ' direct', remarks FROM hostile RETURNING id AS hostile_account \gset
INSERT INTO crm.activity (type, subject, description, lead_id, remind_at)
SELECT 'task', h.name || h.remarks, repeat('y', 1048576), :hostile_lead, '2020-01-03 08:00+00' FROM hostile h;
SELECT r.subject = h.name || h.remarks AS reminder_subject FROM crm.claim_due_reminders(10) r, hostile h;
SELECT a.name = h.company || ' direct' AS account_name, a.description = h.remarks AS account_description
  FROM crm.account a, hostile h WHERE a.id = :hostile_account;
-- An account name of 1 MB does not fit the company-key index: refused
-- cleanly (54000), in a conversion too, which then changes nothing.
-- (Only the SQLSTATE is shown: the message gives compressed sizes.)
\set VERBOSITY sqlstate
INSERT INTO crm.account (name) VALUES (repeat('y', 1048576));
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.lead (name, company) VALUES ('Big Company', repeat('y', 1048576)) RETURNING id AS big_company_lead \gset
SELECT * FROM crm.convert_lead(:big_company_lead);
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY terse
SELECT status, account_id FROM crm.lead WHERE id = :big_company_lead;
-- Invalid UTF-8 and NUL never get in (22021, 54000).
SELECT convert_from('\xff'::bytea, 'UTF8');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.lead (name) VALUES (convert_from('\xc0af'::bytea, 'UTF8'));
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.lead (name) VALUES (convert_from('\xeda080'::bytea, 'UTF8'));
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.lead (name) VALUES (E'\xff\xfe');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.lead (name) VALUES (E'nul \x00 inside');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.lead (name) VALUES ('nul ' || chr(0));
\echo :LAST_ERROR_SQLSTATE
-- The match keys cope with all of it.
SELECT crm.company_match_key(company) AS key, crm.web_domain('http://%n%s@EVIL.example:99/%x') AS domain FROM hostile;
SELECT length(crm.company_match_key(repeat('x', 1048576))) AS key_length;
RESET ROLE;
-- The change log keeps the hostile values exactly (as the superuser reads it).
UPDATE crm.lead SET remarks = 'cleaned' WHERE id = :hostile_lead;
SELECT (c.changes -> 'remarks' ->> 'old') = h.remarks AS logged_old_remarks
  FROM crm.change_log c, hostile h
 WHERE c.table_name = 'crm.lead'::regclass AND c.row_id = :hostile_lead AND c.changes ? 'remarks';
-- A deleted 1 MB company is logged as its first 2000 bytes, its length and
-- its SHA-256 (values over 2000 bytes are bounded, README "History").
DELETE FROM crm.lead WHERE id = :big_company_lead;
SELECT c.changes -> 'company' ->> 'sha256' = encode(sha256(convert_to(repeat('y', 1048576), 'UTF8')), 'hex')
       AND c.changes -> 'company' ->> 'bytes' = '1048576'
       AND c.changes -> 'company' ->> 'truncated' = repeat('y', 2000) AS logged_deleted_company
  FROM crm.change_log c WHERE c.table_name = 'crm.lead'::regclass AND c.row_id = :big_company_lead AND c.operation = 'DELETE';
-- A product code with format specifiers, in an error detail (ZC304).
SET ROLE regress_atk_admin;
INSERT INTO crm.product (code, name, list_price, inventory) VALUES ('%s%n%x-1', 'Formatter', 10, 0);
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price)
SELECT b.id, p.id, 10 FROM crm.price_book b, crm.product p WHERE b.is_standard AND p.code = '%s%n%x-1';
RESET ROLE;
SET ROLE regress_atk_rep1;
INSERT INTO crm.opportunity (name, account_id) VALUES ('Format deal', 2) RETURNING id AS format_opp \gset
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity)
SELECT :format_opp, id, 3 FROM crm.product WHERE code = '%s%n%x-1';
SELECT crm.create_quote(:format_opp) AS format_quote \gset
UPDATE crm.quote SET status = 'Presented' WHERE id = :format_quote;
UPDATE crm.quote SET status = 'Accepted' WHERE id = :format_quote;
SELECT crm.create_order(:format_quote) AS format_order \gset
\set VERBOSITY default
SELECT crm.activate_order(:format_order);
\set VERBOSITY terse
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT status FROM crm.sales_order WHERE id = :format_order;
-- The server is still up.
SELECT 1 AS alive;

-- =====================================================================
-- 7. Escaping a check through settings and identities
-- =====================================================================
-- (The temporary objects planted above go first: they belong to the attacker.)
DISCARD TEMP;
-- The attacker logs in as themselves.
\c - regress_atk_rep1
\set VERBOSITY terse
SELECT current_user, session_user;
-- Custom settings exist for anyone to set, and mean nothing to the
-- extension: its permits are not settings.
SET crm.anything = 'on';
SET crm.permit = 'conversion';
SET crm.bypass_guards = true;
SELECT set_config('crm.caller', 'regress_atk_boss', false);
SELECT crm.submit_quote(:aq4);
UPDATE crm.lead SET status = 'Converted' WHERE id = 3;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.quote SET status = 'In Review' WHERE id = :aq4;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.approve_quote(:aq4);
\echo :LAST_ERROR_SQLSTATE
RESET ALL;
-- Triggers cannot be switched off: session_replication_role is the
-- superuser's.
SET session_replication_role = replica;
\echo :LAST_ERROR_SQLSTATE
BEGIN;
SET LOCAL session_replication_role = replica;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT set_config('session_replication_role', 'replica', false);
\echo :LAST_ERROR_SQLSTATE
ALTER ROLE regress_atk_rep1 SET session_replication_role = replica;
\echo :LAST_ERROR_SQLSTATE
-- Nor row-level security.
SET row_security = off;
SELECT count(*) FROM crm.lead;
\echo :LAST_ERROR_SQLSTATE
RESET row_security;
ALTER ROLE regress_atk_rep1 BYPASSRLS;
\echo :LAST_ERROR_SQLSTATE
-- Nor does the library reload.
LOAD 'crm';
\echo :LAST_ERROR_SQLSTATE
-- No other identity: not another rep, not a manager, not an admin.
SET ROLE regress_atk_rep2;
\echo :LAST_ERROR_SQLSTATE
SET ROLE regress_atk_boss;
\echo :LAST_ERROR_SQLSTATE
SET ROLE crm_manager;
\echo :LAST_ERROR_SQLSTATE
SET ROLE crm_admin;
\echo :LAST_ERROR_SQLSTATE
SET SESSION AUTHORIZATION regress_atk_rep2;
\echo :LAST_ERROR_SQLSTATE
SET SESSION AUTHORIZATION regress_atk_boss;
\echo :LAST_ERROR_SQLSTATE
GRANT crm_manager TO regress_atk_rep1;
\echo :LAST_ERROR_SQLSTATE
GRANT regress_atk_rep2 TO regress_atk_rep1;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
RESET SESSION AUTHORIZATION;
SELECT current_user, session_user;
-- Still only the attacker's rows, and the victim's untouched.
SELECT count(*) AS victim_leads FROM crm.lead WHERE owner = 'regress_atk_rep2'::regrole;
UPDATE crm.lead SET remarks = 'owned' WHERE id = 1 RETURNING id;
\c - :superuser
\set VERBOSITY terse
SELECT status, converted_by, remarks FROM crm.lead WHERE id IN (1, 3) ORDER BY id;
SELECT status FROM crm.quote WHERE id = :aq4;
SELECT rolsuper, rolbypassrls, rolconfig FROM pg_roles WHERE rolname = 'regress_atk_rep1';
SELECT count(*) AS rep1_memberships FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member
 WHERE r.rolname = 'regress_atk_rep1' AND m.roleid <> 'crm_sales'::regrole;

SET client_min_messages = warning;
DROP SCHEMA regress_atk_evil CASCADE;
RESET client_min_messages;
DROP EXTENSION crm CASCADE;
DROP ROLE regress_atk_rep1, regress_atk_rep2, regress_atk_boss, regress_atk_admin;
