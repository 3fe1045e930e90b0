-- quote_validity: quotes are numbered Q-000001, ... by the database (the
-- number never changes); a quote's valid_until is a finite date and is
-- enforced: past it (before CURRENT_DATE in the session's TimeZone) the
-- quote cannot be presented, accepted or turned into an order (ZC209);
-- crm.expire_quotes() marks the open quotes past their date Expired, and an
-- Expired quote is revised by setting it back to Draft with a later date.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_qv_rep, regress_qv_boss, regress_qv_admin;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_qv_rep IN ROLE crm_sales;
CREATE ROLE regress_qv_boss IN ROLE crm_manager;
CREATE ROLE regress_qv_admin IN ROLE crm_admin;
INSERT INTO crm.account (name) VALUES ('Acme');
INSERT INTO crm.opportunity (name, account_id, owner) VALUES ('Deal', 1, 'regress_qv_rep');

-- Numbers: in sequence, for create_quote and a plain INSERT alike.
SET ROLE regress_qv_rep;
SELECT crm.create_quote(1) AS q1 \gset
SELECT crm.create_quote(1, valid_until => current_date + 5) AS q2 \gset
INSERT INTO crm.quote (opportunity_id, name, account_id) VALUES (1, 'By hand', 1) RETURNING quote_number;
SELECT id, quote_number FROM crm.quote ORDER BY id;
-- A number cannot be given (ZC022) ...
INSERT INTO crm.quote (opportunity_id, name, quote_number) VALUES (1, 'Mine', 'Q-999999');
\echo :LAST_ERROR_SQLSTATE
-- ... nor changed, not even on a Draft (ZC022), nor by the superuser.
UPDATE crm.quote SET quote_number = 'Q-000042' WHERE id = :q1;
\echo :LAST_ERROR_SQLSTATE
-- The rep has no right on the number sequence (42501).
SELECT nextval('crm.quote_number_seq');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
UPDATE crm.quote SET quote_number = 'Q-000042' WHERE id = :q1;
\echo :LAST_ERROR_SQLSTATE

-- Dates must be finite (23514); NULL means no end.
UPDATE crm.quote SET valid_until = 'infinity' WHERE id = :q1;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.quote SET valid_until = '-infinity' WHERE id = :q1;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.create_quote(1, valid_until => 'infinity');
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.price_book SET valid_to = 'infinity' WHERE is_standard;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.price_book SET valid_from = '-infinity' WHERE is_standard;
\echo :LAST_ERROR_SQLSTATE

-- (The messages name the date: only the SQLSTATEs are shown from here.)
\set VERBOSITY sqlstate
-- A Draft past its date cannot be presented (ZC209).
SET ROLE regress_qv_rep;
UPDATE crm.quote SET valid_until = current_date - 1 WHERE id = :q1;
UPDATE crm.quote SET status = 'Presented' WHERE id = :q1;
\echo :LAST_ERROR_SQLSTATE
-- Valid through the whole of its last day.
UPDATE crm.quote SET valid_until = current_date WHERE id = :q1;
UPDATE crm.quote SET status = 'Presented' WHERE id = :q1;
SELECT status FROM crm.quote WHERE id = :q1;
RESET ROLE;

-- A Presented quote past its date (as if days went by: set with the guards
-- off) cannot be accepted (ZC209).
SET session_replication_role = replica;
UPDATE crm.quote SET valid_until = current_date - 1 WHERE id = :q1;
SET session_replication_role = DEFAULT;
SET ROLE regress_qv_rep;
UPDATE crm.quote SET status = 'Accepted' WHERE id = :q1;
\echo :LAST_ERROR_SQLSTATE
-- A quote not past its date cannot be set Expired by hand (ZC020).
UPDATE crm.quote SET status = 'Expired' WHERE id = :q2;
\echo :LAST_ERROR_SQLSTATE
-- crm.expire_quotes() is an admin's (42501).
SELECT crm.expire_quotes();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- An Accepted quote whose date has since passed does not become an order (ZC209).
SET ROLE regress_qv_rep;
UPDATE crm.quote SET status = 'Presented' WHERE id = :q2;
UPDATE crm.quote SET status = 'Accepted' WHERE id = :q2;
RESET ROLE;
SET session_replication_role = replica;
UPDATE crm.quote SET valid_until = current_date - 1 WHERE id = :q2;
SET session_replication_role = DEFAULT;
SET ROLE regress_qv_rep;
SELECT crm.create_order(:q2);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- expire_quotes: every open quote past its date, and only those; the count;
-- idempotent.  The Accepted one stays Accepted; the third (no date) stays.
SET ROLE regress_qv_admin;
SELECT crm.expire_quotes();
SELECT crm.expire_quotes();
RESET ROLE;
SELECT quote_number, status, valid_until < current_date AS past FROM crm.quote ORDER BY id;

-- An Expired quote is frozen (ZC022), cannot be presented (ZC020), and is
-- revised back to Draft only with a later valid_until (ZC209, then allowed).
SET ROLE regress_qv_rep;
UPDATE crm.quote SET discount = 5 WHERE id = :q1;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.quote SET status = 'Presented' WHERE id = :q1;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.quote SET status = 'Draft' WHERE id = :q1;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.quote SET status = 'Draft', valid_until = current_date + 30 WHERE id = :q1;
SELECT status, valid_until = current_date + 30 AS renewed FROM crm.quote WHERE id = :q1;
RESET ROLE;
-- Expiry is the database's rule, not rows of crm_internal.quote_transition: an
-- Accepted quote past its date does not become Expired (ZC020).
SET ROLE regress_qv_rep;
UPDATE crm.quote SET status = 'Expired' WHERE id = :q2;
RESET ROLE;
SELECT count(*) FROM crm_internal.quote_transition WHERE 'Expired' IN (from_status, to_status);
\set VERBOSITY terse
-- The quote document: one row per quote, what a printed quote needs.
UPDATE crm.settings SET seller_name = 'Seller Ltd', seller_address = E'1 Main St\n10115 Berlin';
UPDATE crm.account SET street = '5 Elm Rd', postal_code = '94107', city = 'San Francisco', region = 'CA', country = 'USA';
INSERT INTO crm.contact (name, email, account_id, owner) VALUES ('Ann Buyer', 'ann@acme.example', 1, 'regress_qv_rep');
INSERT INTO crm.product (code, name, list_price) VALUES ('WID-1', 'Widget', 100), ('GAD-2', 'Gadget', 40);
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price)
SELECT 1, id, list_price FROM crm.product;
SET ROLE regress_qv_rep;
UPDATE crm.quote SET contact_id = 1, discount = 5, tax_rate = 10, description = 'Net 30' WHERE id = :q1;
INSERT INTO crm.quote_line_item (quote_id, product_id, quantity, discount, sort_order) VALUES
    (:q1, 2, 3, 0, 2), (:q1, 1, 2, 10, 1);
SELECT quote_number, name, status, quote_date = current_date AS today, valid_until = current_date + 30 AS valid,
       seller_name, seller_address, customer_name, customer_address, contact_name, contact_email, currency,
       jsonb_pretty(lines) AS lines, subtotal, discount, discount_amount, tax_rate, tax, total, terms
  FROM crm.quote_document WHERE quote_id = :q1;
-- A quote without lines has an empty array.
SELECT lines FROM crm.quote_document WHERE quote_id = :q2;
RESET ROLE;
-- Analysts do not read the documents (they hold names and addresses).
SET ROLE crm_analyst;
SELECT count(*) FROM crm.quote_document;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
