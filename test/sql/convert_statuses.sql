-- convert_statuses: crm.settings.convertible_statuses is the verification
-- step: crm.convert_lead() refuses a lead in any other status with ZC003.
-- The default is every status but Not Qualified; the list is never empty,
-- has no NULL and never holds Converted.  Only admins change it.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_status_rep;
RESET client_min_messages;
CREATE ROLE regress_status_rep IN ROLE crm_sales;
\set VERBOSITY default

SELECT convertible_statuses FROM crm.settings;
INSERT INTO crm.lead (name, status) VALUES
    ('New one', 'New Lead'), ('Working', 'Processing'), ('Checked', 'Completed'), ('Junk', 'Not Qualified');

-- Only verified leads (Completed) may be converted.
UPDATE crm.settings SET convertible_statuses = '{Completed}';
SELECT lead_id, account_created FROM crm.convert_lead(3);
SELECT crm.convert_lead(1);
SELECT crm.convert_lead(2);
-- Not Qualified keeps its own message
SELECT crm.convert_lead(4);
-- the preview refuses the same way
SELECT * FROM crm.conversion_preview(1);

-- Bad lists are refused.
\set VERBOSITY terse
UPDATE crm.settings SET convertible_statuses = '{}';
UPDATE crm.settings SET convertible_statuses = '{Completed,Converted}';
UPDATE crm.settings SET convertible_statuses = ARRAY['Completed', NULL]::crm.lead_status[];
UPDATE crm.settings SET convertible_statuses = '{{Completed},{Processing}}';
UPDATE crm.settings SET convertible_statuses = NULL;
UPDATE crm.settings SET convertible_statuses = '{Qualified}';

\set VERBOSITY default
-- A rep may not change it.
SET ROLE regress_status_rep;
UPDATE crm.settings SET convertible_statuses = '{New Lead}';
RESET ROLE;

-- Letting Not Qualified through is an admin's choice.
UPDATE crm.settings SET convertible_statuses = '{Not Qualified,Processing}';
SELECT lead_id FROM crm.convert_lead(4);
SELECT lead_id FROM crm.convert_lead(2);
SELECT id, status FROM crm.lead ORDER BY id;
