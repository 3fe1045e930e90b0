# test/lib/dataset.sh: a crm database filled the way a real one is, and its
# fingerprint; shared by test/scripts/dump_restore.sh and the cross-version
# tests of test/versions/ (sourced after scripts/common.sh, with a cluster).

# fill_crm_db DB: in the existing database DB, CREATE EXTENSION crm, the demo
# data set, its conversions and order, admin changes to the seeded rows,
# aggregate stripes written by several sessions and sequences advanced past
# their tables by rolled-back inserts; sets stripes (how many stripes the
# aggregates have: at least 2)
fill_crm_db() {
    local db=$1 sleeper
    psql_as postgres "$db" -c "CREATE EXTENSION crm CASCADE"
    psql_as postgres "$db" -f demo/sample_data.sql >/dev/null
    psql_as postgres "$db" -f demo/convert_ready_leads.sql >/dev/null 2>&1
    # Admin changes to seeded rows: they must survive the restore.
    psql_as postgres "$db" <<'SQL' >/dev/null
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
    psql_as postgres "$db" -c "SELECT pg_sleep(3)" >/dev/null &
    sleeper=$!
    sleep 1
    psql_as alice "$db" -c "UPDATE crm.opportunity SET stage = 'Requirement' WHERE id IN (SELECT min(id) FROM crm.opportunity WHERE owner = 'alice'::regrole)"
    wait "$sleeper"
    psql_as carol "$db" -c "UPDATE crm.opportunity SET close_date = date '2027-06-30' WHERE owner = 'bob'::regrole"
    psql_as alice "$db" -c "BEGIN" -c "INSERT INTO crm.lead (name, company) VALUES ('Gone', 'Gone Ltd')" \
        -c "INSERT INTO crm.account (name) VALUES ('Gone Ltd')" -c "ROLLBACK"
    stripes=$(psql_as postgres "$db" -c "SELECT count(DISTINCT stripe) FROM crm_internal.pipeline_aggregate")
    [ "$stripes" -ge 2 ] || fail "the source has $stripes aggregate stripe(s); the test needs several"
}

# fingerprint DB: one line per table of schemas crm and crm_internal (rows, checksum of sorted rows), per
# sequence (position) and per view (rows, checksum); crm_internal.lock_key_secret,
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
 WHERE c.relnamespace IN ('crm'::regnamespace, 'crm_internal'::regnamespace) AND c.relkind IN ('r', 'v')
 ORDER BY c.relkind, c.relname
\gexec
SELECT 'S ' || sequencename, last_value FROM pg_sequences WHERE schemaname = 'crm' ORDER BY sequencename;
SQL
}

# The next ids, in the source and in a restored database, as a rep.
next_ids() {
    psql_as alice "$1" \
        -c "INSERT INTO crm.lead (name, company) VALUES ('After restore', 'Next Ltd') RETURNING id" \
        -c "INSERT INTO crm.account (name) VALUES ('Next Ltd') RETURNING id" \
        -c "INSERT INTO crm.contact (name, email) VALUES ('Nina Next', 'nina@next.example') RETURNING id" \
        -c "INSERT INTO crm.activity (type, subject, lead_id) SELECT 'task', 'Call back', max(id) FROM crm.lead WHERE name = 'After restore' RETURNING id" \
        | tr '\n' ' '
}

# convert_new_lead DB REP: REP enters a lead and converts it into a new
# account; a second conversion of it, and one of a lead converted before,
# are refused as already converted (ZC002)
convert_new_lead() {
    local db=$1 rep=$2 lead out
    lead=$(psql_as "$rep" "$db" -c "INSERT INTO crm.lead (name, company, status) VALUES ('Vera Version', 'Versioned Ltd', 'Completed') RETURNING id")
    [ "$(psql_as "$rep" "$db" -c "SELECT account_created FROM crm.convert_lead($lead)")" = t ] \
        || fail "$db: the new lead did not convert into a new account"
    for lead in "$lead" "(SELECT min(id) FROM crm.lead WHERE status = 'Converted' AND name <> 'Vera Version')"; do
        out=$(psql_as "$rep" "$db" -c "SELECT crm.convert_lead($lead)" 2>&1 || true)
        echo "$out" | grep -q "already converted" || fail "$db: a converted lead converted again: $out"
    done
}

# restore_documented DB DUMP: restore DUMP (custom format *.dump, else plain
# SQL) into the empty database DB the documented way (README "Backup and
# restore"): replica mode, stopping at the first error; its output in
# $WORK/restore-DB.log
restore_documented() {
    local db=$1 dump=$2 log=$WORK/restore-$1.log
    case $dump in
        *.dump) as_cluster_user env PGOPTIONS='-c session_replication_role=replica' \
                    pg_restore --exit-on-error -h "$PGHOST" -p "$PGPORT" -U postgres -d "$db" "$dump" >"$log" 2>&1 ;;
        *) as_cluster_user env PGOPTIONS='-c session_replication_role=replica' \
               psql -X -q -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres -d "$db" -f "$dump" >"$log" 2>&1 ;;
    esac || { cat "$log" >&2; fail "the restore of $dump into $db in replica mode failed"; }
}
