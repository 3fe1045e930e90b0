#!/usr/bin/env bash
# bench/custom_fields.sh: what custom fields cost a single-row write, and
# what the GIN index and crm.find_by_attributes() bring a search -- side by
# side in one run.
#
#   bash bench/custom_fields.sh      N=100000 SECS=5 ROUNDS=3
#
# N accounts (half a rep's, half another rep's), each with
# {"region": one of 20 picks, "employees": its id}; fields region (pick),
# employees (number), note (text).  Loaded with triggers off and analysed.
# pgbench, one client, SECS seconds per line, transactions per second:
#   update other column    UPDATE ... SET industry (attributes untouched)
#   update attributes      UPDATE ... SET attributes = attributes || {"region": ...}
# each with the custom_fields_check trigger on and off, ROUNDS times in
# alternating order (median tps; ratio on/off), and
#   find one by value      WHERE attributes @> '{"employees": <random id>}'
# as the superuser with and without account_attributes_idx, as the rep
# directly (row-level security: the index is not used) and as the rep
# through crm.find_by_attributes().  fsync is off: CPU work, not disk.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"
N=${N:-100000}
SECS=${SECS:-5}
ROUNDS=${ROUNDS:-3}

ensure_packages
build_and_install >&2
WORK=$(mktemp -d /tmp/crm-bench-cf.XXXXXX)
chmod 755 "$WORK"
trap 'stop_cluster "$WORK/cluster"; rm -rf "$WORK"' EXIT
start_cluster "$WORK/cluster" >&2
psql_q() { as_cluster_user psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U postgres "$@"; }

psql_q -d postgres -c "CREATE DATABASE cf_on"
psql_q -d cf_on -c "CREATE EXTENSION crm CASCADE" \
    -c "DO \$\$ BEGIN CREATE ROLE bench_rep LOGIN IN ROLE crm_sales; CREATE ROLE bench_other IN ROLE crm_sales;
        EXCEPTION WHEN duplicate_object THEN NULL; END \$\$" \
    -c "INSERT INTO crm.custom_field (object, name, label, type, options) VALUES
          ('account', 'region', 'Region', 'pick', ARRAY(SELECT 'R' || g FROM generate_series(0, 19) g)),
          ('account', 'employees', 'Employees', 'number', NULL), ('account', 'note', 'Note', 'text', NULL)" \
    -c "SET session_replication_role = replica;
        INSERT INTO crm.account (name, owner, attributes)
        SELECT 'Account ' || g, CASE WHEN g % 2 = 0 THEN 'bench_rep' ELSE 'bench_other' END::regrole,
               jsonb_build_object('region', 'R' || g % 20, 'employees', g)
          FROM generate_series(1, $N) g" \
    -c "VACUUM ANALYZE"
psql_q -d postgres -c "CREATE DATABASE cf_off TEMPLATE cf_on" -c "CREATE DATABASE cf_noidx TEMPLATE cf_on"
psql_q -d cf_off -c "ALTER TABLE crm.account DISABLE TRIGGER custom_fields_check"
psql_q -d cf_noidx -c "DROP INDEX crm.account_attributes_idx"

cat >"$WORK/other.sql" <<SQL
\set id random(1, $N)
UPDATE crm.account SET industry = 'Retail' WHERE id = :id;
SQL
cat >"$WORK/attr.sql" <<SQL
\set id random(1, $N)
\set r random(0, 19)
UPDATE crm.account SET attributes = attributes || jsonb_build_object('region', 'R' || :r) WHERE id = :id;
SQL
cat >"$WORK/find.sql" <<SQL
\set id random(1, $N)
SELECT count(*) FROM crm.account WHERE attributes @> jsonb_build_object('employees', :id);
SQL
cat >"$WORK/find_fn.sql" <<SQL
\set id random(1, $N)
SELECT count(*) FROM crm.find_by_attributes('account', jsonb_build_object('employees', :id));
SQL
chmod a+r "$WORK"/*.sql
tps() { # db user file
    as_cluster_user pgbench -n -c 1 -T "$SECS" -h "$PGHOST" -p "$PGPORT" -U "$2" -f "$3" "$1" 2>/dev/null \
        | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# write FILE: median tps with the check on and off, rounds alternating
write() {
    local r on="" off=""
    for r in $(seq "$ROUNDS"); do
        if [ $((r % 2)) -eq 1 ]; then
            on+="$(tps cf_on postgres "$1") "; off+="$(tps cf_off postgres "$1") "
        else
            off+="$(tps cf_off postgres "$1") "; on+="$(tps cf_on postgres "$1") "
        fi
    done
    on=$(tr ' ' '\n' <<<"$on" | grep . | median); off=$(tr ' ' '\n' <<<"$off" | grep . | median)
    printf '%-40s %10.0f %10.0f %8s\n' "$2" "$on" "$off" "$(ratio "$on" "$off")"
}
printf '%-40s %10s %10s %8s\n' "single-row write (median tps)" "check on" "check off" "on/off"
write "$WORK/other.sql" "update other column"
write "$WORK/attr.sql" "update attributes"
echo
idx=$(tps cf_on postgres "$WORK/find.sql"); noidx=$(tps cf_noidx postgres "$WORK/find.sql")
rep=$(tps cf_on bench_rep "$WORK/find.sql"); repfn=$(tps cf_on bench_rep "$WORK/find_fn.sql")
printf '%-40s %10s\n' "find one of $N by value (tps)" ""
printf '%-40s %10s\n' "superuser, GIN index" "$idx"
printf '%-40s %10s   index/none %s\n' "superuser, no index" "$noidx" "$(ratio "$idx" "$noidx")"
printf '%-40s %10s\n' "rep, attributes @> (RLS: no index)" "$rep"
printf '%-40s %10s   function/direct %s\n' "rep, crm.find_by_attributes()" "$repfn" "$(ratio "$repfn" "$rep")"
