#!/usr/bin/env bash
# bench/reports.sh: what each BI view's dashboard query costs at 10,000 and
# at 1,000,000 rows, and how much it grows -- side by side in one run
# (issue 22: every report in at most 50 ms and O(groups), not O(rows)).
#
#   bash bench/reports.sh
#       SIZES="10000 1000000"  opportunities (= leads) per database; the
#                              first is the small size, the last the big one
#       RUNS=5                 timed runs per query (after one warm-up)
#       OWNERS=20 CAMPAIGNS=10
#       BULK=1                 then run bench/bulk_writes.sh if it exists
#       MIN_FREE_GB=12         refuse to start with less free space in /tmp
#
# Data (bench/reports_data.sql): per size N, N leads, N opportunities and
# N/5 accounts (one contact each), two history rows per opportunity,
# OWNERS owners (bench_rep1.., crm_sales logins) owning 1/OWNERS of every
# table, CAMPAIGNS campaigns, 3 currencies with a rate per month, close
# dates over 24 months (some open deals without one), won and lost deals
# with closed_at, leads over every status with their status history.
# Loaded with the triggers off (session_replication_role = replica) in big
# INSERT ... SELECT statements, the database-set columns and histories
# written by the loader, then crm.rebuild_aggregates(); at the small size
# crm.verify_aggregates() must return no row (the load is faithful: its row
# count is printed).  VACUUM ANALYZE before timing.
#
# Timing: each query's EXPLAIN (ANALYZE) "Execution Time", the median of
# RUNS runs after one warm-up, as the superuser (postgres: no row-level
# security) and as bench_rep1 (a crm_sales login: row-level security
# applies, it owns 1/OWNERS of the data), each role in one session per
# database (the extension's plans are kept per session), the queries
# interleaved run by run.  growth = time at the big size / time at the
# small size; "flat" when it is under 3x, "GROWS" otherwise.  "(floor)
# accounts of one owner" is no report: the bare read of one owner's accounts
# and their role names under the same row-level security, what one owner's
# account rollup cannot go below.  A view or
# function not installed is skipped with a note.  fsync is off: the
# numbers are CPU work, not disk.  About 12 minutes with the default
# sizes on the project machine (most of it loading the 1M database).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

SIZES=${SIZES:-"10000 1000000"}
RUNS=${RUNS:-5}
OWNERS=${OWNERS:-20}
CAMPAIGNS=${CAMPAIGNS:-10}
BULK=${BULK:-1}
MIN_FREE_GB=${MIN_FREE_GB:-12}
START=$(date +%s)
read -r -a SIZE_LIST <<<"$SIZES"
SMALL=${SIZE_LIST[0]}
BIG=${SIZE_LIST[${#SIZE_LIST[@]} - 1]}

df -h /tmp >&2
free_gb=$(df -P -BG /tmp | awk 'NR == 2 { sub(/G$/, "", $4); print $4 }')
if [ "$free_gb" -lt "$MIN_FREE_GB" ]; then
    echo "only ${free_gb} GB free in /tmp, need ${MIN_FREE_GB} (MIN_FREE_GB)" >&2
    exit 1
fi

ensure_packages
build_and_install >&2
WORK=$(mktemp -d /tmp/crm-bench-reports.XXXXXX)
chmod 755 "$WORK"
trap 'stop_cluster "$WORK/cluster"; rm -rf "$WORK"' EXIT
start_cluster "$WORK/cluster" >&2
cp "$REPO_ROOT/bench/reports_data.sql" "$WORK/data.sql"
chmod 644 "$WORK/data.sql"
psql_q() { as_cluster_user psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres "$@"; }
psql_q -d postgres -c "ALTER SYSTEM SET max_wal_size = '8GB'" -c "ALTER SYSTEM SET checkpoint_timeout = '30min'" \
    -c "SELECT pg_reload_conf()" >/dev/null

# one database per size
for n in "${SIZE_LIST[@]}"; do
    db=reports_$n
    t0=$(date +%s)
    psql_q -d postgres -c "CREATE DATABASE $db"
    psql_q -d "$db" -c "SET client_min_messages = warning" -c "CREATE EXTENSION crm CASCADE"
    # the roles are the cluster's: made once, with the first database
    psql_q -d "$db" <<SQL
SELECT format('CREATE ROLE bench_rep%s LOGIN IN ROLE crm_sales', g)
  FROM generate_series(1, $OWNERS) g
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_rep' || g) \gexec
SQL
    psql_q -d "$db" -v n_leads="$n" -v n_opps="$n" -v n_accounts=$((n / 5 / OWNERS * OWNERS)) \
        -v owners="$OWNERS" -v campaigns="$CAMPAIGNS" -f "$WORK/data.sql" >/dev/null
    groups=$(psql_q -d "$db" -c "SELECT crm.rebuild_aggregates()")
    psql_q -d "$db" -c "VACUUM ANALYZE"
    log "$db: $n leads and opportunities, $((n / 5 / OWNERS * OWNERS)) accounts, $groups aggregate groups, loaded in $(( $(date +%s) - t0 )) s"
    if [ "$n" = "$SMALL" ]; then
        bad=$(psql_q -d "$db" -c "SELECT count(*) FROM crm.verify_aggregates()")
        VERIFY="crm.verify_aggregates() at $n rows: $bad rows (0: the load is faithful)"
        log "$VERIFY"
    fi
done

# the dashboard queries: label|query|kind (kind: view or function, the name
# that must exist for the query to run)
REP_ACCOUNT=$(psql_q -d "reports_$SMALL" -c "SELECT min(id) FROM crm.account WHERE owner = 'bench_rep1'::regrole")
QUERIES=(
    "sales_funnel|SELECT * FROM crm.sales_funnel|crm.sales_funnel"
    "sales_funnel_snapshot|SELECT * FROM crm.sales_funnel_snapshot|crm.sales_funnel_snapshot"
    "lead_conversion_rates|SELECT * FROM crm.lead_conversion_rates|crm.lead_conversion_rates"
    "lead_conversion_rates source|SELECT * FROM crm.lead_conversion_rates WHERE dimension = 'source'|crm.lead_conversion_rates"
    "sales_performance|SELECT * FROM crm.sales_performance|crm.sales_performance"
    "stage_velocity|SELECT * FROM crm.stage_velocity|crm.stage_velocity"
    "pipeline_by_stage|SELECT * FROM crm.pipeline_by_stage|crm.pipeline_by_stage"
    "forecast_by_month|SELECT * FROM crm.forecast_by_month|crm.forecast_by_month"
    "campaign_performance|SELECT * FROM crm.campaign_performance|crm.campaign_performance"
    "account_rollup top open|SELECT * FROM crm.account_rollup ORDER BY open_amount DESC LIMIT 20|crm.account_rollup"
    "account_rollup top won|SELECT * FROM crm.account_rollup ORDER BY won_amount DESC LIMIT 20|crm.account_rollup"
    "account_rollup one account|SELECT * FROM crm.account_rollup WHERE account_id = $REP_ACCOUNT|crm.account_rollup"
    "account_rollup one owner|SELECT * FROM crm.account_rollup WHERE owner = 'bench_rep1'|crm.account_rollup"
    "(floor) accounts of one owner|SELECT a.id, a.name, r.rolname::text FROM crm.account AS a JOIN pg_roles AS r ON r.oid = a.owner::oid WHERE r.rolname::text = 'bench_rep1'|crm.account"
    "top_accounts open|SELECT * FROM crm.top_accounts('open_amount', 20)|crm.top_accounts(text,integer,text)"
    "top_accounts won|SELECT * FROM crm.top_accounts('won_amount', 20)|crm.top_accounts(text,integer,text)"
    "top_accounts one owner|SELECT * FROM crm.top_accounts('open_amount', 20, 'bench_rep1')|crm.top_accounts(text,integer,text)"
    "pipeline_as_of(now()-1 day)|SELECT * FROM crm.pipeline_as_of(now() - interval '1 day')|crm.pipeline_as_of(timestamptz)"
)
ROLES=(postgres bench_rep1)
declare -a RUN_LABELS=() RUN_SQL=()
NOTES=()
for entry in "${QUERIES[@]}"; do
    IFS='|' read -r label sql name <<<"$entry"
    if [[ $name == *"("* ]]; then
        found=$(psql_q -d "reports_$SMALL" -c "SELECT to_regprocedure('$name') IS NOT NULL")
    else
        found=$(psql_q -d "reports_$SMALL" -c "SELECT to_regclass('$name') IS NOT NULL")
    fi
    if [ "$found" = t ]; then
        RUN_LABELS+=("$label")
        RUN_SQL+=("$sql")
    else
        NOTES+=("skipped $label: $name does not exist")
    fi
done

# timings DB ROLE: one session; round 0 is the warm-up; output lines
# "round|label|ms" (ms empty when the query failed)
timings() {
    local db=$1 role=$2 r i
    {
        echo "SET client_min_messages = warning;"
        for r in $(seq 0 "$RUNS"); do
            for i in "${!RUN_LABELS[@]}"; do
                echo "\\echo @@ $r|${RUN_LABELS[$i]}"
                echo "EXPLAIN (ANALYZE) ${RUN_SQL[$i]};"
            done
        done
        echo "\\echo @@ end"
    } >"$WORK/timings.sql"
    chmod 644 "$WORK/timings.sql"
    as_cluster_user psql -X -q -At -h "$PGHOST" -p "$PGPORT" -U "$role" -d "$db" -f "$WORK/timings.sql" 2>&1 |
        awk '/^@@ / { if (key != "") print key "|" ms; key = substr($0, 4); ms = ""; next }
             /^Execution Time:/ { ms = $3 }
             /ERROR:/ && key != "" { err[key] = $0 }
             END { }' || true
}

for n in "${SIZE_LIST[@]}"; do
    for role in "${ROLES[@]}"; do
        log "timing reports_$n as $role"
        timings "reports_$n" "$role" | sed "s/^/$n|$role|/" >>"$WORK/times"
    done
done

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# med N ROLE LABEL: the median of the timed runs (round > 0)
med() {
    awk -F'|' -v n="$1" -v r="$2" -v l="$3" '$1 == n && $2 == r && $3 > 0 && $4 == l && $5 != "" { print $5 }' "$WORK/times" | median
}

echo
echo "EXPLAIN (ANALYZE) execution time, median of $RUNS runs after one warm-up (ms); sizes: $SIZES leads and opportunities"
echo "$VERIFY"
for role in "${ROLES[@]}"; do
    echo
    if [ "$role" = postgres ]; then echo "as the superuser (no row-level security)"; else echo "as $role (crm_sales login, row-level security: 1/$OWNERS of the rows)"; fi
    printf '%-30s' "view / query"
    for n in "${SIZE_LIST[@]}"; do printf ' %12s' "$n ms"; done
    printf ' %8s  %s\n' growth class
    for label in "${RUN_LABELS[@]}"; do
        printf '%-30s' "$label"
        for n in "${SIZE_LIST[@]}"; do
            v=$(med "$n" "$role" "$label")
            printf ' %12s' "${v:-error}"
        done
        a=$(med "$SMALL" "$role" "$label")
        b=$(med "$BIG" "$role" "$label")
        if [ -n "$a" ] && [ -n "$b" ]; then
            g=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1f", (a > 0) ? b / a : 0 }')
            c=$(awk -v g="$g" -v b="$b" 'BEGIN { print (g < 3) ? "flat" : "GROWS (not O(groups))" }')
            c="$c$(awk -v b="$b" 'BEGIN { if (b > 50) print ", over 50 ms" }')"
            printf ' %7sx  %s\n' "$g" "$c"
        else
            printf ' %8s  %s\n' "-" "failed (see the note below)"
        fi
    done
done
for note in "${NOTES[@]}"; do echo "note: $note"; done
awk -F'|' '$5 == "" && $3 != "end" { print "note: no execution time for " $4 " at " $1 " as " $2 " (the query failed)" }' "$WORK/times" | sort -u

stop_cluster "$WORK/cluster"
rm -rf "$WORK/cluster"
echo
echo "reports: $(( $(date +%s) - START )) s in all"

if [ "$BULK" = 1 ]; then
    echo
    if [ -f "$REPO_ROOT/bench/bulk_writes.sh" ]; then
        echo "bulk writes (bench/bulk_writes.sh):"
        bash "$REPO_ROOT/bench/bulk_writes.sh"
    else
        echo "bulk writes: skipped, bench/bulk_writes.sh does not exist in this tree"
    fi
fi
echo "total: $(( $(date +%s) - START )) s"
