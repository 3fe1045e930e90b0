#!/usr/bin/env bash
# bench/capture.sh: lead capture throughput -- crm.capture_lead() against a
# plain INSERT of the same lead, side by side in one run; and the cost of a
# refused capture against an accepted one.
#
#   bash bench/capture.sh
#       CLIENTS=8 SECONDS_EACH=15 ROUNDS=3 EXISTING=20000
#
# The database holds EXISTING leads (distinct e-mails and phones, analysed).
# Throughput: pgbench with CLIENTS clients for SECONDS_EACH seconds per case,
# in alternating order, ROUNDS rounds:
#   insert   a crm_sales login runs INSERT INTO crm.lead (name, company,
#            email, phone, source) -- the row a capture makes, written the
#            plain way (row-level security, every trigger);
#   capture  a crm_intake login runs crm.capture_lead() with the same values:
#            a new person each time (new lead; the worst case: lookup and
#            insert);
#   merge    the same, each capture naming one of the EXISTING leads'
#            e-mail addresses (merged into it; the lead's empty title is
#            filled the first time).
# Refusal: one client, SECONDS_EACH seconds, captures that are accepted
# against captures refused for a malformed e-mail address (each refusal
# starts a background worker that commits the refusal row), both inside a
# PL/pgSQL block that catches the error so pgbench keeps running.
# The table gives the median transactions per second and the median of the
# per-round ratios.  fsync is off: the numbers are CPU work, not disk.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

CLIENTS=${CLIENTS:-8}
SECONDS_EACH=${SECONDS_EACH:-15}
ROUNDS=${ROUNDS:-3}
EXISTING=${EXISTING:-20000}

ensure_packages
build_and_install >&2
WORK=$(mktemp -d /tmp/crm-bench-capture.XXXXXX)
chmod 755 "$WORK"
trap 'stop_cluster "$WORK/cluster"; rm -rf "$WORK"' EXIT
start_cluster "$WORK/cluster" >&2
psql_q() { as_cluster_user psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres "$@"; }

psql_q -d postgres -c "CREATE DATABASE bench"
psql_q -d bench <<SQL
SET client_min_messages = warning;
CREATE EXTENSION crm CASCADE;
DO \$\$ BEGIN
    CREATE ROLE bench_web LOGIN IN ROLE crm_intake;
    CREATE ROLE bench_rep LOGIN IN ROLE crm_sales;
EXCEPTION WHEN duplicate_object THEN NULL; END \$\$;
INSERT INTO crm.lead (name, company, email, phone)
    SELECT 'Lead ' || g, 'Old Company ' || g, 'old' || g || '@old' || g || '.example', '+1 646 ' || lpad(g::text, 7, '0')
      FROM generate_series(1, $EXISTING) g;
ANALYZE;
SQL

cat >"$WORK/insert.pgbench" <<'SQL'
\set n random(1, 1000000000000)
INSERT INTO crm.lead (name, company, email, phone, source)
VALUES ('Web ' || :n, 'Web Company ' || :n, 'w' || :n || '.' || :client_id || '@web' || :n || '.example', NULL, 'website');
SQL
cat >"$WORK/capture.pgbench" <<'SQL'
\set n random(1, 1000000000000)
SELECT crm.capture_lead('Web ' || :n, 'Web Company ' || :n, 'w' || :n || '.' || :client_id || '@web' || :n || '.example');
SQL
cat >"$WORK/merge.pgbench" <<SQL
\set n random(1, $EXISTING)
SELECT crm.capture_lead('Lead ' || :n, NULL, 'old' || :n || '@old' || :n || '.example', NULL, 'website', NULL, '{"title": "Buyer"}');
SQL
cat >"$WORK/accepted.pgbench" <<'SQL'
\set n random(1, 1000000000000)
DO $$ BEGIN PERFORM crm.capture_lead('Web', NULL, 'ok' || (random() * 1e12)::bigint || '@ok.example'); EXCEPTION WHEN OTHERS THEN NULL; END $$;
SQL
cat >"$WORK/refused.pgbench" <<'SQL'
DO $$ BEGIN PERFORM crm.capture_lead('Web', NULL, 'not an address'); EXCEPTION WHEN OTHERS THEN NULL; END $$;
SQL
chmod 644 "$WORK"/*.pgbench

# tps CASE USER CLIENTS: transactions per second of one pgbench run
tps() {
    as_cluster_user "$PG_BIN/pgbench" -n -h "$PGHOST" -p "$PGPORT" -U "$2" -c "$3" -j "$3" -T "$SECONDS_EACH" \
        -f "$WORK/$1.pgbench" bench 2>&1 | sed -nE 's/^tps = ([0-9.]+) .*/\1/p'
}

declare -A runs ratios
for ((r = 0; r < ROUNDS; r++)); do
    if ((r % 2 == 0)); then order="insert capture merge"; else order="merge capture insert"; fi
    declare -A this=()
    for c in $order; do
        user=bench_web; [ "$c" = insert ] && user=bench_rep
        this[$c]=$(tps "$c" "$user" "$CLIENTS")
        runs[$c]+="${this[$c]} "
    done
    for c in insert capture merge; do ratios[$c]+="$(echo "${this[$c]} / ${this[insert]}" | bc -l) "; done
    if ((r % 2 == 0)); then order="accepted refused"; else order="refused accepted"; fi
    for c in $order; do this[$c]=$(tps "$c" bench_web 1); runs[$c]+="${this[$c]} "; done
    for c in accepted refused; do ratios[$c]+="$(echo "${this[$c]} / ${this[accepted]}" | bc -l) "; done
    log "round $((r + 1)): insert ${this[insert]}, capture ${this[capture]}, merge ${this[merge]}, accepted ${this[accepted]}, refused ${this[refused]} tps"
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
printf '\n%-10s %8s %10s %10s   %s\n' case clients tps ratio 'each round: tps'
for c in insert capture merge accepted refused; do
    n=$CLIENTS; base=insert
    case $c in accepted|refused) n=1; base=accepted ;; esac
    printf '%-10s %8s %10.0f %10.2f   %s  (ratio to %s)\n' "$c" "$n" "$(echo "${runs[$c]}" | median)" \
        "$(echo "${ratios[$c]}" | median)" "${runs[$c]}" "$base"
done
printf '\nrefused capture latency / accepted capture latency: %.1f\n' \
    "$(echo "1 / $(echo "${ratios[refused]}" | median)" | bc -l)"
psql_q -d bench -c "SELECT outcome, count(*) FROM crm.lead_capture GROUP BY outcome ORDER BY 1"
