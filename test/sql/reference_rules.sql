-- reference_rules: what a quote or an order may point at, and what deleting
-- the customer does to them.
--   1. a quote or an order names only an account and a contact the writer
--      sees (the sharing rule's check, as for deals); otherwise a rep could
--      pin another rep's contact with a quote its owner cannot see
--   2. deleting a contact clears it from quotes and orders whatever their
--      status (README "Data model", ON DELETE), for its owner, an admin and
--      the superuser alike; clearing it by hand stays refused (ZC022)
-- regress_ref_rep1 is the attacker, regress_ref_rep2 the victim.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_ref_rep1, regress_ref_rep2, regress_ref_admin;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_ref_rep1 IN ROLE crm_sales;
CREATE ROLE regress_ref_rep2 IN ROLE crm_sales;
CREATE ROLE regress_ref_admin IN ROLE crm_admin;

INSERT INTO crm.product (code, name, list_price, inventory) VALUES ('W-1', 'Widget', 100, 10);
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price) VALUES (1, 1, 100);

SET ROLE regress_ref_rep2;
INSERT INTO crm.account (name) VALUES ('Victim Corp');                                   -- account 1
INSERT INTO crm.contact (name, account_id) VALUES ('Vic Victim', 1), ('Val Victim', 1);  -- contacts 1, 2
INSERT INTO crm.opportunity (name, account_id, contact_id) VALUES ('Victim deal', 1, 2);  -- opportunity 1
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (1, 1, 1);
SET ROLE regress_ref_rep1;
INSERT INTO crm.account (name) VALUES ('Attacker Inc');                                  -- account 2
INSERT INTO crm.contact (name, account_id) VALUES ('Ann Attacker', 2);                   -- contact 3
INSERT INTO crm.opportunity (name, account_id) VALUES ('Attacker deal', 2);             -- opportunity 2
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (2, 1, 1);
SELECT crm.create_quote(2) AS aq \gset
RESET ROLE;

-- =====================================================================
-- 1. Only what the writer sees
-- =====================================================================
SET ROLE regress_ref_rep1;
-- The victim's contact on the attacker's quote: refused (42501), by UPDATE
-- and by INSERT; the victim's account too.
UPDATE crm.quote SET contact_id = 1 WHERE id = :aq;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.quote (opportunity_id, name, account_id, contact_id) VALUES (2, 'Pin', 2, 1);
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.quote SET account_id = 1 WHERE id = :aq;
\echo :LAST_ERROR_SQLSTATE
-- Its own contact is fine.
UPDATE crm.quote SET contact_id = 3 WHERE id = :aq;
SELECT id, account_id, contact_id FROM crm.quote WHERE id = :aq;
-- The same on an order: the contact users may edit is one they see.
UPDATE crm.quote SET status = 'Presented' WHERE id = :aq;
UPDATE crm.quote SET status = 'Accepted' WHERE id = :aq;
SELECT crm.create_order(:aq) AS ao \gset
UPDATE crm.sales_order SET contact_id = 1 WHERE id = :ao;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.sales_order SET contact_id = NULL WHERE id = :ao;
UPDATE crm.sales_order SET contact_id = 3 WHERE id = :ao;
SELECT id, account_id, contact_id FROM crm.sales_order WHERE id = :ao;
RESET ROLE;
-- The victim's contacts are named by none of the attacker's rows.
SELECT count(*) AS pinned FROM crm.quote WHERE contact_id IN (1, 2) AND owner = 'regress_ref_rep1'::regrole;
-- An admin may name any contact (admins see every row).
SET ROLE regress_ref_admin;
SELECT crm.create_quote(2, name => 'Admin quote') AS adq \gset
UPDATE crm.quote SET contact_id = 1 WHERE id = :adq;
SELECT id, contact_id FROM crm.quote WHERE id = :adq;
DELETE FROM crm.quote WHERE id = :adq;
RESET ROLE;

-- =====================================================================
-- 2. Deleting a contact clears it from quotes and orders of any status
-- =====================================================================
-- The victim's own Accepted quote and Activated order name contact 2 (from
-- the deal); a Presented quote names it too.
SET ROLE regress_ref_rep2;
SELECT crm.create_quote(1) AS vq1, crm.create_quote(1) AS vq2 \gset
UPDATE crm.quote SET status = 'Presented' WHERE id IN (:vq1, :vq2);
UPDATE crm.quote SET status = 'Accepted' WHERE id = :vq1;
SELECT crm.create_order(:vq1) AS vo \gset
SELECT crm.activate_order(:vo);
-- Clearing or changing the contact by hand is refused once the quote is not
-- Draft (ZC022); the order's contact stays the user's to edit.
UPDATE crm.quote SET contact_id = NULL WHERE id = :vq1;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.quote SET contact_id = 1 WHERE id = :vq2;
\echo :LAST_ERROR_SQLSTATE
-- Deleting the contact clears it everywhere; nothing else changes.
DELETE FROM crm.contact WHERE id = 2;
SELECT id, status, contact_id, account_id, total FROM crm.quote WHERE id IN (:vq1, :vq2) ORDER BY id;
SELECT id, status, contact_id, account_id, total FROM crm.sales_order WHERE id = :vo;
SELECT id, contact_id FROM crm.opportunity WHERE id = 1;
RESET ROLE;
-- Clearing by hand also stays refused for the superuser, while the contact exists.
UPDATE crm.quote SET contact_id = NULL WHERE id = :aq;
\echo :LAST_ERROR_SQLSTATE

-- A quote written before 0.5 may still name a contact its owner cannot
-- see: the attacker's quote on the victim's contact 1, presented and
-- accepted (done here by the superuser, whom row-level security does not
-- stop, as 0.4 let the attacker do).
SET ROLE regress_ref_rep1;
SELECT crm.create_quote(2, name => 'Pinning quote') AS pq \gset
RESET ROLE;
UPDATE crm.quote SET contact_id = 1 WHERE id = :pq;
UPDATE crm.quote SET status = 'Presented' WHERE id = :pq;
UPDATE crm.quote SET status = 'Accepted' WHERE id = :pq;
-- The victim, who cannot see that quote, deletes its contact: it goes, and
-- the hidden quote keeps everything but the contact.
SET ROLE regress_ref_rep2;
DELETE FROM crm.contact WHERE id = 1;
SELECT count(*) AS victim_contacts FROM crm.contact;
RESET ROLE;
SELECT id, status, contact_id, account_id FROM crm.quote WHERE id = :pq;

-- An admin and the superuser delete contacts named by accepted quotes too.
SET ROLE regress_ref_rep1;
INSERT INTO crm.contact (name, account_id) VALUES ('Bea Buyer', 2), ('Cal Buyer', 2);  -- contacts 4, 5
SELECT crm.create_quote(2) AS bq, crm.create_quote(2) AS cq \gset
UPDATE crm.quote SET contact_id = 4 WHERE id = :bq;
UPDATE crm.quote SET contact_id = 5 WHERE id = :cq;
UPDATE crm.quote SET status = 'Presented' WHERE id IN (:bq, :cq);
UPDATE crm.quote SET status = 'Accepted' WHERE id IN (:bq, :cq);
RESET ROLE;
SET ROLE regress_ref_admin;
DELETE FROM crm.contact WHERE id = 4;
RESET ROLE;
DELETE FROM crm.contact WHERE id = 5;
SELECT id, status, contact_id FROM crm.quote WHERE id IN (:bq, :cq) ORDER BY id;

-- Deleting an account with quotes or orders stays refused (23503): the
-- sales history is not thrown away by accident.
DELETE FROM crm.account WHERE id = 2;
\echo :LAST_ERROR_SQLSTATE

-- The change log records each clearing as a change of the quote.
SELECT row_id AS quote_id, changes -> 'contact_id' AS contact_change FROM crm.change_log
 WHERE table_name = 'crm.quote'::regclass AND operation = 'UPDATE'
   AND changes -> 'contact_id' ->> 'new' IS NULL AND changes ? 'contact_id'
 ORDER BY row_id;

DROP EXTENSION crm CASCADE;
DROP ROLE regress_ref_rep1, regress_ref_rep2, regress_ref_admin;
