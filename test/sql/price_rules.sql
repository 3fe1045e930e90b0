-- price_rules: a price book prices lines only within its validity window
-- (CURRENT_DATE between valid_from and valid_to, ZC102 with the dates in
-- the detail); an account's default price book prices its new
-- opportunities and quotes; quantity tiers give a line's default unit price
-- (the tier with the highest min_quantity not above the quantity).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_pr_rep, regress_pr_admin;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_pr_rep IN ROLE crm_sales;
CREATE ROLE regress_pr_admin IN ROLE crm_admin;
INSERT INTO crm.product (code, name, list_price) VALUES ('WID-1', 'Widget', 100), ('GAD-2', 'Gadget', 40);
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price) SELECT 1, id, list_price FROM crm.product;
INSERT INTO crm.price_book (name, valid_from, valid_to) VALUES
    ('Old promo', '2020-01-01', '2020-12-31'),
    ('Next year', current_date + 365, NULL),
    ('Key accounts', NULL, NULL);
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price)
SELECT b.id, 1, 90 FROM crm.price_book b WHERE NOT b.is_standard;
INSERT INTO crm.account (name, owner) VALUES ('Acme', 'regress_pr_rep'), ('Globex', 'regress_pr_rep');
-- The SQLSTATE, message and detail of a statement, today's dates masked.
SET DateStyle = ISO;
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text;
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
    RETURN st || ': ' || msg || ' / ' || replace(replace(det, (current_date + 365)::text, '<today+365>'),
                                                 current_date::text, '<today>');
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.try(text) TO PUBLIC;

-- Validity window: a book outside it prices nothing (ZC102, dates in the detail).
SET ROLE regress_pr_rep;
INSERT INTO crm.opportunity (name, account_id, price_book_id) VALUES ('Old', 1, 2), ('Future', 1, 3);
SELECT pg_temp.try('INSERT INTO crm.opportunity_line_item (opportunity_id, product_id) VALUES (1, 1)');
SELECT pg_temp.try('INSERT INTO crm.opportunity_line_item (opportunity_id, product_id) VALUES (2, 1)');
-- A quote line likewise.
SELECT crm.create_quote(1) AS oldq \gset
SELECT pg_temp.try('INSERT INTO crm.quote_line_item (quote_id, product_id, unit_price) VALUES (' || :oldq || ', 1, 5)');
RESET ROLE;
-- Within the window (the last day counts): priced.
UPDATE crm.price_book SET valid_to = current_date WHERE id = 2;
SET ROLE regress_pr_rep;
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id) VALUES (1, 1) RETURNING unit_price;
RESET ROLE;
-- A window that ended refuses new lines, also with a price given, but
-- leaves existing lines alone.
UPDATE crm.price_book SET valid_to = current_date - 1 WHERE id = 2;
SET ROLE regress_pr_rep;
UPDATE crm.opportunity_line_item SET quantity = 2 WHERE opportunity_id = 1;
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, unit_price) VALUES (1, 1, 50);
\echo :LAST_ERROR_SQLSTATE
SELECT quantity, unit_price FROM crm.opportunity_line_item WHERE opportunity_id = 1;
RESET ROLE;

-- An account's default book: must be active when set (ZC104) ...
UPDATE crm.price_book SET active = false WHERE name = 'Next year';
SET ROLE regress_pr_rep;
UPDATE crm.account SET price_book_id = 3 WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.account SET price_book_id = 99 WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
-- ... and then prices the account's new opportunities and quotes.
UPDATE crm.account SET price_book_id = 4 WHERE id = 1;
INSERT INTO crm.opportunity (name, account_id) VALUES ('Acme deal', 1), ('Globex deal', 2);
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id) VALUES (3, 1), (4, 1);
SELECT o.name, o.price_book_id, l.unit_price FROM crm.opportunity o JOIN crm.opportunity_line_item l ON l.opportunity_id = o.id
 WHERE o.id IN (3, 4) ORDER BY o.id;
INSERT INTO crm.opportunity (name, account_id) VALUES ('Acme empty', 1);
SELECT crm.create_quote(5) AS q \gset
SELECT price_book_id FROM crm.quote WHERE id = :q;
-- A quote made directly adopts it at its first line too.
INSERT INTO crm.quote (opportunity_id, name, account_id) VALUES (5, 'Direct', 1) RETURNING id AS q2 \gset
INSERT INTO crm.quote_line_item (quote_id, product_id) VALUES (:q2, 1);
SELECT price_book_id FROM crm.quote WHERE id = :q2;
RESET ROLE;
-- A default book deactivated later is skipped: the standard book prices.
UPDATE crm.price_book SET active = false WHERE name = 'Key accounts';
SET ROLE regress_pr_rep;
INSERT INTO crm.opportunity (name, account_id) VALUES ('Acme later', 1);
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id) VALUES (6, 1);
SELECT price_book_id FROM crm.opportunity WHERE id = 6;
-- Reps cannot change the books or the tiers (42501).
INSERT INTO crm.price_book_tier (price_book_entry_id, min_quantity, unit_price) VALUES (1, 10, 1);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- Quantity tiers of the standard Widget entry: 10+ at 95, 50+ at 90.
SET ROLE regress_pr_admin;
INSERT INTO crm.price_book_tier (price_book_entry_id, min_quantity, unit_price) VALUES (1, 10, 95), (1, 50, 90);
-- One tier per quantity (23505); quantities > 0 and prices >= 0 (23514).
INSERT INTO crm.price_book_tier (price_book_entry_id, min_quantity, unit_price) VALUES (1, 10, 94);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.price_book_tier (price_book_entry_id, min_quantity, unit_price) VALUES (1, 0, 94);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.price_book_tier (price_book_entry_id, min_quantity, unit_price) VALUES (1, 5, -1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.price_book_tier (price_book_entry_id, min_quantity, unit_price) VALUES (1, 5, 'NaN');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.price_book_tier (price_book_entry_id, min_quantity, unit_price) VALUES (999, 5, 1);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE regress_pr_rep;
INSERT INTO crm.opportunity (name, account_id) VALUES ('Tiers', 2);
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES
    (7, 1, 1), (7, 1, 9.99), (7, 1, 10), (7, 1, 49), (7, 1, 50), (7, 1, 500), (7, 2, 100);
SELECT product_id, quantity, unit_price FROM crm.opportunity_line_item WHERE opportunity_id = 7 ORDER BY id;
-- A price given is kept; the tier price is the reference of the approval
-- threshold (5% here): 80 against the 50+ tier's 90 needs approval (ZC205),
-- the tier prices themselves are no discount.
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity, unit_price) VALUES (7, 1, 50, 80);
RESET ROLE;
UPDATE crm.settings SET quote_approval_threshold = 5;
SET ROLE regress_pr_rep;
SELECT crm.create_quote(7) AS tq \gset
UPDATE crm.quote SET status = 'Presented' WHERE id = :tq;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM crm.quote_line_item WHERE quote_id = :tq AND unit_price = 80;
UPDATE crm.quote SET status = 'Presented' WHERE id = :tq;
SELECT status FROM crm.quote WHERE id = :tq;
RESET ROLE;
-- Tiers go with their entry.
INSERT INTO crm.price_book_tier (price_book_entry_id, min_quantity, unit_price)
SELECT id, 10, 85 FROM crm.price_book_entry WHERE price_book_id = 4;
SELECT count(*) FROM crm.price_book_tier;
DELETE FROM crm.price_book_entry WHERE price_book_id = 4;
SELECT count(*) FROM crm.price_book_tier;
