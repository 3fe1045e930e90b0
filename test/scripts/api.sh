#!/usr/bin/env bash
# test/scripts/api.sh: crm through PostGraphile 4 and node-postgres, at the
# versions pinned in api/package-lock.json (npm ci into api/node_modules).
# api/server.js serves a fresh database (with api/roles.sql and
# api/postgraphile.tags.json5); test/client/api_path.mjs then runs
# lead -> conversion -> quote -> approval -> order as two reps, their
# manager and an analyst, through GraphQL (a JWT per user) and through
# node-postgres: row-level security in the answers, SQLSTATEs in the
# errors, the insert inputs without database-set columns, crm.create_quote
# present as createQuoteFromOpportunity.  The GraphQL schema is also
# checked for the names every public function must have.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/common.sh

command -v node >/dev/null && command -v npm >/dev/null || install_missing nodejs npm
(cd api && npm ci --no-audit --no-fund --silent) || fail "npm ci in api/ failed"

test_cluster crm-api
db=crm_api
psql_as postgres postgres -c "CREATE DATABASE $db"
psql_as postgres "$db" -c "CREATE EXTENSION crm CASCADE" \
    -c "CREATE ROLE api_rep1 LOGIN IN ROLE crm_sales; CREATE ROLE api_rep2 LOGIN IN ROLE crm_sales;
        CREATE ROLE api_manager LOGIN IN ROLE crm_manager; CREATE ROLE api_analyst LOGIN IN ROLE crm_analyst" \
    -c "INSERT INTO crm.reporting_line (member, manager) VALUES ('api_rep1', 'api_manager'), ('api_rep2', 'api_manager')" \
    -c "INSERT INTO crm.product (code, name, list_price) VALUES ('WID-1', 'Widget', 100)" \
    -c "INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price) VALUES (1, 1, 100)"
# Hostile set-up: a superuser and a login with a server-file role are also
# CRM users, and crm_api was once granted crm_admin by hand.
psql_as postgres "$db" -c "CREATE ROLE api_root LOGIN SUPERUSER IN ROLE crm_admin;
        CREATE ROLE api_files LOGIN IN ROLE crm_sales, pg_read_server_files; CREATE ROLE crm_api LOGIN; GRANT crm_admin TO crm_api"
psql_as postgres "$db" -f - <api/roles.sql
# The authenticator has no rights of its own (NOINHERIT) and can become only
# the plain CRM logins: no group, no superuser, nothing with other powers.
[ "$(psql_as postgres "$db" -c "SELECT rolinherit FROM pg_roles WHERE rolname = 'crm_api'")" = f ] \
    || fail "crm_api inherits the rights of the roles it is a member of"
[ "$(psql_as postgres "$db" -c "SELECT string_agg(r.rolname, ',' ORDER BY r.rolname) FROM pg_roles AS r, pg_auth_members AS m
        WHERE m.member = 'crm_api'::regrole AND r.oid = m.roleid AND $( [ "$(psql_as postgres "$db" -c 'SHOW server_version_num')" -ge 160000 ] && echo 'm.set_option' || echo true )")" \
  = "api_analyst,api_manager,api_rep1,api_rep2,crm_api_anonymous" ] || fail "crm_api may SET ROLE to more than the CRM logins"

port=$(( 20000 + RANDOM % 20000 ))
secret=$(head -c 24 /dev/urandom | base64)
schema=$WORK/schema.graphql
CRM_API_DATABASE_URL="postgres://crm_api@$(node -p 'encodeURIComponent(process.argv[1])' "$PGHOST"):$PGPORT/$db" \
CRM_API_JWT_SECRET=$secret CRM_API_PORT=$port CRM_API_EXPORT_SCHEMA=$schema \
    node api/server.js >"$WORK/api.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; stop_cluster "$WORK/cluster" >/dev/null 2>&1 || true; rm -rf "$WORK" "$REPO_ROOT/api/.api_path.$$.mjs"' EXIT
for _ in $(seq 60); do
    grep -q "GraphQL API on" "$WORK/api.log" 2>/dev/null && [ -s "$schema" ] && break
    kill -0 $server 2>/dev/null || { cat "$WORK/api.log" >&2; fail "the API server did not start"; }
    sleep 1
done
[ -s "$schema" ] || { cat "$WORK/api.log" >&2; fail "the API server wrote no schema"; }

# Every function of the README's API a CRM user may call is a query or a
# mutation, under its own name (create_quote and create_order renamed).
for f in convertLead conversionPreview createQuoteFromOpportunity submitQuote approveQuote rejectQuote syncQuote \
         createOrderFromQuote activateOrder cancelOrder claimDueReminders takeReminder activityOccurrences \
         mergeAccounts mergeContacts mergeLeads dismissDuplicate logEmail search; do
    grep -Eq "^  $f\(" "$schema" || fail "the GraphQL schema has no field $f"
done
# Internals are not in it.
for f in teamRoles mayLinkAccount allPipelineAggregates allAggregatesCompareds createQuoteTransition; do
    ! grep -Eq "^  $f[(:]" "$schema" || fail "the GraphQL schema shows the internal $f"
done

prog=$REPO_ROOT/api/.api_path.$$.mjs     # node finds pg and jsonwebtoken from api/
cp test/client/api_path.mjs "$prog"
API_URL=http://127.0.0.1:$port/graphql JWT_SECRET=$secret PGDATABASE=$db node "$prog" || fail "the API path failed (see above)"
echo "api: ok"
