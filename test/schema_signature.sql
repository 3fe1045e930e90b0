-- test/schema_signature.sql: every object of the crm extension and its
-- definition, one sorted line each, without OIDs, so that two databases can
-- be compared with diff (test/scripts/upgrade.sh: 0.1 updated against a fresh
-- install of the newest version).  Columns are compared by name, not by
-- position.
\pset footer off
WITH ext AS (
    SELECT oid FROM pg_extension WHERE extname = 'crm'
), member AS (
    SELECT d.classid, d.objid, d.objsubid
      FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
), nsp AS (
    -- schema crm and schema crm_internal (the extension's internals)
    SELECT n.oid FROM pg_namespace n WHERE n.nspname IN ('crm', 'crm_internal')
), rel AS (
    SELECT c.* FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM nsp)
)
SELECT line FROM (
    -- the extension's members
    SELECT 'member ' || pg_describe_object(classid, objid, objsubid) AS line FROM member
    UNION ALL
    -- tables, views, sequences, indexes: kind, options, row security, privileges
    SELECT format('relation %s kind=%s persistence=%s options=%s rls=%s force_rls=%s acl=%s',
                  r.relname, r.relkind, r.relpersistence, r.reloptions, r.relrowsecurity, r.relforcerowsecurity, r.relacl)
      FROM rel r
    UNION ALL
    SELECT format('column %s.%s type=%s notnull=%s default=%s identity=%s generated=%s collation=%s acl=%s',
                  r.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated, a.attcollation::regcollation, a.attacl)
      FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef ad ON ad.adrelid = r.oid AND ad.adnum = a.attnum
    UNION ALL
    SELECT format('constraint %s.%s %s deferrable=%s deferred=%s', r.relname, co.conname,
                  pg_get_constraintdef(co.oid), co.condeferrable, co.condeferred)
      FROM rel r JOIN pg_constraint co ON co.conrelid = r.oid
    UNION ALL
    SELECT format('domain-constraint %s.%s %s', t.typname, co.conname, pg_get_constraintdef(co.oid))
      FROM pg_type t JOIN pg_constraint co ON co.contypid = t.oid
     WHERE t.typnamespace IN (SELECT oid FROM nsp)
    UNION ALL
    SELECT format('index %s', pg_get_indexdef(i.indexrelid))
      FROM rel r JOIN pg_index i ON i.indrelid = r.oid
    UNION ALL
    SELECT format('trigger %s enabled=%s', pg_get_triggerdef(t.oid), t.tgenabled)
      FROM rel r JOIN pg_trigger t ON t.tgrelid = r.oid AND NOT t.tgisinternal
    UNION ALL
    SELECT format('policy %s.%s cmd=%s permissive=%s roles=%s using=%s check=%s', r.relname, p.polname,
                  p.polcmd, p.polpermissive,
                  (SELECT string_agg(CASE WHEN x = 0 THEN 'public' ELSE x::regrole::text END, ',' ORDER BY 1)
                     FROM unnest(p.polroles) x),
                  pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
      FROM rel r JOIN pg_policy p ON p.polrelid = r.oid
    UNION ALL
    SELECT format('view %s %s', r.relname, pg_get_viewdef(r.oid))
      FROM rel r WHERE r.relkind IN ('v', 'm')
    UNION ALL
    SELECT format('sequence %s type=%s start=%s inc=%s min=%s max=%s cache=%s cycle=%s',
                  r.relname, s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
      FROM rel r JOIN pg_sequence s ON s.seqrelid = r.oid
    UNION ALL
    -- functions: the whole definition (security, volatility, settings, body), privileges
    SELECT format('function %s acl=%s', pg_get_functiondef(p.oid), p.proacl)
      FROM pg_proc p WHERE p.pronamespace IN (SELECT oid FROM nsp) AND p.prokind IN ('f', 'p', 'w')
    UNION ALL
    SELECT format('aggregate %s', p.oid::regprocedure)
      FROM pg_proc p WHERE p.pronamespace IN (SELECT oid FROM nsp) AND p.prokind = 'a'
    UNION ALL
    -- types: enum labels in order, composite attributes, domains
    SELECT format('enum %s %s', t.typname, (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                                              FROM pg_enum e WHERE e.enumtypid = t.oid))
      FROM pg_type t WHERE t.typnamespace IN (SELECT oid FROM nsp) AND t.typtype = 'e'
    UNION ALL
    SELECT format('domain %s base=%s notnull=%s default=%s', t.typname, format_type(t.typbasetype, t.typtypmod),
                  t.typnotnull, t.typdefault)
      FROM pg_type t WHERE t.typnamespace IN (SELECT oid FROM nsp) AND t.typtype = 'd'
    UNION ALL
    SELECT format('type-acl %s %s', t.typname, t.typacl)
      FROM pg_type t WHERE t.typnamespace IN (SELECT oid FROM nsp) AND t.typacl IS NOT NULL
    UNION ALL
    -- comments on everything in the schema (tables, columns, functions, types, ...)
    SELECT format('comment %s: %s', pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description)
      FROM pg_description d
     WHERE (d.classoid = 'pg_class'::regclass AND d.objoid IN (SELECT oid FROM rel))
        OR (d.classoid = 'pg_proc'::regclass AND d.objoid IN (SELECT oid FROM pg_proc WHERE pronamespace IN (SELECT oid FROM nsp)))
        OR (d.classoid = 'pg_type'::regclass AND d.objoid IN (SELECT oid FROM pg_type WHERE typnamespace IN (SELECT oid FROM nsp)))
        OR (d.classoid = 'pg_namespace'::regclass AND d.objoid IN (SELECT oid FROM nsp))
        OR (d.classoid IN ('pg_trigger'::regclass, 'pg_constraint'::regclass, 'pg_policy'::regclass)
            AND pg_describe_object(d.classoid, d.objoid, 0) ~ ' on (table )?crm(_internal)?\.')
    UNION ALL
    -- the schema's privileges and the pg_dump configuration
    SELECT format('schema %s acl=%s', n.nspname, n.nspacl) FROM pg_namespace n WHERE n.oid IN (SELECT oid FROM nsp)
    UNION ALL
    SELECT format('config-dump %s %s', t::regclass, e.extcondition[i])
      FROM pg_extension e, unnest(e.extconfig) WITH ORDINALITY AS u(t, i)
     WHERE e.extname = 'crm'
) AS all_lines
ORDER BY line COLLATE "C";
