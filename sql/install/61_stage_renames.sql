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

-- The name that a stage recorded as name has after the renames from
-- first_rename on (the first rename of name made after the entry was
-- recorded; NULL: none, the name is kept): each next rename is the stage's
-- own next one, the first rename of its new name after the last.
CREATE FUNCTION crm_internal.stage_renamed_to(name text, first_rename bigint) RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH RECURSIVE chain (name, rename_id) AS (
        SELECT r.new_name, r.id FROM crm.opportunity_stage_rename AS r
         WHERE r.id OPERATOR(pg_catalog.=) stage_renamed_to.first_rename
        UNION ALL
        SELECT n.new_name, n.id
          FROM chain AS c
         CROSS JOIN LATERAL (SELECT r.new_name, r.id FROM crm.opportunity_stage_rename AS r
                              WHERE r.old_name OPERATOR(pg_catalog.=) c.name AND r.id OPERATOR(pg_catalog.>) c.rename_id
                              ORDER BY r.id LIMIT 1) AS n)
    SELECT COALESCE((SELECT c.name FROM chain AS c ORDER BY c.rename_id DESC LIMIT 1), stage_renamed_to.name);
END;
COMMENT ON FUNCTION crm_internal.stage_renamed_to(text, bigint) IS 'The name a stage has now, given a name it was recorded with and the first rename of that name made after the recording (NULL: the name is kept): follows the stage''s renames in crm.opportunity_stage_rename';

-- The name the stage called name now had at a moment: back through the
-- renames to it made after that moment.  NULL when the stage is known to
-- have taken the name after that moment without a rename (created since:
-- another stage had the name then and was renamed after the moment).
CREATE FUNCTION crm_internal.stage_name_at(name text, "at" timestamptz) RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH RECURSIVE back (name, before_rename) AS (
        SELECT stage_name_at.name, NULL::bigint
        UNION ALL
        SELECT CASE WHEN r.new_name OPERATOR(pg_catalog.=) b.name THEN r.old_name END, r.id
          FROM back AS b
         CROSS JOIN LATERAL (SELECT x.old_name, x.new_name, x.id, x.renamed_at FROM crm.opportunity_stage_rename AS x
                              WHERE (x.new_name OPERATOR(pg_catalog.=) b.name OR x.old_name OPERATOR(pg_catalog.=) b.name)
                                AND (b.before_rename IS NULL OR x.id OPERATOR(pg_catalog.<) b.before_rename)
                              ORDER BY x.id DESC LIMIT 1) AS r
         WHERE b.name IS NOT NULL AND r.renamed_at OPERATOR(pg_catalog.>) stage_name_at."at")
    SELECT b.name FROM back AS b ORDER BY b.before_rename NULLS LAST LIMIT 1;
END;
COMMENT ON FUNCTION crm_internal.stage_name_at(text, timestamptz) IS 'The name the stage now called name had at a moment (back through the renames made after it, crm.opportunity_stage_rename); NULL when the stage took the name after that moment from a stage since renamed (it was created later)';
