--------------------------------------------------------------------------
-- 6. Lead conversion
--------------------------------------------------------------------------
CREATE TYPE crm.conversion_result AS (
    lead_id              bigint,
    account_id           bigint,
    contact_id           bigint,
    opportunity_id       bigint,
    account_created      boolean,
    contact_created      boolean,
    opportunity_created  boolean
);
COMMENT ON TYPE crm.conversion_result IS 'Result of crm.convert_lead(): the records the lead now points to, and for each whether it was created (true) or an existing one reused (false)';

CREATE FUNCTION crm.convert_lead(
    lead_id             bigint,
    account_id          bigint  DEFAULT NULL,
    contact_id          bigint  DEFAULT NULL,
    create_opportunity  boolean DEFAULT true,
    opportunity_name    text    DEFAULT NULL,
    owner               regrole DEFAULT NULL,
    dedupe              boolean DEFAULT true,
    opportunity_id      bigint  DEFAULT NULL)
    RETURNS crm.conversion_result
    AS 'MODULE_PATHNAME', 'crm_convert_lead'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.convert_lead(bigint, bigint, bigint, boolean, text, regrole, boolean, bigint) IS
'Converts a lead into account + contact (+ opportunity) in one atomic step and marks it Converted. '
'Reuses an existing account (same company key or web domain) and contact (same e-mail) unless dedupe => false; '
'account_id / contact_id pick the records explicitly; opportunity_id attaches the lead to an existing opportunity on the account instead of creating one. '
'The lead''s open activities, its campaign memberships, notes, attachments, tags and e-mail links move to the new or reused records; its custom field values are copied to fields of the same name. '
'Acts with the caller''s rights on every row; only the duplicate search and the moving run with the extension owner''s. See README "Lead conversion".';

CREATE FUNCTION crm.conversion_preview(
    lead_id             bigint,
    account_id          bigint  DEFAULT NULL,
    contact_id          bigint  DEFAULT NULL,
    create_opportunity  boolean DEFAULT true,
    opportunity_name    text    DEFAULT NULL,
    owner               regrole DEFAULT NULL,
    dedupe              boolean DEFAULT true,
    opportunity_id      bigint  DEFAULT NULL)
    RETURNS TABLE (action text, kind text, id bigint, rule text, name text)
    AS 'MODULE_PATHNAME', 'crm_conversion_preview'
    LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 10
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.conversion_preview(bigint, bigint, bigint, boolean, text, regrole, boolean, bigint) IS
'What crm.convert_lead() with the same arguments would do, without writing or locking anything: one row per record it would reuse (with the matching rule), create, attach to, or move from the lead (activities, campaign memberships, notes, attachments, tags the caller sees). '
'Raises the errors the conversion would raise. See README "Lead conversion".';
