#!/usr/bin/env bash
# bench/stage_renames.sh: what following stage renames costs the reports
# read from the history -- crm.pipeline_as_of(at) and the velocity
# recomputation crm_internal.stage_velocity_actual (crm.verify_aggregates()
# and crm.rebuild_aggregates() read it) -- against their bodies before
# renames were followed (kept below in schema bench_before), side by side.
#
#   bash bench/stage_renames.sh      SIZE=100000 ROUNDS=5
#
# One database: SIZE deals with their creation entries, half of them moved
# on (a second entry and a passage each).  Timed in interleaved rounds (the
# new body first in odd rounds), the median of the per-round ratios
# new / before: with no rename ever made, and after three renames (a chain
# of two and another stage).  The before bodies are exact only without
# renames; after them they are timed for the cost alone.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SIZE=${SIZE:-100000}; ROUNDS=${ROUNDS:-5}
build_and_install >&2
WORK=$(mktemp -d /tmp/crm-bench-rename.XXXXXX); chmod 755 "$WORK"
[ "$(id -u)" -ne 0 ] || chown "$(cluster_user)": "$WORK"
trap 'stop_cluster "$WORK/cluster"; rm -rf "$WORK"' EXIT
start_cluster "$WORK/cluster" >&2
make_db renames "$SIZE"
psql_q -d renames >/dev/null <<'SQL'
UPDATE crm.opportunity SET stage = 'Requirement' WHERE id % 2 = 0;
VACUUM ANALYZE;
CREATE SCHEMA bench_before;
-- crm.pipeline_as_of() of 0.7 before renames were followed, unchanged
CREATE FUNCTION bench_before.pipeline_as_of("at" timestamptz)
    RETURNS TABLE (sort_order integer, stage text, is_closed boolean, is_won boolean, owner text,
                   opportunities bigint, amount numeric, weighted_amount numeric, currency text,
                   amount_in_currency numeric, weighted_amount_in_currency numeric)
    LANGUAGE sql STABLE STRICT SECURITY INVOKER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH totals AS (
        SELECT h.new_stage AS stage, h.new_owner AS owner, h.currency,
               COALESCE(pg_catalog.date_trunc('month', h.new_close_date)::pg_catalog.date, 'infinity'::pg_catalog.date) AS close_month,
               pg_catalog.count(*) AS opportunities, pg_catalog.sum(h.new_amount) AS amount,
               pg_catalog.sum(pg_catalog.round(h.new_amount OPERATOR(pg_catalog.*) COALESCE(h.new_probability, 0)
                                               OPERATOR(pg_catalog./) 100, 2)) AS weighted_amount
          FROM (SELECT DISTINCT ON (e.opportunity_id) e.*
                  FROM crm.opportunity_history AS e
                 WHERE e.changed_at OPERATOR(pg_catalog.<=) pipeline_as_of."at"
                 ORDER BY e.opportunity_id, e.id DESC) AS h
         WHERE NOT h.deleted
         GROUP BY h.new_stage, h.new_owner, h.currency, 4),
    grouped AS (
        SELECT s.sort_order, t.stage, s.is_closed, s.is_won, pg_catalog.pg_get_userbyid(t.owner)::text AS owner,
               pg_catalog.sum(t.opportunities)::bigint AS opportunities,
               pg_catalog.round(pg_catalog.sum(t.amount OPERATOR(pg_catalog.*) r.rate), 2) AS amount,
               pg_catalog.round(pg_catalog.sum(t.weighted_amount OPERATOR(pg_catalog.*) r.rate), 2) AS weighted_amount,
               t.currency, pg_catalog.sum(t.amount) AS amount_in_currency, pg_catalog.sum(t.weighted_amount) AS weighted_amount_in_currency
          FROM totals AS t LEFT JOIN crm.opportunity_stage AS s ON s.name OPERATOR(pg_catalog.=) t.stage
         CROSS JOIN LATERAL (SELECT crm.exchange_rate_on(t.currency, NULLIF(t.close_month, 'infinity'::pg_catalog.date)) AS rate) AS r
         GROUP BY s.sort_order, t.stage, s.is_closed, s.is_won, 5, t.currency)
    SELECT g.sort_order, g.stage, g.is_closed, g.is_won, g.owner, g.opportunities, g.amount, g.weighted_amount,
           g.currency, g.amount_in_currency, g.weighted_amount_in_currency
      FROM grouped AS g
    UNION ALL
    SELECT s.sort_order, s.name, s.is_closed, s.is_won, NULL::text, 0::bigint, 0.00::numeric, 0.00::numeric,
           NULL::text, 0.00::numeric, 0.00::numeric
      FROM crm.opportunity_stage AS s
     WHERE s.active AND NOT EXISTS (SELECT 1 FROM grouped AS g WHERE g.stage OPERATOR(pg_catalog.=) s.name);
END;
-- crm_internal.stage_velocity_actual before renames were followed, unchanged
CREATE VIEW bench_before.stage_velocity_actual WITH (security_invoker = true) AS
    SELECT p.old_stage AS stage, p.old_owner AS owner, pg_catalog.count(*) AS passages,
           pg_catalog.sum(pg_catalog.extract('epoch', p.changed_at OPERATOR(pg_catalog.-) p.entered_at)) AS seconds
      FROM (SELECT h.old_stage, h.old_owner, h.changed_at,
                   pg_catalog.lag(h.changed_at) OVER (PARTITION BY h.opportunity_id ORDER BY h.id) AS entered_at
              FROM crm.opportunity_history AS h
             WHERE h.old_stage IS DISTINCT FROM h.new_stage AND NOT h.deleted) AS p
     WHERE p.old_stage IS NOT NULL
     GROUP BY p.old_stage, p.old_owner;
SQL

# ms STATEMENT: the statement's execution time (EXPLAIN ANALYZE, no timing of nodes)
ms() {
    psql_q -d renames -At -c "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) $1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Execution Time"])'
}
# compare LABEL NEW BEFORE: the median over ROUNDS of new / before
compare() {
    local label=$1 new=$2 before=$3 ratios=() n b
    for r in $(seq 1 "$ROUNDS"); do
        if [ $((r % 2)) = 1 ]; then n=$(ms "$new"); b=$(ms "$before"); else b=$(ms "$before"); n=$(ms "$new"); fi
        ratios+=("$(python3 -c "print($n / $b)")")
        log "$label round $r: new $n ms, before $b ms"
    done
    printf '%s\n' "${ratios[@]}" | python3 -c "import sys,statistics; print('$label: new / before = %.2f (median of %d rounds)' % (statistics.median(float(l) for l in sys.stdin), $ROUNDS))"
}
run_all() {
    compare "pipeline_as_of(now), $1" "SELECT * FROM crm.pipeline_as_of(now())" "SELECT * FROM bench_before.pipeline_as_of(now())"
    compare "stage_velocity_actual, $1" "SELECT * FROM crm_internal.stage_velocity_actual" "SELECT * FROM bench_before.stage_velocity_actual"
}
log "$SIZE deals, $(psql_q -d renames -At -c 'SELECT count(*) FROM crm.opportunity_history') history entries"
run_all "no rename"
psql_q -d renames -c "UPDATE crm.opportunity_stage SET name = 'Qualified' WHERE name = 'Qualification'" \
    -c "UPDATE crm.opportunity_stage SET name = 'Qualified lead' WHERE name = 'Qualified'" \
    -c "UPDATE crm.opportunity_stage SET name = 'Needs' WHERE name = 'Requirement'" -c "ANALYZE" >/dev/null
run_all "3 renames"
