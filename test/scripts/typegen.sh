#!/usr/bin/env bash
# test/scripts/typegen.sh: typed query builders over crm.  kysely-codegen
# and drizzle-kit (pinned in test/typegen/package-lock.json, npm ci into
# test/typegen) generate the types of schema crm as a sales rep sees it
# (drizzle-kit pull with test/typegen/drizzle.config.ts, its output then
# rewritten by scripts/drizzle_schema.mjs, as README "Using crm from an
# application" says), and TypeScript (strict) must accept them and
# test/typegen/inserts.ts (kysely) and inserts_drizzle.ts (drizzle):
# inserts that leave out every column the database fills in (a lead's
# owner, a line's unit_price, a quote's number, ids, timestamps), reads of
# crm.pipeline_totals.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/common.sh

command -v node >/dev/null && command -v npm >/dev/null || install_missing nodejs npm
(cd test/typegen && npm ci --no-audit --no-fund --silent) || fail "npm ci in test/typegen failed"

test_cluster crm-typegen
db=crm_typegen
psql_as postgres postgres -c "CREATE DATABASE $db"
psql_as postgres "$db" -c "CREATE EXTENSION crm CASCADE" -c "CREATE ROLE typegen_rep LOGIN IN ROLE crm_sales"

out=test/typegen/db.d.ts
trap 'rm -rf "$REPO_ROOT/$out" "$REPO_ROOT/test/typegen/drizzle"; stop_cluster "$WORK/cluster" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
url="postgres://typegen_rep@$(node -p 'encodeURIComponent(process.argv[1])' "$PGHOST"):$PGPORT/$db"
test/typegen/node_modules/.bin/kysely-codegen --dialect postgres --url "$url" --include-pattern 'crm.*' \
    --out-file "$out" >"$WORK/codegen.log" 2>&1 || { cat "$WORK/codegen.log" >&2; fail "kysely-codegen failed"; }
grep -q '"crm.lead": CrmLead;' "$out" || fail "the generated types have no crm.lead"
(cd test/typegen && CRM_DRIZZLE_URL=$url node_modules/.bin/drizzle-kit pull --config drizzle.config.ts) \
    >"$WORK/drizzle.log" 2>&1 || { cat "$WORK/drizzle.log" >&2; fail "drizzle-kit pull failed"; }
grep -q 'export const leadInCrm = crm.table("lead"' test/typegen/drizzle/schema.ts || fail "the pulled schema has no crm.lead"
node scripts/drizzle_schema.mjs test/typegen/drizzle || fail "scripts/drizzle_schema.mjs failed"
test/typegen/node_modules/.bin/tsc -p test/typegen || fail "the generated types or the typed inserts do not compile"
echo "typegen: ok"
