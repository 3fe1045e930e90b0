#!/usr/bin/env bash
# test/scripts/api.sh: crm through PostGraphile 4 and node-postgres, at the
# versions pinned in api/package-lock.json (npm ci into api/node_modules).
# api/server.js serves a fresh database (with api/roles.sql and
# api/postgraphile.tags.json5); test/client/api_path.mjs then runs
# lead -> conversion -> quote -> approval -> order as two reps, their
# manager and an analyst, through GraphQL (a JWT per user) and through
# node-postgres: row-level security in the answers, SQLSTATEs in the
# errors, the insert inputs without database-set columns, crm.create_quote
# present as createQuoteFromOpportunity, captureLead for a web form's login
# only, findDuplicates for both overloads.  The GraphQL schema is also
# checked for the names every public function must have: every function of
# README "## Functions" but the internal ones and the trigger functions.
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
        CREATE ROLE api_manager LOGIN IN ROLE crm_manager; CREATE ROLE api_analyst LOGIN IN ROLE crm_analyst;
        CREATE ROLE api_form LOGIN IN ROLE crm_intake; CREATE ROLE api_admin LOGIN IN ROLE crm_admin" \
    -c "INSERT INTO crm.reporting_line (member, manager) VALUES ('api_rep1', 'api_manager'), ('api_rep2', 'api_manager')" \
    -c "INSERT INTO crm.product (code, name, list_price) VALUES ('WID-1', 'Widget', 100)" \
    -c "INSERT INTO crm.price_book_entry (price_book_id, product_id, unit_price) VALUES (1, 1, 100)"
# Hostile set-up: a superuser and a login with a server-file role are also
# CRM users, and crm_api was once granted crm_admin by hand.  (api_admin, a
# plain admin login, brings the admin-only functions into the schema.)
psql_as postgres "$db" -c "CREATE ROLE api_root LOGIN SUPERUSER IN ROLE crm_admin;
        CREATE ROLE api_files LOGIN IN ROLE crm_sales, pg_read_server_files; CREATE ROLE crm_api LOGIN; GRANT crm_admin TO crm_api"
psql_as postgres "$db" -f - <api/roles.sql
# The authenticator has no rights of its own (NOINHERIT) and can become only
# the plain CRM logins: no group, no superuser, nothing with other powers.
[ "$(psql_as postgres "$db" -c "SELECT rolinherit FROM pg_roles WHERE rolname = 'crm_api'")" = f ] \
    || fail "crm_api inherits the rights of the roles it is a member of"
[ "$(psql_as postgres "$db" -c "SELECT string_agg(r.rolname, ',' ORDER BY r.rolname) FROM pg_roles AS r, pg_auth_members AS m
        WHERE m.member = 'crm_api'::regrole AND r.oid = m.roleid AND $( [ "$(psql_as postgres "$db" -c 'SHOW server_version_num')" -ge 160000 ] && echo 'm.set_option' || echo true )")" \
  = "api_admin,api_analyst,api_form,api_manager,api_rep1,api_rep2,crm_api_anonymous" ] || fail "crm_api may SET ROLE to more than the CRM logins"

source test/scripts/api_server.sh
start_api_server "$db"
port=$api_port secret=$api_secret schema=$api_schema

# Every function of the README's API a CRM user may call is a query or a
# mutation, under its own name (create_quote and create_order renamed).
for f in convertLead conversionPreview createQuoteFromOpportunity submitQuote approveQuote rejectQuote syncQuote \
         createOrderFromQuote activateOrder cancelOrder claimDueReminders takeReminder activityOccurrences \
         mergeAccounts mergeContacts mergeLeads dismissDuplicate logEmail search findDuplicates captureLead; do
    grep -Eq "^  $f\(" "$schema" || fail "the GraphQL schema has no field $f"
done
# Every function README "## Functions" lists (but those it calls internal and
# the trigger functions) is a query or a mutation named after it, or is
# named here: renamed, a computed field, or a policy helper the tags file hides.
declare -A graphql_name=(
    [create_quote]=createQuoteFromOpportunity [create_order]=createOrderFromQuote
    [lead_score_rules]=-computed-Lead.scoreRules
    [team_roles]=-hidden [current_role_id]=-hidden [may_reference_account]=-hidden
    [may_reference_contact]=-hidden [may_link_account]=-hidden [search_document]=-hidden)
root_fields=$(awk '/^type (Query|Mutation) /{f=1} f{print} f&&/^}/{f=0}' "$schema")
missing=()
for fn in $(awk '/^## Functions/{f=1; next} /^\*\*Trigger functions\*\*/{f=0} f && /^\| `crm\./ && !/internal/' README.md \
            | sed -E 's/^\| `crm\.([a-z_]+)\(.*/\1/' | sort -u); do
    name=${graphql_name[$fn]:-$(sed -E 's/_([a-z])/\U\1/g' <<<"$fn")}
    case $name in
        -hidden) ! grep -Eq "^  $(sed -E 's/_([a-z])/\U\1/g' <<<"$fn")[(:]" <<<"$root_fields" || missing+=("$fn (shown)") ;;
        -computed-Lead.scoreRules) awk '/^type Lead /{f=1} f{print} f&&/^}/{f=0}' "$schema" | grep -Eq '^  scoreRules\(' \
                                       || missing+=("$fn (Lead.scoreRules)") ;;
        *) grep -Eq "^  $name[(:]" <<<"$root_fields" || missing+=("$fn ($name)") ;;
    esac
done
[ ${#missing[@]} -eq 0 ] || fail "README functions without their GraphQL field: ${missing[*]}"

# Internals are not in it.
for f in teamRoles mayLinkAccount allPipelineAggregates allAggregatesCompareds createQuoteTransition; do
    ! grep -Eq "^  $f[(:]" "$schema" || fail "the GraphQL schema shows the internal $f"
done

prog=$REPO_ROOT/api/.api_path.$$.mjs     # node finds pg and jsonwebtoken from api/
cp test/client/api_path.mjs "$prog"
API_URL=http://127.0.0.1:$port/graphql JWT_SECRET=$secret PGDATABASE=$db node "$prog" || fail "the API path failed (see above)"
echo "api: ok"
