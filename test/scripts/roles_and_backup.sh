#!/usr/bin/env bash
# test/scripts/roles_and_backup.sh: the group roles are cluster-wide, and
# backups are taken by the right role.
#
# 1. The extension is created in two databases of one cluster, dropped from
#    one and created there again: the crm_* roles are created once and
#    reused, nothing fails, and each database has its own data.
# 2. pg_dump sets row_security = off, so only a role that row-level security
#    does not apply to can dump the CRM tables: the superuser (or the role
#    that owns the extension's tables) dumps every rep's rows; a crm_admin
#    login, subject to the policies, is refused instead of silently dumping
#    a subset.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/common.sh

test_cluster crm-roles


# 1. Two databases, drop and create again.
psql_as postgres postgres -c "CREATE DATABASE crm_one" -c "CREATE DATABASE crm_two"
psql_as postgres crm_one -c "CREATE EXTENSION crm CASCADE"
psql_as postgres crm_two -c "CREATE EXTENSION crm CASCADE"
roles=$(psql_as postgres postgres -c "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname LIKE 'crm\_%'")
[ "$roles" = "crm_admin,crm_analyst,crm_intake,crm_manager,crm_privacy_officer,crm_sales" ] || fail "group roles are '$roles'"
psql_as postgres crm_one -c "DROP EXTENSION crm"
psql_as postgres crm_one -c "CREATE EXTENSION crm CASCADE"
psql_as postgres crm_one -c "INSERT INTO crm.lead (name, company) VALUES ('Only in one', 'One Corp')"
n_two=$(psql_as postgres crm_two -c "SELECT count(*) FROM crm.lead")
[ "$n_two" = "0" ] || fail "crm_two sees $n_two leads of crm_one"
echo "ok: created in two databases, dropped and created again; roles $roles"

# 2. Backups.  Two reps' leads, one converted; an admin login.
psql_as postgres crm_one \
    -c "CREATE ROLE backup_rep1 LOGIN IN ROLE crm_sales; CREATE ROLE backup_rep2 LOGIN IN ROLE crm_sales;
        CREATE ROLE backup_admin LOGIN IN ROLE crm_admin" \
    -c "INSERT INTO crm.lead (name, company, owner) VALUES ('Rep one', 'Alpha', 'backup_rep1'), ('Rep two', 'Beta', 'backup_rep2')"
psql_as backup_rep1 crm_one -c "SELECT crm.convert_lead(id) FROM crm.lead WHERE name = 'Rep one'" >/dev/null
rep1_sees=$(psql_as backup_rep1 crm_one -c "SELECT count(*) FROM crm.lead")
[ "$rep1_sees" = "1" ] || fail "backup_rep1 sees $rep1_sees leads, expected only their own"

# The superuser's dump has every lead of every owner.
as_cluster_user pg_dump -h "$PGHOST" -p "$PGPORT" -U postgres -d crm_one >"$WORK/full.sql" 2>"$WORK/full.log" \
    || { cat "$WORK/full.log" >&2; fail "pg_dump as the superuser failed"; }
leads_in_dump=$(awk '/^COPY crm.lead /{f=1; next} f && /^\\\.$/{f=0} f' "$WORK/full.sql" | wc -l)
[ "$leads_in_dump" = "3" ] || fail "superuser dump holds $leads_in_dump leads, expected 3"
grep -q "^CREATE EXTENSION IF NOT EXISTS crm" "$WORK/full.sql" || fail "dump does not recreate the extension"
echo "ok: pg_dump as the superuser dumps all $leads_in_dump leads"

# An admin login is subject to row-level security: pg_dump (row_security
# off) refuses its leads rather than dump a filtered subset, and a whole
# dump fails too.
if out=$(as_cluster_user pg_dump -h "$PGHOST" -p "$PGPORT" -U backup_admin -d crm_one -a -t crm.lead 2>&1 >/dev/null); then
    fail "pg_dump of crm.lead as a crm_admin login succeeded; it must not dump through row-level security"
fi
grep -q "query would be affected by row-level security policy for table \"lead\"" <<<"$out" \
    || fail "unexpected pg_dump error: $out"
echo "ok: pg_dump of crm.lead as a crm_admin login is refused by row-level security"
if as_cluster_user pg_dump -h "$PGHOST" -p "$PGPORT" -U backup_admin -d crm_one >/dev/null 2>&1; then
    fail "a whole pg_dump as a crm_admin login succeeded"
fi
echo "roles and backup: ok"
