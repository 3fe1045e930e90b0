--------------------------------------------------------------------------
-- The e-mail log: crm.log_email() records a message once (by its
-- Message-ID), links it to the contacts and open leads whose address is
-- among its participants and to their accounts, and threads it by
-- In-Reply-To (src/email_log.c).  Only crm.log_email() writes these tables
-- (as the extension owner); users read them with the visibility of the
-- linked records (row-level security below).
--------------------------------------------------------------------------
CREATE TABLE crm.email (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id    text NOT NULL,
    direction     text NOT NULL,
    from_address  text NOT NULL,
    to_addresses  text[] NOT NULL DEFAULT '{}',
    cc_addresses  text[] NOT NULL DEFAULT '{}',
    subject       text,
    body_text     text,
    sent_at       timestamptz NOT NULL,
    in_reply_to   text,
    thread_id     bigint NOT NULL,
    participants  text[] NOT NULL DEFAULT '{}',
    logged_by     regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT email_message_id_key UNIQUE (message_id),
    CONSTRAINT email_message_id_check CHECK (pg_catalog.length(message_id) OPERATOR(pg_catalog.>) 0),
    CONSTRAINT email_direction_check CHECK (direction OPERATOR(pg_catalog.=) ANY (ARRAY['inbound', 'outbound']))
);
COMMENT ON TABLE crm.email IS 'The e-mail log: one row per message (by Message-ID), logged by crm.log_email(). Visible to whoever sees a record it is linked to (crm.email_link), and to the role that logged it';
COMMENT ON COLUMN crm.email.id IS 'Identifier of the logged e-mail';
COMMENT ON COLUMN crm.email.message_id IS 'The Message-ID header without white space and enclosing angle brackets; one row per message';
COMMENT ON COLUMN crm.email.direction IS 'inbound (received) or outbound (sent)';
COMMENT ON COLUMN crm.email.from_address IS 'The sender''s address';
COMMENT ON COLUMN crm.email.to_addresses IS 'The To recipients'' addresses';
COMMENT ON COLUMN crm.email.cc_addresses IS 'The Cc recipients'' addresses';
COMMENT ON COLUMN crm.email.subject IS 'Subject line';
COMMENT ON COLUMN crm.email.body_text IS 'The body as plain text';
COMMENT ON COLUMN crm.email.sent_at IS 'When the e-mail was sent';
COMMENT ON COLUMN crm.email.in_reply_to IS 'The Message-ID of the message this one answers (In-Reply-To header), normalised like message_id';
COMMENT ON COLUMN crm.email.thread_id IS 'The conversation: the id of the e-mail that started it (as far as logged); replies share it';
COMMENT ON COLUMN crm.email.participants IS 'Sender and recipients, each address once, in lower case: what the links were made from';
COMMENT ON COLUMN crm.email.logged_by IS 'CRM user (database role) that logged the e-mail';
COMMENT ON COLUMN crm.email.created_at IS 'When the e-mail was logged';
CREATE INDEX email_thread_id_idx ON crm.email (thread_id);
COMMENT ON INDEX crm.email_thread_id_idx IS 'The e-mails of a conversation';
CREATE INDEX email_in_reply_to_idx ON crm.email (in_reply_to) WHERE in_reply_to IS NOT NULL;
COMMENT ON INDEX crm.email_in_reply_to_idx IS 'Replies to a message: a message logged after its replies gathers them into its thread';
CREATE INDEX email_participants_idx ON crm.email USING gin (participants);
COMMENT ON INDEX crm.email_participants_idx IS 'E-mails by participant address: an access request or an erasure finds a person''s e-mails without reading every e-mail';

CREATE TABLE crm.email_link (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email_id    bigint NOT NULL CONSTRAINT email_link_email_id_fkey REFERENCES crm.email (id) ON DELETE CASCADE,
    contact_id  bigint CONSTRAINT email_link_contact_id_fkey REFERENCES crm.contact (id) ON DELETE CASCADE,
    lead_id     bigint CONSTRAINT email_link_lead_id_fkey REFERENCES crm.lead (id) ON DELETE CASCADE,
    account_id  bigint CONSTRAINT email_link_account_id_fkey REFERENCES crm.account (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT email_link_one_record CHECK (pg_catalog.num_nonnulls(contact_id, lead_id, account_id) OPERATOR(pg_catalog.=) 1)
);
COMMENT ON TABLE crm.email_link IS 'Which contact, lead or account a logged e-mail is about: made by crm.log_email() from the addresses; visible when its record is';
COMMENT ON COLUMN crm.email_link.id IS 'Identifier of the link';
COMMENT ON COLUMN crm.email_link.email_id IS 'The logged e-mail';
COMMENT ON COLUMN crm.email_link.contact_id IS 'The contact whose address is among the participants (or exactly one of lead_id, account_id)';
COMMENT ON COLUMN crm.email_link.lead_id IS 'The open lead whose address is among the participants; moves to the contact when the lead converts';
COMMENT ON COLUMN crm.email_link.account_id IS 'The primary account of a linked contact';
COMMENT ON COLUMN crm.email_link.created_at IS 'When the link was made';
CREATE UNIQUE INDEX email_link_contact_key ON crm.email_link (contact_id, email_id);
COMMENT ON INDEX crm.email_link_contact_key IS 'One link per e-mail and contact; a contact''s e-mails';
CREATE UNIQUE INDEX email_link_lead_key ON crm.email_link (lead_id, email_id);
COMMENT ON INDEX crm.email_link_lead_key IS 'One link per e-mail and lead; a lead''s e-mails';
CREATE UNIQUE INDEX email_link_account_key ON crm.email_link (account_id, email_id);
COMMENT ON INDEX crm.email_link_account_key IS 'One link per e-mail and account; an account''s e-mails';
CREATE INDEX email_link_email_id_idx ON crm.email_link (email_id);
COMMENT ON INDEX crm.email_link_email_id_idx IS 'The links of an e-mail: its visibility, and deleting it';

CREATE FUNCTION crm_internal.email_link_account() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_email_link_account'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.email_link_account() IS 'AFTER row trigger on crm.email_link: a contact''s link brings a link to the contact''s primary account';
CREATE TRIGGER email_link_account AFTER INSERT OR UPDATE OF contact_id ON crm.email_link
    FOR EACH ROW EXECUTE FUNCTION crm_internal.email_link_account();

CREATE FUNCTION crm.log_email(message_id text, direction text, from_address text, to_addresses text[],
                              cc_addresses text[] DEFAULT NULL, subject text DEFAULT NULL,
                              body_text text DEFAULT NULL, sent_at timestamptz DEFAULT pg_catalog.now(),
                              in_reply_to text DEFAULT NULL)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'crm_log_email'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.log_email(text, text, text, text[], text[], text, text, timestamptz, text) IS 'Logs an e-mail once per Message-ID (a repeat returns the first id, unchanged), links it to every contact and open lead with one of its addresses and to their accounts, threads it by in_reply_to; returns the e-mail id';

-- Row-level security: an e-mail is visible with a linked record (the EXISTS
-- over crm.email_link applies that table's policy, which applies the
-- record's), or to the team of the role that logged it.  No role writes
-- them directly; admins may delete an e-mail (its links go with it).
ALTER TABLE crm.email ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm.email_link ENABLE ROW LEVEL SECURITY;
CREATE POLICY crm_admin_all ON crm.email TO crm_admin USING (true) WITH CHECK (true);
CREATE POLICY crm_admin_all ON crm.email_link TO crm_admin USING (true) WITH CHECK (true);
CREATE POLICY crm_linked_select ON crm.email FOR SELECT TO crm_manager, crm_sales
    USING (logged_by::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))
        OR EXISTS (SELECT 1 FROM crm.email_link AS k WHERE k.email_id OPERATOR(pg_catalog.=) email.id));
CREATE POLICY crm_parent_select ON crm.email_link FOR SELECT TO crm_manager, crm_sales
    USING (EXISTS (SELECT 1 FROM crm.contact AS p WHERE p.id OPERATOR(pg_catalog.=) contact_id)
        OR EXISTS (SELECT 1 FROM crm.lead AS p WHERE p.id OPERATOR(pg_catalog.=) lead_id)
        OR EXISTS (SELECT 1 FROM crm.account AS p WHERE p.id OPERATOR(pg_catalog.=) account_id));

-- One row per conversation, of the e-mails the reader sees.
CREATE VIEW crm.email_thread WITH (security_invoker = true) AS
SELECT t.thread_id, t.subject, t.first_sent_at, t.last_sent_at, t.messages,
       ARRAY(SELECT DISTINCT a.address
               FROM crm.email AS x CROSS JOIN LATERAL pg_catalog.unnest(x.participants) AS a (address)
              WHERE x.thread_id OPERATOR(pg_catalog.=) t.thread_id
              ORDER BY a.address) AS participants
  FROM (SELECT e.thread_id,
               (pg_catalog.array_agg(e.subject ORDER BY e.sent_at, e.id))[1] AS subject,
               pg_catalog.min(e.sent_at) AS first_sent_at,
               pg_catalog.max(e.sent_at) AS last_sent_at,
               pg_catalog.count(*) AS messages
          FROM crm.email AS e
         GROUP BY e.thread_id) AS t;
COMMENT ON VIEW crm.email_thread IS 'Conversations of the e-mail log, one row per thread, of the e-mails the reader sees: the first e-mail''s subject, first and last sending time, number of messages, every participant address';
COMMENT ON COLUMN crm.email_thread.thread_id IS 'The conversation (crm.email.thread_id)';
COMMENT ON COLUMN crm.email_thread.subject IS 'Subject of the earliest e-mail of the conversation the reader sees';
COMMENT ON COLUMN crm.email_thread.first_sent_at IS 'When the earliest e-mail was sent';
COMMENT ON COLUMN crm.email_thread.last_sent_at IS 'When the latest e-mail was sent';
COMMENT ON COLUMN crm.email_thread.messages IS 'Number of e-mails in the conversation the reader sees';
COMMENT ON COLUMN crm.email_thread.participants IS 'Every address that sent or received one of them, in lower case';

-- Who logs: the CRM users (their mail clients) and crm_intake (a mail
-- integration or BCC drop box, which reads nothing); analysts read no mail.
REVOKE ALL ON FUNCTION crm.log_email(text, text, text, text[], text[], text, text, timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.log_email(text, text, text, text[], text[], text, text, timestamptz, text)
    TO crm_admin, crm_manager, crm_sales, crm_intake;
GRANT SELECT ON crm.email, crm.email_link, crm.email_thread TO crm_admin, crm_manager, crm_sales;
GRANT DELETE ON crm.email TO crm_admin;
