/*
 * crm--0.1.sql: the CRM sales schema.
 *
 * Reads top to bottom like a schema document:
 *   1. roles and schema privileges
 *   2. value domains (email, URL, phone) and lookup tables
 *   3. core model: account, contact, account_contact, lead, opportunity
 *   4. history: lead status history and the change log
 *   5. C functions: normalisation helpers, row stamping, guards, history
 *   6. convert_lead()
 *   7. grants and pg_dump configuration
 *
 * Every name used inside functions is schema-qualified; the C code that runs
 * SQL does the same, so nothing here depends on the caller's search_path.
 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION crm" to load this file. \quit

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
    FOREACH r IN ARRAY ARRAY['crm_admin', 'crm_manager', 'crm_sales', 'crm_analyst']
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$roles$;

COMMENT ON SCHEMA crm IS 'CRM sales cloud: leads, accounts, contacts, opportunities and lead conversion (extension crm)';

GRANT USAGE ON SCHEMA crm TO crm_admin, crm_manager, crm_sales, crm_analyst;

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
COMMENT ON COLUMN crm.opportunity_stage.is_closed IS 'True when an opportunity in this stage is finished (won or lost)';
COMMENT ON COLUMN crm.opportunity_stage.is_won IS 'True when the stage means the deal was won (implies is_closed)';
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

--------------------------------------------------------------------------
-- 3. Core model
--------------------------------------------------------------------------

-- crm.current_role_id() is the role the current statement runs as: the
-- default owner of new rows.
CREATE FUNCTION crm.current_role_id() RETURNS regrole
    AS 'MODULE_PATHNAME', 'crm_current_role_id'
    LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.current_role_id() IS 'The role the current statement runs as (current_user as regrole); default owner of new CRM rows';

CREATE TABLE crm.account (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL
                 CONSTRAINT account_name_not_blank CHECK (pg_catalog.btrim(name) OPERATOR(pg_catalog.<>) ''),
    industry     text,
    phone        crm.phone_number,
    website      crm.web_url,
    street       text,
    city         text,
    region       text,
    postal_code  text,
    country      text,
    description  text,
    owner        regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE crm.account IS 'Customer companies and organisations (accounts)';
COMMENT ON COLUMN crm.account.id IS 'Account id, assigned by the database';
COMMENT ON COLUMN crm.account.name IS 'Company or organisation name';
COMMENT ON COLUMN crm.account.industry IS 'Industry the account works in';
COMMENT ON COLUMN crm.account.phone IS 'Main phone number of the account';
COMMENT ON COLUMN crm.account.website IS 'Official web site; its domain is used to find duplicate accounts';
COMMENT ON COLUMN crm.account.street IS 'Street address';
COMMENT ON COLUMN crm.account.city IS 'City';
COMMENT ON COLUMN crm.account.region IS 'State, province or region';
COMMENT ON COLUMN crm.account.postal_code IS 'Postal code';
COMMENT ON COLUMN crm.account.country IS 'Country';
COMMENT ON COLUMN crm.account.description IS 'Free-text notes about the account';
COMMENT ON COLUMN crm.account.owner IS 'CRM user (database role) who owns the account; defaults to the creating role';
COMMENT ON COLUMN crm.account.created_at IS 'When the account was created; set by the database, cannot be supplied or changed';
COMMENT ON COLUMN crm.account.updated_at IS 'When the account was last changed; set by the database on every update';

CREATE TABLE crm.contact (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL
                 CONSTRAINT contact_name_not_blank CHECK (pg_catalog.btrim(name) OPERATOR(pg_catalog.<>) ''),
    title        text,
    email        crm.email_address,
    phone        crm.phone_number,
    account_id   bigint CONSTRAINT contact_account_id_fkey REFERENCES crm.account (id) ON DELETE SET NULL,
    description  text,
    owner        regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE crm.contact IS 'People at customer accounts';
COMMENT ON COLUMN crm.contact.id IS 'Contact id, assigned by the database';
COMMENT ON COLUMN crm.contact.name IS 'Full name of the person';
COMMENT ON COLUMN crm.contact.title IS 'Job title or position';
COMMENT ON COLUMN crm.contact.email IS 'E-mail address; matched case-insensitively to find duplicate contacts';
COMMENT ON COLUMN crm.contact.phone IS 'Phone number';
COMMENT ON COLUMN crm.contact.account_id IS 'Primary account of the contact (cleared if that account is deleted); further accounts are in crm.account_contact';
COMMENT ON COLUMN crm.contact.description IS 'Free-text notes about the contact';
COMMENT ON COLUMN crm.contact.owner IS 'CRM user (database role) who owns the contact; defaults to the creating role';
COMMENT ON COLUMN crm.contact.created_at IS 'When the contact was created; set by the database';
COMMENT ON COLUMN crm.contact.updated_at IS 'When the contact was last changed; set by the database';

CREATE TABLE crm.account_contact (
    account_id   bigint NOT NULL CONSTRAINT account_contact_account_id_fkey REFERENCES crm.account (id) ON DELETE CASCADE,
    contact_id   bigint NOT NULL CONSTRAINT account_contact_contact_id_fkey REFERENCES crm.contact (id) ON DELETE CASCADE,
    role         text,
    owner        regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (account_id, contact_id)
);
COMMENT ON TABLE crm.account_contact IS 'Further accounts a contact works with (many-to-many), with the contact''s role there; the primary account is crm.contact.account_id';
COMMENT ON COLUMN crm.account_contact.account_id IS 'The account';
COMMENT ON COLUMN crm.account_contact.contact_id IS 'The contact';
COMMENT ON COLUMN crm.account_contact.role IS 'The contact''s role at this account, e.g. Decision Maker, Billing, Consultant';
COMMENT ON COLUMN crm.account_contact.owner IS 'CRM user (database role) who owns the link';
COMMENT ON COLUMN crm.account_contact.created_at IS 'When the link was made; set by the database';
COMMENT ON COLUMN crm.account_contact.updated_at IS 'When the link was last changed; set by the database';
CREATE INDEX account_contact_contact_id_idx ON crm.account_contact (contact_id);

CREATE TABLE crm.lead (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL
                    CONSTRAINT lead_name_not_blank CHECK (pg_catalog.btrim(name) OPERATOR(pg_catalog.<>) ''),
    company         text,
    title           text,
    email           crm.email_address,
    phone           crm.phone_number,
    website         crm.web_url,
    industry        text,
    city            text,
    country         text,
    source          text NOT NULL DEFAULT 'other'
                    CONSTRAINT lead_source_fkey REFERENCES crm.lead_source (code) ON UPDATE CASCADE,
    status          crm.lead_status NOT NULL DEFAULT 'New Lead',
    remarks         text,
    account_id      bigint CONSTRAINT lead_account_id_fkey REFERENCES crm.account (id),
    contact_id      bigint CONSTRAINT lead_contact_id_fkey REFERENCES crm.contact (id),
    opportunity_id  bigint,
    converted_at    timestamptz,
    converted_by    regrole,
    owner           regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- A lead is converted exactly when it carries the whole conversion record.
    CONSTRAINT lead_conversion_complete CHECK (
        (status OPERATOR(pg_catalog.=) 'Converted'::crm.lead_status
            AND account_id IS NOT NULL AND contact_id IS NOT NULL
            AND converted_at IS NOT NULL AND converted_by IS NOT NULL)
        OR
        (status OPERATOR(pg_catalog.<>) 'Converted'::crm.lead_status
            AND account_id IS NULL AND contact_id IS NULL AND opportunity_id IS NULL
            AND converted_at IS NULL AND converted_by IS NULL))
);
COMMENT ON TABLE crm.lead IS 'Prospective customers (leads) from every channel, with status and follow-up; converted into account, contact and opportunity by crm.convert_lead()';
COMMENT ON COLUMN crm.lead.id IS 'Lead id, assigned by the database';
COMMENT ON COLUMN crm.lead.name IS 'Name of the prospective customer (person)';
COMMENT ON COLUMN crm.lead.company IS 'Company of the prospect; becomes the account name on conversion';
COMMENT ON COLUMN crm.lead.title IS 'Job title of the prospect; copied to the contact on conversion';
COMMENT ON COLUMN crm.lead.email IS 'E-mail address; copied to the contact and used to find an existing contact on conversion';
COMMENT ON COLUMN crm.lead.phone IS 'Phone number; copied to the contact (and to a new account) on conversion';
COMMENT ON COLUMN crm.lead.website IS 'Company web site; its domain is used to find an existing account on conversion';
COMMENT ON COLUMN crm.lead.industry IS 'Industry of the company; copied to the account on conversion';
COMMENT ON COLUMN crm.lead.city IS 'City; copied to the account on conversion';
COMMENT ON COLUMN crm.lead.country IS 'Country; copied to the account on conversion';
COMMENT ON COLUMN crm.lead.source IS 'Channel the lead came from (crm.lead_source.code)';
COMMENT ON COLUMN crm.lead.status IS 'Where the lead stands; every change is kept in crm.lead_status_history; Converted is set only by crm.convert_lead()';
COMMENT ON COLUMN crm.lead.remarks IS 'Free-text remarks on the lead';
COMMENT ON COLUMN crm.lead.account_id IS 'Account the lead was converted into (set only by crm.convert_lead(), then frozen)';
COMMENT ON COLUMN crm.lead.contact_id IS 'Contact the lead was converted into (set only by crm.convert_lead(), then frozen)';
COMMENT ON COLUMN crm.lead.opportunity_id IS 'Opportunity created by the conversion, if any (set only by crm.convert_lead(), then frozen)';
COMMENT ON COLUMN crm.lead.converted_at IS 'When the lead was converted';
COMMENT ON COLUMN crm.lead.converted_by IS 'Role that converted the lead (the caller of crm.convert_lead())';
COMMENT ON COLUMN crm.lead.owner IS 'CRM user (database role) who owns the lead; defaults to the creating role';
COMMENT ON COLUMN crm.lead.created_at IS 'When the lead was captured; set by the database';
COMMENT ON COLUMN crm.lead.updated_at IS 'When the lead was last changed; set by the database';
CREATE INDEX lead_status_idx ON crm.lead (status);
CREATE INDEX lead_owner_idx ON crm.lead (owner);
CREATE INDEX lead_account_id_idx ON crm.lead (account_id) WHERE account_id IS NOT NULL;
CREATE INDEX lead_contact_id_idx ON crm.lead (contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX lead_opportunity_id_idx ON crm.lead (opportunity_id) WHERE opportunity_id IS NOT NULL;

CREATE TABLE crm.opportunity (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL
                 CONSTRAINT opportunity_name_not_blank CHECK (pg_catalog.btrim(name) OPERATOR(pg_catalog.<>) ''),
    account_id   bigint NOT NULL CONSTRAINT opportunity_account_id_fkey REFERENCES crm.account (id),
    contact_id   bigint CONSTRAINT opportunity_contact_id_fkey REFERENCES crm.contact (id) ON DELETE SET NULL,
    lead_id      bigint CONSTRAINT opportunity_lead_id_fkey REFERENCES crm.lead (id) ON DELETE SET NULL,
    stage        text NOT NULL DEFAULT 'Qualification'
                 CONSTRAINT opportunity_stage_fkey REFERENCES crm.opportunity_stage (name) ON UPDATE CASCADE,
    amount       numeric(14,2) NOT NULL DEFAULT 0
                 CONSTRAINT opportunity_amount_not_negative CHECK (amount OPERATOR(pg_catalog.>=) 0),
    probability  numeric(5,2)
                 CONSTRAINT opportunity_probability_range CHECK (probability BETWEEN 0 AND 100),
    close_date   date,
    loss_reason  text,
    description  text,
    owner        regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE crm.opportunity IS 'Sales opportunities (deals) with an account, stage, amount and expected close date';
COMMENT ON COLUMN crm.opportunity.id IS 'Opportunity id, assigned by the database';
COMMENT ON COLUMN crm.opportunity.name IS 'Name of the deal';
COMMENT ON COLUMN crm.opportunity.account_id IS 'Customer account of the deal (an account with opportunities cannot be deleted)';
COMMENT ON COLUMN crm.opportunity.contact_id IS 'Primary contact for the deal';
COMMENT ON COLUMN crm.opportunity.lead_id IS 'Lead this opportunity was converted from; set only by crm.convert_lead()';
COMMENT ON COLUMN crm.opportunity.stage IS 'Current sales stage (crm.opportunity_stage.name)';
COMMENT ON COLUMN crm.opportunity.amount IS 'Expected deal value, >= 0';
COMMENT ON COLUMN crm.opportunity.probability IS 'Win probability in percent, 0-100';
COMMENT ON COLUMN crm.opportunity.close_date IS 'Expected (or actual) close date';
COMMENT ON COLUMN crm.opportunity.loss_reason IS 'Why the deal was lost';
COMMENT ON COLUMN crm.opportunity.description IS 'Free-text notes about the deal';
COMMENT ON COLUMN crm.opportunity.owner IS 'CRM user (database role) who owns the opportunity; defaults to the creating role';
COMMENT ON COLUMN crm.opportunity.created_at IS 'When the opportunity was created; set by the database';
COMMENT ON COLUMN crm.opportunity.updated_at IS 'When the opportunity was last changed; set by the database';
CREATE INDEX opportunity_account_id_idx ON crm.opportunity (account_id);
CREATE INDEX opportunity_contact_id_idx ON crm.opportunity (contact_id);
CREATE INDEX opportunity_lead_id_idx ON crm.opportunity (lead_id) WHERE lead_id IS NOT NULL;
CREATE INDEX opportunity_stage_idx ON crm.opportunity (stage);
CREATE INDEX opportunity_owner_idx ON crm.opportunity (owner);

ALTER TABLE crm.lead ADD CONSTRAINT lead_opportunity_id_fkey
    FOREIGN KEY (opportunity_id) REFERENCES crm.opportunity (id);

--------------------------------------------------------------------------
-- Normalisation used for duplicate detection
--------------------------------------------------------------------------
CREATE FUNCTION crm.company_match_key(company text) RETURNS text
    AS 'MODULE_PATHNAME', 'crm_company_match_key'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.company_match_key(text) IS 'Key under which two company names count as the same account: lower case, dots and apostrophes dropped, other punctuation and white space removed, trailing legal-form words (Inc, LLC, Ltd, GmbH, ...) ignored';

CREATE FUNCTION crm.web_domain(url text) RETURNS text
    AS 'MODULE_PATHNAME', 'crm_web_domain'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.web_domain(text) IS 'Host name of a web address in lower case without scheme, port, path and leading www.; NULL when there is none';

CREATE INDEX account_company_match_key_idx ON crm.account (crm.company_match_key(name));
CREATE INDEX account_web_domain_idx ON crm.account (crm.web_domain(website)) WHERE website IS NOT NULL;
CREATE INDEX contact_email_lower_idx ON crm.contact (pg_catalog.lower(email)) WHERE email IS NOT NULL;

--------------------------------------------------------------------------
-- 4. History
--------------------------------------------------------------------------
CREATE TABLE crm.lead_status_history (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_id      bigint NOT NULL CONSTRAINT lead_status_history_lead_id_fkey REFERENCES crm.lead (id) ON DELETE CASCADE,
    from_status  crm.lead_status,
    to_status    crm.lead_status NOT NULL,
    changed_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    changed_by   regrole NOT NULL
);
COMMENT ON TABLE crm.lead_status_history IS 'Every status a lead has had: one row when it is captured and one per status change; written only by the database';
COMMENT ON COLUMN crm.lead_status_history.id IS 'Entry id, in order of recording';
COMMENT ON COLUMN crm.lead_status_history.lead_id IS 'The lead';
COMMENT ON COLUMN crm.lead_status_history.from_status IS 'Status before the change; NULL for the entry made when the lead was captured';
COMMENT ON COLUMN crm.lead_status_history.to_status IS 'Status after the change';
COMMENT ON COLUMN crm.lead_status_history.changed_at IS 'When the change was made (transaction time)';
COMMENT ON COLUMN crm.lead_status_history.changed_by IS 'Role that made the change';
CREATE INDEX lead_status_history_lead_id_idx ON crm.lead_status_history (lead_id, id);

CREATE TABLE crm.change_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_name   regclass NOT NULL,
    row_id       bigint,
    operation    text NOT NULL
                 CONSTRAINT change_log_operation_valid
                 CHECK (operation OPERATOR(pg_catalog.=) ANY (ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'])),
    changes      jsonb NOT NULL DEFAULT '{}',
    changed_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    changed_by   regrole NOT NULL
);
COMMENT ON TABLE crm.change_log IS 'Update log: who changed which fields of which row, when; append-only, written only by the database';
COMMENT ON COLUMN crm.change_log.id IS 'Entry id, in order of recording';
COMMENT ON COLUMN crm.change_log.table_name IS 'Table of the changed row, e.g. crm.lead';
COMMENT ON COLUMN crm.change_log.row_id IS 'id of the changed row (NULL for TRUNCATE)';
COMMENT ON COLUMN crm.change_log.operation IS 'INSERT, UPDATE, DELETE or TRUNCATE';
COMMENT ON COLUMN crm.change_log.changes IS 'UPDATE: {"column": {"old": text, "new": text}} for each changed column; DELETE: {"column": text} of the removed row; INSERT and TRUNCATE: {}';
COMMENT ON COLUMN crm.change_log.changed_at IS 'When the change was made (transaction time)';
COMMENT ON COLUMN crm.change_log.changed_by IS 'Role that made the change';
CREATE INDEX change_log_row_idx ON crm.change_log (table_name, row_id, id);

CREATE VIEW crm.lead_update_log WITH (security_invoker = true) AS
    SELECT c.id, c.row_id AS lead_id, c.operation, c.changes, c.changed_at, c.changed_by
      FROM crm.change_log AS c
     WHERE c.table_name OPERATOR(pg_catalog.=) 'crm.lead'::regclass;
COMMENT ON VIEW crm.lead_update_log IS 'Creation and update log of leads: one row per insert, update or delete of a lead, with the changed fields';
COMMENT ON COLUMN crm.lead_update_log.id IS 'Entry id, in order of recording';
COMMENT ON COLUMN crm.lead_update_log.lead_id IS 'The lead (NULL for TRUNCATE)';
COMMENT ON COLUMN crm.lead_update_log.operation IS 'INSERT, UPDATE, DELETE or TRUNCATE';
COMMENT ON COLUMN crm.lead_update_log.changes IS 'Changed fields with old and new value (text)';
COMMENT ON COLUMN crm.lead_update_log.changed_at IS 'When';
COMMENT ON COLUMN crm.lead_update_log.changed_by IS 'Who';

--------------------------------------------------------------------------
-- 5. Triggers (C)
--------------------------------------------------------------------------

-- created_at / updated_at are the database's, not the client's.
CREATE FUNCTION crm.stamp_row() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_stamp_row'
    LANGUAGE C;
COMMENT ON FUNCTION crm.stamp_row() IS 'BEFORE INSERT OR UPDATE row trigger: sets created_at on insert (keeps it on update) and updated_at to the transaction time';

CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.account FOR EACH ROW EXECUTE FUNCTION crm.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.contact FOR EACH ROW EXECUTE FUNCTION crm.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.account_contact FOR EACH ROW EXECUTE FUNCTION crm.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.lead FOR EACH ROW EXECUTE FUNCTION crm.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.opportunity FOR EACH ROW EXECUTE FUNCTION crm.stamp_row();

-- Conversion is one-way and only convert_lead() performs it.
CREATE FUNCTION crm.lead_conversion_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_lead_conversion_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm.lead_conversion_guard() IS 'BEFORE INSERT OR UPDATE row trigger on crm.lead: only crm.convert_lead() may set status Converted and the conversion fields; a converted lead keeps them forever';

CREATE TRIGGER lead_conversion_guard BEFORE INSERT OR UPDATE ON crm.lead
    FOR EACH ROW EXECUTE FUNCTION crm.lead_conversion_guard();

CREATE FUNCTION crm.opportunity_lead_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_opportunity_lead_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm.opportunity_lead_guard() IS 'BEFORE INSERT OR UPDATE row trigger on crm.opportunity: lead_id (the source lead) is set only by crm.convert_lead(); it may be cleared, never pointed elsewhere';

CREATE TRIGGER opportunity_lead_guard BEFORE INSERT OR UPDATE OF lead_id ON crm.opportunity
    FOR EACH ROW EXECUTE FUNCTION crm.opportunity_lead_guard();

-- History.
CREATE FUNCTION crm.record_lead_status() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_record_lead_status'
    LANGUAGE C;
COMMENT ON FUNCTION crm.record_lead_status() IS 'AFTER INSERT OR UPDATE row trigger on crm.lead: appends the new status to crm.lead_status_history when it changed';

CREATE TRIGGER record_lead_status AFTER INSERT OR UPDATE OF status ON crm.lead
    FOR EACH ROW EXECUTE FUNCTION crm.record_lead_status();

CREATE FUNCTION crm.record_change() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_record_change'
    LANGUAGE C;
COMMENT ON FUNCTION crm.record_change() IS 'AFTER row trigger (INSERT, UPDATE, DELETE) and statement trigger (TRUNCATE): appends what changed to crm.change_log';

CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON crm.lead
    FOR EACH ROW EXECUTE FUNCTION crm.record_change();
CREATE TRIGGER record_change_truncate AFTER TRUNCATE ON crm.lead
    FOR EACH STATEMENT EXECUTE FUNCTION crm.record_change();

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
    dedupe              boolean DEFAULT true)
    RETURNS crm.conversion_result
    AS 'MODULE_PATHNAME', 'crm_convert_lead'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.convert_lead(bigint, bigint, bigint, boolean, text, regrole, boolean) IS
'Converts a lead into account + contact (+ opportunity) in one atomic step and marks it Converted. '
'Reuses an existing account (same company key or web domain) and contact (same e-mail) unless dedupe => false; '
'account_id / contact_id pick the records explicitly. Acts with the caller''s rights on every row. See README "Lead conversion".';

--------------------------------------------------------------------------
-- 7. Privileges and pg_dump
--------------------------------------------------------------------------
REVOKE ALL ON FUNCTION crm.convert_lead(bigint, bigint, bigint, boolean, text, regrole, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.convert_lead(bigint, bigint, bigint, boolean, text, regrole, boolean)
    TO crm_admin, crm_manager, crm_sales;

GRANT SELECT, INSERT, UPDATE, DELETE ON crm.account, crm.contact, crm.account_contact, crm.lead, crm.opportunity
    TO crm_admin, crm_manager, crm_sales;
GRANT SELECT ON crm.lead_source, crm.opportunity_stage TO crm_admin, crm_manager, crm_sales, crm_analyst;
GRANT INSERT, UPDATE, DELETE ON crm.lead_source, crm.opportunity_stage TO crm_admin;
-- History is written by the triggers as the extension owner; users only read it.
GRANT SELECT ON crm.lead_status_history, crm.change_log, crm.lead_update_log TO crm_admin, crm_manager, crm_sales;

-- User data is dumped by pg_dump (the extension's own seed rows of the lookup
-- tables are recreated by CREATE EXTENSION and are not).
-- (One call per statement: each call updates the pg_extension row.)
DO $dump$
DECLARE
    t pg_catalog.regclass;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'crm.account', 'crm.account_id_seq',
        'crm.contact', 'crm.contact_id_seq',
        'crm.account_contact',
        'crm.lead', 'crm.lead_id_seq',
        'crm.opportunity', 'crm.opportunity_id_seq',
        'crm.lead_status_history', 'crm.lead_status_history_id_seq',
        'crm.change_log', 'crm.change_log_id_seq']::pg_catalog.regclass[]
    LOOP
        PERFORM pg_catalog.pg_extension_config_dump(t, '');
    END LOOP;
END
$dump$;
