-- The opportunity history of a deal that a statement changes while another
-- statement on crm.opportunity runs inside it (a function in its RETURNING
-- list).  The inner statement ends first, but the outer one changed the
-- deal first: the entries follow the order of the changes (by id;
-- src/history_frames.c), so a deal's last entry is its state, and
-- crm.pipeline_as_of() and the kept stage passages agree with the deals.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;

INSERT INTO crm.account (name) VALUES ('Acme');
INSERT INTO crm.opportunity (name, account_id, amount, stage) VALUES
    ('One', 1, 100, 'Qualification'), ('Two', 1, 200, 'Qualification');
CREATE FUNCTION move_to(bigint, text) RETURNS bigint
    LANGUAGE sql AS $$ UPDATE crm.opportunity SET stage = $2 WHERE id = $1 RETURNING id $$;
CREATE VIEW deal_trail AS
SELECT o.name, string_agg(coalesce(h.old_stage, '-') || '>' || h.new_stage
                          || CASE WHEN h.deleted THEN ' (deleted)' ELSE '' END, ', ' ORDER BY h.id) AS history
  FROM crm.opportunity_history AS h
  JOIN (SELECT DISTINCT opportunity_id, name FROM (
          SELECT id AS opportunity_id, name FROM crm.opportunity
          UNION ALL SELECT 3, 'Three') x) AS o USING (opportunity_id)
 GROUP BY o.name ORDER BY o.name;

-- A move in the RETURNING list of a move: Requirement, then Proposal.
UPDATE crm.opportunity SET stage = 'Requirement' WHERE name = 'One'
RETURNING move_to(id, 'Proposal');
SELECT * FROM deal_trail WHERE name = 'One';

-- An insert whose RETURNING list moves the new deal on: created first.
INSERT INTO crm.opportunity (name, account_id, amount, stage) VALUES ('Three', 1, 300, 'Qualification')
RETURNING move_to(id, 'Negotiation');
SELECT * FROM deal_trail WHERE name = 'Three';

-- A deletion in the RETURNING list of a move: the deletion is the last entry.
CREATE FUNCTION drop_deal(bigint) RETURNS bigint
    LANGUAGE sql AS $$ DELETE FROM crm.opportunity WHERE id = $1 RETURNING id $$;
UPDATE crm.opportunity SET amount = 350 WHERE name = 'Three' RETURNING drop_deal(id);
SELECT * FROM deal_trail WHERE name = 'Three';

-- A move undone by an exception block leaves no entry; the outer one stands.
CREATE FUNCTION move_then_fail(bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM move_to($1, 'Negotiation');
    RAISE EXCEPTION 'changed my mind';
EXCEPTION WHEN raise_exception THEN
    RETURN false;
END $$;
UPDATE crm.opportunity SET stage = 'Requirement' WHERE name = 'Two' RETURNING move_then_fail(id);
SELECT * FROM deal_trail WHERE name = 'Two';

-- The history read as of now is the pipeline, and the kept passages are
-- the history's.
SELECT count(*) AS as_of_differences
  FROM ((SELECT * FROM crm.pipeline_as_of(clock_timestamp()) EXCEPT ALL SELECT * FROM crm.pipeline_by_stage)
        UNION ALL
        (SELECT * FROM crm.pipeline_by_stage EXCEPT ALL SELECT * FROM crm.pipeline_as_of(clock_timestamp()))) d;
SELECT * FROM crm.verify_aggregates();
