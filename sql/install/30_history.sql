--------------------------------------------------------------------------
-- 4. History
--------------------------------------------------------------------------
CREATE TABLE crm.lead_status_history (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_id      bigint NOT NULL CONSTRAINT lead_status_history_lead_id_fkey REFERENCES crm.lead (id) ON DELETE CASCADE,
    from_status  crm.lead_status,
    to_status    crm.lead_status NOT NULL,
    changed_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    changed_by   regrole NOT NULL
);
COMMENT ON TABLE crm.lead_status_history IS 'Every status a lead has had: one row when it is captured and one per status change; written only by the database';
COMMENT ON COLUMN crm.lead_status_history.id IS 'Entry id, in order of recording';
COMMENT ON COLUMN crm.lead_status_history.lead_id IS 'The lead';
COMMENT ON COLUMN crm.lead_status_history.from_status IS 'Status before the change; NULL for the entry made when the lead was captured';
COMMENT ON COLUMN crm.lead_status_history.to_status IS 'Status after the change';
COMMENT ON COLUMN crm.lead_status_history.changed_at IS 'When the change was made (transaction time)';
COMMENT ON COLUMN crm.lead_status_history.changed_by IS 'Role that made the change';
CREATE INDEX lead_status_history_lead_id_idx ON crm.lead_status_history (lead_id, id);

CREATE TABLE crm.change_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_name   regclass NOT NULL,
    row_id       bigint,
    operation    text NOT NULL
                 CONSTRAINT change_log_operation_valid
                 CHECK (operation OPERATOR(pg_catalog.=) ANY (ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'])),
    changes      jsonb NOT NULL DEFAULT '{}',
    changed_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    changed_by   regrole NOT NULL
);
COMMENT ON TABLE crm.change_log IS 'Update log: who changed which fields of which row, when; append-only, written only by the database';
COMMENT ON COLUMN crm.change_log.id IS 'Entry id, in order of recording';
COMMENT ON COLUMN crm.change_log.table_name IS 'Table of the changed row, e.g. crm.lead';
COMMENT ON COLUMN crm.change_log.row_id IS 'id of the changed row (NULL for TRUNCATE)';
COMMENT ON COLUMN crm.change_log.operation IS 'INSERT, UPDATE, DELETE or TRUNCATE';
COMMENT ON COLUMN crm.change_log.changes IS 'UPDATE: {"column": {"old": text, "new": text}} for each changed column; DELETE: {"column": text} of the removed row; INSERT and TRUNCATE: {}. A value longer than 2000 bytes is kept as {"truncated": its first characters (up to 2000 bytes), "bytes": its length in bytes, "sha256": hex SHA-256 of its bytes}';
COMMENT ON COLUMN crm.change_log.changed_at IS 'When the change was made (transaction time)';
COMMENT ON COLUMN crm.change_log.changed_by IS 'Role that made the change';
CREATE INDEX change_log_row_idx ON crm.change_log (table_name, row_id, id);

CREATE VIEW crm.lead_update_log WITH (security_invoker = true) AS
    SELECT c.id, c.row_id AS lead_id, c.operation, c.changes, c.changed_at,
           pg_catalog.pg_get_userbyid(c.changed_by)::text AS changed_by
      FROM crm.change_log AS c
     WHERE c.table_name OPERATOR(pg_catalog.=) 'crm.lead'::regclass;
COMMENT ON VIEW crm.lead_update_log IS 'Creation and update log of leads: one row per insert, update or delete of a lead, with the changed fields';
COMMENT ON COLUMN crm.lead_update_log.id IS 'Entry id, in order of recording';
COMMENT ON COLUMN crm.lead_update_log.lead_id IS 'The lead (NULL for TRUNCATE)';
COMMENT ON COLUMN crm.lead_update_log.operation IS 'INSERT, UPDATE, DELETE or TRUNCATE';
COMMENT ON COLUMN crm.lead_update_log.changes IS 'Changed fields with old and new value (text)';
COMMENT ON COLUMN crm.lead_update_log.changed_at IS 'When';
COMMENT ON COLUMN crm.lead_update_log.changed_by IS 'Who: the role''s name, as text (crm.change_log.changed_by is a regrole)';

--------------------------------------------------------------------------
-- 5. Triggers (C)
--------------------------------------------------------------------------

-- created_at / updated_at are the database's, not the client's.
CREATE FUNCTION crm_internal.stamp_row() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_stamp_row'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.stamp_row() IS 'BEFORE INSERT OR UPDATE row trigger: sets created_at on insert (keeps it on update) and updated_at to the transaction time';


-- Conversion is one-way and only convert_lead() performs it.
CREATE FUNCTION crm_internal.lead_conversion_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_lead_conversion_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.lead_conversion_guard() IS 'BEFORE INSERT OR UPDATE row trigger on crm.lead: only crm.convert_lead() may set status Converted and the conversion fields; a converted lead keeps them forever';

-- An UPDATE can change the conversion record only by naming one of its
-- columns (no other trigger writes them): an UPDATE of other columns, the
-- bulk of the updates, does not fire the guard.
CREATE TRIGGER lead_conversion_guard
    BEFORE INSERT OR UPDATE OF status, account_id, contact_id, opportunity_id, converted_at, converted_by ON crm.lead
    FOR EACH ROW EXECUTE FUNCTION crm_internal.lead_conversion_guard();

CREATE FUNCTION crm_internal.opportunity_lead_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_opportunity_lead_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.opportunity_lead_guard() IS 'BEFORE INSERT OR UPDATE row trigger on crm.opportunity: lead_id (the source lead) is set only by crm.convert_lead(); it may be cleared, never pointed elsewhere';

CREATE TRIGGER opportunity_lead_guard BEFORE INSERT OR UPDATE OF lead_id ON crm.opportunity
    FOR EACH ROW EXECUTE FUNCTION crm_internal.opportunity_lead_guard();

-- History.
CREATE FUNCTION crm_internal.record_lead_status() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_record_lead_status'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.record_lead_status() IS 'AFTER INSERT (REFERENCING NEW TABLE) and AFTER UPDATE (OLD and NEW TABLE) statement trigger on crm.lead: appends to crm.lead_status_history one entry per captured lead and one per lead whose status the statement changed, with one INSERT per statement';

-- One entry per captured lead and per status change, written per statement
-- from the transition tables (a trigger with transition tables cannot have
-- a column list: the UPDATE trigger fires for every UPDATE and writes only
-- the rows whose status changed).
CREATE TRIGGER record_lead_status_insert AFTER INSERT ON crm.lead
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.record_lead_status();
CREATE TRIGGER record_lead_status_update AFTER UPDATE ON crm.lead
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.record_lead_status();

CREATE FUNCTION crm_internal.record_change() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_record_change'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.record_change() IS 'AFTER statement trigger, one per event: INSERT (REFERENCING NEW TABLE), UPDATE (OLD and NEW TABLE), DELETE (OLD TABLE), TRUNCATE: appends one entry per changed row (one for a TRUNCATE) to crm.change_log';



-- Every INSERT or UPDATE statement on crm.lead opens a frame, which its
-- AFTER trigger closes: a statement run inside another one (a conversion in
-- an UPDATE's RETURNING list) hands its entries to the enclosing one, which
-- writes them after its own, in the order the statuses were taken
-- (src/history.c).
CREATE FUNCTION crm_internal.begin_lead_status() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_begin_lead_status'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.begin_lead_status() IS 'BEFORE INSERT and BEFORE UPDATE statement trigger on crm.lead: opens the statement''s frame, so that the status history entries of a statement run inside it (a conversion in an UPDATE''s RETURNING list) are written after its own, in the order the statuses were taken';
CREATE TRIGGER record_lead_status_begin BEFORE INSERT OR UPDATE ON crm.lead
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.begin_lead_status();
