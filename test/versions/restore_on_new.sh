#!/usr/bin/env bash
# test/versions/restore_on_new.sh: a crm database dumped on PostgreSQL 15
# restores into a newer major (17, 18) the documented way and works there.
#
# Reads what test/versions/dump_on_15.sh left in $CRM_DUMP_DIR.  On this
# major's cluster, README "Backup and restore": the roles first
# (pg_dumpall --roles-only; the only error allowed is the bootstrap
# superuser that exists already), then the custom-format dump with
# pg_restore and the plain dump with psql, both in replica mode and stopping
# at the first error.  Then, for both restored databases:
#   1. every table, sequence and view of schema crm is identical to the
#      source on 15 (same fingerprint), crm is at the same version;
#   2. the aggregates are exact (crm.verify_aggregates() returns nothing);
# and in the custom-format restore:
#   3. the next lead, account, contact and activity get the ids they got on 15;
#   4. a sales rep converts a new lead, a second conversion is refused
#      (ZC002), an already converted lead is refused, and the aggregates are
#      still exact afterwards.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/common.sh
source test/lib/dataset.sh

[ -n "${CRM_DUMP_DIR:-}" ] && [ -f "$CRM_DUMP_DIR/crm.dump" ] \
    || fail "no dump from PostgreSQL 15 in CRM_DUMP_DIR='${CRM_DUMP_DIR:-}' (test/versions/dump_on_15.sh makes it)"
[ "$PG_MAJOR" -gt 15 ] || fail "the restore goes into a newer major than 15, not $PG_MAJOR"

test_cluster crm-restore
[ "$(psql_as postgres postgres -c "SHOW server_version_num")" -ge $((PG_MAJOR * 10000)) ] || fail "not PostgreSQL $PG_MAJOR"

as_cluster_user psql -X -q -h "$PGHOST" -p "$PGPORT" -U postgres -d postgres -f "$CRM_DUMP_DIR/roles.sql" >"$WORK/roles.log" 2>&1 || true
if grep 'ERROR' "$WORK/roles.log" | grep -v 'role "postgres" already exists' >&2; then
    fail "restoring the roles of 15 failed (above)"
fi

psql_as postgres postgres -c "CREATE DATABASE crm_custom" -c "CREATE DATABASE crm_plain"
restore_documented crm_custom "$CRM_DUMP_DIR/crm.dump"
restore_documented crm_plain "$CRM_DUMP_DIR/crm.sql"

version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" crm.control)
for db in crm_custom crm_plain; do
    fingerprint "$db" >"$WORK/$db.txt"
    if ! diff "$CRM_DUMP_DIR/source.txt" "$WORK/$db.txt" >&2; then
        fail "$db on $PG_MAJOR differs from the source on 15 (lines above: < source, > restored)"
    fi
    [ "$(psql_as postgres "$db" -c "SELECT extversion FROM pg_extension WHERE extname = 'crm'")" = "$version" ] \
        || fail "$db: crm is not at $version"
    mismatches=$(psql_as postgres "$db" -c "SELECT count(*) FROM crm.verify_aggregates()")
    [ "$mismatches" = 0 ] || fail "$db: verify_aggregates() reports $mismatches mismatches"
    echo "ok: $db: the dump of $(cat "$CRM_DUMP_DIR/server_version_num") restored into $(psql_as postgres "$db" -c "SHOW server_version_num"): every table, sequence and view identical, aggregates exact"
done

restored_next=$(next_ids crm_custom)
[ "$restored_next" = "$(cat "$CRM_DUMP_DIR/next_ids.txt")" ] \
    || fail "next ids differ: on 15 '$(cat "$CRM_DUMP_DIR/next_ids.txt")', restored on $PG_MAJOR '$restored_next'"
echo "ok: the next lead, account, contact and activity get the ids they got on 15 ($restored_next)"

convert_new_lead crm_custom alice
mismatches=$(psql_as postgres crm_custom -c "SELECT count(*) FROM crm.verify_aggregates()")
[ "$mismatches" = 0 ] || fail "after a conversion on $PG_MAJOR, verify_aggregates() reports $mismatches mismatches"
echo "ok: on $PG_MAJOR a rep converts a new lead once, a converted lead is refused, the aggregates stay exact"
