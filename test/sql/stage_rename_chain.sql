-- Stage renames made by one statement that passes names on between stages
-- (a chain: B to C and A to B; a swap round a free name), and deals moved
-- out of a stage by the statement that deletes it.  A rename is no move:
-- the deals keep stage_changed_at and probability, the history records no
-- entry and no passage is counted (src/stage_cache.c recognises the
-- cascade of a rename by the statement that made it, not by the old
-- name being gone).  A move is a move, whatever became of its stage.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;

INSERT INTO crm.account (name) VALUES ('Acme');
INSERT INTO crm.opportunity (name, account_id, amount, stage) VALUES
    ('InReq', 1, 100, 'Requirement'), ('InProp', 1, 100, 'Proposal'),
    ('InNeg', 1, 100, 'Negotiation');
UPDATE crm.opportunity SET probability = 33;   -- kept by a rename, reset by a move
CREATE TEMP TABLE before_rename AS
SELECT id, name, stage_changed_at FROM crm.opportunity;
SELECT count(*) AS entries FROM crm.opportunity_history \gset
SELECT coalesce(sum(passages), 0) AS passages FROM crm_internal.stage_velocity_aggregate \gset

-- A chain in one statement: Requirement to Offer, Proposal to Requirement
-- (the rows are renamed in that order, so no name is taken twice).
UPDATE crm.opportunity_stage
   SET name = CASE name WHEN 'Requirement' THEN 'Offer' ELSE 'Requirement' END
 WHERE name IN ('Proposal', 'Requirement');
SELECT name, stage FROM crm.opportunity ORDER BY id;
-- nobody moved: same stage_changed_at and probability, no entry, no passage
SELECT o.name, o.stage_changed_at = b.stage_changed_at AS same_entry, o.probability
  FROM crm.opportunity AS o JOIN before_rename AS b USING (id) ORDER BY o.id;
SELECT count(*) - :entries AS new_entries FROM crm.opportunity_history;
SELECT coalesce(sum(passages), 0) - :passages AS new_passages FROM crm_internal.stage_velocity_aggregate;
-- both renames are recorded, in order
SELECT old_name, new_name, current_name FROM crm.opportunity_stage_rename ORDER BY id;

-- A swap round a free name in one statement: Offer to Spare, Negotiation
-- to Offer, then Spare to Negotiation: Offer and Negotiation trade names.
UPDATE crm.opportunity_stage SET name = 'Spare' WHERE name = 'Offer';
UPDATE crm.opportunity_stage
   SET name = CASE name WHEN 'Negotiation' THEN 'Offer' ELSE 'Negotiation' END
 WHERE name IN ('Negotiation', 'Spare');
SELECT name, stage FROM crm.opportunity ORDER BY id;
SELECT o.name, o.stage_changed_at = b.stage_changed_at AS same_entry, o.probability
  FROM crm.opportunity AS o JOIN before_rename AS b USING (id) ORDER BY o.id;
SELECT count(*) - :entries AS new_entries FROM crm.opportunity_history;
SELECT coalesce(sum(passages), 0) - :passages AS new_passages FROM crm_internal.stage_velocity_aggregate;

-- A deal moved earlier in the transaction keeps its rename apart from its
-- move too: one entry (the move), none for the chain.
BEGIN;
UPDATE crm.opportunity SET stage = 'Requirement' WHERE name = 'InNeg';
UPDATE crm.opportunity_stage
   SET name = CASE name WHEN 'Qualification' THEN 'Pitch' ELSE 'Qualification' END
 WHERE name IN ('Requirement', 'Qualification');
SELECT name, stage, probability FROM crm.opportunity WHERE name = 'InNeg';
SELECT old_stage, new_stage FROM crm.opportunity_history
 WHERE opportunity_id = (SELECT id FROM crm.opportunity WHERE name = 'InNeg') ORDER BY id;
-- a move after the rename in the same transaction between the names it
-- renamed (Qualification is the old Requirement now) is a move
UPDATE crm.opportunity SET stage = 'Pitch' WHERE name = 'InNeg';
SELECT old_stage, new_stage FROM crm.opportunity_history
 WHERE opportunity_id = (SELECT id FROM crm.opportunity WHERE name = 'InNeg') ORDER BY id;
COMMIT;

-- Deleting the stage that the same statement moves a deal out of, after an
-- earlier move of that deal in the transaction: the move is recorded (an
-- entry, a passage) and the deal takes the new stage's probability.
INSERT INTO crm.opportunity_stage (name, sort_order, probability) VALUES ('Intro', 5, 5);
SELECT count(*) AS entries FROM crm.opportunity_history \gset
SELECT coalesce(sum(passages), 0) AS passages FROM crm_internal.stage_velocity_aggregate \gset
BEGIN;
UPDATE crm.opportunity SET stage = 'Intro' WHERE name = 'InReq';
WITH moved AS (
    UPDATE crm.opportunity SET stage = 'Pitch' WHERE name = 'InReq' RETURNING id)
DELETE FROM crm.opportunity_stage WHERE name = 'Intro';
COMMIT;
SELECT name, stage, probability FROM crm.opportunity WHERE name = 'InReq';
SELECT old_stage, new_stage FROM crm.opportunity_history
 WHERE opportunity_id = (SELECT id FROM crm.opportunity WHERE name = 'InReq') AND id > :entries ORDER BY id;
SELECT coalesce(sum(passages), 0) - :passages AS new_passages FROM crm_internal.stage_velocity_aggregate;
SELECT stage, sum(passages) AS passages FROM crm_internal.stage_velocity_aggregate
 WHERE stage = 'Intro' GROUP BY stage;

-- A move made inside another table's foreign key cascade, in the
-- transaction of a rename, is a move all the same: only the cascade of
-- that rename, from its old name to its new one, is none.
CREATE TABLE deal_tag (tag text PRIMARY KEY);
CREATE TABLE tagged_deal (opportunity_id bigint, tag text REFERENCES deal_tag ON UPDATE CASCADE);
CREATE FUNCTION move_tagged() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE crm.opportunity SET stage = 'Offer' WHERE id = NEW.opportunity_id;
    RETURN NEW;
END $$;
CREATE TRIGGER move_tagged BEFORE UPDATE ON tagged_deal FOR EACH ROW EXECUTE FUNCTION move_tagged();
INSERT INTO deal_tag VALUES ('hot');
INSERT INTO tagged_deal SELECT id, 'hot' FROM crm.opportunity WHERE name = 'InProp';
SELECT count(*) AS entries FROM crm.opportunity_history \gset
BEGIN;
UPDATE crm.opportunity_stage SET name = 'Pitch deck' WHERE name = 'Pitch';
UPDATE crm.opportunity SET stage = 'Pitch deck' WHERE name = 'InProp';
UPDATE deal_tag SET tag = 'warm';   -- its cascade moves InProp on
COMMIT;
SELECT name, stage, probability FROM crm.opportunity WHERE name = 'InProp';
SELECT old_stage, new_stage FROM crm.opportunity_history WHERE id > :entries ORDER BY id;

-- The reports agree with the history.
SELECT * FROM crm.verify_aggregates();
