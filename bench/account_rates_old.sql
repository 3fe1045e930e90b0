-- bench/account_rates_old.sql: the "before" side of bench/account_rates.sh,
-- in the same database as the "after" (schema bench_old): crm.account_rollup
-- as main had it before session 35 (groups summed per account in a subquery
-- grouped by account_id, joined to the accounts; the owner column from
-- pg_get_userbyid()), and crm.top_accounts() reading it.  The rate edit's
-- "before" (every account settled again) is measured by the script with a
-- trigger calling crm_internal.account_settle_all() in place of the new ones.
CREATE SCHEMA bench_old;
GRANT USAGE ON SCHEMA bench_old TO PUBLIC;
CREATE VIEW bench_old.account_rollup WITH (security_invoker = true) AS
    SELECT ac.id AS account_id, ac.name, pg_catalog.pg_get_userbyid(ac.owner)::text AS owner,
           COALESCE(r.open_opportunities, 0) AS open_opportunities,
           COALESCE(r.open_amount, 0) AS open_amount,
           COALESCE(r.won_opportunities, 0) AS won_opportunities,
           COALESCE(r.won_amount, 0) AS won_amount,
           (SELECT pg_catalog.max(act.completed_at) FROM crm.activity AS act
             WHERE act.account_id OPERATOR(pg_catalog.=) ac.id) AS last_activity_at,
           r.currency, r.open_amount_in_currency, r.won_amount_in_currency
      FROM crm.account AS ac
      LEFT JOIN (
           SELECT g.account_id,
                  pg_catalog.sum(g.opportunities) FILTER (WHERE NOT g.is_closed) AS open_opportunities,
                  pg_catalog.round(pg_catalog.sum(g.amount OPERATOR(pg_catalog.*) g.rate) FILTER (WHERE NOT g.is_closed), 2) AS open_amount,
                  pg_catalog.sum(g.opportunities) FILTER (WHERE g.is_won) AS won_opportunities,
                  pg_catalog.round(pg_catalog.sum(g.amount OPERATOR(pg_catalog.*) g.rate) FILTER (WHERE g.is_won), 2) AS won_amount,
                  CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                       THEN pg_catalog.min(g.currency) END AS currency,
                  CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                       THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE NOT g.is_closed), 0) END AS open_amount_in_currency,
                  CASE WHEN pg_catalog.min(g.currency) OPERATOR(pg_catalog.=) pg_catalog.max(g.currency)
                       THEN COALESCE(pg_catalog.sum(g.amount) FILTER (WHERE g.is_won), 0) END AS won_amount_in_currency
             FROM (SELECT a.account_id, a.currency, s.is_closed, s.is_won,
                          pg_catalog.sum(a.opportunities) AS opportunities, pg_catalog.sum(a.amount) AS amount,
                          crm.exchange_rate_on(a.currency, NULLIF(a.close_month, 'infinity'::pg_catalog.date)) AS rate
                     FROM crm_internal.account_aggregate AS a
                     JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) a.stage
                    WHERE s.is_won OR NOT s.is_closed
                    GROUP BY a.account_id, a.stage, a.close_month, a.currency, s.is_closed, s.is_won
                   HAVING pg_catalog.sum(a.opportunities) OPERATOR(pg_catalog.<>) 0) AS g
            GROUP BY g.account_id) AS r
        ON r.account_id OPERATOR(pg_catalog.=) ac.id;
GRANT SELECT ON bench_old.account_rollup TO PUBLIC;
-- crm.top_accounts() over the old view (its body as installed, the view renamed)
SELECT pg_catalog.replace(pg_catalog.replace(pg_catalog.pg_get_functiondef('crm.top_accounts(text, integer, text)'::regprocedure),
                                             'FUNCTION crm.top_accounts(', 'FUNCTION bench_old.top_accounts('),
                          'FROM crm.account_rollup', 'FROM bench_old.account_rollup') \gexec
GRANT EXECUTE ON FUNCTION bench_old.top_accounts(text, integer, text) TO PUBLIC;
