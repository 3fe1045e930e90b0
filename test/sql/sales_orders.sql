-- sales_orders: an Accepted quote becomes one Draft order; activation
-- reserves stock atomically (all or nothing), cancellation returns it; the
-- status moves only along crm_internal.order_transition; the order's copy of the
-- quote, its items and its activation record are the database's.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;
\set VERBOSITY terse

INSERT INTO crm.product (code, name, list_price, inventory, track_inventory) VALUES
    ('WID-1', 'Widget', 100, 10, true), ('GAD-1', 'Gadget', 250, 3, true), ('SUP-1', 'Support', 500, 0, false);
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price) SELECT 1, id, list_price FROM crm.product;
INSERT INTO crm.account (name) VALUES ('Acme');
INSERT INTO crm.opportunity (name, account_id) VALUES ('Deal', 1);
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (1, 1, 4), (1, 2, 2), (1, 3, 1);
SELECT crm.create_quote(1, tax_rate => 10) AS q1 \gset
SELECT crm.create_quote(1) AS q2 \gset

-- Only an Accepted quote becomes an order (ZC302).
SELECT crm.create_order(:q1);
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.quote SET status = 'Presented' WHERE id = :q1;
UPDATE crm.quote SET status = 'Accepted' WHERE id = :q1;
SELECT crm.create_order(:q1) AS o1 \gset
-- The order copies the quote: amounts and items; it starts as Draft.
SELECT order_number, status, shipping_status, subtotal, tax, total,
       total = (SELECT total FROM crm.quote WHERE id = :q1) AS same_total
  FROM crm.sales_order WHERE id = :o1;
SELECT product_id, quantity, unit_price, total FROM crm.sales_order_item WHERE order_id = :o1 ORDER BY id;
-- One order per quote (ZC303); unknown quotes (ZC201).
SELECT crm.create_order(:q1);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.create_order(999);
\echo :LAST_ERROR_SQLSTATE
-- Orders and items are made only by create_order; items never change.
INSERT INTO crm.sales_order (order_number, quote_id, opportunity_id) VALUES ('X-1', :q2, 1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.sales_order_item (order_id, product_id, quantity, unit_price) VALUES (:o1, 1, 1, 1);
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.sales_order_item SET quantity = 1 WHERE order_id = :o1;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM crm.sales_order_item WHERE order_id = :o1;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.sales_order SET total = 1 WHERE id = :o1;
\echo :LAST_ERROR_SQLSTATE

-- Status changes: Activated only through activate_order (ZC021), no skipping (ZC020).
UPDATE crm.sales_order SET status = 'Activated' WHERE id = :o1;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.sales_order SET status = 'Shipped' WHERE id = :o1;
\echo :LAST_ERROR_SQLSTATE

-- Activation reserves the tracked products' stock (not the support plan's),
-- and records who activated it.
SELECT crm.activate_order(:o1);
SELECT code, inventory FROM crm.product ORDER BY id;
SELECT status, activated_by = current_user::regrole AS by_me, activated_at IS NOT NULL AS stamped
  FROM crm.sales_order WHERE id = :o1;
SELECT crm.activate_order(:o1);
\echo :LAST_ERROR_SQLSTATE

-- Not enough stock: the error says what is missing and nothing changes (ZC304).
UPDATE crm.quote SET status = 'Presented' WHERE id = :q2;
UPDATE crm.quote SET status = 'Accepted' WHERE id = :q2;
SELECT crm.create_order(:q2) AS o2 \gset
\set VERBOSITY default
SELECT crm.activate_order(:o2);
\set VERBOSITY terse
\echo :LAST_ERROR_SQLSTATE
SELECT code, inventory FROM crm.product ORDER BY id;
SELECT status FROM crm.sales_order WHERE id = :o2;

-- Fulfilment: shipping details are the user's; the times are stamped.
UPDATE crm.sales_order SET status = 'Shipped', shipping_status = 'In Transit', carrier = 'UPS',
       tracking_number = '1Z999AA10123456784', shipped_at = '2001-01-01' WHERE id = :o1;
SELECT status, shipping_status, tracking_number, shipped_at > '2020-01-01' AS stamped FROM crm.sales_order WHERE id = :o1;
UPDATE crm.sales_order SET shipping_status = 'Teleported' WHERE id = :o1;
\echo :LAST_ERROR_SQLSTATE
-- A shipped order is not cancelled, nor deleted.
SELECT crm.cancel_order(:o1, 'changed mind');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM crm.sales_order WHERE id = :o1;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.sales_order SET status = 'Delivered', shipping_status = 'Delivered' WHERE id = :o1;
UPDATE crm.sales_order SET status = 'Completed' WHERE id = :o1;
SELECT status, delivered_at IS NOT NULL AS delivered, completed_at IS NOT NULL AS completed FROM crm.sales_order WHERE id = :o1;

-- Cancelling an Activated order returns its stock.
UPDATE crm.product SET inventory = 100 WHERE code = 'GAD-1';
SELECT crm.activate_order(:o2);
SELECT code, inventory FROM crm.product ORDER BY id;
SELECT crm.cancel_order(:o2, 'customer withdrew');
SELECT code, inventory FROM crm.product ORDER BY id;
SELECT status, cancel_reason, cancelled_by = current_user::regrole AS by_me FROM crm.sales_order WHERE id = :o2;
-- A Cancelled order is not cancelled again (ZC020): the cancellation record
-- (who, when, why) stays, and the error's detail says when and by whom.
SELECT cancelled_at AS o2_cancelled_at FROM crm.sales_order WHERE id = :o2 \gset
SELECT crm.cancel_order(:o2, 'overwritten');
\echo :LAST_ERROR_SQLSTATE
SELECT status, cancel_reason, cancelled_at = :'o2_cancelled_at' AS same_time,
       cancelled_by = current_user::regrole AS by_me FROM crm.sales_order WHERE id = :o2;
CREATE TEMP TABLE cancelled_order AS SELECT :o2::bigint AS id;
DO $$
DECLARE
    o record;
    detail text;
BEGIN
    SELECT s.id, s.cancelled_at, s.cancelled_by INTO o FROM crm.sales_order AS s JOIN cancelled_order USING (id);
    PERFORM crm.cancel_order(o.id, 'again');
EXCEPTION WHEN SQLSTATE 'ZC020' THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RAISE NOTICE 'detail names the time: %, the role: %',
        strpos(detail, o.cancelled_at::text) > 0, strpos(detail, o.cancelled_by::text) > 0;
END
$$;
-- What is returned is what was reserved, even if a product's tracking
-- changed in between.
SELECT crm.create_quote(1) AS q3 \gset
UPDATE crm.quote SET status = 'Presented' WHERE id = :q3;
UPDATE crm.quote SET status = 'Accepted' WHERE id = :q3;
SELECT crm.create_order(:q3) AS o3 \gset
SELECT crm.activate_order(:o3);
SELECT code, inventory FROM crm.product ORDER BY id;
SELECT product_id, quantity, reserved_quantity FROM crm.sales_order_item WHERE order_id = :o3 ORDER BY id;
UPDATE crm.product SET track_inventory = false WHERE code = 'WID-1';
SELECT crm.cancel_order(:o3);
UPDATE crm.product SET track_inventory = true WHERE code = 'WID-1';
-- (nobody else touches reserved_quantity)
UPDATE crm.sales_order_item SET reserved_quantity = 0 WHERE order_id = :o1;
\echo :LAST_ERROR_SQLSTATE
SELECT code, inventory FROM crm.product ORDER BY id;
-- Cancelled orders may be deleted, with their items.
DELETE FROM crm.sales_order WHERE id = :o2;
SELECT count(*) AS items_left FROM crm.sales_order_item WHERE order_id = :o2;
-- Unknown orders (ZC301).
SELECT crm.activate_order(999);
\echo :LAST_ERROR_SQLSTATE
