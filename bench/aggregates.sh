#!/usr/bin/env bash
# bench/aggregates.sh: cost of aggregate maintenance and speed of reading the
# aggregates, side by side in one run, with pgbench.
#
#   bash bench/aggregates.sh
#       N=100000 ROUNDS=7 SECONDS_PER_RUN=15 WARMUP_SECONDS=20
#       READ_SIZES="10000 100000 1000000" (empty: no reads) READ_SECONDS=5
#
# 1. Maintenance.  Two databases cloned from one template with N
#    opportunities: "on" with every aggregates_ trigger, "off" with exactly
#    those disabled.  pgbench updates random opportunities' stage and amount
#    at 1 and 8 clients, in interleaved rounds (on then off in odd rounds, off
#    then on in even ones); the table gives median tps and on/off, and the
#    failed transactions (deadlocks, serialization failures) of each run.
#    Before the rounds, both databases get the same untimed 8-client
#    warm-up run, so that the rounds measure the steady state: each
#    backend's stripe already has a row for most groups (the first change of
#    a group in a stripe inserts its row, later ones update it) and the
#    pages have settled.  Each run lasts 15 s by default: pgbench connects
#    anew for every run, and a new backend finds each group's row through
#    the primary key the first time it writes it; in 6-s runs that is about
#    one lookup per update, a cost a pooled server pays once.
#    The same comparison is then made in the same time window: in each
#    round, 4 clients on "on" and 4 on "off" run at once, then 8 and 8, so
#    that both see the same machine (a shared machine's load moves the
#    sequential ratios by +-0.2 from round to round); the lines "4+4 at
#    once" and "8+8 at once" (8 clients on each database, the concurrency of
#    the target) give their median ratios.
#    For the rounds run one after the other, the table also gives the CPU
#    time the whole server used per update (backends, exited ones included,
#    and background processes), read from /proc before and after each run:
#    off/on of that is what the throughput ratio would be if the server's
#    CPU were the only limit, without pgbench's own share of the machine.
# 2. Reads.  For each size in READ_SIZES, a database with that many
#    opportunities; pgbench reads the pipeline by stage from the aggregates
#    (crm.pipeline_by_stage) and by the same query over the opportunities
#    (a GROUP BY), one after the other; the table gives tps and the ratio,
#    with the stripes an 8-client update run left and after
#    crm.compact_aggregates().
# Data is loaded with triggers off and the aggregates rebuilt; then every
# stripe is exercised by a short 8-client update run so readers sum real
# stripes.  fsync is off: the numbers are CPU work, not disk.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${N:-100000}
ROUNDS=${ROUNDS:-7}
SECS=${SECONDS_PER_RUN:-15}
WARMUP=${WARMUP_SECONDS:-20}
READ_SIZES=${READ_SIZES-"10000 100000 1000000"}
READ_SECS=${READ_SECONDS:-5}

ensure_packages
build_and_install >&2
WORK=$(mktemp -d /tmp/crm-bench-agg.XXXXXX)
chmod 755 "$WORK"
trap 'stop_cluster "$WORK/cluster"; rm -rf "$WORK"' EXIT
start_cluster "$WORK/cluster" >&2
bench() { as_cluster_user pgbench -n -M prepared -h "$PGHOST" -p "$PGPORT" -U postgres "$@" 2>&1; }
tps_of() { sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | head -1; }
txns_of() { sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' | head -1; }
# The CPU time the whole cluster has used, in clock ticks: the postmaster's
# own and that of its children that have exited (cutime, cstime), plus that
# of the children still running.  Read when no benchmark backend is left
# (settle), the difference over a run is the server's CPU for that run's
# transactions, background processes included.
TICKS=$(getconf CLK_TCK)
cluster_cpu() {
    local pm
    pm=$(head -1 "$WORK/cluster/data/postmaster.pid")
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pm="$pm" '
        {
            pid = $1
            sub(/^.*\) /, "")           # the fields after the command name: state, ppid, ...
            if (pid == pm) total += $12 + $13 + $14 + $15
            else if ($2 == pm) total += $12 + $13
        }
        END { print total + 0 }'
}
# wait until the benchmark's backends have exited and been reaped
settle() {
    local pm i
    pm=$(head -1 "$WORK/cluster/data/postmaster.pid")
    for i in $(seq 1 100); do
        pgrep -P "$pm" -f "postgres: postgres agg_" >/dev/null || { sleep 0.1; return 0; }
        sleep 0.05
    done
}
failed_of() { sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

cat >"$WORK/update.pgbench" <<SCRIPT
\set id random(1, $N)
\set s random(1, 4)
\set a random(1, 100000)
UPDATE crm.opportunity SET stage = (ARRAY['Qualification', 'Requirement', 'Proposal', 'Negotiation'])[:s],
       amount = :a WHERE id = :id;
SCRIPT
cat >"$WORK/read_aggregate.pgbench" <<'SCRIPT'
SELECT stage, owner, opportunities, amount, weighted_amount FROM crm.pipeline_by_stage;
SCRIPT
cat >"$WORK/read_group_by.pgbench" <<'SCRIPT'
SELECT s.sort_order, s.name AS stage, s.is_closed, s.is_won, o.owner, count(*) AS opportunities,
       sum(o.amount) AS amount, sum(round(o.amount * coalesce(o.probability, 0) / 100, 2)) AS weighted_amount
  FROM crm.opportunity o JOIN crm.opportunity_stage s ON s.name = o.stage
 GROUP BY s.sort_order, s.name, s.is_closed, s.is_won, o.owner;
SCRIPT
chmod a+r "$WORK"/*.pgbench

# 1. Maintenance on and off.
log "loading $N opportunities"
make_db agg_tpl "$N"
make_on_off agg_tpl

for v in on off; do
    bench -c 8 -j 8 -T "$WARMUP" -f "$WORK/update.pgbench" "agg_$v" >/dev/null
    log "warm-up: aggregates $v, 8 clients, $WARMUP s"
done

declare -A res fails ratios cpu cpu_ratios
for r in $(seq 1 "$ROUNDS"); do
    # odd rounds run "on" first, even rounds "off" first, so that a drift of
    # the machine's speed within a round favours neither
    order="on off"; [ $((r % 2)) -eq 0 ] && order="off on"
    for c in 1 8; do
        declare -A tps_of_round=() cpu_of_round=()
        for v in $order; do
            settle; cpu0=$(cluster_cpu)
            out=$(bench -c "$c" -j "$c" -T "$SECS" -f "$WORK/update.pgbench" "agg_$v")
            settle; cpu1=$(cluster_cpu)
            tps=$(echo "$out" | tps_of)
            cpu_of_round[$v]=$(awk "BEGIN {print ($cpu1 - $cpu0) * 1000 / $TICKS / $(echo "$out" | txns_of)}")
            cpu[$v,$c]="${cpu[$v,$c]:-} ${cpu_of_round[$v]}"
            failed=$(echo "$out" | failed_of)
            res[$v,$c]="${res[$v,$c]:-} $tps"
            fails[$v,$c]=$(( ${fails[$v,$c]:-0} + ${failed:-0} ))
            log "round $r: aggregates $v, $c client(s): $tps tps, failed ${failed:-0}"
            tps_of_round[$v]=$tps
        done
        ratios[$c]="${ratios[$c]:-} $(awk "BEGIN {print ${tps_of_round[on]} / ${tps_of_round[off]}}")"
        cpu_ratios[$c]="${cpu_ratios[$c]:-} $(awk "BEGIN {print ${cpu_of_round[off]} / ${cpu_of_round[on]}}")"
    done
done
# at_once C: C clients on "on" and C on "off", in the same time window
at_once() {
    local c=$1 k="at$1" on_tps off_tps
    bench -c "$c" -j "$c" -T "$SECS" -f "$WORK/update.pgbench" agg_on >"$WORK/at_once_on.log" &
    bench -c "$c" -j "$c" -T "$SECS" -f "$WORK/update.pgbench" agg_off >"$WORK/at_once_off.log"
    wait
    on_tps=$(tps_of <"$WORK/at_once_on.log"); off_tps=$(tps_of <"$WORK/at_once_off.log")
    res[on,$k]="${res[on,$k]:-} $on_tps"; res[off,$k]="${res[off,$k]:-} $off_tps"
    fails[on,$k]=$(( ${fails[on,$k]:-0} + $(failed_of <"$WORK/at_once_on.log" | grep . || echo 0) ))
    fails[off,$k]=$(( ${fails[off,$k]:-0} + $(failed_of <"$WORK/at_once_off.log" | grep . || echo 0) ))
    ratios[$k]="${ratios[$k]:-} $(awk "BEGIN {print $on_tps / $off_tps}")"
    log "round $r: $c clients on and $c off at once: $on_tps / $off_tps tps"
}
for r in $(seq 1 "$ROUNDS"); do
    at_once 4
    at_once 8
done
mismatches=$(psql_q -d agg_on -At -c "SELECT count(*) FROM crm.verify_aggregates()")

# 2. Reads at each size.
declare -A rd
for size in $READ_SIZES; do
    log "loading $size opportunities for the read benchmark"
    make_db "read_$size" "$size"
    sed "s/random(1, $N)/random(1, $size)/" "$WORK/update.pgbench" >"$WORK/update_$size.pgbench"
    chmod a+r "$WORK/update_$size.pgbench"
    bench -c 8 -j 8 -T 2 -f "$WORK/update_$size.pgbench" "read_$size" >/dev/null
    psql_q -d "read_$size" -c "VACUUM ANALYZE"
    for q in aggregate group_by; do
        rd[$q,$size]=$(bench -c 1 -T "$READ_SECS" -f "$WORK/read_$q.pgbench" "read_$size" | tps_of)
        log "read $q at $size: ${rd[$q,$size]} tps"
    done
    rd[rows,$size]=$(psql_q -d "read_$size" -At -c "SELECT count(*) FROM crm_internal.pipeline_aggregate")
    psql_q -d "read_$size" -c "SELECT crm.compact_aggregates()" -c "VACUUM ANALYZE crm_internal.pipeline_aggregate" >/dev/null
    rd[compact,$size]=$(bench -c 1 -T "$READ_SECS" -f "$WORK/read_aggregate.pgbench" "read_$size" | tps_of)
    rd[crows,$size]=$(psql_q -d "read_$size" -At -c "SELECT count(*) FROM crm_internal.pipeline_aggregate")
    log "read compacted aggregate at $size: ${rd[compact,$size]} tps"

    rd[bad,$size]=$(psql_q -d "read_$size" -At -c "SELECT count(*) FROM crm.verify_aggregates()")
done

printf '\n%-32s %9s %9s %13s %14s %13s\n' "update stage+amount ($N opps)" "tps, on" "tps, off" "on/off (med)" "on/off, rounds" "failed on/off"
for c in 1 8 at4 at8; do
    on=$(echo "${res[on,$c]}" | median); off=$(echo "${res[off,$c]}" | median)
    label="$c client(s)"; [ "${c#at}" != "$c" ] && label="${c#at}+${c#at} clients at once"
    printf '%-32s %9.0f %9.0f %13.2f %14s %13s\n' "$label" "$on" "$off" "$(echo "${ratios[$c]}" | median)" \
        "$(for x in ${ratios[$c]}; do printf '%.2f ' "$x"; done)" "${fails[on,$c]}/${fails[off,$c]}"
done
printf '\n%-32s %9s %9s %13s %14s\n' "server CPU per update (ms)" "on" "off" "off/on (med)" "off/on, rounds"
for c in 1 8; do
    printf '%-32s %9.3f %9.3f %13.2f %14s\n' "$c client(s)" "$(echo "${cpu[on,$c]}" | median)" \
        "$(echo "${cpu[off,$c]}" | median)" "$(echo "${cpu_ratios[$c]}" | median)" \
        "$(for x in ${cpu_ratios[$c]}; do printf '%.2f ' "$x"; done)"
done
printf '\n%-32s %9s %9s %7s %9s %9s %8s\n' "pipeline by stage, reads (tps)" "aggregate" "GROUP BY" "ratio" "compacted" "ratio" "rows"
for size in $READ_SIZES; do
    printf '%-32s %9.1f %9.1f %6.0fx %9.1f %8.0fx %8s\n' "$size opportunities" "${rd[aggregate,$size]}" "${rd[group_by,$size]}" \
        "$(awk "BEGIN {print ${rd[aggregate,$size]} / ${rd[group_by,$size]}}")" "${rd[compact,$size]}" \
        "$(awk "BEGIN {print ${rd[compact,$size]} / ${rd[group_by,$size]}}")" "${rd[rows,$size]}->${rd[crows,$size]}"
done
printf '\nverify_aggregates() after the runs: %s mismatches (maintenance), %s(reads)\n' "$mismatches" \
    "$(for s in $READ_SIZES; do printf '%s ' "${rd[bad,$s]}"; done)"
printf '(on/off (med): median of the %d per-round ratios, each round running on and off back to back (alternating\n' "$ROUNDS"
printf ' which goes first), %d s each,' "$SECS"
printf ' after a %d s 8-client warm-up of both databases;\n' "$WARMUP"
printf ' reads %d s each at 1 client; "rows": aggregate rows with the stripes of a 2 s 8-client update run, then compacted)\n' "$READ_SECS"
