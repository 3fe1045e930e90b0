#!/usr/bin/env bash
# scripts/test.sh: the whole test suite of the crm extension.
#
# Installs missing Debian packages, builds with -Wall -Wextra -Werror,
# installs, starts a throwaway cluster and runs, in order:
#   1. pg_regress      test/sql/*.sql against test/expected/*.out, one per capability
#   2. isolation       test/isolation/specs/*.spec (concurrent sessions)
#   3. TAP             test/t/*.pl, if any (prove, PostgreSQL::Test::Cluster)
#   4. scripted        test/scripts/*.sh (end-to-end: the README's main job)
# and ends with one line "N passed, N failed".  Exit status 0 only when
# nothing failed.  Works as root (clusters run as "postgres") or as a user
# with sudo.
#
# By default the suite runs on this machine's own PostgreSQL (scripts/common.sh:
# CRM_PG_MAJOR, else the Debian release's default major).  Other majors:
#   bash scripts/test.sh --all-versions          # 15, 17 and 18
#   PG_VERSIONS="15 17" bash scripts/test.sh     # a choice of them
# runs the whole suite once per major, each from its own Debian release's
# packages (a debootstrap chroot for a release other than the machine's; see
# scripts/versions.sh), then the cross-version tests of test/versions/
# (dump on 15 and restore on 17 and 18; pg_upgrade 15 -> 17), and ends with
# one line per major and the total "N passed, N failed".
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# CRM_CROSS_TESTS: test/versions/ scripts to run after the suite, as
# scripted tests (set by the multi-version run for each major)
CRM_CROSS_TESTS=${CRM_CROSS_TESTS:-}
for arg in "$@"; do
    case $arg in
        --all-versions) PG_VERSIONS="15 17 18" ;;
        *) echo "usage: scripts/test.sh [--all-versions]   (or PG_VERSIONS=\"15 17 18\")" >&2; exit 2 ;;
    esac
done
if [ -n "${PG_VERSIONS:-}" ]; then
    source "$(dirname "${BASH_SOURCE[0]}")/versions.sh"
    run_all_versions $PG_VERSIONS
    exit $?
fi

ensure_packages
build_and_install || { echo "0 passed, 1 failed"; exit 1; }

WORK=$(mktemp -d /tmp/crm-test.XXXXXX)
chmod 755 "$WORK"
cleanup() {
    stop_cluster "$WORK/cluster"
    [ -n "${CRM_KEEP_TEST_DIR:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

# The suite runs in a copy owned by the cluster user (pg_regress writes there).
mkdir -p "$WORK/tree"
tar -C "$REPO_ROOT" --exclude=.git --exclude='*.o' --exclude='*.so' -cf - . | tar -C "$WORK/tree" -xf -
[ "$(id -u)" -ne 0 ] || chown -R postgres: "$WORK/tree"

start_cluster "$WORK/cluster" || { echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
failures=()

# count_results LOG STATUS EXPECTED: count pg_regress / pg_isolation_regress
# result lines (15: "test name ... ok"; 16 and later: TAP, "ok 1 - name");
# a runner that failed, or ran fewer tests than it was given, counts the
# missing ones as failed
count_results() {
    local log=$1 status=$2 expected=$3 p f
    p=$(grep -cE '^((test |     )?[[:space:]]*[a-z0-9_]+[[:space:]]+\.\.\. ok|ok [0-9]+[[:space:]]+[-+][[:space:]]+[a-z0-9_]+)' "$log")
    f=$(grep -cE '^((test |     )?[[:space:]]*[a-z0-9_]+[[:space:]]+\.\.\. FAILED|not ok [0-9]+[[:space:]]+[-+][[:space:]]+[a-z0-9_]+)' "$log")
    if [ $((p + f)) -lt "$expected" ]; then f=$((expected - p)); fi
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" -gt 0 ]; then failures+=("$log"); fi
}

cd "$WORK/tree"
regress_tests=$(make -s print-regress)
isolation_tests=$(make -s print-isolation)

log "pg_regress: $(echo $regress_tests | wc -w) tests"
as_cluster_user "$PGXS_DIR/src/test/regress/pg_regress" \
    --inputdir=test --outputdir=. --bindir="$PG_BIN" \
    --host="$PGHOST" --port="$PGPORT" --user=postgres \
    --dbname=contrib_regression "${REGRESS_EXTENSIONS[@]}" $regress_tests 2>&1 | tee "$WORK/regress.log"
count_results "$WORK/regress.log" "${PIPESTATUS[0]}" "$(echo $regress_tests | wc -w)"
[ ! -s regression.diffs ] || cp regression.diffs "$WORK/regression.diffs"

log "isolation: $(echo $isolation_tests | wc -w) specs"
as_cluster_user "$PGXS_DIR/src/test/isolation/pg_isolation_regress" \
    --inputdir=test/isolation --outputdir=output_iso --bindir="$PG_BIN" \
    --host="$PGHOST" --port="$PGPORT" --user=postgres \
    --dbname=isolation_regression "${REGRESS_EXTENSIONS[@]}" $isolation_tests 2>&1 | tee "$WORK/isolation.log"
count_results "$WORK/isolation.log" "${PIPESTATUS[0]}" "$(echo $isolation_tests | wc -w)"
[ ! -s output_iso/regression.diffs ] || cp output_iso/regression.diffs "$WORK/isolation.diffs"

# TAP tests create their own clusters with PostgreSQL::Test::Cluster.
if compgen -G "test/t/*.pl" >/dev/null; then
    log "TAP: $(ls test/t/*.pl | wc -l) files"
    as_cluster_user env PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress" \
        PERL5LIB="$PGXS_DIR/src/test/perl" TESTDIR="$WORK/tree" \
        prove -v test/t/*.pl >"$WORK/tap.log" 2>&1
    cat "$WORK/tap.log" | grep -E '^(ok|not ok|t/|Result|Files=)' || true
    p=$(grep -cE '^ok [0-9]+' "$WORK/tap.log")
    f=$(grep -cE '^not ok [0-9]+' "$WORK/tap.log")
    if ! grep -q '^Result: PASS' "$WORK/tap.log" && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f))
    [ "$f" -eq 0 ] || failures+=("$WORK/tap.log")
fi

# Scripted end-to-end tests run from the original checkout, as the invoking user.
cd "$REPO_ROOT"
for t in test/scripts/*.sh $(for c in $CRM_CROSS_TESTS; do echo "test/versions/$c.sh"; done); do
    [ -e "$t" ] || { case $t in test/versions/*) echo "script $(basename "$t" .sh) ... FAILED (missing)"; failed=$((failed + 1)) ;; esac; continue; }
    log "scripted: $t"
    if bash "$t" >"$WORK/$(basename "$t").log" 2>&1; then
        echo "script $(basename "$t" .sh) ... ok"
        passed=$((passed + 1))
    else
        echo "script $(basename "$t" .sh) ... FAILED"
        failed=$((failed + 1))
        failures+=("$WORK/$(basename "$t").log")
    fi
done

if [ "$failed" -gt 0 ]; then
    for f in "$WORK/regression.diffs" "$WORK/isolation.diffs"; do
        [ -s "$f" ] && { echo "===== $f"; cat "$f"; }
    done
    for f in "${failures[@]}"; do
        case "$f" in *.log) echo "===== $f"; tail -n 80 "$f" ;; esac
    done
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
