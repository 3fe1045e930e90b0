#!/usr/bin/env bash
# scripts/api.sh: crm as a GraphQL API over the demo cluster (run
# scripts/demo.sh first), served by PostGraphile 4 on localhost.
#
#   bash scripts/api.sh          install the pinned npm packages into api/
#                                (npm ci), create the API's roles in the demo
#                                database, start api/server.js in the
#                                background and print tokens and queries
#   bash scripts/api.sh stop     stop the server
#
# Roles (created once, in the demo database's cluster):
#   crm_api            the login PostGraphile connects as (NOINHERIT); a
#                      member of every plain CRM user's login, so that it may
#                      SET ROLE to the role a request's token names, never of
#                      a group, a superuser or a login with other powers
#                      (see api/roles.sql)
#   crm_api_anonymous  what a request without a token runs as: no rights
# The server, its log, its pid and its JWT secret live in the demo directory.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DEMO_DIR=${CRM_DEMO_DIR:-/tmp/crm-demo}
DB=${CRM_API_DB:-crm_demo}
PORT=${CRM_API_PORT:-5678}
API_DIR=$REPO_ROOT/api
pidfile=$DEMO_DIR/api.pid

stop_api() {
    if [ -f "$pidfile" ]; then
        kill "$(cat "$pidfile")" 2>/dev/null || true
        rm -f "$pidfile"
    fi
}
if [ "${1:-}" = "stop" ]; then
    stop_api
    log "the API server is stopped"
    exit 0
fi

[ -S "$DEMO_DIR/.s.PGSQL.5432" ] || fail "no demo cluster in $DEMO_DIR: run bash scripts/demo.sh first"
command -v node >/dev/null && command -v npm >/dev/null || install_missing nodejs npm
export PGHOST=$DEMO_DIR PGPORT=5432
log "installing PostGraphile and node-postgres (pinned, api/package-lock.json)"
(cd "$API_DIR" && npm ci --no-audit --no-fund --silent)

log "creating the API's roles"
psql_as postgres "$DB" -f - <"$API_DIR/roles.sql"

stop_api
secret_file=$DEMO_DIR/api.jwt_secret
[ -s "$secret_file" ] || { umask 077; head -c 32 /dev/urandom | base64 >"$secret_file"; }
secret=$(cat "$secret_file")
log "starting PostGraphile on http://127.0.0.1:$PORT/graphql"
CRM_API_DATABASE_URL="postgres://crm_api@$(node -p 'encodeURIComponent(process.argv[1])' "$DEMO_DIR"):5432/$DB" \
CRM_API_JWT_SECRET=$secret CRM_API_PORT=$PORT \
    nohup node "$API_DIR/server.js" >"$DEMO_DIR/api.log" 2>&1 &
echo $! >"$pidfile"
for _ in $(seq 60); do
    grep -q 'GraphQL API on' "$DEMO_DIR/api.log" 2>/dev/null && break
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { cat "$DEMO_DIR/api.log" >&2; fail "the API server did not start"; }
    sleep 1
done

token() {
    CRM_API_JWT_SECRET=$secret node -e '
        const jwt = require(process.argv[1] + "/node_modules/jsonwebtoken");
        console.log(jwt.sign({ role: process.argv[2] }, process.env.CRM_API_JWT_SECRET, { audience: "postgraphile", expiresIn: "12h" }));' \
        "$API_DIR" "$1"
}
cat <<MSG

The GraphQL API runs on http://127.0.0.1:$PORT/graphql (GraphiQL: /graphiql;
log: $DEMO_DIR/api.log).  Each request runs as the database role its token's
"role" claim names (tokens valid 12 hours, signed with the secret in
$secret_file):
    alice (sales rep):   $(token alice)
    carol (her manager): $(token carol)
    dana (analyst):      $(token dana)
For example, alice's leads and the pipeline she may see:
    curl -s http://127.0.0.1:$PORT/graphql -H 'Content-Type: application/json' \\
         -H "Authorization: Bearer \$ALICE_TOKEN" \\
         -d '{"query": "{ allLeads(first: 5) { nodes { id name company status } } allPipelineTotals { nodes { stage owner closeMonth amount } } }"}'
and a conversion:
    -d '{"query": "mutation { convertLead(input: {leadId: \"1\"}) { conversionResult { accountId opportunityId } } }"}'
Stop it with
    bash scripts/api.sh stop
MSG
