#!/usr/bin/env bash
# test/scripts/upgrade.sh: ALTER EXTENSION crm UPDATE from every released
# version gives the newest version's objects and keeps every row.
#
# For each released version V (each version that an update script
# sql/versions/crm--V--W.sql starts from):
#   1. CREATE EXTENSION crm VERSION 'V' (the first release's script
#      crm--0.1.sql and the update scripts up to V), and fill it with the
#      demo data set
#      (conversions, quotes, an order, activities, campaigns);
#   2. ALTER EXTENSION crm UPDATE, which runs the chain of update scripts
#      crm--V--....sql up to the default version of crm.control;
#   3. the updated database has exactly the objects of a fresh
#      CREATE EXTENSION crm (test/schema_signature.sql: members, columns,
#      constraints, indexes, triggers, policies, views, functions with their
#      bodies and settings, types, comments, privileges, pg_dump
#      configuration), diffed line by line;
#   4. every row of every table that V had is still there, unchanged (count
#      and checksum of the sorted rows), and every sequence stands where it
#      stood -- except the derived aggregate tables listed in
#      recomputed_aggregates below, which the update recomputes (regrouped by
#      keys their old rows cannot be split by) and whose content step 5
#      proves instead;
#   5. the aggregates are exact (crm.verify_aggregates()), and the updated
#      extension works: a rep notes and tags a lead, converts it (the note
#      and the tag move to the contact, search finds the note), and a second
#      conversion of it is refused; an activity stored before the update made
#      recurring gets its next occurrence once.
# and 6. (below) an update to 0.3 of a database holding NaN is refused.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/common.sh

test_cluster crm-upgrade

newest=$(sed -n "s/^default_version = '\(.*\)'/\1/p" crm.control)

# fingerprint_queries DB: the queries that fingerprint DB's data -- rows and
# checksum of every table over the columns it has now, position of every
# sequence -- so that the same queries, run again after an update that adds
# columns, compare the rows that were there
fingerprint_queries() {
    psql_as postgres "$1" <<'SQL'
SELECT format('SELECT %L, count(*), md5(coalesce(string_agg(t::text, E''\n'' ORDER BY t::text), '''')) FROM (SELECT %s FROM %s) AS t;',
              'table ' || c.relname,
              (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
              c.oid::regclass)
  FROM pg_class c
 WHERE c.relnamespace IN (SELECT n.oid FROM pg_namespace n WHERE n.nspname IN ('crm', 'crm_internal'))
   AND c.relkind = 'r'
 ORDER BY c.relname;
SELECT 'SELECT ''sequence '' || sequencename, last_value FROM pg_sequences WHERE schemaname = ''crm'' ORDER BY sequencename;';
SQL
}
# The exemption from step 4, kept explicit and narrow: derived aggregate
# tables (kept by the aggregates_ triggers, nothing but sums of the base
# tables) whose rows the update to 0.7 recomputes, regrouped by close month
# and currency.  Their content is proven by crm.verify_aggregates()
# returning no mismatch after the update (it compares every group with a
# fresh GROUP BY, and the reports built on them with a GROUP BY converting
# every deal), and they must not be empty then.
recomputed_aggregates="account_aggregate campaign_opportunity_aggregate"
# without_recomputed FILE: FILE without the lines of those tables
without_recomputed() {
    grep -v -E "^table ($(tr ' ' '|' <<<"$recomputed_aggregates"))\\|" "$1" || true
}

# data_fingerprint DB QUERIES: one line per table and sequence of DB
data_fingerprint() {
    psql_as postgres "$1" -f "$2"
}

psql_as postgres postgres -c "CREATE DATABASE crm_fresh"
psql_as postgres crm_fresh -c "CREATE EXTENSION crm CASCADE"
psql_as postgres crm_fresh -f test/schema_signature.sql >"$WORK/fresh.sig"
[ "$(psql_as postgres crm_fresh -c "SELECT extversion FROM pg_extension WHERE extname = 'crm'")" = "$newest" ] \
    || fail "a fresh install is not at the default version $newest"
[ "$(grep -c '^member ' "$WORK/fresh.sig")" -ge 100 ] || fail "the signature lists too few members"

released=0
for v in $(released_versions); do
    [ "$v" != "$newest" ] || continue
    released=$((released + 1))
    db="crm_from_${v//./_}"
    psql_as postgres postgres -c "CREATE DATABASE $db"
    psql_as postgres "$db" -c "CREATE EXTENSION crm VERSION '$v' CASCADE"
    psql_as postgres "$db" -f demo/sample_data.sql >/dev/null
    psql_as postgres "$db" -f demo/convert_ready_leads.sql >/dev/null 2>&1
    fingerprint_queries "$db" >"$WORK/$db.fpsql"
    chmod a+r "$WORK/$db.fpsql"
    data_fingerprint "$db" "$WORK/$db.fpsql" >"$WORK/$db.before"

    psql_as postgres "$db" -c "ALTER EXTENSION crm UPDATE"
    got=$(psql_as postgres "$db" -c "SELECT extversion FROM pg_extension WHERE extname = 'crm'")
    [ "$got" = "$newest" ] || fail "$v updated to $got, not $newest"

    psql_as postgres "$db" -f test/schema_signature.sql >"$WORK/$db.sig"
    if ! diff "$WORK/fresh.sig" "$WORK/$db.sig" >"$WORK/$db.sigdiff"; then
        cat "$WORK/$db.sigdiff" >&2
        fail "$v updated to $newest differs from a fresh $newest (< fresh, > updated)"
    fi
    echo "ok: $v updated to $newest has the objects of a fresh install ($(wc -l <"$WORK/fresh.sig") signature lines)"

    # the tables the update moved to schema crm_internal are read there
    for t in $(psql_as postgres "$db" -c "SELECT relname FROM pg_class WHERE relnamespace = 'crm_internal'::regnamespace AND relkind = 'r'"); do
        sed -i "s/ FROM crm\.$t) AS t;/ FROM crm_internal.$t) AS t;/" "$WORK/$db.fpsql"
    done
    data_fingerprint "$db" "$WORK/$db.fpsql" >"$WORK/$db.after"
    # every line of before (tables and sequences of V, over the columns V had)
    # is in after, unchanged
    without_recomputed "$WORK/$db.before" >"$WORK/$db.compared"
    if missing=$(grep -vxF -f "$WORK/$db.after" "$WORK/$db.compared"); then
        echo "$missing" >&2
        fail "rows or sequences changed by the update from $v (lines above: before the update)"
    fi
    echo "ok: every row and sequence of $v kept ($(grep -c '^table ' "$WORK/$db.before") tables)"

    mismatches=$(psql_as postgres "$db" -c "SELECT count(*) FROM crm.verify_aggregates()")
    [ "$mismatches" = "0" ] || fail "aggregates wrong after the update from $v: $mismatches mismatches"
    for t in $recomputed_aggregates; do
        [ "$(psql_as postgres "$db" -c "SELECT count(*) > 0 FROM crm_internal.$t")" = t ] \
            || fail "the recomputed crm_internal.$t is empty after the update from $v: nothing proven"
    done
    echo "ok: the recomputed $recomputed_aggregates of $v match crm.verify_aggregates()"
    lead=$(psql_as alice "$db" -c "INSERT INTO crm.lead (name, company, status) VALUES ('Ursula Update', 'Updated Ltd', 'Completed') RETURNING id")
    # notes and tags (0.7) work on the updated database and move with the conversion
    psql_as alice "$db" -c "INSERT INTO crm.note (body, lead_id) VALUES ('Ursula wants the upgrade plan', $lead)" >/dev/null
    psql_as carol "$db" -c "INSERT INTO crm.tag (name) VALUES ('Updated $v')" >/dev/null
    psql_as alice "$db" -c "INSERT INTO crm.record_tag (tag_id, lead_id) SELECT id, $lead FROM crm.tag WHERE name = 'Updated $v'" >/dev/null
    psql_as alice "$db" -c "SELECT account_created FROM crm.convert_lead($lead)" >/dev/null
    moved=$(psql_as alice "$db" -c "SELECT count(*) FROM crm.note n JOIN crm.record_tag r USING (contact_id)
                                     WHERE n.contact_id IS NOT NULL AND n.body = 'Ursula wants the upgrade plan'")
    [ "$moved" = 1 ] || fail "after the update from $v the lead's note and tag did not move to the contact ($moved)"
    found=$(psql_as alice "$db" -c "SELECT count(*) FROM crm.search('upgrade plan', ARRAY['note'])")
    [ "$found" = 1 ] || fail "after the update from $v crm.search does not find the note ($found)"
    out=$(psql_as alice "$db" -c "SELECT crm.convert_lead($lead)" 2>&1 || true)
    # a pattern match, not echo | grep -q: grep may close the pipe before
    # echo is done, and pipefail would count that as a failure
    [[ $out == *"already converted"* ]] || fail "after the update from $v a lead converted twice: $out"
    echo "ok: after the update from $v the aggregates are exact and conversion works, once"
    # recurring activities (0.7): an activity stored before the update becomes
    # a series; completing it creates the next occurrence, once
    act=$(psql_as postgres "$db" -c "UPDATE crm.activity SET recurrence = 'FREQ=WEEKLY', recurrence_time_zone = 'UTC' WHERE id = (SELECT min(id) FROM crm.activity WHERE status IN ('Planned', 'In Progress') AND COALESCE(starts_at, due_at) IS NOT NULL) RETURNING id")
    [ -n "$act" ] || fail "after the update from $v no open activity to make recurring"
    psql_as postgres "$db" -c "UPDATE crm.activity SET status = 'Completed' WHERE id = $act" >/dev/null
    psql_as postgres "$db" -c "UPDATE crm.activity SET status = 'Planned' WHERE id = $act" >/dev/null
    psql_as postgres "$db" -c "UPDATE crm.activity SET status = 'Cancelled' WHERE id = $act" >/dev/null
    got=$(psql_as postgres "$db" -c "SELECT string_agg(occurrence_number::text || ':' || ((COALESCE(starts_at, due_at) - (SELECT COALESCE(starts_at, due_at) FROM crm.activity WHERE id = $act))::text), ',' ORDER BY occurrence_number) FROM crm.activity WHERE series_id = $act")
    [ "$got" = "1:00:00:00,2:7 days" ] || fail "after the update from $v a recurring activity gave occurrences $got"
    echo "ok: after the update from $v a recurring activity gets its next occurrence, once"

    # Custom fields (new in 0.7) on the updated database: defined, filled on
    # rows the old version made, checked, and carried by a conversion.
    psql_as postgres "$db" <<'SQL' >/dev/null
BEGIN;
INSERT INTO crm.custom_field (object, name, label, type, required, options) VALUES
    ('account', 'region', 'Sales region', 'pick', false, ARRAY['EMEA', 'AMER']),
    ('lead', 'region', 'Sales region', 'pick', false, ARRAY['EMEA', 'AMER']),
    ('opportunity', 'budget', 'Budget', 'number', true, NULL);
UPDATE crm.account SET attributes = '{"region": "EMEA"}' WHERE id % 2 = 0;
UPDATE crm.opportunity SET attributes = jsonb_build_object('budget', id);
UPDATE crm.custom_field SET required = false WHERE name = 'budget';
COMMIT;
SQL
    values=$(psql_as postgres "$db" -c "SELECT count(*) FROM crm.custom_field_value")
    [ "$values" -gt 0 ] || fail "no custom field values after the update from $v"
    out=$(psql_as alice "$db" -c "UPDATE crm.account SET attributes = '{\"region\": \"Mars\"}'" 2>&1 || true)
    [[ $out == *'invalid value for custom field "region"'* ]] || fail "custom field values not checked after the update from $v: $out"
    lead=$(psql_as alice "$db" -c "INSERT INTO crm.lead (name, company, status, attributes) VALUES ('Rita Region', 'Region Ltd', 'Completed', '{\"region\": \"AMER\"}') RETURNING id")
    account=$(psql_as alice "$db" -c "SELECT account_id FROM crm.convert_lead($lead)")
    got=$(psql_as alice "$db" -c "SELECT attributes ->> 'region' FROM crm.account WHERE id = $account")
    [ "$got" = "AMER" ] || fail "the conversion after the update from $v did not carry the lead's region: '$got'"
    echo "ok: after the update from $v custom fields work ($values values), a conversion carries them"
done
[ "$released" -ge 1 ] || fail "no released version to update from in sql/versions/"

# 6. A database of a version before 0.3 that holds NaN in a column 0.3 checks
#    is not updated: the update refuses with 23514, naming the rows, and
#    changes nothing (no value is rewritten); once the rows are corrected it
#    goes through.
for v in $(released_versions | grep -xE '0\.[12]'); do
    db="crm_nan_${v//./_}"
    psql_as postgres postgres -c "CREATE DATABASE $db"
    psql_as postgres "$db" -c "CREATE EXTENSION crm VERSION '$v' CASCADE"
    psql_as postgres "$db" -c "INSERT INTO crm.product (code, name, list_price) VALUES ('N1', 'NaN price', 'NaN')"
    out=$(psql_as postgres "$db" -v VERBOSITY=verbose -c "ALTER EXTENSION crm UPDATE" 2>&1) \
        && fail "$v with a NaN list price was updated"
    grep -q "23514: .*crm.product.list_price = NaN in id 1" <<<"$out" \
        || fail "the update from $v with a NaN list price did not name the row: $out"
    got=$(psql_as postgres "$db" -c "SELECT extversion FROM pg_extension WHERE extname = 'crm'")
    [ "$got" = "$v" ] || fail "a refused update from $v left version $got"
    [ "$(psql_as postgres "$db" -c "SELECT list_price::text FROM crm.product WHERE code = 'N1'")" = "NaN" ] \
        || fail "the refused update from $v changed the NaN list price"
    psql_as postgres "$db" -c "UPDATE crm.product SET list_price = 5 WHERE code = 'N1'"
    psql_as postgres "$db" -c "ALTER EXTENSION crm UPDATE"
    echo "ok: $v holding NaN is not updated (23514, the rows named); corrected, it is"
done
