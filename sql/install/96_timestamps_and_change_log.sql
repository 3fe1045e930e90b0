--------------------------------------------------------------------------
-- Timestamps and the change log, wired to every table in one place
--------------------------------------------------------------------------
-- created_at / updated_at are the database's (crm_internal.stamp_row, src/stamp.c):
-- every table that has them gets this trigger.  A new table with these
-- columns is added to this list.
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.account
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.contact
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.account_contact
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.lead
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.opportunity
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.product
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.price_book
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.price_book_entry
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.price_book_tier
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.opportunity_line_item
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.settings
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.quote
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.quote_line_item
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.sales_order
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.sales_order_item
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.activity
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.activity_participant
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.campaign
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.campaign_member
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.reporting_line
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();

-- Notes, attachments and tags (81_notes_and_tags.sql)
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.note
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.attachment
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.tag
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.record_tag
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();

-- The change log (crm_internal.record_change, src/change_log.c): which tables' row
-- changes are kept in crm.change_log, written per statement from its transition
-- tables (one trigger per event: a trigger with transition tables has one).
-- A TRUNCATE of crm.lead is logged too.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['lead', 'product', 'price_book_entry', 'opportunity', 'account', 'contact', 'quote', 'sales_order', 'note', 'attachment', 'tag', 'record_tag']
    LOOP
        EXECUTE pg_catalog.format('CREATE TRIGGER record_change_insert AFTER INSERT ON crm.%I'
            ' REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.record_change()', t);
        EXECUTE pg_catalog.format('CREATE TRIGGER record_change_update AFTER UPDATE ON crm.%I'
            ' REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.record_change()', t);
        EXECUTE pg_catalog.format('CREATE TRIGGER record_change_delete AFTER DELETE ON crm.%I'
            ' REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.record_change()', t);
    END LOOP;
END
$$;
CREATE TRIGGER record_change_truncate AFTER TRUNCATE ON crm.lead
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.record_change();
