-- line_items: products on an opportunity, priced from its price book; the
-- opportunity amount is kept equal to the sum of its line totals.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;
\set VERBOSITY terse

INSERT INTO crm.product (code, name, list_price) VALUES ('WID-1', 'Widget', 100), ('GAD-1', 'Gadget', 250), ('OLD-1', 'Legacy', 10);
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price) SELECT 1, id, list_price FROM crm.product;
INSERT INTO crm.price_book (name, currency) VALUES ('Partner', 'USD');
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price) SELECT 2, id, 80 FROM crm.product WHERE code = 'WID-1';
INSERT INTO crm.account (name) VALUES ('Acme');
INSERT INTO crm.opportunity (name, account_id, amount) VALUES ('Acme rollout', 1, 999), ('Partner deal', 1, 0);

-- The first line: the opportunity adopts the standard price book, the unit
-- price defaults to the book's price, the total is computed, and the amount
-- becomes the sum of the lines.
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (1, 1, 3);
SELECT price_book_id, amount FROM crm.opportunity WHERE id = 1;
-- An explicit unit price and a discount.
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity, unit_price, discount)
VALUES (1, 2, 2, 240, 12.5);
SELECT product_id, quantity, unit_price, discount, total FROM crm.opportunity_line_item ORDER BY id;
SELECT amount FROM crm.opportunity WHERE id = 1;

-- Every write path keeps the sum: UPDATE, DELETE, COPY, multi-row statements.
UPDATE crm.opportunity_line_item SET quantity = quantity + 1;
SELECT amount FROM crm.opportunity WHERE id = 1;
DELETE FROM crm.opportunity_line_item WHERE product_id = 2;
SELECT amount FROM crm.opportunity WHERE id = 1;
COPY crm.opportunity_line_item (opportunity_id, product_id, quantity) FROM stdin;
1	2	1
1	1	10
\.
SELECT amount, (SELECT sum(total) FROM crm.opportunity_line_item WHERE opportunity_id = 1) AS lines FROM crm.opportunity WHERE id = 1;
-- Moving a line to another opportunity updates both.
UPDATE crm.opportunity SET price_book_id = 1 WHERE id = 2;
UPDATE crm.opportunity_line_item SET opportunity_id = 2 WHERE product_id = 2;
SELECT id, amount FROM crm.opportunity ORDER BY id;
-- A rolled-back savepoint leaves the sum as it was.
BEGIN;
SAVEPOINT s;
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (1, 1, 100);
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT amount FROM crm.opportunity WHERE id = 1;

-- With line items, the amount cannot be set by hand (ZC105) and the price
-- book cannot change (ZC104).
UPDATE crm.opportunity SET amount = 1 WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.opportunity SET price_book_id = 2 WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
-- Without line items both are free again; deleting all lines zeroes the amount.
DELETE FROM crm.opportunity_line_item WHERE opportunity_id = 1;
SELECT amount FROM crm.opportunity WHERE id = 1;
UPDATE crm.opportunity SET amount = 5000, price_book_id = 2 WHERE id = 1;
SELECT amount, price_book_id FROM crm.opportunity WHERE id = 1;

-- A product must have an active price in the opportunity's book (ZC102) and
-- be active itself.
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (1, 2, 1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (1, 1, 1);
SELECT unit_price FROM crm.opportunity_line_item WHERE opportunity_id = 1;
UPDATE crm.product SET active = false WHERE code = 'OLD-1';
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (2, 3, 1);
\echo :LAST_ERROR_SQLSTATE
-- An inactive price book cannot be chosen.
INSERT INTO crm.price_book (name, active) VALUES ('Retired', false);
INSERT INTO crm.opportunity (name, account_id, price_book_id) VALUES ('Old deal', 1, 3);
\echo :LAST_ERROR_SQLSTATE

-- Quantities > 0, discounts 0-100.
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (1, 1, 0);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity, discount) VALUES (1, 1, 1, 101);
\echo :LAST_ERROR_SQLSTATE
-- The total is computed, not supplied.
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity, total) VALUES (1, 1, 1, 5);
\echo :LAST_ERROR_SQLSTATE

-- The amount change is recorded as made by the role that changed the lines,
-- though the sum is written with the extension owner's rights.
DROP ROLE IF EXISTS regress_li_rep;
CREATE ROLE regress_li_rep IN ROLE crm_sales;
UPDATE crm.opportunity SET owner = 'regress_li_rep' WHERE id = 1;  -- the rep's own deal
SET ROLE regress_li_rep;
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (1, 1, 2);
RESET ROLE;
SELECT new_amount, changed_by FROM crm.opportunity_history WHERE opportunity_id = 1 ORDER BY id DESC LIMIT 1;
SELECT changed_by FROM crm.change_log WHERE table_name = 'crm.opportunity'::regclass ORDER BY id DESC LIMIT 1;
DELETE FROM crm.opportunity_line_item WHERE owner = 'regress_li_rep'::regrole;
DROP ROLE regress_li_rep;

-- Deleting an opportunity deletes its lines.
DELETE FROM crm.opportunity WHERE id = 2;
SELECT count(*) AS orphan_lines FROM crm.opportunity_line_item WHERE opportunity_id = 2;

-- A failed sum leaves no permit behind: when the owner's update of the sums
-- fails (here the amount overflows numeric(16,2)) and a PL/pgSQL block
-- catches the error, the rollback of its subtransaction withdraws the
-- line-sum permit, and the amount still cannot be written by hand (ZC105).
INSERT INTO crm.product (code, name, list_price) VALUES ('BIG-1', 'Mainframe', 999999999999);
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price)
SELECT 1, id, list_price FROM crm.product WHERE code = 'BIG-1';
INSERT INTO crm.opportunity (name, account_id) VALUES ('Huge deal', 1);
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity)
SELECT o.id, p.id, 60 FROM crm.opportunity o, crm.product p WHERE o.name = 'Huge deal' AND p.code = 'BIG-1';
DO $$
BEGIN
    BEGIN
        INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity)
        SELECT o.id, p.id, 60 FROM crm.opportunity o, crm.product p WHERE o.name = 'Huge deal' AND p.code = 'BIG-1';
    EXCEPTION WHEN numeric_value_out_of_range THEN
        RAISE NOTICE 'sum failed: %', SQLSTATE;
    END;
    UPDATE crm.opportunity SET amount = 1 WHERE name = 'Huge deal';
END
$$;
\echo :LAST_ERROR_SQLSTATE
SELECT amount FROM crm.opportunity WHERE name = 'Huge deal';
