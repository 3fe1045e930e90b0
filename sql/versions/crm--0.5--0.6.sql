-- crm 0.5 -> 0.6: ALTER EXTENSION crm UPDATE TO '0.6'.
-- Every schema change made in sql/install/ since 0.5 is repeated here, so
-- that an updated database has the same objects as a fresh install
-- (test/scripts/upgrade.sh checks it).
--
-- 0.6 restructures the code (one trigger function per job, the aggregates'
-- definitions in one place); what the extension does is unchanged.

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION crm UPDATE TO '0.6'" to load this file. \quit

-- == trigger functions: one per job (src/activities.c, src/campaigns.c,
-- == src/line_items.c, history and timestamps) ==

-- activities: the participants' trigger has its own function
COMMENT ON FUNCTION crm.activity_lifecycle() IS 'BEFORE INSERT OR UPDATE row trigger on crm.activity: keeps completed_at with status Completed, re-arms the reminder when remind_at changes';
CREATE FUNCTION crm.participant_response() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_participant_response'
    LANGUAGE C;
COMMENT ON FUNCTION crm.participant_response() IS 'BEFORE INSERT OR UPDATE row trigger on crm.activity_participant: stamps responded_at when the response changes and keeps it otherwise';
REVOKE ALL ON FUNCTION crm.participant_response() FROM PUBLIC;
DROP TRIGGER activity_lifecycle ON crm.activity_participant;
CREATE TRIGGER participant_response BEFORE INSERT OR UPDATE ON crm.activity_participant
    FOR EACH ROW EXECUTE FUNCTION crm.participant_response();

-- campaigns: the members' trigger has its own function
COMMENT ON FUNCTION crm.campaign_guard() IS 'BEFORE row trigger on crm.campaign: refuses a parent that would make a cycle; hierarchy changes are serialised';
CREATE FUNCTION crm.campaign_member_response() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_campaign_member_response'
    LANGUAGE C;
COMMENT ON FUNCTION crm.campaign_member_response() IS 'BEFORE row trigger on crm.campaign_member: stamps first_responded_at at the first response and keeps it from then on';
REVOKE ALL ON FUNCTION crm.campaign_member_response() FROM PUBLIC;
DROP TRIGGER campaign_guard ON crm.campaign_member;
CREATE TRIGGER campaign_member_response BEFORE INSERT OR UPDATE ON crm.campaign_member
    FOR EACH ROW EXECUTE FUNCTION crm.campaign_member_response();

-- line items: the triggers name their parent table as argument
COMMENT ON FUNCTION crm.price_line_item() IS 'BEFORE INSERT OR UPDATE row trigger on line items, with the parent table as argument (''opportunity'' or ''quote''): checks the product has an active entry in the parent''s price book (the standard book when the parent has none yet, which it then adopts) and fills a missing unit_price from it';
COMMENT ON FUNCTION crm.sum_line_items() IS 'AFTER statement trigger on line items, with the parent table as argument (''opportunity'' or ''quote''): locks the parents whose lines changed (in id order) and sets their amount (opportunities) or subtotal (quotes) to the sum of their line totals';
DROP TRIGGER price_line_item ON crm.opportunity_line_item;
CREATE TRIGGER price_line_item BEFORE INSERT OR UPDATE OF product_id, unit_price, opportunity_id
    ON crm.opportunity_line_item
    FOR EACH ROW EXECUTE FUNCTION crm.price_line_item('opportunity');
DROP TRIGGER sum_line_items_insert ON crm.opportunity_line_item;
CREATE TRIGGER sum_line_items_insert AFTER INSERT ON crm.opportunity_line_item
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.sum_line_items('opportunity');
DROP TRIGGER sum_line_items_update ON crm.opportunity_line_item;
CREATE TRIGGER sum_line_items_update AFTER UPDATE ON crm.opportunity_line_item
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.sum_line_items('opportunity');
DROP TRIGGER sum_line_items_delete ON crm.opportunity_line_item;
CREATE TRIGGER sum_line_items_delete AFTER DELETE ON crm.opportunity_line_item
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.sum_line_items('opportunity');
DROP TRIGGER price_line_item ON crm.quote_line_item;
CREATE TRIGGER price_line_item BEFORE INSERT OR UPDATE OF product_id, unit_price, quote_id
    ON crm.quote_line_item
    FOR EACH ROW EXECUTE FUNCTION crm.price_line_item('quote');
DROP TRIGGER sum_line_items_insert ON crm.quote_line_item;
CREATE TRIGGER sum_line_items_insert AFTER INSERT ON crm.quote_line_item
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.sum_line_items('quote');
DROP TRIGGER sum_line_items_update ON crm.quote_line_item;
CREATE TRIGGER sum_line_items_update AFTER UPDATE ON crm.quote_line_item
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.sum_line_items('quote');
DROP TRIGGER sum_line_items_delete ON crm.quote_line_item;
CREATE TRIGGER sum_line_items_delete AFTER DELETE ON crm.quote_line_item
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.sum_line_items('quote');

-- == aggregates: definitions in one place (src/aggregates.c) ==

-- == privileges (keep last) ==
