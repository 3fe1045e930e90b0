# test/scripts/api_server.sh: sourced by test/scripts/api.sh and
# readme_drivers.sh (after scripts/common.sh and test_cluster).
# start_api_server DB: api/roles.sql in DB, then api/server.js over it on a
# free port, with a fresh JWT secret; sets $api_port, $api_secret,
# $api_schema (the GraphQL schema it wrote) and $api_server (its pid), and
# stops the server when the script exits.
start_api_server() {
    local db=$1
    psql_as postgres "$db" -f - <api/roles.sql
    api_port=$(( 20000 + RANDOM % 20000 ))
    api_secret=$(head -c 24 /dev/urandom | base64)
    api_schema=$WORK/schema.graphql
    CRM_API_DATABASE_URL="postgres://crm_api@$(node -p 'encodeURIComponent(process.argv[1])' "$PGHOST"):$PGPORT/$db" \
    CRM_API_JWT_SECRET=$api_secret CRM_API_PORT=$api_port CRM_API_EXPORT_SCHEMA=$api_schema \
        node api/server.js >"$WORK/api.log" 2>&1 &
    api_server=$!
    trap 'kill $api_server 2>/dev/null || true; stop_cluster "$WORK/cluster" >/dev/null 2>&1 || true
          rm -rf "$WORK" "$REPO_ROOT"/api/.api_*.$$.mjs' EXIT
    for _ in $(seq 60); do
        grep -q "GraphQL API on" "$WORK/api.log" 2>/dev/null && [ -s "$api_schema" ] && break
        kill -0 $api_server 2>/dev/null || { cat "$WORK/api.log" >&2; fail "the API server did not start"; }
        sleep 1
    done
    [ -s "$api_schema" ] || { cat "$WORK/api.log" >&2; fail "the API server wrote no schema"; }
}
