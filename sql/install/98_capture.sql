--------------------------------------------------------------------------
-- Lead capture: web forms, e-mail-to-lead and integrations
--
-- The group role crm_intake may call crm.capture_lead() (and crm.log_email(),
-- 98_email.sql) and nothing else: it reads no table.  A capture either
-- creates a lead (owned by crm_intake until
-- assignment routes it), or is merged into the open lead with the same
-- e-mail address or phone number (empty fields filled, nothing overwritten),
-- or is refused.  Every capture, refused ones included, is kept with what the
-- form sent in crm.lead_capture.  C: src/capture.c, src/capture_log.c.
--------------------------------------------------------------------------
GRANT USAGE ON SCHEMA crm TO crm_intake;

CREATE TABLE crm.lead_capture (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    captured_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    captured_by     regrole NOT NULL,
    source          text,
    campaign_id     bigint,
    payload         jsonb NOT NULL
                    CONSTRAINT lead_capture_payload_object CHECK (pg_catalog.jsonb_typeof(payload) OPERATOR(pg_catalog.=) 'object'),
    outcome         text NOT NULL
                    CONSTRAINT lead_capture_outcome_valid CHECK (outcome OPERATOR(pg_catalog.=) ANY (ARRAY['created', 'merged', 'refused'])),
    lead_id         bigint CONSTRAINT lead_capture_lead_id_fkey REFERENCES crm.lead (id) ON DELETE SET NULL,
    sqlstate        text CONSTRAINT lead_capture_sqlstate_shape CHECK (sqlstate OPERATOR(pg_catalog.~) '^[0-9A-Z]{5}$'),
    message         text,
    CONSTRAINT lead_capture_refusal CHECK (
        (outcome OPERATOR(pg_catalog.=) 'refused') OPERATOR(pg_catalog.=) (sqlstate IS NOT NULL AND message IS NOT NULL)
        AND (outcome OPERATOR(pg_catalog.<>) 'refused' OR lead_id IS NULL))
);
COMMENT ON TABLE crm.lead_capture IS 'Every lead capture (web form, e-mail-to-lead, integration) made with crm.capture_lead(), with what was sent and what became of it: a new lead, merged into an open lead, or refused and why; written only by the extension';
COMMENT ON COLUMN crm.lead_capture.id IS 'Capture number, assigned by the database; a refused capture''s error names it';
COMMENT ON COLUMN crm.lead_capture.captured_at IS 'When the capture was made (start of the calling transaction)';
COMMENT ON COLUMN crm.lead_capture.captured_by IS 'The login (database role) of the form or integration that sent it';
COMMENT ON COLUMN crm.lead_capture.source IS 'Lead source the capture named (as sent; may be unknown when refused)';
COMMENT ON COLUMN crm.lead_capture.campaign_id IS 'Campaign id the capture named (as sent; may be unknown when refused)';
COMMENT ON COLUMN crm.lead_capture.payload IS 'Everything the form sent, as JSON: name, company, email, phone, source, campaign_id, details (a value over its length limit is kept as {"truncated": its start, "bytes": its length})';
COMMENT ON COLUMN crm.lead_capture.outcome IS 'created (a new lead), merged (into an open lead with the same e-mail or phone) or refused';
COMMENT ON COLUMN crm.lead_capture.lead_id IS 'The lead created or merged into; NULL when refused (or when the lead was deleted since)';
COMMENT ON COLUMN crm.lead_capture.sqlstate IS 'Refused: the SQLSTATE of the error returned to the form';
COMMENT ON COLUMN crm.lead_capture.message IS 'Refused: the error message returned to the form';
CREATE INDEX lead_capture_lead_id_idx ON crm.lead_capture (lead_id) WHERE lead_id IS NOT NULL;
COMMENT ON INDEX crm.lead_capture_lead_id_idx IS 'A lead''s captures: its readers list them, and deleting or merging a lead finds them without reading every capture';
CREATE INDEX lead_capture_email_idx ON crm.lead_capture (pg_catalog.lower(payload OPERATOR(pg_catalog.->>) 'email'));
COMMENT ON INDEX crm.lead_capture_email_idx IS 'Captures by the e-mail address sent, in lower case: an access request or an erasure finds a person''s captures, refused ones too';

-- Admins read every capture; whoever reads a lead reads its captures.
-- Refused captures belong to no lead: admins only.  Nobody writes the table
-- but the extension (as its owner).
ALTER TABLE crm.lead_capture ENABLE ROW LEVEL SECURITY;
CREATE POLICY crm_admin_all ON crm.lead_capture TO crm_admin USING (true) WITH CHECK (true);
CREATE POLICY crm_parent_select ON crm.lead_capture FOR SELECT TO crm_manager, crm_sales
    USING (EXISTS (SELECT 1 FROM crm.lead AS p WHERE p.id OPERATOR(pg_catalog.=) lead_id));
GRANT SELECT ON crm.lead_capture TO crm_admin, crm_manager, crm_sales;

CREATE FUNCTION crm.capture_lead(name text, company text DEFAULT NULL, email text DEFAULT NULL,
                                 phone text DEFAULT NULL, source text DEFAULT 'website',
                                 campaign_id bigint DEFAULT NULL, details jsonb DEFAULT NULL)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'crm_capture_lead'
    LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.capture_lead(text, text, text, text, text, bigint, jsonb) IS 'Lead capture for web forms and integrations (crm_intake): creates a lead, or fills the empty fields of the open lead with the same e-mail or phone, records consent sent in details.consent, adds the lead to the campaign; every capture, refused ones too, is kept in crm.lead_capture; returns the lead id';
REVOKE ALL ON FUNCTION crm.capture_lead(text, text, text, text, text, bigint, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.capture_lead(text, text, text, text, text, bigint, jsonb) TO crm_intake;

