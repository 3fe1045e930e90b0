--------------------------------------------------------------------------
-- Stage velocity, kept (issue 22)
--
-- crm_internal.stage_velocity_aggregate holds, per (stage, owner), how many
-- times deals left the stage by moving on and the seconds they had spent in
-- it, one row per writing backend (stripe): readers sum the stripes, so
-- crm.stage_velocity costs the number of groups, not of history entries.
-- Written by crm_internal.stage_velocity_fold() (src/stage_velocity.c) once
-- per UPDATE statement from its transition tables, from the deals' own
-- stage_changed_at (set by the lifecycle trigger, 60_opportunity_lifecycle.sql):
-- no history is read.  A deleted deal's passages stay (its history outlives
-- it); TRUNCATE empties the aggregate with the history.  The owner is the
-- one the deal had in the stage it left; row security on it as on the
-- pipeline aggregate.  A stage rename moves the stage's passages to the
-- new name (crm_internal.record_stage_rename, 61_stage_renames.sql): the
-- old name's groups then add up to nothing until a compaction drops them.  crm.verify_aggregates() recomputes it from
-- crm.opportunity_history.
--------------------------------------------------------------------------

CREATE TABLE crm_internal.stage_velocity_aggregate (
    stage     text NOT NULL,
    owner     regrole NOT NULL,
    stripe    integer NOT NULL,
    passages  bigint NOT NULL,
    seconds   numeric NOT NULL,
    PRIMARY KEY (stage, owner, stripe)
) WITH (fillfactor = 20);
COMMENT ON TABLE crm_internal.stage_velocity_aggregate IS 'Stage passages per stage left and owner, one row per writing backend (stripe); sum over stripes to read (crm.stage_velocity does); written only by the stage_velocity_fold trigger';
COMMENT ON COLUMN crm_internal.stage_velocity_aggregate.stage IS 'The stage the deals left, by its name now (a rename moves the passages to the new name)';
COMMENT ON COLUMN crm_internal.stage_velocity_aggregate.owner IS 'Owner of the deals while in that stage';
COMMENT ON COLUMN crm_internal.stage_velocity_aggregate.stripe IS 'Writing backend: rows of one backend, summed by readers; 0 after a compaction or rebuild; minus the id of a stage rename (crm.opportunity_stage_rename) for the passages it moved from the old name to the new';
COMMENT ON COLUMN crm_internal.stage_velocity_aggregate.passages IS 'Times deals left the stage by moving on, recorded by this stripe';
COMMENT ON COLUMN crm_internal.stage_velocity_aggregate.seconds IS 'Seconds those deals had spent in the stage (from entering to leaving, transaction times), recorded by this stripe';

-- row security as on the other aggregates (95_row_security.sql)
GRANT SELECT ON crm_internal.stage_velocity_aggregate TO crm_admin, crm_manager, crm_sales, crm_analyst;

CREATE FUNCTION crm_internal.stage_velocity_fold() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_stage_velocity_fold'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.stage_velocity_fold() IS 'AFTER UPDATE statement trigger on crm.opportunity (transition tables velocity_old, velocity_new): adds the stage passages of the deals that moved (a move, not a stage rename) to this backend''s stripe of crm_internal.stage_velocity_aggregate; AFTER TRUNCATE: empties it';
-- Fires after aggregates_opportunity and record_opportunity_change (name
-- order); it reads only its transition tables and writes only its table.
CREATE TRIGGER stage_velocity_fold AFTER UPDATE ON crm.opportunity
    REFERENCING OLD TABLE AS velocity_old NEW TABLE AS velocity_new
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.stage_velocity_fold();
CREATE TRIGGER stage_velocity_fold_truncate AFTER TRUNCATE ON crm.opportunity
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.stage_velocity_fold();

-- The passages as the history has them, per stage left and owner: what the
-- aggregate must add up to (crm.verify_aggregates() compares,
-- crm.rebuild_aggregates() refills it from this).  A passage is an entry
-- whose stage differs from the one before, not a deletion; its seconds run
-- from the deal's previous stage entry.  The stage left is counted under
-- its name now: the recorded name followed through the renames made after
-- the entry was recorded (61_stage_renames.sql; the first such rename
-- looked up per entry only when a rename was ever made), as the rename
-- trigger moves the kept passages.  A full scan of the history.
CREATE VIEW crm_internal.stage_velocity_actual WITH (security_invoker = true) AS
    SELECT COALESCE(v.current_name, p.old_stage) AS stage, p.old_owner AS owner,
           pg_catalog.sum(p.passages)::bigint AS passages, pg_catalog.sum(p.seconds) AS seconds
      FROM (SELECT q.old_stage, q.first_rename, q.old_owner, pg_catalog.count(*) AS passages,
                   pg_catalog.sum(pg_catalog.extract('epoch', q.changed_at OPERATOR(pg_catalog.-) q.entered_at)) AS seconds
              FROM (SELECT h.old_stage, h.old_owner, h.changed_at,
                           pg_catalog.lag(h.changed_at) OVER (PARTITION BY h.opportunity_id ORDER BY h.id) AS entered_at,
                           CASE WHEN EXISTS (SELECT 1 FROM crm.opportunity_stage_rename AS x) THEN
                               (SELECT pg_catalog.min(r.id) FROM crm.opportunity_stage_rename AS r
                                 WHERE r.old_name OPERATOR(pg_catalog.=) h.old_stage AND r.last_entry OPERATOR(pg_catalog.>=) h.id)
                           END AS first_rename
                      FROM crm.opportunity_history AS h
                     WHERE h.old_stage IS DISTINCT FROM h.new_stage AND NOT h.deleted) AS q
             WHERE q.old_stage IS NOT NULL
             GROUP BY q.old_stage, q.first_rename, q.old_owner) AS p
      LEFT JOIN crm.opportunity_stage_rename AS v ON v.id OPERATOR(pg_catalog.=) p.first_rename
     GROUP BY 1, p.old_owner;
COMMENT ON VIEW crm_internal.stage_velocity_actual IS 'Stage passages per stage left and owner recomputed from crm.opportunity_history (a full scan), under each stage''s name now (crm.opportunity_stage_rename): what crm_internal.stage_velocity_aggregate must add up to';
COMMENT ON COLUMN crm_internal.stage_velocity_actual.stage IS 'The stage the deals left, by its name now (renames since the passage followed)';
COMMENT ON COLUMN crm_internal.stage_velocity_actual.owner IS 'Owner of the deals while in that stage';
COMMENT ON COLUMN crm_internal.stage_velocity_actual.passages IS 'Times deals left the stage by moving on';
COMMENT ON COLUMN crm_internal.stage_velocity_actual.seconds IS 'Seconds those deals had spent in the stage';
GRANT SELECT ON crm_internal.stage_velocity_actual TO crm_admin, crm_manager, crm_sales, crm_analyst;
