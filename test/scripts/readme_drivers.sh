#!/usr/bin/env bash
# test/scripts/readme_drivers.sh: the driver examples of the README section
# "Using crm from an application" run as written -- only the connection
# parameters are replaced by the test cluster's -- and do what they say:
#   1. the psycopg 3 example converts its lead, prints the new account, then
#      catches the second conversion as ZC002 with a detail naming the
#      account, and its conversion stays committed;
#   2. the node-postgres example (pg pinned in api/package.json,
#      installed with npm ci into api/node_modules) does the same.
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
echo "readme drivers: ok"
