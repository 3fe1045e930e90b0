-- attachments: files attached to one lead, account, contact, opportunity,
-- quote or sales order (sql/install/81_notes_and_tags.sql).  The database
-- keeps the file's description (name, media type, size, SHA-256, where it
-- is stored); the bytes live in the user's object store.  An attachment
-- follows its record like a note; reps and managers attach and delete,
-- only admins correct one.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_att_rep1, regress_att_rep2, regress_att_boss, regress_att_admin;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_att_rep1 IN ROLE crm_sales;
CREATE ROLE regress_att_rep2 IN ROLE crm_sales;
CREATE ROLE regress_att_boss IN ROLE crm_manager;
CREATE ROLE regress_att_admin IN ROLE crm_admin;
INSERT INTO crm.reporting_line (member, manager) VALUES ('regress_att_rep1', 'regress_att_boss');

SET ROLE regress_att_rep1;
INSERT INTO crm.lead (name, company, email) VALUES ('Anna Attach', 'Anna Ltd', 'anna@anna.example');   -- lead 1
INSERT INTO crm.account (name) VALUES ('Alpha Corp');                                                    -- account 1
INSERT INTO crm.opportunity (name, account_id, close_date) VALUES ('Alpha deal', 1, '2027-01-15');     -- opportunity 1
RESET ROLE;
SET ROLE regress_att_rep2;
INSERT INTO crm.lead (name, company) VALUES ('Rita Rep2', 'Rita Inc');                                   -- lead 2
RESET ROLE;

-- Attaching: the description of a file in the object store.
SET ROLE regress_att_rep1;
INSERT INTO crm.attachment (lead_id, file_name, mime_type, size_bytes, sha256, storage_uri)
VALUES (1, 'Anna Attach CV.pdf', 'application/pdf', 48213, repeat('ab', 32), 's3://crm-files/lead/1/cv.pdf');
INSERT INTO crm.attachment (opportunity_id, file_name, mime_type, size_bytes, sha256, storage_uri)
VALUES (1, 'offer v2.docx', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', 0,
        repeat('0', 64), 'https://files.example/alpha/offer-v2.docx');
SELECT id, lead_id, opportunity_id, file_name, size_bytes, owner FROM crm.attachment ORDER BY id;

-- Errors (23514): a folder in the name, a backslash, a control character,
-- a blank or "." name, a media type without a subtype, a negative size,
-- an upper-case or short SHA-256, a URI without a scheme; about two records.
INSERT INTO crm.attachment (lead_id, file_name, mime_type, size_bytes, sha256, storage_uri)
VALUES (1, '../etc/passwd', 'text/plain', 1, repeat('a', 64), 's3://b/k');
INSERT INTO crm.attachment (lead_id, file_name, mime_type, size_bytes, sha256, storage_uri)
VALUES (1, 'C:\temp\x.txt', 'text/plain', 1, repeat('a', 64), 's3://b/k');
INSERT INTO crm.attachment (lead_id, file_name, mime_type, size_bytes, sha256, storage_uri)
VALUES (1, E'bad\nname.txt', 'text/plain', 1, repeat('a', 64), 's3://b/k');
INSERT INTO crm.attachment (lead_id, file_name, mime_type, size_bytes, sha256, storage_uri)
VALUES (1, '  ', 'text/plain', 1, repeat('a', 64), 's3://b/k');
INSERT INTO crm.attachment (lead_id, file_name, mime_type, size_bytes, sha256, storage_uri)
VALUES (1, '..', 'text/plain', 1, repeat('a', 64), 's3://b/k');
INSERT INTO crm.attachment (lead_id, file_name, mime_type, size_bytes, sha256, storage_uri)
VALUES (1, 'a.txt', 'text', 1, repeat('a', 64), 's3://b/k');
INSERT INTO crm.attachment (lead_id, file_name, mime_type, size_bytes, sha256, storage_uri)
VALUES (1, 'a.txt', 'text/plain', -1, repeat('a', 64), 's3://b/k');
INSERT INTO crm.attachment (lead_id, file_name, mime_type, size_bytes, sha256, storage_uri)
VALUES (1, 'a.txt', 'text/plain', 1, repeat('A', 64), 's3://b/k');
INSERT INTO crm.attachment (lead_id, file_name, mime_type, size_bytes, sha256, storage_uri)
VALUES (1, 'a.txt', 'text/plain', 1, repeat('a', 63), 's3://b/k');
INSERT INTO crm.attachment (lead_id, file_name, mime_type, size_bytes, sha256, storage_uri)
VALUES (1, 'a.txt', 'text/plain', 1, repeat('a', 64), '/var/files/a.txt');
INSERT INTO crm.attachment (lead_id, file_name, mime_type, size_bytes, sha256, storage_uri)
VALUES (1, 'a.txt', 'text/plain', 1, repeat('a', 64), 's3: spaces');
INSERT INTO crm.attachment (lead_id, opportunity_id, file_name, mime_type, size_bytes, sha256, storage_uri)
VALUES (1, 1, 'a.txt', 'text/plain', 1, repeat('a', 64), 's3://b/k');
-- no size (23502)
INSERT INTO crm.attachment (lead_id, file_name, mime_type, sha256, storage_uri)
VALUES (1, 'a.txt', 'text/plain', repeat('a', 64), 's3://b/k');
-- a lead she cannot see: refused by the policy (42501), like an owner not hers
INSERT INTO crm.attachment (lead_id, file_name, mime_type, size_bytes, sha256, storage_uri)
VALUES (2, 'a.txt', 'text/plain', 1, repeat('a', 64), 's3://b/k');
INSERT INTO crm.attachment (lead_id, file_name, mime_type, size_bytes, sha256, storage_uri, owner)
VALUES (1, 'a.txt', 'text/plain', 1, repeat('a', 64), 's3://b/k', 'regress_att_rep2');

-- Immutable for reps and managers: no UPDATE privilege (42501); delete and
-- attach again.
UPDATE crm.attachment SET file_name = 'renamed.pdf' WHERE id = 1;
RESET ROLE;
SET ROLE regress_att_boss;
UPDATE crm.attachment SET file_name = 'renamed.pdf' WHERE id = 1;
SELECT count(*) AS boss_sees FROM crm.attachment;
RESET ROLE;
-- An admin corrects one.
SET ROLE regress_att_admin;
UPDATE crm.attachment SET mime_type = 'application/msword' WHERE id = 2 RETURNING id, mime_type, updated_at > created_at AS restamped;
RESET ROLE;

-- Rep2 sees none of them, and cannot delete them.
SET ROLE regress_att_rep2;
SELECT count(*) AS rep2_sees FROM crm.attachment;
DELETE FROM crm.attachment;
RESET ROLE;
SELECT count(*) AS still_there FROM crm.attachment;

-- Conversion moves the lead's attachments to the contact; the preview lists them.
SET ROLE regress_att_rep1;
SELECT action, kind, rule, name FROM crm.conversion_preview(1, create_opportunity => false) WHERE kind = 'attachment';
SELECT (crm.convert_lead(1, create_opportunity => false)).contact_id AS contact;
SELECT id, lead_id, contact_id FROM crm.attachment WHERE id = 1;
RESET ROLE;

-- Exported and erased with the person (the file name; the URI stays so the
-- file can be deleted from the store).
SELECT crm.export_person('anna@anna.example')->'attachments'->0->>'file_name' AS exported;
SELECT (crm.erase_person('anna@anna.example', 'test')).contacts AS erased_contacts;
SELECT id, file_name, storage_uri FROM crm.attachment ORDER BY id;
SELECT count(*) AS log_mentions FROM crm.change_log
 WHERE table_name = 'crm.attachment'::regclass AND changes::text ~* 'anna';

-- The owner deletes hers; deleting the record deletes the rest.
SET ROLE regress_att_rep1;
DELETE FROM crm.attachment WHERE id = 1;
DELETE FROM crm.opportunity WHERE id = 1;
RESET ROLE;
SELECT count(*) AS left_over FROM crm.attachment;

DROP EXTENSION crm CASCADE;
DROP ROLE regress_att_rep1, regress_att_rep2, regress_att_boss, regress_att_admin;
