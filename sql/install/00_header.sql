/*
 * The install script of the newest version (crm--<default_version>.sql),
 * built by the Makefile from the files in sql/install/, one per module, in
 * name order.  Older versions are reached through sql/versions/ (a base
 * script and the update scripts crm--A--B.sql); a change here ships in an
 * update script too.  Reads top to bottom like a schema document: roles and domains, the core model (accounts,
 * contacts, leads, opportunities), history, lead conversion, then the Sales
 * Cloud modules (catalog, line items, quotes, orders, activities, campaigns),
 * and last the grants and pg_dump configuration.
 *
 * Every name used inside functions is schema-qualified; the C code that runs
 * SQL does the same, so nothing here depends on the caller's search_path.
 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION crm" to load this file. \quit


-- A restore of a dump runs this script (the dump holds CREATE EXTENSION crm)
-- and must run under session_replication_role = replica (README "Backup and
-- restore"): otherwise the guards refuse the dumped rows, the history and
-- aggregates count them again, and the seeds collide with the dumped ones.
-- pg_dump and pg_restore always SET row_security = off in the restoring
-- session, which nothing else that creates the extension does; such a
-- session without replica mode fails here, at its first crm statement, with
-- the procedure in the hint (ZC603).
DO $restore_mode$
BEGIN
    IF pg_catalog.current_setting('row_security') OPERATOR(pg_catalog.=) 'off'
       AND pg_catalog.current_setting('session_replication_role') OPERATOR(pg_catalog.<>) 'replica' THEN
        RAISE EXCEPTION 'crm cannot be restored without session_replication_role = replica'
            USING ERRCODE = 'ZC603',
                  DETAIL = 'This session has row_security = off, as pg_dump and pg_restore set it, and session_replication_role = '
                           OPERATOR(pg_catalog.||) pg_catalog.current_setting('session_replication_role')
                           OPERATOR(pg_catalog.||) '; a restore in this mode would fail part-way or restore different data.',
                  HINT = 'Drop and re-create the target database, then restore as a superuser with PGOPTIONS=''-c session_replication_role=replica'' (README "Backup and restore"). Outside a restore, SET row_security = on before CREATE EXTENSION crm.';
    END IF;
END
$restore_mode$;
