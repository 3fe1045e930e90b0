-- convert_preview: crm.conversion_preview() takes the arguments of
-- crm.convert_lead() and returns what the conversion would do, one row per
-- record: reuse (with the rule that matched), create, attach, move or fold
-- (rows hanging off the lead that the caller sees).  It writes nothing,
-- takes no row or key locks, and raises the errors the conversion would.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_preview_rep, regress_preview_other;
RESET client_min_messages;
CREATE ROLE regress_preview_rep IN ROLE crm_sales;
CREATE ROLE regress_preview_other IN ROLE crm_sales;
\set VERBOSITY default

INSERT INTO crm.campaign (name) VALUES ('Webinar');                                            -- 1
INSERT INTO crm.account (name, website, owner) VALUES
    ('Acme Inc', 'https://acme.example', 'regress_preview_rep'),                               -- 1
    ('Umbrella', NULL, 'regress_preview_other');                                               -- 2
INSERT INTO crm.contact (name, email, account_id, owner) VALUES
    ('Wile', 'wile@acme.example', 1, 'regress_preview_rep');                                   -- 1
INSERT INTO crm.opportunity (name, account_id, owner) VALUES ('Acme anvils', 1, 'regress_preview_rep');  -- 1
INSERT INTO crm.lead (name, company, email, website, owner) VALUES
    ('Wile E.', 'ACME', 'wile@acme.example', 'www.acme.example', 'regress_preview_rep'),      -- 1
    ('Alice', 'Umbrella Corp', 'alice@umbrella.example', NULL, 'regress_preview_rep'),        -- 2
    ('Road Runner', NULL, 'beep@desert.example', NULL, 'regress_preview_rep');                 -- 3
INSERT INTO crm.activity (type, subject, lead_id, status, owner) VALUES
    ('task', 'Send catalogue', 1, 'Planned', 'regress_preview_rep'),
    ('task', 'Called', 1, 'Completed', 'regress_preview_rep');
INSERT INTO crm.campaign_member (campaign_id, lead_id, owner) VALUES (1, 1, 'regress_preview_rep');
INSERT INTO crm.campaign_member (campaign_id, contact_id, owner) VALUES (1, 1, 'regress_preview_rep');

SET ROLE regress_preview_rep;
-- Reuses account 1 (company and domain) and contact 1 (e-mail), creates the
-- deal; the open task moves to it, the membership folds into contact 1's.
SELECT * FROM crm.conversion_preview(1);
-- Attaching instead; a private customer without matches creates both.
SELECT * FROM crm.conversion_preview(1, opportunity_id => 1);
SELECT * FROM crm.conversion_preview(3, create_opportunity => false);
-- A match the rep cannot see: the row says whose it is, nothing else.
SELECT * FROM crm.conversion_preview(2, opportunity_name => 'Umbrella pilot');

-- Nothing was written and nothing is locked: no transaction id was
-- assigned, and the transaction holds no lock but on relations.
BEGIN;
SELECT count(*) FROM crm.conversion_preview(1);
SELECT pg_current_xact_id_if_assigned() IS NULL AS nothing_written;
SELECT count(*) AS other_locks FROM pg_locks
 WHERE pid = pg_backend_pid() AND locktype NOT IN ('relation', 'virtualxid');
COMMIT;
SELECT id, status FROM crm.lead ORDER BY id;
SELECT count(*) AS opportunities FROM crm.opportunity;

-- The conversion then does what the preview said.
SELECT account_id, contact_id, account_created, contact_created, opportunity_created FROM crm.convert_lead(1);

-- Errors as the conversion's: converted, missing, bad arguments.
\set VERBOSITY terse
SELECT * FROM crm.conversion_preview(1);
SELECT * FROM crm.conversion_preview(99);
SELECT * FROM crm.conversion_preview(NULL);
SELECT * FROM crm.conversion_preview(2, opportunity_id => 1, create_opportunity => false);
SELECT * FROM crm.conversion_preview(2, account_id => 2);
RESET ROLE;
