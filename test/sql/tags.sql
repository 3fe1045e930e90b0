-- tags: labels on leads, accounts, contacts and opportunities
-- (sql/install/81_notes_and_tags.sql).  Admins and managers keep the tags
-- (names unique regardless of case); whoever may update a record tags it,
-- once per tag; taggings follow conversions (to the contact) and merges,
-- folding a tag both records carry; crm.tag_usage counts what each role sees.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_tag_rep1, regress_tag_rep2, regress_tag_boss, regress_tag_admin, regress_tag_analyst;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_tag_rep1 IN ROLE crm_sales;
CREATE ROLE regress_tag_rep2 IN ROLE crm_sales;
CREATE ROLE regress_tag_boss IN ROLE crm_manager;
CREATE ROLE regress_tag_admin IN ROLE crm_admin;
CREATE ROLE regress_tag_analyst IN ROLE crm_analyst;
INSERT INTO crm.reporting_line (member, manager) VALUES ('regress_tag_rep1', 'regress_tag_boss');

-- Managers and admins create tags; reps cannot (42501).
SET ROLE regress_tag_boss;
INSERT INTO crm.tag (name, color) VALUES ('VIP', '#ff0000'), ('Trade fair 2026', NULL);
RESET ROLE;
SET ROLE regress_tag_admin;
INSERT INTO crm.tag (name) VALUES ('Reseller');
RESET ROLE;
SET ROLE regress_tag_rep1;
INSERT INTO crm.tag (name) VALUES ('Mine');
SELECT id, name, color FROM crm.tag ORDER BY id;
RESET ROLE;
-- Errors: a name taken in another case (23505), blank or padded names and
-- a colour not #rrggbb in lower case (23514).
SET ROLE regress_tag_boss;
INSERT INTO crm.tag (name) VALUES ('vip');
INSERT INTO crm.tag (name) VALUES ('');
INSERT INTO crm.tag (name) VALUES (' VIP2');
INSERT INTO crm.tag (name, color) VALUES ('Red', 'red');
INSERT INTO crm.tag (name, color) VALUES ('Red', '#FF0000');
RESET ROLE;

SET ROLE regress_tag_rep1;
INSERT INTO crm.lead (name, company, email) VALUES ('Tina Tag', 'Tina Ltd', 'tina@tina.example');      -- lead 1
INSERT INTO crm.account (name) VALUES ('Alpha Corp');                                                    -- account 1
INSERT INTO crm.contact (name, account_id, email) VALUES ('Carl Alpha', 1, 'carl@alpha.example');        -- contact 1
INSERT INTO crm.contact (name, account_id, email) VALUES ('Carl Alpha', 1, 'carl.a@alpha.example');      -- contact 2
RESET ROLE;
SET ROLE regress_tag_rep2;
INSERT INTO crm.lead (name, company) VALUES ('Rita Rep2', 'Rita Inc');                                   -- lead 2
INSERT INTO crm.account (name) VALUES ('Beta GmbH');                                                     -- account 2
RESET ROLE;

-- Tagging her own records.
SET ROLE regress_tag_rep1;
INSERT INTO crm.record_tag (tag_id, lead_id) VALUES (1, 1), (2, 1);
INSERT INTO crm.record_tag (tag_id, account_id) VALUES (1, 1);
INSERT INTO crm.record_tag (tag_id, contact_id) VALUES (1, 1), (2, 1), (1, 2), (3, 2);
-- a record carries a tag once (23505)
INSERT INTO crm.record_tag (tag_id, lead_id) VALUES (1, 1);
-- tagging nothing or two records (23514), a missing tag (23503)
RESET ROLE;
SET ROLE regress_tag_admin;
INSERT INTO crm.record_tag (tag_id) VALUES (1);
INSERT INTO crm.record_tag (tag_id, lead_id, account_id) VALUES (1, 1, 1);
INSERT INTO crm.record_tag (tag_id, lead_id) VALUES (999, 1);
RESET ROLE;
SET ROLE regress_tag_rep1;
-- a record she cannot update (rep2's lead, hidden; rep2's account): the
-- policy refuses (42501)
INSERT INTO crm.record_tag (tag_id, lead_id) VALUES (1, 2);
INSERT INTO crm.record_tag (tag_id, account_id) VALUES (1, 2);
-- a tagging owned by someone else (42501)
INSERT INTO crm.record_tag (tag_id, account_id, owner) VALUES (2, 1, 'regress_tag_rep2');
-- taggings are not updated (42501): remove and add
UPDATE crm.record_tag SET tag_id = 3 WHERE lead_id = 1 AND tag_id = 2;
RESET ROLE;
-- Rep2 sees none of rep1's taggings and removes none.
SET ROLE regress_tag_rep2;
SELECT count(*) AS rep2_sees FROM crm.record_tag;
DELETE FROM crm.record_tag;
INSERT INTO crm.record_tag (tag_id, lead_id) VALUES (1, 2);
RESET ROLE;
-- Her manager removes one of her taggings.
SET ROLE regress_tag_boss;
DELETE FROM crm.record_tag WHERE account_id = 1 RETURNING tag_id, account_id;
INSERT INTO crm.record_tag (tag_id, account_id) VALUES (3, 1);
RESET ROLE;

-- Tag counts by kind: each role counts what it sees.
SET ROLE regress_tag_rep1;
SELECT tag, kind, records FROM crm.tag_usage ORDER BY tag, kind;
RESET ROLE;
SET ROLE regress_tag_rep2;
SELECT tag, kind, records FROM crm.tag_usage ORDER BY tag, kind;
RESET ROLE;
SET ROLE regress_tag_analyst;
SELECT tag, kind, records FROM crm.tag_usage ORDER BY tag, kind;
RESET ROLE;

-- Merging contact 2 into contact 1: both carry VIP; the two taggings fold
-- into one (the earlier, contact 1's), Reseller moves.
SET ROLE regress_tag_rep1;
SELECT crm.merge_contacts(1, 2) IS NOT NULL AS merged;
SELECT t.name, r.contact_id FROM crm.record_tag r JOIN crm.tag t ON t.id = r.tag_id
 WHERE r.contact_id IS NOT NULL ORDER BY t.name;

-- Converting lead 1 onto contact 1 (which already carries VIP and Trade
-- fair 2026): the lead's taggings of them fold into the contact's.
SELECT action, kind, rule, name FROM crm.conversion_preview(1, account_id => 1, contact_id => 1) WHERE kind = 'record_tag' ORDER BY name;
SELECT (crm.convert_lead(1, account_id => 1, contact_id => 1)).contact_id AS contact;
SELECT t.name, r.lead_id, r.contact_id FROM crm.record_tag r JOIN crm.tag t ON t.id = r.tag_id
 WHERE r.lead_id = 1 OR r.contact_id = 1 ORDER BY t.name;
RESET ROLE;

-- A rep cannot delete a tag; a manager can, and its taggings go with it.
SET ROLE regress_tag_rep1;
DELETE FROM crm.tag WHERE name = 'VIP';
RESET ROLE;
SET ROLE regress_tag_boss;
UPDATE crm.tag SET color = '#00aa00' WHERE name = 'Reseller' RETURNING name, color;
DELETE FROM crm.tag WHERE name = 'VIP';
RESET ROLE;
SELECT count(*) AS vip_taggings FROM crm.record_tag WHERE tag_id = 1;
-- Deleting a record deletes its taggings.
SET ROLE regress_tag_rep2;
INSERT INTO crm.record_tag (tag_id, account_id) VALUES (2, 2);
DELETE FROM crm.account WHERE id = 2;
RESET ROLE;
SELECT count(*) AS taggings_of_deleted_account FROM crm.record_tag WHERE account_id = 2;

DROP EXTENSION crm CASCADE;
DROP ROLE regress_tag_rep1, regress_tag_rep2, regress_tag_boss, regress_tag_admin, regress_tag_analyst;
