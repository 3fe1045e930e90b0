-- red_team_s37: a hostile rep, manager and analyst (and a DBA's triggers)
-- against session 37's changes: crm.account_rollup for one owner's accounts
-- (settled rows matched by account owner, a dropped role's accounts, owner
-- and account filters), the change log and history stored in batches of
-- 1,000 (a DBA's AFTER row trigger that raises in the second batch or writes
-- leads while the entries are stored), the lead status frames under MERGE
-- and COPY, and the conversion's carry of custom fields after an admin
-- changed the registry in the same session.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_r37_admin, regress_r37_rep, regress_r37_rep2, regress_r37_boss, regress_r37_analyst, regress_r37_gone;
RESET client_min_messages;
\set VERBOSITY terse
SET DateStyle = ISO;
CREATE ROLE regress_r37_admin IN ROLE crm_admin;
CREATE ROLE regress_r37_rep IN ROLE crm_sales;
CREATE ROLE regress_r37_rep2 IN ROLE crm_sales;
CREATE ROLE regress_r37_gone IN ROLE crm_sales;
CREATE ROLE regress_r37_boss IN ROLE crm_manager;
CREATE ROLE regress_r37_analyst IN ROLE crm_analyst;
GRANT regress_r37_rep, regress_r37_rep2, regress_r37_gone, regress_r37_boss, regress_r37_analyst TO regress_r37_admin;
SET ROLE regress_r37_admin;
INSERT INTO crm.reporting_line (member, manager) VALUES ('regress_r37_rep', 'regress_r37_boss');
INSERT INTO crm.account (name, owner) VALUES ('A1', 'regress_r37_rep'), ('A2', 'regress_r37_rep2'), ('A3', 'regress_r37_gone'), ('A4', 'regress_r37_boss'), ('A5', 'regress_r37_rep');
INSERT INTO crm.opportunity (name, account_id, owner, amount, stage, close_date) VALUES
 ('o1', 1, 'regress_r37_rep', 100, 'Qualification', '2026-01-10'),
 ('o2', 1, 'regress_r37_rep2', 200, 'Qualification', '2026-01-10'),
 ('o3', 2, 'regress_r37_rep', 300, 'Qualification', '2026-01-10'),
 ('o4', 2, 'regress_r37_rep2', 400, 'Successful', '2026-01-10'),
 ('o5', 3, 'regress_r37_gone', 500, 'Qualification', '2026-01-10'),
 ('o6', 3, 'regress_r37_rep', 600, 'Qualification', '2026-01-10'),
 ('o7', 4, 'regress_r37_boss', 700, 'Qualification', '2026-01-10'),
 ('o8', 4, 'regress_r37_rep', 800, 'Successful', '2026-01-10'),
 ('o9', 5, 'regress_r37_rep2', 900, 'Qualification', '2026-01-10');
RESET ROLE;
INSERT INTO crm.activity (subject, account_id, owner, completed_at, status, type) VALUES ('call', 1, 'regress_r37_rep', '2026-02-01', 'Completed', 'task'), ('call', 1, 'regress_r37_rep2', '2026-03-01', 'Completed', 'task');
RESET ROLE;
-- Each role's view of crm.account_rollup (all accounts, one owner's, one
-- account) is taken while every account is pending (computed from its
-- groups) and again after a compaction (read from the settled rows): the
-- two must be the same rows, for every role.
CREATE TEMP TABLE before_ AS SELECT ''::text AS who, * FROM crm.account_rollup WHERE false;
GRANT ALL ON before_ TO PUBLIC;
CREATE FUNCTION pg_temp.snap(t text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['regress_r37_admin','regress_r37_rep','regress_r37_rep2','regress_r37_boss','regress_r37_analyst'] LOOP
    EXECUTE format('SET LOCAL ROLE %I', r);
    EXECUTE format('INSERT INTO %s SELECT %L, * FROM crm.account_rollup', t, r);
    EXECUTE format('INSERT INTO %s SELECT %L || '' owner=rep'', * FROM crm.account_rollup WHERE owner = ''regress_r37_rep''', t, r);
    EXECUTE format('INSERT INTO %s SELECT %L || '' id=3'', * FROM crm.account_rollup WHERE account_id = 3', t, r);
    RESET ROLE;
  END LOOP;
END $$;
SELECT pg_temp.snap('before_');
SELECT crm.compact_aggregates() > 0 AS compacted;
CREATE TEMP TABLE after_ AS SELECT * FROM before_ WHERE false;
GRANT ALL ON after_ TO PUBLIC;
SELECT pg_temp.snap('after_');
(SELECT 'only before' AS side, * FROM (SELECT * FROM before_ EXCEPT ALL SELECT * FROM after_) d)
UNION ALL (SELECT 'only after', * FROM (SELECT * FROM after_ EXCEPT ALL SELECT * FROM before_) d) ORDER BY 2, 3, 1;
-- what each role sees (a rep only its own deals' figures, also on another
-- owner's account; the manager its team's; the analyst everything)
SELECT who, account_id, owner, open_opportunities, open_amount, won_amount, last_activity_at IS NOT NULL AS activity FROM after_ ORDER BY 1, 2;
-- An account given to another owner by MERGE, and an account owner's role
-- dropped: the same figures before and after the next compaction.
SET ROLE regress_r37_admin;
MERGE INTO crm.account AS a USING (SELECT 5 AS id) AS s ON a.id = s.id WHEN MATCHED THEN UPDATE SET owner = 'regress_r37_rep2';
RESET ROLE;
REASSIGN OWNED BY regress_r37_gone TO CURRENT_USER; DROP OWNED BY regress_r37_gone; DROP ROLE regress_r37_gone;
TRUNCATE before_; TRUNCATE after_;
SELECT pg_temp.snap('before_');
SELECT crm.compact_aggregates() >= 0 AS compacted;
SELECT pg_temp.snap('after_');
(SELECT 'only before' AS side, * FROM (SELECT * FROM before_ EXCEPT ALL SELECT * FROM after_) d)
UNION ALL (SELECT 'only after', * FROM (SELECT * FROM after_ EXCEPT ALL SELECT * FROM before_) d) ORDER BY 2, 3, 1;
SELECT who, account_id, owner, open_opportunities, open_amount, won_amount FROM after_ ORDER BY 1, 2;
SELECT * FROM crm.verify_aggregates();
-- A rep reads no settled row of another owner directly either.
SET ROLE regress_r37_rep;
SELECT DISTINCT owner FROM crm_internal.account_settled ORDER BY 1;
RESET ROLE;


CREATE VIEW public.chain_breaks AS
SELECT count(*) AS breaks FROM (
  SELECT h.from_status IS DISTINCT FROM lag(h.to_status) OVER (PARTITION BY h.lead_id ORDER BY h.id) AS broken,
         h.to_status, h.lead_id, h.id, max(h.id) OVER (PARTITION BY h.lead_id) AS last
    FROM crm.lead_status_history h) s
 LEFT JOIN crm.lead l ON l.id = s.lead_id
 WHERE s.broken OR (s.id = s.last AND l.status IS DISTINCT FROM s.to_status);
GRANT SELECT ON public.chain_breaks TO PUBLIC;
-- Batches: 1,500 leads of the rep; one statement's 1,500 status entries
-- fill a batch and part of a second.
INSERT INTO crm.lead (name, company, status, owner) SELECT 'L' || g, 'Co' || g, 'New Lead', 'regress_r37_rep' FROM generate_series(1, 1500) g;
SELECT count(*) FROM crm.lead_status_history;
-- A DBA's AFTER row trigger on the history that raises at the 1,200th
-- entry (second batch): the statement fails, no entry and no status kept.
CREATE TABLE public.seen (n int);
CREATE FUNCTION public.hist_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.seen VALUES (1);
  IF (SELECT count(*) FROM public.seen) = 1200 THEN RAISE EXCEPTION 'dba says no at %', NEW.lead_id; END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER hist_guard AFTER INSERT ON crm.lead_status_history FOR EACH ROW EXECUTE FUNCTION public.hist_guard();
SET ROLE regress_r37_rep;
UPDATE crm.lead SET status = 'Processing';
RESET ROLE;
SELECT count(*) AS seen_after_fail FROM public.seen;
SELECT count(*) AS entries, count(*) FILTER (WHERE to_status = 'Processing') AS processing FROM crm.lead_status_history;
TRUNCATE public.seen;
DROP TRIGGER hist_guard ON crm.lead_status_history;
-- A DBA's AFTER row trigger on the change log that changes another lead's
-- status while the entries are stored (a statement run inside the end of
-- the appender, after the first batch): every lead's history stays a chain
-- ending at its status.
CREATE FUNCTION public.log_echo() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.table_name = 'crm.lead'::regclass AND NEW.operation = 'UPDATE' AND NEW.row_id % 500 = 0 THEN
    UPDATE crm.lead SET status = 'Following Up' WHERE id = NEW.row_id + 1 AND status <> 'Following Up';
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER log_echo AFTER INSERT ON crm.change_log FOR EACH ROW EXECUTE FUNCTION public.log_echo();
SET ROLE regress_r37_rep;
UPDATE crm.lead SET status = 'Processing';
RESET ROLE;
SELECT status, count(*) FROM crm.lead GROUP BY 1 ORDER BY 1;
SELECT * FROM public.chain_breaks;
DROP TRIGGER log_echo ON crm.change_log;
-- A DBA's AFTER row trigger on the change log with a transition table:
-- each entry's firing sees the statement's entries (3), as after an INSERT
-- statement, and no entry is lost.
CREATE TABLE public.nt_seen (n bigint);
CREATE FUNCTION public.nt_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.nt_seen SELECT count(*) FROM nt; RETURN NULL; END $$;
CREATE TRIGGER nt_count AFTER INSERT ON crm.change_log REFERENCING NEW TABLE AS nt
    FOR EACH ROW EXECUTE FUNCTION public.nt_count();
SET ROLE regress_r37_rep;
INSERT INTO crm.account (name) SELECT 'NT' || g FROM generate_series(1, 3) g;
UPDATE crm.account SET industry = 'x' WHERE name LIKE 'NT%';
RESET ROLE;
SELECT n, count(*) FROM public.nt_seen GROUP BY 1;
SELECT count(*) AS nt_entries FROM crm.change_log
 WHERE table_name = 'crm.account'::regclass AND row_id IN (SELECT id FROM crm.account WHERE name LIKE 'NT%');
DROP TRIGGER nt_count ON crm.change_log;
DROP FUNCTION public.nt_count();
DROP TABLE public.nt_seen;
-- MERGE (updates and inserts in one statement) and COPY: chains kept.
SET ROLE regress_r37_rep;
MERGE INTO crm.lead AS l USING (SELECT g FROM generate_series(1495, 1510) g) AS s ON l.name = 'L' || s.g
 WHEN MATCHED THEN UPDATE SET status = 'Completed'
 WHEN NOT MATCHED THEN INSERT (name, company, status) VALUES ('L' || s.g, 'Co' || s.g, 'Processing');
RESET ROLE;
COPY crm.lead (name, company, status) FROM STDIN;
Z1	Zco	Processing
Z2	Zco2	Completed
\.
SELECT * FROM public.chain_breaks;
SELECT count(*) FROM crm.lead_status_history;
SELECT * FROM crm.verify_aggregates();

-- The conversion's carry of custom fields reads the backend's copy of the
-- registry (statements it says find nothing are skipped): a field pair the
-- admin adds in this session after a conversion is carried by the next one.
SET ROLE regress_r37_rep;
INSERT INTO crm.lead (name, company, status, attributes) VALUES
 ('Ann', 'Acme', 'In Transaction', '{}'), ('Bob', 'Bobco', 'In Transaction', '{}'),
 ('Cid', 'Cidco', 'In Transaction', '{}'), ('Dot', 'Dotco', 'In Transaction', '{}');
SELECT (crm.convert_lead(id)).account_created FROM crm.lead WHERE name = 'Ann';
RESET ROLE;
-- A conversion into an account it did not make, with no custom field
-- defined: the registry copy says the carry finds nothing, and the rep
-- could run it (table privileges on crm.account, crm.lead and
-- crm.custom_field), so the statement is skipped.  A DBA's statement
-- trigger counts the UPDATE statements on crm.account: one, the
-- conversion's own (two before the fix: the privilege check read only
-- column grants, so it never let a rep skip).
CREATE TABLE public.account_updates (n int);
CREATE FUNCTION public.count_account_updates() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.account_updates VALUES (1); RETURN NULL; END $$;
CREATE TRIGGER count_account_updates BEFORE UPDATE ON crm.account
    FOR EACH STATEMENT EXECUTE FUNCTION public.count_account_updates();
GRANT INSERT ON public.account_updates TO PUBLIC;
SET ROLE regress_r37_rep;
INSERT INTO crm.lead (name, company, status) VALUES ('Eve', 'Evco', 'In Transaction');
SELECT (crm.convert_lead(id, account_id => (SELECT id FROM crm.account WHERE name = 'A1'), create_opportunity => false)).account_created
  FROM crm.lead WHERE name = 'Eve';
RESET ROLE;
SELECT count(*) AS account_update_statements FROM public.account_updates;
DROP TRIGGER count_account_updates ON crm.account;
DROP FUNCTION public.count_account_updates();
DROP TABLE public.account_updates;
-- the admin adds a field to leads and accounts (same name and type)
SET ROLE regress_r37_admin;
INSERT INTO crm.custom_field (object, name, label, type) VALUES ('lead', 'region', 'Region', 'text'), ('account', 'region', 'Region', 'text');
UPDATE crm.lead SET attributes = '{"region": "EU"}' WHERE name IN ('Bob', 'Cid', 'Dot');
RESET ROLE;
SET ROLE regress_r37_rep;
SELECT (crm.convert_lead(id)).account_created FROM crm.lead WHERE name = 'Bob';
SELECT name, attributes FROM crm.account ORDER BY id;
RESET ROLE;
-- The admin may not retype a field in use.
SET ROLE regress_r37_admin;
DELETE FROM crm.custom_field WHERE object = 'account' AND name = 'region';
INSERT INTO crm.custom_field (object, name, label, type, required) VALUES ('account', 'region', 'Region', 'number', false);
RESET ROLE;
SET ROLE regress_r37_rep;
SELECT (crm.convert_lead(id)).account_created FROM crm.lead WHERE name = 'Cid';
SELECT name, attributes FROM crm.account ORDER BY id;
RESET ROLE;
-- Nor make a field required that accounts lack.
SET ROLE regress_r37_admin;
INSERT INTO crm.custom_field (object, name, label, type, required) VALUES ('account', 'tier', 'Tier', 'text', true);
RESET ROLE;
SET ROLE regress_r37_rep;
SELECT (crm.convert_lead(id)).account_created FROM crm.lead WHERE name = 'Dot';
-- A converted lead is not converted again.
SELECT (crm.convert_lead(id, account_id => 1)).account_created FROM crm.lead WHERE name = 'Dot';
SELECT name, attributes FROM crm.account ORDER BY id;
RESET ROLE;

DROP VIEW public.chain_breaks;
DROP TABLE public.seen;
DROP FUNCTION public.hist_guard(), public.log_echo();
SET client_min_messages = warning;
DROP EXTENSION crm CASCADE;
DROP ROLE regress_r37_admin, regress_r37_rep, regress_r37_rep2, regress_r37_boss, regress_r37_analyst;
