#!/usr/bin/env bash
# bench/contact_roles.sh: cost of keeping the contact roles in step with
# crm.opportunity.contact_id, per deal written -- side by side in one run.
#
#   CRM_PG_ROOT=... bash bench/contact_roles.sh
#       N=2000 ROUNDS=5
#
# Two databases from one template differ only in the three sync triggers
# (opportunity_contact_sync, contact_role_sync, contact_role_removed):
# enabled in "on", disabled in "off".  In each round, in both (alternating
# order), one statement each -- rolled back, so every round starts from the
# same data -- as the superuser (row security is not what is measured):
#   insert   N deals with a contact (on: each gets its primary role row)
#   change   contact_id of N deals (on: old row unmarked, new row upserted)
#   mark     a role row marked primary on N deals (on: deal locked, other
#            row unmarked, contact_id set)
# The table gives the median milliseconds per statement and on / off.
# fsync is off: the numbers are CPU work, not disk.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

N=${N:-2000}
ROUNDS=${ROUNDS:-5}

ensure_packages
build_and_install >&2
WORK=$(mktemp -d /tmp/crm-bench-roles.XXXXXX)
chmod 755 "$WORK"
trap 'stop_cluster "$WORK/cluster"; rm -rf "$WORK"' EXIT
start_cluster "$WORK/cluster" >&2
psql_q() { as_cluster_user psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres "$@"; }

log "loading: $N deals on 100 accounts, two contacts each, the first primary"
psql_q -d postgres -c "CREATE DATABASE roles_tpl"
psql_q -d roles_tpl -c "CREATE EXTENSION crm CASCADE" \
    -c "INSERT INTO crm.account (name) SELECT 'Account ' || g FROM generate_series(1, 100) g;
        INSERT INTO crm.contact (name, account_id) SELECT 'Person ' || g, 1 + g % 100 FROM generate_series(1, 2 * $N) g;
        INSERT INTO crm.opportunity (name, account_id, contact_id) SELECT 'Deal ' || g, 1 + g % 100, g FROM generate_series(1, $N) g;
        INSERT INTO crm.opportunity_contact_role (opportunity_id, contact_id) SELECT g, $N + g FROM generate_series(1, $N) g" >/dev/null
psql_q -d roles_tpl -c "VACUUM ANALYZE"
psql_q -d postgres -c "CREATE DATABASE roles_on TEMPLATE roles_tpl" -c "CREATE DATABASE roles_off TEMPLATE roles_tpl"
psql_q -d roles_off -c "ALTER TABLE crm.opportunity DISABLE TRIGGER opportunity_contact_sync" \
    -c "ALTER TABLE crm.opportunity_contact_role DISABLE TRIGGER contact_role_sync" \
    -c "ALTER TABLE crm.opportunity_contact_role DISABLE TRIGGER contact_role_removed" \
    -c "UPDATE crm.opportunity_contact_role SET is_primary = false WHERE is_primary"   # "mark" must not collide there

# ms DB STATEMENT: milliseconds of one statement, rolled back
ms() {
    psql_q -d "$1" <<SQL
BEGIN;
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
$2;
SELECT round((extract(epoch FROM clock_timestamp()) - :t0) * 1000, 1);
ROLLBACK;
SQL
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A SQL=(
    [insert]="INSERT INTO crm.opportunity (name, account_id, contact_id) SELECT 'New ' || g, 1 + g % 100, g FROM generate_series(1, $N) g"
    [change]="UPDATE crm.opportunity SET contact_id = id + $N"
    [mark]="UPDATE crm.opportunity_contact_role SET is_primary = true WHERE contact_id > $N"
)
printf '\n%-8s %12s %12s %8s\n' "write" "on ms/$N" "off ms/$N" "on/off"
for k in insert change mark; do
    ms roles_on "${SQL[$k]}" >/dev/null; ms roles_off "${SQL[$k]}" >/dev/null   # warm-up
    on=() off=()
    for r in $(seq 1 "$ROUNDS"); do
        if [ $((r % 2)) -eq 1 ]; then
            on+=("$(ms roles_on "${SQL[$k]}")"); off+=("$(ms roles_off "${SQL[$k]}")")
        else
            off+=("$(ms roles_off "${SQL[$k]}")"); on+=("$(ms roles_on "${SQL[$k]}")")
        fi
    done
    m_on=$(median "${on[@]}"); m_off=$(median "${off[@]}")
    printf '%-8s %12s %12s %8.2f\n' "$k" "$m_on" "$m_off" "$(echo "$m_on / $m_off" | bc -l)"
done
