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

-- crm.opportunity.furthest_stage is set by the opportunity lifecycle trigger
-- (60_opportunity_lifecycle.sql), from the stage rows it reads anyway.
