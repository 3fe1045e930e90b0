-- foreign_key_indexes: every foreign key of schemas crm and crm_internal has
-- an index whose leading columns are the key's columns, so that deleting or
-- re-keying the referenced row (a lead source, an account, a merged
-- contact) finds the referencing rows by an index probe instead of reading
-- the whole table.  A partial index counts only when its condition is
-- "column IS NOT NULL" for a column of the key, which every equality probe
-- implies.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;

-- The foreign keys (of any schema) that no valid index leads with; a partial
-- index counts when its condition is "c IS NOT NULL" for a column c of the key.
CREATE TEMP VIEW unindexed_foreign_key AS
SELECT c.conrelid::regclass AS referencing_table, c.conname AS foreign_key, c.connamespace
  FROM pg_constraint AS c
 WHERE c.contype = 'f'
   AND NOT EXISTS (
        SELECT 1 FROM pg_index AS i
         WHERE i.indrelid = c.conrelid
           AND i.indisvalid
           AND i.indnkeyatts >= cardinality(c.conkey)
           AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey
           AND c.conkey @> (i.indkey::int2[])[0:cardinality(c.conkey) - 1]
           AND (i.indpred IS NULL
                OR EXISTS (SELECT 1 FROM pg_attribute AS a
                            WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
                              AND pg_get_expr(i.indpred, i.indrelid)
                                  ~ ('^\(?' || quote_ident(a.attname) || ' IS NOT NULL\)?$'))));

-- Those of the extension's schemas, crm and crm_internal: none.
SELECT referencing_table, foreign_key FROM unindexed_foreign_key
 WHERE connamespace IN ('crm'::regnamespace, 'crm_internal'::regnamespace) ORDER BY 1, 2;

-- The check sees the foreign keys at all (a query that finds nothing to
-- check would pass trivially): schema crm has dozens of them.
SELECT count(*) > 30 AS many_foreign_keys_checked
  FROM pg_constraint WHERE contype = 'f' AND connamespace = 'crm'::regnamespace;

-- And it notices a missing one: a table of our own with an unindexed
-- reference to crm.account shows up, and an index on the column hides it;
-- a partial index on another condition does not count, nor one that is
-- "IS NOT NULL" of another column.
CREATE TABLE public.fk_probe (id int PRIMARY KEY, account_id bigint REFERENCES crm.account (id), kind text);
SELECT referencing_table, foreign_key FROM unindexed_foreign_key WHERE referencing_table = 'public.fk_probe'::regclass;
CREATE INDEX fk_probe_partial ON public.fk_probe (account_id) WHERE kind = 'x';
SELECT referencing_table, foreign_key FROM unindexed_foreign_key WHERE referencing_table = 'public.fk_probe'::regclass;
CREATE INDEX fk_probe_kind ON public.fk_probe (account_id) WHERE kind IS NOT NULL;
SELECT referencing_table, foreign_key FROM unindexed_foreign_key WHERE referencing_table = 'public.fk_probe'::regclass;
CREATE INDEX fk_probe_account ON public.fk_probe (account_id) WHERE account_id IS NOT NULL;
SELECT referencing_table, foreign_key FROM unindexed_foreign_key WHERE referencing_table = 'public.fk_probe'::regclass;
DROP TABLE public.fk_probe;

-- Deleting a lead source probes the new index: the plan of the foreign key's
-- lookup reads lead_source_idx.
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT 1 FROM crm.lead WHERE source = 'website';
RESET enable_seqscan;
