--------------------------------------------------------------------------
-- Privileges and pg_dump
--
-- crm_sales, crm_manager and crm_admin work with the sales data; the catalog
-- (products, price books), stages, sources and settings are maintained by
-- crm_admin; campaigns by managers and admins.  History, approval and audit
-- tables are written only by the extension's triggers and functions (as the
-- extension owner): users read them.  Every function that changes state
-- through a guarded path is revoked from PUBLIC.
--------------------------------------------------------------------------
DO $grants$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'crm.convert_lead(bigint, bigint, bigint, boolean, text, regrole, boolean)',
        'crm.create_quote(bigint, text, date, numeric, numeric)',
        'crm.submit_quote(bigint, text)',
        'crm.approve_quote(bigint, text)',
        'crm.reject_quote(bigint, text)',
        'crm.sync_quote(bigint)',
        'crm.create_order(bigint, text)',
        'crm.activate_order(bigint)',
        'crm.cancel_order(bigint, text)',
        'crm.claim_due_reminders(integer, timestamptz)',
        'crm.verify_aggregates()']
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO crm_admin, crm_manager, crm_sales', f);
    END LOOP;
END
$grants$;

GRANT SELECT, INSERT, UPDATE, DELETE ON
    crm.account, crm.contact, crm.account_contact, crm.lead, crm.opportunity,
    crm.opportunity_line_item, crm.quote, crm.quote_line_item, crm.sales_order, crm.sales_order_item,
    crm.activity, crm.activity_participant, crm.campaign_member
    TO crm_admin, crm_manager, crm_sales;
GRANT SELECT ON
    crm.lead_source, crm.opportunity_stage, crm.product, crm.price_book, crm.price_book_entry,
    crm.settings, crm.quote_transition, crm.order_transition, crm.campaign
    TO crm_admin, crm_manager, crm_sales, crm_analyst;
GRANT INSERT, UPDATE, DELETE ON
    crm.lead_source, crm.opportunity_stage, crm.product, crm.price_book, crm.price_book_entry
    TO crm_admin;
GRANT UPDATE ON crm.settings TO crm_admin;
GRANT SELECT ON crm.reporting_line TO crm_admin, crm_manager, crm_sales, crm_analyst;
GRANT INSERT, UPDATE, DELETE ON crm.reporting_line TO crm_admin;
GRANT INSERT, UPDATE, DELETE ON crm.campaign TO crm_admin, crm_manager;
-- Aggregates: read by everyone working with reports, written by the triggers
-- only; the rebuild is an admin's.
GRANT SELECT ON crm.pipeline_aggregate, crm.account_aggregate, crm.campaign_opportunity_aggregate,
    crm.campaign_lead_aggregate, crm.pipeline_totals, crm.pipeline_actual, crm.aggregates_compared
    TO crm_admin, crm_manager, crm_sales, crm_analyst;
REVOKE ALL ON FUNCTION crm.rebuild_aggregates() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.rebuild_aggregates() TO crm_admin;
REVOKE ALL ON FUNCTION crm.team_roles(), crm.may_reference_account(bigint), crm.may_reference_contact(bigint),
    crm.may_link_account(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.team_roles(), crm.may_reference_account(bigint), crm.may_reference_contact(bigint),
    crm.may_link_account(bigint)
    TO crm_admin, crm_manager, crm_sales, crm_analyst;
REVOKE ALL ON FUNCTION crm.compact_aggregates() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.compact_aggregates() TO crm_admin;
GRANT EXECUTE ON FUNCTION crm.verify_aggregates() TO crm_analyst;
GRANT USAGE ON SEQUENCE crm.sales_order_number_seq TO crm_admin, crm_manager, crm_sales;
-- History and approvals: read-only for users.  The change log keeps the
-- values of deleted rows (personal data), so only admins and managers read it.
GRANT SELECT ON crm.lead_status_history, crm.opportunity_history, crm.quote_approval
    TO crm_admin, crm_manager, crm_sales;
GRANT SELECT ON crm.change_log, crm.lead_update_log TO crm_admin, crm_manager;

-- Trigger functions are the extension's own: nobody attaches them elsewhere
-- (they also refuse to fire outside schema crm).
DO $triggers$
DECLARE
    f pg_catalog.regprocedure;
BEGIN
    FOR f IN SELECT p.oid FROM pg_catalog.pg_proc AS p
              WHERE p.pronamespace OPERATOR(pg_catalog.=) 'crm'::pg_catalog.regnamespace
                AND p.prorettype OPERATOR(pg_catalog.=) 'pg_catalog.trigger'::pg_catalog.regtype
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$triggers$;
-- Views (security_invoker: what each role sees of them is what it sees of the tables).
GRANT SELECT ON crm.overdue_task, crm.overdue_tasks_by_owner, crm.lead_follow_up
    TO crm_admin, crm_manager, crm_sales;
GRANT SELECT ON crm.campaign_performance, crm.account_rollup,
    crm.sales_funnel, crm.lead_conversion_rates, crm.pipeline_by_stage, crm.forecast_by_month,
    crm.sales_performance, crm.stage_velocity, crm.quote_to_order
    TO crm_admin, crm_manager, crm_sales, crm_analyst;
-- Analysts read the BI views.  The views are security_invoker, so an analyst
-- needs SELECT on the columns they read: granted column by column, none of
-- them personal (no names of people, e-mail addresses, phone numbers,
-- descriptions or notes).
GRANT SELECT (id, status, source, owner, campaign_id, created_at) ON crm.lead TO crm_analyst;
GRANT SELECT (id, stage, amount, probability, close_date, closed_at, owner, account_id, campaign_id, created_at)
    ON crm.opportunity TO crm_analyst;
GRANT SELECT (id, opportunity_id, old_stage, new_stage, changed_at) ON crm.opportunity_history TO crm_analyst;
GRANT SELECT (id, status, created_at) ON crm.quote TO crm_analyst;
GRANT SELECT (id, quote_id, total) ON crm.sales_order TO crm_analyst;
GRANT SELECT (id, name, owner) ON crm.account TO crm_analyst;
GRANT SELECT (account_id, completed_at) ON crm.activity TO crm_analyst;

-- User data is dumped by pg_dump.  The rows CREATE EXTENSION seeds (stages,
-- sources, transitions, settings, the standard price book) are not; see
-- README "Limitations" for what a restore still needs.
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
        'crm.change_log', 'crm.change_log_id_seq',
        'crm.product', 'crm.product_id_seq',
        'crm.price_book_id_seq',
        'crm.price_book_entry', 'crm.price_book_entry_id_seq',
        'crm.opportunity_line_item', 'crm.opportunity_line_item_id_seq',
        'crm.opportunity_history', 'crm.opportunity_history_id_seq',
        'crm.quote', 'crm.quote_id_seq',
        'crm.quote_line_item', 'crm.quote_line_item_id_seq',
        'crm.quote_approval', 'crm.quote_approval_id_seq',
        'crm.sales_order', 'crm.sales_order_id_seq', 'crm.sales_order_number_seq',
        'crm.sales_order_item', 'crm.sales_order_item_id_seq',
        'crm.activity', 'crm.activity_id_seq',
        'crm.activity_participant', 'crm.activity_participant_id_seq',
        'crm.campaign', 'crm.campaign_id_seq',
        'crm.campaign_member', 'crm.campaign_member_id_seq',
        'crm.reporting_line']::pg_catalog.regclass[]
    LOOP
        PERFORM pg_catalog.pg_extension_config_dump(t, '');
    END LOOP;
    -- price books except the standard one, which CREATE EXTENSION makes
    PERFORM pg_catalog.pg_extension_config_dump('crm.price_book', 'WHERE NOT is_standard');
END
$dump$;
