/*
 * crm--0.3.sql: the CRM sales schema of the newest version, built by the
 * Makefile from the files in sql/install/, one per module, in name order.
 * Released versions are kept in sql/versions/ with the update scripts
 * between them (crm--A--B.sql); a change here ships in an update script too.  Reads top to bottom
 * like a schema document: roles and domains, the core model (accounts,
 * contacts, leads, opportunities), history, lead conversion, then the Sales
 * Cloud modules (catalog, line items, quotes, orders, activities, campaigns),
 * and last the grants and pg_dump configuration.
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
    amount       numeric(16,2) NOT NULL DEFAULT 0
                 CONSTRAINT opportunity_amount_not_negative CHECK (amount OPERATOR(pg_catalog.>=) 0
                     AND amount OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
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
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.convert_lead(bigint, bigint, bigint, boolean, text, regrole, boolean) IS
'Converts a lead into account + contact (+ opportunity) in one atomic step and marks it Converted. '
'Reuses an existing account (same company key or web domain) and contact (same e-mail) unless dedupe => false; '
'account_id / contact_id pick the records explicitly. Acts with the caller''s rights on every row; only the duplicate search runs with the extension owner''s. See README "Lead conversion".';

--------------------------------------------------------------------------
-- Products and price books
--
-- A product has a list price and, when its stock is tracked, units on hand.
-- Prices live in price books: exactly one is the standard book, and a product
-- must have a standard price before any other book may price it.
--------------------------------------------------------------------------

CREATE TABLE crm.product (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code             text NOT NULL CONSTRAINT product_code_key UNIQUE
                     CONSTRAINT product_code_not_blank CHECK (pg_catalog.btrim(code) OPERATOR(pg_catalog.<>) ''),
    name             text NOT NULL
                     CONSTRAINT product_name_not_blank CHECK (pg_catalog.btrim(name) OPERATOR(pg_catalog.<>) ''),
    description      text,
    family           text,
    list_price       numeric(14,2) NOT NULL DEFAULT 0
                     CONSTRAINT product_list_price_not_negative CHECK (list_price OPERATOR(pg_catalog.>=) 0
                         AND list_price OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    track_inventory  boolean NOT NULL DEFAULT true,
    inventory        numeric(14,2) NOT NULL DEFAULT 0
                     CONSTRAINT product_inventory_not_negative CHECK (inventory OPERATOR(pg_catalog.>=) 0
                         AND inventory OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    active           boolean NOT NULL DEFAULT true,
    owner            regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at       timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE crm.product IS 'Products and services the company sells';
COMMENT ON COLUMN crm.product.id IS 'Product id, assigned by the database';
COMMENT ON COLUMN crm.product.code IS 'Product code (SKU), unique';
COMMENT ON COLUMN crm.product.name IS 'Product name';
COMMENT ON COLUMN crm.product.description IS 'Description shown on quotes';
COMMENT ON COLUMN crm.product.family IS 'Product family or category, for reporting';
COMMENT ON COLUMN crm.product.list_price IS 'Catalogue price, >= 0; the standard price book holds the selling price';
COMMENT ON COLUMN crm.product.track_inventory IS 'True when stock is counted: activating an order then reserves units; false for services';
COMMENT ON COLUMN crm.product.inventory IS 'Units on hand, >= 0; decreased when an order is activated, restored when it is cancelled';
COMMENT ON COLUMN crm.product.active IS 'Inactive products cannot be added to new line items';
COMMENT ON COLUMN crm.product.owner IS 'CRM user (database role) responsible for the product';
COMMENT ON COLUMN crm.product.created_at IS 'When the product was created; set by the database';
COMMENT ON COLUMN crm.product.updated_at IS 'When the product was last changed; set by the database';
CREATE INDEX product_family_idx ON crm.product (family);

CREATE TABLE crm.price_book (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL CONSTRAINT price_book_name_key UNIQUE
                 CONSTRAINT price_book_name_not_blank CHECK (pg_catalog.btrim(name) OPERATOR(pg_catalog.<>) ''),
    description  text,
    is_standard  boolean NOT NULL DEFAULT false,
    active       boolean NOT NULL DEFAULT true,
    valid_from   date,
    valid_to     date,
    currency     text NOT NULL DEFAULT 'USD'
                 CONSTRAINT price_book_currency_iso CHECK (currency OPERATOR(pg_catalog.~) '^[A-Z]{3}$'),
    owner        regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT price_book_validity CHECK (valid_to IS NULL OR valid_from IS NULL OR valid_to OPERATOR(pg_catalog.>=) valid_from),
    CONSTRAINT price_book_standard_is_active CHECK (NOT is_standard OR active)
);
COMMENT ON TABLE crm.price_book IS 'Price books: named price lists for markets or customer segments; exactly one is the standard book';
COMMENT ON COLUMN crm.price_book.id IS 'Price book id, assigned by the database';
COMMENT ON COLUMN crm.price_book.name IS 'Price book name, unique';
COMMENT ON COLUMN crm.price_book.description IS 'What the price book is for';
COMMENT ON COLUMN crm.price_book.is_standard IS 'True for the one standard book; every product needs a standard price before other books may price it';
COMMENT ON COLUMN crm.price_book.active IS 'Inactive books cannot be chosen for new opportunities or quotes (the standard book is always active)';
COMMENT ON COLUMN crm.price_book.valid_from IS 'First day the prices apply (NULL: no start)';
COMMENT ON COLUMN crm.price_book.valid_to IS 'Last day the prices apply (NULL: no end)';
COMMENT ON COLUMN crm.price_book.currency IS 'ISO 4217 currency code of the prices, e.g. USD, EUR';
COMMENT ON COLUMN crm.price_book.owner IS 'CRM user (database role) responsible for the price book';
COMMENT ON COLUMN crm.price_book.created_at IS 'When the price book was created; set by the database';
COMMENT ON COLUMN crm.price_book.updated_at IS 'When the price book was last changed; set by the database';
-- At most one standard book (the guard trigger below makes it at least one).
CREATE UNIQUE INDEX price_book_one_standard ON crm.price_book (is_standard) WHERE is_standard;

CREATE TABLE crm.price_book_entry (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    price_book_id  bigint NOT NULL CONSTRAINT price_book_entry_price_book_id_fkey
                   REFERENCES crm.price_book (id) ON DELETE CASCADE,
    product_id     bigint NOT NULL CONSTRAINT price_book_entry_product_id_fkey
                   REFERENCES crm.product (id) ON DELETE CASCADE,
    unit_price     numeric(14,2) NOT NULL
                   CONSTRAINT price_book_entry_unit_price_not_negative CHECK (unit_price OPERATOR(pg_catalog.>=) 0
                       AND unit_price OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    active         boolean NOT NULL DEFAULT true,
    owner          regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT price_book_entry_book_product_key UNIQUE (price_book_id, product_id)
);
COMMENT ON TABLE crm.price_book_entry IS 'The price of a product in a price book; one entry per book and product';
COMMENT ON COLUMN crm.price_book_entry.id IS 'Entry id, assigned by the database';
COMMENT ON COLUMN crm.price_book_entry.price_book_id IS 'The price book';
COMMENT ON COLUMN crm.price_book_entry.product_id IS 'The product';
COMMENT ON COLUMN crm.price_book_entry.unit_price IS 'Selling price of one unit in this book, >= 0; default unit price of line items';
COMMENT ON COLUMN crm.price_book_entry.active IS 'Inactive entries cannot be used for new line items';
COMMENT ON COLUMN crm.price_book_entry.owner IS 'CRM user (database role) responsible for the entry';
COMMENT ON COLUMN crm.price_book_entry.created_at IS 'When the entry was created; set by the database';
COMMENT ON COLUMN crm.price_book_entry.updated_at IS 'When the entry was last changed; set by the database';
CREATE INDEX price_book_entry_product_id_idx ON crm.price_book_entry (product_id);

-- The standard book exists from the start.
INSERT INTO crm.price_book (name, description, is_standard)
VALUES ('Standard Price Book', 'Standard selling prices; every product is priced here first', true);

CREATE FUNCTION crm.price_book_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_price_book_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm.price_book_guard() IS 'Deferred constraint trigger on crm.price_book: at commit there must be exactly one standard price book, and it must price every product another book prices';
CREATE CONSTRAINT TRIGGER price_book_guard AFTER UPDATE OR DELETE ON crm.price_book
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION crm.price_book_guard();

CREATE FUNCTION crm.price_book_entry_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_price_book_entry_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm.price_book_entry_guard() IS 'Trigger on crm.price_book_entry: a product needs an active standard price before another book may price it, and its standard price cannot be removed while other books price it';
CREATE TRIGGER price_book_entry_guard BEFORE INSERT OR UPDATE OR DELETE ON crm.price_book_entry
    FOR EACH ROW EXECUTE FUNCTION crm.price_book_entry_guard();

CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.product FOR EACH ROW EXECUTE FUNCTION crm.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.price_book FOR EACH ROW EXECUTE FUNCTION crm.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.price_book_entry FOR EACH ROW EXECUTE FUNCTION crm.stamp_row();
CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON crm.product
    FOR EACH ROW EXECUTE FUNCTION crm.record_change();
CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON crm.price_book_entry
    FOR EACH ROW EXECUTE FUNCTION crm.record_change();

-- Every opportunity is priced from one price book (set on its first line item).
ALTER TABLE crm.opportunity ADD COLUMN price_book_id bigint
    CONSTRAINT opportunity_price_book_id_fkey REFERENCES crm.price_book (id);
COMMENT ON COLUMN crm.opportunity.price_book_id IS 'Price book its line items are priced from; the standard book unless chosen; fixed once it has line items';
CREATE INDEX opportunity_price_book_id_idx ON crm.opportunity (price_book_id) WHERE price_book_id IS NOT NULL;
--------------------------------------------------------------------------
-- Opportunity line items
--
-- Products on an opportunity, priced from the opportunity's price book.  An
-- opportunity with line items has amount = sum of its line totals, kept by a
-- statement-level C trigger that locks the opportunity and recomputes the sum
-- with a fresh snapshot, so it stays exact under concurrent edits.
--------------------------------------------------------------------------

CREATE TABLE crm.opportunity_line_item (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    opportunity_id  bigint NOT NULL CONSTRAINT opportunity_line_item_opportunity_id_fkey
                    REFERENCES crm.opportunity (id) ON DELETE CASCADE,
    product_id      bigint NOT NULL CONSTRAINT opportunity_line_item_product_id_fkey
                    REFERENCES crm.product (id),
    description     text,
    quantity        numeric(12,2) NOT NULL DEFAULT 1
                    CONSTRAINT opportunity_line_item_quantity_positive CHECK (quantity OPERATOR(pg_catalog.>) 0
                        AND quantity OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    unit_price      numeric(14,2) NOT NULL
                    CONSTRAINT opportunity_line_item_unit_price_not_negative CHECK (unit_price OPERATOR(pg_catalog.>=) 0
                        AND unit_price OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    discount        numeric(5,2) NOT NULL DEFAULT 0
                    CONSTRAINT opportunity_line_item_discount_range CHECK (discount BETWEEN 0 AND 100),
    total           numeric(16,2) GENERATED ALWAYS AS
                    (pg_catalog.round(quantity OPERATOR(pg_catalog.*) unit_price
                       OPERATOR(pg_catalog.*) (100 OPERATOR(pg_catalog.-) discount) OPERATOR(pg_catalog./) 100, 2)) STORED,
    sort_order      integer NOT NULL DEFAULT 0,
    owner           regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE crm.opportunity_line_item IS 'Products on an opportunity; the opportunity amount is the sum of their totals';
COMMENT ON COLUMN crm.opportunity_line_item.id IS 'Line id, assigned by the database';
COMMENT ON COLUMN crm.opportunity_line_item.opportunity_id IS 'The opportunity (lines go with it when it is deleted)';
COMMENT ON COLUMN crm.opportunity_line_item.product_id IS 'The product; it needs an active entry in the opportunity''s price book';
COMMENT ON COLUMN crm.opportunity_line_item.description IS 'Line description';
COMMENT ON COLUMN crm.opportunity_line_item.quantity IS 'Quantity, > 0';
COMMENT ON COLUMN crm.opportunity_line_item.unit_price IS 'Sales price of one unit; defaults to the product''s price in the opportunity''s price book';
COMMENT ON COLUMN crm.opportunity_line_item.discount IS 'Line discount in percent, 0-100';
COMMENT ON COLUMN crm.opportunity_line_item.total IS 'quantity x unit_price x (1 - discount/100), rounded to cents; computed by the database';
COMMENT ON COLUMN crm.opportunity_line_item.sort_order IS 'Display order of the line';
COMMENT ON COLUMN crm.opportunity_line_item.owner IS 'CRM user (database role) who added the line';
COMMENT ON COLUMN crm.opportunity_line_item.created_at IS 'When the line was added; set by the database';
COMMENT ON COLUMN crm.opportunity_line_item.updated_at IS 'When the line was last changed; set by the database';
CREATE INDEX opportunity_line_item_opportunity_id_idx ON crm.opportunity_line_item (opportunity_id);
CREATE INDEX opportunity_line_item_product_id_idx ON crm.opportunity_line_item (product_id);

-- Pricing a line: the product must be in the parent's price book; the unit
-- price defaults to the book's price.  Shared with quote lines.
CREATE FUNCTION crm.price_line_item() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_price_line_item'
    LANGUAGE C;
COMMENT ON FUNCTION crm.price_line_item() IS 'BEFORE INSERT OR UPDATE row trigger on line items: checks the product has an active entry in the parent''s price book (the standard book when the parent has none yet, which it then adopts) and fills a missing unit_price from it';

-- Keeping the parent's total: statement-level, from the transition tables.
CREATE FUNCTION crm.sum_line_items() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_sum_line_items'
    LANGUAGE C;
COMMENT ON FUNCTION crm.sum_line_items() IS 'AFTER statement trigger on line items: locks the parents whose lines changed (in id order) and sets their amount (opportunities) or subtotal (quotes) to the sum of their line totals';

CREATE TRIGGER price_line_item BEFORE INSERT OR UPDATE OF product_id, unit_price, opportunity_id
    ON crm.opportunity_line_item
    FOR EACH ROW EXECUTE FUNCTION crm.price_line_item();
CREATE TRIGGER sum_line_items_insert AFTER INSERT ON crm.opportunity_line_item
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.sum_line_items();
CREATE TRIGGER sum_line_items_update AFTER UPDATE ON crm.opportunity_line_item
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.sum_line_items();
CREATE TRIGGER sum_line_items_delete AFTER DELETE ON crm.opportunity_line_item
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.sum_line_items();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.opportunity_line_item
    FOR EACH ROW EXECUTE FUNCTION crm.stamp_row();
--------------------------------------------------------------------------
-- Opportunity lifecycle
--
-- Stage rules (C trigger crm.opportunity_lifecycle): probability defaults
-- from the stage, a loss reason is required when the deal is lost, closed_at
-- is set when a closed stage is reached and cleared on reopening; the amount
-- of an opportunity with line items and its price book are the lines'.
-- Every change of stage, amount, probability or close date is recorded in
-- crm.opportunity_history.
--------------------------------------------------------------------------

ALTER TABLE crm.opportunity ADD COLUMN closed_at timestamptz;
COMMENT ON COLUMN crm.opportunity.closed_at IS 'When the opportunity reached a closed stage (won or lost); cleared when it is reopened; set by the database';

CREATE TABLE crm.opportunity_history (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    opportunity_id   bigint NOT NULL CONSTRAINT opportunity_history_opportunity_id_fkey
                     REFERENCES crm.opportunity (id) ON DELETE CASCADE,
    old_stage        text,
    new_stage        text NOT NULL,
    old_amount       numeric(16,2),
    new_amount       numeric(16,2) NOT NULL,
    old_probability  numeric(5,2),
    new_probability  numeric(5,2),
    old_close_date   date,
    new_close_date   date,
    changed_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    changed_by       regrole NOT NULL
);
COMMENT ON TABLE crm.opportunity_history IS 'Every change of an opportunity''s stage, amount, probability or close date (one row per change, old and new values; the first row is its creation); written only by the database';
COMMENT ON COLUMN crm.opportunity_history.id IS 'Entry id, in order of recording';
COMMENT ON COLUMN crm.opportunity_history.opportunity_id IS 'The opportunity';
COMMENT ON COLUMN crm.opportunity_history.old_stage IS 'Stage before the change (NULL on creation)';
COMMENT ON COLUMN crm.opportunity_history.new_stage IS 'Stage after the change';
COMMENT ON COLUMN crm.opportunity_history.old_amount IS 'Amount before the change (NULL on creation)';
COMMENT ON COLUMN crm.opportunity_history.new_amount IS 'Amount after the change';
COMMENT ON COLUMN crm.opportunity_history.old_probability IS 'Probability before the change';
COMMENT ON COLUMN crm.opportunity_history.new_probability IS 'Probability after the change';
COMMENT ON COLUMN crm.opportunity_history.old_close_date IS 'Close date before the change';
COMMENT ON COLUMN crm.opportunity_history.new_close_date IS 'Close date after the change';
COMMENT ON COLUMN crm.opportunity_history.changed_at IS 'When the change was made (transaction time)';
COMMENT ON COLUMN crm.opportunity_history.changed_by IS 'Role that made the change';
CREATE INDEX opportunity_history_opportunity_id_idx ON crm.opportunity_history (opportunity_id, id);

CREATE FUNCTION crm.opportunity_lifecycle() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_opportunity_lifecycle'
    LANGUAGE C;
COMMENT ON FUNCTION crm.opportunity_lifecycle() IS 'BEFORE INSERT OR UPDATE row trigger on crm.opportunity: probability from the stage unless given, loss_reason required for a lost stage, closed_at kept, amount and price book fixed by line items';
CREATE TRIGGER opportunity_lifecycle BEFORE INSERT OR UPDATE ON crm.opportunity
    FOR EACH ROW EXECUTE FUNCTION crm.opportunity_lifecycle();

CREATE FUNCTION crm.opportunity_stage_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_opportunity_stage_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm.opportunity_stage_guard() IS 'BEFORE UPDATE OF is_closed, is_won trigger on crm.opportunity_stage: per statement, takes SHARE ROW EXCLUSIVE on crm.opportunity (before any stage row is locked); per row, refuses a flag change for a stage that opportunities are in (ZC111)';
CREATE TRIGGER opportunity_stage_guard_lock BEFORE UPDATE OF is_closed, is_won ON crm.opportunity_stage
    FOR EACH STATEMENT EXECUTE FUNCTION crm.opportunity_stage_guard();
CREATE TRIGGER opportunity_stage_guard BEFORE UPDATE OF is_closed, is_won ON crm.opportunity_stage
    FOR EACH ROW EXECUTE FUNCTION crm.opportunity_stage_guard();

CREATE FUNCTION crm.record_opportunity_change() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_record_opportunity_change'
    LANGUAGE C;
COMMENT ON FUNCTION crm.record_opportunity_change() IS 'AFTER INSERT OR UPDATE row trigger on crm.opportunity: appends to crm.opportunity_history when stage, amount, probability or close date changed';
CREATE TRIGGER record_opportunity_change AFTER INSERT OR UPDATE OF stage, amount, probability, close_date
    ON crm.opportunity
    FOR EACH ROW EXECUTE FUNCTION crm.record_opportunity_change();

CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON crm.opportunity
    FOR EACH ROW EXECUTE FUNCTION crm.record_change();
CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON crm.account
    FOR EACH ROW EXECUTE FUNCTION crm.record_change();
CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON crm.contact
    FOR EACH ROW EXECUTE FUNCTION crm.record_change();
--------------------------------------------------------------------------
-- Quotes with approval
--
-- crm.create_quote() copies an opportunity's lines into a Draft quote.  Its
-- subtotal is the sum of its lines (statement trigger, as for opportunities);
-- discount amount, tax and total follow from it as generated columns.  The
-- status moves only along crm.quote_transition; Needs Review, In Review,
-- Approved and Rejected are reached only through submit_quote, approve_quote
-- and reject_quote, which record who, when and why in crm.quote_approval.
-- Only a Draft quote can be edited.
--------------------------------------------------------------------------

-- Company-wide settings: one row.
CREATE TABLE crm.settings (
    singleton                   boolean PRIMARY KEY DEFAULT true CONSTRAINT settings_one_row CHECK (singleton),
    quote_approval_threshold    numeric(5,2) NOT NULL DEFAULT 10
                                CONSTRAINT settings_quote_approval_threshold_range CHECK (quote_approval_threshold BETWEEN 0 AND 100),
    created_at                  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at                  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE crm.settings IS 'Company-wide CRM settings (exactly one row); changed by admins';
COMMENT ON COLUMN crm.settings.singleton IS 'Always true: the table has one row';
COMMENT ON COLUMN crm.settings.quote_approval_threshold IS 'A quote whose discount (on the quote or on any line) exceeds this percentage must be approved before it is presented';
COMMENT ON COLUMN crm.settings.created_at IS 'When the extension was installed';
COMMENT ON COLUMN crm.settings.updated_at IS 'When the settings were last changed';
INSERT INTO crm.settings DEFAULT VALUES;
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.settings FOR EACH ROW EXECUTE FUNCTION crm.stamp_row();

CREATE TYPE crm.quote_status AS ENUM (
    'Draft', 'Needs Review', 'In Review', 'Approved', 'Rejected', 'Presented', 'Accepted', 'Denied');
COMMENT ON TYPE crm.quote_status IS 'Quote status: Draft -> Needs Review -> In Review -> Approved or Rejected -> Presented -> Accepted or Denied (see crm.quote_transition)';

CREATE TABLE crm.quote_transition (
    from_status   crm.quote_status NOT NULL,
    to_status     crm.quote_status NOT NULL,
    via_function  text,
    PRIMARY KEY (from_status, to_status)
);
COMMENT ON TABLE crm.quote_transition IS 'The legal status changes of a quote; any other change is refused';
COMMENT ON COLUMN crm.quote_transition.from_status IS 'Status before';
COMMENT ON COLUMN crm.quote_transition.to_status IS 'Status after';
COMMENT ON COLUMN crm.quote_transition.via_function IS 'The function that makes this change (NULL: a plain UPDATE may make it)';
INSERT INTO crm.quote_transition VALUES
    ('Draft',        'Needs Review', 'crm.submit_quote()'),
    ('Needs Review', 'In Review',    'crm.approve_quote() or crm.reject_quote()'),
    ('In Review',    'Approved',     'crm.approve_quote()'),
    ('In Review',    'Rejected',     'crm.reject_quote()'),
    ('Needs Review', 'Draft',        NULL),   -- withdrawn by the rep
    ('Rejected',     'Draft',        NULL),   -- reworked
    ('Draft',        'Presented',    NULL),   -- only within the approval threshold
    ('Approved',     'Presented',    NULL),
    ('Presented',    'Accepted',     NULL),
    ('Presented',    'Denied',       NULL),
    ('Denied',       'Draft',        NULL);   -- revised

CREATE TABLE crm.quote (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    opportunity_id   bigint NOT NULL CONSTRAINT quote_opportunity_id_fkey REFERENCES crm.opportunity (id),
    name             text NOT NULL
                     CONSTRAINT quote_name_not_blank CHECK (pg_catalog.btrim(name) OPERATOR(pg_catalog.<>) ''),
    account_id       bigint CONSTRAINT quote_account_id_fkey REFERENCES crm.account (id),
    contact_id       bigint CONSTRAINT quote_contact_id_fkey REFERENCES crm.contact (id) ON DELETE SET NULL,
    price_book_id    bigint CONSTRAINT quote_price_book_id_fkey REFERENCES crm.price_book (id),
    status           crm.quote_status NOT NULL DEFAULT 'Draft',
    valid_until      date,
    discount         numeric(5,2) NOT NULL DEFAULT 0
                     CONSTRAINT quote_discount_range CHECK (discount BETWEEN 0 AND 100),
    tax_rate         numeric(6,3) NOT NULL DEFAULT 0
                     CONSTRAINT quote_tax_rate_range CHECK (tax_rate BETWEEN 0 AND 100),
    subtotal         numeric(16,2) NOT NULL DEFAULT 0
                     CONSTRAINT quote_subtotal_not_nan CHECK (subtotal OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    discount_amount  numeric(16,2) GENERATED ALWAYS AS
                     (pg_catalog.round(subtotal OPERATOR(pg_catalog.*) discount OPERATOR(pg_catalog./) 100, 2)) STORED,
    tax              numeric(16,2) GENERATED ALWAYS AS
                     (pg_catalog.round((subtotal OPERATOR(pg_catalog.-)
                        pg_catalog.round(subtotal OPERATOR(pg_catalog.*) discount OPERATOR(pg_catalog./) 100, 2))
                        OPERATOR(pg_catalog.*) tax_rate OPERATOR(pg_catalog./) 100, 2)) STORED,
    total            numeric(16,2) GENERATED ALWAYS AS
                     (subtotal OPERATOR(pg_catalog.-)
                        pg_catalog.round(subtotal OPERATOR(pg_catalog.*) discount OPERATOR(pg_catalog./) 100, 2)
                      OPERATOR(pg_catalog.+)
                        pg_catalog.round((subtotal OPERATOR(pg_catalog.-)
                          pg_catalog.round(subtotal OPERATOR(pg_catalog.*) discount OPERATOR(pg_catalog./) 100, 2))
                          OPERATOR(pg_catalog.*) tax_rate OPERATOR(pg_catalog./) 100, 2)) STORED,
    is_synced        boolean NOT NULL DEFAULT false,
    description      text,
    owner            regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at       timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE crm.quote IS 'Quotes made from opportunities, with approval workflow; amounts computed by the database';
COMMENT ON COLUMN crm.quote.id IS 'Quote id, assigned by the database';
COMMENT ON COLUMN crm.quote.opportunity_id IS 'The opportunity quoted (an opportunity with quotes cannot be deleted)';
COMMENT ON COLUMN crm.quote.name IS 'Quote name or number shown to the customer';
COMMENT ON COLUMN crm.quote.account_id IS 'Customer account (from the opportunity)';
COMMENT ON COLUMN crm.quote.contact_id IS 'Customer contact the quote is addressed to';
COMMENT ON COLUMN crm.quote.price_book_id IS 'Price book the lines are priced from (the opportunity''s)';
COMMENT ON COLUMN crm.quote.status IS 'Draft, Needs Review, In Review, Approved, Rejected, Presented, Accepted or Denied; only legal changes (crm.quote_transition) are accepted';
COMMENT ON COLUMN crm.quote.valid_until IS 'Last day the offer stands';
COMMENT ON COLUMN crm.quote.discount IS 'Discount in percent on the subtotal, 0-100; above the approval threshold the quote needs approval';
COMMENT ON COLUMN crm.quote.tax_rate IS 'Tax rate in percent, 0-100, applied after the discount';
COMMENT ON COLUMN crm.quote.subtotal IS 'Sum of the line totals; kept by the database';
COMMENT ON COLUMN crm.quote.discount_amount IS 'subtotal x discount/100, rounded to cents; computed';
COMMENT ON COLUMN crm.quote.tax IS '(subtotal - discount_amount) x tax_rate/100, rounded to cents; computed';
COMMENT ON COLUMN crm.quote.total IS 'subtotal - discount_amount + tax; computed';
COMMENT ON COLUMN crm.quote.is_synced IS 'True for the one quote per opportunity that is synced to it (see crm.sync_quote)';
COMMENT ON COLUMN crm.quote.description IS 'Terms and notes';
COMMENT ON COLUMN crm.quote.owner IS 'CRM user (database role) who owns the quote';
COMMENT ON COLUMN crm.quote.created_at IS 'When the quote was created; set by the database';
COMMENT ON COLUMN crm.quote.updated_at IS 'When the quote was last changed; set by the database';
CREATE INDEX quote_opportunity_id_idx ON crm.quote (opportunity_id);
CREATE INDEX quote_status_idx ON crm.quote (status);
CREATE UNIQUE INDEX quote_one_synced_per_opportunity ON crm.quote (opportunity_id) WHERE is_synced;

CREATE TABLE crm.quote_line_item (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    quote_id     bigint NOT NULL CONSTRAINT quote_line_item_quote_id_fkey
                 REFERENCES crm.quote (id) ON DELETE CASCADE,
    product_id   bigint NOT NULL CONSTRAINT quote_line_item_product_id_fkey REFERENCES crm.product (id),
    description  text,
    quantity     numeric(12,2) NOT NULL DEFAULT 1
                 CONSTRAINT quote_line_item_quantity_positive CHECK (quantity OPERATOR(pg_catalog.>) 0
                     AND quantity OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    unit_price   numeric(14,2) NOT NULL
                 CONSTRAINT quote_line_item_unit_price_not_negative CHECK (unit_price OPERATOR(pg_catalog.>=) 0
                     AND unit_price OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    discount     numeric(5,2) NOT NULL DEFAULT 0
                 CONSTRAINT quote_line_item_discount_range CHECK (discount BETWEEN 0 AND 100),
    total        numeric(16,2) GENERATED ALWAYS AS
                 (pg_catalog.round(quantity OPERATOR(pg_catalog.*) unit_price
                    OPERATOR(pg_catalog.*) (100 OPERATOR(pg_catalog.-) discount) OPERATOR(pg_catalog./) 100, 2)) STORED,
    sort_order   integer NOT NULL DEFAULT 0,
    owner        regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE crm.quote_line_item IS 'Products on a quote (same columns as opportunity lines); editable only while the quote is Draft';
COMMENT ON COLUMN crm.quote_line_item.id IS 'Line id, assigned by the database';
COMMENT ON COLUMN crm.quote_line_item.quote_id IS 'The quote';
COMMENT ON COLUMN crm.quote_line_item.product_id IS 'The product; it needs an active entry in the quote''s price book';
COMMENT ON COLUMN crm.quote_line_item.description IS 'Line description';
COMMENT ON COLUMN crm.quote_line_item.quantity IS 'Quantity, > 0';
COMMENT ON COLUMN crm.quote_line_item.unit_price IS 'Sales price of one unit; defaults to the product''s price in the quote''s price book';
COMMENT ON COLUMN crm.quote_line_item.discount IS 'Line discount in percent, 0-100';
COMMENT ON COLUMN crm.quote_line_item.total IS 'quantity x unit_price x (1 - discount/100), rounded to cents; computed by the database';
COMMENT ON COLUMN crm.quote_line_item.sort_order IS 'Display order of the line';
COMMENT ON COLUMN crm.quote_line_item.owner IS 'CRM user (database role) who added the line';
COMMENT ON COLUMN crm.quote_line_item.created_at IS 'When the line was added; set by the database';
COMMENT ON COLUMN crm.quote_line_item.updated_at IS 'When the line was last changed; set by the database';
CREATE INDEX quote_line_item_quote_id_idx ON crm.quote_line_item (quote_id);
CREATE INDEX quote_line_item_product_id_idx ON crm.quote_line_item (product_id);

CREATE TABLE crm.quote_approval (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    quote_id   bigint NOT NULL CONSTRAINT quote_approval_quote_id_fkey REFERENCES crm.quote (id),
    action     text NOT NULL CONSTRAINT quote_approval_action_valid
               CHECK (action OPERATOR(pg_catalog.=) ANY (ARRAY['submitted', 'approved', 'rejected'])),
    comment    text,
    acted_by   regrole NOT NULL,
    acted_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE crm.quote_approval IS 'The approval record of quotes: who submitted, approved or rejected which quote, when, and why; written only by the quote functions; a quote with approval entries cannot be deleted';
COMMENT ON COLUMN crm.quote_approval.id IS 'Entry id, in order of recording';
COMMENT ON COLUMN crm.quote_approval.quote_id IS 'The quote';
COMMENT ON COLUMN crm.quote_approval.action IS 'submitted, approved or rejected';
COMMENT ON COLUMN crm.quote_approval.comment IS 'The comment given (required when rejecting)';
COMMENT ON COLUMN crm.quote_approval.acted_by IS 'Role that acted';
COMMENT ON COLUMN crm.quote_approval.acted_at IS 'When (transaction time)';
CREATE INDEX quote_approval_quote_id_idx ON crm.quote_approval (quote_id, id);

CREATE FUNCTION crm.quote_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_quote_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm.quote_guard() IS 'BEFORE INSERT OR UPDATE row trigger on crm.quote: new quotes are Draft and unsynced, status moves only along crm.quote_transition (approval states only through the quote functions), a quote over the approval threshold is presented only after approval, and only a Draft quote''s content can change';
CREATE TRIGGER quote_guard BEFORE INSERT OR UPDATE ON crm.quote
    FOR EACH ROW EXECUTE FUNCTION crm.quote_guard();

CREATE TRIGGER price_line_item BEFORE INSERT OR UPDATE OF product_id, unit_price, quote_id
    ON crm.quote_line_item
    FOR EACH ROW EXECUTE FUNCTION crm.price_line_item();
CREATE TRIGGER sum_line_items_insert AFTER INSERT ON crm.quote_line_item
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.sum_line_items();
CREATE TRIGGER sum_line_items_update AFTER UPDATE ON crm.quote_line_item
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.sum_line_items();
CREATE TRIGGER sum_line_items_delete AFTER DELETE ON crm.quote_line_item
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm.sum_line_items();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.quote FOR EACH ROW EXECUTE FUNCTION crm.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.quote_line_item FOR EACH ROW EXECUTE FUNCTION crm.stamp_row();
CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON crm.quote
    FOR EACH ROW EXECUTE FUNCTION crm.record_change();

CREATE FUNCTION crm.create_quote(
    opportunity_id  bigint,
    name            text    DEFAULT NULL,
    valid_until     date    DEFAULT NULL,
    discount        numeric DEFAULT 0,
    tax_rate        numeric DEFAULT 0)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'crm_create_quote'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.create_quote(bigint, text, date, numeric, numeric) IS
'Creates a Draft quote from an opportunity, copying its line items, account, primary contact and price book; name defaults to "<opportunity> - Quote <n>", valid_until to 30 days from today. Returns the quote id.';

CREATE FUNCTION crm.submit_quote(quote_id bigint, comment text DEFAULT NULL)
    RETURNS crm.quote_status
    AS 'MODULE_PATHNAME', 'crm_submit_quote'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.submit_quote(bigint, text) IS 'Submits a Draft quote for approval (Draft -> Needs Review) and records it in crm.quote_approval; returns the new status';

CREATE FUNCTION crm.approve_quote(quote_id bigint, comment text DEFAULT NULL)
    RETURNS crm.quote_status
    AS 'MODULE_PATHNAME', 'crm_approve_quote'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.approve_quote(bigint, text) IS 'Approves a quote under review (Needs Review -> In Review -> Approved); managers and admins only, not one''s own submission; records who, when and the comment in crm.quote_approval';

CREATE FUNCTION crm.reject_quote(quote_id bigint, comment text)
    RETURNS crm.quote_status
    AS 'MODULE_PATHNAME', 'crm_reject_quote'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.reject_quote(bigint, text) IS 'Rejects a quote under review (Needs Review -> In Review -> Rejected); managers and admins only; the comment (why) is required; recorded in crm.quote_approval';

CREATE FUNCTION crm.sync_quote(quote_id bigint)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'crm_sync_quote'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.sync_quote(bigint) IS 'Marks a quote as the one synced to its opportunity (unmarking any other) and replaces the opportunity''s line items with the quote''s, so the opportunity amount follows the quote; returns the opportunity id';
--------------------------------------------------------------------------
-- Sales orders
--
-- crm.create_order() turns an Accepted quote into a Draft order (one order
-- per quote).  crm.activate_order() reserves the stock of every tracked
-- product atomically -- all or nothing, products locked in id order, so
-- concurrent activations never oversell -- and crm.cancel_order() returns it.
-- The status moves only along crm.order_transition.
--------------------------------------------------------------------------

CREATE TYPE crm.order_status AS ENUM ('Draft', 'Activated', 'Shipped', 'Delivered', 'Completed', 'Cancelled');
COMMENT ON TYPE crm.order_status IS 'Sales order status: Draft -> Activated -> Shipped -> Delivered -> Completed, or Cancelled (see crm.order_transition)';

CREATE TABLE crm.order_transition (
    from_status   crm.order_status NOT NULL,
    to_status     crm.order_status NOT NULL,
    via_function  text,
    PRIMARY KEY (from_status, to_status)
);
COMMENT ON TABLE crm.order_transition IS 'The legal status changes of a sales order; any other change is refused';
COMMENT ON COLUMN crm.order_transition.from_status IS 'Status before';
COMMENT ON COLUMN crm.order_transition.to_status IS 'Status after';
COMMENT ON COLUMN crm.order_transition.via_function IS 'The function that makes this change (NULL: a plain UPDATE may make it)';
INSERT INTO crm.order_transition VALUES
    ('Draft',     'Activated', 'crm.activate_order()'),
    ('Draft',     'Cancelled', 'crm.cancel_order()'),
    ('Activated', 'Cancelled', 'crm.cancel_order()'),
    ('Activated', 'Shipped',   NULL),
    ('Shipped',   'Delivered', NULL),
    ('Delivered', 'Completed', NULL);

CREATE SEQUENCE crm.sales_order_number_seq;
COMMENT ON SEQUENCE crm.sales_order_number_seq IS 'Numbers of sales orders (SO-000001, ...) when none is given';

CREATE TABLE crm.sales_order (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_number      text NOT NULL CONSTRAINT sales_order_order_number_key UNIQUE
                      CONSTRAINT sales_order_order_number_not_blank CHECK (pg_catalog.btrim(order_number) OPERATOR(pg_catalog.<>) ''),
    quote_id          bigint NOT NULL CONSTRAINT sales_order_quote_id_key UNIQUE
                      CONSTRAINT sales_order_quote_id_fkey REFERENCES crm.quote (id),
    opportunity_id    bigint NOT NULL CONSTRAINT sales_order_opportunity_id_fkey REFERENCES crm.opportunity (id),
    account_id        bigint CONSTRAINT sales_order_account_id_fkey REFERENCES crm.account (id),
    contact_id        bigint CONSTRAINT sales_order_contact_id_fkey REFERENCES crm.contact (id) ON DELETE SET NULL,
    status            crm.order_status NOT NULL DEFAULT 'Draft',
    subtotal          numeric(16,2) NOT NULL DEFAULT 0
                      CONSTRAINT sales_order_subtotal_not_nan CHECK (subtotal OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    discount_amount   numeric(16,2) NOT NULL DEFAULT 0
                      CONSTRAINT sales_order_discount_amount_not_nan CHECK (discount_amount OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    tax               numeric(16,2) NOT NULL DEFAULT 0
                      CONSTRAINT sales_order_tax_not_nan CHECK (tax OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    total             numeric(16,2) NOT NULL DEFAULT 0
                      CONSTRAINT sales_order_total_not_nan CHECK (total OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    shipping_status   text NOT NULL DEFAULT 'Not Shipped'
                      CONSTRAINT sales_order_shipping_status_valid CHECK (shipping_status OPERATOR(pg_catalog.=) ANY
                        (ARRAY['Not Shipped', 'Preparing', 'In Transit', 'Delivered', 'Returned', 'Lost'])),
    carrier           text,
    tracking_number   text,
    shipping_address  text,
    activated_at      timestamptz,
    activated_by      regrole,
    shipped_at        timestamptz,
    delivered_at      timestamptz,
    completed_at      timestamptz,
    cancelled_at      timestamptz,
    cancelled_by      regrole,
    cancel_reason     text,
    owner             regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT sales_order_activation_record CHECK (
        (activated_at IS NULL) = (activated_by IS NULL)
        AND (status OPERATOR(pg_catalog.=) ANY (ARRAY['Draft', 'Cancelled']::crm.order_status[]) OR activated_at IS NOT NULL)),
    CONSTRAINT sales_order_cancellation_record CHECK (
        (status OPERATOR(pg_catalog.=) 'Cancelled'::crm.order_status) = (cancelled_at IS NOT NULL AND cancelled_by IS NOT NULL))
);
COMMENT ON TABLE crm.sales_order IS 'Sales orders made from accepted quotes, with fulfilment status, shipping and the activation record';
COMMENT ON COLUMN crm.sales_order.id IS 'Order id, assigned by the database';
COMMENT ON COLUMN crm.sales_order.order_number IS 'Order number shown to the customer (SO-<id> unless given)';
COMMENT ON COLUMN crm.sales_order.quote_id IS 'The accepted quote the order was made from (one order per quote)';
COMMENT ON COLUMN crm.sales_order.opportunity_id IS 'The opportunity of that quote';
COMMENT ON COLUMN crm.sales_order.account_id IS 'Customer account';
COMMENT ON COLUMN crm.sales_order.contact_id IS 'Customer contact';
COMMENT ON COLUMN crm.sales_order.status IS 'Draft, Activated, Shipped, Delivered, Completed or Cancelled; only legal changes (crm.order_transition) are accepted';
COMMENT ON COLUMN crm.sales_order.subtotal IS 'Sum of the item totals (copied from the quote)';
COMMENT ON COLUMN crm.sales_order.discount_amount IS 'Discount on the subtotal (copied from the quote)';
COMMENT ON COLUMN crm.sales_order.tax IS 'Tax (copied from the quote)';
COMMENT ON COLUMN crm.sales_order.total IS 'Amount to invoice: subtotal - discount_amount + tax';
COMMENT ON COLUMN crm.sales_order.shipping_status IS 'Logistics state: Not Shipped, Preparing, In Transit, Delivered, Returned or Lost';
COMMENT ON COLUMN crm.sales_order.carrier IS 'Shipping carrier';
COMMENT ON COLUMN crm.sales_order.tracking_number IS 'Carrier tracking number';
COMMENT ON COLUMN crm.sales_order.shipping_address IS 'Where the goods go';
COMMENT ON COLUMN crm.sales_order.activated_at IS 'When the order was activated (stock reserved); set by crm.activate_order()';
COMMENT ON COLUMN crm.sales_order.activated_by IS 'Role that activated the order: the approval record of the activation';
COMMENT ON COLUMN crm.sales_order.shipped_at IS 'When the order became Shipped; set by the database';
COMMENT ON COLUMN crm.sales_order.delivered_at IS 'When the order became Delivered; set by the database';
COMMENT ON COLUMN crm.sales_order.completed_at IS 'When the order became Completed; set by the database';
COMMENT ON COLUMN crm.sales_order.cancelled_at IS 'When the order was cancelled; set by crm.cancel_order()';
COMMENT ON COLUMN crm.sales_order.cancelled_by IS 'Role that cancelled the order';
COMMENT ON COLUMN crm.sales_order.cancel_reason IS 'Why it was cancelled';
COMMENT ON COLUMN crm.sales_order.owner IS 'CRM user (database role) who owns the order';
COMMENT ON COLUMN crm.sales_order.created_at IS 'When the order was created; set by the database';
COMMENT ON COLUMN crm.sales_order.updated_at IS 'When the order was last changed; set by the database';
CREATE INDEX sales_order_opportunity_id_idx ON crm.sales_order (opportunity_id);
CREATE INDEX sales_order_account_id_idx ON crm.sales_order (account_id);
CREATE INDEX sales_order_status_idx ON crm.sales_order (status);

CREATE TABLE crm.sales_order_item (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id     bigint NOT NULL CONSTRAINT sales_order_item_order_id_fkey
                 REFERENCES crm.sales_order (id) ON DELETE CASCADE,
    product_id   bigint NOT NULL CONSTRAINT sales_order_item_product_id_fkey REFERENCES crm.product (id),
    description  text,
    quantity     numeric(12,2) NOT NULL
                 CONSTRAINT sales_order_item_quantity_positive CHECK (quantity OPERATOR(pg_catalog.>) 0
                     AND quantity OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    unit_price   numeric(14,2) NOT NULL
                 CONSTRAINT sales_order_item_unit_price_not_negative CHECK (unit_price OPERATOR(pg_catalog.>=) 0
                     AND unit_price OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    discount     numeric(5,2) NOT NULL DEFAULT 0
                 CONSTRAINT sales_order_item_discount_range CHECK (discount BETWEEN 0 AND 100),
    total        numeric(16,2) GENERATED ALWAYS AS
                 (pg_catalog.round(quantity OPERATOR(pg_catalog.*) unit_price
                    OPERATOR(pg_catalog.*) (100 OPERATOR(pg_catalog.-) discount) OPERATOR(pg_catalog./) 100, 2)) STORED,
    sort_order   integer NOT NULL DEFAULT 0,
    reserved_quantity numeric(12,2) NOT NULL DEFAULT 0
                 CONSTRAINT sales_order_item_reserved_quantity_not_nan CHECK (reserved_quantity OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    owner        regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE crm.sales_order_item IS 'Products on a sales order, copied from the accepted quote by crm.create_order(); they do not change afterwards';
COMMENT ON COLUMN crm.sales_order_item.id IS 'Item id, assigned by the database';
COMMENT ON COLUMN crm.sales_order_item.order_id IS 'The order';
COMMENT ON COLUMN crm.sales_order_item.product_id IS 'The product';
COMMENT ON COLUMN crm.sales_order_item.description IS 'Item description';
COMMENT ON COLUMN crm.sales_order_item.quantity IS 'Quantity ordered, > 0; reserved from inventory on activation';
COMMENT ON COLUMN crm.sales_order_item.unit_price IS 'Sales price of one unit';
COMMENT ON COLUMN crm.sales_order_item.discount IS 'Item discount in percent, 0-100';
COMMENT ON COLUMN crm.sales_order_item.total IS 'quantity x unit_price x (1 - discount/100), rounded to cents; computed by the database';
COMMENT ON COLUMN crm.sales_order_item.sort_order IS 'Display order of the item';
COMMENT ON COLUMN crm.sales_order_item.reserved_quantity IS 'Units taken from inventory for this item by activation (0 for untracked products and inactive orders); exactly this is returned on cancellation';
COMMENT ON COLUMN crm.sales_order_item.owner IS 'CRM user (database role) who added the item';
COMMENT ON COLUMN crm.sales_order_item.created_at IS 'When the item was added; set by the database';
COMMENT ON COLUMN crm.sales_order_item.updated_at IS 'When the item was last changed; set by the database';
CREATE INDEX sales_order_item_order_id_idx ON crm.sales_order_item (order_id);
CREATE INDEX sales_order_item_product_id_idx ON crm.sales_order_item (product_id);

CREATE FUNCTION crm.sales_order_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_sales_order_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm.sales_order_guard() IS 'BEFORE row trigger on crm.sales_order: orders are made only by crm.create_order(), status moves only along crm.order_transition (activation and cancellation only through their functions), amounts and the activation and cancellation records are the database''s, shipped/delivered/completed times are stamped, and only Draft or Cancelled orders can be deleted';
CREATE TRIGGER sales_order_guard BEFORE INSERT OR UPDATE OR DELETE ON crm.sales_order
    FOR EACH ROW EXECUTE FUNCTION crm.sales_order_guard();

CREATE FUNCTION crm.sales_order_item_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_sales_order_item_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm.sales_order_item_guard() IS 'BEFORE row trigger on crm.sales_order_item: items are written only by crm.create_order() (reserved_quantity by activation and cancellation) and deleted only with their order';
CREATE TRIGGER sales_order_item_guard BEFORE INSERT OR UPDATE OR DELETE ON crm.sales_order_item
    FOR EACH ROW EXECUTE FUNCTION crm.sales_order_item_guard();

CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.sales_order FOR EACH ROW EXECUTE FUNCTION crm.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.sales_order_item FOR EACH ROW EXECUTE FUNCTION crm.stamp_row();
CREATE TRIGGER record_change AFTER INSERT OR UPDATE OR DELETE ON crm.sales_order
    FOR EACH ROW EXECUTE FUNCTION crm.record_change();

CREATE FUNCTION crm.create_order(quote_id bigint, order_number text DEFAULT NULL)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'crm_create_order'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.create_order(bigint, text) IS 'Creates a Draft sales order with its items from an Accepted quote (one order per quote); order_number defaults to SO-<id>; returns the order id';

CREATE FUNCTION crm.activate_order(order_id bigint)
    RETURNS crm.order_status
    AS 'MODULE_PATHNAME', 'crm_activate_order'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.activate_order(bigint) IS 'Activates a Draft order and reserves its stock: all tracked products are locked in id order and decreased, or, if any lacks stock, nothing changes and the error lists what is missing; records activated_at/by';

CREATE FUNCTION crm.cancel_order(order_id bigint, reason text DEFAULT NULL)
    RETURNS crm.order_status
    AS 'MODULE_PATHNAME', 'crm_cancel_order'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.cancel_order(bigint, text) IS 'Cancels a Draft or Activated order; an Activated order''s reserved stock is returned; records cancelled_at/by and the reason';
--------------------------------------------------------------------------
-- Activities with reminders
--
-- Tasks, meetings, calls and e-mails, each about exactly one lead, account,
-- contact or opportunity.  Activities on a lead are its follow-up record.
-- crm.claim_due_reminders() hands each due reminder to exactly one worker
-- (FOR UPDATE SKIP LOCKED) and announces it with NOTIFY on channel
-- crm_reminder when the claiming transaction commits.
--------------------------------------------------------------------------

CREATE TYPE crm.activity_type AS ENUM ('task', 'meeting', 'call', 'email');
COMMENT ON TYPE crm.activity_type IS 'Kind of activity: task, meeting, call or email';
CREATE TYPE crm.activity_status AS ENUM ('Planned', 'In Progress', 'Completed', 'Cancelled');
COMMENT ON TYPE crm.activity_status IS 'Activity status: Planned, In Progress, Completed or Cancelled (the last two are closed)';
CREATE TYPE crm.activity_priority AS ENUM ('Low', 'Normal', 'High', 'Urgent');
COMMENT ON TYPE crm.activity_priority IS 'Activity priority, lowest first';

CREATE TABLE crm.activity (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type              crm.activity_type NOT NULL,
    subject           text NOT NULL
                      CONSTRAINT activity_subject_not_blank CHECK (pg_catalog.btrim(subject) OPERATOR(pg_catalog.<>) ''),
    description       text,
    due_at            timestamptz,
    starts_at         timestamptz,
    ends_at           timestamptz,
    status            crm.activity_status NOT NULL DEFAULT 'Planned',
    priority          crm.activity_priority NOT NULL DEFAULT 'Normal',
    lead_id           bigint CONSTRAINT activity_lead_id_fkey REFERENCES crm.lead (id) ON DELETE CASCADE,
    account_id        bigint CONSTRAINT activity_account_id_fkey REFERENCES crm.account (id) ON DELETE CASCADE,
    contact_id        bigint CONSTRAINT activity_contact_id_fkey REFERENCES crm.contact (id) ON DELETE CASCADE,
    opportunity_id    bigint CONSTRAINT activity_opportunity_id_fkey REFERENCES crm.opportunity (id) ON DELETE CASCADE,
    remind_at         timestamptz,
    reminder_sent_at  timestamptz,
    completed_at      timestamptz,
    owner             regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT activity_about_exactly_one CHECK (pg_catalog.num_nonnulls(lead_id, account_id, contact_id, opportunity_id) OPERATOR(pg_catalog.=) 1),
    CONSTRAINT activity_ends_after_start CHECK (ends_at IS NULL OR starts_at IS NULL OR ends_at OPERATOR(pg_catalog.>=) starts_at),
    CONSTRAINT activity_timed CHECK (
        (type OPERATOR(pg_catalog.=) 'task'::crm.activity_type) OR starts_at IS NOT NULL),
    CONSTRAINT activity_completed_at CHECK (
        (status OPERATOR(pg_catalog.=) 'Completed'::crm.activity_status) = (completed_at IS NOT NULL))
);
COMMENT ON TABLE crm.activity IS 'Tasks, meetings, calls and e-mails about one lead, account, contact or opportunity; those on a lead are its follow-up record';
COMMENT ON COLUMN crm.activity.id IS 'Activity id, assigned by the database';
COMMENT ON COLUMN crm.activity.type IS 'task, meeting, call or email';
COMMENT ON COLUMN crm.activity.subject IS 'Short title';
COMMENT ON COLUMN crm.activity.description IS 'Details, notes, outcome';
COMMENT ON COLUMN crm.activity.due_at IS 'When a task is due (overdue when past and still open)';
COMMENT ON COLUMN crm.activity.starts_at IS 'When a meeting, call or e-mail takes place (required for them)';
COMMENT ON COLUMN crm.activity.ends_at IS 'When it ends, not before starts_at';
COMMENT ON COLUMN crm.activity.status IS 'Planned, In Progress, Completed or Cancelled';
COMMENT ON COLUMN crm.activity.priority IS 'Low, Normal, High or Urgent';
COMMENT ON COLUMN crm.activity.lead_id IS 'The lead it is about (exactly one of lead, account, contact, opportunity)';
COMMENT ON COLUMN crm.activity.account_id IS 'The account it is about';
COMMENT ON COLUMN crm.activity.contact_id IS 'The contact it is about';
COMMENT ON COLUMN crm.activity.opportunity_id IS 'The opportunity it is about';
COMMENT ON COLUMN crm.activity.remind_at IS 'When to remind the owner; claimed by crm.claim_due_reminders()';
COMMENT ON COLUMN crm.activity.reminder_sent_at IS 'When the reminder was claimed for delivery (NULL: not yet); cleared when remind_at changes';
COMMENT ON COLUMN crm.activity.completed_at IS 'When the activity was completed; set by the database';
COMMENT ON COLUMN crm.activity.owner IS 'CRM user (database role) the activity is assigned to';
COMMENT ON COLUMN crm.activity.created_at IS 'When the activity was created; set by the database';
COMMENT ON COLUMN crm.activity.updated_at IS 'When the activity was last changed; set by the database';
CREATE INDEX activity_lead_id_idx ON crm.activity (lead_id) WHERE lead_id IS NOT NULL;
CREATE INDEX activity_account_id_idx ON crm.activity (account_id, completed_at) WHERE account_id IS NOT NULL;
CREATE INDEX activity_contact_id_idx ON crm.activity (contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX activity_opportunity_id_idx ON crm.activity (opportunity_id) WHERE opportunity_id IS NOT NULL;
CREATE INDEX activity_owner_due_idx ON crm.activity (owner, due_at);
CREATE INDEX activity_due_reminder_idx ON crm.activity (remind_at) WHERE reminder_sent_at IS NULL AND remind_at IS NOT NULL;

CREATE TYPE crm.participant_response AS ENUM ('Needs Action', 'Accepted', 'Tentative', 'Declined');
COMMENT ON TYPE crm.participant_response IS 'A participant''s answer to an invitation';

CREATE TABLE crm.activity_participant (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    activity_id      bigint NOT NULL CONSTRAINT activity_participant_activity_id_fkey
                     REFERENCES crm.activity (id) ON DELETE CASCADE,
    contact_id       bigint CONSTRAINT activity_participant_contact_id_fkey
                     REFERENCES crm.contact (id) ON DELETE CASCADE,
    user_role        regrole,
    response_status  crm.participant_response NOT NULL DEFAULT 'Needs Action',
    responded_at     timestamptz,
    owner            regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT activity_participant_contact_or_user CHECK (pg_catalog.num_nonnulls(contact_id, user_role) OPERATOR(pg_catalog.=) 1),
    CONSTRAINT activity_participant_contact_key UNIQUE (activity_id, contact_id),
    CONSTRAINT activity_participant_user_key UNIQUE (activity_id, user_role)
);
COMMENT ON TABLE crm.activity_participant IS 'Who takes part in an activity: contacts and CRM users, with their response';
COMMENT ON COLUMN crm.activity_participant.id IS 'Participant id, assigned by the database';
COMMENT ON COLUMN crm.activity_participant.activity_id IS 'The activity';
COMMENT ON COLUMN crm.activity_participant.contact_id IS 'A contact taking part (or user_role)';
COMMENT ON COLUMN crm.activity_participant.user_role IS 'A CRM user (database role) taking part (or contact_id)';
COMMENT ON COLUMN crm.activity_participant.response_status IS 'Needs Action, Accepted, Tentative or Declined';
COMMENT ON COLUMN crm.activity_participant.responded_at IS 'When the response was last changed; set by the database';
COMMENT ON COLUMN crm.activity_participant.owner IS 'CRM user (database role) who added the participant';
COMMENT ON COLUMN crm.activity_participant.created_at IS 'When the participant was added; set by the database';
COMMENT ON COLUMN crm.activity_participant.updated_at IS 'When the participant was last changed; set by the database';
CREATE INDEX activity_participant_contact_id_idx ON crm.activity_participant (contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX activity_participant_user_role_idx ON crm.activity_participant (user_role) WHERE user_role IS NOT NULL;

CREATE FUNCTION crm.activity_lifecycle() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_activity_lifecycle'
    LANGUAGE C;
COMMENT ON FUNCTION crm.activity_lifecycle() IS 'BEFORE INSERT OR UPDATE row trigger on crm.activity and crm.activity_participant: keeps completed_at with status Completed, re-arms the reminder when remind_at changes, stamps participants'' responded_at';
CREATE TRIGGER activity_lifecycle BEFORE INSERT OR UPDATE ON crm.activity
    FOR EACH ROW EXECUTE FUNCTION crm.activity_lifecycle();
CREATE TRIGGER activity_lifecycle BEFORE INSERT OR UPDATE ON crm.activity_participant
    FOR EACH ROW EXECUTE FUNCTION crm.activity_lifecycle();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.activity FOR EACH ROW EXECUTE FUNCTION crm.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.activity_participant FOR EACH ROW EXECUTE FUNCTION crm.stamp_row();

CREATE TYPE crm.reminder AS (
    activity_id  bigint,
    owner        regrole,
    type         crm.activity_type,
    subject      text,
    remind_at    timestamptz,
    due_at       timestamptz,
    starts_at    timestamptz,
    lead_id      bigint,
    account_id   bigint,
    contact_id   bigint,
    opportunity_id bigint
);
COMMENT ON TYPE crm.reminder IS 'A reminder handed out by crm.claim_due_reminders(); the NOTIFY payload on channel crm_reminder is the same as JSON';

CREATE FUNCTION crm.claim_due_reminders(max_count integer DEFAULT 100, due_before timestamptz DEFAULT NULL)
    RETURNS SETOF crm.reminder
    AS 'MODULE_PATHNAME', 'crm_claim_due_reminders'
    LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 100
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.claim_due_reminders(integer, timestamptz) IS
'Claims up to max_count due reminders (remind_at <= due_before, default now(), not yet sent, activity open) that the caller may update, oldest first, skipping those another worker holds; marks them sent, returns them, and sends one NOTIFY crm_reminder per reminder (JSON payload) when the transaction commits. Each reminder is delivered exactly once; a rolled-back claim releases it.';

-- Overdue tasks, and how many per owner.
CREATE VIEW crm.overdue_task WITH (security_invoker = true) AS
    SELECT a.id AS activity_id, a.owner, a.subject, a.priority, a.due_at,
           pg_catalog.now() OPERATOR(pg_catalog.-) a.due_at AS overdue_by,
           a.lead_id, a.account_id, a.contact_id, a.opportunity_id
      FROM crm.activity AS a
     WHERE a.type OPERATOR(pg_catalog.=) 'task'::crm.activity_type
       AND a.status OPERATOR(pg_catalog.<>) ALL (ARRAY['Completed', 'Cancelled']::crm.activity_status[])
       AND a.due_at OPERATOR(pg_catalog.<) pg_catalog.now();
COMMENT ON VIEW crm.overdue_task IS 'Open tasks whose due time has passed';
COMMENT ON COLUMN crm.overdue_task.activity_id IS 'The task';
COMMENT ON COLUMN crm.overdue_task.owner IS 'Who the task is assigned to';
COMMENT ON COLUMN crm.overdue_task.subject IS 'Task subject';
COMMENT ON COLUMN crm.overdue_task.priority IS 'Task priority';
COMMENT ON COLUMN crm.overdue_task.due_at IS 'When it was due';
COMMENT ON COLUMN crm.overdue_task.overdue_by IS 'How long ago it was due';
COMMENT ON COLUMN crm.overdue_task.lead_id IS 'Lead it is about, if any';
COMMENT ON COLUMN crm.overdue_task.account_id IS 'Account it is about, if any';
COMMENT ON COLUMN crm.overdue_task.contact_id IS 'Contact it is about, if any';
COMMENT ON COLUMN crm.overdue_task.opportunity_id IS 'Opportunity it is about, if any';

CREATE VIEW crm.overdue_tasks_by_owner WITH (security_invoker = true) AS
    SELECT o.owner, pg_catalog.count(*) AS overdue_tasks, pg_catalog.min(o.due_at) AS oldest_due_at,
           pg_catalog.count(*) FILTER (WHERE o.priority OPERATOR(pg_catalog.>=) 'High'::crm.activity_priority) AS high_priority
      FROM crm.overdue_task AS o
     GROUP BY o.owner;
COMMENT ON VIEW crm.overdue_tasks_by_owner IS 'Number of overdue tasks per owner';
COMMENT ON COLUMN crm.overdue_tasks_by_owner.owner IS 'Who the tasks are assigned to';
COMMENT ON COLUMN crm.overdue_tasks_by_owner.overdue_tasks IS 'How many of their tasks are overdue';
COMMENT ON COLUMN crm.overdue_tasks_by_owner.oldest_due_at IS 'Due time of the oldest overdue task';
COMMENT ON COLUMN crm.overdue_tasks_by_owner.high_priority IS 'How many of them are High or Urgent';

-- A lead's follow-up: its last completed and next open activity.
CREATE VIEW crm.lead_follow_up WITH (security_invoker = true) AS
    SELECT l.id AS lead_id, l.name, l.status, l.owner,
           (SELECT pg_catalog.max(a.completed_at) FROM crm.activity AS a
             WHERE a.lead_id OPERATOR(pg_catalog.=) l.id
               AND a.status OPERATOR(pg_catalog.=) 'Completed'::crm.activity_status) AS last_follow_up_at,
           (SELECT pg_catalog.min(COALESCE(a.starts_at, a.due_at)) FROM crm.activity AS a
             WHERE a.lead_id OPERATOR(pg_catalog.=) l.id
               AND a.status OPERATOR(pg_catalog.<>) ALL (ARRAY['Completed', 'Cancelled']::crm.activity_status[])) AS next_follow_up_at,
           (SELECT pg_catalog.count(*) FROM crm.activity AS a
             WHERE a.lead_id OPERATOR(pg_catalog.=) l.id) AS activities
      FROM crm.lead AS l;
COMMENT ON VIEW crm.lead_follow_up IS 'Follow-up of each lead: when it was last worked (last completed activity) and what is next (earliest open activity)';
COMMENT ON COLUMN crm.lead_follow_up.lead_id IS 'The lead';
COMMENT ON COLUMN crm.lead_follow_up.name IS 'Lead name';
COMMENT ON COLUMN crm.lead_follow_up.status IS 'Lead status';
COMMENT ON COLUMN crm.lead_follow_up.owner IS 'Lead owner';
COMMENT ON COLUMN crm.lead_follow_up.last_follow_up_at IS 'When the last follow-up activity was completed (NULL: never)';
COMMENT ON COLUMN crm.lead_follow_up.next_follow_up_at IS 'When the next open follow-up activity is due or starts (NULL: none planned)';
COMMENT ON COLUMN crm.lead_follow_up.activities IS 'Number of activities on the lead';
--------------------------------------------------------------------------
-- Campaigns
--
-- Marketing campaigns (with parent campaigns, no cycles), their members
-- (leads or contacts) and attribution: a lead and an opportunity can name the
-- campaign they came from; conversion carries it from lead to opportunity.
-- crm.campaign_performance gives per campaign the leads, conversions,
-- opportunities, won deals and ROI = (won amount - actual cost) / actual cost.
--------------------------------------------------------------------------

CREATE TABLE crm.campaign (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name              text NOT NULL
                      CONSTRAINT campaign_name_not_blank CHECK (pg_catalog.btrim(name) OPERATOR(pg_catalog.<>) ''),
    type              text NOT NULL DEFAULT 'Other'
                      CONSTRAINT campaign_type_valid CHECK (type OPERATOR(pg_catalog.=) ANY
                        (ARRAY['Email', 'Event', 'Webinar', 'Advertisement', 'Direct Mail', 'Social Media',
                               'Partner', 'Referral Program', 'Telemarketing', 'Other'])),
    status            text NOT NULL DEFAULT 'Planned'
                      CONSTRAINT campaign_status_valid CHECK (status OPERATOR(pg_catalog.=) ANY
                        (ARRAY['Planned', 'In Progress', 'Completed', 'Aborted'])),
    starts_on         date,
    ends_on           date,
    budgeted_cost     numeric(14,2) NOT NULL DEFAULT 0
                      CONSTRAINT campaign_budgeted_cost_not_negative CHECK (budgeted_cost OPERATOR(pg_catalog.>=) 0
                          AND budgeted_cost OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    actual_cost       numeric(14,2) NOT NULL DEFAULT 0
                      CONSTRAINT campaign_actual_cost_not_negative CHECK (actual_cost OPERATOR(pg_catalog.>=) 0
                          AND actual_cost OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    expected_revenue  numeric(14,2) NOT NULL DEFAULT 0
                      CONSTRAINT campaign_expected_revenue_not_negative CHECK (expected_revenue OPERATOR(pg_catalog.>=) 0
                          AND expected_revenue OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    parent_id         bigint CONSTRAINT campaign_parent_id_fkey REFERENCES crm.campaign (id) ON DELETE SET NULL,
    description       text,
    owner             regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT campaign_dates CHECK (ends_on IS NULL OR starts_on IS NULL OR ends_on OPERATOR(pg_catalog.>=) starts_on),
    CONSTRAINT campaign_not_own_parent CHECK (parent_id OPERATOR(pg_catalog.<>) id)
);
COMMENT ON TABLE crm.campaign IS 'Marketing campaigns: plan, budget, cost and expected revenue; may be grouped under a parent campaign';
COMMENT ON COLUMN crm.campaign.id IS 'Campaign id, assigned by the database';
COMMENT ON COLUMN crm.campaign.name IS 'Campaign name';
COMMENT ON COLUMN crm.campaign.type IS 'Email, Event, Webinar, Advertisement, Direct Mail, Social Media, Partner, Referral Program, Telemarketing or Other';
COMMENT ON COLUMN crm.campaign.status IS 'Planned, In Progress, Completed or Aborted';
COMMENT ON COLUMN crm.campaign.starts_on IS 'First day';
COMMENT ON COLUMN crm.campaign.ends_on IS 'Last day, not before the first';
COMMENT ON COLUMN crm.campaign.budgeted_cost IS 'Planned cost, >= 0';
COMMENT ON COLUMN crm.campaign.actual_cost IS 'Cost so far, >= 0; the ROI is measured against it';
COMMENT ON COLUMN crm.campaign.expected_revenue IS 'Revenue the campaign is expected to bring, >= 0';
COMMENT ON COLUMN crm.campaign.parent_id IS 'Parent campaign (cycles are refused)';
COMMENT ON COLUMN crm.campaign.description IS 'Goals, audience, notes';
COMMENT ON COLUMN crm.campaign.owner IS 'CRM user (database role) who runs the campaign';
COMMENT ON COLUMN crm.campaign.created_at IS 'When the campaign was created; set by the database';
COMMENT ON COLUMN crm.campaign.updated_at IS 'When the campaign was last changed; set by the database';
CREATE INDEX campaign_parent_id_idx ON crm.campaign (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE crm.campaign_member (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id         bigint NOT NULL CONSTRAINT campaign_member_campaign_id_fkey
                        REFERENCES crm.campaign (id) ON DELETE CASCADE,
    lead_id             bigint CONSTRAINT campaign_member_lead_id_fkey REFERENCES crm.lead (id) ON DELETE CASCADE,
    contact_id          bigint CONSTRAINT campaign_member_contact_id_fkey REFERENCES crm.contact (id) ON DELETE CASCADE,
    status              text NOT NULL DEFAULT 'Planned'
                        CONSTRAINT campaign_member_status_valid CHECK (status OPERATOR(pg_catalog.=) ANY
                          (ARRAY['Planned', 'Sent', 'Opened', 'Clicked', 'Registered', 'Attended', 'Responded', 'Unsubscribed', 'Bounced'])),
    responded           boolean NOT NULL DEFAULT false,
    first_responded_at  timestamptz,
    owner               regrole NOT NULL DEFAULT crm.current_role_id(),
    created_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT campaign_member_lead_or_contact CHECK (pg_catalog.num_nonnulls(lead_id, contact_id) OPERATOR(pg_catalog.=) 1),
    CONSTRAINT campaign_member_lead_key UNIQUE (campaign_id, lead_id),
    CONSTRAINT campaign_member_contact_key UNIQUE (campaign_id, contact_id)
);
COMMENT ON TABLE crm.campaign_member IS 'Leads and contacts a campaign targets, and how they responded';
COMMENT ON COLUMN crm.campaign_member.id IS 'Member id, assigned by the database';
COMMENT ON COLUMN crm.campaign_member.campaign_id IS 'The campaign';
COMMENT ON COLUMN crm.campaign_member.lead_id IS 'A lead targeted (or contact_id)';
COMMENT ON COLUMN crm.campaign_member.contact_id IS 'A contact targeted (or lead_id)';
COMMENT ON COLUMN crm.campaign_member.status IS 'Planned, Sent, Opened, Clicked, Registered, Attended, Responded, Unsubscribed or Bounced';
COMMENT ON COLUMN crm.campaign_member.responded IS 'True once the member responded';
COMMENT ON COLUMN crm.campaign_member.first_responded_at IS 'When the member first responded; set by the database';
COMMENT ON COLUMN crm.campaign_member.owner IS 'CRM user (database role) who added the member';
COMMENT ON COLUMN crm.campaign_member.created_at IS 'When the member was added; set by the database';
COMMENT ON COLUMN crm.campaign_member.updated_at IS 'When the member was last changed; set by the database';
CREATE INDEX campaign_member_lead_id_idx ON crm.campaign_member (lead_id) WHERE lead_id IS NOT NULL;
CREATE INDEX campaign_member_contact_id_idx ON crm.campaign_member (contact_id) WHERE contact_id IS NOT NULL;

-- Attribution.
ALTER TABLE crm.lead ADD COLUMN campaign_id bigint
    CONSTRAINT lead_campaign_id_fkey REFERENCES crm.campaign (id) ON DELETE SET NULL;
COMMENT ON COLUMN crm.lead.campaign_id IS 'Campaign the lead came from; carried to the opportunity on conversion';
CREATE INDEX lead_campaign_id_idx ON crm.lead (campaign_id) WHERE campaign_id IS NOT NULL;
ALTER TABLE crm.opportunity ADD COLUMN campaign_id bigint
    CONSTRAINT opportunity_campaign_id_fkey REFERENCES crm.campaign (id) ON DELETE SET NULL;
COMMENT ON COLUMN crm.opportunity.campaign_id IS 'Campaign the deal is attributed to (the source lead''s campaign when converted)';
CREATE INDEX opportunity_campaign_id_idx ON crm.opportunity (campaign_id) WHERE campaign_id IS NOT NULL;

CREATE FUNCTION crm.campaign_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_campaign_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm.campaign_guard() IS 'BEFORE row trigger on crm.campaign (refuses a parent that would make a cycle; hierarchy changes are serialised) and crm.campaign_member (stamps first_responded_at)';
CREATE TRIGGER campaign_guard BEFORE INSERT OR UPDATE OF parent_id ON crm.campaign
    FOR EACH ROW EXECUTE FUNCTION crm.campaign_guard();
CREATE TRIGGER campaign_guard BEFORE INSERT OR UPDATE ON crm.campaign_member
    FOR EACH ROW EXECUTE FUNCTION crm.campaign_guard();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.campaign FOR EACH ROW EXECUTE FUNCTION crm.stamp_row();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.campaign_member FOR EACH ROW EXECUTE FUNCTION crm.stamp_row();

--------------------------------------------------------------------------
-- Pipeline, account and campaign aggregates
--
-- crm.pipeline_aggregate holds, per (stage, owner, close month), the number
-- of opportunities, their amount and their probability-weighted amount;
-- crm.account_aggregate and crm.campaign_opportunity_aggregate the number
-- and amount of opportunities per (account, stage) and (campaign, stage);
-- crm.campaign_lead_aggregate the number of leads per (campaign, status).
-- All are kept by statement-level C triggers (names start with aggregates_)
-- from the transition tables.  No hot rows: each backend adds its deltas to its own
-- stripe (one row per group and backend id), so concurrent writers never
-- wait for each other, and readers sum the stripes -- time proportional to
-- the number of groups times the backends that wrote, not to the number of
-- opportunities.  The stripes are ordinary rows written in the writer's
-- transaction: exact after commit, rollback, ROLLBACK TO SAVEPOINT, COPY,
-- bulk UPDATE and DELETE; TRUNCATE empties them.  The primary keys put the
-- text (or enum) column last, after the stripe: a writer finds its row with
-- integer comparisons and compares text only between the stages of one group.
-- A fill factor of 20 leaves each page room for the next versions of its
-- rows: a stripe row is updated over and over, and a new version on the
-- same page is a HOT update that touches no index and is cheap to prune.
--------------------------------------------------------------------------

CREATE TABLE crm.pipeline_aggregate (
    stage            text NOT NULL,
    owner            regrole NOT NULL,
    close_month      date NOT NULL,
    stripe           integer NOT NULL,
    opportunities    bigint NOT NULL DEFAULT 0,
    amount           numeric NOT NULL DEFAULT 0,
    weighted_amount  numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (owner, close_month, stripe, stage)
) WITH (fillfactor = 20);
COMMENT ON TABLE crm.pipeline_aggregate IS 'Pipeline totals per stage, owner and close month, one row per writing backend (stripe); sum over stripes to read; written only by the aggregates_ triggers';
COMMENT ON COLUMN crm.pipeline_aggregate.stage IS 'Opportunity stage';
COMMENT ON COLUMN crm.pipeline_aggregate.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm.pipeline_aggregate.close_month IS 'First day of the close month; infinity when the opportunity has no close date';
COMMENT ON COLUMN crm.pipeline_aggregate.stripe IS 'Backend id of the writer (0 after a rebuild); lets writers add without waiting for each other';
COMMENT ON COLUMN crm.pipeline_aggregate.opportunities IS 'Change in the number of opportunities recorded by this stripe';
COMMENT ON COLUMN crm.pipeline_aggregate.amount IS 'Change in the sum of amounts recorded by this stripe';
COMMENT ON COLUMN crm.pipeline_aggregate.weighted_amount IS 'Change in the sum of round(amount x probability / 100, 2) recorded by this stripe';

-- What the aggregate must equal: the GROUP BY over the opportunities.
CREATE VIEW crm.pipeline_actual WITH (security_invoker = true) AS
    SELECT o.stage, o.owner,
           -- the first of the month, by date arithmetic (date_trunc would go
           -- through timestamp and fail for dates beyond its range)
           CASE WHEN o.close_date IS NULL THEN 'infinity'::date
                WHEN NOT pg_catalog.isfinite(o.close_date) THEN o.close_date
                ELSE o.close_date OPERATOR(pg_catalog.-)
                     (pg_catalog."extract"('day', o.close_date)::integer OPERATOR(pg_catalog.-) 1)
           END AS close_month,
           pg_catalog.count(*) AS opportunities, pg_catalog.sum(o.amount) AS amount,
           pg_catalog.sum(pg_catalog.round(o.amount OPERATOR(pg_catalog.*) COALESCE(o.probability, 0)
                                           OPERATOR(pg_catalog./) 100, 2)) AS weighted_amount
      FROM crm.opportunity AS o
     GROUP BY 1, 2, 3;
COMMENT ON VIEW crm.pipeline_actual IS 'The pipeline totals computed from the opportunities (a full GROUP BY): what crm.pipeline_aggregate must add up to';
COMMENT ON COLUMN crm.pipeline_actual.stage IS 'Opportunity stage';
COMMENT ON COLUMN crm.pipeline_actual.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm.pipeline_actual.close_month IS 'First day of the close month; infinity without a close date';
COMMENT ON COLUMN crm.pipeline_actual.opportunities IS 'Number of opportunities';
COMMENT ON COLUMN crm.pipeline_actual.amount IS 'Sum of amounts';
COMMENT ON COLUMN crm.pipeline_actual.weighted_amount IS 'Sum of round(amount x probability / 100, 2)';

CREATE VIEW crm.pipeline_totals WITH (security_invoker = true) AS
    SELECT a.stage, a.owner, a.close_month,
           pg_catalog.sum(a.opportunities) AS opportunities, pg_catalog.sum(a.amount) AS amount,
           pg_catalog.sum(a.weighted_amount) AS weighted_amount
      FROM crm.pipeline_aggregate AS a
     GROUP BY 1, 2, 3
    HAVING pg_catalog.sum(a.opportunities) OPERATOR(pg_catalog.<>) 0;
COMMENT ON VIEW crm.pipeline_totals IS 'Pipeline totals per stage, owner and close month, read from the maintained aggregate (stripes summed)';
COMMENT ON COLUMN crm.pipeline_totals.stage IS 'Opportunity stage';
COMMENT ON COLUMN crm.pipeline_totals.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm.pipeline_totals.close_month IS 'First day of the close month; infinity without a close date';
COMMENT ON COLUMN crm.pipeline_totals.opportunities IS 'Number of opportunities';
COMMENT ON COLUMN crm.pipeline_totals.amount IS 'Sum of amounts';
COMMENT ON COLUMN crm.pipeline_totals.weighted_amount IS 'Sum of round(amount x probability / 100, 2)';

CREATE TABLE crm.account_aggregate (
    account_id       bigint NOT NULL,
    owner            regrole NOT NULL,
    stage            text NOT NULL,
    stripe           integer NOT NULL,
    opportunities    bigint NOT NULL DEFAULT 0,
    amount           numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, owner, stripe, stage)
) WITH (fillfactor = 20);
COMMENT ON TABLE crm.account_aggregate IS 'Opportunities per account, owner and stage, one row per writing backend (stripe); sum over stripes to read (crm.account_rollup does); written only by the aggregates_ triggers';
COMMENT ON COLUMN crm.account_aggregate.account_id IS 'The account';
COMMENT ON COLUMN crm.account_aggregate.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm.account_aggregate.stage IS 'Opportunity stage';
COMMENT ON COLUMN crm.account_aggregate.stripe IS 'Backend id of the writer (0 after a rebuild)';
COMMENT ON COLUMN crm.account_aggregate.opportunities IS 'Change in the number of opportunities recorded by this stripe';
COMMENT ON COLUMN crm.account_aggregate.amount IS 'Change in the sum of amounts recorded by this stripe';

CREATE TABLE crm.campaign_opportunity_aggregate (
    campaign_id      bigint NOT NULL,
    owner            regrole NOT NULL,
    stage            text NOT NULL,
    stripe           integer NOT NULL,
    opportunities    bigint NOT NULL DEFAULT 0,
    amount           numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, owner, stripe, stage)
) WITH (fillfactor = 20);
COMMENT ON TABLE crm.campaign_opportunity_aggregate IS 'Opportunities attributed to a campaign, per campaign, owner and stage, one row per writing backend (stripe); written only by the aggregates_ triggers';
COMMENT ON COLUMN crm.campaign_opportunity_aggregate.campaign_id IS 'The campaign';
COMMENT ON COLUMN crm.campaign_opportunity_aggregate.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm.campaign_opportunity_aggregate.stage IS 'Opportunity stage';
COMMENT ON COLUMN crm.campaign_opportunity_aggregate.stripe IS 'Backend id of the writer (0 after a rebuild)';
COMMENT ON COLUMN crm.campaign_opportunity_aggregate.opportunities IS 'Change in the number of opportunities recorded by this stripe';
COMMENT ON COLUMN crm.campaign_opportunity_aggregate.amount IS 'Change in the sum of amounts recorded by this stripe';

CREATE TABLE crm.campaign_lead_aggregate (
    campaign_id      bigint NOT NULL,
    owner            regrole NOT NULL,
    status           crm.lead_status NOT NULL,
    stripe           integer NOT NULL,
    leads            bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, owner, stripe, status)
) WITH (fillfactor = 20);
COMMENT ON TABLE crm.campaign_lead_aggregate IS 'Leads attributed to a campaign, per campaign, lead owner and lead status, one row per writing backend (stripe); written only by the aggregates_ triggers';
COMMENT ON COLUMN crm.campaign_lead_aggregate.campaign_id IS 'The campaign';
COMMENT ON COLUMN crm.campaign_lead_aggregate.owner IS 'Lead owner';
COMMENT ON COLUMN crm.campaign_lead_aggregate.status IS 'Lead status';
COMMENT ON COLUMN crm.campaign_lead_aggregate.stripe IS 'Backend id of the writer (0 after a rebuild)';
COMMENT ON COLUMN crm.campaign_lead_aggregate.leads IS 'Change in the number of leads recorded by this stripe';

CREATE FUNCTION crm.aggregates_maintain() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_aggregates_maintain'
    LANGUAGE C;
COMMENT ON FUNCTION crm.aggregates_maintain() IS 'AFTER statement trigger on crm.opportunity and crm.lead: folds the statement''s transition tables into per-group changes and adds them to the writing backend''s stripe of every aggregate the table feeds (TRUNCATE empties them)';

CREATE TRIGGER aggregates_opportunity_insert AFTER INSERT ON crm.opportunity
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.aggregates_maintain();
CREATE TRIGGER aggregates_opportunity_update AFTER UPDATE ON crm.opportunity
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.aggregates_maintain();
CREATE TRIGGER aggregates_opportunity_delete AFTER DELETE ON crm.opportunity
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.aggregates_maintain();
CREATE TRIGGER aggregates_opportunity_truncate AFTER TRUNCATE ON crm.opportunity
    FOR EACH STATEMENT EXECUTE FUNCTION crm.aggregates_maintain();
CREATE TRIGGER aggregates_lead_insert AFTER INSERT ON crm.lead
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.aggregates_maintain();
CREATE TRIGGER aggregates_lead_update AFTER UPDATE ON crm.lead
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.aggregates_maintain();
CREATE TRIGGER aggregates_lead_delete AFTER DELETE ON crm.lead
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm.aggregates_maintain();
CREATE TRIGGER aggregates_lead_truncate AFTER TRUNCATE ON crm.lead
    FOR EACH STATEMENT EXECUTE FUNCTION crm.aggregates_maintain();

-- Every kept group (stripes summed) next to the same group computed from the
-- base tables; verify and rebuild are written from it.
CREATE VIEW crm.aggregates_compared WITH (security_invoker = true) AS
    WITH kept AS (
        SELECT 'pipeline'::text AS aggregate,
               pg_catalog.jsonb_build_object('stage', p.stage, 'owner', p.owner, 'close_month', p.close_month) AS group_key,
               pg_catalog.sum(p.opportunities)::numeric AS items, pg_catalog.sum(p.amount) AS amount,
               pg_catalog.sum(p.weighted_amount) AS weighted_amount
          FROM crm.pipeline_aggregate AS p GROUP BY p.stage, p.owner, p.close_month
        UNION ALL
        SELECT 'account', pg_catalog.jsonb_build_object('account_id', g.account_id, 'owner', g.owner, 'stage', g.stage),
               pg_catalog.sum(g.opportunities), pg_catalog.sum(g.amount), NULL
          FROM crm.account_aggregate AS g GROUP BY g.account_id, g.owner, g.stage
        UNION ALL
        SELECT 'campaign_opportunity', pg_catalog.jsonb_build_object('campaign_id', g.campaign_id, 'owner', g.owner, 'stage', g.stage),
               pg_catalog.sum(g.opportunities), pg_catalog.sum(g.amount), NULL
          FROM crm.campaign_opportunity_aggregate AS g GROUP BY g.campaign_id, g.owner, g.stage
        UNION ALL
        SELECT 'campaign_lead', pg_catalog.jsonb_build_object('campaign_id', g.campaign_id, 'owner', g.owner, 'status', g.status),
               pg_catalog.sum(g.leads), NULL, NULL
          FROM crm.campaign_lead_aggregate AS g GROUP BY g.campaign_id, g.owner, g.status),
    actual AS (
        SELECT 'pipeline'::text AS aggregate,
               pg_catalog.jsonb_build_object('stage', a.stage, 'owner', a.owner, 'close_month', a.close_month) AS group_key,
               a.opportunities::numeric AS items, a.amount, a.weighted_amount
          FROM crm.pipeline_actual AS a
        UNION ALL
        SELECT 'account', pg_catalog.jsonb_build_object('account_id', o.account_id, 'owner', o.owner, 'stage', o.stage),
               pg_catalog.count(*), pg_catalog.sum(o.amount), NULL
          FROM crm.opportunity AS o GROUP BY o.account_id, o.owner, o.stage
        UNION ALL
        SELECT 'campaign_opportunity', pg_catalog.jsonb_build_object('campaign_id', o.campaign_id, 'owner', o.owner, 'stage', o.stage),
               pg_catalog.count(*), pg_catalog.sum(o.amount), NULL
          FROM crm.opportunity AS o WHERE o.campaign_id IS NOT NULL GROUP BY o.campaign_id, o.owner, o.stage
        UNION ALL
        SELECT 'campaign_lead', pg_catalog.jsonb_build_object('campaign_id', l.campaign_id, 'owner', l.owner, 'status', l.status),
               pg_catalog.count(*), NULL, NULL
          FROM crm.lead AS l WHERE l.campaign_id IS NOT NULL GROUP BY l.campaign_id, l.owner, l.status)
    SELECT COALESCE(k.aggregate, a.aggregate) AS aggregate, COALESCE(k.group_key, a.group_key) AS group_key,
           COALESCE(k.items, 0) AS kept_items, COALESCE(a.items, 0) AS actual_items,
           COALESCE(k.amount, 0) AS kept_amount, COALESCE(a.amount, 0) AS actual_amount,
           COALESCE(k.weighted_amount, 0) AS kept_weighted_amount, COALESCE(a.weighted_amount, 0) AS actual_weighted_amount
      FROM kept AS k
      FULL JOIN actual AS a
        ON a.aggregate OPERATOR(pg_catalog.=) k.aggregate AND a.group_key OPERATOR(pg_catalog.=) k.group_key;
COMMENT ON VIEW crm.aggregates_compared IS 'Every group of every maintained aggregate, kept (stripes summed) next to a fresh GROUP BY over the base tables; a full scan, for checking only';
COMMENT ON COLUMN crm.aggregates_compared.aggregate IS 'pipeline, account, campaign_opportunity or campaign_lead';
COMMENT ON COLUMN crm.aggregates_compared.group_key IS 'The group, as a JSON object of its key columns';
COMMENT ON COLUMN crm.aggregates_compared.kept_items IS 'Opportunities (or leads) in the group, as kept';
COMMENT ON COLUMN crm.aggregates_compared.actual_items IS 'Opportunities (or leads) in the group, counted now';
COMMENT ON COLUMN crm.aggregates_compared.kept_amount IS 'Sum of amounts, as kept (0 where the aggregate has none)';
COMMENT ON COLUMN crm.aggregates_compared.actual_amount IS 'Sum of amounts, computed now';
COMMENT ON COLUMN crm.aggregates_compared.kept_weighted_amount IS 'Sum of weighted amounts, as kept (pipeline only)';
COMMENT ON COLUMN crm.aggregates_compared.actual_weighted_amount IS 'Sum of weighted amounts, computed now';

CREATE FUNCTION crm.verify_aggregates()
    RETURNS TABLE (aggregate text, group_key jsonb, measure text, kept numeric, actual numeric)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT c.aggregate, c.group_key, m.measure, m.kept, m.actual
      FROM crm.aggregates_compared AS c
     CROSS JOIN LATERAL (VALUES ('items', c.kept_items, c.actual_items),
                                ('amount', c.kept_amount, c.actual_amount),
                                ('weighted_amount', c.kept_weighted_amount, c.actual_weighted_amount))
                        AS m (measure, kept, actual)
     WHERE m.kept OPERATOR(pg_catalog.<>) m.actual
     ORDER BY c.aggregate, c.group_key::text, m.measure;
END;
COMMENT ON FUNCTION crm.verify_aggregates() IS 'One row per group and measure where a maintained aggregate differs from a fresh GROUP BY over the base tables; no rows: all exact';

CREATE FUNCTION crm.rebuild_aggregates() RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    total bigint := 0;
BEGIN
    -- writers wait until the rebuild commits; readers keep reading
    LOCK TABLE crm.lead, crm.opportunity IN SHARE MODE;
    LOCK TABLE crm.pipeline_aggregate, crm.account_aggregate, crm.campaign_opportunity_aggregate,
               crm.campaign_lead_aggregate IN EXCLUSIVE MODE;
    DELETE FROM crm.pipeline_aggregate;
    DELETE FROM crm.account_aggregate;
    DELETE FROM crm.campaign_opportunity_aggregate;
    DELETE FROM crm.campaign_lead_aggregate;
    INSERT INTO crm.pipeline_aggregate (stage, owner, close_month, stripe, opportunities, amount, weighted_amount)
    SELECT a.stage, a.owner, a.close_month, 0, a.opportunities, a.amount, a.weighted_amount
      FROM crm.pipeline_actual AS a;
    GET DIAGNOSTICS n = ROW_COUNT;
    total := total + n;
    INSERT INTO crm.account_aggregate (account_id, owner, stage, stripe, opportunities, amount)
    SELECT o.account_id, o.owner, o.stage, 0, count(*), sum(o.amount) FROM crm.opportunity AS o GROUP BY 1, 2, 3;
    GET DIAGNOSTICS n = ROW_COUNT;
    total := total + n;
    INSERT INTO crm.campaign_opportunity_aggregate (campaign_id, owner, stage, stripe, opportunities, amount)
    SELECT o.campaign_id, o.owner, o.stage, 0, count(*), sum(o.amount) FROM crm.opportunity AS o
     WHERE o.campaign_id IS NOT NULL GROUP BY 1, 2, 3;
    GET DIAGNOSTICS n = ROW_COUNT;
    total := total + n;
    INSERT INTO crm.campaign_lead_aggregate (campaign_id, owner, status, stripe, leads)
    SELECT l.campaign_id, l.owner, l.status, 0, count(*) FROM crm.lead AS l
     WHERE l.campaign_id IS NOT NULL GROUP BY 1, 2, 3;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN total + n;
END
$$;
COMMENT ON FUNCTION crm.rebuild_aggregates() IS 'Recomputes every aggregate from the base tables into one row per group (stripe 0), folding all stripes and dropping groups that emptied; returns the number of groups. Blocks writers of leads and opportunities until it commits. Runs as the extension owner (it reads every row and writes the aggregates, which nobody else may); admins only.';

CREATE FUNCTION crm.compact_aggregates() RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    spec text[];
    measures text[];
    total bigint := 0;
    n bigint;
BEGIN
    -- A TRUNCATE of the base tables (which empties the aggregates) waits for
    -- the compaction and vice versa.
    LOCK TABLE crm.lead, crm.opportunity IN ACCESS SHARE MODE;
    -- One compaction at a time (the lock does not conflict with writers).
    LOCK TABLE crm.pipeline_aggregate, crm.account_aggregate, crm.campaign_opportunity_aggregate,
               crm.campaign_lead_aggregate IN SHARE UPDATE EXCLUSIVE MODE;
    -- Per aggregate table (name, its group key, its measures -- fixed names,
    -- no user input): move every stripe row that no open transaction is
    -- writing into stripe 0 (rows a writer holds are skipped and moved next
    -- time), then drop stripe-0 rows that add up to nothing.  Writers only
    -- ever touch their own stripe, never stripe 0, so nobody waits for a
    -- compaction.
    FOREACH spec SLICE 1 IN ARRAY ARRAY[
        ['pipeline_aggregate', 'stage, owner, close_month', 'opportunities, amount, weighted_amount'],
        ['account_aggregate', 'account_id, owner, stage', 'opportunities, amount'],
        ['campaign_opportunity_aggregate', 'campaign_id, owner, stage', 'opportunities, amount'],
        ['campaign_lead_aggregate', 'campaign_id, owner, status', 'leads']]
    LOOP
        measures := string_to_array(spec[3], ', ');
        EXECUTE format(
            'WITH moved AS ('
            '    DELETE FROM crm.%1$I AS a'
            '     WHERE a.ctid OPERATOR(pg_catalog.=) ANY (ARRAY('
            '               SELECT x.ctid FROM crm.%1$I AS x'
            '                WHERE x.stripe OPERATOR(pg_catalog.<>) 0 FOR UPDATE SKIP LOCKED))'
            '    RETURNING a.*)'
            ' INSERT INTO crm.%1$I AS t (%2$s, stripe, %3$s)'
            ' SELECT %2$s, 0, %4$s FROM moved GROUP BY %2$s'
            ' ON CONFLICT (%2$s, stripe) DO UPDATE SET %5$s',
            spec[1], spec[2], spec[3],
            (SELECT string_agg(format('pg_catalog.sum(%I)', m), ', ') FROM unnest(measures) AS m),
            (SELECT string_agg(format('%1$I = t.%1$I OPERATOR(pg_catalog.+) EXCLUDED.%1$I', m), ', ')
               FROM unnest(measures) AS m));
        EXECUTE format('DELETE FROM crm.%I AS a WHERE a.stripe OPERATOR(pg_catalog.=) 0 AND %s', spec[1],
                       (SELECT string_agg(format('a.%I OPERATOR(pg_catalog.=) 0', m), ' AND ') FROM unnest(measures) AS m));
        EXECUTE format('SELECT pg_catalog.count(*) FROM crm.%I', spec[1]) INTO n;
        total := total + n;
    END LOOP;
    RETURN total;
END
$$;
COMMENT ON FUNCTION crm.compact_aggregates() IS 'Folds the per-backend stripes of every aggregate into one row per group (stripe 0) and drops groups that add up to nothing, without blocking writers (rows a running transaction is writing are left for the next call); returns the number of aggregate rows left. Totals do not change; reads get faster. Run it periodically (e.g. every few minutes) on busy systems, in a transaction of its own: the rows it folds stay locked until its transaction ends. Admins only.';

-- Per account: open and won opportunities from the aggregate, and the last
-- completed activity logged against the account from the activity index.
CREATE VIEW crm.account_rollup WITH (security_invoker = true) AS
    SELECT ac.id AS account_id, ac.name, ac.owner,
           COALESCE(r.open_opportunities, 0) AS open_opportunities,
           COALESCE(r.open_amount, 0) AS open_amount,
           COALESCE(r.won_opportunities, 0) AS won_opportunities,
           COALESCE(r.won_amount, 0) AS won_amount,
           (SELECT pg_catalog.max(act.completed_at) FROM crm.activity AS act
             WHERE act.account_id OPERATOR(pg_catalog.=) ac.id) AS last_activity_at
      FROM crm.account AS ac
      LEFT JOIN (SELECT g.account_id,
                        pg_catalog.sum(g.opportunities) FILTER (WHERE NOT s.is_closed) AS open_opportunities,
                        pg_catalog.sum(g.amount) FILTER (WHERE NOT s.is_closed) AS open_amount,
                        pg_catalog.sum(g.opportunities) FILTER (WHERE s.is_won) AS won_opportunities,
                        pg_catalog.sum(g.amount) FILTER (WHERE s.is_won) AS won_amount
                   FROM crm.account_aggregate AS g
                   JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) g.stage
                  GROUP BY g.account_id) AS r
        ON r.account_id OPERATOR(pg_catalog.=) ac.id;
COMMENT ON VIEW crm.account_rollup IS 'Per account: open opportunities and their amount, won opportunities and their amount (from the maintained aggregate), and the last completed activity logged against the account';
COMMENT ON COLUMN crm.account_rollup.account_id IS 'The account';
COMMENT ON COLUMN crm.account_rollup.name IS 'Account name';
COMMENT ON COLUMN crm.account_rollup.owner IS 'Account owner';
COMMENT ON COLUMN crm.account_rollup.open_opportunities IS 'Opportunities in a stage that is not closed';
COMMENT ON COLUMN crm.account_rollup.open_amount IS 'Their amount';
COMMENT ON COLUMN crm.account_rollup.won_opportunities IS 'Opportunities won';
COMMENT ON COLUMN crm.account_rollup.won_amount IS 'Their amount';
COMMENT ON COLUMN crm.account_rollup.last_activity_at IS 'When the latest completed activity logged against the account was completed (NULL: none)';
--------------------------------------------------------------------------
-- Reporting views for BI tools
--
-- Plain views over the base tables, security_invoker so that whatever
-- row-level security applies to the querying role applies to them too.
-- The pipeline, forecast and campaign views read the aggregates that the
-- aggregates_ triggers keep (88_aggregates.sql); the others compute from the
-- base tables.
--------------------------------------------------------------------------

CREATE VIEW crm.sales_funnel WITH (security_invoker = true) AS
    SELECT 1 AS position, pg_catalog.array_position(pg_catalog.enum_range(NULL::crm.lead_status), l.status) AS step_order,
           'lead'::text AS kind, l.status::text AS step,
           pg_catalog.count(*) AS items, NULL::numeric AS amount
      FROM crm.lead AS l GROUP BY l.status
    UNION ALL
    SELECT 2, s.sort_order, 'opportunity', s.name, pg_catalog.count(o.id), COALESCE(pg_catalog.sum(o.amount), 0)
      FROM crm.opportunity_stage AS s LEFT JOIN crm.opportunity AS o ON o.stage OPERATOR(pg_catalog.=) s.name
     GROUP BY s.name, s.sort_order
    UNION ALL
    SELECT 3, 1, 'won', 'Won', pg_catalog.count(*), COALESCE(pg_catalog.sum(o.amount), 0)
      FROM crm.opportunity AS o JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) o.stage
     WHERE s.is_won;
COMMENT ON VIEW crm.sales_funnel IS 'Sales funnel: leads by status, opportunities by stage, won deals; ORDER BY position, step_order';
COMMENT ON COLUMN crm.sales_funnel.position IS '1 leads, 2 opportunities, 3 won';
COMMENT ON COLUMN crm.sales_funnel.step_order IS 'Order of the step within its part: lead status order, stage sort_order';
COMMENT ON COLUMN crm.sales_funnel.kind IS 'lead, opportunity or won';
COMMENT ON COLUMN crm.sales_funnel.step IS 'Lead status or opportunity stage (Won for the won total)';
COMMENT ON COLUMN crm.sales_funnel.items IS 'Number of leads or opportunities in the step';
COMMENT ON COLUMN crm.sales_funnel.amount IS 'Total opportunity amount in the step (NULL for lead steps)';

CREATE VIEW crm.lead_conversion_rates WITH (security_invoker = true) AS
    SELECT CASE WHEN GROUPING(l.source) OPERATOR(pg_catalog.=) 0 THEN 'source'
                WHEN GROUPING(l.owner) OPERATOR(pg_catalog.=) 0 THEN 'owner'
                WHEN GROUPING(l.campaign_id) OPERATOR(pg_catalog.=) 0 THEN 'campaign'
                ELSE 'month' END AS dimension,
           COALESCE(l.source, l.owner::text, c.name,
                    pg_catalog.to_char(pg_catalog.date_trunc('month', l.created_at), 'YYYY-MM'), '(none)') AS value,
           pg_catalog.count(*) AS leads,
           pg_catalog.count(*) FILTER (WHERE l.status OPERATOR(pg_catalog.=) 'Converted'::crm.lead_status) AS converted,
           pg_catalog.round(pg_catalog.count(*) FILTER (WHERE l.status OPERATOR(pg_catalog.=) 'Converted'::crm.lead_status)::numeric
                            OPERATOR(pg_catalog./) pg_catalog.count(*), 4) AS conversion_rate
      FROM crm.lead AS l LEFT JOIN crm.campaign AS c ON c.id OPERATOR(pg_catalog.=) l.campaign_id
     GROUP BY GROUPING SETS ((l.source), (l.owner), (l.campaign_id, c.name), (pg_catalog.date_trunc('month', l.created_at)));
COMMENT ON VIEW crm.lead_conversion_rates IS 'Share of leads converted, by source, by owner, by campaign and by month of capture';
COMMENT ON COLUMN crm.lead_conversion_rates.dimension IS 'source, owner, campaign or month';
COMMENT ON COLUMN crm.lead_conversion_rates.value IS 'The source code, owner, campaign name or month (YYYY-MM); (none) for leads without a campaign';
COMMENT ON COLUMN crm.lead_conversion_rates.leads IS 'Leads in the group';
COMMENT ON COLUMN crm.lead_conversion_rates.converted IS 'Of those, converted';
COMMENT ON COLUMN crm.lead_conversion_rates.conversion_rate IS 'converted / leads, 0-1';

CREATE VIEW crm.pipeline_by_stage WITH (security_invoker = true) AS
    SELECT s.sort_order, s.name AS stage, s.is_closed, s.is_won, t.owner,
           pg_catalog.sum(t.opportunities) AS opportunities,
           pg_catalog.sum(t.amount) AS amount,
           pg_catalog.sum(t.weighted_amount) AS weighted_amount
      FROM crm.pipeline_totals AS t JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) t.stage
     GROUP BY s.sort_order, s.name, s.is_closed, s.is_won, t.owner;
COMMENT ON VIEW crm.pipeline_by_stage IS 'Pipeline by stage and owner: number of opportunities, amount and probability-weighted amount, read from the maintained aggregate';
COMMENT ON COLUMN crm.pipeline_by_stage.sort_order IS 'Position of the stage in the pipeline';
COMMENT ON COLUMN crm.pipeline_by_stage.stage IS 'Stage';
COMMENT ON COLUMN crm.pipeline_by_stage.is_closed IS 'True for closed stages';
COMMENT ON COLUMN crm.pipeline_by_stage.is_won IS 'True for won stages';
COMMENT ON COLUMN crm.pipeline_by_stage.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm.pipeline_by_stage.opportunities IS 'Number of opportunities';
COMMENT ON COLUMN crm.pipeline_by_stage.amount IS 'Sum of their amounts';
COMMENT ON COLUMN crm.pipeline_by_stage.weighted_amount IS 'Sum of amount x probability / 100 (each rounded to cents)';

CREATE VIEW crm.forecast_by_month WITH (security_invoker = true) AS
    SELECT NULLIF(t.close_month, 'infinity'::date) AS close_month,
           s.forecast_category, t.owner,
           pg_catalog.sum(t.opportunities) AS opportunities,
           pg_catalog.sum(t.amount) AS amount,
           pg_catalog.sum(t.weighted_amount) AS weighted_amount
      FROM crm.pipeline_totals AS t JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) t.stage
     WHERE NOT s.is_closed OR s.is_won
     GROUP BY 1, s.forecast_category, t.owner;
COMMENT ON VIEW crm.forecast_by_month IS 'Forecast: open and won opportunities by expected close month, forecast category and owner, read from the maintained aggregate';
COMMENT ON COLUMN crm.forecast_by_month.close_month IS 'First day of the close month (NULL: no close date yet)';
COMMENT ON COLUMN crm.forecast_by_month.forecast_category IS 'Pipeline, Best Case, Commit or Closed (from the stage)';
COMMENT ON COLUMN crm.forecast_by_month.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm.forecast_by_month.opportunities IS 'Number of opportunities';
COMMENT ON COLUMN crm.forecast_by_month.amount IS 'Sum of their amounts';
COMMENT ON COLUMN crm.forecast_by_month.weighted_amount IS 'Sum of amount x probability / 100';

CREATE VIEW crm.sales_performance WITH (security_invoker = true) AS
    SELECT o.owner, pg_catalog.date_trunc('month', o.closed_at)::date AS period,
           pg_catalog.count(*) FILTER (WHERE s.is_won) AS won,
           pg_catalog.count(*) FILTER (WHERE NOT s.is_won) AS lost,
           COALESCE(pg_catalog.sum(o.amount) FILTER (WHERE s.is_won), 0) AS won_amount,
           pg_catalog.round(pg_catalog.count(*) FILTER (WHERE s.is_won)::numeric OPERATOR(pg_catalog./) pg_catalog.count(*), 4) AS win_rate,
           pg_catalog.round(pg_catalog.avg(o.amount) FILTER (WHERE s.is_won), 2) AS average_deal_size,
           pg_catalog.round((pg_catalog.avg(pg_catalog.date_part('epoch', o.closed_at OPERATOR(pg_catalog.-) o.created_at))
                             FILTER (WHERE s.is_won) OPERATOR(pg_catalog./) 86400)::numeric, 1) AS average_cycle_days
      FROM crm.opportunity AS o JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) o.stage
     WHERE s.is_closed AND o.closed_at IS NOT NULL
     GROUP BY o.owner, 2;
COMMENT ON VIEW crm.sales_performance IS 'Sales performance per owner and month of closing: deals won and lost, won amount, win rate, average deal size, sales cycle length';
COMMENT ON COLUMN crm.sales_performance.owner IS 'Opportunity owner';
COMMENT ON COLUMN crm.sales_performance.period IS 'First day of the month the deals closed in';
COMMENT ON COLUMN crm.sales_performance.won IS 'Deals won';
COMMENT ON COLUMN crm.sales_performance.lost IS 'Deals lost';
COMMENT ON COLUMN crm.sales_performance.won_amount IS 'Amount of the won deals';
COMMENT ON COLUMN crm.sales_performance.win_rate IS 'won / (won + lost), 0-1';
COMMENT ON COLUMN crm.sales_performance.average_deal_size IS 'Average amount of a won deal';
COMMENT ON COLUMN crm.sales_performance.average_cycle_days IS 'Average days from creation to closing of a won deal';

CREATE VIEW crm.stage_velocity WITH (security_invoker = true) AS
    WITH entered AS (
        SELECT h.opportunity_id, h.new_stage AS stage, h.changed_at AS entered_at,
               pg_catalog.lead(h.changed_at) OVER w AS left_at
          FROM crm.opportunity_history AS h
         WHERE h.old_stage IS DISTINCT FROM h.new_stage
        WINDOW w AS (PARTITION BY h.opportunity_id ORDER BY h.id))
    SELECT s.sort_order, e.stage,
           pg_catalog.count(*) FILTER (WHERE e.left_at IS NOT NULL) AS passages,
           pg_catalog.round((pg_catalog.avg(pg_catalog.date_part('epoch', e.left_at OPERATOR(pg_catalog.-) e.entered_at))
                             OPERATOR(pg_catalog./) 86400)::numeric, 2) AS average_days,
           pg_catalog.count(*) FILTER (WHERE e.left_at IS NULL) AS currently_in_stage
      FROM entered AS e LEFT JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) e.stage
     GROUP BY s.sort_order, e.stage;
COMMENT ON VIEW crm.stage_velocity IS 'Average time opportunities spend in each stage, from crm.opportunity_history';
COMMENT ON COLUMN crm.stage_velocity.sort_order IS 'Position of the stage in the pipeline (NULL for a stage since renamed or removed)';
COMMENT ON COLUMN crm.stage_velocity.stage IS 'Stage';
COMMENT ON COLUMN crm.stage_velocity.passages IS 'How many times an opportunity entered and left the stage';
COMMENT ON COLUMN crm.stage_velocity.average_days IS 'Average days between entering and leaving the stage';
COMMENT ON COLUMN crm.stage_velocity.currently_in_stage IS 'Opportunities in the stage now';

CREATE VIEW crm.quote_to_order WITH (security_invoker = true) AS
    SELECT pg_catalog.date_trunc('month', q.created_at)::date AS month,
           pg_catalog.count(*) AS quotes,
           pg_catalog.count(*) FILTER (WHERE q.status OPERATOR(pg_catalog.=) 'Accepted'::crm.quote_status) AS accepted,
           pg_catalog.count(so.id) AS orders,
           pg_catalog.round(pg_catalog.count(so.id)::numeric OPERATOR(pg_catalog./) pg_catalog.count(*), 4) AS order_rate,
           COALESCE(pg_catalog.sum(so.total), 0) AS order_total
      FROM crm.quote AS q LEFT JOIN crm.sales_order AS so ON so.quote_id OPERATOR(pg_catalog.=) q.id
     GROUP BY 1;
COMMENT ON VIEW crm.quote_to_order IS 'Quote-to-order conversion per month the quotes were made';
COMMENT ON COLUMN crm.quote_to_order.month IS 'First day of the month';
COMMENT ON COLUMN crm.quote_to_order.quotes IS 'Quotes made';
COMMENT ON COLUMN crm.quote_to_order.accepted IS 'Of those, Accepted now';
COMMENT ON COLUMN crm.quote_to_order.orders IS 'Of those, turned into sales orders';
COMMENT ON COLUMN crm.quote_to_order.order_rate IS 'orders / quotes, 0-1';
COMMENT ON COLUMN crm.quote_to_order.order_total IS 'Total of those orders';

CREATE VIEW crm.campaign_performance WITH (security_invoker = true) AS
    SELECT c.id AS campaign_id, c.name, c.type, c.status, c.owner,
           c.budgeted_cost, c.actual_cost, c.expected_revenue,
           COALESCE(l.leads, 0) AS leads,
           COALESCE(l.converted_leads, 0) AS converted_leads,
           COALESCE(o.opportunities, 0) AS opportunities,
           COALESCE(o.won_opportunities, 0) AS won_opportunities,
           COALESCE(o.amount, 0) AS opportunity_amount,
           COALESCE(o.won_amount, 0) AS won_amount,
           CASE WHEN c.actual_cost OPERATOR(pg_catalog.>) 0
                THEN pg_catalog.round((COALESCE(o.won_amount, 0) OPERATOR(pg_catalog.-) c.actual_cost)
                                      OPERATOR(pg_catalog./) c.actual_cost, 4)
           END AS roi
      FROM crm.campaign AS c
      LEFT JOIN (SELECT g.campaign_id, pg_catalog.sum(g.leads) AS leads,
                        pg_catalog.sum(g.leads) FILTER (WHERE g.status OPERATOR(pg_catalog.=) 'Converted'::crm.lead_status) AS converted_leads
                   FROM crm.campaign_lead_aggregate AS g GROUP BY g.campaign_id) AS l
        ON l.campaign_id OPERATOR(pg_catalog.=) c.id
      LEFT JOIN (SELECT g.campaign_id, pg_catalog.sum(g.opportunities) AS opportunities,
                        pg_catalog.sum(g.opportunities) FILTER (WHERE s.is_won) AS won_opportunities,
                        pg_catalog.sum(g.amount) AS amount,
                        pg_catalog.sum(g.amount) FILTER (WHERE s.is_won) AS won_amount
                   FROM crm.campaign_opportunity_aggregate AS g
                   JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) g.stage
                  GROUP BY g.campaign_id) AS o
        ON o.campaign_id OPERATOR(pg_catalog.=) c.id;
COMMENT ON VIEW crm.campaign_performance IS 'Per campaign: leads, converted leads, opportunities, won opportunities, their amounts, and ROI = (won amount - actual cost) / actual cost; figures read from the maintained campaign aggregates';
COMMENT ON COLUMN crm.campaign_performance.campaign_id IS 'The campaign';
COMMENT ON COLUMN crm.campaign_performance.name IS 'Campaign name';
COMMENT ON COLUMN crm.campaign_performance.type IS 'Campaign type';
COMMENT ON COLUMN crm.campaign_performance.status IS 'Campaign status';
COMMENT ON COLUMN crm.campaign_performance.owner IS 'Who runs the campaign';
COMMENT ON COLUMN crm.campaign_performance.budgeted_cost IS 'Planned cost';
COMMENT ON COLUMN crm.campaign_performance.actual_cost IS 'Cost so far';
COMMENT ON COLUMN crm.campaign_performance.expected_revenue IS 'Expected revenue';
COMMENT ON COLUMN crm.campaign_performance.leads IS 'Leads attributed to the campaign';
COMMENT ON COLUMN crm.campaign_performance.converted_leads IS 'Of those, converted';
COMMENT ON COLUMN crm.campaign_performance.opportunities IS 'Opportunities attributed to the campaign';
COMMENT ON COLUMN crm.campaign_performance.won_opportunities IS 'Of those, won';
COMMENT ON COLUMN crm.campaign_performance.opportunity_amount IS 'Amount of all attributed opportunities';
COMMENT ON COLUMN crm.campaign_performance.won_amount IS 'Amount of the won ones';
COMMENT ON COLUMN crm.campaign_performance.roi IS 'Return on investment: (won amount - actual cost) / actual cost; NULL while the actual cost is 0';
--------------------------------------------------------------------------
-- Who sees what: the reporting hierarchy and row-level security
--
-- Every row with personal or sales data has an owner (a database role).
--   crm_admin    sees and changes every row;
--   crm_manager  sees and changes the rows owned by themselves and by anyone
--                below them in crm.reporting_line (transitively);
--   crm_sales    sees and changes their own rows; accounts and contacts
--                also by the sharing rule below;
--   crm_analyst  reads (only the columns granted in 99_privileges.sql, none
--                of them personal) every row: BI views and aggregates.
-- Sharing rule: an account is visible to whoever may see an opportunity or
-- a lead on it; a contact to whoever may see its primary account or an
-- account it is linked to.  Only the owner's side may change them.
-- Child rows (line items, order items, participants, history) follow their
-- parent: visible and writable exactly when the parent is.
--
-- The tables' owner (the role that created the extension) is not subject to
-- these policies: the extension's own triggers and checks run as that owner
-- to write history, aggregates, line sums and stock, and to search for
-- duplicates across owners.  No person should log in as that role.  FORCE
-- ROW LEVEL SECURITY is therefore not set: it would subject those writes to
-- the policies of whoever happens to own the tables.
--------------------------------------------------------------------------

CREATE TABLE crm.reporting_line (
    member      regrole PRIMARY KEY,
    manager     regrole NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT reporting_line_not_self CHECK (member OPERATOR(pg_catalog.<>) manager)
);
COMMENT ON TABLE crm.reporting_line IS 'The reporting hierarchy: who reports to whom. A member of crm_manager sees and changes the rows owned by everyone below them, directly or indirectly. Maintained by admins; cycles are refused.';
COMMENT ON COLUMN crm.reporting_line.member IS 'A CRM user (database role)';
COMMENT ON COLUMN crm.reporting_line.manager IS 'The role the member reports to';
COMMENT ON COLUMN crm.reporting_line.created_at IS 'When the line was added';
COMMENT ON COLUMN crm.reporting_line.updated_at IS 'When the line last changed';
CREATE INDEX reporting_line_manager_idx ON crm.reporting_line (manager);

CREATE FUNCTION crm.reporting_line_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_reporting_line_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm.reporting_line_guard() IS 'BEFORE row trigger on crm.reporting_line: refuses a manager who reports, directly or indirectly, to the member (hierarchy changes are serialised)';
CREATE TRIGGER reporting_line_guard BEFORE INSERT OR UPDATE ON crm.reporting_line
    FOR EACH ROW EXECUTE FUNCTION crm.reporting_line_guard();
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.reporting_line
    FOR EACH ROW EXECUTE FUNCTION crm.stamp_row();

-- The owners whose rows the current role works with: itself, and for a
-- member of crm_manager everyone below it in the hierarchy.  Policies call
-- it once per statement, as an InitPlan: ANY (ARRAY(SELECT crm.team_roles())).
CREATE FUNCTION crm.team_roles() RETURNS SETOF pg_catalog.oid
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH RECURSIVE team (member, depth) AS (
        SELECT r.oid, 0 FROM pg_catalog.pg_roles AS r
         WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER
        UNION
        SELECT l.member::pg_catalog.oid, t.depth OPERATOR(pg_catalog.+) 1
          FROM crm.reporting_line AS l JOIN team AS t ON l.manager::pg_catalog.oid OPERATOR(pg_catalog.=) t.member
         WHERE t.depth OPERATOR(pg_catalog.<) 64
           AND pg_catalog.pg_has_role(CURRENT_USER, 'crm_manager', 'USAGE'))
    SELECT DISTINCT team.member FROM team;
END;
COMMENT ON FUNCTION crm.team_roles() IS 'The current role and, for a member of crm_manager, every role below it in crm.reporting_line: the owners whose rows it may see and change';

-- What a written row may point at (see src/sharing.c): pointing a deal at an
-- account, or linking a contact to an account, would share it; so the caller
-- must see it already, unless convert_lead is attaching the lead's deal to
-- the existing account or contact its duplicate search found.
CREATE FUNCTION crm.may_reference_account(account_id bigint) RETURNS boolean
    AS 'MODULE_PATHNAME', 'crm_may_reference_account'
    LANGUAGE C STABLE;
COMMENT ON FUNCTION crm.may_reference_account(bigint) IS 'True when the calling role sees the account (or crm.convert_lead is attaching a deal to it): the condition for pointing an opportunity at it';
CREATE FUNCTION crm.may_reference_contact(contact_id bigint) RETURNS boolean
    AS 'MODULE_PATHNAME', 'crm_may_reference_contact'
    LANGUAGE C STABLE;
CREATE FUNCTION crm.may_link_account(account_id bigint) RETURNS boolean
    AS 'MODULE_PATHNAME', 'crm_may_link_account'
    LANGUAGE C STABLE;
COMMENT ON FUNCTION crm.may_link_account(bigint) IS 'True when the calling role''s team owns the account (or crm.convert_lead is linking a contact to it): the condition for adding a contact link to it';
COMMENT ON FUNCTION crm.may_reference_contact(bigint) IS 'True when the calling role sees the contact (or crm.convert_lead is linking it): the condition for linking it to an account';

-- Policies.  Permissive policies are OR-ed: an admin passes crm_admin_all,
-- an analyst crm_analyst_read, everybody else the owner / parent policies.
DO $policies$
DECLARE
    t text;
    team constant text := 'owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))';
    rule text[];
    write_check text;
    account_owned constant text := 'EXISTS (SELECT 1 FROM crm.account AS p WHERE p.id OPERATOR(pg_catalog.=) account_id'
        || ' AND p.owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles())))';
    member_lead_owned constant text := 'EXISTS (SELECT 1 FROM crm.lead AS p WHERE p.id OPERATOR(pg_catalog.=) lead_id'
        || ' AND p.owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles())))';
    member_contact_owned constant text := 'EXISTS (SELECT 1 FROM crm.contact AS p WHERE p.id OPERATOR(pg_catalog.=) contact_id'
        || ' AND p.owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles())))';
BEGIN
    -- every protected table: admins everything, analysts read
    FOREACH t IN ARRAY ARRAY['account', 'contact', 'account_contact', 'lead', 'opportunity',
                             'opportunity_line_item', 'quote', 'quote_line_item', 'sales_order',
                             'sales_order_item', 'activity', 'activity_participant', 'campaign_member',
                             'lead_status_history', 'opportunity_history', 'quote_approval', 'change_log',
                             'pipeline_aggregate', 'account_aggregate', 'campaign_opportunity_aggregate',
                             'campaign_lead_aggregate']
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE crm.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE pg_catalog.format('CREATE POLICY crm_admin_all ON crm.%I TO crm_admin USING (true) WITH CHECK (true)', t);
        EXECUTE pg_catalog.format('CREATE POLICY crm_analyst_read ON crm.%I FOR SELECT TO crm_analyst USING (true)', t);
    END LOOP;

    -- rows owned by the team: read and write; a row can only be given to
    -- (inserted for, reassigned to) a member of the team
    FOREACH t IN ARRAY ARRAY['account', 'contact', 'lead', 'opportunity', 'quote', 'sales_order', 'activity']
    LOOP
        -- a deal shares its account (sharing rule): it may point only at one the caller sees
        -- a quote may name only a deal the caller sees (else it could pin another rep's deal)
        write_check := CASE t
            WHEN 'opportunity' THEN team || ' AND crm.may_reference_account(account_id)'
            -- a contact's primary account lists it: only an account the caller sees
            WHEN 'contact' THEN team || ' AND crm.may_reference_account(account_id)'
            WHEN 'quote' THEN team || ' AND crm.may_reference_account(account_id)'
                 || ' AND EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id)'
            ELSE team END;
        EXECUTE pg_catalog.format('CREATE POLICY crm_team_select ON crm.%I FOR SELECT TO crm_manager, crm_sales USING (%s)', t, team);
        EXECUTE pg_catalog.format('CREATE POLICY crm_team_insert ON crm.%I FOR INSERT TO crm_manager, crm_sales WITH CHECK (%s)', t, write_check);
        EXECUTE pg_catalog.format('CREATE POLICY crm_team_update ON crm.%I FOR UPDATE TO crm_manager, crm_sales USING (%s) WITH CHECK (%s)', t, team, write_check);
        EXECUTE pg_catalog.format('CREATE POLICY crm_team_delete ON crm.%I FOR DELETE TO crm_manager, crm_sales USING (%s)', t, team);
    END LOOP;

    -- child rows follow their parent (whose own policies apply inside EXISTS)
    FOREACH rule SLICE 1 IN ARRAY ARRAY[
        ['opportunity_line_item', 'EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id)'],
        ['quote_line_item', 'EXISTS (SELECT 1 FROM crm.quote AS p WHERE p.id OPERATOR(pg_catalog.=) quote_id)'],
        ['sales_order_item', 'EXISTS (SELECT 1 FROM crm.sales_order AS p WHERE p.id OPERATOR(pg_catalog.=) order_id)'],
        ['activity_participant', 'EXISTS (SELECT 1 FROM crm.activity AS p WHERE p.id OPERATOR(pg_catalog.=) activity_id)']]
    LOOP
        EXECUTE pg_catalog.format('CREATE POLICY crm_parent_all ON crm.%I TO crm_manager, crm_sales USING (%s) WITH CHECK (%s)',
                                  rule[1], rule[2], rule[2]);
    END LOOP;

    -- a link shares the contact and the account with each other's readers:
    -- both ends must be ones the caller sees (sharing.c)
    -- and only the account's side (its owner's team, or the link's owner) changes them
    EXECUTE 'CREATE POLICY crm_parent_select ON crm.account_contact FOR SELECT TO crm_manager, crm_sales'
         || ' USING (EXISTS (SELECT 1 FROM crm.account AS p WHERE p.id OPERATOR(pg_catalog.=) account_id))';
    EXECUTE pg_catalog.format('CREATE POLICY crm_link_insert ON crm.account_contact FOR INSERT TO crm_manager, crm_sales'
         || ' WITH CHECK (%s AND crm.may_link_account(account_id) AND crm.may_reference_contact(contact_id))', team);
    EXECUTE pg_catalog.format('CREATE POLICY crm_link_update ON crm.account_contact FOR UPDATE TO crm_manager, crm_sales'
         || ' USING (%s OR %s) WITH CHECK (%s AND crm.may_link_account(account_id) AND crm.may_reference_contact(contact_id))',
         team, account_owned, team);
    EXECUTE pg_catalog.format('CREATE POLICY crm_link_delete ON crm.account_contact FOR DELETE TO crm_manager, crm_sales'
         || ' USING (%s OR %s)', team, account_owned);

    -- campaign members: readable with their lead or contact; changed by the
    -- member row's owner or the owner of its lead or contact
    EXECUTE 'CREATE POLICY crm_parent_select ON crm.campaign_member FOR SELECT TO crm_manager, crm_sales'
         || ' USING (EXISTS (SELECT 1 FROM crm.lead AS p WHERE p.id OPERATOR(pg_catalog.=) lead_id)'
         || ' OR EXISTS (SELECT 1 FROM crm.contact AS p WHERE p.id OPERATOR(pg_catalog.=) contact_id))';
    EXECUTE pg_catalog.format('CREATE POLICY crm_member_insert ON crm.campaign_member FOR INSERT TO crm_manager, crm_sales'
         || ' WITH CHECK (%s AND (%s OR %s))', team, member_lead_owned, member_contact_owned);
    EXECUTE pg_catalog.format('CREATE POLICY crm_member_update ON crm.campaign_member FOR UPDATE TO crm_manager, crm_sales'
         || ' USING (%s OR %s OR %s) WITH CHECK (%s AND (%s OR %s))',
         team, member_lead_owned, member_contact_owned, team, member_lead_owned, member_contact_owned);
    EXECUTE pg_catalog.format('CREATE POLICY crm_member_delete ON crm.campaign_member FOR DELETE TO crm_manager, crm_sales'
         || ' USING (%s OR %s OR %s)', team, member_lead_owned, member_contact_owned);

    -- history follows its record; the change log is the audit trail:
    -- managers read what their team did (admins everything, above)
    FOREACH rule SLICE 1 IN ARRAY ARRAY[
        ['lead_status_history', 'EXISTS (SELECT 1 FROM crm.lead AS p WHERE p.id OPERATOR(pg_catalog.=) lead_id)'],
        ['opportunity_history', 'EXISTS (SELECT 1 FROM crm.opportunity AS p WHERE p.id OPERATOR(pg_catalog.=) opportunity_id)'],
        ['quote_approval', 'EXISTS (SELECT 1 FROM crm.quote AS p WHERE p.id OPERATOR(pg_catalog.=) quote_id)'],
        ['change_log', 'changed_by::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))']]
    LOOP
        EXECUTE pg_catalog.format('CREATE POLICY crm_parent_select ON crm.%I FOR SELECT TO crm_manager, crm_sales USING (%s)',
                                  rule[1], rule[2]);
    END LOOP;

    -- aggregates: a rep reads their own figures, a manager their team's
    FOREACH t IN ARRAY ARRAY['pipeline_aggregate', 'account_aggregate', 'campaign_opportunity_aggregate',
                             'campaign_lead_aggregate']
    LOOP
        EXECUTE pg_catalog.format('CREATE POLICY crm_team_select ON crm.%I FOR SELECT TO crm_manager, crm_sales USING (%s)', t, team);
    END LOOP;
END
$policies$;

-- The sharing rule: accounts on which the role sees an opportunity or a
-- lead; contacts on an account the role sees (read only).
CREATE POLICY crm_shared_select ON crm.account FOR SELECT TO crm_manager, crm_sales
    USING (EXISTS (SELECT 1 FROM crm.opportunity AS o WHERE o.account_id OPERATOR(pg_catalog.=) account.id)
        OR EXISTS (SELECT 1 FROM crm.lead AS l WHERE l.account_id OPERATOR(pg_catalog.=) account.id));
CREATE POLICY crm_shared_select ON crm.contact FOR SELECT TO crm_manager, crm_sales
    USING (EXISTS (SELECT 1 FROM crm.account AS a WHERE a.id OPERATOR(pg_catalog.=) contact.account_id)
        OR EXISTS (SELECT 1 FROM crm.account_contact AS ac WHERE ac.contact_id OPERATOR(pg_catalog.=) contact.id));

-- The audit trail (crm.change_log: who changed what and when on accounts,
-- contacts, leads, opportunities, quotes, orders, products and prices) is
-- append-only: no UPDATE, DELETE or TRUNCATE, whoever asks.
CREATE FUNCTION crm.audit_append_only() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_audit_append_only'
    LANGUAGE C;
COMMENT ON FUNCTION crm.audit_append_only() IS 'BEFORE UPDATE/DELETE/TRUNCATE trigger on crm.change_log: refuses every change (SQLSTATE ZC602)';
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON crm.change_log
    FOR EACH ROW EXECUTE FUNCTION crm.audit_append_only();
CREATE TRIGGER audit_append_only_truncate BEFORE TRUNCATE ON crm.change_log
    FOR EACH STATEMENT EXECUTE FUNCTION crm.audit_append_only();
-- also under session_replication_role = replica (a superuser's bulk mode)
ALTER TABLE crm.change_log ENABLE ALWAYS TRIGGER audit_append_only;
ALTER TABLE crm.change_log ENABLE ALWAYS TRIGGER audit_append_only_truncate;
--------------------------------------------------------------------------
-- Privileges and pg_dump
--
-- crm_sales, crm_manager and crm_admin work with the sales data; the catalog
-- (products, price books), stages, sources and settings are maintained by
-- crm_admin; campaigns by managers and admins.  History, approval and audit
-- tables are written only by the extension's triggers and functions (as the
-- extension owner): users read them.  Every function that changes state
-- through a guarded path is revoked from PUBLIC.
--------------------------------------------------------------------------
DO $grants$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'crm.convert_lead(bigint, bigint, bigint, boolean, text, regrole, boolean)',
        'crm.create_quote(bigint, text, date, numeric, numeric)',
        'crm.submit_quote(bigint, text)',
        'crm.approve_quote(bigint, text)',
        'crm.reject_quote(bigint, text)',
        'crm.sync_quote(bigint)',
        'crm.create_order(bigint, text)',
        'crm.activate_order(bigint)',
        'crm.cancel_order(bigint, text)',
        'crm.claim_due_reminders(integer, timestamptz)',
        'crm.verify_aggregates()']
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO crm_admin, crm_manager, crm_sales', f);
    END LOOP;
END
$grants$;

GRANT SELECT, INSERT, UPDATE, DELETE ON
    crm.account, crm.contact, crm.account_contact, crm.lead, crm.opportunity,
    crm.opportunity_line_item, crm.quote, crm.quote_line_item, crm.sales_order, crm.sales_order_item,
    crm.activity, crm.activity_participant, crm.campaign_member
    TO crm_admin, crm_manager, crm_sales;
GRANT SELECT ON
    crm.lead_source, crm.opportunity_stage, crm.product, crm.price_book, crm.price_book_entry,
    crm.settings, crm.quote_transition, crm.order_transition, crm.campaign
    TO crm_admin, crm_manager, crm_sales, crm_analyst;
GRANT INSERT, UPDATE, DELETE ON
    crm.lead_source, crm.opportunity_stage, crm.product, crm.price_book, crm.price_book_entry
    TO crm_admin;
GRANT UPDATE ON crm.settings TO crm_admin;
GRANT SELECT ON crm.reporting_line TO crm_admin, crm_manager, crm_sales, crm_analyst;
GRANT INSERT, UPDATE, DELETE ON crm.reporting_line TO crm_admin;
GRANT INSERT, UPDATE, DELETE ON crm.campaign TO crm_admin, crm_manager;
-- Aggregates: read by everyone working with reports, written by the triggers
-- only; the rebuild is an admin's.
GRANT SELECT ON crm.pipeline_aggregate, crm.account_aggregate, crm.campaign_opportunity_aggregate,
    crm.campaign_lead_aggregate, crm.pipeline_totals, crm.pipeline_actual, crm.aggregates_compared
    TO crm_admin, crm_manager, crm_sales, crm_analyst;
REVOKE ALL ON FUNCTION crm.rebuild_aggregates() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.rebuild_aggregates() TO crm_admin;
REVOKE ALL ON FUNCTION crm.team_roles(), crm.may_reference_account(bigint), crm.may_reference_contact(bigint),
    crm.may_link_account(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.team_roles(), crm.may_reference_account(bigint), crm.may_reference_contact(bigint),
    crm.may_link_account(bigint)
    TO crm_admin, crm_manager, crm_sales, crm_analyst;
REVOKE ALL ON FUNCTION crm.compact_aggregates() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.compact_aggregates() TO crm_admin;
GRANT EXECUTE ON FUNCTION crm.verify_aggregates() TO crm_analyst;
GRANT USAGE ON SEQUENCE crm.sales_order_number_seq TO crm_admin, crm_manager, crm_sales;
-- History and approvals: read-only for users.  The change log keeps the
-- values of deleted rows (personal data), so only admins and managers read it.
GRANT SELECT ON crm.lead_status_history, crm.opportunity_history, crm.quote_approval
    TO crm_admin, crm_manager, crm_sales;
GRANT SELECT ON crm.change_log, crm.lead_update_log TO crm_admin, crm_manager;

-- Trigger functions are the extension's own: nobody attaches them elsewhere
-- (they also refuse to fire outside schema crm).
DO $triggers$
DECLARE
    f pg_catalog.regprocedure;
BEGIN
    FOR f IN SELECT p.oid FROM pg_catalog.pg_proc AS p
              WHERE p.pronamespace OPERATOR(pg_catalog.=) 'crm'::pg_catalog.regnamespace
                AND p.prorettype OPERATOR(pg_catalog.=) 'pg_catalog.trigger'::pg_catalog.regtype
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$triggers$;
-- Views (security_invoker: what each role sees of them is what it sees of the tables).
GRANT SELECT ON crm.overdue_task, crm.overdue_tasks_by_owner, crm.lead_follow_up
    TO crm_admin, crm_manager, crm_sales;
GRANT SELECT ON crm.campaign_performance, crm.account_rollup,
    crm.sales_funnel, crm.lead_conversion_rates, crm.pipeline_by_stage, crm.forecast_by_month,
    crm.sales_performance, crm.stage_velocity, crm.quote_to_order
    TO crm_admin, crm_manager, crm_sales, crm_analyst;
-- Analysts read the BI views.  The views are security_invoker, so an analyst
-- needs SELECT on the columns they read: granted column by column, none of
-- them personal (no names of people, e-mail addresses, phone numbers,
-- descriptions or notes).
GRANT SELECT (id, status, source, owner, campaign_id, created_at) ON crm.lead TO crm_analyst;
GRANT SELECT (id, stage, amount, probability, close_date, closed_at, owner, account_id, campaign_id, created_at)
    ON crm.opportunity TO crm_analyst;
GRANT SELECT (id, opportunity_id, old_stage, new_stage, changed_at) ON crm.opportunity_history TO crm_analyst;
GRANT SELECT (id, status, created_at) ON crm.quote TO crm_analyst;
GRANT SELECT (id, quote_id, total) ON crm.sales_order TO crm_analyst;
GRANT SELECT (id, name, owner) ON crm.account TO crm_analyst;
GRANT SELECT (account_id, completed_at) ON crm.activity TO crm_analyst;

-- pg_dump dumps every row of every table of the extension and the position
-- of every sequence: user data, the rows CREATE EXTENSION seeds (which admins
-- may change: stages, sources, transitions, settings, the standard price
-- book), and the aggregates' stripes, so a restored database reads the same
-- totals without a rebuild.  A restore runs with session_replication_role =
-- replica (README "Backup and restore"): the guards, history, timestamp and
-- aggregate triggers then leave the rows as dumped, and foreign keys are not
-- checked row by row (lead and opportunity point at each other).
-- (One call per statement: each call updates the pg_extension row.)
DO $dump$
DECLARE
    t pg_catalog.regclass;
BEGIN
    FOR t IN
        SELECT c.oid::pg_catalog.regclass
          FROM pg_catalog.pg_class AS c
         WHERE c.relnamespace OPERATOR(pg_catalog.=) 'crm'::pg_catalog.regnamespace
           AND c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'S']::"char"[])
         ORDER BY c.relname
    LOOP
        PERFORM pg_catalog.pg_extension_config_dump(t, '');
    END LOOP;
END
$dump$;

-- Restoring: CREATE EXTENSION runs first, under session_replication_role =
-- replica, and the dump then brings the seeded rows as they were when it was
-- taken; the seeds this script inserted would collide with them.  So in that
-- mode (only a superuser can set it) the script leaves the seeded tables
-- empty.
DO $restore$
BEGIN
    IF pg_catalog.current_setting('session_replication_role') OPERATOR(pg_catalog.=) 'replica' THEN
        DELETE FROM crm.lead_source;
        DELETE FROM crm.opportunity_stage;
        DELETE FROM crm.quote_transition;
        DELETE FROM crm.order_transition;
        DELETE FROM crm.settings;
        DELETE FROM crm.price_book;
    END IF;
END
$restore$;
