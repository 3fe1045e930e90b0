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

-- The change log (crm_internal.record_change, src/change_log.c): which tables' row
-- changes are kept in crm.change_log.  A TRUNCATE of crm.lead is logged too.
CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON crm.lead
    FOR EACH ROW EXECUTE FUNCTION crm_internal.record_change();
CREATE TRIGGER record_change_truncate AFTER TRUNCATE ON crm.lead
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.record_change();
CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON crm.product
    FOR EACH ROW EXECUTE FUNCTION crm_internal.record_change();
CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON crm.price_book_entry
    FOR EACH ROW EXECUTE FUNCTION crm_internal.record_change();
CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON crm.opportunity
    FOR EACH ROW EXECUTE FUNCTION crm_internal.record_change();
CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON crm.account
    FOR EACH ROW EXECUTE FUNCTION crm_internal.record_change();
CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON crm.contact
    FOR EACH ROW EXECUTE FUNCTION crm_internal.record_change();
CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON crm.quote
    FOR EACH ROW EXECUTE FUNCTION crm_internal.record_change();
CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON crm.sales_order
    FOR EACH ROW EXECUTE FUNCTION crm_internal.record_change();

-- Notes, attachments and tags (81_notes_and_tags.sql)
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.note
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.attachment
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.tag
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.record_tag
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();
CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON crm.note
    FOR EACH ROW EXECUTE FUNCTION crm_internal.record_change();
CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON crm.attachment
    FOR EACH ROW EXECUTE FUNCTION crm_internal.record_change();
CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON crm.tag
    FOR EACH ROW EXECUTE FUNCTION crm_internal.record_change();
CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON crm.record_tag
    FOR EACH ROW EXECUTE FUNCTION crm_internal.record_change();
