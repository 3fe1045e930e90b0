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
CREATE INDEX contact_account_id_idx ON crm.contact (account_id) WHERE account_id IS NOT NULL;
COMMENT ON INDEX crm.contact_account_id_idx IS 'The contacts whose primary account is a given account: deleting an account clears them without reading every contact';

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
    -- set by the trigger furthest_step (31_furthest_step.sql); nullable so
    -- that insert types may leave it out
    furthest_status crm.lead_status
                    CONSTRAINT lead_furthest_status_set CHECK (furthest_status IS NOT NULL
                        AND furthest_status OPERATOR(pg_catalog.<>) 'Not Qualified'::crm.lead_status),
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
COMMENT ON COLUMN crm.lead.furthest_status IS 'The furthest working status the lead ever reached (New Lead < Processing < Following Up < In Transaction < Completed < Converted): what crm.sales_funnel counts. Not Qualified is an exit, never a furthest status: a lead keeps the furthest status it had, and one captured as Not Qualified has reached New Lead. Set by the database on every write (cannot be supplied or changed)';
CREATE INDEX lead_status_idx ON crm.lead (status);
CREATE INDEX lead_owner_idx ON crm.lead (owner);
CREATE INDEX lead_source_idx ON crm.lead (source);
COMMENT ON INDEX crm.lead_source_idx IS 'Leads by source: renaming or deleting a lead source finds its leads without reading every lead; conversion rates by source group from it';
CREATE INDEX lead_account_id_owner_idx ON crm.lead (account_id, owner) WHERE account_id IS NOT NULL;
COMMENT ON INDEX crm.lead_account_id_owner_idx IS 'Leads by account and owner: the sharing rule (may a role see this account?) is one index probe, however many leads the account has';
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
    updated_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- set by the trigger furthest_step (31_furthest_step.sql); nullable so
    -- that insert types may leave it out
    furthest_stage text
                 CONSTRAINT opportunity_furthest_stage_fkey REFERENCES crm.opportunity_stage (name) ON UPDATE CASCADE
                 CONSTRAINT opportunity_furthest_stage_set CHECK (furthest_stage IS NOT NULL)
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
COMMENT ON COLUMN crm.opportunity.furthest_stage IS 'The furthest stage the deal ever reached in pipeline order (open stages by sort_order, then won stages): what crm.sales_funnel counts. A lost stage is an exit, never a furthest stage: a lost deal keeps the furthest open stage it reached, one created lost has reached the first open stage; a won deal keeps its won stage if reopened. Follows a rename of the stage; set by the database on every write (cannot be supplied or changed)';
CREATE INDEX opportunity_account_id_owner_idx ON crm.opportunity (account_id, owner);
COMMENT ON INDEX crm.opportunity_account_id_owner_idx IS 'Deals by account and owner: the sharing rule (may a role see this account?) is one index probe, however many deals the account has';
CREATE INDEX opportunity_contact_id_idx ON crm.opportunity (contact_id);
CREATE INDEX opportunity_lead_id_idx ON crm.opportunity (lead_id) WHERE lead_id IS NOT NULL;
CREATE INDEX opportunity_stage_idx ON crm.opportunity (stage);
CREATE INDEX opportunity_furthest_stage_idx ON crm.opportunity (furthest_stage);
COMMENT ON INDEX crm.opportunity_furthest_stage_idx IS 'Deals by furthest stage: renaming a stage finds the deals whose furthest stage it is without reading every deal';
CREATE INDEX opportunity_owner_close_date_idx ON crm.opportunity (owner, close_date);
COMMENT ON INDEX crm.opportunity_owner_close_date_idx IS 'Deals by owner, and by owner and close date: a rep''s deals, and the deals of an owner closing in a quota period (crm.quota_attainment), by one index range scan';

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

-- COST: computing a key costs as much as a hundred operators; without it,
-- a plan made while a partial phone-key index looked empty (stale
-- statistics) may read the whole index and compute the key of every row
-- rather than look the key up (the duplicate search, duplicates.c).
CREATE FUNCTION crm.phone_key(phone text) RETURNS text
    AS 'MODULE_PATHNAME', 'crm_phone_key'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE COST 100;
COMMENT ON FUNCTION crm.phone_key(text) IS 'Digits that identify a phone number: punctuation, a leading international 00 and an extension (x12, ext. 12, #12) dropped, the last nine digits of a longer number; NULL under seven digits. "+1 (555) 014-2000" and "555.014.2000 x12" share a key';

CREATE FUNCTION crm.fold_text(t text) RETURNS text
    AS 'MODULE_PATHNAME', 'crm_fold_text'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION crm.fold_text(text) IS 'Text folded for matching and search: accents removed (unaccent), lower case, white space runs made one space and trimmed. "  Müller   GmbH" folds to "muller gmbh"';

CREATE INDEX account_company_match_key_idx ON crm.account (crm.company_match_key(name));
CREATE INDEX account_web_domain_idx ON crm.account (crm.web_domain(website)) WHERE website IS NOT NULL;
CREATE INDEX contact_email_lower_idx ON crm.contact (pg_catalog.lower(email)) WHERE email IS NOT NULL;

