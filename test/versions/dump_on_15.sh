#!/usr/bin/env bash
# test/versions/dump_on_15.sh: the source of the cross-version restores.
#
# On PostgreSQL 15 (the oldest tested major), a database with crm and data
# (test/lib/dataset.sh: the demo data set, conversions, changed seeds,
# several aggregate stripes, sequences past their tables) is dumped the
# documented way (README "Backup and restore"): the roles with
# pg_dumpall --roles-only, the database with pg_dump, custom format and plain
# SQL.  Into $CRM_DUMP_DIR go the dumps, the source's fingerprint (every
# table, sequence and view) and the ids its next inserts get, for
# test/versions/restore_on_new.sh to compare with on 17 and 18.  The source's
# aggregates are exact (crm.verify_aggregates() returns nothing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/common.sh
source test/lib/dataset.sh

[ -n "${CRM_DUMP_DIR:-}" ] || fail "CRM_DUMP_DIR is not set (scripts/test.sh --all-versions sets it)"
[ "$PG_MAJOR" = 15 ] || fail "the cross-version dump is taken on PostgreSQL 15, not $PG_MAJOR"

test_cluster crm-dump15
psql_as postgres postgres -c "CREATE DATABASE crm_src"
fill_crm_db crm_src
[ "$(psql_as postgres crm_src -c "SELECT count(*) FROM crm.verify_aggregates()")" = 0 ] \
    || fail "the source's aggregates are not exact"

mkdir -p "$CRM_DUMP_DIR"
chmod 755 "$CRM_DUMP_DIR"
[ "$(id -u)" -ne 0 ] || chown "$(cluster_user)": "$CRM_DUMP_DIR"
as_cluster_user pg_dumpall --roles-only -h "$PGHOST" -p "$PGPORT" -U postgres -f "$CRM_DUMP_DIR/roles.sql" 2>>"$WORK/dump.log" \
    || { cat "$WORK/dump.log" >&2; fail "pg_dump or pg_dumpall on 15 failed"; }
as_cluster_user pg_dump -Fc -h "$PGHOST" -p "$PGPORT" -U postgres -d crm_src -f "$CRM_DUMP_DIR/crm.dump" 2>>"$WORK/dump.log" \
    || { cat "$WORK/dump.log" >&2; fail "pg_dump or pg_dumpall on 15 failed"; }
as_cluster_user pg_dump -h "$PGHOST" -p "$PGPORT" -U postgres -d crm_src -f "$CRM_DUMP_DIR/crm.sql" 2>>"$WORK/dump.log" \
    || { cat "$WORK/dump.log" >&2; fail "pg_dump or pg_dumpall on 15 failed"; }
fingerprint crm_src >"$CRM_DUMP_DIR/source.txt"
[ "$(grep -c '^r ' "$CRM_DUMP_DIR/source.txt")" -ge 30 ] || fail "the fingerprint covers too few tables"
next_ids crm_src >"$CRM_DUMP_DIR/next_ids.txt"
psql_as postgres crm_src -c "SHOW server_version_num" >"$CRM_DUMP_DIR/server_version_num"
echo "ok: PostgreSQL $(cat "$CRM_DUMP_DIR/server_version_num"): crm_src with $stripes aggregate stripes dumped (roles, custom, plain) into $CRM_DUMP_DIR"
