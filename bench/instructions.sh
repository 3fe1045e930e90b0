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
# machine (instructions are not time).
#
# Then the same for lead conversion (bench/run.sh's data and PL/pgSQL
# function, CONV conversions in the measure, 300 of warm-up):
# crm.convert_lead() against the same work in PL/pgSQL, which runs without
# the conversion guards, as in bench/run.sh.
#
# Needs valgrind (installed from Debian if missing); takes about 2 minutes.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${N:-100000}
WARM=${WARM:-20000}
COUNT=${COUNT:-1000}
CONV=${CONV:-500}

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
log "loading leads for the conversions"
cp "$REPO_ROOT/bench/setup.sql" "$WORK/" && chmod a+r "$WORK/setup.sql"
psql_q -d postgres -c "CREATE DATABASE conv_c"
psql_q -d conv_c -c "CREATE EXTENSION crm CASCADE"
psql_q -d conv_c -v nleads=$((300 + 2 * CONV + 100)) -f "$WORK/setup.sql"
psql_q -d conv_c -c "VACUUM ANALYZE"
psql_q -d postgres -c "CREATE DATABASE conv_plpgsql TEMPLATE conv_c"
psql_q -d conv_plpgsql -c "ALTER TABLE crm.lead DISABLE TRIGGER lead_conversion_guard;
                           ALTER TABLE crm.opportunity DISABLE TRIGGER opportunity_lead_guard;"
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
updates 1 "$WARM" >"$WORK/agg_warm.sql"
updates 2 "$COUNT" >"$WORK/agg_short.sql"
updates 2 $((2 * COUNT)) >"$WORK/agg_long.sql"
# conversions CALL N: N conversions of the next leads by CALL
conversions() { for _ in $(seq 1 "$2"); do echo "SELECT $1(nextval('bench.pick'));"; done; }
for v in c plpgsql; do
    call=crm.convert_lead; [ $v = c ] || call=bench.convert_lead_plpgsql
    conversions $call 300 >"$WORK/conv_${v}_warm.sql"
    conversions $call "$CONV" >"$WORK/conv_${v}_short.sql"
    conversions $call $((2 * CONV)) >"$WORK/conv_${v}_long.sql"
done
chmod a+r "$WORK"/*.sql

log "warm-up: $WARM updates in each aggregate database, 300 conversions in each conversion database"
for db in agg_on agg_off conv_c conv_plpgsql; do
    warm=$WORK/${db}_warm.sql; [ "${db#agg_}" = "$db" ] || warm=$WORK/agg_warm.sql
    as_cluster_user "$PG_BIN/postgres" --single -D "$WORK/cluster/data" "$db" <"$warm" >/dev/null 2>&1
done
# the warm-up did its work: stripe rows of backend 1, the aggregates exact,
# and as many recorded changes in both databases
as_cluster_user pg_ctl -D "$WORK/cluster/data" -l "$WORK/cluster/server.log" -w start >/dev/null
check=$(psql_q -d agg_on -At -c "SELECT count(*) FILTER (WHERE stripe = 1) > 0 AND NOT EXISTS (SELECT FROM crm.verify_aggregates())
                                      FROM crm_internal.pipeline_aggregate")
changes_on=$(psql_q -d agg_on -At -c "SELECT count(*) FROM crm.opportunity_history")
changes_off=$(psql_q -d agg_off -At -c "SELECT count(*) FROM crm.opportunity_history")
converted_c=$(psql_q -d conv_c -At -c "SELECT count(*) FROM crm.lead WHERE status = 'Converted'")
converted_plpgsql=$(psql_q -d conv_plpgsql -At -c "SELECT count(*) FROM crm.lead WHERE status = 'Converted'")
stop_cluster "$WORK/cluster"
[ "$check" = t ] && [ "$changes_on" = "$changes_off" ] && [ "$changes_on" -gt 0 ] \
    && [ "$converted_c" = 300 ] && [ "$converted_plpgsql" = 300 ] \
    || { echo "the warm-up did not run as expected ($check, $changes_on, $changes_off, $converted_c, $converted_plpgsql)" >&2; exit 1; }

# per_op DB PREFIX N: instructions per operation, from PREFIX_short.sql
# (N operations) and PREFIX_long.sql (2 x N), each in its own backend
per_op() {
    local db=$1 prefix=$2 n=$3 short long
    log "callgrind: $db, $n and $((2 * n))"
    instructions "$db" "${prefix}_short.sql" >"$WORK/$db.short" &
    instructions "$db" "${prefix}_long.sql" >"$WORK/$db.long"
    wait
    short=$(cat "$WORK/$db.short"); long=$(cat "$WORK/$db.long")
    [ -n "$short" ] && [ -n "$long" ] && [ $(( (long - short) / n )) -gt 100000 ] \
        || { echo "the measured runs of $db did not run ($short, $long)" >&2; exit 1; }
    echo $(( (long - short) / n ))
}
on=$(per_op agg_on "$WORK/agg" "$COUNT")
off=$(per_op agg_off "$WORK/agg" "$COUNT")
conv_c=$(per_op conv_c "$WORK/conv_c" "$CONV")
conv_plpgsql=$(per_op conv_plpgsql "$WORK/conv_plpgsql" "$CONV")

printf '\n%-44s %12s\n' "instructions per update (callgrind)" "per update"
printf '%-44s %12d\n' "aggregates off" "$off" "aggregates on" "$on" "overhead of aggregate maintenance" $((on - off))
printf '%-44s %12.3f\n' "predicted throughput ratio on/off" "$(awk "BEGIN {print $off / $on}")"
printf '\n%-44s %12s\n' "instructions per lead conversion (callgrind)" "per lead"
printf '%-44s %12d\n' "crm.convert_lead() (C)" "$conv_c" "PL/pgSQL function (guards off)" "$conv_plpgsql"
printf '%-44s %12.3f\n' "predicted throughput ratio C / PL/pgSQL" "$(awk "BEGIN {print $conv_plpgsql / $conv_c}")"
printf '\n(%d opportunities; %d updates of warm-up, then the difference between %d and %d prepared updates\n' \
    "$N" "$WARM" "$COUNT" $((2 * COUNT))
printf ' in a new single-user backend, divided by %d; the same for %d and %d conversions after 300)\n' "$COUNT" "$CONV" $((2 * CONV))
