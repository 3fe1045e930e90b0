-- merge: crm.merge_accounts(), crm.merge_contacts() and crm.merge_leads()
-- make two records of one kind one (README "Merging"): every row pointing
-- at the merged record is re-pointed to the survivor (found from the
-- catalog, a DBA's own foreign keys too), rows a unique key would then hold
-- twice are folded into the earliest, the survivor's empty fields are filled
-- (the columns in take are taken), the merge is recorded and the merged
-- record deleted.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP TABLE IF EXISTS public.regress_account_note;
DROP ROLE IF EXISTS regress_merge_rep1, regress_merge_rep2, regress_merge_admin;
RESET client_min_messages;
CREATE ROLE regress_merge_rep1 IN ROLE crm_sales;
CREATE ROLE regress_merge_rep2 IN ROLE crm_sales;
CREATE ROLE regress_merge_admin IN ROLE crm_admin;

-- Two accounts for one company, with contacts, links, deals with lines,
-- a quote, activities and a converted lead on each.
-- The duplicates this test merges are made on purpose: no checks on entry
-- (duplicate_policy allow), and the candidate pairs are written by hand.
UPDATE crm.settings SET duplicate_policy_lead = 'allow', duplicate_policy_account = 'allow',
                        duplicate_policy_contact = 'allow';
INSERT INTO crm.account (name, industry, phone, website, city, owner) VALUES
    ('Acme Corp', NULL, '555-0100', NULL, 'Springfield', 'regress_merge_rep1'),      -- 1 survivor
    ('ACME Inc.', 'Manufacturing', '555-0199', 'https://acme.example', 'Shelbyville', 'regress_merge_rep1'), -- 2 merged
    ('Globex', NULL, NULL, NULL, NULL, 'regress_merge_rep2');                       -- 3 another rep's
INSERT INTO crm.contact (name, email, account_id, owner) VALUES
    ('Wile E.', 'wile@acme.example', 1, 'regress_merge_rep1'),                     -- 1
    ('Road Runner', 'rr@acme.example', 2, 'regress_merge_rep1'),                   -- 2
    ('Hank', 'hank@globex.example', 3, 'regress_merge_rep2');                      -- 3
-- contact 1 is linked to both accounts: the two links fold into one
INSERT INTO crm.account_contact (account_id, contact_id, role, owner) VALUES
    (1, 1, NULL, 'regress_merge_rep1'),
    (2, 1, 'Decision Maker', 'regress_merge_rep1'),
    (2, 2, 'Billing', 'regress_merge_rep1');
INSERT INTO crm.opportunity (name, account_id, contact_id, amount, owner) VALUES
    ('Anvils', 1, 1, 1000, 'regress_merge_rep1'),         -- 1
    ('Rockets', 2, 2, 2500, 'regress_merge_rep1'),        -- 2
    ('Hidden deal', 2, NULL, 700, 'regress_merge_rep2');  -- 3: another rep's deal on account 2
INSERT INTO crm.product (code, name, list_price) VALUES ('ANV-1', 'Anvil', 100);
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price) VALUES (1, 1, 100);
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (2, 1, 3);
-- a quote on account 2 that is no longer a Draft (its customer is frozen)
SELECT crm.create_quote(2) AS quote_id;
UPDATE crm.quote SET status = 'Presented' WHERE id = 1;
INSERT INTO crm.activity (type, subject, account_id, due_at, owner) VALUES
    ('task', 'Call Acme Inc', 2, now() + interval '1 day', 'regress_merge_rep1');
-- a lead converted into account 2 (its conversion record must follow)
INSERT INTO crm.lead (name, company, status, owner) VALUES ('Bugs', 'Acme', 'In Transaction', 'regress_merge_rep1');
SELECT account_id, contact_id FROM crm.convert_lead(1, account_id => 2, contact_id => 2, create_opportunity => false);
-- open duplicate candidates: the pair itself, and a third account naming 2
INSERT INTO crm.duplicate_candidate (kind, id, duplicate_kind, duplicate_of, rule, score) VALUES
    ('account', 2, 'account', 1, 'company_key', 1),
    ('account', 3, 'account', 2, 'similar_name', 0.5),
    ('account', 3, 'account', 1, 'similar_name', 0.4),
    ('lead', 1, 'account', 2, 'company_key', 0.9);
-- a DBA's own table with a foreign key to accounts is re-pointed too
CREATE TABLE public.regress_account_note (id serial PRIMARY KEY,
    account_id bigint REFERENCES crm.account (id), note text);
INSERT INTO public.regress_account_note (account_id, note) VALUES (2, 'met at the fair');

-- Errors.  NULL arguments: 22004.
SELECT crm.merge_accounts(NULL, 2);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.merge_accounts(1, NULL);
\echo :LAST_ERROR_SQLSTATE
-- Merging a record into itself: ZC720.
SELECT crm.merge_accounts(1, 1);
\echo :LAST_ERROR_SQLSTATE
-- An id that does not exist: not found (ZC004, ZC005, ZC001).
SELECT crm.merge_accounts(1, 99);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.merge_contacts(1, 99);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.merge_leads(1, 99);
\echo :LAST_ERROR_SQLSTATE
-- take: an unknown column, a column no merge takes, a NULL: ZC721.
SELECT crm.merge_accounts(1, 2, ARRAY['nope']);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.merge_accounts(1, 2, ARRAY['created_at']);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.merge_accounts(1, 2, ARRAY[NULL]);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.merge_leads(1, 2, ARRAY['account_id']);
\echo :LAST_ERROR_SQLSTATE
-- A rep cannot merge a record it cannot update (rep2's account 3, though a
-- deal of rep2 makes nothing of rep1 visible to it): not found, ZC004.
SET ROLE regress_merge_rep1;
SELECT crm.merge_accounts(1, 3);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.merge_accounts(3, 1);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- rep2 sees account 2 by the sharing rule (its deal is on it) but may not update it
SET ROLE regress_merge_rep2;
SELECT crm.merge_accounts(3, 2);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- nothing changed
SELECT count(*) AS accounts, (SELECT count(*) FROM crm.merge_record) AS merges FROM crm.account;

-- The merge, by the owning rep, taking the merged account's phone.
SET ROLE regress_merge_rep1;
SELECT crm.merge_accounts(1, 2, take => ARRAY['phone']);
RESET ROLE;
-- the survivor: empty fields filled (industry, website), phone taken, city and owner kept
SELECT id, name, industry, phone, website, city, owner FROM crm.account ORDER BY id;
-- everything that pointed at account 2 points at 1, the hidden deal of rep2 too
SELECT id, account_id FROM crm.contact ORDER BY id;
SELECT id, account_id, amount FROM crm.opportunity ORDER BY id;
SELECT account_id, subject FROM crm.activity;
SELECT account_id, note FROM public.regress_account_note;
-- the converted lead's conversion record follows; it stays complete
SELECT id, status, account_id, contact_id FROM crm.lead;
-- the two links of contact 1 folded into the earliest, its empty role filled
SELECT account_id, contact_id, role FROM crm.account_contact ORDER BY 1, 2;
-- candidates: the pair is merged, 3 -> 2 would repeat 3 -> 1 and is dropped,
-- the lead's candidate now names the survivor
SELECT kind, id, duplicate_kind, duplicate_of, status, resolved_by
  FROM crm.duplicate_candidate ORDER BY 1, 2, 3, 4;
-- the merge record: the merged values, what was taken, who
SELECT kind, survivor_id, merged_id, merged_values->>'name' AS merged_name,
       merged_values->>'phone' AS merged_phone, taken, merged_by
  FROM crm.merge_record;
-- the sent quote follows too
SELECT id, status, account_id FROM crm.quote;
-- one change-log entry per re-pointed logged row, and the merged account's delete
SELECT table_name, row_id, operation, changes->'account_id' AS account_id
  FROM crm.change_log
 WHERE changes->'account_id'->>'old' = '2'
    OR (table_name = 'crm.account'::regclass AND operation = 'DELETE')
 ORDER BY operation = 'DELETE', table_name::text, row_id;   -- rows of one UPDATE come in heap order
-- aggregates stay exact; deal amounts equal their lines
SELECT count(*) AS mismatches FROM crm.verify_aggregates();
SELECT o.id FROM crm.opportunity o JOIN crm.opportunity_line_item li ON li.opportunity_id = o.id
 GROUP BY o.id, o.amount HAVING o.amount <> sum(li.total);

-- A merge record is readable by who made it or owns the survivor (and
-- their managers), and by admins: rep1, not rep2, who sees account 1 only
-- through the sharing rule (its deal is on account 1 now) and never saw the
-- merged account's values.
SET ROLE regress_merge_rep1;
SELECT kind, survivor_id, merged_id FROM crm.merge_record;
RESET ROLE;
SET ROLE regress_merge_rep2;
SELECT kind, survivor_id, merged_id FROM crm.merge_record;
-- rep2 still cannot merge into account 1: it sees it, but may not update it
SELECT crm.merge_accounts(1, 3);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- The conversion guard still refuses a direct change of a converted lead's
-- account (ZC010): only a merge moves it.
UPDATE crm.lead SET account_id = 3 WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
-- and an opportunity's source lead cannot be set by hand
UPDATE crm.opportunity SET lead_id = 1 WHERE id = 1;

-- Contacts: campaign memberships and links fold, the merged contact's
-- primary account and e-mail fill the survivor's empty ones.
INSERT INTO crm.contact (name, email, title, owner) VALUES
    ('Wile E. Coyote', NULL, 'Genius', 'regress_merge_rep1');            -- 4
INSERT INTO crm.campaign (name) VALUES ('Spring Fair');
INSERT INTO crm.campaign_member (campaign_id, contact_id, status, owner) VALUES
    (1, 1, 'Sent', 'regress_merge_rep1'),
    (1, 4, 'Responded', 'regress_merge_rep1');
INSERT INTO crm.account_contact (account_id, contact_id, role, owner) VALUES (1, 4, 'Technical', 'regress_merge_rep1');
SET ROLE regress_merge_rep1;
SELECT crm.merge_contacts(4, 1);
RESET ROLE;
SELECT id, name, email, title, account_id FROM crm.contact ORDER BY id;
-- contact 1's membership is the earlier: kept, moved to 4
SELECT campaign_id, contact_id, status FROM crm.campaign_member ORDER BY id;
SELECT account_id, contact_id, role FROM crm.account_contact ORDER BY 1, 2;
SELECT id, contact_id FROM crm.opportunity ORDER BY id;
SELECT id, account_id, contact_id FROM crm.lead;

-- Leads: a converted lead cannot be the merged one (ZC702); it may survive.
INSERT INTO crm.lead (name, company, email, phone, campaign_id, owner) VALUES
    ('Bugs Bunny', NULL, 'bugs@acme.example', NULL, 1, 'regress_merge_rep1'),  -- 2
    ('B. Bunny', 'Acme', NULL, '555-0123', NULL, 'regress_merge_rep1');       -- 3
INSERT INTO crm.campaign_member (campaign_id, lead_id, owner) VALUES (1, 2, 'regress_merge_rep1'), (1, 3, 'regress_merge_rep1');
SELECT crm.merge_leads(2, 1);
\echo :LAST_ERROR_SQLSTATE
SELECT crm.merge_leads(3, 2);
SELECT id, name, company, email, phone, campaign_id, status FROM crm.lead ORDER BY id;
SELECT campaign_id, lead_id FROM crm.campaign_member WHERE lead_id IS NOT NULL;
-- the merged lead's status history moved to the survivor
SELECT lead_id, count(*) FROM crm.lead_status_history GROUP BY 1 ORDER BY 1;
-- a merged lead into a converted one: allowed
SELECT crm.merge_leads(1, 3);
SELECT id, status, company, phone FROM crm.lead ORDER BY id;

-- A foreign key the merge cannot re-point (not on the primary key, or on
-- two columns) is refused naming it, ZC722, before anything changes.
ALTER TABLE crm.contact ADD CONSTRAINT regress_contact_email_key UNIQUE (email);
CREATE TABLE public.regress_email_ref (email crm.email_address REFERENCES crm.contact (email));
INSERT INTO crm.contact (name, owner) VALUES ('Spare', 'regress_merge_rep1');   -- 5
SELECT crm.merge_contacts(4, 5);
\echo :LAST_ERROR_SQLSTATE
-- merging across kinds: contact 5 is no account, so not found (ZC004)
SELECT crm.merge_accounts(1, 5);
\echo :LAST_ERROR_SQLSTATE
DROP TABLE public.regress_email_ref;
ALTER TABLE crm.contact DROP CONSTRAINT regress_contact_email_key;
-- after the catalog changed, the kept statements are rebuilt
ALTER TABLE public.regress_account_note RENAME COLUMN account_id TO acct;
INSERT INTO crm.account (name, owner) VALUES ('Acme Again', 'regress_merge_rep1');  -- 4
INSERT INTO public.regress_account_note (acct, note) VALUES (4, 'second note');
SELECT crm.merge_accounts(1, 4);
SELECT acct, note FROM public.regress_account_note ORDER BY id;

-- A merged contact's primary account, when the survivor's is another,
-- stays one of the survivor's accounts as a link (a converted lead's
-- contact stays on its account).
INSERT INTO crm.contact (name, account_id, owner) VALUES ('At Globex', 3, 'regress_merge_rep2');   -- 6
SELECT crm.merge_contacts(4, 6);
SELECT id, account_id FROM crm.contact WHERE id = 4;
SELECT account_id, contact_id, role, owner FROM crm.account_contact WHERE contact_id = 4 ORDER BY 1;

-- Consent: the survivor keeps an opt-out either record had, even when take
-- names the flag (the most restrictive value wins); an empty consent basis
-- is filled like any empty field.
INSERT INTO crm.contact (name, email_opt_out, do_not_contact, owner)
VALUES ('Opted out', true, false, 'regress_merge_rep2');          -- 7
INSERT INTO crm.contact (name, email_opt_out, phone_opt_out, consent_basis, owner)
VALUES ('Consented', false, true, 'consent', 'regress_merge_rep2'); -- 8
SELECT crm.merge_contacts(7, 8, take => ARRAY['email_opt_out', 'phone_opt_out']);
SELECT id, email_opt_out, phone_opt_out, do_not_contact, consent_basis FROM crm.contact WHERE id = 7;

-- Under the block policy a merge still works: the merged record is gone
-- before the survivor takes its keys, so they are no duplicate of it.
INSERT INTO crm.account (name, website, owner) VALUES ('Initech', NULL, 'regress_merge_rep1'),
    ('Initech LLC', 'https://initech.example', 'regress_merge_rep1');
UPDATE crm.settings SET duplicate_policy_account = 'block';
SELECT crm.merge_accounts(min(id), max(id)) > 0 AS merged FROM crm.account WHERE name LIKE 'Initech%';
SELECT name, website FROM crm.account WHERE name LIKE 'Initech%';
UPDATE crm.settings SET duplicate_policy_account = 'allow';

SELECT count(*) AS mismatches FROM crm.verify_aggregates();
SELECT kind, survivor_id, merged_id, taken FROM crm.merge_record ORDER BY id;

DROP TABLE public.regress_account_note;
SET client_min_messages = warning;
DROP EXTENSION crm CASCADE;
DROP ROLE regress_merge_rep1, regress_merge_rep2, regress_merge_admin;
