#!/usr/bin/env bash
# bench/pipeline_as_of.sh: crm.pipeline_as_of(at) in C (src/pipeline_as_of.c)
# against the SQL function of 0.7 before it (kept below, unchanged, as
# bench_before.pipeline_as_of), side by side in one database, as the
# superuser (no row-level security), as a sales rep (bench_rep1: row
# security, 1/20 of the deals) and as a manager of 5 reps (bench_mgr), with
# no stage ever renamed and after three renames (a chain of two and
# another stage).
#
#   bash bench/pipeline_as_of.sh      SIZE=100000 ROUNDS=5 AGO="1 day"
#
# Data: bench/reports_data.sql with SIZE deals (two history entries each),
# SIZE/5 accounts, SIZE/10 leads, 20 owners.  The moment is now() - AGO
# (every entry but the last day's).  Timing: EXPLAIN (ANALYZE, TIMING OFF)
# "Execution Time" of SELECT * FROM the function, one session per role, in
# interleaved rounds after a warm-up of each (the new one first in odd
# rounds); the result is the median of the per-round ratios new / before.
# Both results are compared first (EXCEPT ALL both ways, per role): they
# must be equal but for deals handed to another team (none in this data).
# Keep SIZE at 200000 or less on the shared project machine.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SIZE=${SIZE:-100000}; ROUNDS=${ROUNDS:-5}; AGO=${AGO:-1 day}
build_and_install >&2
WORK=$(mktemp -d /tmp/crm-bench-asof.XXXXXX); chmod 755 "$WORK"
[ "$(id -u)" -ne 0 ] || chown "$(cluster_user)": "$WORK"
trap 'stop_cluster "$WORK/cluster"; rm -rf "$WORK"' EXIT
start_cluster "$WORK/cluster" >&2
cp "$REPO_ROOT/bench/reports_data.sql" "$WORK/data.sql"; chmod 644 "$WORK/data.sql"
psql_q -d postgres -c "CREATE DATABASE asof" >/dev/null
psql_q -d asof -c "SET client_min_messages = warning" -c "CREATE EXTENSION crm CASCADE" >/dev/null
psql_q -d asof -At <<'SQL' >/dev/null
SELECT format('CREATE ROLE bench_rep%s LOGIN IN ROLE crm_sales', g) FROM generate_series(1, 20) g \gexec
CREATE ROLE bench_mgr LOGIN IN ROLE crm_manager;
INSERT INTO crm.reporting_line (member, manager) SELECT ('bench_rep' || g)::regrole, 'bench_mgr' FROM generate_series(1, 5) g;
SQL
psql_q -d asof -v n_leads=$((SIZE / 10)) -v n_opps="$SIZE" -v n_accounts=$((SIZE / 5 / 20 * 20)) -v owners=20 -v campaigns=10 \
    -f "$WORK/data.sql" >/dev/null
psql_q -d asof -c "SELECT crm.rebuild_aggregates()" -c "VACUUM ANALYZE" >/dev/null
# crm.pipeline_as_of() of 0.7 before it was written in C, unchanged: the
# last SQL body the update script gives it (session 35)
{
    echo "CREATE SCHEMA bench_before;"
    echo "GRANT USAGE ON SCHEMA bench_before TO PUBLIC;"
    awk '/^CREATE (OR REPLACE )?FUNCTION crm.pipeline_as_of\("at" timestamptz\)/ { buf = ""; on = 1 }
         on { buf = buf $0 "\n" } on && /^END;/ { last = buf; on = 0 } END { printf "%s", last }' \
        "$REPO_ROOT/sql/versions/crm--0.6--0.7.sql" |
        sed '1s/^CREATE OR REPLACE FUNCTION crm.pipeline_as_of/CREATE FUNCTION bench_before.pipeline_as_of/'
} >"$WORK/before.sql"
chmod 644 "$WORK/before.sql"
grep -q "BEGIN ATOMIC" "$WORK/before.sql" || { echo "no SQL body of crm.pipeline_as_of() found" >&2; exit 1; }
psql_q -d asof -f "$WORK/before.sql" >/dev/null
log "$SIZE deals, $(psql_q -d asof -At -c 'SELECT count(*) FROM crm.opportunity_history') history entries, at now() - $AGO"

ROLES=(postgres bench_rep1 bench_mgr)
NEW="SELECT * FROM crm.pipeline_as_of(now() - interval '$AGO')"
OLD="SELECT * FROM bench_before.pipeline_as_of(now() - interval '$AGO')"
# run_role ROLE: "round|variant|ms" lines, one session
run_role() {
    local role=$1 r
    {
        echo "SELECT count(*) AS differences FROM (($NEW EXCEPT ALL $OLD) UNION ALL ($OLD EXCEPT ALL $NEW)) AS d;"
        for r in $(seq 0 "$ROUNDS"); do
            if [ $((r % 2)) = 1 ]; then order="new old"; else order="old new"; fi
            for v in $order; do
                echo "\\echo @@ $r|$v"
                if [ "$v" = new ]; then echo "EXPLAIN (ANALYZE, TIMING OFF) $NEW;"; else echo "EXPLAIN (ANALYZE, TIMING OFF) $OLD;"; fi
            done
        done
    } >"$WORK/$role.sql"
    chmod 644 "$WORK/$role.sql"
    as_cluster_user psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U "$role" -d asof -f "$WORK/$role.sql" |
        awk 'NR == 1 { print "differences|" $0; next } /^@@ / { key = substr($0, 4); next } /^Execution Time:/ { print key "|" $3 }'
}
# report LABEL: per role, the medians and the median ratio new / before
report() {
    local label=$1 role
    for role in "${ROLES[@]}"; do
        run_role "$role" | python3 -c '
import sys, statistics
label, role = sys.argv[1], sys.argv[2]
ms = {}
for line in sys.stdin:
    parts = line.strip().split("|")
    if parts[0] == "differences":
        diff = parts[1]; continue
    r, v, t = int(parts[0]), parts[1], float(parts[2])
    if r > 0: ms.setdefault(r, {})[v] = t
new = [ms[r]["new"] for r in ms]; old = [ms[r]["old"] for r in ms]
ratios = [ms[r]["new"] / ms[r]["old"] for r in ms]
print("%-18s %-11s %10.1f %10.1f %8.3f   %s  (differences: %s)" % (label, role, statistics.median(new), statistics.median(old),
      statistics.median(ratios), " ".join("%.3f" % x for x in ratios), diff))
' "$label" "$role"
    done
}
printf '%-18s %-11s %10s %10s %8s   %s\n' "pipeline_as_of" role "new ms" "before ms" "new/bef" "per round"
report "no rename"
psql_q -d asof -c "UPDATE crm.opportunity_stage SET name = 'Qualified' WHERE name = 'Qualification'" \
    -c "UPDATE crm.opportunity_stage SET name = 'Qualified lead' WHERE name = 'Qualified'" \
    -c "UPDATE crm.opportunity_stage SET name = 'Needs' WHERE name = 'Requirement'" -c "ANALYZE" >/dev/null
report "3 renames"
