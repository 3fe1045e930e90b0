#!/usr/bin/env bash
# bench/sharing.sh: cost of the sharing check per deal written, by the size
# of the account -- side by side in one run.
#
#   bash bench/sharing.sh
#       N=1000 SMALL=1000 BIG=100000 ROUNDS=5
#
# A rep writes deals on an account another rep owns and has many deals on;
# the rep sees the account through one deal of its own (the newest).  Every
# deal written runs the INSERT policy's crm.may_reference_account(), which
# asks whether the rep's team has a deal or a lead on the account.  Two
# databases differ only in how many deals the other rep has on that account:
# SMALL and BIG (plus, in both, 1,000 further accounts with 10 deals each).
# In each round the rep inserts N deals in one statement (rolled back, so
# every round starts from the same data) in both databases, in alternating
# order.  The table gives the median milliseconds per statement and per
# deal, and big/small: about 1 when the check costs the same whatever the
# account's size, about BIG/SMALL when it reads the account's deals.
# Data is loaded with triggers off and analysed.  fsync is off: the numbers
# are CPU work, not disk.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

N=${N:-1000}
SMALL=${SMALL:-1000}
BIG=${BIG:-100000}
ROUNDS=${ROUNDS:-5}

ensure_packages
build_and_install >&2
WORK=$(mktemp -d /tmp/crm-bench-sharing.XXXXXX)
chmod 755 "$WORK"
trap 'stop_cluster "$WORK/cluster"; rm -rf "$WORK"' EXIT
start_cluster "$WORK/cluster" >&2
psql_q() { as_cluster_user psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres "$@"; }

# make_db NAME DEALS: account 1 owned by bench_owner with DEALS of its deals
# and then one of bench_rep's; accounts 2..1001 with 10 deals each
make_db() {
    local db=$1 deals=$2
    psql_q -d postgres -c "CREATE DATABASE $db"
    psql_q -d "$db" -c "CREATE EXTENSION crm CASCADE" \
        -c "DO \$\$ BEGIN CREATE ROLE bench_owner IN ROLE crm_sales; CREATE ROLE bench_rep IN ROLE crm_sales;
            EXCEPTION WHEN duplicate_object THEN NULL; END \$\$" \
        -c "SET session_replication_role = replica;
            INSERT INTO crm.account (name, owner) VALUES ('Shared Corp', 'bench_owner');
            INSERT INTO crm.account (name, owner) SELECT 'Account ' || g, 'bench_owner' FROM generate_series(1, 1000) g;
            INSERT INTO crm.opportunity (name, account_id, owner)
            SELECT 'Owner deal ' || g, 1, 'bench_owner' FROM generate_series(1, $deals) g;
            INSERT INTO crm.opportunity (name, account_id, owner) VALUES ('Rep deal', 1, 'bench_rep');
            INSERT INTO crm.opportunity (name, account_id, owner)
            SELECT 'Other deal ' || g, 2 + g % 1000, 'bench_owner' FROM generate_series(1, 10000) g" >/dev/null
    psql_q -d "$db" -c "VACUUM ANALYZE"
}

# insert_ms DB: milliseconds bench_rep takes to insert N deals on account 1
insert_ms() {
    psql_q -d "$1" <<SQL
BEGIN;
SET LOCAL ROLE bench_rep;
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
INSERT INTO crm.opportunity (name, account_id) SELECT 'Bench deal ' || g, 1 FROM generate_series(1, $N) g;
SELECT round((extract(epoch FROM clock_timestamp()) - :t0) * 1000, 1);
ROLLBACK;
SQL
}

log "loading: account with $SMALL and with $BIG deals of another owner"
make_db share_small "$SMALL"
make_db share_big "$BIG"
insert_ms share_small >/dev/null      # warm-up: caches, plans
insert_ms share_big >/dev/null

small=() big=()
for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then
        small+=("$(insert_ms share_small)"); big+=("$(insert_ms share_big)")
    else
        big+=("$(insert_ms share_big)"); small+=("$(insert_ms share_small)")
    fi
    log "round $r: small ${small[-1]} ms, big ${big[-1]} ms"
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ms_small=$(median "${small[@]}")
ms_big=$(median "${big[@]}")

printf '\n%-34s %12s %14s\n' "deals of another owner on account" "ms / $N" "us per deal"
printf '%-34s %12s %14.1f\n' "$SMALL" "$ms_small" "$(echo "$ms_small * 1000 / $N" | bc -l)"
printf '%-34s %12s %14.1f\n' "$BIG" "$ms_big" "$(echo "$ms_big * 1000 / $N" | bc -l)"
printf '%-34s %12.2f\n' "big / small" "$(echo "$ms_big / $ms_small" | bc -l)"
