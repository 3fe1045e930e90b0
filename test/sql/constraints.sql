-- constraints: bad data is rejected by the database with a clear error and a
-- standard SQLSTATE (23502 not null, 23503 foreign key, 23514 check, 22P02
-- invalid text for a type).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;
-- Terse errors: the failing row would show timestamps.
\set VERBOSITY terse
INSERT INTO crm.account (name) VALUES ('Hooli');

-- Required names: missing or blank.
INSERT INTO crm.lead (name) VALUES (NULL);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.lead (name) VALUES ('   ');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.account (name) VALUES ('');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.contact (name) VALUES (E'\t');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.opportunity (name, account_id) VALUES (' ', 1);
\echo :LAST_ERROR_SQLSTATE

-- E-mail addresses need a local part, one @ and a dotted domain.
INSERT INTO crm.lead (name, email) VALUES ('Gavin', 'gavin@hooli.example');
INSERT INTO crm.lead (name, email) VALUES ('Gavin', 'gavin.hooli.example');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.lead (name, email) VALUES ('Gavin', 'gavin@hooli');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.contact (name, email) VALUES ('Gavin', 'gavin @hooli.example');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.contact (name, email) VALUES ('Gavin', 'a@b@hooli.example');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.contact (name, email) VALUES ('Gavin', repeat('x', 250) || '@hooli.example');
\echo :LAST_ERROR_SQLSTATE

-- Web addresses: scheme optional, a dotted host, no spaces.
INSERT INTO crm.account (name, website) VALUES ('Pied Piper', 'https://piedpiper.example/about?x=1');
INSERT INTO crm.account (name, website) VALUES ('Raviga', 'raviga.example');
INSERT INTO crm.account (name, website) VALUES ('Bad', 'not a url');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.account (name, website) VALUES ('Bad', 'ftp://files.example');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.lead (name, website) VALUES ('Bad', 'localhost');
\echo :LAST_ERROR_SQLSTATE

-- Phone numbers as people write them, with an optional extension.
INSERT INTO crm.contact (name, phone) VALUES ('Ok 1', '+1 (555) 010-0199'), ('Ok 2', '030/1234567 ext. 12'), ('Ok 3', '555.0100 x7');
INSERT INTO crm.contact (name, phone) VALUES ('Bad', 'call me');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.contact (name, phone) VALUES ('Bad', '12');
\echo :LAST_ERROR_SQLSTATE

-- Status and source come from fixed lists.
INSERT INTO crm.lead (name, status) VALUES ('Bad', 'Hot');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.lead (name, source) VALUES ('Bad', 'carrier pigeon');
\echo :LAST_ERROR_SQLSTATE

-- Amount >= 0, probability 0-100.
INSERT INTO crm.opportunity (name, account_id, amount) VALUES ('Bad', 1, -1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.opportunity (name, account_id, probability) VALUES ('Bad', 1, 101);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.opportunity (name, account_id, probability) VALUES ('Bad', 1, -0.5);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.opportunity (name, account_id, amount, probability) VALUES ('Fine', 1, 0, 100);
-- An opportunity needs an account.
INSERT INTO crm.opportunity (name) VALUES ('Orphan');
\echo :LAST_ERROR_SQLSTATE

-- Stage probabilities are percentages too.
INSERT INTO crm.opportunity_stage (name, sort_order, probability) VALUES ('Bad', 99, 150);
\echo :LAST_ERROR_SQLSTATE

-- The same rules hold for COPY.
COPY crm.lead (name, email) FROM stdin;
Ok Copy	ok@copy.example
Bad Copy	not-an-email
\.
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS copied FROM crm.lead WHERE name LIKE '% Copy';

-- And for UPDATE.
UPDATE crm.lead SET email = 'broken' WHERE name = 'Gavin';
\echo :LAST_ERROR_SQLSTATE
SELECT name, email FROM crm.lead ORDER BY id;

-- NaN: numeric NaN sorts above every number, so "x >= 0" alone lets it
-- through; every stored numeric column refuses it (23514, the column's
-- check).  Infinity does not fit a numeric(p,s) column at all (22003).
INSERT INTO crm.product (code, name, list_price, inventory) VALUES ('NAN-1', 'Widget', 10, 5);
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price)
    SELECT b.id, p.id, 10 FROM crm.price_book b, crm.product p WHERE p.code = 'NAN-1';
INSERT INTO crm.opportunity (name, account_id) VALUES ('NaN deal', 1) RETURNING id AS nan_opp \gset
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity)
    SELECT :nan_opp, id, 1 FROM crm.product WHERE code = 'NAN-1';
SELECT crm.create_quote(:nan_opp) AS nan_draft, crm.create_quote(:nan_opp) AS nan_accepted \gset
UPDATE crm.quote SET status = 'Presented' WHERE id = :nan_accepted;
UPDATE crm.quote SET status = 'Accepted' WHERE id = :nan_accepted;
SELECT crm.create_order(:nan_accepted) AS nan_order \gset
INSERT INTO crm.campaign (name) VALUES ('NaN campaign');
-- Products: list price and stock.
INSERT INTO crm.product (code, name, list_price) VALUES ('NAN-2', 'x', 'NaN');
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.product SET inventory = 'NaN' WHERE code = 'NAN-1';
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.product SET inventory = 'Infinity' WHERE code = 'NAN-1';
\echo :LAST_ERROR_SQLSTATE
-- Price book entries.
UPDATE crm.price_book_entry SET unit_price = 'NaN';
\echo :LAST_ERROR_SQLSTATE
-- Opportunity lines: refused by the line's own check (before the
-- opportunity's amount would be).
UPDATE crm.opportunity_line_item SET quantity = 'NaN';
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.opportunity_line_item SET unit_price = 'NaN';
\echo :LAST_ERROR_SQLSTATE
-- Quote lines (on a Draft quote).
UPDATE crm.quote_line_item SET quantity = 'NaN' WHERE quote_id = :nan_draft;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.quote_line_item SET unit_price = 'NaN' WHERE quote_id = :nan_draft;
\echo :LAST_ERROR_SQLSTATE
-- Campaign costs and expected revenue.
UPDATE crm.campaign SET budgeted_cost = 'NaN';
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.campaign SET actual_cost = 'NaN';
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.campaign SET expected_revenue = 'NaN';
\echo :LAST_ERROR_SQLSTATE
-- The columns the database keeps (quote subtotal, order amounts, order
-- items) are guarded by triggers; with triggers off (replica mode, as when
-- logical replication or a restore writes) the checks still hold.
SET session_replication_role = replica;
UPDATE crm.quote SET subtotal = 'NaN' WHERE id = :nan_draft;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.sales_order SET subtotal = 'NaN' WHERE id = :nan_order;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.sales_order SET discount_amount = 'NaN' WHERE id = :nan_order;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.sales_order SET tax = 'NaN' WHERE id = :nan_order;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.sales_order SET total = 'NaN' WHERE id = :nan_order;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.sales_order_item SET quantity = 'NaN' WHERE order_id = :nan_order;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.sales_order_item SET unit_price = 'NaN' WHERE order_id = :nan_order;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.sales_order_item SET reserved_quantity = 'NaN' WHERE order_id = :nan_order;
\echo :LAST_ERROR_SQLSTATE
RESET session_replication_role;
-- Nothing NaN was stored.
SELECT (SELECT count(*) FROM crm.product WHERE list_price = 'NaN' OR inventory = 'NaN') AS products,
       (SELECT count(*) FROM crm.quote WHERE subtotal = 'NaN') AS quotes,
       (SELECT count(*) FROM crm.sales_order_item WHERE quantity = 'NaN' OR unit_price = 'NaN') AS order_items,
       (SELECT count(*) FROM crm.campaign WHERE budgeted_cost = 'NaN' OR actual_cost = 'NaN') AS campaigns;
