-- core_model: accounts, contacts (on several accounts), leads and
-- opportunities, with owners and deliberate ON DELETE behaviour.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;

-- Seed 000's fields are all there, with the additions a real CRM needs.
SELECT attrelid::regclass AS "table", string_agg(attname, ', ' ORDER BY attnum) AS columns
  FROM pg_attribute
 WHERE attrelid IN ('crm.account'::regclass, 'crm.contact'::regclass, 'crm.lead'::regclass,
                    'crm.opportunity'::regclass, 'crm.account_contact'::regclass)
   AND attnum > 0 AND NOT attisdropped
 GROUP BY attrelid ORDER BY attrelid::regclass::text;

-- The lead statuses: exactly the seed's six, in the seed's order, plus Converted.
SELECT enum_range(NULL::crm.lead_status);

-- The stages: the seed's seven in pipeline order, with probability and outcome.
SELECT name, sort_order, probability, is_closed, is_won, forecast_category
  FROM crm.opportunity_stage ORDER BY sort_order;

-- Lead sources a capture form can offer.
SELECT code, label FROM crm.lead_source ORDER BY sort_order;

-- A new row is owned by the role that inserts it, with status New Lead.
INSERT INTO crm.account (name, website) VALUES ('Initech', 'initech.example');
INSERT INTO crm.lead (name, company) VALUES ('Peter Gibbons', 'Initech');
SELECT id, name, owner = current_user::regrole AS owned_by_me FROM crm.account;
SELECT id, name, status, source, owner = current_user::regrole AS owned_by_me FROM crm.lead;

-- The owner may be another existing role, but not a role that does not exist.
INSERT INTO crm.lead (name, owner) VALUES ('Milton Waddams', 'crm_sales');
INSERT INTO crm.lead (name, owner) VALUES ('Bill Lumbergh', 'no_such_role_xyz');
\echo :LAST_ERROR_SQLSTATE

-- A contact has a primary account and may work with further accounts,
-- each with a role.
INSERT INTO crm.account (name) VALUES ('Initrode');
INSERT INTO crm.contact (name, email, account_id) VALUES ('Samir N.', 'samir@initech.example', 1);
INSERT INTO crm.account_contact (account_id, contact_id, role) VALUES (2, 1, 'Consultant');
SELECT c.name, c.account_id AS primary_account, ac.account_id AS also_at, ac.role
  FROM crm.contact c LEFT JOIN crm.account_contact ac ON ac.contact_id = c.id;
-- The same link twice is rejected.
INSERT INTO crm.account_contact (account_id, contact_id) VALUES (2, 1);
\echo :LAST_ERROR_SQLSTATE

-- An opportunity belongs to an account and starts in Qualification.
INSERT INTO crm.opportunity (name, account_id, contact_id, amount)
VALUES ('Initech TPS upgrade', 1, 1, 12000);
SELECT name, stage, amount, lead_id FROM crm.opportunity;
-- It must name an account that exists and a stage that exists.
INSERT INTO crm.opportunity (name, account_id) VALUES ('Ghost deal', 999);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.opportunity (name, account_id, stage) VALUES ('Odd deal', 1, 'Dreaming');
\echo :LAST_ERROR_SQLSTATE

-- Admins may add stages; renaming a stage follows through to opportunities.
INSERT INTO crm.opportunity_stage (name, sort_order, probability) VALUES ('Discovery', 15, 15);
UPDATE crm.opportunity_stage SET name = 'Qualified' WHERE name = 'Qualification';
SELECT name, stage FROM crm.opportunity;
-- A stage in use cannot be deleted.
DELETE FROM crm.opportunity_stage WHERE name = 'Qualified';
\echo :LAST_ERROR_SQLSTATE
-- A won stage must be closed.
INSERT INTO crm.opportunity_stage (name, sort_order, probability, is_won) VALUES ('Won?', 99, 100, true);
\echo :LAST_ERROR_SQLSTATE

-- ON DELETE: an account with opportunities cannot be deleted (sales history
-- is not thrown away by accident) ...
DELETE FROM crm.account WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
-- ... deleting a contact clears it from opportunities and drops its links ...
DELETE FROM crm.contact WHERE id = 1;
SELECT name, contact_id FROM crm.opportunity;
SELECT count(*) AS links FROM crm.account_contact;
-- ... and deleting an account clears it as a contact's primary account.
INSERT INTO crm.contact (name, account_id) VALUES ('Joanna', 2);
DELETE FROM crm.account WHERE id = 2;
SELECT name, account_id FROM crm.contact;
