-- The status history of a lead whose status a statement changes while
-- another statement changing leads runs inside it (crm.convert_lead() in
-- the RETURNING list of an UPDATE of the lead, a function in an UPDATE).
-- The inner statement ends first, but the outer one took its status first:
-- the entries follow the order the statuses were taken (src/history.c), so
-- every lead's history is a chain (each entry starts from the status the
-- one before it ended with) that ends at the lead's status.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;

INSERT INTO crm.lead (name, company, status) VALUES
    ('Ann', 'Acme', 'New Lead'), ('Bob', 'Bobco', 'New Lead'),
    ('Cid', 'Cidco', 'New Lead'), ('Dot', 'Dotco', 'New Lead');
CREATE VIEW status_trail AS
SELECT l.name, l.status,
       string_agg(coalesce(h.from_status::text, '-') || '>' || h.to_status, ', ' ORDER BY h.id) AS history,
       bool_and(h.from_status IS NOT DISTINCT FROM h.before) AS chained
  FROM crm.lead AS l
  JOIN (SELECT h.*, lag(h.to_status) OVER (PARTITION BY h.lead_id ORDER BY h.id) AS before
          FROM crm.lead_status_history AS h) AS h ON h.lead_id = l.id
 GROUP BY l.id, l.name, l.status ORDER BY l.name;

-- A conversion in the RETURNING list of the UPDATE that made the lead
-- convertible: In Transaction first, then Converted.
UPDATE crm.lead SET status = 'In Transaction' WHERE name = 'Ann'
RETURNING (crm.convert_lead(id)).account_created;
SELECT * FROM status_trail WHERE name = 'Ann';

-- Three statements, one inside the other: Processing, Following Up,
-- then Completed.
CREATE FUNCTION set_status(bigint, crm.lead_status) RETURNS bigint
    LANGUAGE sql AS $$ UPDATE crm.lead SET status = $2 WHERE id = $1 RETURNING id $$;
UPDATE crm.lead SET status = 'Processing' WHERE name = 'Bob'
RETURNING set_status(set_status(id, 'Following Up'), 'Completed');
SELECT * FROM status_trail WHERE name = 'Bob';

-- The inner statement may change other leads too: every entry is kept.
UPDATE crm.lead SET status = 'Processing' WHERE name = 'Cid'
RETURNING set_status((SELECT id FROM crm.lead WHERE name = 'Dot'), 'Following Up');
SELECT * FROM status_trail WHERE name IN ('Cid', 'Dot');

-- A conversion inside an exception block that fails after it: undone, and
-- so are its entries; the outer change stands and is recorded.
CREATE FUNCTION convert_then_fail(lead bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM crm.convert_lead(lead);
    RAISE EXCEPTION 'changed my mind';
EXCEPTION WHEN raise_exception THEN
    RETURN false;
END $$;
UPDATE crm.lead SET status = 'In Transaction' WHERE name = 'Cid' RETURNING convert_then_fail(id);
SELECT * FROM status_trail WHERE name = 'Cid';
SELECT count(*) AS accounts_of_cidco FROM crm.account WHERE name = 'Cidco';

-- A whole transaction rolled back leaves no entry behind.
BEGIN;
UPDATE crm.lead SET status = 'In Transaction' WHERE name = 'Dot' RETURNING (crm.convert_lead(id)).account_created;
ROLLBACK;
UPDATE crm.lead SET status = 'Completed' WHERE name = 'Dot';
SELECT * FROM status_trail WHERE name = 'Dot';

-- An upsert inside the UPDATE (its INSERT and UPDATE events share one
-- statement): the UPDATE's entry, then the upsert's change and capture.
CREATE FUNCTION upsert_status(bigint, crm.lead_status) RETURNS bigint LANGUAGE sql AS $$
    INSERT INTO crm.lead (id, name, status) OVERRIDING SYSTEM VALUE
    VALUES ($1, 'unused', $2), (1000, 'Fay', $2)
        ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status
    RETURNING id $$;
UPDATE crm.lead SET status = 'Processing' WHERE name = 'Dot'
RETURNING upsert_status(id, 'Following Up');
SELECT * FROM status_trail WHERE name IN ('Dot', 'Fay');

-- Every lead's history is a chain ending at its status.
SELECT count(*) AS broken FROM status_trail
 WHERE NOT chained OR history NOT LIKE '%>' || status;

-- With the AFTER UPDATE history trigger disabled (an owner's choice: no
-- update is recorded then), a capture inside an UPDATE still records the
-- captured lead.
ALTER TABLE crm.lead DISABLE TRIGGER record_lead_status_update;
CREATE FUNCTION capture(n text) RETURNS bigint
    LANGUAGE sql AS $$ INSERT INTO crm.lead (name, company) VALUES (n, 'Eveco') RETURNING id $$;
UPDATE crm.lead SET status = 'Processing' WHERE name = 'Dot' RETURNING capture('Eve') > 0 AS captured;
ALTER TABLE crm.lead ENABLE TRIGGER record_lead_status_update;
SELECT * FROM status_trail WHERE name = 'Eve';
