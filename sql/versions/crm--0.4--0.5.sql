-- crm 0.4 -> 0.5: ALTER EXTENSION crm UPDATE TO '0.5'.
-- Every schema change made in sql/install/ since 0.4 is repeated here, so
-- that an updated database has the same objects as a fresh install
-- (test/scripts/upgrade.sh checks it).
--
-- 0.5 closes what a red team with ordinary CRM logins could still do to
-- 0.4 (forged ids, lock squatting, hidden references, unbounded change-log
-- values) and what a fault run found (two-phase commit, maintenance of the
-- aggregate tables, restores without replica mode).

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION crm UPDATE TO '0.5'" to load this file. \quit


-- refs: hidden references, order cancellation, order numbers, sharing index
-- (issue 26 items 5, 6, 10, 14; C changes in quotes.c, orders.c, sharing.c)

-- A quote or an order may name only an account and a contact the caller
-- sees, like a deal (sharing rule): otherwise another rep's contact could be
-- pinned by a quote its owner cannot see.
ALTER POLICY crm_team_insert ON crm.quote
    WITH CHECK (owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))
                AND crm.may_reference_account(account_id) AND crm.may_reference_contact(contact_id)
                AND EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id));
ALTER POLICY crm_team_update ON crm.quote
    WITH CHECK (owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))
                AND crm.may_reference_account(account_id) AND crm.may_reference_contact(contact_id)
                AND EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id));
ALTER POLICY crm_team_insert ON crm.sales_order
    WITH CHECK (owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))
                AND crm.may_reference_account(account_id) AND crm.may_reference_contact(contact_id));
ALTER POLICY crm_team_update ON crm.sales_order
    WITH CHECK (owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))
                AND crm.may_reference_account(account_id) AND crm.may_reference_contact(contact_id));
COMMENT ON FUNCTION crm.may_reference_account(bigint) IS 'True when the calling role sees the account (or crm.convert_lead is attaching a deal to it): the condition for pointing an opportunity, a contact, a quote or an order at it';
COMMENT ON FUNCTION crm.may_reference_contact(bigint) IS 'True when the calling role sees the contact (or crm.convert_lead is linking it): the condition for linking it to an account and for naming it on a quote or an order';

-- The sharing check is an index probe on (account_id, owner), however many
-- deals or leads the account has.
DROP INDEX crm.opportunity_account_id_idx;
CREATE INDEX opportunity_account_id_owner_idx ON crm.opportunity (account_id, owner);
COMMENT ON INDEX crm.opportunity_account_id_owner_idx IS 'Deals by account and owner: the sharing rule (may a role see this account?) is one index probe, however many deals the account has';
DROP INDEX crm.lead_account_id_idx;
CREATE INDEX lead_account_id_owner_idx ON crm.lead (account_id, owner) WHERE account_id IS NOT NULL;
COMMENT ON INDEX crm.lead_account_id_owner_idx IS 'Leads by account and owner: the sharing rule (may a role see this account?) is one index probe, however many leads the account has';

-- Deleting an account, contact or price book finds what points at it by index.
CREATE INDEX contact_account_id_idx ON crm.contact (account_id) WHERE account_id IS NOT NULL;
COMMENT ON INDEX crm.contact_account_id_idx IS 'The contacts whose primary account is a given account: deleting an account clears them without reading every contact';
CREATE INDEX quote_account_id_idx ON crm.quote (account_id) WHERE account_id IS NOT NULL;
COMMENT ON INDEX crm.quote_account_id_idx IS 'Quotes by account: deleting an account checks its quotes without reading every quote';
CREATE INDEX quote_contact_id_idx ON crm.quote (contact_id) WHERE contact_id IS NOT NULL;
COMMENT ON INDEX crm.quote_contact_id_idx IS 'Quotes by contact: deleting a contact clears it from its quotes without reading every quote';
CREATE INDEX quote_price_book_id_idx ON crm.quote (price_book_id) WHERE price_book_id IS NOT NULL;
COMMENT ON INDEX crm.quote_price_book_id_idx IS 'Quotes by price book: deleting a price book checks its quotes without reading every quote';
CREATE INDEX sales_order_contact_id_idx ON crm.sales_order (contact_id) WHERE contact_id IS NOT NULL;
COMMENT ON INDEX crm.sales_order_contact_id_idx IS 'Orders by contact: deleting a contact clears it from its orders without reading every order';

-- Order numbers are drawn by crm.create_order() as the extension owner; the
-- sequence's position is the company-wide order count: admins only.
REVOKE USAGE ON SEQUENCE crm.sales_order_number_seq FROM crm_manager, crm_sales;

-- Deleting a contact clears it from every quote, whatever its status; a
-- cancellation is recorded once.
COMMENT ON FUNCTION crm.quote_guard() IS 'BEFORE INSERT OR UPDATE row trigger on crm.quote: new quotes are Draft and unsynced, status moves only along crm.quote_transition (approval states only through the quote functions), a quote over the approval threshold is presented only after approval, and only a Draft quote''s content can change (except that deleting a contact clears it from every quote)';
COMMENT ON FUNCTION crm.cancel_order(bigint, text) IS 'Cancels a Draft or Activated order; an Activated order''s reserved stock is returned; records cancelled_at/by and the reason, once: an order already Cancelled is refused and its record stays';
-- refs: end
