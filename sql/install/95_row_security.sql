--------------------------------------------------------------------------
-- Who sees what: the reporting hierarchy and row-level security
--
-- Every row with personal or sales data has an owner (a database role).
--   crm_admin    sees and changes every row;
--   crm_manager  sees and changes the rows owned by themselves and by anyone
--                below them in crm.reporting_line (transitively);
--   crm_sales    sees and changes their own rows; accounts and contacts
--                also by the sharing rule below;
--   crm_analyst  reads (only the columns granted in 99_privileges.sql, none
--                of them personal) every row: BI views and aggregates.
-- Sharing rule: an account is visible to whoever may see an opportunity or
-- a lead on it; a contact to whoever may see its primary account or an
-- account it is linked to.  Only the owner's side may change them.
-- Child rows (line items, order items, participants, history) follow their
-- parent: visible and writable exactly when the parent is.
--
-- The tables' owner (the role that created the extension) is not subject to
-- these policies: the extension's own triggers and checks run as that owner
-- to write history, aggregates, line sums and stock, and to search for
-- duplicates across owners.  No person should log in as that role.  FORCE
-- ROW LEVEL SECURITY is therefore not set: it would subject those writes to
-- the policies of whoever happens to own the tables.
--------------------------------------------------------------------------

CREATE TABLE crm.reporting_line (
    member      regrole PRIMARY KEY,
    manager     regrole NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT reporting_line_not_self CHECK (member OPERATOR(pg_catalog.<>) manager)
);
COMMENT ON TABLE crm.reporting_line IS 'The reporting hierarchy: who reports to whom. A member of crm_manager sees and changes the rows owned by everyone below them, directly or indirectly. Maintained by admins; cycles are refused.';
COMMENT ON COLUMN crm.reporting_line.member IS 'A CRM user (database role)';
COMMENT ON COLUMN crm.reporting_line.manager IS 'The role the member reports to';
COMMENT ON COLUMN crm.reporting_line.created_at IS 'When the line was added';
COMMENT ON COLUMN crm.reporting_line.updated_at IS 'When the line last changed';
CREATE INDEX reporting_line_manager_idx ON crm.reporting_line (manager);

CREATE FUNCTION crm_internal.reporting_line_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_reporting_line_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.reporting_line_guard() IS 'BEFORE row trigger on crm.reporting_line: refuses a manager who reports, directly or indirectly, to the member (hierarchy changes are serialised)';
CREATE TRIGGER reporting_line_guard BEFORE INSERT OR UPDATE ON crm.reporting_line
    FOR EACH ROW EXECUTE FUNCTION crm_internal.reporting_line_guard();

-- The owners whose rows the current role works with: itself, and for a
-- member of crm_manager everyone below it in the hierarchy.  Policies call
-- it once per statement, as an InitPlan: ANY (ARRAY(SELECT crm.team_roles())).
CREATE FUNCTION crm.team_roles() RETURNS SETOF pg_catalog.oid
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH RECURSIVE team (member, depth) AS (
        SELECT r.oid, 0 FROM pg_catalog.pg_roles AS r
         WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER
        UNION
        SELECT l.member::pg_catalog.oid, t.depth OPERATOR(pg_catalog.+) 1
          FROM crm.reporting_line AS l JOIN team AS t ON l.manager::pg_catalog.oid OPERATOR(pg_catalog.=) t.member
         WHERE t.depth OPERATOR(pg_catalog.<) 64
           AND pg_catalog.pg_has_role(CURRENT_USER, 'crm_manager', 'USAGE'))
    SELECT DISTINCT team.member FROM team;
END;
COMMENT ON FUNCTION crm.team_roles() IS 'The current role and, for a member of crm_manager, every role below it in crm.reporting_line: the owners whose rows it may see and change';

-- What a written row may point at (see src/sharing.c): pointing a deal at an
-- account, or linking a contact to an account, would share it; so the caller
-- must see it already.  convert_lead has no exception: its duplicate search
-- finds only what the caller sees.
CREATE FUNCTION crm.may_reference_account(account_id bigint) RETURNS boolean
    AS 'MODULE_PATHNAME', 'crm_may_reference_account'
    LANGUAGE C STABLE;
COMMENT ON FUNCTION crm.may_reference_account(bigint) IS 'True when the calling role sees the account: the condition for pointing an opportunity, a contact, a quote or an order at it';
CREATE FUNCTION crm.may_reference_contact(contact_id bigint) RETURNS boolean
    AS 'MODULE_PATHNAME', 'crm_may_reference_contact'
    LANGUAGE C STABLE;
CREATE FUNCTION crm.may_link_account(account_id bigint) RETURNS boolean
    AS 'MODULE_PATHNAME', 'crm_may_link_account'
    LANGUAGE C STABLE;
COMMENT ON FUNCTION crm.may_link_account(bigint) IS 'True when the calling role''s team owns the account: the condition for adding a contact link to it';
COMMENT ON FUNCTION crm.may_reference_contact(bigint) IS 'True when the calling role sees the contact: the condition for linking it to an account and for naming it on an opportunity, a quote or an order';

-- Policies.  Permissive policies are OR-ed: an admin passes crm_admin_all,
-- an analyst crm_analyst_read, everybody else the owner / parent policies.
DO $policies$
DECLARE
    t text;
    team constant text := 'owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))';
    rule text[];
    write_check text;
    account_owned constant text := 'EXISTS (SELECT 1 FROM crm.account AS p WHERE p.id OPERATOR(pg_catalog.=) account_id'
        || ' AND p.owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles())))';
    member_lead_owned constant text := 'EXISTS (SELECT 1 FROM crm.lead AS p WHERE p.id OPERATOR(pg_catalog.=) lead_id'
        || ' AND p.owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles())))';
    member_contact_owned constant text := 'EXISTS (SELECT 1 FROM crm.contact AS p WHERE p.id OPERATOR(pg_catalog.=) contact_id'
        || ' AND p.owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles())))';
BEGIN
    -- every protected table: admins everything, analysts read (qualified
    -- names: the aggregate tables are internal)
    FOREACH t IN ARRAY ARRAY['crm.account', 'crm.contact', 'crm.account_contact', 'crm.lead', 'crm.opportunity',
                             'crm.opportunity_line_item', 'crm.quote', 'crm.quote_line_item', 'crm.sales_order',
                             'crm.sales_order_item', 'crm.activity', 'crm.activity_participant', 'crm.campaign_member',
                             'crm.lead_status_history', 'crm.opportunity_history', 'crm.quote_approval', 'crm.change_log',
                             'crm_internal.pipeline_aggregate', 'crm_internal.account_aggregate', 'crm_internal.campaign_opportunity_aggregate',
                             'crm_internal.campaign_lead_aggregate', 'crm_internal.lead_funnel_aggregate',
                             'crm_internal.opportunity_funnel_aggregate',
                             'crm_internal.lead_source_aggregate', 'crm_internal.lead_month_aggregate', 'crm_internal.sales_performance_aggregate',
                             'crm_internal.stage_velocity_aggregate', 'crm_internal.account_settled']
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        EXECUTE pg_catalog.format('CREATE POLICY crm_admin_all ON %s TO crm_admin USING (true) WITH CHECK (true)', t);
        EXECUTE pg_catalog.format('CREATE POLICY crm_analyst_read ON %s FOR SELECT TO crm_analyst USING (true)', t);
    END LOOP;

    -- rows owned by the team: read and write; a row can only be given to
    -- (inserted for, reassigned to) a member of the team
    FOREACH t IN ARRAY ARRAY['account', 'contact', 'lead', 'opportunity', 'quote', 'sales_order', 'activity']
    LOOP
        -- a deal shares its account (sharing rule): it may point only at one
        -- the caller sees, and name only a contact the caller sees
        -- a quote may name only a deal the caller sees (else it could pin another rep's deal)
        write_check := CASE t
            WHEN 'opportunity' THEN team || ' AND crm.may_reference_account(account_id)'
                 || ' AND crm.may_reference_contact(contact_id)'
            -- a contact's primary account lists it: only an account the caller sees
            WHEN 'contact' THEN team || ' AND crm.may_reference_account(account_id)'
            -- a quote or an order names a customer: only an account and a
            -- contact the caller sees (else it could pin another rep's contact)
            WHEN 'quote' THEN team || ' AND crm.may_reference_account(account_id)'
                 || ' AND crm.may_reference_contact(contact_id)'
                 || ' AND EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id)'
            WHEN 'sales_order' THEN team || ' AND crm.may_reference_account(account_id)'
                 || ' AND crm.may_reference_contact(contact_id)'
            -- an activity is about a record the caller sees (else a rep could
            -- probe ids and hang tasks and recurring series on others' records)
            WHEN 'activity' THEN team || ' AND crm.may_reference_account(account_id)'
                 || ' AND crm.may_reference_contact(contact_id)'
                 || ' AND (lead_id IS NULL OR EXISTS (SELECT 1 FROM crm.lead AS p WHERE p.id OPERATOR(pg_catalog.=) lead_id))'
                 || ' AND (opportunity_id IS NULL OR EXISTS (SELECT 1 FROM crm.opportunity AS p'
                 || ' WHERE p.id OPERATOR(pg_catalog.=) opportunity_id))'
            ELSE team END;
        EXECUTE pg_catalog.format('CREATE POLICY crm_team_select ON crm.%I FOR SELECT TO crm_manager, crm_sales USING (%s)', t, team);
        EXECUTE pg_catalog.format('CREATE POLICY crm_team_insert ON crm.%I FOR INSERT TO crm_manager, crm_sales WITH CHECK (%s)', t, write_check);
        -- (an activity's links are checked on UPDATE only when they change:
        -- crm_internal.activity_lifecycle(), so it stays editable when its record is reassigned)
        EXECUTE pg_catalog.format('CREATE POLICY crm_team_update ON crm.%I FOR UPDATE TO crm_manager, crm_sales USING (%s) WITH CHECK (%s)',
                                  t, team, CASE t WHEN 'activity' THEN team ELSE write_check END);
        EXECUTE pg_catalog.format('CREATE POLICY crm_team_delete ON crm.%I FOR DELETE TO crm_manager, crm_sales USING (%s)', t, team);
    END LOOP;

    -- child rows follow their parent (whose own policies apply inside EXISTS)
    FOREACH rule SLICE 1 IN ARRAY ARRAY[
        ['opportunity_line_item', 'EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id)'],
        ['quote_line_item', 'EXISTS (SELECT 1 FROM crm.quote AS p WHERE p.id OPERATOR(pg_catalog.=) quote_id)'],
        ['sales_order_item', 'EXISTS (SELECT 1 FROM crm.sales_order AS p WHERE p.id OPERATOR(pg_catalog.=) order_id)'],
        ['activity_participant', 'EXISTS (SELECT 1 FROM crm.activity AS p WHERE p.id OPERATOR(pg_catalog.=) activity_id)']]
    LOOP
        EXECUTE pg_catalog.format('CREATE POLICY crm_parent_all ON crm.%I TO crm_manager, crm_sales USING (%s) WITH CHECK (%s)',
                                  rule[1], rule[2], rule[2]);
    END LOOP;

    -- a link shares the contact and the account with each other's readers:
    -- both ends must be ones the caller sees (sharing.c)
    -- and only the account's side (its owner's team, or the link's owner) changes them
    EXECUTE 'CREATE POLICY crm_parent_select ON crm.account_contact FOR SELECT TO crm_manager, crm_sales'
         || ' USING (EXISTS (SELECT 1 FROM crm.account AS p WHERE p.id OPERATOR(pg_catalog.=) account_id))';
    EXECUTE pg_catalog.format('CREATE POLICY crm_link_insert ON crm.account_contact FOR INSERT TO crm_manager, crm_sales'
         || ' WITH CHECK (%s AND crm.may_link_account(account_id) AND crm.may_reference_contact(contact_id))', team);
    EXECUTE pg_catalog.format('CREATE POLICY crm_link_update ON crm.account_contact FOR UPDATE TO crm_manager, crm_sales'
         || ' USING (%s OR %s) WITH CHECK (%s AND crm.may_link_account(account_id) AND crm.may_reference_contact(contact_id))',
         team, account_owned, team);
    EXECUTE pg_catalog.format('CREATE POLICY crm_link_delete ON crm.account_contact FOR DELETE TO crm_manager, crm_sales'
         || ' USING (%s OR %s)', team, account_owned);

    -- campaign members: readable with their lead or contact; changed by the
    -- member row's owner or the owner of its lead or contact
    EXECUTE 'CREATE POLICY crm_parent_select ON crm.campaign_member FOR SELECT TO crm_manager, crm_sales'
         || ' USING (EXISTS (SELECT 1 FROM crm.lead AS p WHERE p.id OPERATOR(pg_catalog.=) lead_id)'
         || ' OR EXISTS (SELECT 1 FROM crm.contact AS p WHERE p.id OPERATOR(pg_catalog.=) contact_id))';
    EXECUTE pg_catalog.format('CREATE POLICY crm_member_insert ON crm.campaign_member FOR INSERT TO crm_manager, crm_sales'
         || ' WITH CHECK (%s AND (%s OR %s))', team, member_lead_owned, member_contact_owned);
    EXECUTE pg_catalog.format('CREATE POLICY crm_member_update ON crm.campaign_member FOR UPDATE TO crm_manager, crm_sales'
         || ' USING (%s OR %s OR %s) WITH CHECK (%s AND (%s OR %s))',
         team, member_lead_owned, member_contact_owned, team, member_lead_owned, member_contact_owned);
    EXECUTE pg_catalog.format('CREATE POLICY crm_member_delete ON crm.campaign_member FOR DELETE TO crm_manager, crm_sales'
         || ' USING (%s OR %s OR %s)', team, member_lead_owned, member_contact_owned);

    -- history follows its record; the change log is the audit trail:
    -- managers read what their team did (admins everything, above)
    FOREACH rule SLICE 1 IN ARRAY ARRAY[
        ['lead_status_history', 'EXISTS (SELECT 1 FROM crm.lead AS p WHERE p.id OPERATOR(pg_catalog.=) lead_id)'],
        -- a deal's history outlives it: its entries are read by whoever sees
        -- the deal now (as before 0.7), and each entry by the team that owned
        -- the deal after it (deleted or handed on deals included)
        ['opportunity_history', 'new_owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))'
                                || ' OR EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id)'],
        ['quote_approval', 'EXISTS (SELECT 1 FROM crm.quote AS p WHERE p.id OPERATOR(pg_catalog.=) quote_id)'],
        ['change_log', 'changed_by::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))']]
    LOOP
        EXECUTE pg_catalog.format('CREATE POLICY crm_parent_select ON crm.%I FOR SELECT TO crm_manager, crm_sales USING (%s)',
                                  rule[1], rule[2]);
    END LOOP;

    -- aggregates: a rep reads their own figures, a manager their team's
    FOREACH t IN ARRAY ARRAY['crm_internal.pipeline_aggregate', 'crm_internal.account_aggregate', 'crm_internal.campaign_opportunity_aggregate',
                             'crm_internal.campaign_lead_aggregate', 'crm_internal.lead_funnel_aggregate',
                             'crm_internal.opportunity_funnel_aggregate',
                             'crm_internal.lead_source_aggregate', 'crm_internal.lead_month_aggregate', 'crm_internal.sales_performance_aggregate',
                             'crm_internal.stage_velocity_aggregate', 'crm_internal.account_settled']
    LOOP
        EXECUTE pg_catalog.format('CREATE POLICY crm_team_select ON %s FOR SELECT TO crm_manager, crm_sales USING (%s)', t, team);
    END LOOP;
END
$policies$;

-- Stage renames (61_stage_renames.sql): no owner, no personal data; every
-- role that reads the stages reads every rename.  No write policy: only the
-- extension (the tables' owner) writes it.
ALTER TABLE crm.opportunity_stage_rename ENABLE ROW LEVEL SECURITY;
CREATE POLICY crm_read ON crm.opportunity_stage_rename FOR SELECT
    TO crm_admin, crm_manager, crm_sales, crm_analyst USING (true);

-- The sharing rule: accounts on which the role sees an opportunity or a
-- lead; contacts on an account the role sees (read only).
CREATE POLICY crm_shared_select ON crm.account FOR SELECT TO crm_manager, crm_sales
    USING (EXISTS (SELECT 1 FROM crm.opportunity AS o WHERE o.account_id OPERATOR(pg_catalog.=) account.id)
        OR EXISTS (SELECT 1 FROM crm.lead AS l WHERE l.account_id OPERATOR(pg_catalog.=) account.id));
CREATE POLICY crm_shared_select ON crm.contact FOR SELECT TO crm_manager, crm_sales
    USING (EXISTS (SELECT 1 FROM crm.account AS a WHERE a.id OPERATOR(pg_catalog.=) contact.account_id)
        OR EXISTS (SELECT 1 FROM crm.account_contact AS ac WHERE ac.contact_id OPERATOR(pg_catalog.=) contact.id));

-- The audit trail (crm.change_log: who changed what and when on accounts,
-- contacts, leads, opportunities, quotes, orders, products and prices) is
-- append-only: no UPDATE, DELETE or TRUNCATE, whoever asks.
CREATE FUNCTION crm_internal.audit_append_only() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_audit_append_only'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.audit_append_only() IS 'BEFORE UPDATE/DELETE/TRUNCATE trigger on crm.change_log: refuses every change (SQLSTATE ZC602)';
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON crm.change_log
    FOR EACH ROW EXECUTE FUNCTION crm_internal.audit_append_only();
CREATE TRIGGER audit_append_only_truncate BEFORE TRUNCATE ON crm.change_log
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.audit_append_only();
-- also under session_replication_role = replica (a superuser's bulk mode)
ALTER TABLE crm.change_log ENABLE ALWAYS TRIGGER audit_append_only;
ALTER TABLE crm.change_log ENABLE ALWAYS TRIGGER audit_append_only_truncate;

-- Merge records (89_merge.sql).
-- Admins read every merge; managers and reps those they (or their team)
-- made, or whose survivor they (or their team) own.  Seeing the survivor
-- through the sharing rule is not enough: the merged record's values were
-- never theirs to read.
ALTER TABLE crm.merge_record ENABLE ROW LEVEL SECURITY;
CREATE POLICY crm_admin_all ON crm.merge_record TO crm_admin USING (true) WITH CHECK (true);
CREATE POLICY crm_survivor_select ON crm.merge_record FOR SELECT TO crm_manager, crm_sales
    USING (merged_by::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))
           OR CASE kind
           WHEN 'account' THEN EXISTS (SELECT 1 FROM crm.account AS p WHERE p.id OPERATOR(pg_catalog.=) survivor_id
                                         AND p.owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles())))
           WHEN 'contact' THEN EXISTS (SELECT 1 FROM crm.contact AS p WHERE p.id OPERATOR(pg_catalog.=) survivor_id
                                         AND p.owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles())))
           ELSE EXISTS (SELECT 1 FROM crm.lead AS p WHERE p.id OPERATOR(pg_catalog.=) survivor_id
                          AND p.owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))) END);

-- Contact roles (62_loss_reasons_and_contact_roles.sql) follow their deal;
-- a role row may name only a contact the caller sees, as contact_id does
-- (sharing.c).  Loss reasons are a catalog: no row security.
ALTER TABLE crm.opportunity_contact_role ENABLE ROW LEVEL SECURITY;
CREATE POLICY crm_admin_all ON crm.opportunity_contact_role TO crm_admin USING (true) WITH CHECK (true);
CREATE POLICY crm_parent_select ON crm.opportunity_contact_role FOR SELECT TO crm_manager, crm_sales
    USING (EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id));
CREATE POLICY crm_parent_insert ON crm.opportunity_contact_role FOR INSERT TO crm_manager, crm_sales
    WITH CHECK (EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id)
                AND crm.may_reference_contact(contact_id));
CREATE POLICY crm_parent_update ON crm.opportunity_contact_role FOR UPDATE TO crm_manager, crm_sales
    USING (EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id))
    WITH CHECK (EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id)
                AND crm.may_reference_contact(contact_id));
CREATE POLICY crm_parent_delete ON crm.opportunity_contact_role FOR DELETE TO crm_manager, crm_sales
    USING (EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id));

-- Notes, attachments and tags (81_notes_and_tags.sql).  A note or an attachment is
-- visible exactly when its record is (the EXISTS runs the record's own
-- policies for the caller); it is written by its owner's team (the owner,
-- the managers above them) and only about a record the caller sees: a
-- forged id of a hidden lead is refused like a missing one; it is changed
-- and deleted only while the caller sees its record (an UPDATE or DELETE
-- without WHERE applies no SELECT policy, so the USING clauses say it).
-- A tagging is visible with its record and added or removed by whoever may
-- update the record (its owner's team); the tagging's owner is the caller's
-- team.
-- Tags themselves carry no personal data: everyone reads them.
DO $note_policies$
DECLARE
    t text;
    team constant text := 'owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))';
    sees_record constant text :=
           '(EXISTS (SELECT 1 FROM crm.lead AS p WHERE p.id OPERATOR(pg_catalog.=) lead_id)'
        || ' OR EXISTS (SELECT 1 FROM crm.account AS p WHERE p.id OPERATOR(pg_catalog.=) account_id)'
        || ' OR EXISTS (SELECT 1 FROM crm.contact AS p WHERE p.id OPERATOR(pg_catalog.=) contact_id)'
        || ' OR EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id)'
        || ' OR EXISTS (SELECT 1 FROM crm.quote AS p WHERE p.id OPERATOR(pg_catalog.=) quote_id)'
        || ' OR EXISTS (SELECT 1 FROM crm.sales_order AS p WHERE p.id OPERATOR(pg_catalog.=) sales_order_id))';
    sees_tagged constant text :=
           '(EXISTS (SELECT 1 FROM crm.lead AS p WHERE p.id OPERATOR(pg_catalog.=) lead_id)'
        || ' OR EXISTS (SELECT 1 FROM crm.account AS p WHERE p.id OPERATOR(pg_catalog.=) account_id)'
        || ' OR EXISTS (SELECT 1 FROM crm.contact AS p WHERE p.id OPERATOR(pg_catalog.=) contact_id)'
        || ' OR EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id))';
    updates_tagged constant text :=
           '(EXISTS (SELECT 1 FROM crm.lead AS p WHERE p.id OPERATOR(pg_catalog.=) lead_id'
        || '   AND p.owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles())))'
        || ' OR EXISTS (SELECT 1 FROM crm.account AS p WHERE p.id OPERATOR(pg_catalog.=) account_id'
        || '   AND p.owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles())))'
        || ' OR EXISTS (SELECT 1 FROM crm.contact AS p WHERE p.id OPERATOR(pg_catalog.=) contact_id'
        || '   AND p.owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles())))'
        || ' OR EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id'
        || '   AND p.owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))))';
BEGIN
    FOREACH t IN ARRAY ARRAY['note', 'attachment', 'record_tag']
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE crm.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE pg_catalog.format('CREATE POLICY crm_admin_all ON crm.%I TO crm_admin USING (true) WITH CHECK (true)', t);
        EXECUTE pg_catalog.format('CREATE POLICY crm_analyst_read ON crm.%I FOR SELECT TO crm_analyst USING (true)', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['note', 'attachment']
    LOOP
        EXECUTE pg_catalog.format('CREATE POLICY crm_parent_select ON crm.%I FOR SELECT TO crm_manager, crm_sales USING %s',
                                  t, sees_record);
        EXECUTE pg_catalog.format('CREATE POLICY crm_team_insert ON crm.%I FOR INSERT TO crm_manager, crm_sales WITH CHECK (%s AND %s)',
                                  t, team, sees_record);
        EXECUTE pg_catalog.format('CREATE POLICY crm_team_delete ON crm.%I FOR DELETE TO crm_manager, crm_sales USING (%s AND %s)',
                                  t, team, sees_record);
    END LOOP;
    -- attachments are not updated by reps and managers (no UPDATE privilege)
    EXECUTE pg_catalog.format('CREATE POLICY crm_team_update ON crm.note FOR UPDATE TO crm_manager, crm_sales'
                              ' USING (%s AND %s) WITH CHECK (%s AND %s)', team, sees_record, team, sees_record);
    EXECUTE pg_catalog.format('CREATE POLICY crm_parent_select ON crm.record_tag FOR SELECT TO crm_manager, crm_sales USING %s',
                              sees_tagged);
    EXECUTE pg_catalog.format('CREATE POLICY crm_record_insert ON crm.record_tag FOR INSERT TO crm_manager, crm_sales'
                              ' WITH CHECK (%s AND %s)', team, updates_tagged);
    EXECUTE pg_catalog.format('CREATE POLICY crm_record_delete ON crm.record_tag FOR DELETE TO crm_manager, crm_sales'
                              ' USING %s', updates_tagged);
END
$note_policies$;
