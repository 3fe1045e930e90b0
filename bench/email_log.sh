#!/usr/bin/env bash
# bench/email_log.sh: e-mail logging throughput -- crm.log_email() against a
# plain INSERT of an e-mail activity on the contact, side by side in one run.
#
#   bash bench/email_log.sh
#       CLIENTS=8 SECONDS_EACH=15 ROUNDS=3 EXISTING=20000
#
# The database holds EXISTING contacts on EXISTING/10 accounts and EXISTING
# open leads (distinct e-mail addresses, analysed), and EXISTING logged
# e-mails.  Throughput: pgbench with CLIENTS clients for SECONDS_EACH seconds
# per case, in alternating order, ROUNDS rounds:
#   activity  a crm_sales login runs INSERT INTO crm.activity (type 'email',
#             subject, description, contact_id, starts_at) -- what a rep records by
#             hand for a mail (row-level security, every trigger);
#   log       the same login runs crm.log_email() of a new message from one
#             contact to one lead, cc'ing an unknown address (key locks,
#             address lookups by index, the insert, three links);
#   relog     crm.log_email() of one of the EXISTING logged messages again
#             (first writer wins: the lookup and the link completion).
# The table gives the median transactions per second and the median of the
# per-round ratios to activity.  fsync is off: the numbers are CPU work.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

CLIENTS=${CLIENTS:-8}
SECONDS_EACH=${SECONDS_EACH:-15}
ROUNDS=${ROUNDS:-3}
EXISTING=${EXISTING:-20000}

ensure_packages
build_and_install >&2
WORK=$(mktemp -d /tmp/crm-bench-email.XXXXXX)
chmod 755 "$WORK"
trap 'stop_cluster "$WORK/cluster"; rm -rf "$WORK"' EXIT
start_cluster "$WORK/cluster" >&2
psql_q() { as_cluster_user psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres "$@"; }

psql_q -d postgres -c "CREATE DATABASE bench"
psql_q -d bench <<SQL
SET client_min_messages = error;
CREATE EXTENSION crm CASCADE;
DO \$\$ BEGIN
    CREATE ROLE bench_rep LOGIN IN ROLE crm_sales;
EXCEPTION WHEN duplicate_object THEN NULL; END \$\$;
UPDATE crm.settings SET duplicate_policy_lead = 'allow', duplicate_policy_account = 'allow', duplicate_policy_contact = 'allow';
INSERT INTO crm.account (name, owner) SELECT 'Account ' || g, 'bench_rep' FROM generate_series(1, $EXISTING / 10) g;
INSERT INTO crm.contact (name, email, account_id, owner)
    SELECT 'Contact ' || g, 'c' || g || '@c' || g || '.example', 1 + g % ($EXISTING / 10), 'bench_rep'
      FROM generate_series(1, $EXISTING) g;
INSERT INTO crm.lead (name, company, email, owner)
    SELECT 'Lead ' || g, 'Company ' || g, 'l' || g || '@l' || g || '.example', 'bench_rep'
      FROM generate_series(1, $EXISTING) g;
SELECT count(crm.log_email('old' || g || '@bench.example', 'inbound', 'c' || g || '@c' || g || '.example',
                           ARRAY['rep@ours.example'], subject => 'Old ' || g))
  FROM generate_series(1, $EXISTING) g;
ANALYZE;
SQL

cat >"$WORK/activity.pgbench" <<SQL
\set n random(1, $EXISTING)
INSERT INTO crm.activity (type, subject, description, contact_id, starts_at) VALUES ('email', 'Mail ' || :n, 'Hello', :n, now());
SQL
cat >"$WORK/log.pgbench" <<SQL
\set n random(1, $EXISTING)
\set m random(1, 1000000000000)
SELECT crm.log_email('new' || :m || '.' || :client_id || '@bench.example', 'outbound', 'c' || :n || '@c' || :n || '.example',
                     ARRAY['l' || :n || '@l' || :n || '.example'], ARRAY['someone@else.example'], 'Mail ' || :n, 'Hello');
SQL
cat >"$WORK/relog.pgbench" <<SQL
\set n random(1, $EXISTING)
SELECT crm.log_email('old' || :n || '@bench.example', 'inbound', 'c' || :n || '@c' || :n || '.example', ARRAY['rep@ours.example']);
SQL
chmod 644 "$WORK"/*.pgbench

tps() {
    as_cluster_user "$PG_BIN/pgbench" -n -h "$PGHOST" -p "$PGPORT" -U bench_rep -c "$CLIENTS" -j "$CLIENTS" -T "$SECONDS_EACH" \
        -f "$WORK/$1.pgbench" bench 2>&1 | sed -nE 's/^tps = ([0-9.]+) .*/\1/p'
}

declare -A runs ratios
for ((r = 0; r < ROUNDS; r++)); do
    if ((r % 2 == 0)); then order="activity log relog"; else order="relog log activity"; fi
    declare -A this=()
    for c in $order; do this[$c]=$(tps "$c"); runs[$c]+="${this[$c]} "; done
    for c in activity log relog; do ratios[$c]+="$(echo "${this[$c]} / ${this[activity]}" | bc -l) "; done
    log "round $((r + 1)): activity ${this[activity]}, log ${this[log]}, relog ${this[relog]} tps"
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
printf '\n%-10s %8s %10s %10s   %s\n' case clients tps ratio 'each round: tps'
for c in activity log relog; do
    printf '%-10s %8s %10.0f %10.2f   %s  (ratio to activity)\n' "$c" "$CLIENTS" "$(echo "${runs[$c]}" | median)" \
        "$(echo "${ratios[$c]}" | median)" "${runs[$c]}"
done
psql_q -d bench -c "SELECT count(*) AS emails, (SELECT count(*) FROM crm.email_link) AS links FROM crm.email"
