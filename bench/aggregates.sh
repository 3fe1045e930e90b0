#!/usr/bin/env bash
# bench/aggregates.sh: cost of aggregate maintenance and speed of reading it,
# side by side in one run.
#
#   bash bench/aggregates.sh      (N=100000 ROUNDS=3 SECONDS_PER_RUN=10 by default)
#
# Two databases cloned from one template with N opportunities: "on" with the
# aggregates_ triggers, "off" with them disabled.  pgbench updates random
# opportunities' stage and amount at 1 and 8 clients, in interleaved rounds;
# the table gives median tps and on/off.  Then the pipeline by stage is read
# from the aggregate (crm.pipeline_by_stage) and by a GROUP BY over the
# opportunities, and the speed-up is printed.  fsync is off.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

N=${N:-100000}
ROUNDS=${ROUNDS:-3}
SECS=${SECONDS_PER_RUN:-10}

ensure_packages
build_and_install >&2
WORK=$(mktemp -d /tmp/crm-bench-agg.XXXXXX)
chmod 755 "$WORK"
trap 'stop_cluster "$WORK/cluster"; rm -rf "$WORK"' EXIT
start_cluster "$WORK/cluster" >&2
psql_q() { as_cluster_user psql -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres "$@"; }

cat >"$WORK/update.pgbench" <<SCRIPT
\set id random(1, $N)
\set s random(1, 4)
\set a random(1, 100000)
UPDATE crm.opportunity SET stage = (ARRAY['Qualification', 'Requirement', 'Proposal', 'Negotiation'])[:s],
       amount = :a WHERE id = :id;
SCRIPT
chmod a+r "$WORK/update.pgbench"

log "loading $N opportunities"
psql_q -d postgres -c "CREATE DATABASE agg_tpl"
psql_q -d agg_tpl -c "CREATE EXTENSION crm" \
    -c "INSERT INTO crm.account (name) SELECT 'Account ' || g FROM generate_series(1, 1000) g" \
    -c "DO \$\$ BEGIN FOR i IN 1..8 LOOP EXECUTE format('CREATE ROLE bench_rep%s', i); END LOOP; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$" \
    -c "INSERT INTO crm.opportunity (name, account_id, amount, close_date, owner)
        SELECT 'Deal ' || g, 1 + g % 1000, g % 5000, date '2027-01-01' + g % 365, ('bench_rep' || (1 + g % 8))::regrole
          FROM generate_series(1, $N) g" \
    -c "SELECT crm.rebuild_aggregates()"
psql_q -d agg_tpl -c "VACUUM ANALYZE"
psql_q -d postgres -c "CREATE DATABASE agg_on TEMPLATE agg_tpl" -c "CREATE DATABASE agg_off TEMPLATE agg_tpl"
psql_q -d agg_off -c "ALTER TABLE crm.opportunity DISABLE TRIGGER aggregates_pipeline_insert" \
                 -c "ALTER TABLE crm.opportunity DISABLE TRIGGER aggregates_pipeline_update" \
                 -c "ALTER TABLE crm.opportunity DISABLE TRIGGER aggregates_pipeline_delete"

declare -A res
for r in $(seq 1 "$ROUNDS"); do
    for c in 1 8; do
        for v in on off; do
            out=$(as_cluster_user pgbench -n -M prepared -c "$c" -j "$c" -T "$SECS" -h "$PGHOST" -p "$PGPORT" \
                  -U postgres -f "$WORK/update.pgbench" "agg_$v" 2>&1)
            tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | head -1)
            failed=$(echo "$out" | sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p')
            res[$v,$c]="${res[$v,$c]:-} $tps"
            log "round $r: aggregates $v, $c client(s): $tps tps, failed ${failed:-0}"
        done
    done
done
mismatches=$(psql_q -d agg_on -At -c "SELECT count(*) FROM crm.verify_aggregates()")
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# Reads: the pipeline by stage from the aggregate vs. a GROUP BY, 20 times each.
read_ms() {
    as_cluster_user psql -X -q -h "$PGHOST" -p "$PGPORT" -U postgres -d agg_on -At \
        -c "DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN FOR i IN 1..20 LOOP PERFORM count(*) FROM ($1) q; END LOOP; RAISE NOTICE '%', extract(epoch FROM clock_timestamp() - t0) * 1000 / 20; END \$\$" 2>&1 | sed -n 's/^NOTICE:  //p'
}
agg_ms=$(read_ms "SELECT stage, owner, sum(opportunities), sum(amount), sum(weighted_amount) FROM crm.pipeline_by_stage GROUP BY 1, 2")
gb_ms=$(read_ms "SELECT stage, owner, count(*), sum(amount), sum(round(amount * coalesce(probability, 0) / 100, 2)) FROM crm.opportunity GROUP BY 1, 2")

printf '\n%-34s %12s %12s %10s\n' "update stage+amount ($N opps)" "tps, on" "tps, off" "on / off"
for c in 1 8; do
    on=$(echo "${res[on,$c]}" | median); off=$(echo "${res[off,$c]}" | median)
    printf '%-34s %12.0f %12.0f %10.2f\n' "$c client(s)" "$on" "$off" "$(awk "BEGIN {print $on / $off}")"
done
printf '\n%-34s %12s %12s %10s\n' "pipeline by stage read" "aggregate" "GROUP BY" "speed-up"
printf '%-34s %11.3fms %11.3fms %9.0fx\n' "$N opportunities" "$agg_ms" "$gb_ms" "$(awk "BEGIN {print $gb_ms / $agg_ms}")"
printf '\nverify_aggregates() after the run: %s mismatches (median of %d rounds of %d s)\n' "$mismatches" "$ROUNDS" "$SECS"
