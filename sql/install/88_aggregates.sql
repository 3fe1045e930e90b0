--------------------------------------------------------------------------
-- Pipeline aggregates
--
-- crm.pipeline_aggregate holds, per (stage, owner, close month), the number
-- of opportunities, their amount and their probability-weighted amount, kept
-- by statement-level C triggers (names start with aggregates_) from the
-- transition tables.  No hot rows: each backend adds its deltas to its own
-- stripe (one row per group and backend id), so concurrent writers never
-- wait for each other, and readers sum the stripes -- time proportional to
-- the number of groups times the backends that wrote, not to the number of
-- opportunities.  The stripes are ordinary rows written in the writer's
-- transaction: exact after commit, rollback, ROLLBACK TO SAVEPOINT, COPY,
-- bulk UPDATE and DELETE; TRUNCATE empties them.
--------------------------------------------------------------------------

CREATE TABLE crm.pipeline_aggregate (
    stage            text NOT NULL,
    owner            regrole NOT NULL,
    close_month      date NOT NULL,
    stripe           integer NOT NULL,
    opportunities    bigint NOT NULL DEFAULT 0,
    amount           numeric NOT NULL DEFAULT 0,
    weighted_amount  numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (stage, owner, close_month, stripe)
);
COMMENT ON TABLE crm.pipeline_aggregate IS 'Pipeline totals per stage, owner and close month, one row per writing backend (stripe); sum over stripes to read; written only by the aggregates_ triggers';
COMMENT ON COLUMN crm.pipeline_aggregate.stage IS 'Opportunity stage';
COMMENT ON COLUMN crm.pipeline_aggregate.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm.pipeline_aggregate.close_month IS 'First day of the close month; infinity when the opportunity has no close date';
COMMENT ON COLUMN crm.pipeline_aggregate.stripe IS 'Backend id of the writer (0 after a rebuild); lets writers add without waiting for each other';
COMMENT ON COLUMN crm.pipeline_aggregate.opportunities IS 'Change in the number of opportunities recorded by this stripe';
COMMENT ON COLUMN crm.pipeline_aggregate.amount IS 'Change in the sum of amounts recorded by this stripe';
COMMENT ON COLUMN crm.pipeline_aggregate.weighted_amount IS 'Change in the sum of round(amount x probability / 100, 2) recorded by this stripe';

CREATE FUNCTION crm.aggregates_pipeline() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_aggregates_pipeline'
    LANGUAGE C;
COMMENT ON FUNCTION crm.aggregates_pipeline() IS 'AFTER statement trigger on crm.opportunity: adds the statement''s changes to the writing backend''s stripe of crm.pipeline_aggregate (TRUNCATE empties it)';

CREATE TRIGGER aggregates_pipeline_insert AFTER INSERT ON crm.opportunity
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.aggregates_pipeline();
CREATE TRIGGER aggregates_pipeline_update AFTER UPDATE ON crm.opportunity
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.aggregates_pipeline();
CREATE TRIGGER aggregates_pipeline_delete AFTER DELETE ON crm.opportunity
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.aggregates_pipeline();
CREATE TRIGGER aggregates_pipeline_truncate AFTER TRUNCATE ON crm.opportunity
    FOR EACH STATEMENT EXECUTE FUNCTION crm.aggregates_pipeline();

-- What the aggregate must equal: the GROUP BY over the opportunities.
CREATE VIEW crm.pipeline_actual WITH (security_invoker = true) AS
    SELECT o.stage, o.owner,
           COALESCE(pg_catalog.date_trunc('month', o.close_date)::date, 'infinity'::date) AS close_month,
           pg_catalog.count(*) AS opportunities, pg_catalog.sum(o.amount) AS amount,
           pg_catalog.sum(pg_catalog.round(o.amount OPERATOR(pg_catalog.*) COALESCE(o.probability, 0)
                                           OPERATOR(pg_catalog./) 100, 2)) AS weighted_amount
      FROM crm.opportunity AS o
     GROUP BY 1, 2, 3;
COMMENT ON VIEW crm.pipeline_actual IS 'The pipeline totals computed from the opportunities (a full GROUP BY): what crm.pipeline_aggregate must add up to';
COMMENT ON COLUMN crm.pipeline_actual.stage IS 'Opportunity stage';
COMMENT ON COLUMN crm.pipeline_actual.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm.pipeline_actual.close_month IS 'First day of the close month; infinity without a close date';
COMMENT ON COLUMN crm.pipeline_actual.opportunities IS 'Number of opportunities';
COMMENT ON COLUMN crm.pipeline_actual.amount IS 'Sum of amounts';
COMMENT ON COLUMN crm.pipeline_actual.weighted_amount IS 'Sum of round(amount x probability / 100, 2)';

CREATE VIEW crm.pipeline_totals WITH (security_invoker = true) AS
    SELECT a.stage, a.owner, a.close_month,
           pg_catalog.sum(a.opportunities) AS opportunities, pg_catalog.sum(a.amount) AS amount,
           pg_catalog.sum(a.weighted_amount) AS weighted_amount
      FROM crm.pipeline_aggregate AS a
     GROUP BY 1, 2, 3
    HAVING pg_catalog.sum(a.opportunities) OPERATOR(pg_catalog.<>) 0;
COMMENT ON VIEW crm.pipeline_totals IS 'Pipeline totals per stage, owner and close month, read from the maintained aggregate (stripes summed)';
COMMENT ON COLUMN crm.pipeline_totals.stage IS 'Opportunity stage';
COMMENT ON COLUMN crm.pipeline_totals.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm.pipeline_totals.close_month IS 'First day of the close month; infinity without a close date';
COMMENT ON COLUMN crm.pipeline_totals.opportunities IS 'Number of opportunities';
COMMENT ON COLUMN crm.pipeline_totals.amount IS 'Sum of amounts';
COMMENT ON COLUMN crm.pipeline_totals.weighted_amount IS 'Sum of round(amount x probability / 100, 2)';

CREATE FUNCTION crm.verify_aggregates()
    RETURNS TABLE (aggregate text, stage text, owner regrole, close_month date,
                   kept_opportunities numeric, actual_opportunities numeric,
                   kept_amount numeric, actual_amount numeric,
                   kept_weighted numeric, actual_weighted numeric)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT 'pipeline', COALESCE(k.stage, a.stage), COALESCE(k.owner, a.owner), COALESCE(k.close_month, a.close_month),
           k.opportunities, a.opportunities, k.amount, a.amount, k.weighted_amount, a.weighted_amount
      FROM crm.pipeline_totals AS k
      FULL JOIN crm.pipeline_actual AS a
        ON a.stage OPERATOR(pg_catalog.=) k.stage AND a.owner OPERATOR(pg_catalog.=) k.owner
       AND a.close_month OPERATOR(pg_catalog.=) k.close_month
     WHERE k.opportunities IS DISTINCT FROM a.opportunities
        OR k.amount IS DISTINCT FROM a.amount
        OR k.weighted_amount IS DISTINCT FROM a.weighted_amount;
END;
COMMENT ON FUNCTION crm.verify_aggregates() IS 'One row per group where the maintained aggregates differ from a fresh GROUP BY over the base tables; no rows: all exact';

CREATE FUNCTION crm.rebuild_aggregates() RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    -- writers wait until the rebuild commits; readers keep reading
    LOCK TABLE crm.opportunity IN SHARE MODE;
    LOCK TABLE crm.pipeline_aggregate IN EXCLUSIVE MODE;
    DELETE FROM crm.pipeline_aggregate;
    INSERT INTO crm.pipeline_aggregate (stage, owner, close_month, stripe, opportunities, amount, weighted_amount)
    SELECT a.stage, a.owner, a.close_month, 0, a.opportunities, a.amount, a.weighted_amount
      FROM crm.pipeline_actual AS a;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION crm.rebuild_aggregates() IS 'Recomputes the aggregates from all opportunities into one row per group (stripe 0), folding all stripes; returns the number of groups. Blocks writers of opportunities until it commits. Runs as the extension owner (it reads every row and writes the aggregate, which nobody else may); admins only.';
