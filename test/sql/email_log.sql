-- email_log: crm.log_email() logs a message once per Message-ID, links it
-- to every contact and open lead whose address is among its participants
-- (case-insensitive, whoever owns them) and to their accounts, and threads
-- replies by in_reply_to, also when a reply is logged before its parent.
-- Conversions move a lead's links to its contact; merges fold them.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS crm CASCADE;
CREATE EXTENSION crm;
DROP ROLE IF EXISTS regress_mail_rep, regress_mail_other, regress_mail_intake;
RESET client_min_messages;
CREATE ROLE regress_mail_rep IN ROLE crm_sales;
CREATE ROLE regress_mail_other IN ROLE crm_sales;
CREATE ROLE regress_mail_intake IN ROLE crm_intake;

INSERT INTO crm.account (name, owner) VALUES ('Lee Tools', 'regress_mail_rep'),      -- 1
                                             ('Kim Bakery', 'regress_mail_other');   -- 2
INSERT INTO crm.contact (name, email, account_id, owner) VALUES
    ('Ann Lee', 'Ann@LeeTools.example', 1, 'regress_mail_rep'),      -- 1
    ('Bo Kim', 'bo@kimbakery.example', 2, 'regress_mail_other');     -- 2
INSERT INTO crm.lead (name, company, email, owner) VALUES
    ('Cy Park', 'Park Media', 'cy@parkmedia.example', 'regress_mail_rep'),   -- 1
    ('Di Wu', 'Wu Labs', 'di@wulabs.example', 'regress_mail_other');         -- 2

-- Logging: the address match ignores case and white space; the contact's
-- account is linked too; unknown addresses link nothing.
SET ROLE regress_mail_rep;
SELECT crm.log_email('<m1@mail.example>', 'outbound', 'me@ours.example',
                     ARRAY[' ann@leetools.EXAMPLE ', 'cy@parkmedia.example'], ARRAY['nobody@else.example'],
                     'Offer', 'Dear Ann, here is the offer.', '2026-03-01 10:00+00') AS m1;
-- a second log (with or without brackets) returns the first id and changes nothing: first writer wins
SELECT crm.log_email('m1@mail.example', 'inbound', 'forger@evil.example', ARRAY['bo@kimbakery.example'],
                     subject => 'Forged') AS same_id;
RESET ROLE;
SELECT id, message_id, direction, from_address, to_addresses, cc_addresses, subject, thread_id,
       participants, logged_by FROM crm.email ORDER BY id;
SELECT email_id, contact_id, lead_id, account_id FROM crm.email_link ORDER BY id;

-- A message to the other rep's contact (a BCC drop box logging for
-- everyone) links to it; the logger gets only the id.
SET ROLE regress_mail_intake;
SELECT crm.log_email('m2@mail.example', 'inbound', 'Bo@KimBakery.example', ARRAY['sales@ours.example'],
                     subject => 'Question', sent_at => '2026-03-02 09:00+00') AS m2;
SELECT count(*) FROM crm.email;   -- intake reads nothing
RESET ROLE;
SELECT email_id, contact_id, lead_id, account_id FROM crm.email_link WHERE email_id = 2 ORDER BY id;

-- Visibility: each rep sees the e-mails linked to records it sees, and
-- those it logged; links only of its records.
SET ROLE regress_mail_rep;
SELECT id, subject FROM crm.email ORDER BY id;
SELECT email_id, contact_id, lead_id, account_id FROM crm.email_link ORDER BY id;
SET ROLE regress_mail_other;
SELECT id, subject FROM crm.email ORDER BY id;
SELECT email_id, contact_id, lead_id, account_id FROM crm.email_link ORDER BY id;
RESET ROLE;

-- Threads: replies join the parent's thread; a reply logged before its
-- parent (and a reply to that reply) end in one thread when it arrives.
SET ROLE regress_mail_rep;
SELECT crm.log_email('m3@mail.example', 'inbound', 'ann@leetools.example', ARRAY['me@ours.example'],
                     subject => 'Re: Offer', sent_at => '2026-03-01 12:00+00', in_reply_to => '<m1@mail.example>') AS m3;
SELECT crm.log_email('m6@mail.example', 'inbound', 'ann@leetools.example', ARRAY['me@ours.example'],
                     subject => 'Re: Re: Re: Plan', sent_at => '2026-03-05 12:00+00', in_reply_to => 'm5@mail.example') AS m6_early;
SELECT crm.log_email('m5@mail.example', 'outbound', 'me@ours.example', ARRAY['ann@leetools.example'],
                     subject => 'Re: Re: Plan', sent_at => '2026-03-05 11:00+00', in_reply_to => 'm4@mail.example') AS m5_early;
SELECT id, message_id, in_reply_to, thread_id FROM crm.email WHERE id > 3 ORDER BY id;
SELECT crm.log_email('m4@mail.example', 'inbound', 'ann@leetools.example', ARRAY['me@ours.example'],
                     subject => 'Plan', sent_at => '2026-03-05 10:00+00') AS m4_late;
SELECT id, message_id, in_reply_to, thread_id FROM crm.email WHERE id > 3 ORDER BY id;
SELECT subject, first_sent_at, last_sent_at, messages, participants FROM crm.email_thread ORDER BY first_sent_at;
RESET ROLE;

-- Conversion: the lead's links move to the new contact (3); its new account (3) is linked.
SET ROLE regress_mail_rep;
SELECT account_id, contact_id FROM crm.convert_lead(1);
RESET ROLE;
SELECT email_id, contact_id, lead_id, account_id FROM crm.email_link WHERE email_id = 1 ORDER BY id;

-- Conversion onto a contact that has the e-mail already: the two links fold into one.
INSERT INTO crm.lead (name, company, email, owner) VALUES ('Ann Lee', 'Lee Tools', 'ann@leetools.example', 'regress_mail_rep');  -- 3
SELECT crm.log_email('m7@mail.example', 'inbound', 'ann@leetools.example', ARRAY['me@ours.example'], subject => 'Lead and contact') AS m7;
SELECT email_id, contact_id, lead_id, account_id FROM crm.email_link WHERE email_id = 7 ORDER BY id;
SET ROLE regress_mail_rep;
SELECT action, kind, rule, name FROM crm.conversion_preview(3, 1, 1) WHERE kind = 'email_link';
SELECT account_id, contact_id FROM crm.convert_lead(3, 1, 1, create_opportunity => false, dedupe => false);
RESET ROLE;
SELECT email_id, contact_id, lead_id, account_id FROM crm.email_link WHERE email_id = 7 ORDER BY id;

-- A lead or contact added after an e-mail was logged is not linked back;
-- logging the message again completes its links.
INSERT INTO crm.contact (name, email, account_id, owner) VALUES
    ('Ed Fox', 'nobody@else.example', 1, 'regress_mail_rep');   -- 4
SELECT count(*) FROM crm.email_link WHERE contact_id = 4;
SELECT crm.log_email('m1@mail.example', 'outbound', 'me@ours.example', ARRAY['x@y.example']) AS relog;
SELECT email_id, contact_id, account_id FROM crm.email_link WHERE contact_id = 4 OR (email_id = 1 AND account_id IS NOT NULL) ORDER BY id;

-- Merges: links of the merged contact move to the survivor; a link both
-- have is folded into one (no unique violation).
SELECT crm.merge_contacts(1, 4);
SELECT email_id, contact_id, account_id FROM crm.email_link WHERE email_id = 1 ORDER BY id;

-- Deleting a contact deletes its links (its account's stays), not the e-mail.
DELETE FROM crm.contact WHERE id = 2;
SELECT count(*) AS links_of_m2 FROM crm.email_link WHERE email_id = 2;
SELECT count(*) AS m2_kept FROM crm.email WHERE id = 2;

-- Privacy: the export lists her e-mails; the erasure puts a pseudonym's
-- address in place of hers and clears subject and body of her e-mails;
-- another e-mail that mentions her loses the mention.
SELECT crm.log_email('m8@mail.example', 'outbound', 'me@ours.example', ARRAY['boss@ours.example'],
                     subject => 'Ann Lee called', body_text => 'Ann Lee asked for the price list') AS m8;
SELECT jsonb_array_length(crm.export_person('ANN@leetools.example')->'emails') AS exported_emails;
SELECT leads, contacts FROM crm.erase_person('ann@leetools.example', 'request 1');
SELECT id, from_address, to_addresses, subject, body_text, participants FROM crm.email WHERE id IN (1, 3, 8) ORDER BY id;

-- Errors.
SELECT crm.log_email(NULL, 'inbound', 'a@b.example', NULL);                       -- 22004
SELECT crm.log_email(' <> ', 'inbound', 'a@b.example', NULL);                     -- 22023
SELECT crm.log_email(repeat('x', 999), 'inbound', 'a@b.example', NULL);           -- 22023
SELECT crm.log_email('e1', 'sideways', 'a@b.example', NULL);                      -- 22023
SELECT crm.log_email('e1', NULL, 'a@b.example', NULL);                            -- 22004
SELECT crm.log_email('e1', 'inbound', NULL, NULL);                                -- 22004
SELECT crm.log_email('e1', 'inbound', 'Ann <a@b.example>', NULL);                 -- ZC801
SELECT crm.log_email('e1', 'inbound', 'a@b.example', ARRAY['no-at-sign']);        -- ZC801
SELECT crm.log_email('e1', 'inbound', 'a@b.example', ARRAY[NULL]::text[]);        -- 22004
SELECT crm.log_email('e1', 'inbound', 'a@b.example', ARRAY[['a@b.example']]);     -- 22023
SELECT crm.log_email('e1', 'inbound', 'a@b.example',
                     array_fill('a@b.example'::text, ARRAY[300]), array_fill('c@d.example'::text, ARRAY[201]));  -- 22023
SELECT crm.log_email('e1', 'inbound', 'a@b.example', array_fill('a@b.example'::text, ARRAY[501]));  -- 22023
SELECT crm.log_email('e1', 'inbound', 'a@b.example', NULL, sent_at => NULL);      -- 22004
SELECT crm.log_email('e1', 'inbound', 'a@b.example', NULL, sent_at => 'infinity'); -- 22023
SELECT crm.log_email('e1', 'inbound', 'a@b.example', NULL, in_reply_to => repeat('y', 1000));  -- 22023
-- a message is not its own parent; 500 recipients are fine
SELECT crm.log_email('e2', 'inbound', 'a@b.example', array_fill('a@b.example'::text, ARRAY[500]),
                     in_reply_to => '<e2>') > 0 AS logged;
SELECT in_reply_to, thread_id = id AS own_thread, participants FROM crm.email WHERE message_id = 'e2';
-- nobody writes the tables directly; analysts read no mail
SET ROLE regress_mail_rep;
INSERT INTO crm.email (message_id, direction, from_address, sent_at, thread_id) VALUES ('x', 'inbound', 'a@b.example', now(), 1);  -- 42501
DELETE FROM crm.email_link;  -- 42501
RESET ROLE;
CREATE ROLE regress_mail_analyst IN ROLE crm_analyst;
SET ROLE regress_mail_analyst;
SELECT count(*) FROM crm.email;  -- 42501
SELECT crm.log_email('e3', 'inbound', 'a@b.example', NULL);  -- 42501
RESET ROLE;
DROP ROLE regress_mail_analyst;
