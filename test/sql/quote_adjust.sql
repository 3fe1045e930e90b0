-- quote_adjust: an approver may lower (never raise) a quote's discount as
-- part of approving: crm.approve_quote(quote_id, comment, discount => d).
-- The amounts follow exactly as on an edit; the approval record keeps the
-- old and the new discount; outside approve_quote a quote in review stays
-- frozen.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_qa_rep, regress_qa_boss;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_qa_rep IN ROLE crm_sales;
CREATE ROLE regress_qa_boss IN ROLE crm_manager;
INSERT INTO crm.reporting_line (member, manager) VALUES ('regress_qa_rep', 'regress_qa_boss');
INSERT INTO crm.account (name) VALUES ('Acme');
INSERT INTO crm.opportunity (name, account_id, owner) VALUES ('Deal', 1, 'regress_qa_rep');
INSERT INTO crm.product (code, name, list_price) VALUES ('WID-1', 'Widget', 333.33);
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price) VALUES (1, 1, 333.33);

SET ROLE regress_qa_rep;
SELECT crm.create_quote(1, discount => 25, tax_rate => 8.25) AS q \gset
INSERT INTO crm.quote_line_item (quote_id, product_id, quantity) VALUES (:q, 1, 3);
SELECT crm.submit_quote(:q, 'customer asks 25%');
-- In review the rep cannot change the discount (ZC022).
UPDATE crm.quote SET discount = 20 WHERE id = :q;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

SET ROLE regress_qa_boss;
-- Raising is refused (ZC210), and nothing changes.
SELECT crm.approve_quote(:q, 'more?', discount => 30);
\echo :LAST_ERROR_SQLSTATE
-- Out of range or NaN: refused.
SELECT crm.approve_quote(:q, 'negative', discount => -1);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.approve_quote(:q, 'nan', discount => 'NaN');
\echo :LAST_ERROR_SQLSTATE
SELECT status, discount FROM crm.quote WHERE id = :q;
-- Lowering to 15% while approving.
SELECT crm.approve_quote(:q, 'ok at 15%', discount => 15);
RESET ROLE;
-- The amounts are those an edit to 15% gives.
SELECT status, discount, subtotal, discount_amount, tax, total,
       total = subtotal - round(subtotal * 0.15, 2) + round((subtotal - round(subtotal * 0.15, 2)) * 0.0825, 2) AS exact
  FROM crm.quote WHERE id = :q;
SELECT action, comment, old_discount, new_discount, acted_by FROM crm.quote_approval WHERE quote_id = :q ORDER BY id;

-- Approving without a discount keeps it; the record shows it unchanged.
SET ROLE regress_qa_rep;
SELECT crm.create_quote(1, discount => 12) AS q2 \gset
SELECT crm.submit_quote(:q2);
RESET ROLE;
SET ROLE regress_qa_boss;
SELECT crm.approve_quote(:q2, 'fine');
-- The same discount is no raise.
RESET ROLE;
SELECT discount FROM crm.quote WHERE id = :q2;
SELECT action, old_discount, new_discount FROM crm.quote_approval WHERE quote_id = :q2 ORDER BY id;
SET ROLE regress_qa_rep;
SELECT crm.create_quote(1, discount => 12) AS q3 \gset
SELECT crm.submit_quote(:q3);
RESET ROLE;
SET ROLE regress_qa_boss;
SELECT crm.approve_quote(:q3, 'same', discount => 12);
-- Rejections record no discounts.
RESET ROLE;
SET ROLE regress_qa_rep;
SELECT crm.create_quote(1, discount => 40) AS q4 \gset
SELECT crm.submit_quote(:q4);
RESET ROLE;
SET ROLE regress_qa_boss;
SELECT crm.reject_quote(:q4, 'too much');
RESET ROLE;
SELECT action, old_discount, new_discount FROM crm.quote_approval WHERE quote_id IN (:q3, :q4) ORDER BY id;
-- The approved quote is frozen again (ZC022) and may be presented.
SET ROLE regress_qa_rep;
UPDATE crm.quote SET discount = 5 WHERE id = :q;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.quote SET status = 'Presented' WHERE id = :q;
SELECT status FROM crm.quote WHERE id = :q;
RESET ROLE;
