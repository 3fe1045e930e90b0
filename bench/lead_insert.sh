#!/usr/bin/env bash
# bench/lead_insert.sh: what lead scoring and assignment cost a single-row
# lead insert -- side by side in one run.
#
#   bash bench/lead_insert.sh          COUNT=500
#
# Three databases of one cluster, the same extension:
#   off    the two new triggers of crm.lead (lead_score_and_route,
#          lead_hand_over) disabled and the owner column's default of 0.6
#          (crm.current_role_id()) back: the single-row path before 0.7;
#   on     as installed, with no scoring or assignment rule (the 0.7 path
#          every database without rules takes);
#   rules  one scoring rule and one rule giving every website lead to a
#          queue of three members (routing lock, queue read and update, a
#          log row per lead).
# Each database then runs COUNT and, from another copy of the cluster,
# 2 x COUNT prepared single-row inserts of a website lead without an owner
# in a single-user backend under callgrind; the difference divided by COUNT
# is the cost of one insert without the backend's start and end.  The
# ratios off/on and off/rules are the throughput ratios the counts predict
# for a CPU-bound server (instructions, not time: this shared machine blurs
# pgbench timings).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

COUNT=${COUNT:-500}

ensure_packages
install_missing valgrind
build_and_install >&2
WORK=$(mktemp -d /tmp/crm-bench-lead-insert.XXXXXX)
chmod 755 "$WORK"
[ "$(id -u)" -ne 0 ] || chown "$(cluster_user)": "$WORK"
trap 'stop_cluster "$WORK/cluster"; rm -rf "$WORK"' EXIT
start_cluster "$WORK/cluster" >&2
psql_q() { as_cluster_user psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres "$@"; }

psql_q -d postgres -c "CREATE ROLE bench_q1" -c "CREATE ROLE bench_q2" -c "CREATE ROLE bench_q3" >/dev/null
for db in li_off li_on li_rules; do
    psql_q -d postgres -c "CREATE DATABASE $db"
    psql_q -d "$db" -c "CREATE EXTENSION crm CASCADE" -c "UPDATE crm.settings SET duplicate_policy_lead = 'allow'" >/dev/null
done
psql_q -d li_off -c "ALTER TABLE crm.lead DISABLE TRIGGER lead_score_and_route" \
    -c "ALTER TABLE crm.lead DISABLE TRIGGER lead_hand_over" \
    -c "ALTER TABLE crm.lead ALTER COLUMN owner SET DEFAULT crm.current_role_id()"
psql_q -d li_rules -c "INSERT INTO crm.scoring_rule (name, column_name, operator, value, points) VALUES ('Web', 'source', '=', 'website', 10)" \
    -c "INSERT INTO crm.assignment_queue_member (queue, member) VALUES ('web', 'bench_q1'), ('web', 'bench_q2'), ('web', 'bench_q3')" \
    -c "INSERT INTO crm.assignment_rule (priority, source, queue) VALUES (1, 'website', 'web')"
stop_cluster "$WORK/cluster"

inserts() {
    echo "PREPARE i AS INSERT INTO crm.lead (name, source) VALUES ('Bench lead', 'website');"
    for _ in $(seq 1 "$1"); do echo "EXECUTE i;"; done
}
inserts "$COUNT" >"$WORK/short.sql"
inserts $((2 * COUNT)) >"$WORK/long.sql"
chmod a+r "$WORK"/*.sql

per_insert() {
    local db=$1 short long
    log "callgrind: $db, $COUNT and $((2 * COUNT)) inserts" >&2
    short=$(instructions "$db" "$WORK/short.sql")
    long=$(instructions "$db" "$WORK/long.sql")
    [ -n "$short" ] && [ -n "$long" ] && [ "$long" -gt "$short" ] \
        || { echo "the measured runs of $db did not run ($short, $long)" >&2; exit 1; }
    echo $(( (long - short) / COUNT ))
}
off=$(per_insert li_off)
on=$(per_insert li_on)
rules=$(per_insert li_rules)
printf '\n%-52s %12s %8s\n' "instructions per single-row lead insert" "per insert" "off/x"
printf '%-52s %12d %8.3f\n' "off (0.6 path: no score, owner by default)" "$off" 1
printf '%-52s %12d %8.3f\n' "on, no rules (0.7 default path)" "$on" "$(awk "BEGIN {print $off / $on}")"
printf '%-52s %12d %8.3f\n' "rules (a scoring rule, a queue of three)" "$rules" "$(awk "BEGIN {print $off / $rules}")"
