--------------------------------------------------------------------------
-- Lead scoring and lead assignment (README "Lead scoring", "Lead assignment")
--
-- crm.lead.score is the sum of the points of the active scoring rules a lead
-- matches; one BEFORE INSERT OR UPDATE row trigger on crm.lead
-- (crm_internal.lead_score_and_route(), src/scoring.c and src/assignment.c) keeps it
-- and, on INSERT, gives a lead inserted without an owner (or owned by
-- crm_intake) the owner the first matching active assignment rule names: a
-- role, or the next member of a queue in round-robin order.  The score is
-- computed first, so a rule's min_score sees it.  Routed leads are listed
-- in crm.lead_assignment; one the inserter may not own is handed over by the
-- AFTER INSERT statement trigger crm_internal.lead_hand_over().
--------------------------------------------------------------------------

ALTER TABLE crm.lead ADD COLUMN score integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN crm.lead.score IS 'Lead score: the sum of the points of the active scoring rules (crm.scoring_rule) the lead matches; kept by the database on every insert and update, recomputed for every lead by crm.rescore_leads(); frozen once the lead is converted';
-- "without an explicit owner" is an owner left out: the trigger fills it
ALTER TABLE crm.lead ALTER COLUMN owner DROP DEFAULT;
-- Nullable in the catalog, so that code generators let inserts leave it out;
-- the lead_score_and_route trigger fills it and this check keeps it set.
ALTER TABLE crm.lead ALTER COLUMN owner DROP NOT NULL,
    ADD CONSTRAINT lead_owner_assigned CHECK (owner IS NOT NULL);
COMMENT ON COLUMN crm.lead.owner IS 'CRM user (database role) who owns the lead; when left out (or given as crm_intake) the assignment rules choose it, else the inserting role (see crm.assignment_rule)';

ALTER TABLE crm.settings ADD COLUMN default_lead_owner regrole;
COMMENT ON COLUMN crm.settings.default_lead_owner IS 'Owner of a lead inserted without an owner, or captured (owner crm_intake), that no assignment rule routes; NULL: the inserting role keeps it, and a captured lead stays with crm_intake (admins see it; crm.assign_lead() routes it later)';

CREATE TABLE crm.scoring_rule (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL
                 CONSTRAINT scoring_rule_name_not_blank CHECK (pg_catalog.btrim(name) OPERATOR(pg_catalog.<>) ''),
    active       boolean NOT NULL DEFAULT true,
    column_name  text NOT NULL,
    operator     text NOT NULL
                 CONSTRAINT scoring_rule_operator_valid
                 CHECK (operator OPERATOR(pg_catalog.=) ANY (ARRAY['=', '<>', '<', '<=', '>', '>=', 'contains', 'is null', 'is not null'])),
    value        text,
    points       integer NOT NULL
                 CONSTRAINT scoring_rule_points_range CHECK (points BETWEEN -1000 AND 1000)
);
COMMENT ON TABLE crm.scoring_rule IS 'Lead scoring rules: a lead matching a rule''s condition on one of its own columns gets its points; crm.lead.score is the sum. Written by admins; a rule naming an unknown column, a bad operator or a value of the wrong type is refused (ZC910). Scores follow rule changes after crm.rescore_leads()';
COMMENT ON COLUMN crm.scoring_rule.id IS 'Rule id, assigned by the database';
COMMENT ON COLUMN crm.scoring_rule.name IS 'What the rule rewards, e.g. "Software industry"';
COMMENT ON COLUMN crm.scoring_rule.active IS 'Only active rules give points';
COMMENT ON COLUMN crm.scoring_rule.column_name IS 'The lead column tested, e.g. industry, source, email, company, country, status, campaign_id (not id, owner, score, created_at, updated_at, converted_*)';
COMMENT ON COLUMN crm.scoring_rule.operator IS 'How the column is compared with value: =, <>, <, <=, >, >= (in the column type''s order), contains (case- and accent-insensitive substring of the text), is null, is not null (no value)';
COMMENT ON COLUMN crm.scoring_rule.value IS 'The value compared with, written as for the column''s type (e.g. Software, referral, 42); NULL exactly for is null / is not null';
COMMENT ON COLUMN crm.scoring_rule.points IS 'Points added to the score of a matching lead (-1000 to 1000; negative points lower it)';

CREATE TABLE crm.assignment_rule (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    priority     integer NOT NULL,
    active       boolean NOT NULL DEFAULT true,
    source       text CONSTRAINT assignment_rule_source_fkey REFERENCES crm.lead_source (code) ON UPDATE CASCADE ON DELETE CASCADE,
    country      text,
    industry     text,
    campaign_id  bigint CONSTRAINT assignment_rule_campaign_id_fkey REFERENCES crm.campaign (id) ON DELETE CASCADE,
    min_score    integer,
    assign_to    regrole,
    queue        text CONSTRAINT assignment_rule_queue_not_blank CHECK (pg_catalog.btrim(queue) OPERATOR(pg_catalog.<>) ''),
    CONSTRAINT assignment_rule_one_target CHECK ((assign_to IS NULL) OPERATOR(pg_catalog.<>) (queue IS NULL))
);
COMMENT ON TABLE crm.assignment_rule IS 'Lead assignment rules, tried by priority (lowest first, then id): the first active rule whose conditions a new lead meets and that yields an owner decides it. A NULL condition matches any lead. Written by admins';
COMMENT ON COLUMN crm.assignment_rule.id IS 'Rule id, assigned by the database; recorded in crm.lead_assignment';
COMMENT ON COLUMN crm.assignment_rule.priority IS 'Order in which rules are tried: lowest first; equal priorities by id';
COMMENT ON COLUMN crm.assignment_rule.active IS 'Only active rules assign leads';
COMMENT ON COLUMN crm.assignment_rule.source IS 'Condition: the lead''s source (crm.lead_source code); NULL = any';
COMMENT ON COLUMN crm.assignment_rule.country IS 'Condition: the lead''s country, compared case- and accent-insensitively; NULL = any';
COMMENT ON COLUMN crm.assignment_rule.industry IS 'Condition: the lead''s industry, compared case- and accent-insensitively; NULL = any';
COMMENT ON COLUMN crm.assignment_rule.campaign_id IS 'Condition: the campaign the lead came from; NULL = any';
COMMENT ON COLUMN crm.assignment_rule.min_score IS 'Condition: the lead''s score is at least this; NULL = any';
COMMENT ON COLUMN crm.assignment_rule.assign_to IS 'The owner this rule gives (exactly one of assign_to and queue is set)';
COMMENT ON COLUMN crm.assignment_rule.queue IS 'The queue (crm.assignment_queue_member.queue) whose next available member this rule gives, round-robin; when every member is inactive or at capacity the next rule is tried';
CREATE INDEX assignment_rule_campaign_id_idx ON crm.assignment_rule (campaign_id) WHERE campaign_id IS NOT NULL;
COMMENT ON INDEX crm.assignment_rule_campaign_id_idx IS 'Rules of a campaign: deleting a campaign finds them without reading every rule';
CREATE INDEX assignment_rule_source_idx ON crm.assignment_rule (source) WHERE source IS NOT NULL;
COMMENT ON INDEX crm.assignment_rule_source_idx IS 'Rules of a lead source: renaming or deleting a source finds them without reading every rule';

CREATE TABLE crm.assignment_queue_member (
    queue           text NOT NULL CONSTRAINT assignment_queue_member_queue_not_blank CHECK (pg_catalog.btrim(queue) OPERATOR(pg_catalog.<>) ''),
    member          regrole NOT NULL,
    active          boolean NOT NULL DEFAULT true,
    max_open_leads  integer CONSTRAINT assignment_queue_member_capacity_range CHECK (max_open_leads OPERATOR(pg_catalog.>=) 0),
    last_assigned   bigint,
    PRIMARY KEY (queue, member)
);
COMMENT ON TABLE crm.assignment_queue_member IS 'Members of the lead queues named by assignment rules: a queue gives each new lead to its active member who was assigned least recently (round-robin), skipping members at capacity. Written by admins';
COMMENT ON COLUMN crm.assignment_queue_member.queue IS 'Queue name, as in crm.assignment_rule.queue';
COMMENT ON COLUMN crm.assignment_queue_member.member IS 'A CRM user (database role) who receives leads from the queue';
COMMENT ON COLUMN crm.assignment_queue_member.active IS 'Inactive members are skipped (holidays, leavers)';
COMMENT ON COLUMN crm.assignment_queue_member.max_open_leads IS 'Capacity: the member is skipped while owning this many open leads (status other than Converted and Not Qualified); NULL = no limit';
COMMENT ON COLUMN crm.assignment_queue_member.last_assigned IS 'Round-robin position: the queue''s assignment number of the member''s last lead (NULL: none yet); written by the database only';

CREATE TABLE crm.lead_assignment (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_id         bigint NOT NULL CONSTRAINT lead_assignment_lead_id_fkey REFERENCES crm.lead (id) ON DELETE CASCADE,
    assigned_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    assigned_by     regrole NOT NULL,
    rule_id         bigint,
    queue           text,
    owner           regrole NOT NULL,
    previous_owner  regrole
);
COMMENT ON TABLE crm.lead_assignment IS 'Every lead assignment made by the assignment rules (on insert or by crm.assign_lead()), with the rule that made it; written only by the database';
COMMENT ON COLUMN crm.lead_assignment.id IS 'Entry id, in order of recording';
COMMENT ON COLUMN crm.lead_assignment.lead_id IS 'The lead';
COMMENT ON COLUMN crm.lead_assignment.assigned_at IS 'When it was assigned (transaction time)';
COMMENT ON COLUMN crm.lead_assignment.assigned_by IS 'The role that inserted the lead or called crm.assign_lead()';
COMMENT ON COLUMN crm.lead_assignment.rule_id IS 'The assignment rule that chose the owner (the rule may have been deleted since); NULL: no rule matched, the default owner applied';
COMMENT ON COLUMN crm.lead_assignment.queue IS 'The queue the owner was taken from, when the rule named one';
COMMENT ON COLUMN crm.lead_assignment.owner IS 'The owner given';
COMMENT ON COLUMN crm.lead_assignment.previous_owner IS 'The owner before (NULL for a lead inserted without one; crm_intake for a captured lead)';
CREATE INDEX lead_assignment_lead_id_idx ON crm.lead_assignment (lead_id, id);

-- the trigger functions
CREATE FUNCTION crm_internal.lead_score_and_route() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_lead_score_and_route'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.lead_score_and_route() IS 'BEFORE INSERT OR UPDATE row trigger on crm.lead: sets score from the active scoring rules (kept as is on a converted lead), then, on INSERT without an owner or with owner crm_intake, chooses the owner by the assignment rules';
CREATE TRIGGER lead_score_and_route BEFORE INSERT OR UPDATE ON crm.lead
    FOR EACH ROW EXECUTE FUNCTION crm_internal.lead_score_and_route();
CREATE FUNCTION crm_internal.lead_hand_over() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_lead_hand_over'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.lead_hand_over() IS 'AFTER INSERT statement trigger on crm.lead: records the statement''s routed leads in crm.lead_assignment and gives the ones the inserter could not own to their assigned owner';
CREATE TRIGGER lead_hand_over AFTER INSERT ON crm.lead
    FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.lead_hand_over();
CREATE FUNCTION crm_internal.scoring_rule_check() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_scoring_rule_check'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.scoring_rule_check() IS 'BEFORE INSERT OR UPDATE row trigger on crm.scoring_rule: refuses a rule on an unknown or reserved lead column, or with a value that is missing, superfluous or not of the column''s type (ZC910)';
CREATE TRIGGER scoring_rule_check BEFORE INSERT OR UPDATE ON crm.scoring_rule
    FOR EACH ROW EXECUTE FUNCTION crm_internal.scoring_rule_check();
CREATE FUNCTION crm_internal.lead_rules_changed() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_lead_rules_changed'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.lead_rules_changed() IS 'AFTER statement trigger on crm.scoring_rule, crm.assignment_rule and crm.settings: tells every session to read the rules again before its next lead';
DO $rules_changed$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['scoring_rule', 'assignment_rule', 'settings']
    LOOP
        EXECUTE pg_catalog.format('CREATE TRIGGER lead_rules_changed AFTER INSERT OR UPDATE OR DELETE ON crm.%I'
            ' FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.lead_rules_changed()', t);
        EXECUTE pg_catalog.format('CREATE TRIGGER lead_rules_changed_truncate AFTER TRUNCATE ON crm.%I'
            ' FOR EACH STATEMENT EXECUTE FUNCTION crm_internal.lead_rules_changed()', t);
    END LOOP;
END
$rules_changed$;

-- the functions
CREATE FUNCTION crm.lead_score_rules(lead crm.lead)
    RETURNS TABLE (rule_id bigint, rule_name text, points integer)
    AS 'MODULE_PATHNAME', 'crm_lead_score_rules'
    LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION crm.lead_score_rules(crm.lead) IS 'The active scoring rules a lead row matches, with their points (what crm.lead_score_detail shows)';
CREATE VIEW crm.lead_score_detail WITH (security_invoker = true) AS
    SELECT l.id AS lead_id, r.rule_id, r.rule_name, r.points
      FROM crm.lead AS l CROSS JOIN LATERAL crm.lead_score_rules(l) AS r;
COMMENT ON VIEW crm.lead_score_detail IS 'Which scoring rules give which lead how many points, by the current rules (the leads each role sees); after a rule change, crm.lead.score agrees once crm.rescore_leads() has run';
COMMENT ON COLUMN crm.lead_score_detail.lead_id IS 'The lead';
COMMENT ON COLUMN crm.lead_score_detail.rule_id IS 'The scoring rule it matches';
COMMENT ON COLUMN crm.lead_score_detail.rule_name IS 'The rule''s name';
COMMENT ON COLUMN crm.lead_score_detail.points IS 'The points the rule gives';

CREATE FUNCTION crm.rescore_leads() RETURNS bigint
    AS 'MODULE_PATHNAME', 'crm_rescore_leads'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.rescore_leads() IS 'Admins: recomputes the score of every lead that is not converted from the current scoring rules; returns how many scores changed (each change is an update: updated_at and the change log record it)';

CREATE FUNCTION crm.assign_lead(lead_id bigint) RETURNS regrole
    AS 'MODULE_PATHNAME', 'crm_assign_lead'
    LANGUAGE C VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION crm.assign_lead(bigint) IS 'Managers and admins: runs the assignment rules again for one lead the caller may change and gives it the owner they choose (recorded in crm.lead_assignment); returns the owner (unchanged when no rule and no default owner applies)';

-- rights: rules are admins'; managers read them; the log follows its lead
GRANT SELECT ON crm.scoring_rule, crm.assignment_rule, crm.assignment_queue_member TO crm_admin, crm_manager;
GRANT SELECT ON crm.scoring_rule TO crm_sales;
GRANT DELETE ON crm.scoring_rule, crm.assignment_rule, crm.assignment_queue_member TO crm_admin;
GRANT INSERT (name, active, column_name, operator, value, points),
    UPDATE (name, active, column_name, operator, value, points) ON crm.scoring_rule TO crm_admin;
GRANT INSERT (priority, active, source, country, industry, campaign_id, min_score, assign_to, queue),
    UPDATE (priority, active, source, country, industry, campaign_id, min_score, assign_to, queue)
    ON crm.assignment_rule TO crm_admin;
GRANT INSERT (queue, member, active, max_open_leads), UPDATE (queue, member, active, max_open_leads)
    ON crm.assignment_queue_member TO crm_admin;
GRANT SELECT ON crm.lead_assignment TO crm_admin, crm_manager, crm_sales;
GRANT SELECT ON crm.lead_score_detail TO crm_admin, crm_manager, crm_sales;
ALTER TABLE crm.lead_assignment ENABLE ROW LEVEL SECURITY;
CREATE POLICY crm_admin_all ON crm.lead_assignment TO crm_admin USING (true) WITH CHECK (true);
CREATE POLICY crm_parent_select ON crm.lead_assignment FOR SELECT TO crm_manager, crm_sales
    USING (EXISTS (SELECT 1 FROM crm.lead AS p WHERE p.id OPERATOR(pg_catalog.=) lead_id));
REVOKE ALL ON FUNCTION crm.lead_score_rules(crm.lead), crm.rescore_leads(), crm.assign_lead(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm.lead_score_rules(crm.lead) TO crm_admin, crm_manager, crm_sales;
GRANT EXECUTE ON FUNCTION crm.rescore_leads() TO crm_admin;
GRANT EXECUTE ON FUNCTION crm.assign_lead(bigint) TO crm_admin, crm_manager;
