-- crm 0.1 -> 0.2: ALTER EXTENSION crm UPDATE TO '0.2'.
-- Every schema change made in sql/install/ since 0.1 is repeated here, so
-- that an updated database has the same objects as a fresh install
-- (test/scripts/upgrade.sh checks it).

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION crm UPDATE TO '0.2'" to load this file. \quit

-- pg_dump: every table and sequence of the extension, all rows (0.1 left out
-- the seeded tables and the aggregates, and dumped only the non-standard
-- price books).
DO $dump$
DECLARE
    t pg_catalog.regclass;
BEGIN
    FOR t IN
        SELECT c.oid::pg_catalog.regclass
          FROM pg_catalog.pg_class AS c
         WHERE c.relnamespace OPERATOR(pg_catalog.=) 'crm'::pg_catalog.regnamespace
           AND c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'S']::"char"[])
         ORDER BY c.relname
    LOOP
        PERFORM pg_catalog.pg_extension_config_dump(t, '');
    END LOOP;
END
$dump$;
