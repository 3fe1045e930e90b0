--------------------------------------------------------------------------
-- Opportunity lifecycle
--
-- Stage rules (C trigger crm_internal.opportunity_lifecycle): probability defaults
-- from the stage, a loss reason code is required when the deal is lost (and
-- cleared when it is not: 62_loss_reasons_and_contact_roles.sql), closed_at
-- is set when a closed stage is reached and cleared on reopening,
-- stage_changed_at when a stage is entered, furthest_stage (31_furthest_step.sql)
-- on every move; the amount of an opportunity with line items and its price
-- book are the lines'.
-- Every change of stage, amount, probability, close date, owner or
-- currency, and the deletion of a deal, is recorded in
-- crm.opportunity_history.
--------------------------------------------------------------------------

ALTER TABLE crm.opportunity ADD COLUMN closed_at timestamptz;
COMMENT ON COLUMN crm.opportunity.closed_at IS 'When the opportunity reached a closed stage (won or lost); cleared when it is reopened; set by the database';
ALTER TABLE crm.opportunity ADD COLUMN stage_changed_at timestamptz DEFAULT pg_catalog.now()
    CONSTRAINT opportunity_stage_changed_at_set CHECK (stage_changed_at IS NOT NULL);
COMMENT ON COLUMN crm.opportunity.stage_changed_at IS 'When the opportunity entered its current stage (transaction time; a stage rename is no move); set by the database (the default serves loads with the triggers off), never NULL (crm.stage_velocity reads it)';

-- The history outlives its deal (no foreign key): a deletion is an entry.
-- It is append-only: a deal's state at a moment is its last entry (by id)
-- made at or before it, which is what crm.pipeline_as_of() reads.  Row
-- security follows the owner columns (95_row_security.sql), so entries stay
-- readable after the deal is gone.
CREATE TABLE crm.opportunity_history (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    opportunity_id   bigint NOT NULL,
    old_stage        text,
    new_stage        text NOT NULL,
    old_amount       numeric(16,2),
    new_amount       numeric(16,2) NOT NULL,
    old_probability  numeric(5,2),
    new_probability  numeric(5,2),
    old_close_date   date,
    new_close_date   date,
    changed_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    changed_by       regrole NOT NULL,
    old_owner        regrole,
    new_owner        regrole NOT NULL,
    currency         text NOT NULL,
    deleted          boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE crm.opportunity_history IS 'Every change of an opportunity''s stage, amount, probability, close date, owner or currency, and its deletion (one row per change, old and new values; the first row is its creation); kept after the deal is deleted; written only by the database';
COMMENT ON COLUMN crm.opportunity_history.id IS 'Entry id, in order of recording';
COMMENT ON COLUMN crm.opportunity_history.opportunity_id IS 'The opportunity (it may since have been deleted: see deleted)';
COMMENT ON COLUMN crm.opportunity_history.old_stage IS 'Stage before the change (NULL on creation)';
COMMENT ON COLUMN crm.opportunity_history.new_stage IS 'Stage after the change';
COMMENT ON COLUMN crm.opportunity_history.old_amount IS 'Amount before the change (NULL on creation)';
COMMENT ON COLUMN crm.opportunity_history.new_amount IS 'Amount after the change';
COMMENT ON COLUMN crm.opportunity_history.old_probability IS 'Probability before the change';
COMMENT ON COLUMN crm.opportunity_history.new_probability IS 'Probability after the change';
COMMENT ON COLUMN crm.opportunity_history.old_close_date IS 'Close date before the change';
COMMENT ON COLUMN crm.opportunity_history.new_close_date IS 'Close date after the change';
COMMENT ON COLUMN crm.opportunity_history.changed_at IS 'When the change was made (transaction time)';
COMMENT ON COLUMN crm.opportunity_history.changed_by IS 'Role that made the change';
COMMENT ON COLUMN crm.opportunity_history.old_owner IS 'Owner before the change (NULL on creation)';
COMMENT ON COLUMN crm.opportunity_history.new_owner IS 'Owner after the change (on a deletion: the owner it had)';
COMMENT ON COLUMN crm.opportunity_history.currency IS 'Currency of the amounts (the deal''s currency after the change)';
COMMENT ON COLUMN crm.opportunity_history.deleted IS 'True for the entry recording the deal''s deletion (its new_ values repeat the last ones); the last entry of the deal';
CREATE INDEX opportunity_history_opportunity_id_idx ON crm.opportunity_history (opportunity_id, id);
COMMENT ON INDEX crm.opportunity_history_opportunity_id_idx IS 'A deal''s history in order; its last entry is its current state';
CREATE INDEX opportunity_history_changed_at_idx ON crm.opportunity_history (changed_at);
COMMENT ON INDEX crm.opportunity_history_changed_at_idx IS 'The entries made up to a moment: crm.pipeline_as_of() reads only those';

CREATE FUNCTION crm_internal.opportunity_lifecycle() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_opportunity_lifecycle'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.opportunity_lifecycle() IS 'BEFORE INSERT OR UPDATE row trigger on crm.opportunity: probability from the stage unless given, loss_reason_code required for a lost stage (an active one when newly chosen) and cleared otherwise, closed_at kept, stage_changed_at set on a move, furthest_stage the furthest step reached (a stage rename is no move), amount and price book fixed by line items; one stage query per row';
CREATE TRIGGER opportunity_lifecycle BEFORE INSERT OR UPDATE ON crm.opportunity
    FOR EACH ROW EXECUTE FUNCTION crm_internal.opportunity_lifecycle();

CREATE FUNCTION crm_internal.opportunity_stage_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_opportunity_stage_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.opportunity_stage_guard() IS 'BEFORE UPDATE OF is_closed, is_won trigger on crm.opportunity_stage: per statement, takes SHARE ROW EXCLUSIVE on crm.opportunity (before any stage row is locked); per row, refuses a flag change for a stage that opportunities are in (ZC111)';
CREATE TRIGGER opportunity_stage_guard_lock BEFORE UPDATE OF is_closed, is_won ON crm.opportunity_stage
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.opportunity_stage_guard();
CREATE TRIGGER opportunity_stage_guard BEFORE UPDATE OF is_closed, is_won ON crm.opportunity_stage
    FOR EACH ROW EXECUTE FUNCTION crm_internal.opportunity_stage_guard();

-- The opportunity triggers keep a copy of the stages per backend
-- (src/stage_cache.c); every change of the stages empties the copies and
-- waits for the writers of deals (SHARE ROW EXCLUSIVE on crm.opportunity,
-- as the stage guard above), so that no copy is read stale.
CREATE FUNCTION crm_internal.opportunity_stage_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_opportunity_stage_changed'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.opportunity_stage_changed() IS 'BEFORE INSERT, UPDATE, DELETE or TRUNCATE statement trigger on crm.opportunity_stage (and a row trigger fired by logical replication''s apply): takes SHARE ROW EXCLUSIVE on crm.opportunity (writers of deals wait, and are waited for) and empties every backend''s copy of the stages that the opportunity triggers read';
CREATE TRIGGER opportunity_stage_changed BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON crm.opportunity_stage
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.opportunity_stage_changed();
ALTER TABLE crm.opportunity_stage ENABLE ALWAYS TRIGGER opportunity_stage_changed;
-- logical replication's apply fires row triggers only
CREATE TRIGGER opportunity_stage_changed_row BEFORE INSERT OR UPDATE OR DELETE ON crm.opportunity_stage
    FOR EACH ROW EXECUTE FUNCTION crm_internal.opportunity_stage_changed();
ALTER TABLE crm.opportunity_stage ENABLE REPLICA TRIGGER opportunity_stage_changed_row;

CREATE FUNCTION crm_internal.record_opportunity_change() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_record_opportunity_change'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.record_opportunity_change() IS 'AFTER INSERT, UPDATE or DELETE statement trigger on crm.opportunity (transition tables): appends to crm.opportunity_history, in one INSERT per statement, an entry for every deal created, every deal whose stage, amount, probability, close date, owner or currency changed (not the cascade of a stage rename), and every deal deleted; AFTER TRUNCATE: empties crm.opportunity_history';
-- Every UPDATE, not UPDATE OF the columns: a BEFORE trigger may change one
-- the statement did not name (the currency from the price book,
-- 72_currencies.sql); and transition tables take no column list.
CREATE TRIGGER record_opportunity_change_insert AFTER INSERT ON crm.opportunity
    REFERENCING NEW TABLE AS history_new
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.record_opportunity_change();
CREATE TRIGGER record_opportunity_change_update AFTER UPDATE ON crm.opportunity
    REFERENCING OLD TABLE AS history_old NEW TABLE AS history_new
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.record_opportunity_change();
CREATE TRIGGER record_opportunity_change_delete AFTER DELETE ON crm.opportunity
    REFERENCING OLD TABLE AS history_old
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.record_opportunity_change();
CREATE TRIGGER record_opportunity_change_truncate AFTER TRUNCATE ON crm.opportunity
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.record_opportunity_change();
-- Every statement opens a frame, which its AFTER trigger closes: a statement
-- run inside another one hands its entries to the enclosing one, which
-- writes them after its own, in the order the changes were made
-- (src/history_frames.c).
CREATE FUNCTION crm_internal.begin_opportunity_change() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_begin_opportunity_change'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.begin_opportunity_change() IS 'BEFORE INSERT, UPDATE or DELETE statement trigger on crm.opportunity: opens the statement''s frame, so that the history entries of a statement run inside it (a function in its RETURNING list that changes the deal again) are written after its own, in the order the changes were made';
CREATE TRIGGER record_opportunity_change_begin BEFORE INSERT OR UPDATE OR DELETE ON crm.opportunity
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.begin_opportunity_change();

