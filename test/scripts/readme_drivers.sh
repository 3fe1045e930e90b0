#!/usr/bin/env bash
# test/scripts/readme_drivers.sh: the driver examples of the README section
# "Using crm from an application" run as written -- only the connection
# parameters are replaced by the test cluster's -- and do what they say:
#   1. the psycopg 3 example converts its lead, prints the new account, then
#      catches the second conversion as ZC002 with a detail naming the
#      account, and its conversion stays committed;
#   2. the node-postgres example (pg pinned in api/package.json,
#      installed with npm ci into api/node_modules) does the same;
#   3. the GraphQL examples (section "GraphQL (PostGraphile)"), each sent as
#      alice to api/server.js over the test database, with only the ids of
#      her lead and of the opportunity its conversion made put in for the
#      README's: each answers without errors and with what it asks for.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/common.sh

install_missing python3-psycopg
command -v node >/dev/null && command -v npm >/dev/null || install_missing nodejs npm
(cd api && npm ci --no-audit --no-fund --silent) || fail "npm ci in api failed"

test_cluster crm-readme
db=crm
psql_as postgres postgres -c "CREATE DATABASE $db"
psql_as postgres "$db" -c "CREATE EXTENSION crm CASCADE" -c "CREATE ROLE alice LOGIN IN ROLE crm_sales"

# readme_block LANG: the first ```LANG block of the section
readme_block() {
    awk -v lang="$1" '
        /^## Using crm from an application/ { in_section = 1; next }
        in_section && /^## / { exit }
        in_section && !done && $0 == "```" lang { in_block = 1; next }
        in_block && $0 == "```" { in_block = 0; done = 1; next }
        in_block { print }' README.md
}

# check_run NAME OUTPUT: the example printed the account line, then ZC002
# with the detail, and the lead it converted stays converted.
check_run() {
    local name=$1 out=$2 lead account
    echo "$out" | sed "s/^/  $name: /"
    [ "$(echo "$out" | wc -l)" = 2 ] || fail "$name: expected two lines of output"
    account=$(echo "$out" | sed -n '1p' | awk '{print $1}')
    echo "$out" | sed -n '1p' | grep -Eq '^[0-9]+ ([Tt]rue|[Ff]alse) [0-9]+$' || fail "$name: first line is not 'account_id account_created opportunity_id'"
    echo "$out" | sed -n '2p' | grep -q "^ZC002 .*account $account" || fail "$name: second line is not ZC002 naming account $account"
    lead=$(psql_as postgres "$db" -c "SELECT id FROM crm.lead WHERE account_id = $account AND status = 'Converted' ORDER BY id DESC LIMIT 1")
    [ -n "$lead" ] || fail "$name: the conversion into account $account did not stay committed"
}

py=$WORK/example.py
readme_block python | sed "s|host=/var/run/postgresql dbname=crm user=alice|host=$PGHOST port=$PGPORT dbname=$db user=alice|" >"$py"
grep -q "port=$PGPORT" "$py" || fail "the python example's connection string was not found"
check_run psycopg "$(/usr/bin/python3 "$py")"

# node resolves 'pg' from the module's directory upwards: the module lives in api
js=$REPO_ROOT/api/readme_example.$$.mjs
readme_block js | sed "s|host: '/var/run/postgresql', database: 'crm', user: 'alice'|host: '$PGHOST', port: $PGPORT, database: '$db', user: 'alice'|" >"$js"
grep -q "port: $PGPORT" "$js" || fail "the node-postgres example's connection was not found"
out=$(node "$js") || { rm -f "$js"; fail "the node-postgres example failed"; }
rm -f "$js"
check_run node-postgres "$out"
# 3. GraphQL: the operations of the first graphql block, one per top-level line
source test/scripts/api_server.sh
start_api_server "$db"
lead=$(psql_as alice "$db" -c "SET client_min_messages = error" -c "INSERT INTO crm.lead (name, company, email) VALUES ('Ann Lee', 'Lima Consulting', 'ann@lima.example') RETURNING id")
psql_as alice "$db" -c "INSERT INTO crm.lead (name, company) VALUES ('Ben Ode', 'Oslo Tools')" >/dev/null
# gql QUERY: the answer to QUERY sent as alice, with the property PATH
# (dotted) printed, or FAIL if the answer has errors or no such property
gql() {
    (cd api && node -e '
        const jwt = require("jsonwebtoken");
        const [url, secret, query, path] = process.argv.slice(1);
        const token = jwt.sign({ role: "alice" }, secret, { audience: "postgraphile", expiresIn: "10m" });
        fetch(url, { method: "POST", body: JSON.stringify({ query }),
                     headers: { "Content-Type": "application/json", Authorization: "Bearer " + token } })
            .then((r) => r.json()).then((a) => {
                const v = path.split(".").reduce((o, k) => o?.[k], a.data);
                if (a.errors || v === undefined || v === null) { console.log("FAIL " + JSON.stringify(a)); process.exit(1); }
                console.log(typeof v === "object" ? JSON.stringify(v) : v);
            });' "http://127.0.0.1:$api_port/graphql" "$api_secret" "$1" "$2")
}
awk '/^### GraphQL \(PostGraphile\)/ { s = 1 } s && $0 == "```graphql" { b = 1; next } b && $0 == "```" { exit }
     b && /^[^ ]/ { if (op != "") print op; op = $0; next } b { op = op " " $0 } END { if (op != "") print op }' \
    README.md >"$WORK/graphql.ops"
[ "$(wc -l <"$WORK/graphql.ops")" = 4 ] || fail "expected four GraphQL examples in the README, found $(wc -l <"$WORK/graphql.ops")"
op=$(sed -n 1p "$WORK/graphql.ops" | sed -E "s/leadId: \"[0-9]+\"/leadId: \"$lead\"/")
opp=$(gql "$op" convertLead.conversionResult.opportunityId) || fail "README GraphQL convertLead: $opp"
echo "  graphql: convertLead -> opportunity $opp"
op=$(sed -n 2p "$WORK/graphql.ops" | sed -E "s/opportunityId: \"[0-9]+\"/opportunityId: \"$opp\"/")
out=$(gql "$op" createQuoteFromOpportunity.bigInt) || fail "README GraphQL createQuoteFromOpportunity: $out"
echo "  graphql: createQuoteFromOpportunity -> quote $out"
out=$(gql "$(sed -n 3p "$WORK/graphql.ops")" allLeads.nodes) || fail "README GraphQL query: $out"
grep -q '"name":"Ben Ode"' <<<"$out" && ! grep -q '"Ann Lee"' <<<"$out" || fail "README GraphQL query: not alice's new lead only: $out"
out=$(gql "$(sed -n 3p "$WORK/graphql.ops")" allPipelineTotals.nodes) || fail "README GraphQL query: $out"
grep -q '"owner":"alice"' <<<"$out" || fail "README GraphQL query: no pipeline totals of alice: $out"
echo "  graphql: allLeads, allPipelineTotals"
out=$(gql "$(sed -n 4p "$WORK/graphql.ops")" findDuplicates) || fail "README GraphQL findDuplicates: $out"
grep -q '"kind":"contact"' <<<"$out" || fail "README GraphQL findDuplicates: not the contact of the conversion: $out"
echo "  graphql: findDuplicates"
echo "readme drivers: ok"
