--------------------------------------------------------------------------
-- Quotas and attainment (issue 20 §2)
--
-- crm.quota: what an owner should win in a period, in a currency.  Admins
-- set everybody's, managers their team's (row-level security, the team of
-- crm.team_roles()); everybody reads the quotas they may see.  The periods
-- of one owner never overlap: the check (src/quotas.c) runs under the
-- extension's quota lock of that owner (src/locks.c), with a fresh snapshot;
-- writers of one owner's quotas queue, nobody else waits.
--
-- crm.quota_attainment (view, security_invoker): per quota the won amount,
-- open and weighted pipeline closing in the period, attainment and
-- coverage, all in the corporate currency (deals at the rate of their close
-- date, the quota at the rate of its period_start); plus a total row per
-- period (owner NULL) over the quotas the reader sees: a manager's team.
--------------------------------------------------------------------------

CREATE TABLE crm.quota (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner         regrole NOT NULL,
    period_start  date NOT NULL CONSTRAINT quota_period_start_finite CHECK (pg_catalog.isfinite(period_start)),
    period_end    date NOT NULL CONSTRAINT quota_period_end_finite CHECK (pg_catalog.isfinite(period_end)),
    amount        numeric(16,2) NOT NULL
                  CONSTRAINT quota_amount_positive CHECK (amount OPERATOR(pg_catalog.>) 0
                      AND amount OPERATOR(pg_catalog.<>) 'NaN'::pg_catalog.numeric),
    currency      text NOT NULL DEFAULT crm.corporate_currency()
                  CONSTRAINT quota_currency_fkey REFERENCES crm.currency (code),
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT quota_period CHECK (period_end OPERATOR(pg_catalog.>=) period_start)
);
COMMENT ON TABLE crm.quota IS 'Sales quotas: what an owner should win between period_start and period_end (both included); periods of one owner never overlap. Set by admins, and by managers for their team';
COMMENT ON COLUMN crm.quota.id IS 'Quota id, assigned by the database';
COMMENT ON COLUMN crm.quota.owner IS 'CRM user (database role) the quota is for';
COMMENT ON COLUMN crm.quota.period_start IS 'First day of the period';
COMMENT ON COLUMN crm.quota.period_end IS 'Last day of the period (included)';
COMMENT ON COLUMN crm.quota.amount IS 'Amount to win in the period, > 0, in currency';
COMMENT ON COLUMN crm.quota.currency IS 'Currency of the amount (default: the corporate currency)';
COMMENT ON COLUMN crm.quota.created_at IS 'When the quota was created; set by the database';
COMMENT ON COLUMN crm.quota.updated_at IS 'When the quota was last changed; set by the database';
CREATE INDEX quota_owner_period_idx ON crm.quota (owner, period_start);
COMMENT ON INDEX crm.quota_owner_period_idx IS 'Quotas by owner and period: the overlap check and attainment per owner';
CREATE INDEX quota_currency_idx ON crm.quota (currency);
COMMENT ON INDEX crm.quota_currency_idx IS 'Quotas by currency: deleting a currency checks its quotes without reading every quota';

-- No two periods of one owner overlap (23P01): the extension's lock of the
-- owner's quotas, then a search of every quota of the owner (as the
-- extension owner) under a fresh snapshot; REPEATABLE READ: 40001 when a
-- quota committed since the snapshot overlaps.  An overlapping quota the
-- writer cannot see is refused as row-level security refuses (42501).  A
-- quota in a currency without a rate on its first day is refused (ZC120):
-- the attainment report would fail for everybody who sees it.
CREATE FUNCTION crm_internal.quota_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'crm_quota_guard'
    LANGUAGE C;
COMMENT ON FUNCTION crm_internal.quota_guard() IS 'BEFORE trigger on crm.quota: the periods of one owner never overlap (23P01); the currency has a rate on period_start (ZC120)';
CREATE TRIGGER quota_guard BEFORE INSERT OR UPDATE OF owner, period_start, period_end, currency ON crm.quota
    FOR EACH ROW EXECUTE FUNCTION crm_internal.quota_guard();
REVOKE ALL ON FUNCTION crm_internal.quota_guard() FROM PUBLIC;
CREATE TRIGGER stamp_row BEFORE INSERT OR UPDATE ON crm.quota
    FOR EACH ROW EXECUTE FUNCTION crm_internal.stamp_row();

ALTER TABLE crm.quota ENABLE ROW LEVEL SECURITY;
CREATE POLICY crm_admin_all ON crm.quota TO crm_admin USING (true) WITH CHECK (true);
CREATE POLICY crm_analyst_read ON crm.quota FOR SELECT TO crm_analyst USING (true);
CREATE POLICY crm_team_select ON crm.quota FOR SELECT TO crm_manager, crm_sales
    USING (owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles())));
-- a manager sets the quotas of the team below them, not their own
CREATE POLICY crm_manager_write ON crm.quota TO crm_manager
    USING (owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))
           AND owner::pg_catalog.oid OPERATOR(pg_catalog.<>) (SELECT r.oid FROM pg_catalog.pg_roles AS r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER))
    WITH CHECK (owner::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT crm.team_roles()))
           AND owner::pg_catalog.oid OPERATOR(pg_catalog.<>) (SELECT r.oid FROM pg_catalog.pg_roles AS r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER));
GRANT SELECT ON crm.quota TO crm_admin, crm_manager, crm_sales, crm_analyst;
GRANT INSERT, UPDATE, DELETE ON crm.quota TO crm_admin, crm_manager;

-- Attainment: per quota, and per period over the quotas the reader sees.
CREATE VIEW crm.quota_attainment WITH (security_invoker = true) AS
    WITH per_quota AS (
        SELECT q.owner, q.period_start, q.period_end,
               q.amount OPERATOR(pg_catalog.*) crm.exchange_rate_on(q.currency, q.period_start) AS quota,
               COALESCE(d.won, 0) AS won, COALESCE(d.open, 0) AS open, COALESCE(d.weighted, 0) AS weighted
          FROM crm.quota AS q
          LEFT JOIN LATERAL (
               SELECT pg_catalog.sum(o.amount OPERATOR(pg_catalog.*) r.rate) FILTER (WHERE s.is_won) AS won,
                      pg_catalog.sum(o.amount OPERATOR(pg_catalog.*) r.rate) FILTER (WHERE NOT s.is_closed) AS open,
                      pg_catalog.sum(pg_catalog.round(o.amount OPERATOR(pg_catalog.*) COALESCE(o.probability, 0)
                                                      OPERATOR(pg_catalog./) 100, 2) OPERATOR(pg_catalog.*) r.rate)
                          FILTER (WHERE NOT s.is_closed) AS weighted
                 FROM crm.opportunity AS o
                 JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) o.stage
                CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(o.currency, o.close_date) AS rate) AS r
                WHERE o.owner OPERATOR(pg_catalog.=) q.owner
                  AND o.close_date BETWEEN q.period_start AND q.period_end
                  AND (s.is_won OR NOT s.is_closed)) AS d ON true)
    SELECT pg_catalog.pg_get_userbyid(p.owner)::text AS owner, p.period_start, p.period_end,
           pg_catalog.round(pg_catalog.sum(p.quota), 2) AS quota,
           pg_catalog.round(pg_catalog.sum(p.won), 2) AS won_amount,
           pg_catalog.round(pg_catalog.sum(p.won) OPERATOR(pg_catalog./) pg_catalog.sum(p.quota), 4) AS attainment,
           pg_catalog.round(pg_catalog.sum(p.open), 2) AS open_pipeline,
           pg_catalog.round(pg_catalog.sum(p.weighted), 2) AS weighted_pipeline,
           CASE WHEN pg_catalog.sum(p.quota) OPERATOR(pg_catalog.>) pg_catalog.sum(p.won)
                THEN pg_catalog.round(pg_catalog.sum(p.open) OPERATOR(pg_catalog./)
                                      (pg_catalog.sum(p.quota) OPERATOR(pg_catalog.-) pg_catalog.sum(p.won)), 4)
           END AS pipeline_coverage
      FROM per_quota AS p
     GROUP BY GROUPING SETS ((p.owner, p.period_start, p.period_end), (p.period_start, p.period_end));
COMMENT ON VIEW crm.quota_attainment IS 'Quota attainment per owner and period, and a total row per period (owner NULL) over the quotas the reader sees (a manager: the team); amounts in the corporate currency, deals at the rate of their close date, quotas at the rate of their first day';
COMMENT ON COLUMN crm.quota_attainment.owner IS 'Quota owner: the role''s name, as text (crm.quota.owner is a regrole); NULL on the total row of the period';
COMMENT ON COLUMN crm.quota_attainment.period_start IS 'First day of the period';
COMMENT ON COLUMN crm.quota_attainment.period_end IS 'Last day of the period';
COMMENT ON COLUMN crm.quota_attainment.quota IS 'The quota, in the corporate currency';
COMMENT ON COLUMN crm.quota_attainment.won_amount IS 'Amount of the deals won by the owner with a close date in the period (that the reader sees)';
COMMENT ON COLUMN crm.quota_attainment.attainment IS 'won_amount / quota';
COMMENT ON COLUMN crm.quota_attainment.open_pipeline IS 'Amount of the open deals of the owner closing in the period';
COMMENT ON COLUMN crm.quota_attainment.weighted_pipeline IS 'Their probability-weighted amount';
COMMENT ON COLUMN crm.quota_attainment.pipeline_coverage IS 'open_pipeline / (quota - won_amount); NULL once the quota is reached';
GRANT SELECT ON crm.quota_attainment TO crm_admin, crm_manager, crm_sales, crm_analyst;
