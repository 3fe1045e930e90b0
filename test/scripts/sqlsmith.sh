#!/usr/bin/env bash
# test/scripts/sqlsmith.sh: random SQL against the crm schema, as a sales rep.
#
# SQLsmith (Debian package sqlsmith) generates random, type-correct queries
# from the catalog: SELECTs over crm's tables and views with joins,
# subqueries, window functions and calls of any function the rep may see
# (the crm functions included, with random arguments), and INSERT, UPDATE,
# DELETE, MERGE and upserts on crm's tables.  It runs them here against a
# database with the extension and the demo data (demo/sample_data.sql and
# demo/convert_ready_leads.sql), connected as the demo rep "alice" (a login in
# crm_sales), with a fixed seed (SQLSMITH_SEED, default 1) and a bounded
# number of queries (SQLSMITH_QUERIES, default 1000) so that a failure can
# be reproduced; statement_timeout = 1s for alice bounds the slow ones.  Most
# queries fail (no such operator, permission denied, row-level security, the
# extension's own checks): errors are expected, what matters is which.
#
# Afterwards it checks:
#   1. sqlsmith ran every query: its "queries: N" count equals the bound and
#      some queries succeeded (it did not give up on loading the schema or on
#      connecting).  It reconnects after a crash and goes on, so this check
#      does not catch crashes; 3 does.
#   2. The server is still up and accepts connections (pg_isready and a
#      query).
#   3. The server log written during the run has no crash: no "terminated by
#      signal", "server process ... was terminated", "terminating any other
#      active server processes", PANIC or assertion TRAP.  Any of these is a
#      bug, whatever query caused it.
#   4. No internal error (XX000, or any class XX) raised by crm code.  The
#      cluster logs with log_error_verbosity = verbose, so each error has a
#      LOCATION (function, file:line) and, when raised below a function call,
#      a CONTEXT.  An XX error counts as ours -- and fails the test -- when
#      its LOCATION is a function in one of our src/*.c files (file name and
#      function name both found there: PostgreSQL has a catalog.c too), or
#      when its CONTEXT names a crm function (core code failing inside a call
#      from our C or PL/pgSQL code is our bug too: we passed it something
#      wrong).  An XX error located in core code for a plain random query is
#      PostgreSQL's, not ours: it is printed with its statement, for a human
#      to look at, but does not fail the test (random SQL reaches core
#      internal errors that have nothing to do with the extension).
#   5. crm.verify_aggregates() returns nothing: the random INSERTs, UPDATEs
#      and DELETEs that got through kept the maintained aggregates exact.
# It prints the number of queries and a summary of the SQLSTATEs seen in the
# server log.  Takes 30-50 s (about 20 s of it sqlsmith on an idle machine).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"

SEED=${SQLSMITH_SEED:-1}
QUERIES=${SQLSMITH_QUERIES:-1000}

install_missing sqlsmith
command -v sqlsmith >/dev/null || fail "sqlsmith is not installed"
test_cluster crm-sqlsmith
LOG=$WORK/cluster/server.log

psql_as postgres postgres -c "CREATE DATABASE crm_smith"
psql_as postgres crm_smith -c "CREATE EXTENSION crm CASCADE"
psql_as postgres crm_smith -f "$REPO_ROOT/demo/sample_data.sql" >"$WORK/setup.log" 2>&1 \
    || { cat "$WORK/setup.log" >&2; fail "loading demo/sample_data.sql failed"; }
# (the demo script shows a refused second conversion on purpose: not an error here)
psql_as postgres crm_smith -f "$REPO_ROOT/demo/convert_ready_leads.sql" >>"$WORK/setup.log" 2>&1 \
    || { cat "$WORK/setup.log" >&2; fail "running demo/convert_ready_leads.sql failed"; }
rep_leads=$(psql_as alice crm_smith -c "SELECT count(*) FROM crm.lead")
[ "$rep_leads" -gt 0 ] || fail "alice sees no leads: the demo data are not there"
psql_as postgres crm_smith -c "ALTER ROLE alice IN DATABASE crm_smith SET statement_timeout = '1s'"
psql_as postgres postgres -c "ALTER SYSTEM SET log_error_verbosity = 'verbose'" \
    -c "ALTER SYSTEM SET log_min_error_statement = 'error'" \
    -c "ALTER SYSTEM SET log_line_prefix = '%m [%p] %u@%d '" -c "SELECT pg_reload_conf()" >/dev/null
sleep 1
log_start=$(stat -c %s "$LOG")

echo "sqlsmith: $QUERIES queries, seed $SEED, as alice (crm_sales)"
start=$(date +%s)
as_cluster_user sqlsmith --target="host=$PGHOST port=$PGPORT dbname=crm_smith user=alice" \
    --seed="$SEED" --max-queries="$QUERIES" --exclude-catalog --verbose \
    >"$WORK/sqlsmith.out" 2>"$WORK/sqlsmith.err" || true
echo "sqlsmith took $(( $(date +%s) - start )) s"
tail -c +$((log_start + 1)) "$LOG" >"$WORK/run.log"

# 1. every query ran
ran=$(sed -n 's/^queries: \([0-9]*\)$/\1/p' "$WORK/sqlsmith.err" | tail -n 1)
[ -n "$ran" ] || { tail -n 20 "$WORK/sqlsmith.err" >&2; fail "sqlsmith printed no query count"; }
progress=$(grep -E '^[.eSCt]+$' "$WORK/sqlsmith.err" | tr -d '\n' || true)
ok=$(printf '%s' "$progress" | tr -cd '.' | wc -c)
errors=$(printf '%s' "$progress" | tr -cd 'e' | wc -c)
echo "queries: $ran run, $ok succeeded, $errors failed"
[ "$ran" -eq "$QUERIES" ] || { tail -n 20 "$WORK/sqlsmith.err" >&2; fail "sqlsmith ran $ran of $QUERIES queries"; }
[ "$ok" -gt 0 ] || fail "not one query succeeded: sqlsmith did not really run against crm"

# 2. the server is up
as_cluster_user pg_isready -q -h "$PGHOST" -p "$PGPORT" || fail "the server is not accepting connections"
[ "$(psql_as postgres crm_smith -c "SELECT 1")" = "1" ] || fail "the server does not answer a query"

# 3. no crash
if grep -nE 'terminated by signal|server process .* was terminated|terminating any other active server processes|PANIC|TRAP:' "$WORK/run.log"; then
    fail "the server crashed during the sqlsmith run (see above; CRM_KEEP_TEST_DIR=1 keeps the log)"
fi

# 4. no internal error in crm code
ours_files=$(cd "$REPO_ROOT/src" && ls *.c)
bad=0
# one record per XX error: the error line, its LOCATION, CONTEXT and STATEMENT
# (plain POSIX awk: no {n} intervals, which mawk does not know)
awk '
    / (ERROR|FATAL):  XX[0-9A-Z][0-9A-Z][0-9A-Z]: / { if (rec != "") print rec; rec = $0; inrec = 1; next }
    inrec && / (LOCATION|CONTEXT|STATEMENT|DETAIL|HINT):  / { rec = rec "\x1f" $0; next }
    inrec && /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] / { print rec; rec = ""; inrec = 0; next }
    inrec { rec = rec " " $0 }
    END { if (rec != "") print rec }
' "$WORK/run.log" >"$WORK/internal.txt"
while IFS= read -r rec; do
    [ -n "$rec" ] || continue
    loc=$(printf '%s' "$rec" | tr '\037' '\n' | sed -n 's/.*LOCATION:  \([A-Za-z0-9_]*\), \([A-Za-z0-9_]*\.c\):[0-9]*.*/\1 \2/p' | head -n 1)
    fn=${loc% *}; file=${loc#* }
    verdict="core (not ours)"
    if [ -n "$loc" ] && printf '%s\n' $ours_files | grep -qx "$file" && grep -qw "$fn" "$REPO_ROOT/src/$file"; then
        verdict="OURS: raised in src/$file"
    elif printf '%s' "$rec" | tr '\037' '\n' | grep -E 'CONTEXT:' | grep -q 'crm\.'; then
        verdict="OURS: below a crm function"
    fi
    echo "internal error, $verdict:"
    printf '%s\n' "$rec" | tr '\037' '\n' | cut -c1-300 | sed 's/^/    /'
    case $verdict in OURS*) bad=$((bad + 1)) ;; esac
done <"$WORK/internal.txt"
[ "$bad" -eq 0 ] || fail "$bad internal errors (XX) raised by crm code"

# 5. the aggregates are still exact
diffs=$(psql_as postgres crm_smith -c "SELECT count(*) FROM crm.verify_aggregates()")
[ "$diffs" = "0" ] || { psql_as postgres crm_smith -c "SELECT * FROM crm.verify_aggregates()" >&2
                        fail "crm.verify_aggregates() returns $diffs rows after the run"; }

echo "SQLSTATEs in the server log during the run (count, code):"
grep -oE ' (ERROR|FATAL):  [0-9A-Z]{5}: ' "$WORK/run.log" | awk '{print $2}' | tr -d ':' | sort | uniq -c | sort -rn
echo "ok: $ran random queries as a rep, the server stayed up, no crash, no internal error in crm code, aggregates exact"
