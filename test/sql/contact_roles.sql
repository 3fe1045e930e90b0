-- contact_roles: the people of a deal (crm.opportunity_contact_role) and
-- their roles; at most one is primary, and the primary one is the deal's
-- contact_id: writing either side moves the other, by every write path
-- (INSERT, UPDATE, DELETE, COPY, MERGE, foreign-key actions, conversion,
-- contact merges).
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_role_rep1, regress_role_rep2;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_role_rep1 IN ROLE crm_sales;
CREATE ROLE regress_role_rep2 IN ROLE crm_sales;

INSERT INTO crm.account (name, owner) VALUES ('Acme', 'regress_role_rep1'), ('Globex', 'regress_role_rep2');
INSERT INTO crm.contact (name, email, account_id, owner) VALUES
    ('Ann', 'ann@acme.example', 1, 'regress_role_rep1'),                 -- 1
    ('Bob', 'bob@acme.example', 1, 'regress_role_rep1'),                 -- 2
    ('Cid', 'cid@acme.example', 1, 'regress_role_rep1'),                 -- 3
    ('Gus', 'gus@globex.example', 2, 'regress_role_rep2');               -- 4
INSERT INTO crm.opportunity (name, account_id, owner) VALUES ('Deal', 1, 'regress_role_rep1');   -- 1

-- The invariant, checked after each step: the primary rows and contact_id agree.
CREATE FUNCTION pg_temp.in_step() RETURNS TABLE (opportunity text, contact_id bigint, primaries bigint, in_step boolean)
LANGUAGE sql AS $$
    SELECT o.name, o.contact_id, count(r.*) FILTER (WHERE r.is_primary),
           count(r.*) FILTER (WHERE r.is_primary) = (o.contact_id IS NOT NULL)::int
           AND NOT EXISTS (SELECT 1 FROM crm.opportunity_contact_role AS x
                            WHERE x.opportunity_id = o.id AND x.is_primary AND x.contact_id IS DISTINCT FROM o.contact_id)
      FROM crm.opportunity AS o LEFT JOIN crm.opportunity_contact_role AS r ON r.opportunity_id = o.id
     GROUP BY o.id ORDER BY o.id $$;
CREATE VIEW pg_temp.roles AS
    SELECT opportunity_id, contact_id, role, is_primary FROM crm.opportunity_contact_role ORDER BY 1, 2;
GRANT SELECT ON pg_temp.roles TO regress_role_rep1;

SET ROLE regress_role_rep1;
-- Setting the deal's contact adds the contact as primary, role Other.
UPDATE crm.opportunity SET contact_id = 1 WHERE id = 1;
SELECT * FROM pg_temp.roles;
SELECT * FROM pg_temp.in_step();
-- Adding people with roles; a role outside the list is refused (23514).
INSERT INTO crm.opportunity_contact_role (opportunity_id, contact_id, role) VALUES (1, 2, 'Economic Buyer');
INSERT INTO crm.opportunity_contact_role (opportunity_id, contact_id, role) VALUES (1, 3, 'Janitor');
\echo :LAST_ERROR_SQLSTATE
-- The same person twice on a deal is refused (23505).
INSERT INTO crm.opportunity_contact_role (opportunity_id, contact_id, role) VALUES (1, 2, 'User');
\echo :LAST_ERROR_SQLSTATE
-- Marking another row primary unmarks the first and sets contact_id.
UPDATE crm.opportunity_contact_role SET is_primary = true WHERE opportunity_id = 1 AND contact_id = 2;
SELECT * FROM pg_temp.roles;
SELECT * FROM pg_temp.in_step();
-- A new row inserted as primary (here by COPY, as a superuser: COPY FROM
-- does not run under row-level security) takes over too.
RESET ROLE;
COPY crm.opportunity_contact_role (opportunity_id, contact_id, role, is_primary) FROM STDIN;
1	3	Technical Evaluator	t
\.
SET ROLE regress_role_rep1;
SELECT * FROM pg_temp.roles;
SELECT * FROM pg_temp.in_step();
-- Changing contact_id to a person already on the deal marks their row,
-- keeping its role.
UPDATE crm.opportunity SET contact_id = 2 WHERE id = 1;
SELECT * FROM pg_temp.roles;
SELECT * FROM pg_temp.in_step();
-- Unmarking the primary row clears contact_id ...
UPDATE crm.opportunity_contact_role SET is_primary = false WHERE opportunity_id = 1 AND contact_id = 2;
SELECT * FROM pg_temp.in_step();
-- ... and clearing contact_id unmarks the primary row (the person stays on the deal).
UPDATE crm.opportunity SET contact_id = 3 WHERE id = 1;
UPDATE crm.opportunity SET contact_id = NULL WHERE id = 1;
SELECT * FROM pg_temp.roles;
SELECT * FROM pg_temp.in_step();
-- MERGE marking one row primary.
MERGE INTO crm.opportunity_contact_role AS r
USING (VALUES (1::bigint, 1::bigint)) AS v (opportunity_id, contact_id)
   ON r.opportunity_id = v.opportunity_id AND r.contact_id = v.contact_id
 WHEN MATCHED THEN UPDATE SET is_primary = true, role = 'Decision Maker';
SELECT * FROM pg_temp.roles;
SELECT * FROM pg_temp.in_step();
-- Deleting the primary row clears contact_id.
DELETE FROM crm.opportunity_contact_role WHERE opportunity_id = 1 AND contact_id = 1;
SELECT * FROM pg_temp.in_step();
-- Several rows marked primary by one statement: refused (27000: the first
-- row marked unmarks another the same statement then writes), nothing changes.
-- Mark one row per statement.
INSERT INTO crm.opportunity_contact_role (opportunity_id, contact_id, is_primary) VALUES (1, 1, true);
UPDATE crm.opportunity_contact_role SET is_primary = true WHERE opportunity_id = 1;
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM pg_temp.in_step();

-- Rights: a role row follows its deal (another rep's deal is not seen, and
-- cannot get rows: 42501) and names only a contact the writer sees (42501).
SET ROLE regress_role_rep2;
SELECT count(*) AS rows_seen FROM crm.opportunity_contact_role;
INSERT INTO crm.opportunity_contact_role (opportunity_id, contact_id) VALUES (1, 4);
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.opportunity_contact_role SET is_primary = true RETURNING contact_id;
SET ROLE regress_role_rep1;
INSERT INTO crm.opportunity_contact_role (opportunity_id, contact_id) VALUES (1, 4);
\echo :LAST_ERROR_SQLSTATE
UPDATE crm.opportunity SET contact_id = 4 WHERE id = 1;
\echo :LAST_ERROR_SQLSTATE
-- Nobody chooses created_at (42501).
INSERT INTO crm.opportunity_contact_role (opportunity_id, contact_id, created_at) VALUES (1, 2, now());
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM pg_temp.in_step();
RESET ROLE;

-- Deleting a contact removes its rows; a primary one clears contact_id.
DELETE FROM crm.contact WHERE id = 1;
SELECT * FROM pg_temp.roles;
SELECT * FROM pg_temp.in_step();
-- Deleting the deal removes its rows.
INSERT INTO crm.opportunity (name, account_id, contact_id, owner) VALUES ('Gone', 1, 2, 'regress_role_rep1');   -- 2
SELECT count(*) AS rows_of_deal_2 FROM crm.opportunity_contact_role WHERE opportunity_id = 2;
DELETE FROM crm.opportunity WHERE id = 2;
SELECT count(*) AS rows_of_deal_2 FROM crm.opportunity_contact_role WHERE opportunity_id = 2;

-- Merging contacts re-points the rows; two rows of one deal fold into one,
-- and whichever of the two was primary, the survivor is primary after.
INSERT INTO crm.contact (name, email, account_id, owner) VALUES
    ('Dee', 'dee@acme.example', 1, 'regress_role_rep1'),                 -- 5
    ('Dee B', 'dee.b@acme.example', 1, 'regress_role_rep1'),             -- 6
    ('Eve', 'eve@acme.example', 1, 'regress_role_rep1'),                 -- 7
    ('Eve B', 'eve.b@acme.example', 1, 'regress_role_rep1');             -- 8
INSERT INTO crm.opportunity (name, account_id, owner) VALUES
    ('Merge 1', 1, 'regress_role_rep1'), ('Merge 2', 1, 'regress_role_rep1'), ('Merge 3', 1, 'regress_role_rep1');  -- 3, 4, 5
-- deal 3: the merged contact (6) is primary, the survivor (5) on it too
INSERT INTO crm.opportunity_contact_role (opportunity_id, contact_id, role) VALUES (3, 5, 'User');
UPDATE crm.opportunity SET contact_id = 6 WHERE id = 3;
-- deal 4: the survivor (7) is primary, the merged contact (8) on it earlier
INSERT INTO crm.opportunity_contact_role (opportunity_id, contact_id, role) VALUES (4, 8, 'Influencer');
UPDATE crm.opportunity SET contact_id = 7 WHERE id = 4;
-- deal 5: only the merged contact (8), primary
UPDATE crm.opportunity SET contact_id = 8 WHERE id = 5;
SELECT * FROM pg_temp.roles WHERE opportunity_id >= 3;
SELECT crm.merge_contacts(5, 6) IS NOT NULL AS merged;
SELECT crm.merge_contacts(7, 8) IS NOT NULL AS merged;
SELECT * FROM pg_temp.roles WHERE opportunity_id >= 3;
SELECT * FROM pg_temp.in_step();

-- Conversion: the converted contact is the new deal's primary contact ...
INSERT INTO crm.lead (name, company, email, owner) VALUES
    ('Hal', 'Hooli', 'hal@hooli.example', 'regress_role_rep1'),
    ('Ida', 'Acme', 'ida@acme.example', 'regress_role_rep1'),
    ('Jo', 'Acme', 'jo@acme.example', 'regress_role_rep1');
SET ROLE regress_role_rep1;
SELECT opportunity_id AS new_deal, contact_id AS hal FROM crm.convert_lead(1) \gset
SELECT contact_id = :hal AS hal_is_contact FROM crm.opportunity WHERE id = :new_deal;
SELECT contact_id = :hal AS hal, role, is_primary FROM crm.opportunity_contact_role WHERE opportunity_id = :new_deal;
-- ... and attached to a deal without a contact, the primary one; attached to
-- a deal that has one, the contact joins it beside the primary (role Other).
INSERT INTO crm.opportunity (name, account_id, owner) VALUES ('Attach', 1, 'regress_role_rep1') RETURNING id AS attach_deal \gset
SELECT contact_id AS ida FROM crm.convert_lead(2, account_id => 1, opportunity_id => :attach_deal) \gset
SELECT contact_id AS jo FROM crm.convert_lead(3, account_id => 1, opportunity_id => :attach_deal) \gset
SELECT contact_id = :ida AS ida_is_contact FROM crm.opportunity WHERE id = :attach_deal;
SELECT CASE contact_id WHEN :ida THEN 'Ida' WHEN :jo THEN 'Jo' END AS person, role, is_primary
  FROM crm.opportunity_contact_role WHERE opportunity_id = :attach_deal ORDER BY 1;
RESET ROLE;
SELECT * FROM pg_temp.in_step();

SET client_min_messages = warning;
DROP EXTENSION crm CASCADE;
DROP ROLE regress_role_rep1, regress_role_rep2;
