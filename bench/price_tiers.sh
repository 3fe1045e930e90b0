#!/usr/bin/env bash
# bench/price_tiers.sh: cost of quantity tiers and the validity window when
# line items are priced -- one INSERT ... SELECT of N opportunity lines
# taking their default price, with no tiers and with TIERS tiers on every
# price book entry, side by side in one run.
#
#   bash bench/price_tiers.sh
#       N=20000 ROUNDS=3 PRODUCTS=1000 TIERS=5
#
# Each round inserts N lines over 200 opportunities in one statement, rolled
# back, into the database without tiers ("none") and the one with tiers
# ("tiers"), in rotating order.  Prints the median seconds per statement,
# the median of the per-round ratios to "none" and every round.  fsync is
# off: the numbers are CPU work, not disk.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

N=${N:-20000}
ROUNDS=${ROUNDS:-3}
PRODUCTS=${PRODUCTS:-1000}
TIERS=${TIERS:-5}

ensure_packages
build_and_install >&2
WORK=$(mktemp -d /tmp/crm-bench-tiers.XXXXXX)
chmod 755 "$WORK"
trap 'stop_cluster "$WORK/cluster"; rm -rf "$WORK"' EXIT
start_cluster "$WORK/cluster" >&2
psql_q() { as_cluster_user psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres "$@"; }

psql_q -d postgres -c "CREATE DATABASE bench_none"
psql_q -d bench_none <<SQL
SET client_min_messages = warning;
CREATE EXTENSION crm CASCADE;
INSERT INTO crm.product (code, name, list_price) SELECT 'P-' || g, 'Product ' || g, 100 FROM generate_series(1, $PRODUCTS) g;
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price) SELECT 1, id, list_price FROM crm.product;
INSERT INTO crm.account (name) VALUES ('Acme');
INSERT INTO crm.opportunity (name, account_id) SELECT 'Deal ' || g, 1 FROM generate_series(1, 200) g;
ANALYZE;
SQL
psql_q -d postgres -c "CREATE DATABASE bench_tiers TEMPLATE bench_none"
psql_q -d bench_tiers -c "INSERT INTO crm.price_book_tier (price_book_entry_id, min_quantity, unit_price)
                           SELECT e.id, t * 10, 100 - t FROM crm.price_book_entry e, generate_series(1, $TIERS) t" -c "ANALYZE"

# one timed statement in database $1: seconds
run() {
    psql_q -d "$1" <<SQL | tail -1
SET client_min_messages = error;
BEGIN;
\timing on
INSERT INTO crm.opportunity_line_item (opportunity_id, product_id, quantity)
    SELECT 1 + g % 200, 1 + g % $PRODUCTS, 1 + g % 60 FROM generate_series(1, $N) g;
\timing off
ROLLBACK;
SQL
}

declare -A times
for r in $(seq 1 "$ROUNDS"); do
    if (( r % 2 )); then order="none tiers"; else order="tiers none"; fi
    for v in $order; do
        ms=$(run "bench_$v" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
        times[$v,$r]=$ms
    done
done
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
echo "N=$N lines, $PRODUCTS products, $TIERS tiers per entry, $ROUNDS rounds"
printf '%-6s %10s %8s   %s\n' variant seconds ratio rounds
for v in none tiers; do
    med=$(for r in $(seq 1 "$ROUNDS"); do echo "${times[$v,$r]}"; done | median)
    ratio=$(for r in $(seq 1 "$ROUNDS"); do echo "${times[$v,$r]} ${times[none,$r]}" | awk '{printf "%.3f\n", $1 / $2}'; done | median)
    rounds=$(for r in $(seq 1 "$ROUNDS"); do echo -n "${times[$v,$r]}ms "; done)
    printf '%-6s %10.3f %8.3f   %s\n' "$v" "$(echo "$med" | awk '{print $1 / 1000}')" "$ratio" "$rounds"
done
