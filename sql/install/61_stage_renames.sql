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
-- (src/stage_rename.c says why that holds under concurrency).  Each
-- rename keeps current_name, the name its stage has now: a rename of a
-- stage sets it on the stage's earlier renames too, so readers map a
-- recorded name to the stage's name now with one lookup, and back to its
-- name at a moment through the renames with that current_name.  The kept
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
    current_name text NOT NULL,
    CONSTRAINT opportunity_stage_rename_changes_name CHECK (old_name OPERATOR(pg_catalog.<>) new_name)
);
COMMENT ON TABLE crm.opportunity_stage_rename IS 'Every rename of an opportunity stage, in order: the opportunity history keeps the names its entries had when recorded, and the reports read from it (crm.pipeline_as_of, crm.stage_velocity) follow a stage through its renames with this log; written only by the database';
COMMENT ON COLUMN crm.opportunity_stage_rename.id IS 'Rename id, in the order the renames were made';
COMMENT ON COLUMN crm.opportunity_stage_rename.old_name IS 'The stage''s name before the rename';
COMMENT ON COLUMN crm.opportunity_stage_rename.new_name IS 'The stage''s name after the rename';
COMMENT ON COLUMN crm.opportunity_stage_rename.renamed_at IS 'When the stage was renamed (transaction time, as crm.opportunity_history.changed_at)';
COMMENT ON COLUMN crm.opportunity_stage_rename.renamed_by IS 'Role that renamed the stage';
COMMENT ON COLUMN crm.opportunity_stage_rename.current_name IS 'The name the renamed stage has now (kept by the database: a later rename of the stage updates it)';
COMMENT ON COLUMN crm.opportunity_stage_rename.last_entry IS 'The last crm.opportunity_history entry id handed out when the stage was renamed: entries up to it that name old_name mean this stage, later ones a stage created since with that name';
-- the first rename of a name after an entry; a stage's next name
CREATE INDEX opportunity_stage_rename_old_name_idx ON crm.opportunity_stage_rename (old_name, id);
COMMENT ON INDEX crm.opportunity_stage_rename_old_name_idx IS 'The renames of a name, in order: where an entry''s stage went';
CREATE INDEX opportunity_stage_rename_current_name_idx ON crm.opportunity_stage_rename (current_name, id);
COMMENT ON INDEX crm.opportunity_stage_rename_current_name_idx IS 'The renames of the stage now called so, in order: what it was called before, and the rows its next rename updates';

CREATE FUNCTION crm_internal.record_stage_rename() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_record_stage_rename'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.record_stage_rename() IS 'AFTER UPDATE OF name row trigger on crm.opportunity_stage: records the rename in crm.opportunity_stage_rename and moves the stage''s kept passages (crm_internal.stage_velocity_aggregate) to the new name';
-- After the foreign keys' cascade to the deals (RI triggers sort first).
CREATE TRIGGER record_stage_rename AFTER UPDATE OF name ON crm.opportunity_stage
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION crm_internal.record_stage_rename();

-- The cascade of a rename told from a move (src/stage_rename.c): the
-- renames of the statement are noted before the foreign keys carry them to
-- the deals.
CREATE FUNCTION crm_internal.note_stage_rename() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_note_stage_rename'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.note_stage_rename() IS 'BEFORE UPDATE OF name row trigger on crm.opportunity_stage: notes the rename for the rest of the transaction, so that the opportunity triggers take its cascade to the deals for no move (also when one statement passes names on between stages)';
CREATE TRIGGER note_stage_rename BEFORE UPDATE OF name ON crm.opportunity_stage
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION crm_internal.note_stage_rename();
