-- The stages each backend keeps for the opportunity triggers
-- (src/stage_cache.c): every change of crm.opportunity_stage empties the
-- copies, so a deal written next follows the stages as they are now, also
-- within the transaction that changed them and after a rollback.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
RESET client_min_messages;

INSERT INTO crm.account (name) VALUES ('Acme');
INSERT INTO crm.opportunity (name, account_id, amount) VALUES ('One', 1, 100), ('Two', 1, 100);
-- the copy is filled: the default probability of Proposal
UPDATE crm.opportunity SET stage = 'Proposal' WHERE name = 'One';
SELECT name, stage, probability FROM crm.opportunity ORDER BY id;

-- A new default probability applies to the next deal moved there.
UPDATE crm.opportunity_stage SET probability = 55 WHERE name = 'Proposal';
UPDATE crm.opportunity SET stage = 'Proposal' WHERE name = 'Two';
SELECT name, stage, probability FROM crm.opportunity ORDER BY id;

-- A new stage is found at once, in the same transaction.
BEGIN;
INSERT INTO crm.opportunity_stage (name, sort_order, probability) VALUES ('Pilot', 35, 45);
UPDATE crm.opportunity SET stage = 'Pilot' WHERE name = 'One';
SELECT name, stage, probability, furthest_stage FROM crm.opportunity WHERE name = 'One';
COMMIT;

-- A change rolled back to a savepoint is forgotten: the old default again.
BEGIN;
SAVEPOINT s;
UPDATE crm.opportunity_stage SET probability = 5 WHERE name = 'Negotiation';
UPDATE crm.opportunity SET stage = 'Negotiation' WHERE name = 'Two';
SELECT probability AS inside_savepoint FROM crm.opportunity WHERE name = 'Two';
ROLLBACK TO SAVEPOINT s;
UPDATE crm.opportunity SET stage = 'Negotiation' WHERE name = 'Two';
SELECT probability AS after_rollback FROM crm.opportunity WHERE name = 'Two';
COMMIT;

-- A rename is no move, though the copy knew the old name: the deal keeps
-- when it entered the stage, the history records nothing, and the next
-- move is under the new name.
SELECT stage_changed_at AS entered FROM crm.opportunity WHERE name = 'One' \gset
SELECT count(*) AS entries FROM crm.opportunity_history \gset
UPDATE crm.opportunity_stage SET name = 'Pilot phase' WHERE name = 'Pilot';
SELECT stage, furthest_stage, stage_changed_at = :'entered' AS same_entry FROM crm.opportunity WHERE name = 'One';
SELECT count(*) - :entries AS new_entries FROM crm.opportunity_history;
UPDATE crm.opportunity SET stage = 'Pilot phase', amount = 150 WHERE name = 'One';
UPDATE crm.opportunity SET stage = 'Requirement' WHERE name = 'One';
SELECT old_stage, new_stage FROM crm.opportunity_history
 WHERE opportunity_id = (SELECT id FROM crm.opportunity WHERE name = 'One') ORDER BY id DESC LIMIT 1;

-- A lost stage added now: a deal created in it has reached the first open
-- stage, the copy's first open stage in sort order.
INSERT INTO crm.opportunity_stage (name, sort_order, probability, is_closed) VALUES ('Dropped', 5, 0, true);
INSERT INTO crm.opportunity (name, account_id, amount, stage, loss_reason_code)
VALUES ('Three', 1, 10, 'Dropped', (SELECT min(code) FROM crm.loss_reason WHERE active));
SELECT name, stage, furthest_stage FROM crm.opportunity WHERE name = 'Three';
SELECT count(*) AS mismatches FROM crm.verify_aggregates();

-- A writable CTE that changes the stages in the statement that moves the
-- deal: the deal follows the stages as the statement left them (a lost
-- stage needs a loss reason; the new default probability).
WITH s AS (INSERT INTO crm.opportunity_stage (name, sort_order, probability, is_closed)
           VALUES ('Lost elsewhere', 85, 0, true) RETURNING name)
UPDATE crm.opportunity AS o SET stage = s.name FROM s WHERE o.name = 'Two';
WITH s AS (UPDATE crm.opportunity_stage SET probability = 33 WHERE name = 'Requirement' RETURNING name)
UPDATE crm.opportunity AS o SET stage = s.name FROM s WHERE o.name = 'Two';
SELECT name, stage, probability FROM crm.opportunity WHERE name = 'Two';
-- Until the end of such a transaction the stages are read for every deal.
BEGIN;
UPDATE crm.opportunity_stage SET probability = 44 WHERE name = 'Requirement';
UPDATE crm.opportunity SET stage = 'Proposal' WHERE name = 'Two';
UPDATE crm.opportunity SET stage = 'Requirement' WHERE name = 'Two';
SELECT probability AS read_again FROM crm.opportunity WHERE name = 'Two';
COMMIT;

-- The triggers fire only as installed: per statement, before (always), and
-- per row for replication's apply (replica).

SELECT tgname, tgenabled FROM pg_trigger
 WHERE tgrelid = 'crm.opportunity_stage'::regclass AND tgname LIKE 'opportunity_stage_changed%' ORDER BY tgname;

DROP EXTENSION crm CASCADE;
