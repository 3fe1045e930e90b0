-- row_security: the role model as a specification.  Who sees and who
-- changes which rows of every sales table, history table, the audit trail
-- and the aggregates, under the shipped row-level security policies
-- (sql/install/95_row_security.sql):
--   crm_admin    every row;
--   crm_manager  their own rows and those of everyone below them in
--                crm.reporting_line, transitively;
--   crm_sales    their own rows; accounts also when they own an opportunity
--                or a lead on it, and the contacts on such accounts (read
--                only: the sharing rule); a deal or an account-contact link
--                may point only at accounts and contacts they see already;
--   crm_analyst  reads every row, through the BI views, without personal
--                columns.
-- The hierarchy here: rep1 -> boss -> boss2; rep2 and the outsider report
-- to nobody (the outsider is a manager without a team).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_rls_rep1, regress_rls_rep2, regress_rls_boss, regress_rls_boss2,
    regress_rls_outsider, regress_rls_admin, regress_rls_analyst;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_rls_rep1 IN ROLE crm_sales;
CREATE ROLE regress_rls_rep2 IN ROLE crm_sales;
CREATE ROLE regress_rls_boss IN ROLE crm_manager;
CREATE ROLE regress_rls_boss2 IN ROLE crm_manager;
CREATE ROLE regress_rls_outsider IN ROLE crm_manager;
CREATE ROLE regress_rls_admin IN ROLE crm_admin;
CREATE ROLE regress_rls_analyst IN ROLE crm_analyst;

-- The hierarchy is the admins' to maintain.
SET ROLE regress_rls_admin;
INSERT INTO crm.reporting_line (member, manager) VALUES
    ('regress_rls_rep1', 'regress_rls_boss'), ('regress_rls_boss', 'regress_rls_boss2');
-- The catalog and a campaign.
INSERT INTO crm.product (code, name, list_price) VALUES ('W-1', 'Widget', 100);
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price)
SELECT b.id, p.id, 100 FROM crm.price_book b, crm.product p WHERE b.is_standard;
INSERT INTO crm.campaign (name) VALUES ('Expo');
RESET ROLE;

-- Every rep and manager enters their own data, as themselves.
SET ROLE regress_rls_rep1;
INSERT INTO crm.account (name) VALUES ('Alpha Corp');                                          -- account 1
INSERT INTO crm.contact (name, account_id) VALUES ('Carl Alpha', 1);                           -- contact 1
INSERT INTO crm.lead (name, company, email, campaign_id) VALUES ('Lena Rep1', 'Lena Ltd', 'lena@lena.example', 1);  -- lead 1
INSERT INTO crm.opportunity (name, account_id, close_date, campaign_id) VALUES ('Alpha deal', 1, '2027-01-15', 1);  -- opportunity 1
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity, description) VALUES (1, 1, 10, 'Alpha widgets');
INSERT INTO crm.activity (type, subject, lead_id) VALUES ('task', 'Call Lena', 1);
INSERT INTO crm.campaign_member (campaign_id, lead_id) VALUES (1, 1);
RESET ROLE;
SET ROLE regress_rls_rep2;
INSERT INTO crm.account (name) VALUES ('Beta GmbH'), ('Gamma Ltd'), ('Delta AG');              -- accounts 2, 3, 4
INSERT INTO crm.contact (name, account_id) VALUES ('Bea Beta', 2), ('Gus Gamma', 3), ('Dieter Delta', 4),
    ('Hal Hidden', 2);                                                                          -- contacts 2, 3, 4, 5
-- Gus Gamma also works with Beta GmbH, Bea Beta also with Gamma Ltd.
INSERT INTO crm.account_contact (account_id, contact_id) VALUES (2, 3), (3, 2);
INSERT INTO crm.lead (name, company, email, campaign_id) VALUES ('Rita Rep2', 'Rita Inc', 'rita@rita.example', 1);  -- lead 2
INSERT INTO crm.opportunity (name, account_id, close_date, campaign_id) VALUES ('Beta deal', 2, '2027-02-15', 1);  -- opportunity 2
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity, description) VALUES (2, 1, 20, 'Beta widgets');
INSERT INTO crm.activity (type, subject, lead_id) VALUES ('task', 'Call Rita', 2);
INSERT INTO crm.campaign_member (campaign_id, lead_id) VALUES (1, 2);
INSERT INTO crm.campaign_member (campaign_id, contact_id) VALUES (1, 3);                        -- Gus Gamma
RESET ROLE;
SET ROLE regress_rls_boss;
INSERT INTO crm.lead (name, company) VALUES ('Bob Boss', 'Boss Co');                            -- lead 3
RESET ROLE;
SET ROLE regress_rls_outsider;
INSERT INTO crm.lead (name, company) VALUES ('Olga Outsider', 'Outside Co');                    -- lead 4
RESET ROLE;

-- Quotes and orders: each rep quotes their deal, the customer accepts, the
-- rep orders.  rep1's second quote (25 % off) is submitted and approved by
-- boss; rep2's second quote waits for review.
SET ROLE regress_rls_rep1;
SELECT crm.create_quote(1) AS alpha_q1, crm.create_quote(1, discount => 25) AS alpha_q2 \gset
UPDATE crm.quote SET status = 'Presented' WHERE id = :alpha_q1;
UPDATE crm.quote SET status = 'Accepted' WHERE id = :alpha_q1;
SELECT crm.create_order(:alpha_q1, 'SO-ALPHA') AS alpha_order \gset
SELECT crm.submit_quote(:alpha_q2, 'two-year term');
RESET ROLE;
SET ROLE regress_rls_boss;
SELECT crm.approve_quote(:alpha_q2, 'ok');
RESET ROLE;
SET ROLE regress_rls_rep2;
SELECT crm.create_quote(2) AS beta_q1, crm.create_quote(2, discount => 30) AS beta_q2 \gset
UPDATE crm.quote SET status = 'Presented' WHERE id = :beta_q1;
UPDATE crm.quote SET status = 'Accepted' WHERE id = :beta_q1;
SELECT crm.create_order(:beta_q1, 'SO-BETA') AS beta_order \gset
SELECT crm.submit_quote(:beta_q2, 'thirty percent');
RESET ROLE;

-- The sharing rule's two ways in.  An admin gives rep1 a deal on rep2's
-- account Gamma Ltd (an opportunity on it), and converts rep1's lead for
-- "Delta", which the admin's duplicate search matches to rep2's Delta AG (a
-- lead on it; no opportunity).  (rep1's own conversion would not find Delta
-- AG: a rep's search sees only what the rep sees -- convert_security.)
SET ROLE regress_rls_admin;
INSERT INTO crm.opportunity (name, account_id, amount, close_date, owner)
VALUES ('Gamma deal', 3, 500, '2027-03-15', 'regress_rls_rep1');                               -- opportunity 3
RESET ROLE;
SET ROLE regress_rls_rep1;
INSERT INTO crm.lead (name, company) VALUES ('Dora Delta', 'Delta');                            -- lead 5, contact 6
RESET ROLE;
SET ROLE regress_rls_admin;
SELECT account_id, account_created, contact_created, opportunity_created
  FROM crm.convert_lead(5, create_opportunity => false);
RESET ROLE;

-- Changes to rep1's lead made by others: by the superuser and by an admin.
UPDATE crm.lead SET phone = '+1 555 0100' WHERE id = 1;
SET ROLE regress_rls_admin;
UPDATE crm.lead SET phone = '+1 555 0101' WHERE id = 1;
RESET ROLE;

-- Who is who (as the superuser, who sees everything).
SELECT 'account' AS kind, id, name, owner FROM crm.account
UNION ALL SELECT 'contact', id, name, owner FROM crm.contact
UNION ALL SELECT 'lead', id, name, owner FROM crm.lead
UNION ALL SELECT 'opportunity', id, name, owner FROM crm.opportunity
UNION ALL SELECT 'quote', id, name, owner FROM crm.quote
UNION ALL SELECT 'sales_order', id, order_number, owner FROM crm.sales_order
ORDER BY 1, 2;

-- What a role sees, table by table (a security_invoker view: the reader's
-- own rights and policies apply).  Line items and order items show their
-- description, history rows the id of their record.
CREATE TEMP VIEW visible WITH (security_invoker = true) AS
          SELECT 'account' AS tbl, string_agg(name, ', ' ORDER BY name) AS rows FROM crm.account
UNION ALL SELECT 'account_contact', string_agg(account_id || '-' || contact_id, ', ' ORDER BY account_id, contact_id) FROM crm.account_contact
UNION ALL SELECT 'contact', string_agg(name, ', ' ORDER BY name) FROM crm.contact
UNION ALL SELECT 'lead', string_agg(name, ', ' ORDER BY name) FROM crm.lead
UNION ALL SELECT 'opportunity', string_agg(name, ', ' ORDER BY name) FROM crm.opportunity
UNION ALL SELECT 'opportunity_line_item', string_agg(description, ', ' ORDER BY description) FROM crm.opportunity_line_item
UNION ALL SELECT 'quote', string_agg(name, ', ' ORDER BY name) FROM crm.quote
UNION ALL SELECT 'quote_line_item', string_agg(description || ' (quote ' || quote_id || ')', ', ' ORDER BY quote_id) FROM crm.quote_line_item
UNION ALL SELECT 'sales_order', string_agg(order_number, ', ' ORDER BY order_number) FROM crm.sales_order
UNION ALL SELECT 'sales_order_item', string_agg(description, ', ' ORDER BY description) FROM crm.sales_order_item
UNION ALL SELECT 'activity', string_agg(subject, ', ' ORDER BY subject) FROM crm.activity
UNION ALL SELECT 'campaign_member', string_agg('lead ' || lead_id, ', ' ORDER BY lead_id) FROM crm.campaign_member
UNION ALL SELECT 'lead_status_history', string_agg(DISTINCT 'lead ' || lead_id, ', ') FROM crm.lead_status_history
UNION ALL SELECT 'opportunity_history', string_agg(DISTINCT 'opportunity ' || opportunity_id, ', ') FROM crm.opportunity_history
UNION ALL SELECT 'quote_approval', string_agg(action || ' ' || quote_id, ', ' ORDER BY id) FROM crm.quote_approval;
GRANT SELECT ON visible TO PUBLIC;

-- rep1: own rows; Gamma Ltd (rep1's Gamma deal) and Delta AG (rep1's
-- converted lead) through the sharing rule, with the contacts on them:
-- Gus Gamma and Dieter Delta as primary contacts, Bea Beta linked to Gamma
-- Ltd (the link 3-2), and rep1's own Dora Delta.  Beta GmbH, its contact
-- Hal Hidden and its link 2-3 stay hidden.
SET ROLE regress_rls_rep1;
SELECT * FROM visible ORDER BY tbl;
RESET ROLE;
-- rep2: own rows; rep1's contact Dora Delta is on rep2's account Delta AG,
-- so rep2 sees it too.  Nothing of rep1's leads, deals, quotes, orders,
-- activities, campaign memberships or history.
SET ROLE regress_rls_rep2;
SELECT * FROM visible ORDER BY tbl;
RESET ROLE;
-- boss: own lead and everything of rep1's, including what rep1 sees through
-- the sharing rule (boss sees rep1's opportunity and lead on those accounts).
SET ROLE regress_rls_boss;
SELECT * FROM visible ORDER BY tbl;
RESET ROLE;
-- boss2: the same as boss, through boss: the hierarchy is transitive.
SET ROLE regress_rls_boss2;
SELECT * FROM visible ORDER BY tbl;
RESET ROLE;
-- The outsider, a manager without a team, sees their own lead only.
SET ROLE regress_rls_outsider;
SELECT * FROM visible ORDER BY tbl;
RESET ROLE;
-- The admin: everything.
SET ROLE regress_rls_admin;
SELECT * FROM visible ORDER BY tbl;
RESET ROLE;

-- The analyst may not read personal columns (names, e-mail addresses,
-- descriptions) nor the change log ...
SET ROLE regress_rls_analyst;
SELECT email FROM crm.lead;
\echo :LAST_ERROR_SQLSTATE
SELECT name FROM crm.lead;
\echo :LAST_ERROR_SQLSTATE
SELECT name FROM crm.contact;
\echo :LAST_ERROR_SQLSTATE
SELECT description FROM crm.opportunity;
\echo :LAST_ERROR_SQLSTATE
SELECT comment FROM crm.quote_approval;
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM crm.change_log;
\echo :LAST_ERROR_SQLSTATE
-- ... but reads every row through the granted columns and the BI views.
SELECT (SELECT count(*) FROM crm.lead) AS leads, (SELECT count(*) FROM crm.opportunity) AS opportunities,
       (SELECT count(*) FROM crm.account) AS accounts, (SELECT count(*) FROM crm.quote) AS quotes,
       (SELECT count(*) FROM crm.sales_order) AS orders;
SELECT kind, step, items, amount FROM crm.sales_funnel WHERE items > 0 ORDER BY position, step_order;
SELECT stage, owner, opportunities, amount FROM crm.pipeline_by_stage ORDER BY sort_order, owner::text;
SELECT quotes, accepted, orders, order_total FROM crm.quote_to_order;
-- and writes nothing.
INSERT INTO crm.lead (name) VALUES ('Analyst lead');
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.opportunity SET amount = 0;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- The aggregates follow the owner: each role reads the figures of the
-- opportunities and leads of the owners it may see (stripes summed).
CREATE TEMP VIEW aggregate_figures WITH (security_invoker = true) AS
          SELECT 'pipeline_aggregate' AS source, owner::text AS owner, sum(opportunities) AS items, sum(amount) AS amount
            FROM crm_internal.pipeline_aggregate GROUP BY owner
UNION ALL SELECT 'pipeline_totals', owner::text, sum(opportunities), sum(amount) FROM crm.pipeline_totals GROUP BY owner
UNION ALL SELECT 'pipeline_by_stage', owner::text, sum(opportunities), sum(amount) FROM crm.pipeline_by_stage GROUP BY owner
UNION ALL SELECT 'account_aggregate', owner::text, sum(opportunities), sum(amount) FROM crm_internal.account_aggregate GROUP BY owner
UNION ALL SELECT 'campaign_opportunity_aggregate', owner::text, sum(opportunities), sum(amount)
            FROM crm_internal.campaign_opportunity_aggregate GROUP BY owner
UNION ALL SELECT 'campaign_lead_aggregate', owner::text, sum(leads), NULL FROM crm_internal.campaign_lead_aggregate GROUP BY owner;
GRANT SELECT ON aggregate_figures TO PUBLIC;

SET ROLE regress_rls_rep1;
SELECT * FROM aggregate_figures ORDER BY source, owner;
-- (account_rollup lists the accounts rep1 sees; the figures on Gamma Ltd
-- are rep1's Gamma deal, on Delta AG nothing: no deal of rep1's there)
SELECT name, open_opportunities, open_amount FROM crm.account_rollup ORDER BY name;
SELECT name, leads, opportunities, opportunity_amount FROM crm.campaign_performance ORDER BY name;
RESET ROLE;
SET ROLE regress_rls_rep2;
SELECT * FROM aggregate_figures ORDER BY source, owner;
SELECT name, open_opportunities, open_amount FROM crm.account_rollup ORDER BY name;
SELECT name, leads, opportunities, opportunity_amount FROM crm.campaign_performance ORDER BY name;
RESET ROLE;
SET ROLE regress_rls_boss;
SELECT * FROM aggregate_figures ORDER BY source, owner;
SELECT name, open_opportunities, open_amount FROM crm.account_rollup ORDER BY name;
SELECT name, leads, opportunities, opportunity_amount FROM crm.campaign_performance ORDER BY name;
RESET ROLE;
SET ROLE regress_rls_boss2;
SELECT * FROM aggregate_figures ORDER BY source, owner;
RESET ROLE;
SET ROLE regress_rls_outsider;
SELECT * FROM aggregate_figures ORDER BY source, owner;
SELECT name, open_opportunities, open_amount FROM crm.account_rollup ORDER BY name;
SELECT name, leads, opportunities, opportunity_amount FROM crm.campaign_performance ORDER BY name;
RESET ROLE;
SET ROLE regress_rls_analyst;
SELECT * FROM aggregate_figures ORDER BY source, owner;
SELECT name, open_opportunities, open_amount FROM crm.account_rollup ORDER BY name;
SELECT name, leads, opportunities, opportunity_amount FROM crm.campaign_performance ORDER BY name;
RESET ROLE;
SET ROLE regress_rls_admin;
SELECT * FROM aggregate_figures ORDER BY source, owner;
SELECT name, open_opportunities, open_amount FROM crm.account_rollup ORDER BY name;
SELECT name, leads, opportunities, opportunity_amount FROM crm.campaign_performance ORDER BY name;
RESET ROLE;

-- ---------------------------------------------------------------------
-- Writing: a rep writes only their own rows, and cannot give rows away.
-- ---------------------------------------------------------------------
SET ROLE regress_rls_rep1;
-- Insert a row owned by another rep: refused.
INSERT INTO crm.lead (name, owner) VALUES ('Pushed lead', 'regress_rls_rep2');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.account (name, owner) VALUES ('Pushed account', 'regress_rls_rep2');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.contact (name, owner) VALUES ('Pushed contact', 'regress_rls_rep2');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.opportunity (name, account_id, owner) VALUES ('Pushed deal', 1, 'regress_rls_rep2');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.activity (type, subject, lead_id, owner) VALUES ('task', 'Pushed task', 1, 'regress_rls_rep2');
\echo :LAST_ERROR_SQLSTATE
-- Not even to their own manager.
INSERT INTO crm.lead (name, owner) VALUES ('Pushed up', 'regress_rls_boss');
\echo :LAST_ERROR_SQLSTATE
-- Reassign (push) an own row to someone else: refused.
UPDATE crm.lead SET owner = 'regress_rls_rep2' WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.account SET owner = 'regress_rls_rep2' WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.opportunity SET owner = 'regress_rls_rep2' WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.quote SET owner = 'regress_rls_boss' WHERE id = :alpha_q1;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.sales_order SET owner = 'regress_rls_rep2' WHERE id = :alpha_order;
\echo :LAST_ERROR_SQLSTATE
-- Take (pull) another rep's row: there is nothing to update.
UPDATE crm.lead SET owner = 'regress_rls_rep1' WHERE id = 2 RETURNING id;
-- Another rep's rows: nothing to update or delete.
UPDATE crm.lead SET remarks = 'mine now' WHERE id = 2 RETURNING id;
UPDATE crm.account SET name = 'mine now' WHERE id = 2 RETURNING id;
UPDATE crm.contact SET name = 'mine now' WHERE id = 2 RETURNING id;
UPDATE crm.opportunity SET close_date = '2030-01-01' WHERE id = 2 RETURNING id;
UPDATE crm.opportunity_line_item SET quantity = 1 WHERE opportunity_id = 2 RETURNING id;
UPDATE crm.quote SET name = 'mine now' WHERE id = :beta_q2 RETURNING id;
UPDATE crm.quote_line_item SET description = 'mine now' WHERE quote_id = :beta_q2 RETURNING id;
UPDATE crm.sales_order SET carrier = 'mine now' WHERE id = :beta_order RETURNING id;
UPDATE crm.activity SET subject = 'mine now' WHERE subject = 'Call Rita' RETURNING id;
UPDATE crm.campaign_member SET status = 'Bounced' WHERE lead_id = 2 RETURNING id;
DELETE FROM crm.lead WHERE id = 2 RETURNING id;
DELETE FROM crm.account WHERE id = 2 RETURNING id;
DELETE FROM crm.contact WHERE id = 2 RETURNING id;
DELETE FROM crm.opportunity_line_item WHERE opportunity_id = 2 RETURNING id;
DELETE FROM crm.quote WHERE id = :beta_q1 RETURNING id;
DELETE FROM crm.sales_order WHERE id = :beta_order RETURNING id;
DELETE FROM crm.activity WHERE subject = 'Call Rita' RETURNING id;
DELETE FROM crm.campaign_member WHERE lead_id = 2 RETURNING id;
-- Nor attach rows to another rep's record.
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (2, 1, 1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.campaign_member (campaign_id, lead_id, owner) VALUES (1, 3, 'regress_rls_rep1');
\echo :LAST_ERROR_SQLSTATE
-- The sharing rule gives read access only: rep1 sees Gamma Ltd, Delta AG
-- and the contacts on them, but cannot change or delete rep2's; only Dora
-- Delta, rep1's own contact on Delta AG, changes.
UPDATE crm.account SET name = 'Taken over' WHERE id IN (3, 4) RETURNING id;
DELETE FROM crm.account WHERE id IN (3, 4) RETURNING id;
UPDATE crm.contact SET title = 'CEO' WHERE account_id IN (3, 4) RETURNING id, name;
DELETE FROM crm.contact WHERE name IN ('Gus Gamma', 'Dieter Delta', 'Bea Beta') RETURNING id;
-- A deal or a link may point only at an account or contact the rep sees
-- already: otherwise a deal on any account id would share that account.
INSERT INTO crm.opportunity (name, account_id) VALUES ('Deal on Beta', 2);
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.opportunity SET account_id = 2 WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.account_contact (account_id, contact_id) VALUES (1, 5);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.account_contact (account_id, contact_id) VALUES (2, 1);
\echo :LAST_ERROR_SQLSTATE
-- Links and campaign memberships on shared records are rep2's side: rep1
-- can neither add a contact to rep2's Gamma Ltd, nor change or drop rep2's
-- links or rep2's membership for Gus Gamma (both visible to rep1).
INSERT INTO crm.account_contact (account_id, contact_id) VALUES (3, 1);
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.account_contact SET role = 'taken' WHERE account_id = 3 RETURNING contact_id;
DELETE FROM crm.account_contact WHERE account_id = 3 RETURNING contact_id;
SELECT count(*) AS visible_gus_memberships FROM crm.campaign_member WHERE contact_id = 3;
UPDATE crm.campaign_member SET status = 'Unsubscribed' WHERE contact_id = 3 RETURNING id;
DELETE FROM crm.campaign_member WHERE contact_id = 3 RETURNING id;
-- A quote may name only a deal rep1 sees: no pinning rep2's deal.
INSERT INTO crm.quote (opportunity_id, account_id, name) VALUES (2, 2, 'Pin');
\echo :LAST_ERROR_SQLSTATE
-- So Beta GmbH and Hal Hidden stay hidden.
SELECT (SELECT string_agg(name, ', ' ORDER BY name) FROM crm.account) AS accounts,
       (SELECT count(*) FROM crm.contact WHERE name = 'Hal Hidden') AS hal;
-- rep1's own rows change normally.
UPDATE crm.lead SET remarks = 'called' WHERE id = 1 RETURNING id, remarks;
RESET ROLE;
-- Nothing of rep2's changed.
SELECT (SELECT remarks FROM crm.lead WHERE id = 2) AS rita_remarks,
       (SELECT string_agg(name, ', ' ORDER BY id) FROM crm.account WHERE owner = 'regress_rls_rep2'::regrole) AS rep2_accounts,
       (SELECT string_agg(name || ':' || coalesce(title, '-'), ', ' ORDER BY id) FROM crm.contact
         WHERE owner = 'regress_rls_rep2'::regrole) AS rep2_contacts;
SELECT (SELECT close_date FROM crm.opportunity WHERE id = 2) AS beta_close_date,
       (SELECT string_agg(quantity::text, ', ') FROM crm.opportunity_line_item WHERE opportunity_id = 2) AS beta_quantities,
       (SELECT string_agg(name, ', ' ORDER BY id) FROM crm.quote WHERE owner = 'regress_rls_rep2'::regrole) AS rep2_quotes,
       (SELECT carrier FROM crm.sales_order WHERE id = :beta_order) AS beta_carrier,
       (SELECT count(*) FROM crm.activity WHERE subject = 'Call Rita') AS rita_tasks,
       (SELECT string_agg(status, ', ') FROM crm.campaign_member WHERE lead_id = 2) AS rita_membership,
       (SELECT count(*) FROM crm.campaign_member WHERE lead_id = 3) AS bob_memberships;

-- ---------------------------------------------------------------------
-- Managers reassign within their team, not outside it.
-- ---------------------------------------------------------------------
SET ROLE regress_rls_boss;
-- rep1's lead to boss and back: within the team.
UPDATE crm.lead SET owner = 'regress_rls_boss' WHERE id = 1 RETURNING id, owner;
UPDATE crm.lead SET owner = 'regress_rls_rep1' WHERE id = 1 RETURNING id, owner;
-- boss's own lead handed to rep1: within the team.
UPDATE crm.lead SET owner = 'regress_rls_rep1' WHERE id = 3 RETURNING id, owner;
-- Out of the team -- to rep2, or up to boss2 -- refused.
UPDATE crm.lead SET owner = 'regress_rls_rep2' WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.lead SET owner = 'regress_rls_boss2' WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.opportunity SET owner = 'regress_rls_rep2' WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.lead (name, owner) VALUES ('For rep2', 'regress_rls_rep2');
\echo :LAST_ERROR_SQLSTATE
-- rep2's rows are not boss's to take or change.
UPDATE crm.lead SET owner = 'regress_rls_boss' WHERE id = 2 RETURNING id;
UPDATE crm.account SET owner = 'regress_rls_boss' WHERE id IN (2, 3, 4) RETURNING id;
RESET ROLE;
-- boss2 reaches rep1 through boss: reassigns rep1's opportunity to boss
-- and back.
SET ROLE regress_rls_boss2;
UPDATE crm.opportunity SET owner = 'regress_rls_boss' WHERE id = 1 RETURNING id, owner;
UPDATE crm.opportunity SET owner = 'regress_rls_rep1' WHERE id = 1 RETURNING id, owner;
RESET ROLE;
-- The outsider reaches nobody.
SET ROLE regress_rls_outsider;
UPDATE crm.lead SET owner = 'regress_rls_outsider' WHERE id IN (1, 2, 3) RETURNING id;
DELETE FROM crm.lead WHERE id IN (1, 2, 3) RETURNING id;
RESET ROLE;
SELECT id, name, owner FROM crm.lead ORDER BY id;
SELECT id, name, owner FROM crm.opportunity ORDER BY id;

-- A rep named as somebody's manager in crm.reporting_line is still a rep:
-- only members of crm_manager have a team.
SET ROLE regress_rls_admin;
INSERT INTO crm.reporting_line (member, manager) VALUES ('regress_rls_rep2', 'regress_rls_rep1');
RESET ROLE;
SET ROLE regress_rls_rep1;
SELECT name FROM crm.lead ORDER BY name;
RESET ROLE;
SET ROLE regress_rls_admin;
DELETE FROM crm.reporting_line WHERE member = 'regress_rls_rep2'::regrole RETURNING member, manager;
RESET ROLE;

-- ---------------------------------------------------------------------
-- The hierarchy: only admins write it, and it has no cycles (ZC601).
-- ---------------------------------------------------------------------
-- A manager cannot add people to their team, move or drop a line.
SET ROLE regress_rls_boss;
INSERT INTO crm.reporting_line (member, manager) VALUES ('regress_rls_rep2', 'regress_rls_boss');
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.reporting_line SET manager = 'regress_rls_boss' WHERE member = 'regress_rls_rep2'::regrole;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM crm.reporting_line WHERE member = 'regress_rls_boss'::regrole;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE regress_rls_rep1;
DELETE FROM crm.reporting_line;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE regress_rls_analyst;
UPDATE crm.reporting_line SET manager = 'regress_rls_analyst';
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE regress_rls_admin;
-- boss2 under rep1 would close the circle rep1 -> boss -> boss2 -> rep1.
INSERT INTO crm.reporting_line (member, manager) VALUES ('regress_rls_boss2', 'regress_rls_rep1');
\echo :LAST_ERROR_SQLSTATE
-- So would moving boss under rep1.
UPDATE crm.reporting_line SET manager = 'regress_rls_rep1' WHERE member = 'regress_rls_boss'::regrole;
\echo :LAST_ERROR_SQLSTATE
-- A role cannot manage itself (the guard refuses it before the CHECK
-- constraint does).
INSERT INTO crm.reporting_line (member, manager) VALUES ('regress_rls_outsider', 'regress_rls_outsider');
\echo :LAST_ERROR_SQLSTATE
-- A cycle made by two rows of one statement is refused too.
INSERT INTO crm.reporting_line (member, manager) VALUES
    ('regress_rls_outsider', 'regress_rls_rep2'), ('regress_rls_rep2', 'regress_rls_outsider');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT member, manager FROM crm.reporting_line ORDER BY member::text;

-- ---------------------------------------------------------------------
-- The audit trail crm.change_log is append-only for everyone.
-- ---------------------------------------------------------------------
SELECT count(*) AS log_entries, md5(string_agg(c::text, '|' ORDER BY id)) AS log_digest FROM crm.change_log AS c \gset
-- Not even the superuser may change, delete or truncate it (ZC602) ...
UPDATE crm.change_log SET changed_by = 'regress_rls_rep2' WHERE changed_by = 'regress_rls_rep1'::regrole;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM crm.change_log;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM crm.change_log WHERE row_id = 1;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE crm.change_log;
\echo :LAST_ERROR_SQLSTATE
-- ... also in replica mode, which silences ordinary triggers ...
SET session_replication_role = replica;
DELETE FROM crm.change_log WHERE row_id = 1;
\echo :LAST_ERROR_SQLSTATE
RESET session_replication_role;
-- ... and nobody else may even try (no privilege), nor add entries.
SET ROLE regress_rls_admin;
UPDATE crm.change_log SET changes = '{}';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM crm.change_log;
\echo :LAST_ERROR_SQLSTATE
TRUNCATE crm.change_log;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.change_log (table_name, row_id, operation, changed_by) VALUES ('crm.lead', 2, 'DELETE', 'regress_rls_rep2');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE regress_rls_boss;
DELETE FROM crm.change_log WHERE changed_by = 'regress_rls_rep1'::regrole;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE regress_rls_rep1;
DELETE FROM crm.change_log WHERE changed_by = 'regress_rls_rep1'::regrole;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT count(*) = :log_entries AS same_count, md5(string_agg(c::text, '|' ORDER BY id)) = :'log_digest' AS same_entries
  FROM crm.change_log AS c;

-- Who reads it: managers the entries of their team's actions, admins all,
-- reps and analysts nothing.
-- (The superuser running this test is shown as "(superuser)".)
CREATE TEMP VIEW log_authors WITH (security_invoker = true) AS
    SELECT CASE WHEN r.rolsuper THEN '(superuser)' ELSE r.rolname::text END AS changed_by, count(*) > 0 AS has_entries
      FROM crm.change_log AS c JOIN pg_roles AS r ON r.oid = c.changed_by
     GROUP BY 1;
GRANT SELECT ON log_authors TO PUBLIC;
SET ROLE regress_rls_boss;
SELECT * FROM log_authors ORDER BY 1 COLLATE "C";
RESET ROLE;
SET ROLE regress_rls_boss2;
SELECT * FROM log_authors ORDER BY 1 COLLATE "C";
RESET ROLE;
SET ROLE regress_rls_outsider;
SELECT * FROM log_authors ORDER BY 1 COLLATE "C";
RESET ROLE;
SET ROLE regress_rls_admin;
SELECT * FROM log_authors ORDER BY 1 COLLATE "C";
RESET ROLE;
SET ROLE regress_rls_rep1;
SELECT * FROM log_authors;
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM crm.lead_update_log;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- On rep1's lead, boss reads what rep1 and boss did -- not the phone
-- changes made by the superuser and the admin, which the admin reads.
SET ROLE regress_rls_boss;
SELECT operation, array(SELECT jsonb_object_keys(changes) ORDER BY 1) AS fields,
       CASE WHEN r.rolsuper THEN '(superuser)' ELSE r.rolname::text END AS changed_by
  FROM crm.lead_update_log AS u JOIN pg_roles AS r ON r.rolname = u.changed_by WHERE lead_id = 1 ORDER BY u.id;
RESET ROLE;
SET ROLE regress_rls_admin;
SELECT operation, array(SELECT jsonb_object_keys(changes) ORDER BY 1) AS fields,
       CASE WHEN r.rolsuper THEN '(superuser)' ELSE r.rolname::text END AS changed_by
  FROM crm.lead_update_log AS u JOIN pg_roles AS r ON r.rolname = u.changed_by WHERE lead_id = 1 ORDER BY u.id;
RESET ROLE;

-- ---------------------------------------------------------------------
-- Row-level security cannot be switched off by a rep: with
-- row_security = off a query on a protected table fails instead of
-- returning rows it would not see otherwise.
-- ---------------------------------------------------------------------
SET ROLE regress_rls_rep1;
SET row_security = off;
SELECT count(*) FROM crm.lead;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM crm.pipeline_totals;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM crm.sales_funnel;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.lead SET remarks = 'x' WHERE id = 2;
\echo :LAST_ERROR_SQLSTATE
RESET row_security;
SELECT count(*) AS leads FROM crm.lead;
RESET ROLE;

-- ---------------------------------------------------------------------
-- A line on another rep's deal tells nothing about that deal: the pricing
-- trigger locks the deal and looks its price book up only for a deal the
-- user sees, so the row-level security check refuses the line (42501)
-- rather than a price check naming the hidden deal's price book (ZC102).
-- ---------------------------------------------------------------------
INSERT INTO crm.price_book (name) VALUES ('Beta special') RETURNING id AS beta_book \gset
INSERT INTO crm.opportunity (name, account_id, owner, price_book_id)
VALUES ('Beta special deal', 2, 'regress_rls_rep2', :beta_book) RETURNING id AS beta_special \gset
SET ROLE regress_rls_rep1;
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (:beta_special, 1, 1);
\echo :LAST_ERROR_SQLSTATE
-- A deal that does not exist is reported as before (23503).
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (-1, 1, 1);
\echo :LAST_ERROR_SQLSTATE
-- rep2 adding the same line to its own deal gets the price check.
SET ROLE regress_rls_rep2;
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity) VALUES (:beta_special, 1, 1);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- ---------------------------------------------------------------------
-- Contact roles follow their deal: who sees (updates) the deal sees
-- (writes) its rows, and a row names only a contact the writer sees, as
-- contact_id does (42501).  Loss reasons: everyone reads them, admins write.
-- ---------------------------------------------------------------------
SET ROLE regress_rls_rep1;
INSERT INTO crm.opportunity_contact_role (opportunity_id, contact_id, role, is_primary) VALUES (1, 1, 'Decision Maker', true);
SELECT id, contact_id FROM crm.opportunity WHERE id = 1;
-- Gus Gamma is on Gamma Ltd, which rep1 sees through the Gamma deal
UPDATE crm.opportunity SET contact_id = 3 WHERE id = 3;
-- Hal Hidden is not seen by rep1; rep2's deal is not seen
INSERT INTO crm.opportunity_contact_role (opportunity_id, contact_id) VALUES (1, 5);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.opportunity_contact_role (opportunity_id, contact_id) VALUES (2, 1);
\echo :LAST_ERROR_SQLSTATE
SELECT opportunity_id, contact_id, role, is_primary FROM crm.opportunity_contact_role ORDER BY 1, 2;
RESET ROLE;
SET ROLE regress_rls_rep2;
INSERT INTO crm.opportunity_contact_role (opportunity_id, contact_id, role) VALUES (2, 5, 'Influencer');
SELECT opportunity_id, contact_id, role, is_primary FROM crm.opportunity_contact_role ORDER BY 1, 2;
UPDATE crm.opportunity_contact_role SET role = 'User' WHERE opportunity_id = 1 RETURNING contact_id;
DELETE FROM crm.opportunity_contact_role WHERE opportunity_id = 3 RETURNING contact_id;
RESET ROLE;
SET ROLE regress_rls_boss;
SELECT opportunity_id, contact_id, role, is_primary FROM crm.opportunity_contact_role ORDER BY 1, 2;
RESET ROLE;
SET ROLE regress_rls_admin;
SELECT opportunity_id, contact_id, role, is_primary FROM crm.opportunity_contact_role ORDER BY 1, 2;
RESET ROLE;
-- rep1 takes Gus off the Gamma deal: its contact_id goes with the primary row
SET ROLE regress_rls_rep1;
DELETE FROM crm.opportunity_contact_role WHERE opportunity_id = 3 RETURNING contact_id;
SELECT id, contact_id FROM crm.opportunity WHERE id = 3;
RESET ROLE;
-- analysts read the loss analysis, not the contact roles (people) (42501)
SET ROLE regress_rls_analyst;
SELECT count(*) FROM crm.opportunity_contact_role;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS loss_groups FROM crm.loss_analysis;
SELECT count(*) AS loss_reasons FROM crm.loss_reason;
INSERT INTO crm.loss_reason (code, label) VALUES ('analyst', 'x');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE regress_rls_boss;
UPDATE crm.loss_reason SET active = false WHERE code = 'timing';
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- ---------------------------------------------------------------------
-- crm_privacy_officer reads no table directly: not the sales data, not the
-- change log, not crm.contactable (42501); it reads crm.erasure_log, and
-- reaches every person, whoever owns the rows, only through
-- crm.export_person() and crm.erase_person().  Admins are privacy officers.
-- ---------------------------------------------------------------------
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_rls_officer;
RESET client_min_messages;
CREATE ROLE regress_rls_officer IN ROLE crm_privacy_officer;
INSERT INTO crm.lead (name, email, owner) VALUES ('Pia Private', 'pia@private.example', 'regress_rls_rep2');
SET ROLE regress_rls_officer;
SELECT count(*) FROM crm.lead;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM crm.contact;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM crm.change_log;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM crm.contactable;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS erasures FROM crm.erasure_log;
SELECT crm.export_person('pia@private.example')->'leads'->0->>'name' AS exported;
RESET ROLE;
-- rep1 cannot export rep2's person, nor its own (42501).
SET ROLE regress_rls_rep1;
SELECT crm.export_person('pia@private.example');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM crm.erasure_log;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE regress_rls_admin;
SELECT crm.export_person('pia@private.example')->'leads'->0->>'owner' AS admin_exported;
SELECT count(*) AS admin_erasures FROM crm.erasure_log;
RESET ROLE;
SELECT pg_has_role('crm_admin', 'crm_privacy_officer', 'MEMBER') AS admins_are_officers;
DELETE FROM crm.lead WHERE name = 'Pia Private';
DROP ROLE regress_rls_officer;

-- Notes, attachments and tags (81_notes_and_tags.sql): a note or an
-- attachment is seen with its record, changed by its owner's team; a
-- tagging is seen with its record, added and removed by whoever may update
-- the record.  rep1 reads rep2's account Gamma Ltd (sharing rule): she may
-- write a note on it, which rep2 (the account's owner) then reads but does
-- not change; she may not tag it (she cannot update it).
SET ROLE regress_rls_admin;
INSERT INTO crm.tag (name) VALUES ('Key');
RESET ROLE;
SET ROLE regress_rls_rep1;
INSERT INTO crm.note (body, account_id) VALUES ('rep1 on Gamma', 3);
INSERT INTO crm.note (body, lead_id) VALUES ('rep1 on her lead', 1);
INSERT INTO crm.attachment (lead_id, file_name, mime_type, size_bytes, sha256, storage_uri)
VALUES (1, 'lena.pdf', 'application/pdf', 10, repeat('a', 64), 's3://b/lena.pdf');
INSERT INTO crm.record_tag (tag_id, lead_id) VALUES (1, 1);
INSERT INTO crm.record_tag (tag_id, account_id) VALUES (1, 3);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE regress_rls_rep2;
INSERT INTO crm.note (body, account_id) VALUES ('rep2 on Gamma', 3);
INSERT INTO crm.record_tag (tag_id, account_id) VALUES (1, 3);
UPDATE crm.note SET body = 'changed by rep2' WHERE body = 'rep1 on Gamma';
DELETE FROM crm.note WHERE body = 'rep1 on Gamma';
-- a forged id: rep1's lead, which rep2 does not see (42501)
INSERT INTO crm.note (body, lead_id) VALUES ('rep2 on rep1''s lead', 1);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
CREATE TEMP VIEW visible_notes WITH (security_invoker = true) AS
          SELECT 'note' AS tbl, string_agg(body, ', ' ORDER BY body) AS rows FROM crm.note
UNION ALL SELECT 'attachment', string_agg(file_name, ', ' ORDER BY file_name) FROM crm.attachment
UNION ALL SELECT 'record_tag', string_agg(coalesce('lead ' || lead_id, 'account ' || account_id), ', '
                                         ORDER BY lead_id, account_id) FROM crm.record_tag;
GRANT SELECT ON visible_notes TO PUBLIC;
SET ROLE regress_rls_rep1;
SELECT * FROM visible_notes ORDER BY tbl;
RESET ROLE;
SET ROLE regress_rls_rep2;
SELECT * FROM visible_notes ORDER BY tbl;
RESET ROLE;
SET ROLE regress_rls_boss2;
SELECT * FROM visible_notes ORDER BY tbl;
UPDATE crm.note SET pinned = true WHERE body LIKE 'rep1%' RETURNING body, pinned;
RESET ROLE;
SET ROLE regress_rls_outsider;
SELECT * FROM visible_notes ORDER BY tbl;
UPDATE crm.note SET pinned = true RETURNING body;
DELETE FROM crm.record_tag RETURNING id;
RESET ROLE;
SET ROLE regress_rls_analyst;
SELECT tbl FROM visible_notes;
\echo :LAST_ERROR_SQLSTATE
SELECT tag, kind, records FROM crm.tag_usage ORDER BY kind;
RESET ROLE;
SET ROLE regress_rls_admin;
SELECT * FROM visible_notes ORDER BY tbl;
RESET ROLE;
DROP VIEW visible_notes;

-- The e-mail log: an e-mail is visible with a record it is linked to (each
-- link with its record), and to the team of the role that logged it; the
-- thread view shows each role the threads of the e-mails it sees.  rep2
-- logs a message to rep1's contact (a BCC drop box does the same): rep1
-- sees it, rep2 sees its e-mail but not rep1's link.  Analysts read no mail.
INSERT INTO crm.contact (name, email, owner) VALUES ('Mo Mail', 'mo@mail.example', 'regress_rls_rep1');
INSERT INTO crm.lead (name, company, email, owner) VALUES ('Lu Mail', 'Lu Co', 'lu@mail.example', 'regress_rls_rep2');
SET ROLE regress_rls_rep2;
SELECT crm.log_email('rls-1@mail.example', 'inbound', 'mo@mail.example', ARRAY['rep2@ours.example'], subject => 'to rep1''s contact') > 0 AS logged;
RESET ROLE;
SELECT crm.log_email('rls-2@mail.example', 'inbound', 'lu@mail.example', ARRAY['x@ours.example'], subject => 'rep2''s lead') > 0 AS logged;
SELECT crm.log_email('rls-3@mail.example', 'inbound', 'nobody@mail.example', ARRAY['x@ours.example'], subject => 'nobody''s') > 0 AS logged;
CREATE TEMP VIEW mail_seen WITH (security_invoker = true) AS
    SELECT (SELECT string_agg(subject, ', ' ORDER BY subject) FROM crm.email) AS emails,
           (SELECT string_agg(CASE WHEN k.contact_id IS NOT NULL THEN 'contact ' || c.name ELSE 'lead ' || l.name END, ', ' ORDER BY k.id)
              FROM crm.email_link AS k LEFT JOIN crm.contact AS c ON c.id = k.contact_id
                   LEFT JOIN crm.lead AS l ON l.id = k.lead_id) AS links,
           (SELECT count(*) FROM crm.email_thread) AS threads;
GRANT SELECT ON mail_seen TO PUBLIC;
SET ROLE regress_rls_rep1;   SELECT 'rep1' AS who, * FROM mail_seen;
SET ROLE regress_rls_rep2;   SELECT 'rep2' AS who, * FROM mail_seen;
SET ROLE regress_rls_boss;   SELECT 'boss' AS who, * FROM mail_seen;
SET ROLE regress_rls_boss2;  SELECT 'boss2' AS who, * FROM mail_seen;
SET ROLE regress_rls_outsider; SELECT 'outsider' AS who, * FROM mail_seen;
SET ROLE regress_rls_admin;  SELECT 'admin' AS who, * FROM mail_seen;
SET ROLE regress_rls_analyst;
SELECT count(*) FROM crm.email;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM crm.email_thread;
\echo :LAST_ERROR_SQLSTATE
SELECT crm.log_email('rls-4@mail.example', 'inbound', 'a@mail.example', NULL);
\echo :LAST_ERROR_SQLSTATE
-- nobody but an admin removes an e-mail; nobody writes links
SET ROLE regress_rls_rep1;
DELETE FROM crm.email;
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.email_link SET contact_id = NULL;
\echo :LAST_ERROR_SQLSTATE
SET ROLE regress_rls_admin;
DELETE FROM crm.email WHERE subject = 'nobody''s';
RESET ROLE;
SELECT count(*) AS emails_left FROM crm.email;
DROP VIEW mail_seen;

-- ---------------------------------------------------------------------
-- Custom fields: every role reads the definitions (crm.custom_field), only
-- admins change them (42501 for everyone else).  Values are a column of
-- the row: written by whoever may update the row, read with the rows the
-- role sees, also through crm.custom_field_value and
-- crm.find_by_attributes(); analysts read them, write none.
-- ---------------------------------------------------------------------
SET ROLE regress_rls_admin;
INSERT INTO crm.custom_field (object, name, label, type) VALUES ('account', 'tier', 'Tier', 'number');
UPDATE crm.account SET attributes = '{"tier": 1}' WHERE id IN (1, 2);
SET ROLE regress_rls_rep1;
SELECT name, type FROM crm.custom_field;
INSERT INTO crm.custom_field (object, name, label, type) VALUES ('account', 'mine', 'Mine', 'text');
UPDATE crm.custom_field SET label = 'Mine';
DELETE FROM crm.custom_field;
UPDATE crm.account SET attributes = '{"tier": 2}' WHERE id = 1;      -- its own account
UPDATE crm.account SET attributes = '{"tier": 2}' WHERE id = 2;      -- rep2's: no row
SELECT object, record_id, value_number FROM crm.custom_field_value ORDER BY record_id;
SELECT * FROM crm.find_by_attributes('account', '{"tier": 1}');
SET ROLE regress_rls_boss;
UPDATE crm.custom_field SET label = 'Boss';
SELECT object, record_id, value_number FROM crm.custom_field_value ORDER BY record_id;
SET ROLE regress_rls_analyst;
SELECT object, record_id, value_number FROM crm.custom_field_value ORDER BY record_id;
SELECT * FROM crm.find_by_attributes('account', '{"tier": 1}');
UPDATE crm.account SET attributes = '{}';
INSERT INTO crm.custom_field (object, name, label, type) VALUES ('account', 'mine', 'Mine', 'text');
SET ROLE regress_rls_admin;
SELECT object, record_id, value_number FROM crm.custom_field_value ORDER BY record_id;
BEGIN;
DELETE FROM crm.custom_field WHERE name = 'tier';
UPDATE crm.account SET attributes = attributes - 'tier' WHERE attributes ? 'tier';
COMMIT;
RESET ROLE;

DROP VIEW visible, aggregate_figures, log_authors;
DROP EXTENSION crm CASCADE;
DROP ROLE regress_rls_rep1, regress_rls_rep2, regress_rls_boss, regress_rls_boss2,
    regress_rls_outsider, regress_rls_admin, regress_rls_analyst;
