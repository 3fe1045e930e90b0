--------------------------------------------------------------------------
-- Opportunity line items
--
-- Products on an opportunity, priced from the opportunity's price book.  An
-- opportunity with line items has amount = sum of its line totals, kept by a
-- statement-level C trigger that locks the opportunity and recomputes the sum
-- with a fresh snapshot, so it stays exact under concurrent edits.
--------------------------------------------------------------------------

CREATE TABLE crm.opportunity_line_item (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    opportunity_id  bigint NOT NULL CONSTRAINT opportunity_line_item_opportunity_id_fkey
                    REFERENCES crm.opportunity (id) ON DELETE CASCADE,
    product_id      bigint NOT NULL CONSTRAINT opportunity_line_item_product_id_fkey
                    REFERENCES crm.product (id),
    description     text,
    quantity        numeric(12,2) NOT NULL DEFAULT 1
                    CONSTRAINT opportunity_line_item_quantity_positive CHECK (quantity OPERATOR(pg_catalog.>) 0
                        AND quantity OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    unit_price      numeric(14,2)
                    CONSTRAINT opportunity_line_item_unit_price_not_negative CHECK (unit_price OPERATOR(pg_catalog.>=) 0
                        AND unit_price OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric)
                    CONSTRAINT opportunity_line_item_unit_price_priced CHECK (unit_price IS NOT NULL),
    discount        numeric(5,2) NOT NULL DEFAULT 0
                    CONSTRAINT opportunity_line_item_discount_range CHECK (discount BETWEEN 0 AND 100),
    total           numeric(16,2) GENERATED ALWAYS AS
                    (pg_catalog.round(quantity OPERATOR(pg_catalog.*) unit_price
                       OPERATOR(pg_catalog.*) (100 OPERATOR(pg_catalog.-) discount) OPERATOR(pg_catalog./) 100, 2)) STORED,
    sort_order      integer NOT NULL DEFAULT 0,
    owner           regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE crm.opportunity_line_item IS 'Products on an opportunity; the opportunity amount is the sum of their totals';
COMMENT ON COLUMN crm.opportunity_line_item.id IS 'Line id, assigned by the database';
COMMENT ON COLUMN crm.opportunity_line_item.opportunity_id IS 'The opportunity (lines go with it when it is deleted)';
COMMENT ON COLUMN crm.opportunity_line_item.product_id IS 'The product; it needs an active entry in the opportunity''s price book';
COMMENT ON COLUMN crm.opportunity_line_item.description IS 'Line description';
COMMENT ON COLUMN crm.opportunity_line_item.quantity IS 'Quantity, > 0';
COMMENT ON COLUMN crm.opportunity_line_item.unit_price IS 'Sales price of one unit; left out (NULL), the product''s price in the opportunity''s price book is filled in, so it is never NULL once stored';
COMMENT ON COLUMN crm.opportunity_line_item.discount IS 'Line discount in percent, 0-100';
COMMENT ON COLUMN crm.opportunity_line_item.total IS 'quantity x unit_price x (1 - discount/100), rounded to cents; computed by the database';
COMMENT ON COLUMN crm.opportunity_line_item.sort_order IS 'Display order of the line';
COMMENT ON COLUMN crm.opportunity_line_item.owner IS 'CRM user (database role) who added the line';
COMMENT ON COLUMN crm.opportunity_line_item.created_at IS 'When the line was added; set by the database';
COMMENT ON COLUMN crm.opportunity_line_item.updated_at IS 'When the line was last changed; set by the database';
CREATE INDEX opportunity_line_item_opportunity_id_idx ON crm.opportunity_line_item (opportunity_id);
CREATE INDEX opportunity_line_item_product_id_idx ON crm.opportunity_line_item (product_id);

-- Pricing a line: the product must be in the parent's price book; the unit
-- price defaults to the book's price.  Shared with quote lines: the triggers'
-- argument names the parent table.
CREATE FUNCTION crm_internal.price_line_item() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_price_line_item'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.price_line_item() IS 'BEFORE INSERT OR UPDATE row trigger on line items, with the parent table as argument (''opportunity'' or ''quote''): checks the product has an active entry in the parent''s price book (the standard book when the parent has none yet, which it then adopts) and fills a missing unit_price from it';

-- Keeping the parent's total: statement-level, from the transition tables.
CREATE FUNCTION crm_internal.sum_line_items() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_sum_line_items'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.sum_line_items() IS 'AFTER statement trigger on line items, with the parent table as argument (''opportunity'' or ''quote''): locks the parents whose lines changed (in id order) and sets their amount (opportunities) or subtotal (quotes) to the sum of their line totals';

CREATE TRIGGER price_line_item BEFORE INSERT OR UPDATE OF product_id, unit_price, opportunity_id
    ON crm.opportunity_line_item
    FOR EACH ROW EXECUTE FUNCTION crm_internal.price_line_item('opportunity');
CREATE TRIGGER sum_line_items_insert AFTER INSERT ON crm.opportunity_line_item
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.sum_line_items('opportunity');
CREATE TRIGGER sum_line_items_update AFTER UPDATE ON crm.opportunity_line_item
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.sum_line_items('opportunity');
CREATE TRIGGER sum_line_items_delete AFTER DELETE ON crm.opportunity_line_item
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.sum_line_items('opportunity');
