--------------------------------------------------------------------------
-- Loss reasons and contact roles (issue 20 §5)
--
-- A lost deal names a reason from crm.loss_reason (loss_reason_code, checked
-- by crm_internal.opportunity_lifecycle: required in a lost stage, active when newly
-- chosen, cleared when the deal is not lost); the free text loss_reason
-- stays as a comment.  crm.loss_analysis counts lost deals and their amount
-- by reason, owner and month of close.
--
-- crm.opportunity_contact_role lists the people of a deal and their roles;
-- at most one is primary, and the primary is opportunity.contact_id: C
-- triggers (src/contact_roles.c) keep the two in step from either side.
--------------------------------------------------------------------------

CREATE TABLE crm.loss_reason (
    code    text PRIMARY KEY
            CONSTRAINT loss_reason_code_format CHECK (code OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]*$'),
    label   text NOT NULL
            CONSTRAINT loss_reason_label_not_blank CHECK (pg_catalog.btrim(label) OPERATOR(pg_catalog.<>) ''),
    active  boolean NOT NULL DEFAULT true
);
COMMENT ON TABLE crm.loss_reason IS 'Why deals are lost: the reasons a lost opportunity chooses from (loss_reason_code); maintained by admins, read by everyone';
COMMENT ON COLUMN crm.loss_reason.code IS 'Stable code of the reason (lower case, e.g. price, no_budget); never changes once deals use it';
COMMENT ON COLUMN crm.loss_reason.label IS 'Name of the reason shown to users and in reports';
COMMENT ON COLUMN crm.loss_reason.active IS 'Whether a deal lost now may choose it; deals already lost keep an inactive reason';

-- the seeds; a restore (session_replication_role = replica) brings its own rows
INSERT INTO crm.loss_reason (code, label)
SELECT v.code, v.label
  FROM (VALUES ('price', 'Price'), ('competitor', 'Lost to a competitor'), ('no_budget', 'No budget'),
               ('no_decision', 'No decision'), ('timing', 'Timing'), ('product_fit', 'Product fit'),
               ('other', 'Other')) AS v (code, label)
 WHERE pg_catalog.current_setting('session_replication_role') OPERATOR(pg_catalog.<>) 'replica';

ALTER TABLE crm.opportunity
    ADD COLUMN loss_reason_code text CONSTRAINT opportunity_loss_reason_code_fkey REFERENCES crm.loss_reason (code),
    ADD COLUMN competitor text;
COMMENT ON COLUMN crm.opportunity.loss_reason_code IS 'Why the deal was lost (crm.loss_reason.code): required in a lost stage, empty otherwise (cleared by the database when the deal is not lost)';
COMMENT ON COLUMN crm.opportunity.competitor IS 'Competitor the deal was lost to, if known; kept only while the deal is lost';
COMMENT ON COLUMN crm.opportunity.loss_reason IS 'Comment on why the deal was lost (free text, optional); the reason itself is loss_reason_code';
CREATE INDEX opportunity_loss_reason_code_idx ON crm.opportunity (loss_reason_code) WHERE loss_reason_code IS NOT NULL;
COMMENT ON INDEX crm.opportunity_loss_reason_code_idx IS 'Lost deals by reason: deleting a reason checks its deals without reading every opportunity';

-- crm.loss_analysis (lost deals by reason, in the corporate currency) is in
-- 90_reports.sql: it converts at the exchange rates of 72_currencies.sql.

CREATE TABLE crm.opportunity_contact_role (
    opportunity_id  bigint NOT NULL CONSTRAINT opportunity_contact_role_opportunity_id_fkey
                    REFERENCES crm.opportunity (id) ON DELETE CASCADE,
    contact_id      bigint NOT NULL CONSTRAINT opportunity_contact_role_contact_id_fkey
                    REFERENCES crm.contact (id) ON DELETE CASCADE,
    role            text NOT NULL DEFAULT 'Other'
                    CONSTRAINT opportunity_contact_role_role_check CHECK (role OPERATOR(pg_catalog.=) ANY
                        (ARRAY['Decision Maker', 'Economic Buyer', 'Influencer', 'Technical Evaluator', 'User', 'Other'])),
    is_primary      boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (opportunity_id, contact_id)
);
COMMENT ON TABLE crm.opportunity_contact_role IS 'The people of a deal and the part each plays; the primary one is the opportunity''s contact (kept in step by the database)';
COMMENT ON COLUMN crm.opportunity_contact_role.opportunity_id IS 'The deal';
COMMENT ON COLUMN crm.opportunity_contact_role.contact_id IS 'The person';
COMMENT ON COLUMN crm.opportunity_contact_role.role IS 'Their role: Decision Maker, Economic Buyer, Influencer, Technical Evaluator, User or Other';
COMMENT ON COLUMN crm.opportunity_contact_role.is_primary IS 'Whether this is the deal''s primary contact (crm.opportunity.contact_id); at most one per deal, marking one unmarks the others';
COMMENT ON COLUMN crm.opportunity_contact_role.created_at IS 'When the person was added to the deal';
CREATE UNIQUE INDEX opportunity_contact_role_one_primary ON crm.opportunity_contact_role (opportunity_id) WHERE is_primary;
COMMENT ON INDEX crm.opportunity_contact_role_one_primary IS 'At most one primary contact per deal';
CREATE INDEX opportunity_contact_role_contact_id_idx ON crm.opportunity_contact_role (contact_id);
COMMENT ON INDEX crm.opportunity_contact_role_contact_id_idx IS 'Deals of a contact: deleting or merging a contact finds its roles without reading every role';

CREATE FUNCTION crm_internal.contact_role_sync() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_contact_role_sync'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.contact_role_sync() IS 'BEFORE INSERT OR UPDATE row trigger on crm.opportunity_contact_role: locks the deal; a row marked primary unmarks the others and becomes the deal''s contact_id; a primary row unmarked (or moved) clears it';
CREATE TRIGGER contact_role_sync BEFORE INSERT OR UPDATE ON crm.opportunity_contact_role
    FOR EACH ROW EXECUTE FUNCTION crm_internal.contact_role_sync();

CREATE FUNCTION crm_internal.contact_role_removed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_contact_role_removed'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.contact_role_removed() IS 'AFTER DELETE row trigger on crm.opportunity_contact_role: removing the primary row clears the deal''s contact_id (in a contact merge, the survivor''s row becomes primary instead)';
CREATE TRIGGER contact_role_removed AFTER DELETE ON crm.opportunity_contact_role
    FOR EACH ROW EXECUTE FUNCTION crm_internal.contact_role_removed();

CREATE FUNCTION crm_internal.opportunity_contact_sync() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_opportunity_contact_sync'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.opportunity_contact_sync() IS 'AFTER INSERT OR UPDATE OF contact_id row trigger on crm.opportunity: the contact becomes the deal''s primary contact role (added with role Other if missing), the previous primary is unmarked';
-- Queued only for a row whose contact it has to follow (an AFTER row trigger
-- costs every row of a bulk statement its queued event otherwise).
CREATE TRIGGER opportunity_contact_sync_insert AFTER INSERT ON crm.opportunity
    FOR EACH ROW WHEN (NEW.contact_id IS NOT NULL)
    EXECUTE FUNCTION crm_internal.opportunity_contact_sync();
CREATE TRIGGER opportunity_contact_sync_update AFTER UPDATE OF contact_id ON crm.opportunity
    FOR EACH ROW WHEN (OLD.contact_id IS DISTINCT FROM NEW.contact_id)
    EXECUTE FUNCTION crm_internal.opportunity_contact_sync();
