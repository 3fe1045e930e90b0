#!/usr/bin/env bash
# test/versions/pg_upgrade_15_17.sh: pg_upgrade from PostgreSQL 15 to 17
# with crm installed keeps every row, the exact aggregates and a working
# conversion.
#
# Runs where Debian's postgresql-15 and postgresql-17 are both installed (the
# trixie chroot of scripts/versions.sh: trixie's 17 and bookworm's 15), with
# crm installed into each (the 15 build of the same checkout, the 17 build of
# the suite).
#   1. A 15 cluster gets a database with crm and data (test/lib/dataset.sh)
#      that preloads the library in every session, as README "Install" says;
#      its aggregates are exact.
#   2. pg_upgrade --check, then pg_upgrade (copy mode) into a new 17 cluster
#      made by initdb with the same encoding and locale; both succeed.
#   3. On 17: every table, sequence and view of schema crm is identical to
#      the source (same fingerprint), crm is at the same version, its C
#      functions are the 17 library's, the aggregates are exact
#      (crm.verify_aggregates() returns nothing), a sales rep converts a new
#      lead once (a second conversion and one of an old converted lead are
#      refused), and the aggregates are still exact afterwards.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/common.sh
source test/lib/dataset.sh

OLD_BIN=/usr/lib/postgresql/15/bin
NEW_BIN=$PG_BIN
[ "$PG_MAJOR" = 17 ] || fail "this test upgrades to PostgreSQL 17, not $PG_MAJOR"
[ -x "$OLD_BIN/postgres" ] || fail "no PostgreSQL 15 in $OLD_BIN (Debian's postgresql-15 is needed beside 17)"
[ -f "$("$OLD_BIN/pg_config" --pkglibdir 2>/dev/null || echo /usr/lib/postgresql/15/lib)/crm.so" ] \
    || fail "crm is not installed into PostgreSQL 15"
[ -x "$NEW_BIN/pg_upgrade" ] || fail "no pg_upgrade in $NEW_BIN"

# the 15 cluster, filled
PG_BIN=$OLD_BIN
test_cluster crm-pgupgrade
old=$WORK/cluster
[ "$(psql_as postgres postgres -c "SHOW server_version_num")" -lt 160000 ] || fail "the old cluster is not PostgreSQL 15"
psql_as postgres postgres -c "CREATE DATABASE crm_prod"
fill_crm_db crm_prod
psql_as postgres postgres -c "ALTER DATABASE crm_prod SET session_preload_libraries = 'crm'"
[ "$(psql_as postgres crm_prod -c "SELECT count(*) FROM crm.verify_aggregates()")" = 0 ] \
    || fail "the aggregates on 15 are not exact"
fingerprint crm_prod >"$WORK/old.txt"
old_version=$(psql_as postgres crm_prod -c "SELECT extversion FROM pg_extension WHERE extname = 'crm'")
old_num=$(psql_as postgres postgres -c "SHOW server_version_num")
stop_cluster "$old"
PG_BIN=$NEW_BIN
echo "ok: PostgreSQL $old_num: crm_prod with crm $old_version and $stripes aggregate stripes, aggregates exact"

# the new cluster: same encoding and locale, not running
new=$WORK/new
start_cluster "$new" >/dev/null 2>&1 || { cat "$new/server.log" >&2; fail "the 17 cluster did not start"; }
stop_cluster "$new"
(cd "$WORK" && as_cluster_user "$NEW_BIN/pg_upgrade" --check -b "$OLD_BIN" -B "$NEW_BIN" \
    -d "$old/data" -D "$new/data" -U postgres) >"$WORK/check.log" 2>&1 \
    || { cat "$WORK/check.log" >&2; fail "pg_upgrade --check from 15 to 17 failed"; }
(cd "$WORK" && as_cluster_user "$NEW_BIN/pg_upgrade" -b "$OLD_BIN" -B "$NEW_BIN" \
    -d "$old/data" -D "$new/data" -U postgres) >"$WORK/upgrade.log" 2>&1 \
    || { cat "$WORK/upgrade.log" >&2; find "$new/data/pg_upgrade_output.d" -name '*.log' -exec tail -n 30 {} + >&2 2>/dev/null; fail "pg_upgrade from 15 to 17 failed"; }
echo "ok: pg_upgrade --check and pg_upgrade from 15 to 17 succeeded"

as_cluster_user pg_ctl -D "$new/data" -l "$new/server.log" -w -t 60 start >/dev/null \
    || { cat "$new/server.log" >&2; fail "the upgraded cluster did not start"; }
export PGHOST=$new
trap 'stop_cluster "$new" >/dev/null 2>&1 || true
      if [ -n "${CRM_KEEP_TEST_DIR:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi' EXIT
new_num=$(psql_as postgres postgres -c "SHOW server_version_num")
[ "$new_num" -ge 170000 ] && [ "$new_num" -lt 180000 ] || fail "the upgraded cluster is at $new_num, not 17"

fingerprint crm_prod >"$WORK/new.txt"
if ! diff "$WORK/old.txt" "$WORK/new.txt" >&2; then
    fail "crm_prod after pg_upgrade differs from before (lines above: < on 15, > on 17)"
fi
[ "$(psql_as postgres crm_prod -c "SELECT extversion FROM pg_extension WHERE extname = 'crm'")" = "$old_version" ] \
    || fail "crm is not at $old_version after pg_upgrade"
[ "$(psql_as postgres crm_prod -c "SELECT count(*) FROM crm.verify_aggregates()")" = 0 ] \
    || fail "the aggregates are not exact after pg_upgrade"
[ "$(psql_as postgres crm_prod -c "SHOW session_preload_libraries")" = crm ] \
    || fail "crm_prod no longer preloads crm"
echo "ok: PostgreSQL $new_num: every table, sequence and view of crm_prod identical to 15's, aggregates exact"

convert_new_lead crm_prod alice
[ "$(psql_as postgres crm_prod -c "SELECT count(*) FROM crm.verify_aggregates()")" = 0 ] \
    || fail "the aggregates are not exact after a conversion on the upgraded cluster"
echo "ok: on the upgraded cluster a rep converts a new lead once, a converted lead is refused, the aggregates stay exact"
