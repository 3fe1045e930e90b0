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
        'crm.convert_lead(bigint, bigint, bigint, boolean, text, regrole, boolean, bigint)',
        'crm.conversion_preview(bigint, bigint, bigint, boolean, text, regrole, boolean, bigint)',
        'crm.create_quote(bigint, text, date, numeric, numeric)',
        'crm.submit_quote(bigint, text)',
        'crm.approve_quote(bigint, text, numeric)',
        'crm.reject_quote(bigint, text)',
        'crm.sync_quote(bigint)',
        'crm.create_order(bigint, text)',
        'crm.activate_order(bigint)',
        'crm.cancel_order(bigint, text)',
        'crm.claim_due_reminders(integer, timestamptz)',
        'crm.take_reminder(bigint, timestamptz)',
        'crm.activity_occurrences(timestamptz, timestamptz)',
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
    crm.price_book_tier, crm.settings, crm_internal.quote_transition, crm_internal.order_transition, crm.campaign
    TO crm_admin, crm_manager, crm_sales, crm_analyst;
GRANT INSERT, UPDATE, DELETE ON
    crm.lead_source, crm.opportunity_stage, crm.product, crm.price_book, crm.price_book_entry,
    crm.price_book_tier
    TO crm_admin;
GRANT UPDATE ON crm.settings TO crm_admin;
GRANT SELECT ON crm.reporting_line TO crm_admin, crm_manager, crm_sales, crm_analyst;
GRANT INSERT, UPDATE, DELETE ON crm.reporting_line TO crm_admin;
GRANT INSERT, UPDATE, DELETE ON crm.campaign TO crm_admin, crm_manager;
-- Aggregates: read by everyone working with reports, written by the triggers
-- only; the rebuild is an admin's.
GRANT SELECT ON crm_internal.pipeline_aggregate, crm_internal.account_aggregate, crm_internal.campaign_opportunity_aggregate,
    crm_internal.campaign_lead_aggregate, crm_internal.lead_funnel_aggregate, crm_internal.opportunity_funnel_aggregate,
    crm_internal.lead_source_aggregate, crm_internal.lead_month_aggregate, crm_internal.sales_performance_aggregate, crm.pipeline_totals, crm_internal.pipeline_actual, crm_internal.aggregates_compared
    TO crm_admin, crm_manager, crm_sales, crm_analyst;
-- The settled account figures (owner 0, all owners, only admins and
-- analysts see: row-level security) and the top accounts read from them.
GRANT SELECT ON crm_internal.account_settled, crm_internal.account_settled_groups, crm_internal.account_settled_actual
    TO crm_admin, crm_manager, crm_sales, crm_analyst;
REVOKE ALL ON FUNCTION crm.top_accounts(text, integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.top_accounts(text, integer, text) TO crm_admin, crm_manager, crm_sales, crm_analyst;
REVOKE ALL ON FUNCTION crm.rebuild_aggregates() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.rebuild_aggregates() TO crm_admin;
REVOKE ALL ON FUNCTION crm.team_roles(), crm.may_reference_account(bigint), crm.may_reference_contact(bigint),
    crm.may_link_account(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.team_roles(), crm.may_reference_account(bigint), crm.may_reference_contact(bigint),
    crm.may_link_account(bigint)
    TO crm_admin, crm_manager, crm_sales, crm_analyst;
REVOKE ALL ON FUNCTION crm.compact_aggregates() FROM PUBLIC;
REVOKE ALL ON FUNCTION crm_internal.aggregates_compaction_lock() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.compact_aggregates() TO crm_admin;
GRANT EXECUTE ON FUNCTION crm.verify_aggregates() TO crm_analyst;
-- Order numbers are drawn by crm.create_order() as the extension owner; the
-- sequence's position is the company-wide order count, so only admins (who
-- see every order) may use it.  No role gets a right on any other sequence.
GRANT USAGE ON SEQUENCE crm.sales_order_number_seq TO crm_admin;
-- Quote numbers likewise: drawn by the quote guard as the extension owner.
-- Expiring quotes is an admin's (or the scheduler's, a member of crm_admin).
GRANT USAGE ON SEQUENCE crm.quote_number_seq TO crm_admin;
REVOKE ALL ON FUNCTION crm.expire_quotes() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.expire_quotes() TO crm_admin;
-- History and approvals: read-only for users.  The change log keeps the
-- values of deleted rows (personal data), so only admins and managers read it.
GRANT SELECT ON crm.lead_status_history, crm.opportunity_history, crm.quote_approval
    TO crm_admin, crm_manager, crm_sales;
GRANT SELECT ON crm.change_log, crm.lead_update_log TO crm_admin, crm_manager;
-- Stage renames (61_stage_renames.sql): read by whoever reads the stages,
-- written only by the database.
GRANT SELECT ON crm.opportunity_stage_rename TO crm_admin, crm_manager, crm_sales, crm_analyst;

-- Notes, attachments and tags (81_notes_and_tags.sql): column by column,
-- without the ids and the generated search_text (as the $ids$ block below does).  Analysts read tags and taggings (no
-- personal data), not notes or attachments.
GRANT SELECT, DELETE ON crm.note, crm.attachment, crm.record_tag TO crm_admin, crm_manager, crm_sales;
GRANT INSERT (body, pinned, lead_id, account_id, contact_id, opportunity_id, quote_id, sales_order_id, owner,
              created_at, updated_at),
      UPDATE (body, pinned, lead_id, account_id, contact_id, opportunity_id, quote_id, sales_order_id, owner,
              created_at, updated_at)
    ON crm.note TO crm_admin, crm_manager, crm_sales;
GRANT INSERT (lead_id, account_id, contact_id, opportunity_id, quote_id, sales_order_id, file_name, mime_type,
              size_bytes, sha256, storage_uri, owner, created_at, updated_at)
    ON crm.attachment TO crm_admin, crm_manager, crm_sales;
GRANT UPDATE (lead_id, account_id, contact_id, opportunity_id, quote_id, sales_order_id, file_name, mime_type,
              size_bytes, sha256, storage_uri, owner, created_at, updated_at)
    ON crm.attachment TO crm_admin;
GRANT INSERT (tag_id, lead_id, account_id, contact_id, opportunity_id, owner, created_at, updated_at)
    ON crm.record_tag TO crm_admin, crm_manager, crm_sales;
GRANT SELECT ON crm.tag TO crm_admin, crm_manager, crm_sales, crm_analyst;
GRANT INSERT (name, color, created_at, updated_at), UPDATE (name, color, created_at, updated_at)
    ON crm.tag TO crm_admin, crm_manager;
GRANT DELETE ON crm.tag TO crm_admin, crm_manager;
GRANT SELECT ON crm.record_tag, crm.tag_usage TO crm_analyst;
GRANT SELECT ON crm.tag_usage TO crm_admin, crm_manager, crm_sales;

-- Trigger functions are the extension's own, in schema crm_internal:
-- nobody attaches them elsewhere (they also refuse to fire outside schema
-- crm).
DO $triggers$
DECLARE
    f pg_catalog.regprocedure;
BEGIN
    FOR f IN SELECT p.oid FROM pg_catalog.pg_proc AS p
              WHERE p.pronamespace OPERATOR(pg_catalog.=) ANY (ARRAY['crm', 'crm_internal']::pg_catalog.regnamespace[])
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
    crm.sales_funnel, crm.sales_funnel_snapshot, crm.lead_conversion_rates, crm.pipeline_by_stage, crm.forecast_by_month,
    crm.sales_performance, crm.stage_velocity, crm.quote_to_order
    TO crm_admin, crm_manager, crm_sales, crm_analyst;
GRANT SELECT ON crm.quote_document TO crm_admin, crm_manager, crm_sales;
-- Analysts read the BI views.  The views are security_invoker, so an analyst
-- needs SELECT on the columns they read: granted column by column, none of
-- them personal (no names of people, e-mail addresses, phone numbers,
-- descriptions or notes).
GRANT SELECT (id, status, source, owner, campaign_id, created_at, furthest_status) ON crm.lead TO crm_analyst;
GRANT SELECT (id, stage, amount, probability, close_date, closed_at, owner, account_id, campaign_id, created_at, furthest_stage)
    ON crm.opportunity TO crm_analyst;
GRANT SELECT (id, opportunity_id, old_stage, new_stage, changed_at) ON crm.opportunity_history TO crm_analyst;
-- crm.pipeline_as_of() and crm.verify_aggregates() read these (no personal values)
GRANT SELECT (new_amount, new_probability, new_close_date, old_owner, new_owner, currency, deleted)
    ON crm.opportunity_history TO crm_analyst;
-- the as-of pipeline is a report: for whoever reads the reports
REVOKE ALL ON FUNCTION crm.pipeline_as_of(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.pipeline_as_of(timestamptz) TO crm_admin, crm_manager, crm_sales, crm_analyst;
GRANT SELECT (id, status, created_at) ON crm.quote TO crm_analyst;
GRANT SELECT (id, quote_id, total) ON crm.sales_order TO crm_analyst;
GRANT SELECT (id, name, owner) ON crm.account TO crm_analyst;
GRANT SELECT (account_id, completed_at) ON crm.activity TO crm_analyst;
-- crm.quote_to_order converts each order at the rate of the day it was made.
GRANT SELECT (currency, created_at) ON crm.sales_order TO crm_analyst;

-- Loss reasons and contact roles (62_loss_reasons_and_contact_roles.sql):
-- reasons are read by everyone and maintained by admins (a code never
-- changes: admins update label and active only); contact roles are written
-- with their deal.  Analysts read the loss analysis (reason codes, no
-- comments or competitors).
GRANT SELECT ON crm.loss_reason TO crm_admin, crm_manager, crm_sales, crm_analyst;
GRANT INSERT (code, label, active), UPDATE (label, active), DELETE ON crm.loss_reason TO crm_admin;
GRANT SELECT, INSERT (opportunity_id, contact_id, role, is_primary),
    UPDATE (opportunity_id, contact_id, role, is_primary), DELETE
    ON crm.opportunity_contact_role TO crm_admin, crm_manager, crm_sales;
GRANT SELECT ON crm.loss_analysis TO crm_admin, crm_manager, crm_sales, crm_analyst;
GRANT SELECT (loss_reason_code) ON crm.opportunity TO crm_analyst;

-- Row ids are the database's to give: no role chooses one (INSERT ...
-- OVERRIDING SYSTEM VALUE) or changes one (UPDATE ... SET id).  A chosen id
-- could squat the ids everyone else's next inserts get, or sort first where
-- "oldest" decides.  So INSERT and UPDATE, wherever granted above, are
-- granted on every column except the identity and generated ones, such as
-- search_text (92_search.sql): 42501 for an identity column, 428C9 for a
-- generated one.  Without UPDATE on the whole table a role also cannot LOCK it in
-- the stronger modes (only DELETE still allows that; see lock_guard.c).
DO $ids$
DECLARE
    g record;
    cols text;
BEGIN
    FOR g IN
        SELECT c.oid::pg_catalog.regclass AS rel, a.privilege_type AS priv,
               pg_catalog.quote_ident(r.rolname) AS grantee
          FROM pg_catalog.pg_class AS c
         CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) AS a
          JOIN pg_catalog.pg_roles AS r ON r.oid OPERATOR(pg_catalog.=) a.grantee
         WHERE c.relnamespace OPERATOR(pg_catalog.=) 'crm'::pg_catalog.regnamespace
           AND c.relkind OPERATOR(pg_catalog.=) 'r'
           AND a.privilege_type OPERATOR(pg_catalog.=) ANY (ARRAY['INSERT', 'UPDATE'])
           AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
         ORDER BY 1, 2, 3
    LOOP
        SELECT pg_catalog.string_agg(pg_catalog.quote_ident(att.attname), ', ' ORDER BY att.attnum)
          INTO cols
          FROM pg_catalog.pg_attribute AS att
         WHERE att.attrelid OPERATOR(pg_catalog.=) g.rel
           AND att.attnum OPERATOR(pg_catalog.>) 0 AND NOT att.attisdropped
           AND att.attidentity OPERATOR(pg_catalog.=) '' AND att.attgenerated OPERATOR(pg_catalog.=) '';
        EXECUTE pg_catalog.format('REVOKE %s ON %s FROM %s', g.priv, g.rel, g.grantee);
        EXECUTE pg_catalog.format('GRANT %s (%s) ON %s TO %s', g.priv, cols, g.rel, g.grantee);
    END LOOP;
END
$ids$;

-- Database-set columns: created_at and updated_at are the stamp_row
-- trigger's (96_timestamps_and_change_log.sql), whatever a client sends, so
-- no role may write them (42501), wherever INSERT or UPDATE was granted
-- above.  Schema-driven API servers and code generators read the column
-- privileges and leave them out of their insert and update inputs.
-- Likewise the conversion record, numbers, sums and lifecycle times that
-- only crm's functions and triggers set (the list below; README "Using crm
-- from an application"): crm.convert_lead() writes the conversion record
-- with the caller's own statements and its guards fill those columns in
-- (conversion_guard.c), as crm.create_order(), activate_order() and
-- cancel_order() do for an order's number, sums and approval record
-- (orders.c); triggers set the others from what users do write (an
-- activity's or order's status, a member's response, the line items).
DO $stamped$
DECLARE
    g record;
BEGIN
    FOR g IN
        SELECT att.attrelid::pg_catalog.regclass AS rel, pg_catalog.quote_ident(att.attname) AS col,
               a.privilege_type AS priv, pg_catalog.quote_ident(r.rolname) AS grantee
          FROM pg_catalog.pg_attribute AS att
          JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) att.attrelid
         CROSS JOIN LATERAL pg_catalog.aclexplode(att.attacl) AS a
          JOIN pg_catalog.pg_roles AS r ON r.oid OPERATOR(pg_catalog.=) a.grantee
         WHERE c.relnamespace OPERATOR(pg_catalog.=) 'crm'::pg_catalog.regnamespace
           AND c.relkind OPERATOR(pg_catalog.=) 'r'
           AND (att.attname OPERATOR(pg_catalog.=) ANY (ARRAY['created_at', 'updated_at']::pg_catalog.name[])
                OR (c.relname::pg_catalog.text, att.attname::pg_catalog.text) IN (VALUES
                    ('lead', 'account_id'), ('lead', 'contact_id'), ('lead', 'opportunity_id'),
                    ('lead', 'converted_at'), ('lead', 'converted_by'), ('lead', 'score'),
                    ('lead', 'furthest_status'), ('opportunity', 'furthest_stage'),
                    ('opportunity', 'lead_id'), ('opportunity', 'closed_at'), ('opportunity', 'stage_changed_at'),
                    ('quote', 'quote_number'), ('quote', 'subtotal'),
                    ('sales_order', 'order_number'), ('sales_order', 'subtotal'),
                    ('sales_order', 'discount_amount'), ('sales_order', 'tax'), ('sales_order', 'total'),
                    ('sales_order', 'currency'), ('sales_order', 'activated_at'),
                    ('sales_order', 'activated_by'), ('sales_order', 'shipped_at'),
                    ('sales_order', 'delivered_at'), ('sales_order', 'completed_at'),
                    ('sales_order', 'cancelled_at'), ('sales_order', 'cancelled_by'),
                    ('activity', 'completed_at'), ('activity', 'series_id'),
                    ('activity', 'occurrence_number'), ('activity_participant', 'responded_at'),
                    ('campaign_member', 'opted_out'), ('campaign_member', 'first_responded_at')))
           AND a.privilege_type OPERATOR(pg_catalog.=) ANY (ARRAY['INSERT', 'UPDATE'])
           AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
         ORDER BY 1, 2, 3, 4
    LOOP
        EXECUTE pg_catalog.format('REVOKE %s (%s) ON %s FROM %s', g.priv, g.col, g.rel, g.grantee);
    END LOOP;
END
$stamped$;

-- pg_dump dumps every row of every table of the extension (schemas crm and
-- crm_internal) and the position
-- of every sequence (but the secret of the lock keys): user data, the rows CREATE EXTENSION seeds (which admins
-- may change: stages, sources, transitions, settings, the standard price
-- book), and the aggregates' stripes, so a restored database reads the same
-- totals without a rebuild.  A restore runs with session_replication_role =
-- replica (README "Backup and restore"): the guards, history, timestamp and
-- aggregate triggers then leave the rows as dumped, and foreign keys are not
-- checked row by row (lead and opportunity point at each other).
-- (One call per statement: each call updates the pg_extension row.)
DO $dump$
DECLARE
    t pg_catalog.regclass;
BEGIN
    FOR t IN
        SELECT c.oid::pg_catalog.regclass
          FROM pg_catalog.pg_class AS c
         WHERE c.relnamespace OPERATOR(pg_catalog.=) ANY (ARRAY['crm', 'crm_internal']::pg_catalog.regnamespace[])
           AND c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'S']::"char"[])
           AND c.relname OPERATOR(pg_catalog.<>) 'lock_key_secret'
         ORDER BY c.relname
    LOOP
        PERFORM pg_catalog.pg_extension_config_dump(t, '');
    END LOOP;
END
$dump$;

-- Restoring: CREATE EXTENSION runs first, under session_replication_role =
-- replica, and the dump then brings the seeded rows as they were when it was
-- taken; the seeds this script inserted would collide with them.  So in that
-- mode (only a superuser can set it) the script leaves the seeded tables
-- empty.
DO $restore$
BEGIN
    IF pg_catalog.current_setting('session_replication_role') OPERATOR(pg_catalog.=) 'replica' THEN
        DELETE FROM crm.lead_source;
        DELETE FROM crm.opportunity_stage;
        DELETE FROM crm_internal.quote_transition;
        DELETE FROM crm_internal.order_transition;
        DELETE FROM crm.settings;
        DELETE FROM crm.price_book;
        DELETE FROM crm.currency;   -- currencies (72_currencies.sql)
    END IF;
END
$restore$;
