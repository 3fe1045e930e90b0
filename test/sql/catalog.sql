-- catalog: products and price books.  Exactly one standard price book; a
-- product is priced in the standard book before any other book may price it.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;
\set VERBOSITY terse

-- The standard book comes with the extension.
SELECT id, name, is_standard, currency FROM crm.price_book;

-- Products: unique code, non-negative price and stock.
INSERT INTO crm.product (code, name, family, list_price, inventory) VALUES
    ('WID-1', 'Widget', 'Hardware', 100, 50),
    ('GAD-1', 'Gadget', 'Hardware', 250, 5),
    ('SUP-1', 'Support plan', 'Services', 1200, 0);
UPDATE crm.product SET track_inventory = false WHERE code = 'SUP-1';
INSERT INTO crm.product (code, name) VALUES ('WID-1', 'Widget again');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.product (code, name, inventory) VALUES ('NEG-1', 'Negative', -1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.product (code, name, list_price) VALUES ('NEG-2', 'Negative', -0.01);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.product (code, name) VALUES ('  ', 'Blank code');
\echo :LAST_ERROR_SQLSTATE

-- Price books: ISO currency, a sane validity window.
INSERT INTO crm.price_book (name, currency, valid_from, valid_to) VALUES ('Europe 2027', 'EUR', '2027-01-01', '2027-12-31');
INSERT INTO crm.price_book (name, currency) VALUES ('Bad currency', 'euro');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.price_book (name, valid_from, valid_to) VALUES ('Backwards', '2027-12-31', '2027-01-01');
\echo :LAST_ERROR_SQLSTATE

-- A second standard book is refused (unique), and so is having none at commit.
INSERT INTO crm.price_book (name, is_standard) VALUES ('Another standard', true);
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.price_book SET is_standard = false WHERE name = 'Standard Price Book';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM crm.price_book WHERE is_standard;
\echo :LAST_ERROR_SQLSTATE
-- Switching the standard book in one transaction is fine.
BEGIN;
UPDATE crm.price_book SET is_standard = false WHERE name = 'Standard Price Book';
UPDATE crm.price_book SET is_standard = true WHERE name = 'Europe 2027';
COMMIT;
SELECT name, is_standard FROM crm.price_book ORDER BY id;
BEGIN;
UPDATE crm.price_book SET is_standard = false WHERE name = 'Europe 2027';
UPDATE crm.price_book SET is_standard = true WHERE name = 'Standard Price Book';
COMMIT;
-- The standard book cannot be deactivated.
UPDATE crm.price_book SET active = false WHERE is_standard;
\echo :LAST_ERROR_SQLSTATE

-- Entries: one per book and product, price >= 0; another book only after
-- the standard price exists (ZC101).
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price)
SELECT 2, id, 90 FROM crm.product WHERE code = 'WID-1';
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price)
SELECT 1, id, list_price FROM crm.product;
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price)
SELECT 2, id, 90 FROM crm.product WHERE code = 'WID-1';
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price)
SELECT 2, id, 95 FROM crm.product WHERE code = 'WID-1';
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price)
SELECT 2, id, -1 FROM crm.product WHERE code = 'GAD-1';
\echo :LAST_ERROR_SQLSTATE
SELECT b.name AS book, p.code, e.unit_price FROM crm.price_book_entry e
  JOIN crm.price_book b ON b.id = e.price_book_id JOIN crm.product p ON p.id = e.product_id
 ORDER BY b.id, p.code;

-- The standard price cannot go (deleted, deactivated or moved) while another
-- book prices the product ...
DELETE FROM crm.price_book_entry WHERE price_book_id = 1 AND product_id = (SELECT id FROM crm.product WHERE code = 'WID-1');
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.price_book_entry SET active = false WHERE price_book_id = 1 AND product_id = (SELECT id FROM crm.product WHERE code = 'WID-1');
\echo :LAST_ERROR_SQLSTATE
-- ... but it can once the other entry is gone, and deleting a product takes
-- all its entries with it.
DELETE FROM crm.price_book_entry WHERE price_book_id = 2;
UPDATE crm.price_book_entry SET active = false WHERE price_book_id = 1 AND product_id = (SELECT id FROM crm.product WHERE code = 'WID-1');
INSERT INTO crm.product (code, name) VALUES ('TMP-1', 'Temporary');
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price) SELECT 1, id, 1 FROM crm.product WHERE code = 'TMP-1';
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price) SELECT 2, id, 2 FROM crm.product WHERE code = 'TMP-1';
DELETE FROM crm.product WHERE code = 'TMP-1';
SELECT count(*) AS entries_left FROM crm.price_book_entry WHERE unit_price IN (1, 2);

-- Switching the standard book to one that lacks a product another book
-- prices is refused at commit (ZC101).
INSERT INTO crm.product (code, name) VALUES ('EU-1', 'Euro only');
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price) SELECT 1, id, 5 FROM crm.product WHERE code = 'EU-1';
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price) SELECT 2, id, 4 FROM crm.product WHERE code = 'EU-1';
INSERT INTO crm.price_book (name) VALUES ('Empty new standard');
BEGIN;
UPDATE crm.price_book SET is_standard = false WHERE name = 'Standard Price Book';
UPDATE crm.price_book SET is_standard = true WHERE name = 'Empty new standard';
COMMIT;
\echo :LAST_ERROR_SQLSTATE
SELECT name FROM crm.price_book WHERE is_standard;

-- Sales roles read the catalog but cannot change it; admins can (every
-- column but the id, which the database gives).
SELECT has_table_privilege('crm_sales', 'crm.product', 'SELECT') AS sales_read,
       has_any_column_privilege('crm_sales', 'crm.product', 'UPDATE') AS sales_write,
       has_column_privilege('crm_admin', 'crm.price_book_entry', 'unit_price', 'INSERT') AS admin_write,
       has_column_privilege('crm_admin', 'crm.price_book_entry', 'id', 'INSERT') AS admin_writes_id;

-- Price rules (more in price_rules.sql): an account's default price book
-- must be active (ZC104); quantity tiers are read by everyone and written
-- by admins; a book outside its validity window prices nothing (ZC102).
INSERT INTO crm.price_book (name, active) VALUES ('Retired', false);
INSERT INTO crm.account (name, price_book_id)
SELECT 'Retired customer', id FROM crm.price_book WHERE name = 'Retired';
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.account (name, price_book_id)
SELECT 'Standard customer', id FROM crm.price_book WHERE is_standard RETURNING name;
SELECT has_table_privilege('crm_sales', 'crm.price_book_tier', 'SELECT') AS sales_read_tiers,
       has_any_column_privilege('crm_sales', 'crm.price_book_tier', 'INSERT') AS sales_write_tiers,
       has_column_privilege('crm_admin', 'crm.price_book_tier', 'unit_price', 'INSERT') AS admin_write_tiers;
UPDATE crm.price_book SET valid_to = current_date - 1 WHERE is_standard;
INSERT INTO crm.opportunity (name, account_id)
SELECT 'Priced late', id FROM crm.account WHERE name = 'Standard customer' RETURNING id AS late \gset
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id)
SELECT :late, id FROM crm.product WHERE code = 'EU-1';
\echo :LAST_ERROR_SQLSTATE
