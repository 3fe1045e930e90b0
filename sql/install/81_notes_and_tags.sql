--------------------------------------------------------------------------
-- Notes, attachments and tags (README "Notes, attachments and tags")
--
-- A note or an attachment is about exactly one lead, account, contact,
-- opportunity, quote or sales order, and follows it: whoever sees the record
-- sees its notes and attachments; they move with a lead's conversion
-- (conversion_carry.c: to the contact) and with merges (repoint.c), and are
-- deleted with their record.  The note's (attachment's) owner, the owner's
-- managers and admins change and delete it.  An attachment is the metadata
-- of a file kept in the user's object store (the bytes are not in the
-- database); it is immutable for reps and managers (delete and attach again),
-- admins may correct it.
--
-- Tags are a shared vocabulary that admins and managers maintain; tagging a
-- lead, account, contact or opportunity is open to whoever may update the
-- record, once per record and tag.
--
-- Wired elsewhere like the other tables: the search trigger and index in
-- 92_search.sql, the policies in 95_row_security.sql, the timestamps and
-- the change log in 96_timestamps_and_change_log.sql, the grants in
-- 99_privileges.sql.
--------------------------------------------------------------------------

CREATE TABLE crm.note (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    body            text NOT NULL
                    CONSTRAINT note_body_not_blank CHECK (pg_catalog.btrim(body) OPERATOR(pg_catalog.<>) '')
                    CONSTRAINT note_body_length CHECK (pg_catalog.length(body) OPERATOR(pg_catalog.<=) 100000),
    pinned          boolean NOT NULL DEFAULT false,
    lead_id         bigint CONSTRAINT note_lead_id_fkey REFERENCES crm.lead (id) ON DELETE CASCADE,
    account_id      bigint CONSTRAINT note_account_id_fkey REFERENCES crm.account (id) ON DELETE CASCADE,
    contact_id      bigint CONSTRAINT note_contact_id_fkey REFERENCES crm.contact (id) ON DELETE CASCADE,
    opportunity_id  bigint CONSTRAINT note_opportunity_id_fkey REFERENCES crm.opportunity (id) ON DELETE CASCADE,
    quote_id        bigint CONSTRAINT note_quote_id_fkey REFERENCES crm.quote (id) ON DELETE CASCADE,
    sales_order_id  bigint CONSTRAINT note_sales_order_id_fkey REFERENCES crm.sales_order (id) ON DELETE CASCADE,
    owner           regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT note_about_exactly_one CHECK (pg_catalog.num_nonnulls(lead_id, account_id, contact_id,
        opportunity_id, quote_id, sales_order_id) OPERATOR(pg_catalog.=) 1)
);
COMMENT ON TABLE crm.note IS 'Free-text notes about one lead, account, contact, opportunity, quote or sales order; whoever sees the record sees its notes';
COMMENT ON COLUMN crm.note.id IS 'Note id, assigned by the database';
COMMENT ON COLUMN crm.note.body IS 'The text of the note (not blank, at most 100,000 characters); found by crm.search()';
COMMENT ON COLUMN crm.note.pinned IS 'True for a note kept on top of the record''s notes';
COMMENT ON COLUMN crm.note.lead_id IS 'The lead it is about (exactly one of lead, account, contact, opportunity, quote, sales order)';
COMMENT ON COLUMN crm.note.account_id IS 'The account it is about';
COMMENT ON COLUMN crm.note.contact_id IS 'The contact it is about';
COMMENT ON COLUMN crm.note.opportunity_id IS 'The opportunity it is about';
COMMENT ON COLUMN crm.note.quote_id IS 'The quote it is about';
COMMENT ON COLUMN crm.note.sales_order_id IS 'The sales order it is about';
COMMENT ON COLUMN crm.note.owner IS 'CRM user (database role) who wrote the note; they, their managers and admins change it';
COMMENT ON COLUMN crm.note.created_at IS 'When the note was written; set by the database';
COMMENT ON COLUMN crm.note.updated_at IS 'When the note was last changed; set by the database';
CREATE INDEX note_lead_id_idx ON crm.note (lead_id) WHERE lead_id IS NOT NULL;
CREATE INDEX note_account_id_idx ON crm.note (account_id) WHERE account_id IS NOT NULL;
CREATE INDEX note_contact_id_idx ON crm.note (contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX note_opportunity_id_idx ON crm.note (opportunity_id) WHERE opportunity_id IS NOT NULL;
CREATE INDEX note_quote_id_idx ON crm.note (quote_id) WHERE quote_id IS NOT NULL;
CREATE INDEX note_sales_order_id_idx ON crm.note (sales_order_id) WHERE sales_order_id IS NOT NULL;

CREATE TABLE crm.attachment (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_id         bigint CONSTRAINT attachment_lead_id_fkey REFERENCES crm.lead (id) ON DELETE CASCADE,
    account_id      bigint CONSTRAINT attachment_account_id_fkey REFERENCES crm.account (id) ON DELETE CASCADE,
    contact_id      bigint CONSTRAINT attachment_contact_id_fkey REFERENCES crm.contact (id) ON DELETE CASCADE,
    opportunity_id  bigint CONSTRAINT attachment_opportunity_id_fkey REFERENCES crm.opportunity (id) ON DELETE CASCADE,
    quote_id        bigint CONSTRAINT attachment_quote_id_fkey REFERENCES crm.quote (id) ON DELETE CASCADE,
    sales_order_id  bigint CONSTRAINT attachment_sales_order_id_fkey REFERENCES crm.sales_order (id) ON DELETE CASCADE,
    file_name       text NOT NULL
                    CONSTRAINT attachment_file_name_valid CHECK (
                        pg_catalog.btrim(file_name) OPERATOR(pg_catalog.<>) ''
                        AND pg_catalog.length(file_name) OPERATOR(pg_catalog.<=) 255
                        AND file_name OPERATOR(pg_catalog.!~) '[/\\[:cntrl:]]'
                        AND file_name OPERATOR(pg_catalog.<>) ALL (ARRAY['.', '..'])),
    mime_type       text NOT NULL
                    CONSTRAINT attachment_mime_type_valid CHECK (
                        pg_catalog.length(mime_type) OPERATOR(pg_catalog.<=) 255
                        AND mime_type OPERATOR(pg_catalog.~) '^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$'),
    size_bytes      bigint NOT NULL
                    CONSTRAINT attachment_size_not_negative CHECK (size_bytes OPERATOR(pg_catalog.>=) 0),
    sha256          text NOT NULL
                    CONSTRAINT attachment_sha256_valid CHECK (sha256 OPERATOR(pg_catalog.~) '^[0-9a-f]{64}$'),
    storage_uri     text NOT NULL
                    CONSTRAINT attachment_storage_uri_valid CHECK (
                        pg_catalog.length(storage_uri) OPERATOR(pg_catalog.<=) 2000
                        AND storage_uri OPERATOR(pg_catalog.~) '^[a-z][a-z0-9+.-]*:[^[:space:][:cntrl:]]+$'),
    owner           regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT attachment_about_exactly_one CHECK (pg_catalog.num_nonnulls(lead_id, account_id, contact_id,
        opportunity_id, quote_id, sales_order_id) OPERATOR(pg_catalog.=) 1)
);
COMMENT ON TABLE crm.attachment IS 'Files attached to one lead, account, contact, opportunity, quote or sales order: their description only, the file itself is kept in the object store named by storage_uri; whoever sees the record sees its attachments';
COMMENT ON COLUMN crm.attachment.id IS 'Attachment id, assigned by the database';
COMMENT ON COLUMN crm.attachment.lead_id IS 'The lead it is attached to (exactly one of lead, account, contact, opportunity, quote, sales order)';
COMMENT ON COLUMN crm.attachment.account_id IS 'The account it is attached to';
COMMENT ON COLUMN crm.attachment.contact_id IS 'The contact it is attached to';
COMMENT ON COLUMN crm.attachment.opportunity_id IS 'The opportunity it is attached to';
COMMENT ON COLUMN crm.attachment.quote_id IS 'The quote it is attached to';
COMMENT ON COLUMN crm.attachment.sales_order_id IS 'The sales order it is attached to';
COMMENT ON COLUMN crm.attachment.file_name IS 'The file''s name, without a folder: not blank, no / or \ or control characters, at most 255 characters';
COMMENT ON COLUMN crm.attachment.mime_type IS 'The file''s media type, type/subtype (e.g. application/pdf)';
COMMENT ON COLUMN crm.attachment.size_bytes IS 'The file''s size in bytes (0 or more)';
COMMENT ON COLUMN crm.attachment.sha256 IS 'SHA-256 of the file''s bytes: 64 lower-case hexadecimal digits';
COMMENT ON COLUMN crm.attachment.storage_uri IS 'Where the file is kept: a URI with a scheme (s3://bucket/key, https://...)';
COMMENT ON COLUMN crm.attachment.owner IS 'CRM user (database role) who attached the file; they, their managers and admins delete it';
COMMENT ON COLUMN crm.attachment.created_at IS 'When the file was attached; set by the database';
COMMENT ON COLUMN crm.attachment.updated_at IS 'When the attachment was last changed (by an admin, a conversion or a merge); set by the database';
CREATE INDEX attachment_lead_id_idx ON crm.attachment (lead_id) WHERE lead_id IS NOT NULL;
CREATE INDEX attachment_account_id_idx ON crm.attachment (account_id) WHERE account_id IS NOT NULL;
CREATE INDEX attachment_contact_id_idx ON crm.attachment (contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX attachment_opportunity_id_idx ON crm.attachment (opportunity_id) WHERE opportunity_id IS NOT NULL;
CREATE INDEX attachment_quote_id_idx ON crm.attachment (quote_id) WHERE quote_id IS NOT NULL;
CREATE INDEX attachment_sales_order_id_idx ON crm.attachment (sales_order_id) WHERE sales_order_id IS NOT NULL;

CREATE TABLE crm.tag (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL
                CONSTRAINT tag_name_valid CHECK (pg_catalog.btrim(name) OPERATOR(pg_catalog.=) name
                    AND name OPERATOR(pg_catalog.<>) '' AND pg_catalog.length(name) OPERATOR(pg_catalog.<=) 100),
    color       text CONSTRAINT tag_color_valid CHECK (color OPERATOR(pg_catalog.~) '^#[0-9a-f]{6}$'),
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE crm.tag IS 'Labels that leads, accounts, contacts and opportunities can carry (e.g. "VIP", "trade fair 2026"); kept by admins and managers';
COMMENT ON COLUMN crm.tag.id IS 'Tag id, assigned by the database';
COMMENT ON COLUMN crm.tag.name IS 'The label: unique regardless of case, no leading or trailing spaces, at most 100 characters';
COMMENT ON COLUMN crm.tag.color IS 'Display colour, #rrggbb in lower case (NULL: none)';
COMMENT ON COLUMN crm.tag.created_at IS 'When the tag was created; set by the database';
COMMENT ON COLUMN crm.tag.updated_at IS 'When the tag was last changed; set by the database';
CREATE UNIQUE INDEX tag_name_key ON crm.tag (pg_catalog.lower(name));
COMMENT ON INDEX crm.tag_name_key IS 'A tag name exists once, whatever its case';

CREATE TABLE crm.record_tag (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tag_id          bigint NOT NULL CONSTRAINT record_tag_tag_id_fkey REFERENCES crm.tag (id) ON DELETE CASCADE,
    lead_id         bigint CONSTRAINT record_tag_lead_id_fkey REFERENCES crm.lead (id) ON DELETE CASCADE,
    account_id      bigint CONSTRAINT record_tag_account_id_fkey REFERENCES crm.account (id) ON DELETE CASCADE,
    contact_id      bigint CONSTRAINT record_tag_contact_id_fkey REFERENCES crm.contact (id) ON DELETE CASCADE,
    opportunity_id  bigint CONSTRAINT record_tag_opportunity_id_fkey REFERENCES crm.opportunity (id) ON DELETE CASCADE,
    owner           regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT record_tag_on_exactly_one CHECK (pg_catalog.num_nonnulls(lead_id, account_id, contact_id, opportunity_id)
        OPERATOR(pg_catalog.=) 1),
    -- a record carries a tag once (these keys also index the foreign keys;
    -- merges fold two taggings of one tag into one: repoint.c)
    CONSTRAINT record_tag_lead_key UNIQUE (lead_id, tag_id),
    CONSTRAINT record_tag_account_key UNIQUE (account_id, tag_id),
    CONSTRAINT record_tag_contact_key UNIQUE (contact_id, tag_id),
    CONSTRAINT record_tag_opportunity_key UNIQUE (opportunity_id, tag_id)
);
COMMENT ON TABLE crm.record_tag IS 'Which lead, account, contact or opportunity carries which tag (each record a tag once); added and removed by whoever may update the record';
COMMENT ON COLUMN crm.record_tag.id IS 'Tagging id, assigned by the database';
COMMENT ON COLUMN crm.record_tag.tag_id IS 'The tag';
COMMENT ON COLUMN crm.record_tag.lead_id IS 'The tagged lead (exactly one of lead, account, contact, opportunity)';
COMMENT ON COLUMN crm.record_tag.account_id IS 'The tagged account';
COMMENT ON COLUMN crm.record_tag.contact_id IS 'The tagged contact';
COMMENT ON COLUMN crm.record_tag.opportunity_id IS 'The tagged opportunity';
COMMENT ON COLUMN crm.record_tag.owner IS 'CRM user (database role) who tagged the record';
COMMENT ON COLUMN crm.record_tag.created_at IS 'When the record was tagged; set by the database';
COMMENT ON COLUMN crm.record_tag.updated_at IS 'When the tagging last changed (a conversion or merge moved it); set by the database';
CREATE INDEX record_tag_tag_id_idx ON crm.record_tag (tag_id);

-- How many records of each kind carry each tag: security_invoker, so each
-- role counts the records it sees.
CREATE VIEW crm.tag_usage WITH (security_invoker = true) AS
    SELECT t.id AS tag_id, t.name AS tag, k.kind, pg_catalog.count(*) AS records
      FROM crm.record_tag AS r
      JOIN crm.tag AS t ON t.id OPERATOR(pg_catalog.=) r.tag_id
     CROSS JOIN LATERAL (SELECT CASE WHEN r.lead_id IS NOT NULL THEN 'lead'
                                     WHEN r.account_id IS NOT NULL THEN 'account'
                                     WHEN r.contact_id IS NOT NULL THEN 'contact'
                                     ELSE 'opportunity' END AS kind) AS k
     GROUP BY t.id, t.name, k.kind;
COMMENT ON VIEW crm.tag_usage IS 'Number of leads, accounts, contacts and opportunities carrying each tag, counting the records the reader sees (a tag nobody uses is not listed)';
COMMENT ON COLUMN crm.tag_usage.tag_id IS 'The tag';
COMMENT ON COLUMN crm.tag_usage.tag IS 'Tag name';
COMMENT ON COLUMN crm.tag_usage.kind IS 'lead, account, contact or opportunity';
COMMENT ON COLUMN crm.tag_usage.records IS 'How many records of that kind carry the tag';
