-- table_locks: a CRM user cannot LOCK the extension's tables (or views)
-- in a mode stronger than ROW EXCLUSIVE, which every write takes anyway:
-- with DELETE privilege PostgreSQL would let it take ACCESS EXCLUSIVE and
-- stop every reader and writer, the superuser included.  The guard is a
-- hook of the crm library, in place from a session's first statement when
-- crm is in session_preload_libraries (README "Role model").  Likewise
-- CREATE RULE, which PostgreSQL would queue for that lock before checking
-- ownership; and no transaction that holds the extension's own locks can
-- be prepared (it would hold them after its session is gone).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP SCHEMA IF EXISTS regress_lockers CASCADE;
DROP ROLE IF EXISTS regress_locker, regress_lock_admin;
RESET client_min_messages;
CREATE ROLE regress_locker IN ROLE crm_sales;
CREATE ROLE regress_lock_admin IN ROLE crm_admin;
ALTER DATABASE :"DBNAME" SET session_preload_libraries = 'crm';
\c
-- A new session: no crm function has run yet, the library is preloaded.
SET ROLE regress_locker;
BEGIN;
LOCK TABLE crm.lead IN ACCESS EXCLUSIVE MODE;
ROLLBACK;
\echo :LAST_ERROR_SQLSTATE
-- Every mode above ROW EXCLUSIVE, on every table the rep may delete from.
BEGIN;
LOCK TABLE crm.opportunity IN SHARE MODE;
ROLLBACK;
BEGIN;
LOCK TABLE crm.account IN SHARE UPDATE EXCLUSIVE MODE;
ROLLBACK;
BEGIN;
LOCK TABLE crm.activity IN EXCLUSIVE MODE NOWAIT;
ROLLBACK;
-- Several tables at once: refused when any one is the extension's.
BEGIN;
LOCK TABLE crm.contact, crm.sales_order IN SHARE ROW EXCLUSIVE MODE;
ROLLBACK;
-- What writes take anyway is allowed.
BEGIN;
LOCK TABLE crm.lead IN ROW EXCLUSIVE MODE;
LOCK TABLE crm.lead IN ROW SHARE MODE;
LOCK TABLE crm.lead IN ACCESS SHARE MODE;
SELECT mode FROM pg_locks WHERE relation = 'crm.lead'::regclass AND pid = pg_backend_pid() ORDER BY mode;
ROLLBACK;
-- Through a view of one's own, which LOCK TABLE locks recursively (with the
-- view owner's DELETE privilege on the table): refused too.
RESET ROLE;
CREATE SCHEMA regress_lockers AUTHORIZATION regress_locker;
SET ROLE regress_locker;
CREATE VIEW regress_lockers.my_leads AS SELECT id, name FROM crm.lead;
CREATE VIEW regress_lockers.nested AS
    SELECT 1 AS one FROM regress_lockers.my_leads WHERE EXISTS (SELECT 1 FROM crm.account);
BEGIN;
LOCK TABLE regress_lockers.my_leads IN ACCESS EXCLUSIVE MODE;
ROLLBACK;
BEGIN;
LOCK TABLE regress_lockers.nested IN EXCLUSIVE MODE;
ROLLBACK;
-- A view over no crm table is the user's own business.
CREATE VIEW regress_lockers.plain AS SELECT 1 AS one;
BEGIN;
LOCK TABLE regress_lockers.plain IN ACCESS EXCLUSIVE MODE;
ROLLBACK;
-- From a function too (the hook sees every utility statement).
CREATE FUNCTION regress_lockers.grab() RETURNS void LANGUAGE plpgsql
    AS $$ BEGIN LOCK TABLE crm.quote IN ACCESS EXCLUSIVE MODE; END $$;
SELECT regress_lockers.grab();
RESET ROLE;
-- CREATE RULE would queue for ACCESS EXCLUSIVE before PostgreSQL checks
-- ownership, holding up every later statement on the table: refused first.
SET ROLE regress_locker;
CREATE RULE squat AS ON INSERT TO crm.account DO INSTEAD NOTHING;
\echo :LAST_ERROR_SQLSTATE
-- A transaction that holds one of the extension's own locks (here a
-- conversion's key locks) cannot be prepared: a prepared transaction would
-- keep every other conversion of that company waiting until someone ends it.
-- The transaction rolls back.
INSERT INTO crm.lead (name, company) VALUES ('Prep', 'Prepared Corp') RETURNING id AS prep \gset
BEGIN;
SELECT account_created FROM crm.convert_lead(:prep);
PREPARE TRANSACTION 'regress_hold_keys';
SELECT status FROM crm.lead WHERE id = :prep;
SELECT count(*) AS prepared FROM pg_prepared_xacts WHERE gid = 'regress_hold_keys';
-- A transaction that took none prepares as usual.
BEGIN;
UPDATE crm.lead SET remarks = 'prepared' WHERE id = :prep;
PREPARE TRANSACTION 'regress_plain';
COMMIT PREPARED 'regress_plain';
SELECT remarks FROM crm.lead WHERE id = :prep;
RESET ROLE;
-- Admins are CRM users too; the extension's owner (here the superuser)
-- may lock, for maintenance.
SET ROLE regress_lock_admin;
BEGIN;
LOCK TABLE crm.product IN ACCESS EXCLUSIVE MODE;
ROLLBACK;
RESET ROLE;
BEGIN;
LOCK TABLE crm.lead IN ACCESS EXCLUSIVE MODE;
ROLLBACK;

ALTER DATABASE :"DBNAME" RESET session_preload_libraries;
SET client_min_messages = warning;
DROP SCHEMA regress_lockers CASCADE;
RESET client_min_messages;
DROP EXTENSION crm CASCADE;
DROP ROLE regress_locker, regress_lock_admin;
