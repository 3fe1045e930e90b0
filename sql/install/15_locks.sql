--------------------------------------------------------------------------
-- The extension's own locks (src/locks.c)
--
-- Conversions lock the match keys they search for (company, domain,
-- e-mail), and hierarchy changes lock their hierarchy, with locks that no
-- SQL function can take.  A key lock's tag is a keyed hash of the key, so
-- pg_locks does not show which company or e-mail is being converted; the
-- key is this random secret, readable only by the extension's owner, made
-- anew by every CREATE EXTENSION and left out of dumps.
--------------------------------------------------------------------------
CREATE TABLE crm_internal.lock_key_secret (
    single_row boolean PRIMARY KEY DEFAULT true CONSTRAINT lock_key_secret_single_row CHECK (single_row),
    secret bytea NOT NULL CONSTRAINT lock_key_secret_length CHECK (pg_catalog.octet_length(secret) BETWEEN 16 AND 64)
);
COMMENT ON TABLE crm_internal.lock_key_secret IS 'Internal: the random key of the hash that names the duplicate-search locks in pg_locks; readable by the extension owner only, not dumped';
COMMENT ON COLUMN crm_internal.lock_key_secret.single_row IS 'Always true: the table holds one row';
COMMENT ON COLUMN crm_internal.lock_key_secret.secret IS 'Random bytes (244 random bits) made at CREATE EXTENSION';
INSERT INTO crm_internal.lock_key_secret (secret)
VALUES (pg_catalog.decode(pg_catalog.replace(pg_catalog.gen_random_uuid()::pg_catalog.text
                                             OPERATOR(pg_catalog.||) pg_catalog.gen_random_uuid()::pg_catalog.text,
                                             '-', ''), 'hex'));
