--------------------------------------------------------------------------
-- Personal data: consent, access requests, erasure, retention
--
-- Leads and contacts carry the person's consent (opt-outs and the lawful
-- basis); crm.contactable lists who may be e-mailed or called.  Privacy
-- officers (crm_privacy_officer; admins are members) answer access requests
-- with crm.export_person() and erase a person with crm.erase_person(), which
-- also rewrites the change log's stored values (the one sanctioned exception
-- to its append-only rule) and records the erasure in crm.erasure_log.
-- crm.purge_change_log() removes change-log entries older than the retention
-- period in crm.settings.  C: src/privacy.c, src/erasure.c, src/retention.c.
--------------------------------------------------------------------------

-- Consent on leads and contacts (the same six columns on both).
DO $consent$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['lead', 'contact']
    LOOP
        EXECUTE pg_catalog.format(
            'ALTER TABLE crm.%1$I'
            ' ADD COLUMN email_opt_out boolean NOT NULL DEFAULT false,'
            ' ADD COLUMN phone_opt_out boolean NOT NULL DEFAULT false,'
            ' ADD COLUMN do_not_contact boolean NOT NULL DEFAULT false,'
            ' ADD COLUMN consent_basis text CONSTRAINT %1$s_consent_basis_valid CHECK (consent_basis OPERATOR(pg_catalog.=) ANY'
            '     (ARRAY[''consent'', ''contract'', ''legitimate interest'', ''legal obligation''])),'
            ' ADD COLUMN consent_at timestamptz,'
            ' ADD COLUMN consent_source text CONSTRAINT %1$s_consent_source_not_blank'
            '     CHECK (pg_catalog.btrim(consent_source) OPERATOR(pg_catalog.<>) ''''),'
            ' ADD CONSTRAINT %1$s_consent_recorded CHECK (consent_at IS NULL OR consent_basis IS NOT NULL)', t);
    END LOOP;
END
$consent$;
COMMENT ON COLUMN crm.lead.email_opt_out IS 'The person asked not to be e-mailed (marketing e-mail); carried to the contact on conversion';
COMMENT ON COLUMN crm.lead.phone_opt_out IS 'The person asked not to be called; carried to the contact on conversion';
COMMENT ON COLUMN crm.lead.do_not_contact IS 'The person must not be contacted at all, by any channel; carried to the contact on conversion';
COMMENT ON COLUMN crm.lead.consent_basis IS 'Lawful basis for processing the person''s data: consent, contract, legitimate interest or legal obligation; NULL = unknown';
COMMENT ON COLUMN crm.lead.consent_at IS 'When the basis was recorded (e.g. when the person ticked the consent box); needs a basis';
COMMENT ON COLUMN crm.lead.consent_source IS 'Where the basis was recorded: form, campaign, call, contract number';
COMMENT ON COLUMN crm.contact.email_opt_out IS 'The person asked not to be e-mailed (marketing e-mail)';
COMMENT ON COLUMN crm.contact.phone_opt_out IS 'The person asked not to be called';
COMMENT ON COLUMN crm.contact.do_not_contact IS 'The person must not be contacted at all, by any channel';
COMMENT ON COLUMN crm.contact.consent_basis IS 'Lawful basis for processing the person''s data: consent, contract, legitimate interest or legal obligation; NULL = unknown';
COMMENT ON COLUMN crm.contact.consent_at IS 'When the basis was recorded; needs a basis';
COMMENT ON COLUMN crm.contact.consent_source IS 'Where the basis was recorded: form, campaign, call, contract number';
-- A person's leads are found by e-mail (export and erasure) through
-- lead_email_lower_idx (87_duplicates.sql), as contacts are through
-- contact_email_lower_idx.

-- Who may be e-mailed or called.
CREATE VIEW crm.contactable WITH (security_invoker = true) AS
    SELECT 'lead'::text AS record_type, l.id AS record_id, l.name,
           CASE WHEN NOT l.email_opt_out THEN l.email::text END AS email,
           CASE WHEN NOT l.phone_opt_out THEN l.phone::text END AS phone,
           l.consent_basis, pg_catalog.pg_get_userbyid(l.owner)::text AS owner
      FROM crm.lead AS l
     WHERE NOT l.do_not_contact
       AND l.status OPERATOR(pg_catalog.<>) 'Converted'::crm.lead_status
       AND ((NOT l.email_opt_out AND l.email IS NOT NULL) OR (NOT l.phone_opt_out AND l.phone IS NOT NULL))
    UNION ALL
    SELECT 'contact'::text, c.id, c.name,
           CASE WHEN NOT c.email_opt_out THEN c.email::text END,
           CASE WHEN NOT c.phone_opt_out THEN c.phone::text END,
           c.consent_basis, pg_catalog.pg_get_userbyid(c.owner)::text
      FROM crm.contact AS c
     WHERE NOT c.do_not_contact
       AND ((NOT c.email_opt_out AND c.email IS NOT NULL) OR (NOT c.phone_opt_out AND c.phone IS NOT NULL));
COMMENT ON VIEW crm.contactable IS 'Leads (not yet converted) and contacts that may be contacted, for campaign and dialling tools: not do-not-contact, with an e-mail or phone they did not opt out of; an opted-out channel shows as NULL. Row-level security applies';
COMMENT ON COLUMN crm.contactable.record_type IS 'lead or contact';
COMMENT ON COLUMN crm.contactable.record_id IS 'Id of the lead or contact';
COMMENT ON COLUMN crm.contactable.name IS 'Name of the person';
COMMENT ON COLUMN crm.contactable.email IS 'E-mail address that may be used; NULL when there is none or the person opted out of e-mail';
COMMENT ON COLUMN crm.contactable.phone IS 'Phone number that may be called; NULL when there is none or the person opted out of calls';
COMMENT ON COLUMN crm.contactable.consent_basis IS 'Lawful basis recorded for the person (NULL = unknown)';
COMMENT ON COLUMN crm.contactable.owner IS 'Owner of the lead or contact: the role''s name, as text (the tables keep a regrole)';

-- Campaign members who had opted out when they were added.
ALTER TABLE crm.campaign_member ADD COLUMN opted_out boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN crm.campaign_member.opted_out IS 'Set by the database: the lead or contact was do-not-contact, or had opted out of e-mail (Email campaign) or calls (Telemarketing campaign), when added; adding such a member raises a WARNING';

-- The privacy officers' record of erasures.
CREATE TABLE crm.erasure_log (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    erased_at           timestamptz NOT NULL DEFAULT pg_catalog.now(),
    erased_by           regrole NOT NULL,
    reason              text NOT NULL
                        CONSTRAINT erasure_log_reason_not_blank CHECK (pg_catalog.btrim(reason) OPERATOR(pg_catalog.<>) ''),
    email_hash          text NOT NULL
                        CONSTRAINT erasure_log_email_hash_shape CHECK (email_hash OPERATOR(pg_catalog.~) '^[0-9a-f]{64}$'),
    leads               integer NOT NULL,
    contacts            integer NOT NULL,
    related_rows        integer NOT NULL,
    change_log_entries  integer NOT NULL
);
COMMENT ON TABLE crm.erasure_log IS 'One row per erasure made by crm.erase_person(): who, when, why, a salted hash of the e-mail address and how many rows were touched; append-only, cannot be erased';
COMMENT ON COLUMN crm.erasure_log.id IS 'Erasure number; the erased records are renamed "Erased person <id>"';
COMMENT ON COLUMN crm.erasure_log.erased_at IS 'When the erasure was made (transaction time)';
COMMENT ON COLUMN crm.erasure_log.erased_by IS 'Privacy officer who made it';
COMMENT ON COLUMN crm.erasure_log.reason IS 'Why: the request or its reference';
COMMENT ON COLUMN crm.erasure_log.email_hash IS 'Hex SHA-256 of a secret salt followed by the e-mail address in lower case: tells whether an address was erased, without holding it';
COMMENT ON COLUMN crm.erasure_log.leads IS 'Leads pseudonymised';
COMMENT ON COLUMN crm.erasure_log.contacts IS 'Contacts pseudonymised';
COMMENT ON COLUMN crm.erasure_log.related_rows IS 'Other rows redacted: accounts named after the person, opportunity names, activities about the person';
COMMENT ON COLUMN crm.erasure_log.change_log_entries IS 'Change-log entries whose stored values were replaced by "[erased]"';
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON crm.erasure_log
    FOR EACH ROW EXECUTE FUNCTION crm_internal.audit_append_only();
CREATE TRIGGER audit_append_only_truncate BEFORE TRUNCATE ON crm.erasure_log
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.audit_append_only();
ALTER TABLE crm.erasure_log ENABLE ALWAYS TRIGGER audit_append_only;
ALTER TABLE crm.erasure_log ENABLE ALWAYS TRIGGER audit_append_only_truncate;

-- The salt of erasure_log.email_hash: random, made at CREATE EXTENSION,
-- readable only by the extension owner.  It is dumped (so hashes stay
-- comparable after a restore); under a restore (session_replication_role =
-- replica) the dump brings it, so none is made here.
CREATE TABLE crm_internal.erasure_salt (
    single_row boolean PRIMARY KEY DEFAULT true CONSTRAINT erasure_salt_single_row CHECK (single_row),
    salt bytea NOT NULL CONSTRAINT erasure_salt_length CHECK (pg_catalog.octet_length(salt) BETWEEN 16 AND 64)
);
COMMENT ON TABLE crm_internal.erasure_salt IS 'Internal: the random salt of crm.erasure_log.email_hash; readable by the extension owner only';
COMMENT ON COLUMN crm_internal.erasure_salt.single_row IS 'Always true: the table holds one row';
COMMENT ON COLUMN crm_internal.erasure_salt.salt IS 'Random bytes (244 random bits) made at CREATE EXTENSION';
DO $salt$
BEGIN
    IF pg_catalog.current_setting('session_replication_role') OPERATOR(pg_catalog.<>) 'replica' THEN
        INSERT INTO crm_internal.erasure_salt (salt)
        VALUES (pg_catalog.decode(pg_catalog.replace(pg_catalog.gen_random_uuid()::pg_catalog.text
                                                     OPERATOR(pg_catalog.||) pg_catalog.gen_random_uuid()::pg_catalog.text,
                                                     '-', ''), 'hex'));
    END IF;
END
$salt$;

-- Retention of the change log, and its purge summary entries.
ALTER TABLE crm.settings ADD COLUMN change_log_retention interval
    CONSTRAINT settings_change_log_retention_positive CHECK (change_log_retention OPERATOR(pg_catalog.>) '0'::interval);
COMMENT ON COLUMN crm.settings.change_log_retention IS 'How long change-log entries are kept: crm.purge_change_log() removes older ones; NULL = keep forever';
ALTER TABLE crm.change_log DROP CONSTRAINT change_log_operation_valid;
ALTER TABLE crm.change_log ADD CONSTRAINT change_log_operation_valid
    CHECK (operation OPERATOR(pg_catalog.=) ANY (ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'PURGE']));
COMMENT ON COLUMN crm.change_log.operation IS 'INSERT, UPDATE, DELETE or TRUNCATE; PURGE for the summary entry of crm.purge_change_log() (table crm.change_log)';
COMMENT ON COLUMN crm.change_log.changes IS 'UPDATE: {"column": {"old": text, "new": text}} for each changed column; DELETE: {"column": text} of the removed row; INSERT and TRUNCATE: {}; PURGE: {"cut_off": timestamp, "rows_removed": n}. A value longer than 2000 bytes is kept as {"truncated": its first characters (up to 2000 bytes), "bytes": its length in bytes, "sha256": hex SHA-256 of its bytes}. A value crm.erase_person() erased reads "[erased]"';

-- Functions.
CREATE FUNCTION crm.export_person(email text) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'crm_export_person'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.export_person(text) IS 'Access request: one JSON document with every row crm holds about the person with this e-mail address (case-insensitive): leads, contacts, their activities, participation, campaign memberships, lead captures (refused ones too), and the change-log and history entries about them; {} when there is none (privacy officers)';

CREATE FUNCTION crm.erase_person(email text, reason text) RETURNS crm.erasure_log
    AS 'MODULE_PATHNAME', 'crm_erase_person'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.erase_person(text, text) IS 'Erasure: pseudonymises every lead and contact with this e-mail address ("Erased person <n>", contact data and free text cleared), redacts rows and change-log entries holding their values, and records the erasure in crm.erasure_log (privacy officers)';

CREATE FUNCTION crm.purge_change_log(older_than timestamptz DEFAULT NULL) RETURNS bigint
    AS 'MODULE_PATHNAME', 'crm_purge_change_log'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.purge_change_log(timestamptz) IS 'Retention: deletes change-log entries older than the cut-off (default now() - crm.settings.change_log_retention; nothing when that is NULL), writes one PURGE summary entry, returns the number removed (admins)';

CREATE FUNCTION crm_internal.erased_value(value jsonb, needles text[]) RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT CASE pg_catalog.jsonb_typeof(value)
        WHEN 'string' THEN
            CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.unnest(needles) AS n
                               WHERE pg_catalog.strpos(pg_catalog.lower(value OPERATOR(pg_catalog.#>>) '{}'), n) OPERATOR(pg_catalog.>) 0)
                 THEN '"[erased]"'::pg_catalog.jsonb ELSE value END
        WHEN 'object' THEN
            CASE WHEN value OPERATOR(pg_catalog.?) 'sha256'
                      AND crm_internal.erased_value(value OPERATOR(pg_catalog.->) 'truncated', needles)
                          OPERATOR(pg_catalog.=) '"[erased]"'::pg_catalog.jsonb
                 THEN '"[erased]"'::pg_catalog.jsonb
                 ELSE (SELECT COALESCE(pg_catalog.jsonb_object_agg(e.key, crm_internal.erased_value(e.value, needles)), '{}'::pg_catalog.jsonb)
                         FROM pg_catalog.jsonb_each(value) AS e) END
        WHEN 'array' THEN
            (SELECT COALESCE(pg_catalog.jsonb_agg(crm_internal.erased_value(e.value, needles) ORDER BY e.n), '[]'::pg_catalog.jsonb)
               FROM pg_catalog.jsonb_array_elements(value) WITH ORDINALITY AS e (value, n))
        ELSE value END
    $$;
COMMENT ON FUNCTION crm_internal.erased_value(jsonb, text[]) IS 'Internal (crm.erase_person): the JSON value with every string that contains one of the needles (lower case) replaced by "[erased]"; a long value kept with its SHA-256 is replaced whole';

CREATE FUNCTION crm_internal.erased_text(value text, needles text[], replacement text) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT CASE WHEN value IS NULL OR COALESCE(pg_catalog.cardinality(needles), 0) OPERATOR(pg_catalog.=) 0 THEN value
        ELSE (WITH RECURSIVE r (i, v) AS (
                  SELECT pg_catalog.array_lower(needles, 1), value
                  UNION ALL
                  SELECT r.i OPERATOR(pg_catalog.+) 1,
                         pg_catalog.regexp_replace(r.v,
                             pg_catalog.regexp_replace(needles[r.i], '([^[:alnum:][:space:]])', '\\\1', 'g'),
                             replacement, 'gi')
                    FROM r WHERE r.i OPERATOR(pg_catalog.<=) pg_catalog.array_upper(needles, 1))
              SELECT r.v FROM r ORDER BY r.i DESC LIMIT 1) END
    $$;
COMMENT ON FUNCTION crm_internal.erased_text(text, text[], text) IS 'Internal (crm.erase_person): the text with every occurrence of each needle (case-insensitive) replaced by the replacement';

-- Rights: privacy officers (and admins, who are members) only; the change
-- log's retention is the admins'.
REVOKE ALL ON FUNCTION crm.export_person(text), crm.erase_person(text, text),
    crm.purge_change_log(timestamptz), crm_internal.erased_value(jsonb, text[]), crm_internal.erased_text(text, text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.export_person(text), crm.erase_person(text, text) TO crm_privacy_officer;
GRANT EXECUTE ON FUNCTION crm.purge_change_log(timestamptz) TO crm_admin;
GRANT SELECT ON crm.erasure_log TO crm_privacy_officer;
GRANT SELECT ON crm.contactable TO crm_admin, crm_manager, crm_sales;
