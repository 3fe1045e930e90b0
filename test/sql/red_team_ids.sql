-- red_team_ids: ids are the database's to give, and a conversion attaches
-- the caller's new records only to accounts and contacts the caller already
-- sees, linking only where a plain write could (README "Lead conversion",
-- "Role model").  Each case is an attack that worked on version 0.4.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_victim, regress_attacker, regress_third;
RESET client_min_messages;
CREATE ROLE regress_victim IN ROLE crm_sales;
CREATE ROLE regress_attacker IN ROLE crm_sales;
CREATE ROLE regress_third IN ROLE crm_sales;

-- 1. Forged ids.  No role may choose a row's id, nor change one: INSERT and
-- UPDATE are granted on every column but the identity column (42501).
SET ROLE regress_attacker;
INSERT INTO crm.account (id, name, website, owner)
OVERRIDING SYSTEM VALUE VALUES (-1000, 'VICTIM CORP.', 'https://victim.example', 'regress_attacker');
\echo :LAST_ERROR_SQLSTATE
-- Squatting the next ids: refused the same way, for every table with an id.
INSERT INTO crm.lead (id, name) OVERRIDING SYSTEM VALUE
SELECT g, 'squat ' || g FROM generate_series(1, 1000) AS g;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.account (name, owner) VALUES ('Attacker Inc', 'regress_attacker') RETURNING id AS attacker_account \gset
UPDATE crm.account SET id = DEFAULT WHERE id = :attacker_account;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- The identity columns are the only ones left out; admins are no exception.
SELECT c.relname AS writable_id
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
 WHERE c.relnamespace = 'crm'::regnamespace AND c.relkind = 'r' AND a.attidentity <> ''
   AND (has_column_privilege('crm_admin', c.oid, a.attnum, 'INSERT')
        OR has_column_privilege('crm_admin', c.oid, a.attnum, 'UPDATE')
        OR has_column_privilege('crm_sales', c.oid, a.attnum, 'INSERT')
        OR has_column_privilege('crm_sales', c.oid, a.attnum, 'UPDATE')
        OR has_column_privilege('crm_manager', c.oid, a.attnum, 'INSERT')
        OR has_column_privilege('crm_manager', c.oid, a.attnum, 'UPDATE'));
-- A plain insert still works, and its id comes from the identity.
SET ROLE regress_victim;
INSERT INTO crm.lead (name, company, email, phone, website)
VALUES ('Vera Victim', 'Victim Corp', 'vera@victim.example', '+1 555 0100', 'https://victim.example')
RETURNING id > 0 AS id_given, owner;
RESET ROLE;

-- 2. Planted duplicates.  The attacker creates the company the victim is
-- about to convert, and a contact with the victim's customer's e-mail, and
-- waits.
SET ROLE regress_attacker;
INSERT INTO crm.account (name, website, owner)
VALUES ('VICTIM CORP.', 'https://victim.example', 'regress_attacker') RETURNING id AS planted_account \gset
INSERT INTO crm.contact (name, email, account_id, owner)
VALUES ('Planted Vera', 'VERA@victim.example', :planted_account, 'regress_attacker') RETURNING id AS planted_contact \gset
RESET ROLE;
-- The victim's conversion does not attach to the attacker's hidden records:
-- it creates its own account and contact, and a WARNING (ZC008) says a
-- hidden match exists, naming only its owner.
SET ROLE regress_victim;
SELECT l.id AS vera_lead FROM crm.lead l WHERE l.name = 'Vera Victim' \gset
SELECT account_id <> :planted_account AS own_account, contact_id <> :planted_contact AS own_contact,
       account_created, contact_created
  FROM crm.convert_lead(:vera_lead);
-- The lead's phone went to the victim's new contact.
SELECT c.name, c.email, c.phone, c.owner FROM crm.contact c
  JOIN crm.lead l ON l.contact_id = c.id WHERE l.id = :vera_lead;
RESET ROLE;
-- The attacker reads nothing of the victim's new records.
SET ROLE regress_attacker;
SELECT count(*) AS victim_rows_seen
  FROM (SELECT id FROM crm.contact WHERE owner = 'regress_victim'::regrole
        UNION ALL SELECT id FROM crm.account WHERE owner = 'regress_victim'::regrole
        UNION ALL SELECT id FROM crm.opportunity WHERE owner = 'regress_victim'::regrole) AS t;
RESET ROLE;
-- Nor can the attacker pin the victim's new contact on a deal of its own
-- (42501), as on quotes and orders (reference_rules).
SELECT contact_id AS vera_contact FROM crm.lead WHERE id = :vera_lead \gset
SET ROLE regress_attacker;
INSERT INTO crm.opportunity (name, account_id, contact_id, owner)
VALUES ('Pinned', :planted_account, :vera_contact, 'regress_attacker');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- No forged id is needed: an "Initech" created first by the attacker is
-- not where the victim's Initech lead goes either.  The WARNING's SQLSTATE,
-- as a client sees it:
SET ROLE regress_attacker;
INSERT INTO crm.account (name, owner) VALUES ('Initech', 'regress_attacker');
RESET ROLE;
SET ROLE regress_victim;
INSERT INTO crm.lead (name, company) VALUES ('Peter', 'Initech LLC') RETURNING id AS peter \gset
\set VERBOSITY sqlstate
SELECT account_created FROM crm.convert_lead(:peter);
\set VERBOSITY default
RESET ROLE;
SELECT owner, count(*) FROM crm.account WHERE crm.company_match_key(name) = 'initech' GROUP BY owner ORDER BY owner::text;

-- 3. A visible match is still reused: what the victim sees (its own
-- account from above) is found again by the next conversion.
SET ROLE regress_victim;
INSERT INTO crm.lead (name, company, email) VALUES ('Vince', 'victim corp', 'vince@victim.example') RETURNING id AS vince \gset
SELECT account_id = (SELECT account_id FROM crm.lead WHERE id = :vera_lead) AS same_account, account_created
  FROM crm.convert_lead(:vince);
RESET ROLE;

-- 4. Links a plain write would refuse.  A third rep's contact, linked to an
-- account the victim owns and shares with the attacker through a deal: the
-- attacker converts a lead with that contact's e-mail onto the victim's
-- account.  A plain INSERT of the link is refused (42501) ...
INSERT INTO crm.account (name, owner) VALUES ('Shared Co', 'regress_victim') RETURNING id AS shared \gset
INSERT INTO crm.opportunity (name, account_id, owner) VALUES ('Attacker deal', :shared, 'regress_attacker');
INSERT INTO crm.account (name, owner) VALUES ('Third Co', 'regress_third') RETURNING id AS third_account \gset
INSERT INTO crm.contact (name, email, account_id, owner)
VALUES ('Terry Third', 'terry@third.example', :third_account, 'regress_third') RETURNING id AS terry \gset
INSERT INTO crm.account_contact (account_id, contact_id) VALUES (:third_account, :terry);
-- ... the attacker sees Terry only if some account it sees has Terry; give
-- the attacker a deal on Third Co, so Terry is visible to it.
INSERT INTO crm.opportunity (name, account_id, owner) VALUES ('Third deal', :third_account, 'regress_attacker');
SET ROLE regress_attacker;
SELECT count(*) AS sees_terry FROM crm.contact WHERE id = :terry;
INSERT INTO crm.account_contact (account_id, contact_id) VALUES (:shared, :terry);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO crm.lead (name, email, company) VALUES ('Terry T.', 'TERRY@third.example', 'Shared Co') RETURNING id AS tlead \gset
-- ... and so is the conversion's: Terry is not linked to the victim's
-- account; the attacker's own new contact goes there instead (WARNING).
SELECT contact_id <> :terry AS new_contact, contact_created FROM crm.convert_lead(:tlead, account_id => :shared);
RESET ROLE;
SELECT count(*) AS terry_links_to_shared FROM crm.account_contact WHERE account_id = :shared AND contact_id = :terry;
-- The victim owns Shared Co, so the victim may link a contact it sees.
INSERT INTO crm.contact (name, email, owner) VALUES ('Val', 'val@v.example', 'regress_victim') RETURNING id AS val \gset
INSERT INTO crm.account (name, owner) VALUES ('Val Home', 'regress_victim') RETURNING id AS val_home \gset
UPDATE crm.contact SET account_id = :val_home WHERE id = :val;
SET ROLE regress_victim;
INSERT INTO crm.lead (name, email) VALUES ('Val again', 'VAL@v.example') RETURNING id AS vlead \gset
SELECT contact_id = :val AS reused, contact_created FROM crm.convert_lead(:vlead, account_id => :shared);
SELECT count(*) AS val_linked FROM crm.account_contact WHERE account_id = :shared AND contact_id = :val;
RESET ROLE;

DROP EXTENSION crm CASCADE;
DROP ROLE regress_victim, regress_attacker, regress_third;
