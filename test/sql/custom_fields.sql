-- custom_fields: crm.custom_field and the attributes column as a specification.
-- Admins define fields per object; every write of attributes is checked
-- against them (ZC950 unknown field, ZC951 wrong value, ZC952 required field
-- missing); the registry cannot change in a way the stored values do not
-- satisfy (ZC951, ZC952, ZC953 checked at commit).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_cf_admin, regress_cf_rep, regress_cf_analyst;
RESET client_min_messages;
\set VERBOSITY terse
SET DateStyle = ISO;
CREATE ROLE regress_cf_admin IN ROLE crm_admin;
CREATE ROLE regress_cf_rep IN ROLE crm_sales;
CREATE ROLE regress_cf_analyst IN ROLE crm_analyst;

-- The admin defines fields of each type.
SET ROLE regress_cf_admin;
INSERT INTO crm.custom_field (object, name, label, type, options) VALUES
    ('account', 'region', 'Sales region', 'pick', ARRAY['EMEA', 'AMER', 'APAC']),
    ('account', 'employees', 'Employees', 'number', NULL),
    ('account', 'founded', 'Founded on', 'date', NULL),
    ('account', 'partner', 'Partner', 'boolean', NULL),
    ('account', 'note', 'Note', 'text', NULL),
    ('lead', 'region', 'Sales region', 'pick', ARRAY['EMEA', 'AMER']),
    ('opportunity', 'region', 'Sales region', 'text', NULL);
-- Bad definitions: unknown object, bad name, pick without options, options
-- on another type.
INSERT INTO crm.custom_field (object, name, label, type) VALUES ('change_log', 'x', 'X', 'text');
INSERT INTO crm.custom_field (object, name, label, type) VALUES ('account', 'Bad Name', 'X', 'text');
INSERT INTO crm.custom_field (object, name, label, type) VALUES ('account', 'size', 'Size', 'pick');
INSERT INTO crm.custom_field (object, name, label, type, options) VALUES ('account', 'size', 'Size', 'text', '{a}');
INSERT INTO crm.custom_field (object, name, label, type) VALUES ('account', 'size', 'Size', 'float');
RESET ROLE;

-- A rep reads the registry but cannot change it.
SET ROLE regress_cf_rep;
SELECT object, name, type, required, options FROM crm.custom_field ORDER BY 1, 2;
INSERT INTO crm.custom_field (object, name, label, type) VALUES ('account', 'x', 'X', 'text');
DELETE FROM crm.custom_field;

-- Valid values of every type.
INSERT INTO crm.account (name, attributes) VALUES
    ('Acme', '{"region": "EMEA", "employees": 250, "founded": "1999-02-28", "partner": true, "note": "key account"}'),
    ('Globex', '{"region": "AMER"}'),
    ('Initech', '{}');
SELECT name, attributes FROM crm.account ORDER BY name;
-- Every error names the field.
INSERT INTO crm.account (name, attributes) VALUES ('X', '{"colour": "red"}');        -- unknown field
INSERT INTO crm.account (name, attributes) VALUES ('X', '{"region": "Mars"}');       -- not an option
INSERT INTO crm.account (name, attributes) VALUES ('X', '{"region": 1}');            -- pick is a string
INSERT INTO crm.account (name, attributes) VALUES ('X', '{"employees": "250"}');     -- number
INSERT INTO crm.account (name, attributes) VALUES ('X', '{"founded": "28.02.1999"}'); -- date form
INSERT INTO crm.account (name, attributes) VALUES ('X', '{"founded": "1999-02-29"}'); -- no such day
INSERT INTO crm.account (name, attributes) VALUES ('X', '{"founded": "2000-13-01"}');
INSERT INTO crm.account (name, attributes) VALUES ('X', '{"partner": "yes"}');       -- boolean
INSERT INTO crm.account (name, attributes) VALUES ('X', '{"note": 5}');              -- text
INSERT INTO crm.account (name, attributes) VALUES ('X', '{"note": {"a": 1}}');
INSERT INTO crm.account (name, attributes) VALUES ('X', jsonb_build_object('note', repeat('x', 2001)));
INSERT INTO crm.account (name, attributes) VALUES ('X', '{"note": null}');           -- null: leave the key out
INSERT INTO crm.account (name, attributes) VALUES ('X', '[1, 2]');                   -- not an object
INSERT INTO crm.account (name, attributes) VALUES ('X', '"EMEA"');
INSERT INTO crm.account (name, attributes) VALUES ('X', NULL);
-- a field of another object is unknown here
INSERT INTO crm.contact (name, attributes) VALUES ('Y', '{"region": "EMEA"}');
-- the longest text is fine
INSERT INTO crm.account (name, attributes) VALUES ('Long', jsonb_build_object('note', repeat('é', 2000)));
-- updates are checked the same way; one that leaves attributes alone is not
UPDATE crm.account SET attributes = attributes || '{"region": "Mars"}' WHERE name = 'Acme';
UPDATE crm.account SET attributes = attributes || '{"region": "APAC"}' WHERE name = 'Acme';
UPDATE crm.account SET industry = 'Retail' WHERE name = 'Acme';
RESET ROLE;
-- COPY and MERGE go through the same trigger
COPY crm.account (name, attributes) FROM stdin;
Copied	{"region": "Atlantis"}
\.
MERGE INTO crm.account AS a USING (VALUES ('Globex')) AS s (name) ON a.name = s.name
 WHEN MATCHED THEN UPDATE SET attributes = '{"region": "Atlantis"}';

-- The change log records attributes like any column.
SELECT l.operation, l.changes -> 'attributes' AS attributes
  FROM crm.change_log AS l JOIN crm.account AS a ON a.id = l.row_id
 WHERE l.table_name = 'crm.account'::regclass AND a.name = 'Acme' ORDER BY l.id;

-- Required fields: refused on a new row without the field...
SET ROLE regress_cf_admin;
INSERT INTO crm.custom_field (object, name, label, type, required) VALUES ('contact', 'tier', 'Tier', 'number', true);
INSERT INTO crm.contact (name) VALUES ('Without tier');
INSERT INTO crm.contact (name, attributes) VALUES ('With tier', '{"tier": 1}');
UPDATE crm.contact SET attributes = '{}' WHERE name = 'With tier';
-- ...and cannot be made required while rows lack it (checked at commit).
UPDATE crm.custom_field SET required = true WHERE object = 'account' AND name = 'region';
-- Filling the rows in the same transaction makes it possible.
BEGIN;
UPDATE crm.custom_field SET required = true WHERE object = 'account' AND name = 'region';
UPDATE crm.account SET attributes = attributes || '{"region": "EMEA"}' WHERE NOT attributes ? 'region';
COMMIT;
SELECT required FROM crm.custom_field WHERE object = 'account' AND name = 'region';
INSERT INTO crm.account (name) VALUES ('No region');

-- Registry edits the values do not satisfy are refused at commit.
UPDATE crm.custom_field SET type = 'number', options = NULL WHERE object = 'account' AND name = 'region';
UPDATE crm.custom_field SET options = ARRAY['EMEA', 'AMER'] WHERE object = 'account' AND name = 'region';
UPDATE crm.custom_field SET options = ARRAY['EMEA', 'AMER', 'APAC', 'LATAM'] WHERE object = 'account' AND name = 'region';
UPDATE crm.custom_field SET label = 'Employees (2026)' WHERE object = 'account' AND name = 'employees';
UPDATE crm.custom_field SET type = 'text' WHERE object = 'account' AND name = 'employees';
-- Removing a field some rows hold is refused...
DELETE FROM crm.custom_field WHERE object = 'account' AND name = 'note';
-- ...unless the admin clears the values in the same transaction.
BEGIN;
DELETE FROM crm.custom_field WHERE object = 'account' AND name = 'note';
UPDATE crm.account SET attributes = attributes - 'note' WHERE attributes ? 'note';
COMMIT;
SELECT count(*) FROM crm.custom_field WHERE name = 'note';
-- the field is gone for every later write (each backend's copy of the
-- registry is invalidated), also after a rolled-back definition
UPDATE crm.account SET attributes = attributes || '{"note": "back"}' WHERE name = 'Acme';
BEGIN;
INSERT INTO crm.custom_field (object, name, label, type) VALUES ('account', 'size', 'Size', 'number');
UPDATE crm.account SET attributes = attributes || '{"size": 3}' WHERE name = 'Acme';
ROLLBACK;
UPDATE crm.account SET attributes = attributes || '{"size": 3}' WHERE name = 'Acme';
-- renaming a field in use is refused like removing it
UPDATE crm.custom_field SET name = 'joined' WHERE object = 'account' AND name = 'founded';
-- a field nobody holds goes at once
INSERT INTO crm.custom_field (object, name, label, type) VALUES ('account', 'unused', 'Unused', 'text');
DELETE FROM crm.custom_field WHERE object = 'account' AND name = 'unused';
RESET ROLE;

-- The SQLSTATEs (README "SQLSTATEs"): ZC950 unknown field, ZC951 invalid
-- value (also of attributes that are not an object, and of stored values at
-- a registry change), ZC952 required field missing, ZC953 field in use.
CREATE FUNCTION pg_temp.sqlstate_of(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    SET CONSTRAINTS ALL IMMEDIATE;  -- the commit-time checks fire here
    SET CONSTRAINTS ALL DEFERRED;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
SELECT pg_temp.sqlstate_of(s) FROM (VALUES
    ($$INSERT INTO crm.account (name, attributes) VALUES ('X', '{"colour": "red"}')$$),
    ($$INSERT INTO crm.account (name, attributes) VALUES ('X', '{"region": "Mars"}')$$),
    ($$INSERT INTO crm.account (name, attributes) VALUES ('X', '[]')$$),
    ($$INSERT INTO crm.account (name) VALUES ('X')$$),
    ($$UPDATE crm.custom_field SET type = 'date', options = NULL WHERE object = 'account' AND name = 'employees'$$),
    ($$DELETE FROM crm.custom_field WHERE object = 'account' AND name = 'region'$$)) AS t (s);

-- BI: one row per value, typed.
SET ROLE regress_cf_analyst;
SELECT object, field, type, value_text, value_number, value_date, value_boolean
  FROM crm.custom_field_value ORDER BY object, record_id, field;
SELECT value_text AS region, count(*) FROM crm.custom_field_value
 WHERE object = 'account' AND field = 'region' GROUP BY 1 ORDER BY 1;
RESET ROLE;
-- a rep sees the values of the rows it sees
SET ROLE regress_cf_admin;
INSERT INTO crm.account (name, attributes) VALUES ('Admin only', '{"region": "APAC"}');
SET ROLE regress_cf_rep;
SELECT count(*) FROM crm.custom_field_value WHERE record_id = (SELECT max(id) FROM crm.account);
RESET ROLE;

-- The containment query uses the GIN index (as the table owner).
CREATE FUNCTION pg_temp.uses_index(query text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    SET LOCAL enable_seqscan = off;
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
        IF line LIKE '%account_attributes_idx%' THEN
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END
$$;
SELECT pg_temp.uses_index($$SELECT id FROM crm.account WHERE attributes @> '{"region": "EMEA"}'$$);
SELECT name FROM crm.account WHERE attributes @> '{"region": "EMEA"}' ORDER BY name;
-- Under row-level security a rep's own containment query cannot use it
-- (jsonb containment is not LEAKPROOF, so it runs after the policies)...
SET ROLE regress_cf_rep;
SELECT pg_temp.uses_index($$SELECT id FROM crm.account WHERE attributes @> '{"region": "EMEA"}'$$);
-- ...crm.find_by_attributes is index-backed and returns the ids the rep sees.
SELECT a.name FROM crm.find_by_attributes('account', '{"region": "APAC"}') AS f (id)
  JOIN crm.account AS a ON a.id = f.id ORDER BY a.id;
SELECT count(*) FROM crm.find_by_attributes('account', '{}');
SELECT crm.find_by_attributes('change_log', '{}');
SELECT crm.find_by_attributes('account', '["EMEA"]');
SELECT crm.find_by_attributes('account', NULL);
RESET ROLE;
SELECT a.name FROM crm.find_by_attributes('account', '{"region": "APAC"}') AS f (id)
  JOIN crm.account AS a ON a.id = f.id ORDER BY a.id;

-- Conversion copies the lead's values to the account, contact and
-- opportunity fields of the same name and type; a required field of a
-- record the conversion makes must come from the lead (ZC952).
SET ROLE regress_cf_admin;
INSERT INTO crm.custom_field (object, name, label, type) VALUES
    ('lead', 'budget', 'Budget', 'number'),
    ('opportunity', 'budget', 'Budget', 'number');
SET ROLE regress_cf_rep;
INSERT INTO crm.lead (name, company, email, attributes)
VALUES ('Lee Lead', 'Lead Co', 'lee@lead.example', '{"region": "AMER", "budget": 5000}');
SELECT crm.convert_lead(id) FROM crm.lead WHERE name = 'Lee Lead';       -- contact.tier is required
RESET ROLE;
SET ROLE regress_cf_admin;
INSERT INTO crm.custom_field (object, name, label, type) VALUES ('lead', 'tier', 'Tier', 'number');
SET ROLE regress_cf_rep;
UPDATE crm.lead SET attributes = attributes || '{"tier": 2}' WHERE name = 'Lee Lead';
SELECT (crm.convert_lead(id)).lead_id IS NOT NULL AS converted FROM crm.lead WHERE name = 'Lee Lead';
-- account.region (pick, AMER an option) and contact.tier copied;
-- opportunity.region is text, the lead's a pick: not copied; budget copied
SELECT 'account' AS object, a.attributes FROM crm.account AS a WHERE a.name = 'Lead Co'
UNION ALL SELECT 'contact', c.attributes FROM crm.contact AS c WHERE c.name = 'Lee Lead'
UNION ALL SELECT 'opportunity', o.attributes FROM crm.opportunity AS o
           JOIN crm.lead AS l ON l.id = o.lead_id WHERE l.name = 'Lee Lead';
-- a reused account keeps its own value
INSERT INTO crm.lead (name, company, email, attributes)
VALUES ('Lou Lead', 'Lead Co', 'lou@lead.example', '{"region": "EMEA", "tier": 1}');
SELECT (crm.convert_lead(l.id, account_id => a.id)).account_id = a.id AS reused
  FROM crm.lead AS l, crm.account AS a WHERE l.name = 'Lou Lead' AND a.name = 'Lead Co';
SELECT attributes FROM crm.account WHERE name = 'Lead Co';
SELECT attributes FROM crm.contact WHERE name = 'Lou Lead';

-- Merging: the survivor keeps its values and gets those it lacks from the
-- merged record; take => ARRAY['attributes'] takes the merged record's.
INSERT INTO crm.account (name, attributes) VALUES
    ('Survivor', '{"region": "EMEA"}'),
    ('Merged', '{"region": "AMER", "employees": 10}'),
    ('Merged 2', '{"region": "APAC"}');
SELECT crm.merge_accounts(s.id, m.id) = s.id AS merged
  FROM crm.account AS s, crm.account AS m WHERE s.name = 'Survivor' AND m.name = 'Merged';
SELECT attributes FROM crm.account WHERE name = 'Survivor';
SELECT crm.merge_accounts(s.id, m.id, take => ARRAY['attributes']) = s.id AS merged
  FROM crm.account AS s, crm.account AS m WHERE s.name = 'Survivor' AND m.name = 'Merged 2';
SELECT attributes FROM crm.account WHERE name = 'Survivor';
RESET ROLE;

-- Erasure: the person's text values become "[erased]", other values stay;
-- the export has them (whole rows).
SET ROLE regress_cf_admin;
INSERT INTO crm.custom_field (object, name, label, type) VALUES ('contact', 'hobby', 'Hobby', 'text');
UPDATE crm.contact SET attributes = attributes || '{"hobby": "sailing with Lou"}' WHERE name = 'Lou Lead';
SELECT crm.export_person('lou@lead.example') -> 'contacts' -> 0 -> 'attributes' AS exported;
SELECT leads, contacts FROM crm.erase_person('lou@lead.example', 'test');
RESET ROLE;
SELECT l.attributes AS lead, c.attributes AS contact
  FROM crm.lead AS l, crm.contact AS c WHERE l.email IS NULL AND c.id = l.contact_id;

DROP OWNED BY regress_cf_admin, regress_cf_rep, regress_cf_analyst;
DROP ROLE regress_cf_admin, regress_cf_rep, regress_cf_analyst;
