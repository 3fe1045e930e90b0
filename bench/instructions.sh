#!/usr/bin/env bash
# bench/instructions.sh: what aggregate maintenance costs, counted in CPU
# instructions, the measure this shared machine does not blur.
#
#   bash bench/instructions.sh      N=100000 WARM=20000 COUNT=1000
#
# The databases of bench/aggregates.sh ("on" with every aggregates_ trigger,
# "off" with exactly those disabled, N opportunities).  Each first gets the
# same WARM single-row updates of stage and amount (a random opportunity, one
# of four open stages, a random amount; the same list for both), so that the
# stripe rows exist; a check then reads the aggregate tables (stripe rows of
# backend 1, crm.verify_aggregates() empty), which also sets the hint bits
# of the warm-up's row versions and prunes their pages, as a running
# server's readers and autovacuum would.  Then, from a copy of that state, a
# new single-user backend runs COUNT and then, from another copy, 2 x COUNT
# prepared updates of the same kind under callgrind; the difference divided
# by COUNT is the cost of one update after a backend's first COUNT, without
# its start-up and shut-down.  Single-user mode is backend 1, the stripe the
# warm-up wrote: the measured backend finds the rows but has not remembered
# where they are (a new connection of a pool).  The ratio off/on is the
# throughput ratio the counts predict for a CPU-bound server; the pgbench
# medians of bench/aggregates.sh came out 0.03-0.08 below it on the project
# machine (instructions are not time).  Needs valgrind (installed from
# Debian if missing).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${N:-100000}
WARM=${WARM:-20000}
COUNT=${COUNT:-1000}

ensure_packages
install_missing valgrind
build_and_install >&2
WORK=$(mktemp -d /tmp/crm-bench-ins.XXXXXX)
chmod 755 "$WORK"
[ "$(id -u)" -ne 0 ] || chown "$(cluster_user)": "$WORK"
trap 'stop_cluster "$WORK/cluster"; rm -rf "$WORK"' EXIT
start_cluster "$WORK/cluster" >&2

log "loading $N opportunities"
make_db agg_tpl "$N"
make_on_off agg_tpl
stop_cluster "$WORK/cluster"

# updates SEED COUNT: COUNT random updates as a prepared statement's
# executions (the same list for the same seed; a longer list starts with a
# shorter one's)
updates() {
    awk -v seed="$1" -v n="$2" -v max="$N" 'BEGIN {
        srand(seed); split("Qualification Requirement Proposal Negotiation", stage, " ")
        print "PREPARE u(text, numeric, bigint) AS UPDATE crm.opportunity SET stage = $1, amount = $2 WHERE id = $3;"
        for (i = 0; i < n; i++)
            printf "EXECUTE u(%c%s%c, %d, %d);\n", 39, stage[1 + int(rand() * 4)], 39, 1 + int(rand() * 100000), 1 + int(rand() * max)
    }'
}
updates 1 "$WARM" >"$WORK/warm.sql"
updates 2 "$COUNT" >"$WORK/short.sql"
updates 2 $((2 * COUNT)) >"$WORK/long.sql"
chmod a+r "$WORK"/*.sql

log "warm-up: $WARM updates in each database"
for db in agg_on agg_off; do
    as_cluster_user "$PG_BIN/postgres" --single -D "$WORK/cluster/data" "$db" <"$WORK/warm.sql" >/dev/null 2>&1
done
# the warm-up did its work: stripe rows of backend 1, the aggregates exact,
# and as many recorded changes in both databases
as_cluster_user pg_ctl -D "$WORK/cluster/data" -l "$WORK/cluster/server.log" -w start >/dev/null
check=$(psql_q -d agg_on -At -c "SELECT count(*) FILTER (WHERE stripe = 1) > 0 AND NOT EXISTS (SELECT FROM crm.verify_aggregates())
                                      FROM crm.pipeline_aggregate")
changes_on=$(psql_q -d agg_on -At -c "SELECT count(*) FROM crm.opportunity_history")
changes_off=$(psql_q -d agg_off -At -c "SELECT count(*) FROM crm.opportunity_history")
stop_cluster "$WORK/cluster"
[ "$check" = t ] && [ "$changes_on" = "$changes_off" ] && [ "$changes_on" -gt 0 ] \
    || { echo "the warm-up did not run as expected ($check, $changes_on, $changes_off)" >&2; exit 1; }

# instructions DB FILE: the instructions callgrind counts for FILE in a
# backend on a copy of the warmed-up cluster
instructions() {
    local db=$1 file=$2 dir
    dir=$(mktemp -d "$WORK/cg.XXXXXX")
    chmod 755 "$dir"
    [ "$(id -u)" -ne 0 ] || chown "$(cluster_user)": "$dir"
    as_cluster_user cp -a "$WORK/cluster/data" "$dir/data"
    as_cluster_user valgrind --tool=callgrind --callgrind-out-file="$dir/out" \
        "$PG_BIN/postgres" --single -D "$dir/data" "$db" <"$file" >/dev/null 2>&1
    sed -n 's/^summary: \([0-9]*\)$/\1/p' "$dir/out"
    rm -rf "$dir"
}

declare -A total
for db in agg_on agg_off; do
    log "callgrind: $db, $COUNT and $((2 * COUNT)) updates"
    instructions "$db" "$WORK/short.sql" >"$WORK/$db.short" &
    instructions "$db" "$WORK/long.sql" >"$WORK/$db.long"
    wait
    total[$db]=$(( ($(cat "$WORK/$db.long") - $(cat "$WORK/$db.short")) / COUNT ))
done
on=${total[agg_on]}
off=${total[agg_off]}
[ "$off" -gt 100000 ] && [ "$on" -gt 100000 ] || { echo "the measured runs did not run ($on, $off)" >&2; exit 1; }
printf '\n%-44s %12s\n' "instructions per update (callgrind)" "per update"
printf '%-44s %12d\n' "aggregates off" "$off" "aggregates on" "$on" "overhead of aggregate maintenance" $((on - off))
printf '%-44s %12.3f\n' "predicted throughput ratio on/off" "$(awk "BEGIN {print $off / $on}")"
printf '(%d opportunities; %d updates of warm-up, then the difference between %d and %d prepared updates\n' \
    "$N" "$WARM" "$COUNT" $((2 * COUNT))
printf ' in a new single-user backend, divided by %d)\n' "$COUNT"
