--------------------------------------------------------------------------
-- 1. Roles
--
-- Roles are cluster-wide objects and outlive the extension: they are created
-- only when missing, so the extension can be created in several databases of
-- one cluster, dropped and created again.
--------------------------------------------------------------------------
DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['crm_admin', 'crm_manager', 'crm_sales', 'crm_analyst', 'crm_privacy_officer', 'crm_intake']
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
    -- admins are privacy officers too (access requests, erasure)
    IF NOT pg_catalog.pg_has_role('crm_admin', 'crm_privacy_officer', 'MEMBER') THEN
        GRANT crm_privacy_officer TO crm_admin;
    END IF;
END
$roles$;

-- Schema crm must be the installer's (or a superuser's): a schema someone
-- else created beforehand could hold objects of theirs.
DO $owner$
DECLARE
    owner_name name;
    owner_super boolean;
BEGIN
    SELECT r.rolname, r.rolsuper INTO owner_name, owner_super
      FROM pg_catalog.pg_namespace AS n JOIN pg_catalog.pg_roles AS r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
     WHERE n.nspname OPERATOR(pg_catalog.=) 'crm';
    IF owner_name OPERATOR(pg_catalog.<>) CURRENT_USER AND NOT owner_super THEN
        RAISE EXCEPTION 'schema crm belongs to role %, not to the role creating the extension', owner_name
            USING ERRCODE = '42501', HINT = 'Drop or rename that schema, then create the extension again.';
    END IF;
END
$owner$;

COMMENT ON SCHEMA crm IS 'CRM sales cloud: leads, accounts, contacts, opportunities and lead conversion (extension crm)';

GRANT USAGE ON SCHEMA crm TO crm_admin, crm_manager, crm_sales, crm_analyst, crm_privacy_officer;

--------------------------------------------------------------------------
-- 2. Domains and lookup tables
--------------------------------------------------------------------------

-- An e-mail address: one @, a dotted domain, no white space, at most 254
-- characters (RFC 5321 path limit).
CREATE DOMAIN crm.email_address AS text
    CONSTRAINT email_address_shape CHECK (
        pg_catalog.length(VALUE) OPERATOR(pg_catalog.<=) 254
        AND VALUE OPERATOR(pg_catalog.~) '^[^@[:space:]]+@[^@[:space:].]+(\.[^@[:space:].]+)+$');
COMMENT ON DOMAIN crm.email_address IS 'An e-mail address: local part, @, dotted domain; no spaces; at most 254 characters';

-- A web address: optional http(s) scheme, a dotted host name, optional port,
-- optional path/query; no white space.
CREATE DOMAIN crm.web_url AS text
    CONSTRAINT web_url_shape CHECK (
        pg_catalog.length(VALUE) OPERATOR(pg_catalog.<=) 2048
        AND VALUE OPERATOR(pg_catalog.~*) '^(https?://)?[^[:space:]/:?#@.]+(\.[^[:space:]/:?#@.]+)+(:[0-9]{1,5})?([/?#][^[:space:]]*)?$');
COMMENT ON DOMAIN crm.web_url IS 'A web address such as https://example.com/path or example.com; http(s) scheme optional; no spaces';

-- A phone number as people write it: digits with optional leading +, spaces,
-- dots, dashes, slashes and parentheses, and an optional extension.
CREATE DOMAIN crm.phone_number AS text
    CONSTRAINT phone_number_shape CHECK (
        VALUE OPERATOR(pg_catalog.~*) '^\+?[0-9][0-9 ().\-/]{2,30}([[:space:]]*(x|ext\.?)[[:space:]]*[0-9]{1,6})?$'
        AND pg_catalog.length(pg_catalog.regexp_replace(VALUE, '[^0-9]', '', 'g')) OPERATOR(pg_catalog.>=) 3);
COMMENT ON DOMAIN crm.phone_number IS 'A phone number: digits, optional leading +, spaces, dots, dashes, slashes, parentheses, optional extension (x123 / ext. 123)';

-- Lead status: the seed's six working statuses plus Converted, which only
-- crm.convert_lead() can set.
CREATE TYPE crm.lead_status AS ENUM (
    'Not Qualified', 'New Lead', 'Processing', 'Following Up',
    'In Transaction', 'Completed', 'Converted');
COMMENT ON TYPE crm.lead_status IS 'Lead status. Not Qualified, New Lead, Processing, Following Up, In Transaction, Completed are set by users; Converted only by crm.convert_lead()';

CREATE TABLE crm.lead_source (
    code        text PRIMARY KEY
                CONSTRAINT lead_source_code_shape CHECK (code OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]{0,39}$'),
    label       text NOT NULL CONSTRAINT lead_source_label_not_blank CHECK (pg_catalog.btrim(label) OPERATOR(pg_catalog.<>) ''),
    active      boolean NOT NULL DEFAULT true,
    sort_order  integer NOT NULL DEFAULT 100
);
COMMENT ON TABLE crm.lead_source IS 'Channels a lead can come from (website, phone, email, ...); admins may add more';
COMMENT ON COLUMN crm.lead_source.code IS 'Stable key stored in crm.lead.source: lower case letters, digits, underscore';
COMMENT ON COLUMN crm.lead_source.label IS 'Display name of the channel';
COMMENT ON COLUMN crm.lead_source.active IS 'Inactive sources stay valid on old leads but should not be offered for new ones';
COMMENT ON COLUMN crm.lead_source.sort_order IS 'Display order in pick lists and reports';

INSERT INTO crm.lead_source (code, label, sort_order) VALUES
    ('website',    'Website',        10),
    ('phone',      'Phone',          20),
    ('email',      'E-mail',         30),
    ('referral',   'Referral',       40),
    ('campaign',   'Campaign',       50),
    ('event',      'Event',          60),
    ('partner',    'Partner',        70),
    ('social',     'Social media',   80),
    ('other',      'Other',          90);

CREATE TABLE crm.opportunity_stage (
    name              text PRIMARY KEY
                      CONSTRAINT opportunity_stage_name_not_blank CHECK (pg_catalog.btrim(name) OPERATOR(pg_catalog.<>) ''),
    sort_order        integer NOT NULL CONSTRAINT opportunity_stage_sort_order_key UNIQUE,
    probability       numeric(5,2) NOT NULL
                      CONSTRAINT opportunity_stage_probability_range CHECK (probability BETWEEN 0 AND 100),
    is_closed         boolean NOT NULL DEFAULT false,
    is_won            boolean NOT NULL DEFAULT false,
    forecast_category text NOT NULL DEFAULT 'Pipeline'
                      CONSTRAINT opportunity_stage_forecast_category_valid
                      CHECK (forecast_category OPERATOR(pg_catalog.=) ANY (ARRAY['Pipeline', 'Best Case', 'Commit', 'Closed', 'Omitted'])),
    active            boolean NOT NULL DEFAULT true,
    CONSTRAINT opportunity_stage_won_is_closed CHECK (NOT is_won OR is_closed)
);
COMMENT ON TABLE crm.opportunity_stage IS 'Sales stages in pipeline order, with default probability and whether the stage closes the deal (won or lost); admins may add stages';
COMMENT ON COLUMN crm.opportunity_stage.name IS 'Stage name stored in crm.opportunity.stage (renaming cascades to opportunities)';
COMMENT ON COLUMN crm.opportunity_stage.sort_order IS 'Position of the stage in the pipeline, lowest first; the first open stage is where converted leads start';
COMMENT ON COLUMN crm.opportunity_stage.probability IS 'Default win probability in percent (0-100) for opportunities entering this stage';
COMMENT ON COLUMN crm.opportunity_stage.is_closed IS 'True when an opportunity in this stage is finished (won or lost); cannot change while opportunities are in the stage (ZC111)';
COMMENT ON COLUMN crm.opportunity_stage.is_won IS 'True when the stage means the deal was won (implies is_closed); cannot change while opportunities are in the stage (ZC111)';
COMMENT ON COLUMN crm.opportunity_stage.forecast_category IS 'Forecast bucket: Pipeline, Best Case, Commit, Closed or Omitted';
COMMENT ON COLUMN crm.opportunity_stage.active IS 'Inactive stages stay valid on old opportunities but should not be offered';

-- The seed's stages. 'Deal Closed' means terms are agreed and the deal awaits
-- signature; 'Successful' and 'Failed' are the closed outcomes.
INSERT INTO crm.opportunity_stage (name, sort_order, probability, is_closed, is_won, forecast_category) VALUES
    ('Qualification', 10,  10, false, false, 'Pipeline'),
    ('Requirement',   20,  25, false, false, 'Pipeline'),
    ('Proposal',      30,  50, false, false, 'Best Case'),
    ('Negotiation',   40,  75, false, false, 'Best Case'),
    ('Deal Closed',   50,  90, false, false, 'Commit'),
    ('Successful',    60, 100, true,  true,  'Closed'),
    ('Failed',        70,   0, true,  false, 'Omitted');

