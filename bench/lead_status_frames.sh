#!/usr/bin/env bash
# bench/lead_status_frames.sh: the cost of the lead status history's
# statement frames (crm_internal.begin_lead_status(), the BEFORE STATEMENT
# trigger that keeps nested statements' entries in order, src/history.c),
# side by side in one run: the same writes with the trigger enabled and
# disabled, in alternating order, ROUNDS rounds.
#
#   bash bench/lead_status_frames.sh
#       LEADS=100000 SINGLE=5000 ROUNDS=3
#
#   bulk    one UPDATE of the status of LEADS leads (one frame, LEADS entries)
#   single  SINGLE one-row status UPDATEs in a PL/pgSQL loop (a frame each)
#   nested  SINGLE one-row status UPDATEs, each with a second one of the same
#           lead in its RETURNING list (the entries handed on; frames on)
# The table gives the median milliseconds per case and the median of the
# per-round ratios (on / off).  fsync is off: the numbers are CPU work.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

LEADS=${LEADS:-100000}
SINGLE=${SINGLE:-5000}
ROUNDS=${ROUNDS:-3}

build_and_install >&2
WORK=$(mktemp -d /tmp/crm-bench-frames.XXXXXX)
chmod 755 "$WORK"
trap 'stop_cluster "$WORK/cluster"; rm -rf "$WORK"' EXIT
start_cluster "$WORK/cluster" >&2
psql_q() { as_cluster_user psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres "$@"; }

psql_q -d postgres -c "CREATE DATABASE bench"
psql_q -d bench <<SQL
SET client_min_messages = warning;
CREATE EXTENSION crm CASCADE;
INSERT INTO crm.lead (name, company, status)
    SELECT 'Lead ' || g, 'Company ' || g, 'Processing' FROM generate_series(1, $LEADS) g;
ANALYZE;
CREATE FUNCTION flip(bigint) RETURNS bigint LANGUAGE sql AS
\$\$ UPDATE crm.lead SET status = CASE WHEN status = 'Processing' THEN 'Following Up'::crm.lead_status
                                     ELSE 'Processing' END WHERE id = \$1 RETURNING id \$\$;
CREATE FUNCTION timed(kind text, frames boolean) RETURNS numeric LANGUAGE plpgsql AS \$\$
DECLARE
    t0 timestamptz;
    r bigint;
BEGIN
    EXECUTE format('ALTER TABLE crm.lead %s TRIGGER record_lead_status_begin', CASE WHEN frames THEN 'ENABLE' ELSE 'DISABLE' END);
    t0 := clock_timestamp();
    IF kind = 'bulk' THEN
        UPDATE crm.lead SET status = CASE WHEN status = 'Processing' THEN 'Following Up'::crm.lead_status ELSE 'Processing' END;
    ELSIF kind = 'single' THEN
        FOR i IN 1..$SINGLE LOOP
            UPDATE crm.lead SET status = CASE WHEN status = 'Processing' THEN 'Following Up'::crm.lead_status ELSE 'Processing' END
             WHERE id = i;
        END LOOP;
    ELSE
        FOR i IN 1..$SINGLE LOOP
            UPDATE crm.lead SET status = CASE WHEN status = 'Processing' THEN 'Following Up'::crm.lead_status ELSE 'Processing' END
             WHERE id = i RETURNING flip(id) INTO r;
        END LOOP;
    END IF;
    RETURN round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1);
END \$\$;
SQL

printf '%-8s %10s %10s %8s\n' case on_ms off_ms ratio
for kind in bulk single nested; do
    on=(); off=(); ratios=()
    for r in $(seq 1 "$ROUNDS"); do
        if [ $((r % 2)) = 1 ]; then order="true false"; else order="false true"; fi
        for f in $order; do
            ms=$(psql_q -d bench -c "SELECT timed('$kind', $f)")
            psql_q -d bench -c "VACUUM crm.lead, crm.lead_status_history" >/dev/null
            if [ "$f" = true ]; then on+=("$ms"); else off+=("$ms"); fi
        done
        ratios+=("$(awk -v a="${on[-1]}" -v b="${off[-1]}" 'BEGIN { printf "%.3f", a / b }')")
        echo "  round $r: $kind on ${on[-1]} ms, off ${off[-1]} ms" >&2
    done
    med() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
    if [ "$kind" = nested ]; then
        printf '%-8s %10s %10s %8s  (off: entries out of order)\n' "$kind" "$(med "${on[@]}")" "$(med "${off[@]}")" "$(med "${ratios[@]}")"
    else
        printf '%-8s %10s %10s %8s\n' "$kind" "$(med "${on[@]}")" "$(med "${off[@]}")" "$(med "${ratios[@]}")"
    fi
done
