#!/usr/bin/env bash
# test/scripts/dump_restore.sh: pg_dump and pg_restore lose nothing.
#
# A database with every module filled (the demo data set, its conversions and
# order), admin changes to the seeded rows (stages, sources, settings, a
# switch of the standard price book), aggregate stripes written by several
# sessions and sequences advanced past their tables by rolled-back inserts is
# dumped by the superuser and restored into fresh databases the documented way
# (README "Backup and restore": session_replication_role = replica for the
# restoring session), once from a custom-format dump with pg_restore and once
# from a plain SQL dump with psql.  Then:
#   1. every table of schema crm holds the same rows (count and checksum of
#      the sorted rows), seeded and aggregate tables included;
#   2. every sequence of schema crm stands where it stood;
#   3. every view of schema crm returns the same rows, the aggregates are
#      exact (crm.verify_aggregates() returns nothing);
#   4. the next insert into each identity table gets the same id in the
#      original and the restored database, and succeeds (no duplicate key);
#   5. the guards and history triggers work again after the restore;
#   6. a restore that forgets replica mode fails at CREATE EXTENSION, its
#      first statement for crm, with ZC603 and a hint naming the procedure
#      (pg_restore --exit-on-error and psql ON_ERROR_STOP), restores nothing,
#      and the documented restore into the same database then works.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/common.sh

test_cluster crm-dump


# ---------------------------------------------------------------- the source
psql_as postgres postgres -c "CREATE DATABASE crm_src"
psql_as postgres crm_src -c "CREATE EXTENSION crm"
psql_as postgres crm_src -f demo/sample_data.sql >/dev/null
psql_as postgres crm_src -f demo/convert_ready_leads.sql >/dev/null 2>&1
# Admin changes to seeded rows: they must survive the restore.
psql_as postgres crm_src <<'SQL' >/dev/null
UPDATE crm.opportunity_stage SET probability = 15 WHERE name = 'Qualification';
INSERT INTO crm.lead_source (code, label, sort_order) VALUES ('trade_show', 'Trade show', 95);
UPDATE crm.lead_source SET active = false WHERE code = 'social';
UPDATE crm.settings SET quote_approval_threshold = 12.5;
-- switch the standard price book (the dump of 0.1 lost the new one)
BEGIN;
INSERT INTO crm.price_book (name, currency) VALUES ('Standard 2028', 'USD');
INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price)
SELECT (SELECT id FROM crm.price_book WHERE name = 'Standard 2028'), product_id, unit_price * 1.05
  FROM crm.price_book_entry WHERE price_book_id = (SELECT id FROM crm.price_book WHERE is_standard);
UPDATE crm.price_book SET is_standard = false WHERE is_standard;
UPDATE crm.price_book SET is_standard = true WHERE name = 'Standard 2028';
COMMIT;
SQL
# Aggregate stripes from several sessions (a rep and a manager), and
# sequences moved past their tables' last ids by rolled-back inserts.
# (a stripe is a backend slot: the idle session holds one, so alice's
# update lands in another)
psql_as postgres crm_src -c "SELECT pg_sleep(3)" >/dev/null &
sleeper=$!
sleep 1
psql_as alice crm_src -c "UPDATE crm.opportunity SET stage = 'Requirement' WHERE id IN (SELECT min(id) FROM crm.opportunity WHERE owner = 'alice'::regrole)"
wait "$sleeper"
psql_as carol crm_src -c "UPDATE crm.opportunity SET close_date = date '2027-06-30' WHERE owner = 'bob'::regrole"
psql_as alice crm_src -c "BEGIN" -c "INSERT INTO crm.lead (name, company) VALUES ('Gone', 'Gone Ltd')" \
    -c "INSERT INTO crm.account (name) VALUES ('Gone Ltd')" -c "ROLLBACK"
stripes=$(psql_as postgres crm_src -c "SELECT count(DISTINCT stripe) FROM crm.pipeline_aggregate")
[ "$stripes" -ge 2 ] || fail "the source has $stripes aggregate stripe(s); the test needs several"

# fingerprint DB: one line per table (rows, checksum of sorted rows), per
# sequence (position) and per view (rows, checksum); crm.lock_key_secret,
# which is not dumped and made anew by CREATE EXTENSION, by its row count
# only (checked to differ below)
fingerprint() {
    psql_as postgres "$1" <<'SQL'
-- every column but intervals computed from now() (crm.overdue_task.overdue_by)
SELECT format('SELECT %L, count(*), md5(coalesce(string_agg(t::text, E''\n'' ORDER BY t::text), '''')) FROM (SELECT %s FROM %s) AS t',
              c.relkind::text || ' ' || c.relname,
              CASE WHEN c.relname = 'lock_key_secret' THEN '1 AS one' ELSE
              (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.atttypid <> 'interval'::regtype) END,
              c.oid::regclass)
  FROM pg_class c
 WHERE c.relnamespace = 'crm'::regnamespace AND c.relkind IN ('r', 'v')
 ORDER BY c.relkind, c.relname
\gexec
SELECT 'S ' || sequencename, last_value FROM pg_sequences WHERE schemaname = 'crm' ORDER BY sequencename;
SQL
}
fingerprint crm_src >"$WORK/src.txt"
ntables=$(grep -c '^r ' "$WORK/src.txt")
nseqs=$(grep -c '^S ' "$WORK/src.txt")
nviews=$(grep -c '^v ' "$WORK/src.txt")
[ "$ntables" -ge 30 ] && [ "$nseqs" -ge 15 ] && [ "$nviews" -ge 10 ] \
    || fail "fingerprint covers only $ntables tables, $nseqs sequences, $nviews views"
empty=$(grep -c '^r [^|]*|0|' "$WORK/src.txt" || true)
echo "ok: source filled: $ntables tables ($empty empty), $nseqs sequences, $nviews views, $stripes aggregate stripes"

as_cluster_user pg_dump -Fc -h "$PGHOST" -p "$PGPORT" -U postgres -d crm_src -f "$WORK/crm.dump" 2>"$WORK/dump.log" \
    || { cat "$WORK/dump.log" >&2; fail "pg_dump -Fc failed"; }
as_cluster_user pg_dump -h "$PGHOST" -p "$PGPORT" -U postgres -d crm_src -f "$WORK/crm.sql" 2>>"$WORK/dump.log" \
    || { cat "$WORK/dump.log" >&2; fail "pg_dump (plain) failed"; }

# ---------------------------------------------------------------- restores
replica='-c session_replication_role=replica'
psql_as postgres postgres -c "CREATE DATABASE crm_custom" -c "CREATE DATABASE crm_plain" -c "CREATE DATABASE crm_careless"
as_cluster_user env PGOPTIONS="$replica" pg_restore --exit-on-error -h "$PGHOST" -p "$PGPORT" -U postgres \
    -d crm_custom "$WORK/crm.dump" 2>"$WORK/restore.log" \
    || { cat "$WORK/restore.log" >&2; fail "pg_restore in replica mode failed"; }
as_cluster_user env PGOPTIONS="$replica" psql -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres \
    -d crm_plain -f "$WORK/crm.sql" >"$WORK/plain.log" 2>&1 \
    || { cat "$WORK/plain.log" >&2; fail "psql restore of the plain dump in replica mode failed"; }

for db in crm_custom crm_plain; do
    fingerprint "$db" >"$WORK/$db.txt"
    if ! diff "$WORK/src.txt" "$WORK/$db.txt" >"$WORK/$db.diff"; then
        cat "$WORK/$db.diff" >&2
        fail "$db differs from the source (lines above: < source, > restored)"
    fi
    mismatches=$(psql_as postgres "$db" -c "SELECT count(*) FROM crm.verify_aggregates()")
    [ "$mismatches" = "0" ] || fail "$db: verify_aggregates() reports $mismatches mismatches"
    echo "ok: $db: every table, sequence and view identical to the source; aggregates exact"
    # the lock key secret is not in the dump: the restore made its own
    same=$(psql_as postgres "$db" -c "SELECT secret FROM crm.lock_key_secret")
    [ "$same" != "$(psql_as postgres crm_src -c "SELECT secret FROM crm.lock_key_secret")" ] \
        || fail "$db: the lock key secret was dumped"
    ! grep -q "$(psql_as postgres crm_src -c "SELECT encode(secret, 'hex') FROM crm.lock_key_secret")" "$WORK/crm.sql" \
        || fail "the plain dump holds the lock key secret"
done

# The next ids, in the source and in a restored database, as a rep.
next_ids() {
    psql_as alice "$1" \
        -c "INSERT INTO crm.lead (name, company) VALUES ('After restore', 'Next Ltd') RETURNING id" \
        -c "INSERT INTO crm.account (name) VALUES ('Next Ltd') RETURNING id" \
        -c "INSERT INTO crm.contact (name, email) VALUES ('Nina Next', 'nina@next.example') RETURNING id" \
        -c "INSERT INTO crm.activity (type, subject, lead_id) SELECT 'task', 'Call back', max(id) FROM crm.lead WHERE name = 'After restore' RETURNING id" \
        | tr '\n' ' '
}
src_next=$(next_ids crm_src)
restored_next=$(next_ids crm_custom)
[ "$src_next" = "$restored_next" ] || fail "next ids differ: source '$src_next', restored '$restored_next'"
echo "ok: the next lead, account, contact and activity get the same ids ($src_next) in both"

# The guards and the history triggers are back at work.
out=$(psql_as alice crm_custom -c "SELECT crm.convert_lead(min(id)) FROM crm.lead WHERE status = 'Converted'" 2>&1 || true)
echo "$out" | grep -q "already converted" || fail "a converted lead could be converted again after the restore: $out"
before=$(psql_as postgres crm_custom -c "SELECT count(*) FROM crm.lead_status_history")
psql_as alice crm_custom -c "UPDATE crm.lead SET status = 'Processing' WHERE name = 'After restore'"
after=$(psql_as postgres crm_custom -c "SELECT count(*) FROM crm.lead_status_history")
[ "$after" -eq $((before + 1)) ] || fail "the status history did not record a change after the restore ($before -> $after)"
echo "ok: after the restore the conversion guard refuses a second conversion and the history records changes"

# A restore without replica mode stops at CREATE EXTENSION (the dump's
# first statement for crm after the empty schema) with an error (ZC603)
# whose hint names the procedure; nothing of the extension or its data is
# restored.
# check_careless DB LOG: the first error is ours, at CREATE EXTENSION, and
# nothing of crm was restored
check_careless() {
    local db=$1 log=$2 first
    first=$(grep -m1 'ERROR' "$log" || true)
    echo "$first" | grep -q 'crm cannot be restored without session_replication_role = replica' \
        || { cat "$log" >&2; fail "$db: the first error is not the restore-mode error: $first"; }
    grep -q 'HINT:.*session_replication_role=replica.*README "Backup and restore"' "$log" \
        || { cat "$log" >&2; fail "$db: the error has no hint naming the procedure"; }
    [ "$(grep -c 'ERROR' "$log")" = 1 ] || { cat "$log" >&2; fail "$db: more than one error"; }
    [ "$(psql_as postgres "$db" -c "SELECT count(*) FROM pg_extension WHERE extname = 'crm'")" = 0 ] \
        || fail "$db: extension crm exists after the failed restore"
    [ "$(psql_as postgres "$db" -c "SELECT count(*) FROM pg_class WHERE relnamespace = 'crm'::regnamespace")" = 0 ] \
        || fail "$db: schema crm holds relations after the failed restore"
}
if as_cluster_user pg_restore --exit-on-error -h "$PGHOST" -p "$PGPORT" -U postgres \
        -d crm_careless "$WORK/crm.dump" >"$WORK/careless.log" 2>&1; then
    fail "a restore without session_replication_role = replica succeeded"
fi
grep -q 'Command was: CREATE EXTENSION' "$WORK/careless.log" \
    || { cat "$WORK/careless.log" >&2; fail "pg_restore did not stop at CREATE EXTENSION"; }
check_careless crm_careless "$WORK/careless.log"
psql_as postgres postgres -c "CREATE DATABASE crm_careless_plain"
if as_cluster_user psql -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres \
        -d crm_careless_plain -f "$WORK/crm.sql" >"$WORK/careless_plain.log" 2>&1; then
    fail "a plain restore without session_replication_role = replica succeeded"
fi
check_careless crm_careless_plain "$WORK/careless_plain.log"
echo "ok: a restore without replica mode fails at CREATE EXTENSION (pg_restore and psql): $(grep -m1 'ERROR' "$WORK/careless.log" | sed 's/.*ERROR: *//')"

# The documented procedure then works: drop and re-create the database
# (the dump's CREATE SCHEMA crm ran), restore in replica mode.
psql_as postgres postgres -c "DROP DATABASE crm_careless" -c "CREATE DATABASE crm_careless"
as_cluster_user env PGOPTIONS="$replica" pg_restore --exit-on-error -h "$PGHOST" -p "$PGPORT" -U postgres \
    -d crm_careless "$WORK/crm.dump" 2>"$WORK/restore2.log" \
    || { cat "$WORK/restore2.log" >&2; fail "pg_restore in replica mode after a careless one failed"; }
fingerprint crm_careless >"$WORK/crm_careless.txt"
diff "$WORK/src.txt" "$WORK/crm_careless.txt" >/dev/null || fail "crm_careless differs from the source after the documented restore"
echo "ok: after the failed attempt, the documented restore into the re-created database is identical to the source"

# Creating the extension by hand in a session with row_security = off (not a
# restore) gets the same error, and works with row_security on.
psql_as postgres postgres -c "CREATE DATABASE crm_rls_off"
out=$(psql_as postgres crm_rls_off -c "SET row_security = off" -c "CREATE EXTENSION crm" 2>&1 || true)
echo "$out" | grep -q 'crm cannot be restored' || fail "CREATE EXTENSION with row_security = off: $out"
psql_as postgres crm_rls_off -c "CREATE EXTENSION crm"
echo "ok: CREATE EXTENSION with row_security = off is refused outside replica mode, and works with it on"
