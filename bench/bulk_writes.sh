#!/usr/bin/env bash
# bench/bulk_writes.sh: bulk INSERT, UPDATE and DELETE of ROWS opportunities
# and of ROWS leads on crm's tables against the same statements on
# trigger-less copies -- side by side in one run.
#
#   bash bench/bulk_writes.sh          ROWS=100000 ROUNDS=3 BASE=20000
#   OPS="insert_lead update_lead delete_lead" bash bench/bulk_writes.sh   (a subset,
#                                      run in the order below whatever its order)
#
# One database with the extension as installed (default settings: the
# duplicate policy "warn", no scoring or assignment rule) and BASE accounts,
# opportunities and leads.  The copies, bench.opportunity and bench.lead, have
# the same columns, defaults, CHECK constraints and indexes (CREATE TABLE ...
# LIKE ... INCLUDING ALL; the generated search_text too, which the copies
# compute as crm's tables do, so that both fill the same trigram index), the
# same outgoing foreign keys (to crm.account, crm.lead_source, ...; the
# lead's to the opportunity and back join the two copies) and the same
# incoming ones: for every other table's foreign key to
# crm's table, a table bench.TABLE_ref_N with the same referencing columns,
# index and ON DELETE / ON UPDATE action references the copy.  The copies
# have no trigger, no row-level security and no change log.
#
# Each round runs, for opportunities and then leads, the INSERT of ROWS new
# rows, an UPDATE of all of them and their DELETE, each statement on crm's
# table and on the copy one after the other (which goes first alternates by
# round), in autocommit as a client sends them (psql's \timing: the
# statement with its AFTER triggers and its commit); then VACUUM ANALYZE.
# Printed: the median of each, and "copy / crm", the copy's time divided by
# crm's: the share of the plain table's speed crm's table keeps (1 = as fast).
# The opportunity UPDATE also runs on crm's table with the triggers of the
# aggregates, the history and the change log disabled (in a transaction
# rolled back): printed is that time, and the difference, the time those
# writes take, divided by the copy's time.  When that quotient is above 1,
# the writes alone take longer than the copy's whole statement, and
# copy / crm stays below 0.5 however cheap the rest of crm's triggers are.
#
#   INSERT opportunity: name, account, amount, probability, close date
#   UPDATE opportunity: amount + 1 and stage Qualification -> Requirement
#                       (history, aggregates, change log all have work)
#   DELETE opportunity: the inserted rows
#   INSERT lead:        name, company, email, city (all different), owner
#   UPDATE lead:        city and remarks (no status change)
#   DELETE lead:        the inserted rows
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

ROWS=${ROWS:-100000}
ROUNDS=${ROUNDS:-3}
BASE=${BASE:-20000}

ensure_packages
build_and_install >&2
WORK=$(mktemp -d /tmp/crm-bench-bulk.XXXXXX)
chmod 755 "$WORK"
[ "$(id -u)" -ne 0 ] || chown "$(cluster_user)": "$WORK"
trap 'stop_cluster "$WORK/cluster"; rm -rf "$WORK"' EXIT
start_cluster "$WORK/cluster" >&2
psql_q() { as_cluster_user psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres "$@"; }

log "loading $BASE accounts, opportunities and leads; making the copies"
psql_q -d postgres -c "CREATE DATABASE bulk"
psql_q -d bulk -c "CREATE EXTENSION crm CASCADE" >/dev/null
psql_q -d bulk <<SQL >/dev/null
SET session_replication_role = replica;
INSERT INTO crm.account (name) SELECT 'Account ' || md5(g::text) FROM generate_series(1, $BASE) g;
-- with the furthest step the triggers would set (the CHECK of issue 22)
INSERT INTO crm.opportunity (name, account_id, amount, probability, close_date, furthest_stage)
SELECT 'Deal ' || g, 1 + g % $BASE, g % 5000, 10, date '2027-01-01' + g % 365, 'Qualification' FROM generate_series(1, $BASE) g;
INSERT INTO crm.lead (name, company, email, city, owner, furthest_status)
SELECT 'Lead ' || md5(g::text), 'Co ' || md5((-g)::text), 'l' || g || '@base.example', 'Berlin', current_user::regrole, 'New Lead'
  FROM generate_series(1, $BASE) g;
RESET session_replication_role;
SELECT crm.rebuild_aggregates();
CREATE SCHEMA bench;
-- bench.TABLE like crm.TABLE for the copied tables; their foreign keys to
-- each other join the copies, their other outgoing ones are crm's, and
-- every other table's foreign key to a copied table gets its bench.TABLE_ref_N
CREATE FUNCTION bench.fk(def text, copied text[]) RETURNS text LANGUAGE sql AS \$\$
    SELECT regexp_replace(def, 'REFERENCES crm\.(' || array_to_string(copied, '|') || ')\(', 'REFERENCES bench.\1(')
\$\$;
CREATE FUNCTION bench.copy(copied text[]) RETURNS void LANGUAGE plpgsql AS \$\$
DECLARE
    t text;
    c record;
    n int;
    cols text;
BEGIN
    FOREACH t IN ARRAY copied LOOP
        EXECUTE format('CREATE TABLE bench.%I (LIKE crm.%I INCLUDING ALL)', t, t);
    END LOOP;
    FOREACH t IN ARRAY copied LOOP
        FOR c IN SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
                  WHERE contype = 'f' AND conrelid = format('crm.%I', t)::regclass
        LOOP
            EXECUTE format('ALTER TABLE bench.%I ADD CONSTRAINT %I %s', t, c.conname, bench.fk(c.def, copied));
        END LOOP;
        n := 0;
        FOR c IN SELECT f.oid, f.conrelid, f.conkey, pg_get_constraintdef(f.oid) AS def FROM pg_constraint AS f
                  WHERE f.contype = 'f' AND f.confrelid = format('crm.%I', t)::regclass
                    AND f.conrelid <> ALL (SELECT format('crm.%I', x)::regclass FROM unnest(copied) AS x)
        LOOP
            n := n + 1;
            SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ')
              INTO cols
              FROM unnest(c.conkey) AS k(attnum)
              JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.attnum;
            EXECUTE format('CREATE TABLE bench.%I (%s)', t || '_ref_' || n, cols);
            EXECUTE format('ALTER TABLE bench.%I ADD %s', t || '_ref_' || n, bench.fk(c.def, copied));
            EXECUTE format('CREATE INDEX ON bench.%I (%s)', t || '_ref_' || n,
                           (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.i)
                              FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, i)
                              JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.attnum));
        END LOOP;
    END LOOP;
END
\$\$;
SELECT bench.copy(ARRAY['opportunity', 'lead']);
-- the copies have no trigger to set the furthest step their CHECK requires:
-- the value crm's trigger sets for the rows inserted below
ALTER TABLE bench.opportunity ALTER furthest_stage SET DEFAULT 'Qualification';
ALTER TABLE bench.lead ALTER furthest_status SET DEFAULT 'New Lead';
-- every column but the generated ones (search_text), which the copy computes
DO \$\$
DECLARE
    t text;
    cols text;
BEGIN
    FOREACH t IN ARRAY ARRAY['opportunity', 'lead'] LOOP
        SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols FROM pg_attribute
         WHERE attrelid = format('crm.%I', t)::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = '';
        EXECUTE format('INSERT INTO bench.%I (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM crm.%I', t, cols, cols, t);
    END LOOP;
END
\$\$;
SELECT setval(pg_get_serial_sequence('bench.' || t, 'id'), (SELECT last_value FROM pg_sequences
                                                             WHERE schemaname = 'crm' AND sequencename = t || '_id_seq'))
  FROM unnest(ARRAY['opportunity', 'lead']) AS t;
SQL
psql_q -d bulk -c "VACUUM ANALYZE" >/dev/null
log "copies: $(psql_q -d bulk -c "SELECT string_agg(format('%s: %s triggers, %s foreign keys out, %s in', t, (SELECT count(*) FROM pg_trigger WHERE tgrelid = t AND NOT tgisinternal), (SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = t), (SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND confrelid = t AND conrelid <> t)), '; ') FROM unnest(ARRAY['crm.opportunity', 'bench.opportunity', 'crm.lead', 'bench.lead']::regclass[]) AS t")"

# statement OP TABLE (crm or bench): the SQL of one measured statement
statement() {
    local op=$1 s=$2 base=$((BASE + 1000000))
    case $op in
        insert_opportunity) echo "INSERT INTO $s.opportunity (name, account_id, amount, probability, close_date)
              SELECT 'Bulk ' || g, 1 + g % $BASE, g % 5000, 10, date '2027-01-01' + g % 365 FROM generate_series(1, $ROWS) g;" ;;
        update_opportunity) echo "UPDATE $s.opportunity SET amount = amount + 1, stage = 'Requirement' WHERE name LIKE 'Bulk %';" ;;
        delete_opportunity) echo "DELETE FROM $s.opportunity WHERE name LIKE 'Bulk %';" ;;
        insert_lead) echo "INSERT INTO $s.lead (name, company, email, city, owner)
              SELECT 'Bulk ' || md5(g::text), 'Bulk Co ' || md5((-g)::text), 'b' || g || '@bulk.example', 'Paris', current_user::regrole
                FROM generate_series($base, $base + $ROWS - 1) g;" ;;
        update_lead) echo "UPDATE $s.lead SET city = 'Lyon', remarks = 'called' WHERE name LIKE 'Bulk %';" ;;
        delete_lead) echo "DELETE FROM $s.lead WHERE name LIKE 'Bulk %';" ;;
    esac
}
ALL_OPS="insert_opportunity update_opportunity delete_opportunity insert_lead update_lead delete_lead"
OPS=${OPS:-$ALL_OPS}
# run in the order of ALL_OPS whatever the order given (an UPDATE listed
# before its INSERT would find no row to change)
OPS=$(for op in $ALL_OPS; do case " $OPS " in *" $op "*) printf '%s ' "$op" ;; esac; done)

# time_of SQL: milliseconds psql's \timing reports for SQL
time_of() {
    printf '\\timing on\nSET client_min_messages = error;\n%s\n' "$1" >"$WORK/stmt.sql"
    chmod a+r "$WORK/stmt.sql"
    psql_q -d bulk -f "$WORK/stmt.sql" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1
}

for r in $(seq 1 "$ROUNDS"); do
    log "round $r of $ROUNDS"
    for op in $OPS; do
        order="crm bench"; [ $((r % 2)) = 0 ] && order="bench crm"
        # first, the same UPDATE on crm's table without the aggregates, the
        # history and the change log, rolled back: what is left of crm's time
        # without those writes (its dead row versions then slow crm's own
        # UPDATE a little, never the copy's)
        if [ "$op" = update_opportunity ]; then
            echo "$op bare $(time_of "\\timing off
BEGIN;
ALTER TABLE crm.opportunity DISABLE TRIGGER aggregates_opportunity_update,
      DISABLE TRIGGER record_change_update, DISABLE TRIGGER record_opportunity_change_update;
\\timing on
$(statement "$op" crm)
\\timing off
ROLLBACK;")" >>"$WORK/times"
        fi
        for s in $order; do
            echo "$op $s $(time_of "$(statement "$op" "$s")")" >>"$WORK/times"
        done
    done
    psql_q -d bulk -c "VACUUM ANALYZE" >/dev/null
done
# the statements did what they say on both sides
deleted=0; case " $OPS " in *" delete_opportunity "*) deleted=$((ROUNDS * ROWS)) ;; esac
check=$(psql_q -d bulk -c "SELECT (SELECT count(*) FROM crm.opportunity) = (SELECT count(*) FROM bench.opportunity)
                              AND (SELECT count(*) FROM crm.lead) = (SELECT count(*) FROM bench.lead)
                              AND NOT EXISTS (SELECT FROM crm.verify_aggregates())
                              AND (SELECT count(*) FROM crm.change_log WHERE operation = 'DELETE'
                                     AND table_name = 'crm.opportunity'::regclass) = $deleted")
[ "$check" = t ] || { echo "the bulk statements did not run as expected" >&2; exit 1; }

median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
printf '\n%-22s %12s %12s %12s\n' "$ROWS rows, median ms" "crm" "copy" "copy / crm"
for op in $OPS; do
    c=$(awk -v o="$op" '$1 == o && $2 == "crm" {print $3}' "$WORK/times" | median)
    b=$(awk -v o="$op" '$1 == o && $2 == "bench" {print $3}' "$WORK/times" | median)
    printf '%-22s %12.0f %12.0f %12.3f\n' "${op/_/ }" "$c" "$b" "$(awk "BEGIN {print $b / $c}")"
done
if grep -q '^update_opportunity bare' "$WORK/times"; then
    c=$(awk '$1 == "update_opportunity" && $2 == "crm" {print $3}' "$WORK/times" | median)
    b=$(awk '$1 == "update_opportunity" && $2 == "bench" {print $3}' "$WORK/times" | median)
    n=$(awk '$1 == "update_opportunity" && $2 == "bare" {print $3}' "$WORK/times" | median)
    printf '%-22s %12.0f %12s %12.3f\n' "  without aggregates, history and change log" "$n" "" "$(awk "BEGIN {print $b / $n}")"
    printf '%-22s %12.0f %12s %12.3f\n' "  those writes: crm - without (and / copy)" "$(awk "BEGIN {print $c - $n}")" "" "$(awk "BEGIN {print ($c - $n) / $b}")"
fi
printf '\n(%d rounds, interleaved; %d accounts, opportunities and leads before; PostgreSQL %s)\n' \
    "$ROUNDS" "$BASE" "$PG_MAJOR"
