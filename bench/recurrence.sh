#!/usr/bin/env bash
# bench/recurrence.sh: cost of crm.activity_occurrences() by the size of the
# activity table outside the window -- side by side in one run.
#
#   bash bench/recurrence.sh
#       SMALL=1000 BIG=1000000 SERIES=100 ROUNDS=5
#
# A rep asks for a 31-day calendar window (March 2027).  Both databases hold
# the rep's SERIES weekly series whose open occurrence lies in the week
# before the window (each expands to 4-5 virtual rows) and 100 one-off
# activities in the window; they differ only in how many further activities
# (of the rep and of another owner, half of them tasks due in 2025, half
# recurring series closed long ago) lie outside the window: SMALL and BIG.
# In each round the function runs 20 times in both databases, in
# alternating order.  The table gives the median milliseconds per call and
# big/small: about 1 when the cost is O(series in window + rows returned),
# about BIG/SMALL when it reads the whole table.  Data is loaded with
# triggers off and analysed.  fsync is off: the numbers are CPU work.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

SMALL=${SMALL:-1000}
BIG=${BIG:-1000000}
SERIES=${SERIES:-100}
ROUNDS=${ROUNDS:-5}

ensure_packages
build_and_install >&2
WORK=$(mktemp -d /tmp/crm-bench-recurrence.XXXXXX)
chmod 755 "$WORK"
trap 'stop_cluster "$WORK/cluster"; rm -rf "$WORK"' EXIT
start_cluster "$WORK/cluster" >&2
psql_q() { as_cluster_user psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres "$@"; }

# make_db NAME OUTSIDE
make_db() {
    local db=$1 outside=$2
    psql_q -d postgres -c "CREATE DATABASE $db"
    psql_q -d "$db" -c "CREATE EXTENSION crm CASCADE" \
        -c "DO \$\$ BEGIN CREATE ROLE bench_owner IN ROLE crm_sales; CREATE ROLE bench_rep IN ROLE crm_sales;
            EXCEPTION WHEN duplicate_object THEN NULL; END \$\$" \
        -c "SET session_replication_role = replica;
            INSERT INTO crm.account (name, owner) VALUES ('Rep account', 'bench_rep'), ('Owner account', 'bench_owner');
            INSERT INTO crm.activity (type, subject, account_id, owner, starts_at, recurrence, recurrence_time_zone,
                                      series_id, occurrence_number)
            SELECT 'meeting', 'Series ' || g, 1, 'bench_rep', '2027-02-22 09:00+00'::timestamptz + g * interval '1 hour',
                   'FREQ=WEEKLY', 'UTC', -g, 1 FROM generate_series(1, $SERIES) g;
            INSERT INTO crm.activity (type, subject, account_id, owner, due_at)
            SELECT 'task', 'One-off ' || g, 1, 'bench_rep', '2027-03-01'::timestamptz + g * interval '7 hours'
              FROM generate_series(1, 100) g;
            INSERT INTO crm.activity (type, subject, account_id, owner, due_at, status, completed_at,
                                      recurrence, recurrence_time_zone, series_id, occurrence_number)
            SELECT 'task', 'Old ' || g, 1 + g % 2, CASE WHEN g % 2 = 0 THEN 'bench_rep' ELSE 'bench_owner' END::regrole,
                   '2025-01-01'::timestamptz + (g % 100000) * interval '5 minutes',
                   CASE WHEN g % 4 < 2 THEN 'Planned' ELSE 'Completed' END::crm.activity_status,
                   CASE WHEN g % 4 < 2 THEN NULL ELSE now() END,
                   CASE WHEN g % 4 < 2 THEN NULL ELSE 'FREQ=DAILY' END, 'UTC',
                   CASE WHEN g % 4 < 2 THEN NULL ELSE g END, CASE WHEN g % 4 < 2 THEN NULL ELSE 1 END
              FROM generate_series(1, $outside) g" >/dev/null
    psql_q -d "$db" -c "VACUUM ANALYZE"
}

# call_ms DB: mean milliseconds of one call over 20 calls as bench_rep
call_ms() {
    psql_q -d "$1" <<SQL
SET ROLE bench_rep;
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
SELECT count(*) FROM generate_series(1, 20) AS i,
       LATERAL (SELECT count(*) FROM crm.activity_occurrences('2027-03-01', '2027-04-01') WHERE i > 0) AS o \g /dev/null
SELECT round((extract(epoch FROM clock_timestamp()) - :t0) * 1000 / 20, 2);
SQL
}

log "loading: $SMALL and $BIG activities outside the window"
make_db occ_small "$SMALL"
make_db occ_big "$BIG"
rows=$(psql_q -d occ_big -c "SET ROLE bench_rep; SELECT count(*) || ' rows (' || count(*) FILTER (WHERE is_virtual) || ' virtual)' FROM crm.activity_occurrences('2027-03-01', '2027-04-01')")
call_ms occ_small >/dev/null      # warm-up: caches, plans
call_ms occ_big >/dev/null

small=() big=()
for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then
        small+=("$(call_ms occ_small)"); big+=("$(call_ms occ_big)")
    else
        big+=("$(call_ms occ_big)"); small+=("$(call_ms occ_small)")
    fi
    log "round $r: small ${small[-1]} ms, big ${big[-1]} ms"
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ms_small=$(median "${small[@]}")
ms_big=$(median "${big[@]}")

printf '\nwindow: %s\n' "$rows"
printf '%-36s %12s\n' "activities outside the window" "ms / call"
printf '%-36s %12s\n' "$SMALL" "$ms_small"
printf '%-36s %12s\n' "$BIG" "$ms_big"
printf '%-36s %12.2f\n' "big / small" "$(echo "$ms_big / $ms_small" | bc -l)"
