--------------------------------------------------------------------------
-- Stage renames, recorded (issue 22)
--
-- crm.opportunity_stage is keyed by its name, and a rename cascades to the
-- deals (crm.opportunity.stage, furthest_stage) but not to the history,
-- which keeps the names its entries had when recorded.  The database
-- records every rename (crm_internal.record_stage_rename, src/stage_rename.c)
-- in crm.opportunity_stage_rename, and the reports read from the history
-- (crm.pipeline_as_of(), crm_internal.stage_velocity_actual) map a recorded
-- name forward through the renames made after the entry was recorded:
-- a stage keeps its identity through renames (chains A -> B -> C), and a
-- stage created later with an old name is another stage.  An entry was
-- recorded before a rename when its id is at most the rename's last_entry
-- (src/stage_rename.c says why that holds under concurrency).  The kept
-- stage passages are moved to the new name by the same trigger.
-- A stage deleted and a new one created with its name are not told apart
-- (no rename links them): their entries share the name.
--------------------------------------------------------------------------

CREATE TABLE crm.opportunity_stage_rename (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    old_name    text NOT NULL,
    new_name    text NOT NULL,
    renamed_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    renamed_by  regrole NOT NULL,
    last_entry  bigint NOT NULL,
    CONSTRAINT opportunity_stage_rename_changes_name CHECK (old_name OPERATOR(pg_catalog.<>) new_name)
);
COMMENT ON TABLE crm.opportunity_stage_rename IS 'Every rename of an opportunity stage, in order: the opportunity history keeps the names its entries had when recorded, and the reports read from it (crm.pipeline_as_of, crm.stage_velocity) follow a stage through its renames with this log; written only by the database';
COMMENT ON COLUMN crm.opportunity_stage_rename.id IS 'Rename id, in the order the renames were made';
COMMENT ON COLUMN crm.opportunity_stage_rename.old_name IS 'The stage''s name before the rename';
COMMENT ON COLUMN crm.opportunity_stage_rename.new_name IS 'The stage''s name after the rename';
COMMENT ON COLUMN crm.opportunity_stage_rename.renamed_at IS 'When the stage was renamed (transaction time, as crm.opportunity_history.changed_at)';
COMMENT ON COLUMN crm.opportunity_stage_rename.renamed_by IS 'Role that renamed the stage';
COMMENT ON COLUMN crm.opportunity_stage_rename.last_entry IS 'The last crm.opportunity_history entry id handed out when the stage was renamed: entries up to it that name old_name mean this stage, later ones a stage created since with that name';
-- the first rename of a name after an entry; a stage's next name
CREATE INDEX opportunity_stage_rename_old_name_idx ON crm.opportunity_stage_rename (old_name, id);
COMMENT ON INDEX crm.opportunity_stage_rename_old_name_idx IS 'The renames of a name, in order: where an entry''s stage went';
CREATE INDEX opportunity_stage_rename_new_name_idx ON crm.opportunity_stage_rename (new_name, id);
COMMENT ON INDEX crm.opportunity_stage_rename_new_name_idx IS 'The renames to a name, in order: what a stage was called before';

CREATE FUNCTION crm_internal.record_stage_rename() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_record_stage_rename'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.record_stage_rename() IS 'AFTER UPDATE OF name row trigger on crm.opportunity_stage: records the rename in crm.opportunity_stage_rename and moves the stage''s kept passages (crm_internal.stage_velocity_aggregate) to the new name';
-- After the foreign keys' cascade to the deals (RI triggers sort first).
CREATE TRIGGER record_stage_rename AFTER UPDATE OF name ON crm.opportunity_stage
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION crm_internal.record_stage_rename();

-- Every rename with the name its stage has now: the stage's own next
-- rename is the first rename of its new name after the last one, followed
-- to the end.  Readers join it on the first rename of a recorded name made
-- after the entry was recorded (its id: the name the entry's stage has
-- now), and follow a stage now called current_name back through its
-- renames (the name it had at a moment).  O(renames x their chains) per
-- read, whatever the size of the history.
CREATE VIEW crm_internal.stage_rename_current WITH (security_invoker = true) AS
    WITH RECURSIVE chain (rename_id, name, last_rename) AS (
        SELECT r.id, r.new_name, r.id FROM crm.opportunity_stage_rename AS r
        UNION ALL
        SELECT c.rename_id, n.new_name, n.id
          FROM chain AS c
         CROSS JOIN LATERAL (SELECT r.new_name, r.id FROM crm.opportunity_stage_rename AS r
                              WHERE r.old_name OPERATOR(pg_catalog.=) c.name AND r.id OPERATOR(pg_catalog.>) c.last_rename
                              ORDER BY r.id LIMIT 1) AS n)
    SELECT r.id, r.old_name, r.new_name, r.renamed_at, e.name AS current_name
      FROM crm.opportunity_stage_rename AS r
      JOIN (SELECT DISTINCT ON (c.rename_id) c.rename_id, c.name FROM chain AS c
             ORDER BY c.rename_id, c.last_rename DESC) AS e ON e.rename_id OPERATOR(pg_catalog.=) r.id;
COMMENT ON VIEW crm_internal.stage_rename_current IS 'Every stage rename (crm.opportunity_stage_rename) with the name the renamed stage has now, following its later renames: what crm.pipeline_as_of() and crm_internal.stage_velocity_actual map recorded stage names with';
COMMENT ON COLUMN crm_internal.stage_rename_current.id IS 'The rename';
COMMENT ON COLUMN crm_internal.stage_rename_current.old_name IS 'The stage''s name before the rename';
COMMENT ON COLUMN crm_internal.stage_rename_current.new_name IS 'The stage''s name after the rename';
COMMENT ON COLUMN crm_internal.stage_rename_current.renamed_at IS 'When the stage was renamed (transaction time)';
COMMENT ON COLUMN crm_internal.stage_rename_current.current_name IS 'The name the stage has now (after its later renames)';
