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

CREATE FUNCTION crm_internal.campaign_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_campaign_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.campaign_guard() IS 'BEFORE row trigger on crm.campaign: refuses a parent that would make a cycle; hierarchy changes are serialised';
CREATE TRIGGER campaign_guard BEFORE INSERT OR UPDATE OF parent_id ON crm.campaign
    FOR EACH ROW EXECUTE FUNCTION crm_internal.campaign_guard();
CREATE FUNCTION crm_internal.campaign_member_response() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_campaign_member_response'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.campaign_member_response() IS 'BEFORE row trigger on crm.campaign_member: stamps first_responded_at at the first response and keeps it from then on';
CREATE TRIGGER campaign_member_response BEFORE INSERT OR UPDATE ON crm.campaign_member
    FOR EACH ROW EXECUTE FUNCTION crm_internal.campaign_member_response();

