--------------------------------------------------------------------------
-- Sales orders
--
-- crm.create_order() turns an Accepted quote into a Draft order (one order
-- per quote).  crm.activate_order() reserves the stock of every tracked
-- product atomically -- all or nothing, products locked in id order, so
-- concurrent activations never oversell -- and crm.cancel_order() returns it.
-- The status moves only along crm_internal.order_transition.
--------------------------------------------------------------------------

CREATE TYPE crm.order_status AS ENUM ('Draft', 'Activated', 'Shipped', 'Delivered', 'Completed', 'Cancelled');
COMMENT ON TYPE crm.order_status IS 'Sales order status: Draft -> Activated -> Shipped -> Delivered -> Completed, or Cancelled (see crm_internal.order_transition)';

CREATE TABLE crm_internal.order_transition (
    from_status   crm.order_status NOT NULL,
    to_status     crm.order_status NOT NULL,
    via_function  text,
    PRIMARY KEY (from_status, to_status)
);
COMMENT ON TABLE crm_internal.order_transition IS 'The legal status changes of a sales order; any other change is refused';
COMMENT ON COLUMN crm_internal.order_transition.from_status IS 'Status before';
COMMENT ON COLUMN crm_internal.order_transition.to_status IS 'Status after';
COMMENT ON COLUMN crm_internal.order_transition.via_function IS 'The function that makes this change (NULL: a plain UPDATE may make it)';
INSERT INTO crm_internal.order_transition VALUES
    ('Draft',     'Activated', 'crm.activate_order()'),
    ('Draft',     'Cancelled', 'crm.cancel_order()'),
    ('Activated', 'Cancelled', 'crm.cancel_order()'),
    ('Activated', 'Shipped',   NULL),
    ('Shipped',   'Delivered', NULL),
    ('Delivered', 'Completed', NULL);

CREATE SEQUENCE crm.sales_order_number_seq;
COMMENT ON SEQUENCE crm.sales_order_number_seq IS 'Numbers of sales orders (SO-000001, ...) when none is given';

CREATE TABLE crm.sales_order (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_number      text NOT NULL CONSTRAINT sales_order_order_number_key UNIQUE
                      CONSTRAINT sales_order_order_number_not_blank CHECK (pg_catalog.btrim(order_number) OPERATOR(pg_catalog.<>) ''),
    quote_id          bigint NOT NULL CONSTRAINT sales_order_quote_id_key UNIQUE
                      CONSTRAINT sales_order_quote_id_fkey REFERENCES crm.quote (id),
    opportunity_id    bigint NOT NULL CONSTRAINT sales_order_opportunity_id_fkey REFERENCES crm.opportunity (id),
    account_id        bigint CONSTRAINT sales_order_account_id_fkey REFERENCES crm.account (id),
    contact_id        bigint CONSTRAINT sales_order_contact_id_fkey REFERENCES crm.contact (id) ON DELETE SET NULL,
    status            crm.order_status NOT NULL DEFAULT 'Draft',
    subtotal          numeric(16,2) NOT NULL DEFAULT 0
                      CONSTRAINT sales_order_subtotal_not_nan CHECK (subtotal OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    discount_amount   numeric(16,2) NOT NULL DEFAULT 0
                      CONSTRAINT sales_order_discount_amount_not_nan CHECK (discount_amount OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    tax               numeric(16,2) NOT NULL DEFAULT 0
                      CONSTRAINT sales_order_tax_not_nan CHECK (tax OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    total             numeric(16,2) NOT NULL DEFAULT 0
                      CONSTRAINT sales_order_total_not_nan CHECK (total OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    shipping_status   text NOT NULL DEFAULT 'Not Shipped'
                      CONSTRAINT sales_order_shipping_status_valid CHECK (shipping_status OPERATOR(pg_catalog.=) ANY
                        (ARRAY['Not Shipped', 'Preparing', 'In Transit', 'Delivered', 'Returned', 'Lost'])),
    carrier           text,
    tracking_number   text,
    shipping_address  text,
    activated_at      timestamptz,
    activated_by      regrole,
    shipped_at        timestamptz,
    delivered_at      timestamptz,
    completed_at      timestamptz,
    cancelled_at      timestamptz,
    cancelled_by      regrole,
    cancel_reason     text,
    owner             regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT sales_order_activation_record CHECK (
        (activated_at IS NULL) = (activated_by IS NULL)
        AND (status OPERATOR(pg_catalog.=) ANY (ARRAY['Draft', 'Cancelled']::crm.order_status[]) OR activated_at IS NOT NULL)),
    CONSTRAINT sales_order_cancellation_record CHECK (
        (status OPERATOR(pg_catalog.=) 'Cancelled'::crm.order_status) = (cancelled_at IS NOT NULL AND cancelled_by IS NOT NULL))
);
COMMENT ON TABLE crm.sales_order IS 'Sales orders made from accepted quotes, with fulfilment status, shipping and the activation record';
COMMENT ON COLUMN crm.sales_order.id IS 'Order id, assigned by the database';
COMMENT ON COLUMN crm.sales_order.order_number IS 'Order number shown to the customer (SO-<id> unless given)';
COMMENT ON COLUMN crm.sales_order.quote_id IS 'The accepted quote the order was made from (one order per quote)';
COMMENT ON COLUMN crm.sales_order.opportunity_id IS 'The opportunity of that quote';
COMMENT ON COLUMN crm.sales_order.account_id IS 'Customer account';
COMMENT ON COLUMN crm.sales_order.contact_id IS 'Customer contact';
COMMENT ON COLUMN crm.sales_order.status IS 'Draft, Activated, Shipped, Delivered, Completed or Cancelled; only legal changes (crm_internal.order_transition) are accepted';
COMMENT ON COLUMN crm.sales_order.subtotal IS 'Sum of the item totals (copied from the quote)';
COMMENT ON COLUMN crm.sales_order.discount_amount IS 'Discount on the subtotal (copied from the quote)';
COMMENT ON COLUMN crm.sales_order.tax IS 'Tax (copied from the quote)';
COMMENT ON COLUMN crm.sales_order.total IS 'Amount to invoice: subtotal - discount_amount + tax';
COMMENT ON COLUMN crm.sales_order.shipping_status IS 'Logistics state: Not Shipped, Preparing, In Transit, Delivered, Returned or Lost';
COMMENT ON COLUMN crm.sales_order.carrier IS 'Shipping carrier';
COMMENT ON COLUMN crm.sales_order.tracking_number IS 'Carrier tracking number';
COMMENT ON COLUMN crm.sales_order.shipping_address IS 'Where the goods go';
COMMENT ON COLUMN crm.sales_order.activated_at IS 'When the order was activated (stock reserved); set by crm.activate_order()';
COMMENT ON COLUMN crm.sales_order.activated_by IS 'Role that activated the order: the approval record of the activation';
COMMENT ON COLUMN crm.sales_order.shipped_at IS 'When the order became Shipped; set by the database';
COMMENT ON COLUMN crm.sales_order.delivered_at IS 'When the order became Delivered; set by the database';
COMMENT ON COLUMN crm.sales_order.completed_at IS 'When the order became Completed; set by the database';
COMMENT ON COLUMN crm.sales_order.cancelled_at IS 'When the order was cancelled; set by crm.cancel_order()';
COMMENT ON COLUMN crm.sales_order.cancelled_by IS 'Role that cancelled the order';
COMMENT ON COLUMN crm.sales_order.cancel_reason IS 'Why it was cancelled';
COMMENT ON COLUMN crm.sales_order.owner IS 'CRM user (database role) who owns the order';
COMMENT ON COLUMN crm.sales_order.created_at IS 'When the order was created; set by the database';
COMMENT ON COLUMN crm.sales_order.updated_at IS 'When the order was last changed; set by the database';
CREATE INDEX sales_order_opportunity_id_idx ON crm.sales_order (opportunity_id);
CREATE INDEX sales_order_account_id_idx ON crm.sales_order (account_id);
CREATE INDEX sales_order_status_idx ON crm.sales_order (status);
CREATE INDEX sales_order_contact_id_idx ON crm.sales_order (contact_id) WHERE contact_id IS NOT NULL;
COMMENT ON INDEX crm.sales_order_contact_id_idx IS 'Orders by contact: deleting a contact clears it from its orders without reading every order';

CREATE TABLE crm.sales_order_item (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id     bigint NOT NULL CONSTRAINT sales_order_item_order_id_fkey
                 REFERENCES crm.sales_order (id) ON DELETE CASCADE,
    product_id   bigint NOT NULL CONSTRAINT sales_order_item_product_id_fkey REFERENCES crm.product (id),
    description  text,
    quantity     numeric(12,2) NOT NULL
                 CONSTRAINT sales_order_item_quantity_positive CHECK (quantity OPERATOR(pg_catalog.>) 0
                     AND quantity OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    unit_price   numeric(14,2) NOT NULL
                 CONSTRAINT sales_order_item_unit_price_not_negative CHECK (unit_price OPERATOR(pg_catalog.>=) 0
                     AND unit_price OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    discount     numeric(5,2) NOT NULL DEFAULT 0
                 CONSTRAINT sales_order_item_discount_range CHECK (discount BETWEEN 0 AND 100),
    total        numeric(16,2) GENERATED ALWAYS AS
                 (pg_catalog.round(quantity OPERATOR(pg_catalog.*) unit_price
                    OPERATOR(pg_catalog.*) (100 OPERATOR(pg_catalog.-) discount) OPERATOR(pg_catalog./) 100, 2)) STORED,
    sort_order   integer NOT NULL DEFAULT 0,
    reserved_quantity numeric(12,2) NOT NULL DEFAULT 0
                 CONSTRAINT sales_order_item_reserved_quantity_not_nan CHECK (reserved_quantity OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    owner        regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE crm.sales_order_item IS 'Products on a sales order, copied from the accepted quote by crm.create_order(); they do not change afterwards';
COMMENT ON COLUMN crm.sales_order_item.id IS 'Item id, assigned by the database';
COMMENT ON COLUMN crm.sales_order_item.order_id IS 'The order';
COMMENT ON COLUMN crm.sales_order_item.product_id IS 'The product';
COMMENT ON COLUMN crm.sales_order_item.description IS 'Item description';
COMMENT ON COLUMN crm.sales_order_item.quantity IS 'Quantity ordered, > 0; reserved from inventory on activation';
COMMENT ON COLUMN crm.sales_order_item.unit_price IS 'Sales price of one unit';
COMMENT ON COLUMN crm.sales_order_item.discount IS 'Item discount in percent, 0-100';
COMMENT ON COLUMN crm.sales_order_item.total IS 'quantity x unit_price x (1 - discount/100), rounded to cents; computed by the database';
COMMENT ON COLUMN crm.sales_order_item.sort_order IS 'Display order of the item';
COMMENT ON COLUMN crm.sales_order_item.reserved_quantity IS 'Units taken from inventory for this item by activation (0 for untracked products and inactive orders); exactly this is returned on cancellation';
COMMENT ON COLUMN crm.sales_order_item.owner IS 'CRM user (database role) who added the item';
COMMENT ON COLUMN crm.sales_order_item.created_at IS 'When the item was added; set by the database';
COMMENT ON COLUMN crm.sales_order_item.updated_at IS 'When the item was last changed; set by the database';
CREATE INDEX sales_order_item_order_id_idx ON crm.sales_order_item (order_id);
CREATE INDEX sales_order_item_product_id_idx ON crm.sales_order_item (product_id);

CREATE FUNCTION crm_internal.sales_order_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_sales_order_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.sales_order_guard() IS 'BEFORE row trigger on crm.sales_order: orders are made only by crm.create_order(), status moves only along crm_internal.order_transition (activation and cancellation only through their functions), amounts and the activation and cancellation records are the database''s, shipped/delivered/completed times are stamped, and only Draft or Cancelled orders can be deleted';
CREATE TRIGGER sales_order_guard BEFORE INSERT OR UPDATE OR DELETE ON crm.sales_order
    FOR EACH ROW EXECUTE FUNCTION crm_internal.sales_order_guard();

CREATE FUNCTION crm_internal.sales_order_item_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_sales_order_item_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.sales_order_item_guard() IS 'BEFORE row trigger on crm.sales_order_item: items are written only by crm.create_order() (reserved_quantity by activation and cancellation) and deleted only with their order';
CREATE TRIGGER sales_order_item_guard BEFORE INSERT OR UPDATE OR DELETE ON crm.sales_order_item
    FOR EACH ROW EXECUTE FUNCTION crm_internal.sales_order_item_guard();


CREATE FUNCTION crm.create_order(quote_id bigint, order_number text DEFAULT NULL)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'crm_create_order'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.create_order(bigint, text) IS 'Creates a Draft sales order with its items from an Accepted quote (one order per quote); order_number defaults to SO-<id>; returns the order id';

CREATE FUNCTION crm.activate_order(order_id bigint)
    RETURNS crm.order_status
    AS 'MODULE_PATHNAME', 'crm_activate_order'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.activate_order(bigint) IS 'Activates a Draft order and reserves its stock: all tracked products are locked in id order and decreased, or, if any lacks stock, nothing changes and the error lists what is missing; records activated_at/by';

CREATE FUNCTION crm.cancel_order(order_id bigint, reason text DEFAULT NULL)
    RETURNS crm.order_status
    AS 'MODULE_PATHNAME', 'crm_cancel_order'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.cancel_order(bigint, text) IS 'Cancels a Draft or Activated order; an Activated order''s reserved stock is returned; records cancelled_at/by and the reason, once: an order already Cancelled is refused and its record stays';
