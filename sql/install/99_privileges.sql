--------------------------------------------------------------------------
-- 7. Privileges and pg_dump
--------------------------------------------------------------------------
REVOKE ALL ON FUNCTION crm.convert_lead(bigint, bigint, bigint, boolean, text, regrole, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.convert_lead(bigint, bigint, bigint, boolean, text, regrole, boolean)
    TO crm_admin, crm_manager, crm_sales;

GRANT SELECT, INSERT, UPDATE, DELETE ON crm.account, crm.contact, crm.account_contact, crm.lead, crm.opportunity
    TO crm_admin, crm_manager, crm_sales;
GRANT SELECT ON crm.lead_source, crm.opportunity_stage TO crm_admin, crm_manager, crm_sales, crm_analyst;
GRANT INSERT, UPDATE, DELETE ON crm.lead_source, crm.opportunity_stage TO crm_admin;
-- History is written by the triggers as the extension owner; users only read it.
GRANT SELECT ON crm.lead_status_history, crm.change_log, crm.lead_update_log TO crm_admin, crm_manager, crm_sales;

-- User data is dumped by pg_dump (the extension's own seed rows of the lookup
-- tables are recreated by CREATE EXTENSION and are not).
-- (One call per statement: each call updates the pg_extension row.)
DO $dump$
DECLARE
    t pg_catalog.regclass;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'crm.account', 'crm.account_id_seq',
        'crm.contact', 'crm.contact_id_seq',
        'crm.account_contact',
        'crm.lead', 'crm.lead_id_seq',
        'crm.opportunity', 'crm.opportunity_id_seq',
        'crm.lead_status_history', 'crm.lead_status_history_id_seq',
        'crm.change_log', 'crm.change_log_id_seq']::pg_catalog.regclass[]
    LOOP
        PERFORM pg_catalog.pg_extension_config_dump(t, '');
    END LOOP;
END
$dump$;
