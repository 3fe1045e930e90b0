#!/usr/bin/env bash
# test/scripts/capture_refusal_flood.sh: a crm_intake login flooding
# crm.capture_lead() with refused captures from many connections at once
# (README "Lead capture", refused captures) must not take more than one
# background worker slot: each refusal is recorded by a worker, and the
# workers run one at a time in the whole cluster (the capture-log lock), so
# parallel queries, logical replication and other extensions still find
# max_worker_processes slots.
#
# FLOOD_CLIENTS (default 8) connections each send FLOOD_CAPTURES (default
# 25) refused captures; a sampler counts the running "crm capture log"
# workers meanwhile.  Checks: never more than one at a time, and every
# refusal recorded in crm.lead_capture.  Before the lock, 12 such clients
# held every slot (parallel queries launched no worker) and most refusals
# went unrecorded.  Prints "FAIL: ..." and exits non-zero on a violation.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/common.sh

CLIENTS=${FLOOD_CLIENTS:-8}
CAPTURES=${FLOOD_CAPTURES:-25}

test_cluster capture_flood
psql_as postgres postgres -c "CREATE DATABASE flood"
psql_as postgres flood <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION crm CASCADE;
CREATE ROLE flood_web LOGIN IN ROLE crm_intake;
SQL

for i in $(seq 1 "$CAPTURES"); do
    echo "SELECT crm.capture_lead(NULL, NULL, 'flood$i@flood.example');"
done > "$WORK/flood.sql"
chmod 644 "$WORK/flood.sql"

pids=()
for c in $(seq 1 "$CLIENTS"); do
    as_cluster_user psql -X -q -h "$PGHOST" -p "$PGPORT" -U flood_web -d flood -f "$WORK/flood.sql" \
        >"$WORK/client$c.out" 2>&1 &
    pids+=($!)
done

max=0
running() { for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
while running; do
    n=$(psql_as postgres flood -c "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE backend_type = 'crm capture log'")
    [ "$n" -le "$max" ] || max=$n
done
for p in "${pids[@]}"; do wait "$p" || true; done

refused=$(cat "$WORK"/client*.out | grep -c 'a capture needs a name' || true)
kept=$(cat "$WORK"/client*.out | grep -c 'The capture was kept as refused' || true)
rows=$(psql_as postgres flood -c "SELECT count(*) FROM crm.lead_capture WHERE outcome = 'refused'")
echo "clients $CLIENTS, refusals $refused, recorded $kept ($rows rows), most workers at once $max"
[ "$refused" -eq $((CLIENTS * CAPTURES)) ] || fail "expected $((CLIENTS * CAPTURES)) refusals, got $refused"
[ "$max" -le 1 ] || fail "$max refusal workers ran at once (at most 1 may)"
[ "$kept" -eq "$refused" ] && [ "$rows" -eq "$refused" ] || fail "only $kept of $refused refusals recorded ($rows rows)"
echo "capture_refusal_flood: ok"
