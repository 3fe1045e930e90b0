#!/usr/bin/env bash
# bench/run.sh: throughput of lead conversion, side by side in one run.
#
#   bash bench/run.sh            (ROUNDS=3 T1=1000 CLIENTS=4 T4=500 by default)
#
# Four ways to convert a lead, each in its own database cloned from one
# template with the same data (bench/setup.sql), measured with pgbench in
# interleaved rounds (A B C D, A B C D, ...) so drift hits all alike:
#   c        crm.convert_lead(), the C function                 (guards on)
#   plpgsql  the same work in a PL/pgSQL function               (guards off)
#   client   the same work as separate client statements        (guards off)
#   bare     the inserts and update in one statement, no checks (guards off)
# Prints the median tps of each at 1 and at $CLIENTS clients and the ratio
# convert_lead / variant.  The cluster runs with fsync off: the numbers are
# about CPU work per conversion, not about the disk.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

ROUNDS=${ROUNDS:-3}
T1=${T1:-1000}
CLIENTS=${CLIENTS:-4}
T4=${T4:-500}
VARIANTS="c plpgsql client bare"

ensure_packages
build_and_install >&2

WORK=$(mktemp -d /tmp/crm-bench.XXXXXX)
chmod 755 "$WORK"
trap 'stop_cluster "$WORK/cluster"; rm -rf "$WORK"' EXIT
cp "$REPO_ROOT"/bench/*.pgbench "$REPO_ROOT"/bench/setup.sql "$WORK/"
chmod a+r "$WORK"/*
start_cluster "$WORK/cluster" >&2

psql_q() { as_cluster_user psql -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres "$@"; }

nleads=$((ROUNDS * (T1 + CLIENTS * T4) + 100))
log "loading $nleads leads into the template database"
psql_q -d postgres -c "CREATE DATABASE bench_tpl"
psql_q -d bench_tpl -c "CREATE EXTENSION crm CASCADE"
psql_q -d bench_tpl -v nleads="$nleads" -f "$WORK/setup.sql"
psql_q -d bench_tpl -c "VACUUM ANALYZE"
for v in $VARIANTS; do
    psql_q -d postgres -c "CREATE DATABASE bench_$v TEMPLATE bench_tpl"
    if [ "$v" != c ]; then
        psql_q -d "bench_$v" -c "ALTER TABLE crm.lead DISABLE TRIGGER lead_conversion_guard;
                                 ALTER TABLE crm.opportunity DISABLE TRIGGER opportunity_lead_guard;"
    fi
done

declare -A results
run_one() {   # variant clients transactions-per-client
    local v=$1 c=$2 t=$3 out tps
    out=$(as_cluster_user pgbench -n -M prepared -c "$c" -j "$c" -t "$t" \
          -h "$PGHOST" -p "$PGPORT" -U postgres -f "$WORK/convert_$v.pgbench" "bench_$v" 2>&1) \
        || { echo "$out" >&2; echo "pgbench failed for $v" >&2; exit 1; }
    tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | head -1)
    results[$v,$c]="${results[$v,$c]:-} $tps"
    log "round $r: $v at $c client(s): $tps tps"
}
for r in $(seq 1 "$ROUNDS"); do
    for v in $VARIANTS; do run_one "$v" 1 "$T1"; done
    for v in $VARIANTS; do run_one "$v" "$CLIENTS" "$T4"; done
done

# Every variant converted exactly the leads it was given, with no failures.
expected=$((ROUNDS * (T1 + CLIENTS * T4)))
for v in $VARIANTS; do
    n=$(psql_q -d "bench_$v" -At -c "SELECT count(*) FROM crm.lead WHERE status = 'Converted'")
    [ "$n" = "$expected" ] || { echo "bench_$v converted $n leads, expected $expected" >&2; exit 1; }
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
label() {
    case $1 in
        c) echo "crm.convert_lead() (C)" ;;
        plpgsql) echo "PL/pgSQL function" ;;
        client) echo "separate client statements" ;;
        bare) echo "bare DML, one statement" ;;
    esac
}
printf '\n%-28s %12s %10s %12s %10s\n' "lead conversion" "tps, 1 cl." "C / this" "tps, $CLIENTS cl." "C / this"
c1=$(echo "${results[c,1]}" | median)
c4=$(echo "${results[c,$CLIENTS]}" | median)
for v in $VARIANTS; do
    m1=$(echo "${results[$v,1]}" | median)
    m4=$(echo "${results[$v,$CLIENTS]}" | median)
    printf '%-28s %12.0f %10.2f %12.0f %10.2f\n' "$(label "$v")" "$m1" "$(awk "BEGIN {print $c1 / $m1}")" \
        "$m4" "$(awk "BEGIN {print $c4 / $m4}")"
done
printf '\n(median of %d rounds; %d leads per round at 1 client, %d x %d at %d clients; half the leads reuse an existing account)\n' \
    "$ROUNDS" "$T1" "$CLIENTS" "$T4" "$CLIENTS"
