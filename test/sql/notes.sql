-- notes: free-text notes about one lead, account, contact, opportunity,
-- quote or sales order (sql/install/81_notes_and_tags.sql).  A note follows
-- its record: visible to whoever sees the record, written by its owner's
-- team about a record the writer sees, moved by conversion (to the contact)
-- and merges, deleted with the record, found by crm.search(), exported and
-- erased with the person.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_note_rep1, regress_note_rep2, regress_note_boss, regress_note_admin;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_note_rep1 IN ROLE crm_sales;
CREATE ROLE regress_note_rep2 IN ROLE crm_sales;
CREATE ROLE regress_note_boss IN ROLE crm_manager;
CREATE ROLE regress_note_admin IN ROLE crm_admin;
INSERT INTO crm.reporting_line (member, manager) VALUES ('regress_note_rep1', 'regress_note_boss');

SET ROLE regress_note_rep1;
INSERT INTO crm.lead (name, company, email) VALUES ('Nora Notes', 'Nora Ltd', 'nora@nora.example');   -- lead 1
INSERT INTO crm.account (name) VALUES ('Alpha Corp');                                                    -- account 1
INSERT INTO crm.contact (name, account_id, email) VALUES ('Carl Alpha', 1, 'carl@alpha.example');        -- contact 1
RESET ROLE;
SET ROLE regress_note_rep2;
INSERT INTO crm.lead (name, company) VALUES ('Rita Rep2', 'Rita Inc');                                   -- lead 2
RESET ROLE;

-- A note about a record: the owner is the writer, the stamps the database's.
SET ROLE regress_note_rep1;
INSERT INTO crm.note (body, lead_id) VALUES ('Met Nora at the trade fair, wants a demo of the widget line', 1);
INSERT INTO crm.note (body, pinned, account_id) VALUES ('Key account: always copy the CFO', true, 1);
SELECT id, lead_id, account_id, pinned, owner, created_at = updated_at AS stamped FROM crm.note ORDER BY id;

-- Errors: about nothing or a missing record (for a rep, the policy refuses
-- both first: she sees no such record, 42501; for an admin below, 23514 and
-- 23503), about two records (23514), a blank body (23514), no body (23502).
INSERT INTO crm.note (body) VALUES ('about nothing');
INSERT INTO crm.note (body, lead_id, account_id) VALUES ('about two', 1, 1);
INSERT INTO crm.note (body, lead_id) VALUES ('   ', 1);
INSERT INTO crm.note (lead_id) VALUES (1);
INSERT INTO crm.note (body, lead_id) VALUES ('no such lead', 999);
-- a body longer than 100,000 characters (23514)
INSERT INTO crm.note (body, lead_id) VALUES (repeat('x', 100001), 1);
-- the id is the database's (42501)
INSERT INTO crm.note (id, body, lead_id) OVERRIDING SYSTEM VALUE VALUES (100, 'chosen id', 1);
-- A rep cannot write a note owned by someone else (42501, the policy) ...
INSERT INTO crm.note (body, lead_id, owner) VALUES ('forged owner', 1, 'regress_note_rep2');
-- ... nor about a lead she cannot see (a forged id): refused like a missing one.
INSERT INTO crm.note (body, lead_id) VALUES ('on a hidden lead', 2);
-- She does not see rep2's notes.
RESET ROLE;
SET ROLE regress_note_rep2;
INSERT INTO crm.note (body, lead_id) VALUES ('Rita prefers e-mail', 2);
RESET ROLE;
SET ROLE regress_note_rep1;
SELECT body FROM crm.note ORDER BY id;
-- nor can she change or delete them (no row)
UPDATE crm.note SET body = 'hijacked' WHERE lead_id = 2;
DELETE FROM crm.note WHERE lead_id = 2;
-- nor move her own note onto a record she cannot see (42501)
UPDATE crm.note SET lead_id = 2 WHERE id = 1;
-- she edits her own: updated_at moves
UPDATE crm.note SET body = body || ' (demo booked)', pinned = true WHERE id = 1 RETURNING body, pinned, updated_at > created_at AS restamped;
RESET ROLE;

-- Her manager sees and changes her notes; an admin every note.
SET ROLE regress_note_boss;
SELECT id, body FROM crm.note ORDER BY id;
UPDATE crm.note SET pinned = false WHERE id = 1 RETURNING id, pinned;
RESET ROLE;
SET ROLE regress_note_admin;
SELECT count(*) AS admin_sees FROM crm.note;
RESET ROLE;

-- Search finds notes by their text, only those the caller sees.
SET ROLE regress_note_rep1;
SELECT kind, id, title, subtitle FROM crm.search('trade fair');
SELECT kind, id, title, subtitle FROM crm.search('copy the cfo', ARRAY['note']);
SELECT kind, id FROM crm.search('prefers e-mail');           -- rep2's note: nothing
RESET ROLE;
SET ROLE regress_note_rep2;
SELECT kind, id, title, subtitle FROM crm.search('prefers e-mail');
SELECT kind, id FROM crm.search('trade fair');               -- rep1's: nothing
RESET ROLE;
-- a typo finds it too
SET ROLE regress_note_rep1;
SELECT kind, id FROM crm.search('widget lime', ARRAY['note']);
RESET ROLE;
-- an admin's errors: about nothing (23514), a missing record (23503)
SET ROLE regress_note_admin;
INSERT INTO crm.note (body) VALUES ('about nothing');
INSERT INTO crm.note (body, lead_id) VALUES ('no such lead', 999);
RESET ROLE;

-- Conversion: the lead's notes move to the contact (the person), and the
-- preview lists them.
SET ROLE regress_note_rep1;
SELECT action, kind, rule, name FROM crm.conversion_preview(1) WHERE kind = 'note';
SELECT (crm.convert_lead(1)).contact_id AS contact;
SELECT id, lead_id, contact_id FROM crm.note WHERE id = 1;
RESET ROLE;

-- Merges re-point notes to the survivor.
SET ROLE regress_note_rep1;
INSERT INTO crm.contact (name, account_id, email) VALUES ('Carl Alpha (dup)', 1, 'carl2@alpha.example');
INSERT INTO crm.note (body, contact_id) SELECT 'Carl likes golf', max(id) FROM crm.contact;
SELECT crm.merge_contacts(1, (SELECT max(id) FROM crm.contact)) IS NOT NULL AS merged;
SELECT body, contact_id FROM crm.note WHERE body = 'Carl likes golf';
RESET ROLE;

-- Deleted with their record.
SET ROLE regress_note_rep2;
DELETE FROM crm.lead WHERE id = 2;
RESET ROLE;
SELECT count(*) AS notes_of_deleted_lead FROM crm.note WHERE body = 'Rita prefers e-mail';

-- Notes of the person's leads and contacts are exported and erased; her
-- name in other notes is replaced.
SET ROLE regress_note_rep1;
INSERT INTO crm.note (body, account_id) VALUES ('Ask Nora Notes about the Q3 budget', 1);
RESET ROLE;
SELECT jsonb_array_length(crm.export_person('nora@nora.example')->'notes') AS exported_notes;
SELECT (crm.erase_person('nora@nora.example', 'test')).leads AS erased_leads;
SELECT id, body FROM crm.note ORDER BY id;
-- the change log keeps no old body of hers
SELECT count(*) AS log_mentions FROM crm.change_log
 WHERE table_name = 'crm.note'::regclass AND changes::text ~* 'trade fair|nora';

-- The change log records notes like the other records.
SELECT operation, count(*) FROM crm.change_log WHERE table_name = 'crm.note'::regclass GROUP BY 1 ORDER BY 1;

DROP EXTENSION crm CASCADE;
DROP ROLE regress_note_rep1, regress_note_rep2, regress_note_boss, regress_note_admin;
