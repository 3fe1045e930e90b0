-- crm 0.3 -> 0.4: ALTER EXTENSION crm UPDATE TO '0.4'.
-- Every schema change made in sql/install/ since 0.3 is repeated here, so
-- that an updated database has the same objects as a fresh install
-- (test/scripts/upgrade.sh checks it).
--
-- 0.4 keeps a stage's flags while opportunities are in it: changing
-- is_closed or is_won of such a stage left them with a close date, loss
-- reason and report figures of the other kind.  The new trigger
-- opportunity_stage_guard refuses it (ZC111).  No row changes.

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION crm UPDATE TO '0.4'" to load this file. \quit

CREATE FUNCTION crm.opportunity_stage_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_opportunity_stage_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm.opportunity_stage_guard() IS 'BEFORE UPDATE OF is_closed, is_won trigger on crm.opportunity_stage: per statement, takes SHARE ROW EXCLUSIVE on crm.opportunity (before any stage row is locked); per row, refuses a flag change for a stage that opportunities are in (ZC111)';
CREATE TRIGGER opportunity_stage_guard_lock BEFORE UPDATE OF is_closed, is_won ON crm.opportunity_stage
    FOR EACH STATEMENT EXECUTE FUNCTION crm.opportunity_stage_guard();
CREATE TRIGGER opportunity_stage_guard BEFORE UPDATE OF is_closed, is_won ON crm.opportunity_stage
    FOR EACH ROW EXECUTE FUNCTION crm.opportunity_stage_guard();
-- the flags' column comments say so
COMMENT ON COLUMN crm.opportunity_stage.is_closed IS 'True when an opportunity in this stage is finished (won or lost); cannot change while opportunities are in the stage (ZC111)';
COMMENT ON COLUMN crm.opportunity_stage.is_won IS 'True when the stage means the deal was won (implies is_closed); cannot change while opportunities are in the stage (ZC111)';
-- trigger functions are the extension's own (as in 99_privileges.sql)
REVOKE ALL ON FUNCTION crm.opportunity_stage_guard() FROM PUBLIC;
