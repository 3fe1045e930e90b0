--------------------------------------------------------------------------
-- The furthest step of the pipeline a lead or an opportunity ever reached
-- (crm.lead.furthest_status, crm.opportunity.furthest_stage), which the
-- funnel counts (crm.sales_funnel): set in C by a BEFORE row trigger from
-- the old row and the new status or stage (src/furthest_step.c), no history
-- read.  No role may write the columns (99_privileges.sql, 42501).
--------------------------------------------------------------------------

CREATE FUNCTION crm_internal.lead_furthest_status() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_lead_furthest_status'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.lead_furthest_status() IS 'BEFORE INSERT OR UPDATE row trigger on crm.lead: furthest_status is the highest working status the lead ever had (Not Qualified is an exit: a lead keeps its furthest status, and one captured as Not Qualified has reached New Lead), whatever the client sent';
CREATE TRIGGER furthest_step BEFORE INSERT OR UPDATE ON crm.lead
    FOR EACH ROW EXECUTE FUNCTION crm_internal.lead_furthest_status();

CREATE FUNCTION crm_internal.opportunity_furthest_stage() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_opportunity_furthest_stage'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.opportunity_furthest_stage() IS 'BEFORE INSERT OR UPDATE row trigger on crm.opportunity: furthest_stage is the furthest stage the deal was ever in (open stages by sort_order, then won stages; a lost deal keeps its furthest open stage, one created lost has reached the first open stage); follows a stage rename; whatever the client sent';
CREATE TRIGGER furthest_step BEFORE INSERT OR UPDATE ON crm.opportunity
    FOR EACH ROW EXECUTE FUNCTION crm_internal.opportunity_furthest_stage();
