-- red_team_records: a hostile rep, manager and intake login against notes,
-- attachments, tags and the e-mail log (issue 19 §1-3).  Each case states
-- the attack and what must hold.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_rt_rep1, regress_rt_rep2, regress_rt_boss, regress_rt_admin, regress_rt_intake;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE regress_rt_rep1 IN ROLE crm_sales;
CREATE ROLE regress_rt_rep2 IN ROLE crm_sales;
CREATE ROLE regress_rt_boss IN ROLE crm_manager;
CREATE ROLE regress_rt_admin IN ROLE crm_admin;
CREATE ROLE regress_rt_intake IN ROLE crm_intake;
INSERT INTO crm.reporting_line (member, manager) VALUES ('regress_rt_rep1', 'regress_rt_boss');

SET ROLE regress_rt_rep1;
INSERT INTO crm.lead (name, company, email) VALUES ('Lena One', 'One Ltd', 'lena@one.example');   -- lead 1
INSERT INTO crm.lead (name, company) VALUES ('Otto Own', 'Own Ltd');                               -- lead 2
INSERT INTO crm.note (body, lead_id) VALUES ('rep1 wrote this about lead 1', 1);                   -- note 1
INSERT INTO crm.attachment (lead_id, file_name, mime_type, size_bytes, sha256, storage_uri)
    VALUES (1, 'offer.pdf', 'application/pdf', 10, repeat('a', 64), 's3://b/offer.pdf');           -- attachment 1
RESET ROLE;
SET ROLE regress_rt_rep2;
INSERT INTO crm.account (name) VALUES ('Secret Corp');                                             -- account 1
INSERT INTO crm.contact (name, account_id, email) VALUES ('Sam Secret', 1, 'sam@secret.example');   -- contact 1
RESET ROLE;

-- The lead is handed to rep2: rep1's note and attachment now follow the
-- hidden lead, rep1 sees neither.
UPDATE crm.lead SET owner = 'regress_rt_rep2' WHERE id = 1;
SET ROLE regress_rt_rep1;
SELECT count(*) AS notes_seen FROM crm.note;
SELECT count(*) AS attachments_seen FROM crm.attachment;
-- Attack 1: an UPDATE without WHERE reads no column, so the SELECT policy
-- is not applied: it must still not move the hidden note onto rep1's own
-- lead (and so reveal it), nor change it.
UPDATE crm.note SET lead_id = 2;
UPDATE crm.note SET pinned = true;
SELECT id, body, lead_id FROM crm.note;
-- Attack 2: a DELETE without WHERE must not delete notes and attachments
-- on records rep1 no longer sees.
DELETE FROM crm.note;
DELETE FROM crm.attachment;
RESET ROLE;
SELECT id, lead_id, pinned FROM crm.note ORDER BY id;
SELECT id, lead_id FROM crm.attachment ORDER BY id;
-- The same for her manager.
SET ROLE regress_rt_boss;
UPDATE crm.note SET lead_id = 2;
DELETE FROM crm.note;
DELETE FROM crm.attachment;
RESET ROLE;
SELECT id, lead_id FROM crm.note ORDER BY id;
SELECT id, lead_id FROM crm.attachment ORDER BY id;

-- E-mail log.  rep1 logs a message to rep2's hidden contact: the log links
-- it there (by design, README "E-mail log"), but rep1 learns nothing of the
-- hidden contact or its account through the links.
SET ROLE regress_rt_rep1;
SELECT crm.log_email('<probe@rep1.example>', 'outbound', 'rep1@ours.example',
                     ARRAY['SAM@secret.example'], subject => 'probe') AS probe_id \gset
SELECT count(*) AS links_seen FROM crm.email_link WHERE email_id = :probe_id;
SELECT subject, messages FROM crm.email_thread;
RESET ROLE;
SELECT email_id, contact_id, account_id FROM crm.email_link WHERE email_id = :probe_id ORDER BY id;
-- rep2 logs a private message to her contact; rep1 replies to it (knowing
-- its Message-ID): his reply joins the thread, but the thread he sees holds
-- his reply only, not the hidden root's subject.
SET ROLE regress_rt_rep2;
SELECT crm.log_email('root@rep2.example', 'outbound', 'rep2@ours.example', ARRAY['sam@secret.example'],
                     subject => 'Secret pricing', body_text => 'hidden body', sent_at => '2026-01-01') AS root_id \gset
RESET ROLE;
SET ROLE regress_rt_rep1;
SELECT crm.log_email('reply@rep1.example', 'outbound', 'rep1@ours.example', ARRAY['x@nobody.example'],
                     subject => 'my reply', in_reply_to => 'root@rep2.example', sent_at => '2026-01-02') AS reply_id \gset
SELECT subject, messages, participants FROM crm.email_thread ORDER BY thread_id;
SELECT count(*) AS hidden_seen FROM crm.email WHERE subject = 'Secret pricing' OR body_text = 'hidden body';
RESET ROLE;

-- Tags and search: rep2 tags and annotates her hidden contact; rep1's
-- tag_usage does not count it, his search does not find the note (nor
-- show its text as a title), and he cannot tag or untag the contact.
INSERT INTO crm.tag (name) VALUES ('VIP');
SET ROLE regress_rt_rep2;
INSERT INTO crm.record_tag (tag_id, contact_id) VALUES (1, 1);
INSERT INTO crm.note (body, contact_id) VALUES ('confidential discount for the renewal', 1);
RESET ROLE;
SET ROLE regress_rt_rep1;
SELECT * FROM crm.tag_usage;
SELECT kind, id, title FROM crm.search('confidential discount');
INSERT INTO crm.record_tag (tag_id, contact_id) VALUES (1, 1) ON CONFLICT DO NOTHING;   -- 42501
DELETE FROM crm.record_tag;
-- Logging rep2's message again returns its id (first writer wins), but
-- rep1 still reads nothing of it.
SELECT crm.log_email('root@rep2.example', 'outbound', 'rep1@ours.example', ARRAY['y@nobody.example']) = :root_id AS same_id;
SELECT count(*) AS hidden_seen FROM crm.email WHERE id = :root_id;
RESET ROLE;
SELECT count(*) AS taggings_kept FROM crm.record_tag;

-- Erasure, dump-grep style: after crm.erase_person no crm table holds her
-- address or her name anywhere (notes, attachments, e-mails included:
-- message ids and in_reply_to too).
SET ROLE regress_rt_rep2;
INSERT INTO crm.note (body, contact_id) VALUES ('Sam Secret wants a call, sam@secret.example', 1);
INSERT INTO crm.attachment (contact_id, file_name, mime_type, size_bytes, sha256, storage_uri)
    VALUES (1, 'Sam Secret cv.pdf', 'application/pdf', 10, repeat('b', 64), 's3://b/cv.pdf');
SELECT crm.log_email('<sam@secret.example-1>', 'inbound', 'sam@secret.example', ARRAY['rep2@ours.example'],
                     subject => 'from Sam Secret', in_reply_to => 'root@rep2.example') AS sam_mail \gset
SELECT crm.log_email('answer@rep2.example', 'outbound', 'rep2@ours.example', ARRAY['boss@ours.example'],
                     subject => 'fwd', in_reply_to => 'sam@secret.example-1') IS NOT NULL AS logged;
RESET ROLE;
-- rep1 names her address on his own lead and in a mail to someone else
SET ROLE regress_rt_rep1;
INSERT INTO crm.note (body, lead_id) VALUES ('ask SAM@secret.example about the fair', 2);
SELECT crm.log_email('mention@rep1.example', 'outbound', 'rep1@ours.example', ARRAY['z@nobody.example'],
                     body_text => 'cc sam@secret.example next time') IS NOT NULL AS logged;
RESET ROLE;
-- The access request lists every note and e-mail the erasure will redact:
-- those about her records and those naming her address elsewhere.
SELECT jsonb_path_query_array(crm.export_person('sam@secret.example'), '$.notes[*].body') AS exported_notes;
SELECT jsonb_path_query_array(crm.export_person('sam@secret.example'), '$.emails[*].message_id') AS exported_emails;
SELECT jsonb_path_query_array(crm.export_person('sam@secret.example'), '$.attachments[*].file_name') AS exported_files;
SELECT leads, contacts FROM crm.erase_person('sam@secret.example', 'red team');
CREATE FUNCTION pg_temp.rows_matching(rel text, pattern text) RETURNS bigint LANGUAGE plpgsql AS $f$
DECLARE n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM crm.%I AS t WHERE lower(t::text) ~ %L', rel, pattern) INTO n;
    RETURN n;
END $f$;
-- (the tables of crm first, materialized: the planner may not call
-- rows_matching on a table of another schema)
WITH crm_table AS MATERIALIZED (
    SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS s ON s.oid = c.relnamespace
     WHERE s.nspname = 'crm' AND c.relkind = 'r')
SELECT relname AS still_holds_her, rows
  FROM (SELECT relname, pg_temp.rows_matching(relname, 'sam@secret|sam secret') AS rows FROM crm_table) AS m
 WHERE rows > 0
 ORDER BY 1;
-- the reply still names its (renamed) parent: the thread holds
SELECT r.in_reply_to = p.message_id AS reply_still_threaded, r.thread_id = p.thread_id AS same_thread
  FROM crm.email AS r JOIN crm.email AS p ON p.id = :sam_mail
 WHERE r.message_id = 'answer@rep2.example';
