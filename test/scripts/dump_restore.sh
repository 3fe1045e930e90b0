#!/usr/bin/env bash
# test/scripts/dump_restore.sh: pg_dump and pg_restore lose nothing.
#
# A database with every module filled (the demo data set, its conversions and
# order, logged e-mails), admin changes to the seeded rows (stages, sources, settings, a
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
source test/lib/dataset.sh

test_cluster crm-dump


# ---------------------------------------------------------------- the source
psql_as postgres postgres -c "CREATE DATABASE crm_src"
fill_crm_db crm_src    # sets $stripes
# notes, attachments and tags (0.7): rows in every one of their tables
psql_as alice crm_src <<'SQL' >/dev/null
INSERT INTO crm.note (body, pinned, lead_id) SELECT 'Met at the fair, wants a demo', true, min(id) FROM crm.lead WHERE owner = 'alice'::regrole;
INSERT INTO crm.attachment (lead_id, file_name, mime_type, size_bytes, sha256, storage_uri)
SELECT min(id), 'card.png', 'image/png', 2048, repeat('0f', 32), 's3://crm-files/card.png' FROM crm.lead WHERE owner = 'alice'::regrole;
SQL
psql_as carol crm_src -c "INSERT INTO crm.tag (name, color) VALUES ('VIP', '#aa0000')" >/dev/null
psql_as alice crm_src -c "INSERT INTO crm.record_tag (tag_id, lead_id) SELECT t.id, min(l.id) FROM crm.tag t, crm.lead l WHERE l.owner = 'alice'::regrole GROUP BY t.id" >/dev/null

# logged e-mails (a thread, links to a demo contact, its account and a lead)
psql_as alice crm_src <<'SQL' >/dev/null
SELECT crm.log_email('dump-1@mail.example', 'inbound', (SELECT email FROM crm.contact WHERE email IS NOT NULL ORDER BY id LIMIT 1),
                     ARRAY['alice@ours.example'], ARRAY[(SELECT email FROM crm.lead WHERE email IS NOT NULL AND status <> 'Converted' ORDER BY id LIMIT 1)],
                     'Question', 'Which plan fits us?', '2026-01-05 10:00+00');
SELECT crm.log_email('dump-2@mail.example', 'outbound', 'alice@ours.example',
                     ARRAY[(SELECT email FROM crm.contact WHERE email IS NOT NULL ORDER BY id LIMIT 1)], NULL,
                     'Re: Question', 'The second one.', '2026-01-05 11:00+00', '<dump-1@mail.example>');
SQL
[ "$(psql_as postgres crm_src -c "SELECT count(DISTINCT thread_id) || '/' || count(*) FROM crm.email")" = 1/2 ] \
    && [ "$(psql_as postgres crm_src -c "SELECT count(*) >= 3 FROM crm.email_link")" = t ] \
    || fail "the source's e-mail log is not as set up"

# Custom fields with values on several objects, one of them required (every
# product has a value): pg_restore may load the nine tables before
# crm.custom_field; the restore's replica mode keeps the checks out of it.
psql_as postgres crm_src <<'SQL' >/dev/null
BEGIN;
INSERT INTO crm.custom_field (object, name, label, type, required, options) VALUES
    ('account', 'region', 'Sales region', 'pick', false, ARRAY['EMEA', 'AMER', 'APAC']),
    ('lead', 'budget', 'Budget', 'number', false, NULL),
    ('opportunity', 'competitor', 'Competitor', 'text', false, NULL),
    ('product', 'launched', 'Launched on', 'date', true, NULL),
    ('campaign', 'flagship', 'Flagship', 'boolean', false, NULL);
UPDATE crm.account SET attributes = jsonb_build_object('region', (ARRAY['EMEA', 'AMER', 'APAC'])[1 + id % 3]);
UPDATE crm.lead SET attributes = jsonb_build_object('budget', id * 1000) WHERE id % 2 = 0;
UPDATE crm.opportunity SET attributes = '{"competitor": "Initech"}' WHERE id % 3 = 0;
UPDATE crm.product SET attributes = jsonb_build_object('launched', (date '2020-01-01' + id::integer)::text);
UPDATE crm.campaign SET attributes = '{"flagship": true}';
COMMIT;
SQL
values=$(psql_as postgres crm_src -c "SELECT count(DISTINCT object) || ' objects, ' || count(*) || ' values' FROM crm.custom_field_value")

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
psql_as postgres postgres -c "CREATE DATABASE crm_custom" -c "CREATE DATABASE crm_plain" -c "CREATE DATABASE crm_careless"
restore_documented crm_custom "$WORK/crm.dump"
restore_documented crm_plain "$WORK/crm.sql"

for db in crm_custom crm_plain; do
    fingerprint "$db" >"$WORK/$db.txt"
    if ! diff "$WORK/src.txt" "$WORK/$db.txt" >"$WORK/$db.diff"; then
        cat "$WORK/$db.diff" >&2
        fail "$db differs from the source (lines above: < source, > restored)"
    fi
    mismatches=$(psql_as postgres "$db" -c "SELECT count(*) FROM crm.verify_aggregates()")
    [ "$mismatches" = "0" ] || fail "$db: verify_aggregates() reports $mismatches mismatches"
    echo "ok: $db: every table, sequence and view identical to the source; aggregates exact"
    [ "$(psql_as postgres "$db" -c "SELECT count(DISTINCT object) || ' objects, ' || count(*) || ' values' FROM crm.custom_field_value")" = "$values" ] \
        || fail "$db: the custom field values differ from the source's ($values)"
    out=$(psql_as postgres "$db" -c "UPDATE crm.account SET attributes = '{\"region\": \"Mars\"}' WHERE id = (SELECT min(id) FROM crm.account)" 2>&1 || true)
    [[ $out == *'invalid value for custom field "region"'* ]] || fail "$db: custom field values are not checked after the restore: $out"
    out=$(psql_as postgres "$db" -c "DELETE FROM crm.custom_field WHERE name = 'region'" 2>&1 || true)
    [[ $out == *'is still in use'* ]] || fail "$db: a custom field in use could be removed after the restore: $out"
    echo "ok: $db: custom fields and their values restored ($values), checked again"
    # the lock key secret is not in the dump: the restore made its own
    same=$(psql_as postgres "$db" -c "SELECT secret FROM crm_internal.lock_key_secret")
    [ "$same" != "$(psql_as postgres crm_src -c "SELECT secret FROM crm_internal.lock_key_secret")" ] \
        || fail "$db: the lock key secret was dumped"
    ! grep -q "$(psql_as postgres crm_src -c "SELECT encode(secret, 'hex') FROM crm_internal.lock_key_secret")" "$WORK/crm.sql" \
        || fail "the plain dump holds the lock key secret"
done

src_next=$(next_ids crm_src)
restored_next=$(next_ids crm_custom)
[ "$src_next" = "$restored_next" ] || fail "next ids differ: source '$src_next', restored '$restored_next'"
echo "ok: the next lead, account, contact and activity get the same ids ($src_next) in both"

# The guards and the history triggers are back at work.
out=$(psql_as alice crm_custom -c "SELECT crm.convert_lead(min(id)) FROM crm.lead WHERE status = 'Converted'" 2>&1 || true)
grep -q "already converted" <<<"$out" || fail "a converted lead could be converted again after the restore: $out"
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
    grep -q 'crm cannot be restored without session_replication_role = replica' <<<"$first" \
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
restore_documented crm_careless "$WORK/crm.dump"
fingerprint crm_careless >"$WORK/crm_careless.txt"
diff "$WORK/src.txt" "$WORK/crm_careless.txt" >/dev/null || fail "crm_careless differs from the source after the documented restore"
echo "ok: after the failed attempt, the documented restore into the re-created database is identical to the source"

# Creating the extension by hand in a session with row_security = off (not a
# restore) gets the same error, and works with row_security on.
psql_as postgres postgres -c "CREATE DATABASE crm_rls_off"
out=$(psql_as postgres crm_rls_off -c "SET row_security = off" -c "CREATE EXTENSION crm CASCADE" 2>&1 || true)
grep -q 'crm cannot be restored' <<<"$out" || fail "CREATE EXTENSION with row_security = off: $out"
psql_as postgres crm_rls_off -c "CREATE EXTENSION crm CASCADE"
echo "ok: CREATE EXTENSION with row_security = off is refused outside replica mode, and works with it on"
