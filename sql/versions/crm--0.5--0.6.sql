-- crm 0.5 -> 0.6: ALTER EXTENSION crm UPDATE TO '0.6'.
-- Every schema change made in sql/install/ since 0.5 is repeated here, so
-- that an updated database has the same objects as a fresh install
-- (test/scripts/upgrade.sh checks it).
--
-- 0.6 restructures the code (one trigger function per job, the aggregates'
-- definitions in one place); what the extension does is unchanged.

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION crm UPDATE TO '0.6'" to load this file. \quit

-- == trigger functions: one per job (src/activities.c, src/campaigns.c,
-- == src/line_items.c, history and timestamps) ==

-- activities: the participants' trigger has its own function
COMMENT ON FUNCTION crm.activity_lifecycle() IS 'BEFORE INSERT OR UPDATE row trigger on crm.activity: keeps completed_at with status Completed, re-arms the reminder when remind_at changes';
CREATE FUNCTION crm.participant_response() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_participant_response'
    LANGUAGE C;
COMMENT ON FUNCTION crm.participant_response() IS 'BEFORE INSERT OR UPDATE row trigger on crm.activity_participant: stamps responded_at when the response changes and keeps it otherwise';
REVOKE ALL ON FUNCTION crm.participant_response() FROM PUBLIC;
DROP TRIGGER activity_lifecycle ON crm.activity_participant;
CREATE TRIGGER participant_response BEFORE INSERT OR UPDATE ON crm.activity_participant
    FOR EACH ROW EXECUTE FUNCTION crm.participant_response();

-- campaigns: the members' trigger has its own function
COMMENT ON FUNCTION crm.campaign_guard() IS 'BEFORE row trigger on crm.campaign: refuses a parent that would make a cycle; hierarchy changes are serialised';
CREATE FUNCTION crm.campaign_member_response() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_campaign_member_response'
    LANGUAGE C;
COMMENT ON FUNCTION crm.campaign_member_response() IS 'BEFORE row trigger on crm.campaign_member: stamps first_responded_at at the first response and keeps it from then on';
REVOKE ALL ON FUNCTION crm.campaign_member_response() FROM PUBLIC;
DROP TRIGGER campaign_guard ON crm.campaign_member;
CREATE TRIGGER campaign_member_response BEFORE INSERT OR UPDATE ON crm.campaign_member
    FOR EACH ROW EXECUTE FUNCTION crm.campaign_member_response();

-- line items: the triggers name their parent table as argument
COMMENT ON FUNCTION crm.price_line_item() IS 'BEFORE INSERT OR UPDATE row trigger on line items, with the parent table as argument (''opportunity'' or ''quote''): checks the product has an active entry in the parent''s price book (the standard book when the parent has none yet, which it then adopts) and fills a missing unit_price from it';
COMMENT ON FUNCTION crm.sum_line_items() IS 'AFTER statement trigger on line items, with the parent table as argument (''opportunity'' or ''quote''): locks the parents whose lines changed (in id order) and sets their amount (opportunities) or subtotal (quotes) to the sum of their line totals';
DROP TRIGGER price_line_item ON crm.opportunity_line_item;
CREATE TRIGGER price_line_item BEFORE INSERT OR UPDATE OF product_id, unit_price, opportunity_id
    ON crm.opportunity_line_item
    FOR EACH ROW EXECUTE FUNCTION crm.price_line_item('opportunity');
DROP TRIGGER sum_line_items_insert ON crm.opportunity_line_item;
CREATE TRIGGER sum_line_items_insert AFTER INSERT ON crm.opportunity_line_item
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.sum_line_items('opportunity');
DROP TRIGGER sum_line_items_update ON crm.opportunity_line_item;
CREATE TRIGGER sum_line_items_update AFTER UPDATE ON crm.opportunity_line_item
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.sum_line_items('opportunity');
DROP TRIGGER sum_line_items_delete ON crm.opportunity_line_item;
CREATE TRIGGER sum_line_items_delete AFTER DELETE ON crm.opportunity_line_item
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.sum_line_items('opportunity');
DROP TRIGGER price_line_item ON crm.quote_line_item;
CREATE TRIGGER price_line_item BEFORE INSERT OR UPDATE OF product_id, unit_price, quote_id
    ON crm.quote_line_item
    FOR EACH ROW EXECUTE FUNCTION crm.price_line_item('quote');
DROP TRIGGER sum_line_items_insert ON crm.quote_line_item;
CREATE TRIGGER sum_line_items_insert AFTER INSERT ON crm.quote_line_item
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.sum_line_items('quote');
DROP TRIGGER sum_line_items_update ON crm.quote_line_item;
CREATE TRIGGER sum_line_items_update AFTER UPDATE ON crm.quote_line_item
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.sum_line_items('quote');
DROP TRIGGER sum_line_items_delete ON crm.quote_line_item;
CREATE TRIGGER sum_line_items_delete AFTER DELETE ON crm.quote_line_item
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.sum_line_items('quote');

-- == aggregates: definitions in one place (src/aggregates.c) ==
-- The tables are what the definitions generate; the views and functions
-- derived from the definitions are made again from them (as in
-- sql/install/88_aggregates.sql).
CREATE FUNCTION crm.aggregate_definitions()
    RETURNS TABLE (aggregate text, source_table text, aggregate_table text,
                   group_columns text[], group_types regtype[], measures text[], measure_types regtype[],
                   primary_key text[], actual_query text)
    AS 'MODULE_PATHNAME', 'crm_aggregate_definitions'
    LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION crm.aggregate_definitions() FROM PUBLIC;
COMMENT ON FUNCTION crm.aggregate_definitions() IS 'The maintained aggregates as defined in the extension''s C code, one row each in the order writers lock their tables: the base table (schema crm) it aggregates, its aggregate table, the group columns and their types, the measures (a count, then sums) and their types, the primary key of the aggregate table, and the GROUP BY over the base table that the aggregate must add up to (columns named as the aggregate table''s)';

DO $actual$
BEGIN
    EXECUTE (SELECT pg_catalog.format('CREATE OR REPLACE VIEW crm.pipeline_actual WITH (security_invoker = true) AS %s', d.actual_query)
               FROM crm.aggregate_definitions() AS d WHERE d.aggregate OPERATOR(pg_catalog.=) 'pipeline');
END
$actual$;

DO $compared$
DECLARE
    kept text;
    actual text;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.format(
               'SELECT %L::text AS aggregate, pg_catalog.jsonb_build_object(%s) AS group_key, %s'
               ' FROM crm.%I AS g GROUP BY %s',
               d.aggregate, x.group_key, x.kept, d.aggregate_table, x.group_columns), ' UNION ALL ' ORDER BY d.ordinality),
           pg_catalog.string_agg(pg_catalog.format(
               'SELECT %L::text AS aggregate, pg_catalog.jsonb_build_object(%s) AS group_key, %s FROM (%s) AS g',
               d.aggregate, x.group_key, x.actual, d.actual_query), ' UNION ALL ' ORDER BY d.ordinality)
      INTO kept, actual
      FROM crm.aggregate_definitions() WITH ORDINALITY AS d
     CROSS JOIN LATERAL (
           SELECT (SELECT pg_catalog.string_agg(pg_catalog.format('%L, g.%I', c, c), ', ' ORDER BY c.i)
                     FROM pg_catalog.unnest(d.group_columns) WITH ORDINALITY AS c (c, i)) AS group_key,
                  (SELECT pg_catalog.string_agg(pg_catalog.format('g.%I', c), ', ' ORDER BY c.i)
                     FROM pg_catalog.unnest(d.group_columns) WITH ORDINALITY AS c (c, i)) AS group_columns,
                  (SELECT pg_catalog.string_agg(CASE WHEN d.measures[m.i] IS NULL THEN 'NULL::numeric'
                                                     ELSE pg_catalog.format('pg_catalog.sum(g.%I)::numeric', d.measures[m.i])
                                                END || ' AS ' || m.name, ', ' ORDER BY m.i)
                     FROM pg_catalog.unnest(ARRAY['items', 'amount', 'weighted_amount']) WITH ORDINALITY AS m (name, i)) AS kept,
                  (SELECT pg_catalog.string_agg(CASE WHEN d.measures[m.i] IS NULL THEN 'NULL::numeric'
                                                     ELSE pg_catalog.format('g.%I::numeric', d.measures[m.i])
                                                END || ' AS ' || m.name, ', ' ORDER BY m.i)
                     FROM pg_catalog.unnest(ARRAY['items', 'amount', 'weighted_amount']) WITH ORDINALITY AS m (name, i)) AS actual
           ) AS x;
    EXECUTE pg_catalog.format(
        'CREATE OR REPLACE VIEW crm.aggregates_compared WITH (security_invoker = true) AS'
        ' WITH kept AS (%s), actual AS (%s)'
        ' SELECT COALESCE(k.aggregate, a.aggregate) AS aggregate, COALESCE(k.group_key, a.group_key) AS group_key,'
        '        COALESCE(k.items, 0) AS kept_items, COALESCE(a.items, 0) AS actual_items,'
        '        COALESCE(k.amount, 0) AS kept_amount, COALESCE(a.amount, 0) AS actual_amount,'
        '        COALESCE(k.weighted_amount, 0) AS kept_weighted_amount,'
        '        COALESCE(a.weighted_amount, 0) AS actual_weighted_amount'
        '   FROM kept AS k'
        '   FULL JOIN actual AS a'
        '     ON a.aggregate OPERATOR(pg_catalog.=) k.aggregate AND a.group_key OPERATOR(pg_catalog.=) k.group_key',
        kept, actual);
END
$compared$;

CREATE OR REPLACE FUNCTION crm.rebuild_aggregates() RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    agg record;
    n bigint;
    total bigint := 0;
BEGIN
    -- writers wait until the rebuild commits; readers keep reading
    EXECUTE (SELECT format('LOCK TABLE %s IN SHARE MODE', string_agg(DISTINCT format('crm.%I', d.source_table), ', '))
               FROM crm.aggregate_definitions() AS d);
    EXECUTE (SELECT format('LOCK TABLE %s IN EXCLUSIVE MODE',
                           string_agg(format('crm.%I', d.aggregate_table), ', ' ORDER BY d.ordinality))
               FROM crm.aggregate_definitions() WITH ORDINALITY AS d);
    FOR agg IN SELECT * FROM crm.aggregate_definitions() LOOP
        EXECUTE format('DELETE FROM crm.%I', agg.aggregate_table);
    END LOOP;
    -- one row per group of the GROUP BY the aggregate must add up to
    FOR agg IN SELECT * FROM crm.aggregate_definitions() LOOP
        EXECUTE format('INSERT INTO crm.%1$I (%2$s, stripe, %3$s) SELECT %2$s, 0, %3$s FROM (%4$s) AS a',
                       agg.aggregate_table,
                       (SELECT string_agg(format('%I', c), ', ' ORDER BY c.i)
                          FROM unnest(agg.group_columns) WITH ORDINALITY AS c (c, i)),
                       (SELECT string_agg(format('%I', m), ', ' ORDER BY m.i)
                          FROM unnest(agg.measures) WITH ORDINALITY AS m (m, i)),
                       agg.actual_query);
        GET DIAGNOSTICS n = ROW_COUNT;
        total := total + n;
    END LOOP;
    RETURN total;
END
$$;

CREATE OR REPLACE FUNCTION crm.compact_aggregates() RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    agg record;
    keys text;
    total bigint := 0;
    n bigint;
BEGIN
    -- One compaction at a time: a lock only compactions take, first, while
    -- this transaction holds no other.
    PERFORM crm.aggregates_compaction_lock();
    -- A TRUNCATE of the base tables (which empties the aggregates) waits for
    -- the compaction and vice versa.
    EXECUTE (SELECT format('LOCK TABLE %s IN ACCESS SHARE MODE', string_agg(DISTINCT format('crm.%I', d.source_table), ', '))
               FROM crm.aggregate_definitions() AS d);
    -- Every table it writes up front, in the order writers and
    -- crm.rebuild_aggregates() lock them, in the mode writers take.  ROW
    -- EXCLUSIVE conflicts with nothing REINDEX CONCURRENTLY, CREATE INDEX
    -- CONCURRENTLY, VACUUM or ANALYZE hold, which wait for this transaction's
    -- snapshot: waiting for them would be a deadlock.  It waits only for
    -- VACUUM FULL, CLUSTER, REINDEX, TRUNCATE and a rebuild, which wait for
    -- no snapshot, and never for a table lock once the work has begun.
    EXECUTE (SELECT format('LOCK TABLE %s IN ROW EXCLUSIVE MODE',
                           string_agg(format('crm.%I', d.aggregate_table), ', ' ORDER BY d.ordinality))
               FROM crm.aggregate_definitions() WITH ORDINALITY AS d);
    -- Per aggregate table: move every stripe row that no open transaction
    -- is writing into stripe 0 (rows a writer holds are skipped and moved
    -- next time), then drop stripe-0 rows that add up to nothing.  Writers
    -- only ever touch their own stripes, never stripe 0, and write to another
    -- of theirs rather than wait for a row the compaction holds, so nobody
    -- waits for a compaction.
    FOR agg IN SELECT * FROM crm.aggregate_definitions() LOOP
        keys := (SELECT string_agg(format('%I', c), ', ' ORDER BY c.i)
                   FROM unnest(agg.group_columns) WITH ORDINALITY AS c (c, i));
        EXECUTE format(
            'WITH moved AS ('
            '    DELETE FROM crm.%1$I AS a'
            '     WHERE a.ctid OPERATOR(pg_catalog.=) ANY (ARRAY('
            '               SELECT x.ctid FROM crm.%1$I AS x'
            '                WHERE x.stripe OPERATOR(pg_catalog.<>) 0 FOR UPDATE SKIP LOCKED))'
            '    RETURNING a.*)'
            ' INSERT INTO crm.%1$I AS t (%2$s, stripe, %3$s)'
            ' SELECT %2$s, 0, %4$s FROM moved GROUP BY %2$s'
            ' ON CONFLICT (%2$s, stripe) DO UPDATE SET %5$s',
            agg.aggregate_table, keys,
            (SELECT string_agg(format('%I', m), ', ' ORDER BY m.i)
               FROM unnest(agg.measures) WITH ORDINALITY AS m (m, i)),
            (SELECT string_agg(format('pg_catalog.sum(%I)', m), ', ' ORDER BY m.i)
               FROM unnest(agg.measures) WITH ORDINALITY AS m (m, i)),
            (SELECT string_agg(format('%1$I = t.%1$I OPERATOR(pg_catalog.+) EXCLUDED.%1$I', m), ', ' ORDER BY m.i)
               FROM unnest(agg.measures) WITH ORDINALITY AS m (m, i)));
        EXECUTE format('DELETE FROM crm.%I AS a WHERE a.stripe OPERATOR(pg_catalog.=) 0 AND %s', agg.aggregate_table,
                       (SELECT string_agg(format('a.%I OPERATOR(pg_catalog.=) 0', m), ' AND ' ORDER BY m.i)
                          FROM unnest(agg.measures) WITH ORDINALITY AS m (m, i)));
        EXECUTE format('SELECT pg_catalog.count(*) FROM crm.%I', agg.aggregate_table) INTO n;
        total := total + n;
    END LOOP;
    RETURN total;
END
$$;

-- == privileges (keep last) ==
