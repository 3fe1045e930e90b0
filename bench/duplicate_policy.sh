#!/usr/bin/env bash
# bench/duplicate_policy.sh: cost of the duplicate check on entry -- one
# INSERT ... SELECT of N leads under each duplicate_policy_lead, side by
# side in one run.
#
#   bash bench/duplicate_policy.sh
#       N=100000 ROUNDS=3 EXISTING=20000 DUPS=1000
#
# The database holds EXISTING leads, EXISTING/10 accounts and EXISTING/2
# contacts (loaded under allow, analysed).  Each round inserts N new leads
# (distinct e-mails, phones and companies) in one statement, rolled back,
# under allow, warn, block, and warn with DUPS of the N leads matching an
# existing lead by e-mail ("warn+dups"), in rotating order.  The table gives
# the median seconds per statement, the median of the per-round ratios to
# allow (bench/README.md "Method"), and every round's time and ratio.  fsync is off:
# the numbers are CPU work, not disk.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

N=${N:-100000}
ROUNDS=${ROUNDS:-3}
EXISTING=${EXISTING:-20000}
DUPS=${DUPS:-1000}

ensure_packages
build_and_install >&2
WORK=$(mktemp -d /tmp/crm-bench-dups.XXXXXX)
chmod 755 "$WORK"
trap 'stop_cluster "$WORK/cluster"; rm -rf "$WORK"' EXIT
start_cluster "$WORK/cluster" >&2
psql_q() { as_cluster_user psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres "$@"; }

psql_q -d postgres -c "CREATE DATABASE bench"
psql_q -d bench <<SQL
SET client_min_messages = warning;
CREATE EXTENSION crm CASCADE;
UPDATE crm.settings SET duplicate_policy_lead = 'allow', duplicate_policy_account = 'allow',
    duplicate_policy_contact = 'allow';
INSERT INTO crm.account (name, website)
    SELECT 'Existing ' || g || ' Ltd', 'https://existing' || g || '.example' FROM generate_series(1, $EXISTING / 10) g;
INSERT INTO crm.contact (name, email, phone, account_id)
    SELECT 'Contact ' || g, 'contact' || g || '@existing' || (g % ($EXISTING / 10) + 1) || '.example',
           '+1 212 ' || lpad(g::text, 7, '0'), g % ($EXISTING / 10) + 1
      FROM generate_series(1, $EXISTING / 2) g;
INSERT INTO crm.lead (name, company, email, phone)
    SELECT 'Lead ' || g, 'Old Company ' || g, 'old' || g || '@old' || g || '.example', '+1 646 ' || lpad(g::text, 7, '0')
      FROM generate_series(1, $EXISTING) g;
ANALYZE;
SQL

# one timed statement: policy, with duplicates (0/1)
run() {
    local policy=$1 dups=$2
    psql_q -d bench <<SQL | tail -1
SET client_min_messages = error;
BEGIN;
UPDATE crm.settings SET duplicate_policy_lead = '$policy';
\timing on
INSERT INTO crm.lead (name, company, email, phone)
    SELECT 'New ' || g, 'New Company ' || g,
           CASE WHEN $dups = 1 AND g <= $DUPS THEN 'old' || g || '@old' || g || '.example'
                ELSE 'new' || g || '@new' || g || '.example' END,
           '+44 20 ' || lpad(g::text, 8, '0')
      FROM generate_series(1, $N) g;
\timing off
ROLLBACK;
SQL
}

declare -A times ratios
cases=("allow 0" "warn 0" "block 0" "warn 1")
for ((r = 0; r < ROUNDS; r++)); do
    declare -A this=()
    for ((i = 0; i < ${#cases[@]}; i++)); do
        c=${cases[$(((i + r) % ${#cases[@]}))]}
        this[$c]=$(run $c | sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p')
        times[$c]+="${this[$c]} "
    done
    for c in "${cases[@]}"; do
        ratios[$c]+="$(echo "${this[$c]} / ${this[allow 0]}" | bc -l) "
    done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
printf '%-10s %10s %8s   %s\n' policy seconds ratio 'each round: ms (ratio to that round'"'"'s allow)'
for c in "${cases[@]}"; do
    label=${c% *}; [ "${c#* }" = 1 ] && label="$label+dups"
    rounds=$(paste -d' ' <(echo "${times[$c]}" | tr ' ' '\n' | grep .) <(echo "${ratios[$c]}" | tr ' ' '\n' | grep .) \
        | awk '{ printf "%.0f (%.2f) ", $1, $2 }')
    printf '%-10s %10.2f %8.2f   %s\n' "$label" "$(echo "$(echo "${times[$c]}" | median) / 1000" | bc -l)" \
        "$(echo "${ratios[$c]}" | median)" "$rounds"
done
