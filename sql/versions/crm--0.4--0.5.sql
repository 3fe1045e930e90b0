-- crm 0.4 -> 0.5: ALTER EXTENSION crm UPDATE TO '0.5'.
-- Every schema change made in sql/install/ since 0.4 is repeated here, so
-- that an updated database has the same objects as a fresh install
-- (test/scripts/upgrade.sh checks it).
--
-- 0.5 closes what a red team with ordinary CRM logins could still do to
-- 0.4 (forged ids, lock squatting, hidden references, unbounded change-log
-- values) and what a fault run found (two-phase commit, maintenance of the
-- aggregate tables, restores without replica mode).

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION crm UPDATE TO '0.5'" to load this file. \quit

-- lead: the extension's own locks (src/locks.c) -- a secret for the keyed
-- lock tags, readable by the extension owner only and not dumped
CREATE TABLE crm.lock_key_secret (
    single_row boolean PRIMARY KEY DEFAULT true CONSTRAINT lock_key_secret_single_row CHECK (single_row),
    secret bytea NOT NULL CONSTRAINT lock_key_secret_length CHECK (pg_catalog.octet_length(secret) BETWEEN 16 AND 64)
);
COMMENT ON TABLE crm.lock_key_secret IS 'Internal: the random key of the hash that names the duplicate-search locks in pg_locks; readable by the extension owner only, not dumped';
COMMENT ON COLUMN crm.lock_key_secret.single_row IS 'Always true: the table holds one row';
COMMENT ON COLUMN crm.lock_key_secret.secret IS 'Random bytes (244 random bits) made at CREATE EXTENSION';
INSERT INTO crm.lock_key_secret (secret)
VALUES (pg_catalog.decode(pg_catalog.replace(pg_catalog.gen_random_uuid()::pg_catalog.text
                                             OPERATOR(pg_catalog.||) pg_catalog.gen_random_uuid()::pg_catalog.text,
                                             '-', ''), 'hex'));

-- lead: ids are the database's to give -- INSERT and UPDATE granted on every
-- column but the identity (and generated) ones (as in 99_privileges.sql)
DO $ids$
DECLARE
    g record;
    cols text;
BEGIN
    FOR g IN
        SELECT c.oid::pg_catalog.regclass AS rel, a.privilege_type AS priv,
               pg_catalog.quote_ident(r.rolname) AS grantee
          FROM pg_catalog.pg_class AS c
         CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) AS a
          JOIN pg_catalog.pg_roles AS r ON r.oid OPERATOR(pg_catalog.=) a.grantee
         WHERE c.relnamespace OPERATOR(pg_catalog.=) 'crm'::pg_catalog.regnamespace
           AND c.relkind OPERATOR(pg_catalog.=) 'r'
           AND a.privilege_type OPERATOR(pg_catalog.=) ANY (ARRAY['INSERT', 'UPDATE'])
           AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
         ORDER BY 1, 2, 3
    LOOP
        SELECT pg_catalog.string_agg(pg_catalog.quote_ident(att.attname), ', ' ORDER BY att.attnum)
          INTO cols
          FROM pg_catalog.pg_attribute AS att
         WHERE att.attrelid OPERATOR(pg_catalog.=) g.rel
           AND att.attnum OPERATOR(pg_catalog.>) 0 AND NOT att.attisdropped
           AND att.attidentity OPERATOR(pg_catalog.=) '' AND att.attgenerated OPERATOR(pg_catalog.=) '';
        EXECUTE pg_catalog.format('REVOKE %s ON %s FROM %s', g.priv, g.rel, g.grantee);
        EXECUTE pg_catalog.format('GRANT %s (%s) ON %s TO %s', g.priv, cols, g.rel, g.grantee);
    END LOOP;
END
$ids$;

