# scripts/tier_lib.sh: shared by the CI tiers (tier_assert.sh,
# tier_valgrind.sh, tier_scan_build.sh).  Sources common.sh.
#
# A tier builds the extension its own way, runs some of the suite, counts
# what passed and what failed, and ends with one line "N passed, N failed";
# its exit status is 0 only when nothing failed.

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

tier_passed=0
tier_failed=0

# tier_pass NAME / tier_fail NAME: count one check, and say so
tier_pass() { echo "$1 ... ok"; tier_passed=$((tier_passed + 1)); }
tier_fail() { echo "$1 ... FAILED"; tier_failed=$((tier_failed + 1)); }

# tier_end: the closing line and the exit status
tier_end() {
    echo "$tier_passed passed, $tier_failed failed"
    [ "$tier_failed" -eq 0 ]
}

# tier_make ARGS...: make in $TIER_SRC (the checkout unless set) against
# the PostgreSQL of PG_BIN
tier_make() {
    make -C "${TIER_SRC:-$REPO_ROOT}" -s with_llvm=no PG_CONFIG="$PG_BIN/pg_config" "$@"
}

# tier_build CFLAGS: a clean build with -Wall -Wextra and CFLAGS, installed
tier_build() {
    log "building the extension (-Wall -Wextra $1)"
    tier_make clean >/dev/null
    tier_make CRM_EXTRA_CFLAGS="$1" || return 1
    as_root make -C "${TIER_SRC:-$REPO_ROOT}" -s with_llvm=no PG_CONFIG="$PG_BIN/pg_config" install >/dev/null
}

# tier_workdir PREFIX: $WORK, a scratch directory with a copy of the checkout
# in $WORK/tree owned by the cluster user (pg_regress writes there); removed
# on exit unless CRM_KEEP_TEST_DIR is set.  Stops $WORK/cluster on exit.
tier_workdir() {
    WORK=$(mktemp -d "/tmp/$1.XXXXXX")
    chmod 755 "$WORK"
    mkdir -p "$WORK/tree"
    tar -C "$REPO_ROOT" --exclude=.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' -cf - . \
        | tar -C "$WORK/tree" -xf -
    [ "$(id -u)" -ne 0 ] || chown -R "$(cluster_user)": "$WORK" "$WORK/tree"
    trap 'stop_cluster "$WORK/cluster" >/dev/null 2>&1 || true
          if [ -n "${CRM_KEEP_TEST_DIR:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi' EXIT
}

# tier_suite KIND TESTS...: run pg_regress (KIND=regress) or
# pg_isolation_regress (KIND=isolation) from $WORK/tree against the running
# cluster, and count each test (tier_run, then tier_count)
tier_suite() {
    tier_run "$@"
    tier_count "$1"
}

# tier_run KIND[-NAME] TESTS...: run the tests, in their own database and
# output directory when NAME is given (so that runs can go side by side);
# the runner's output goes to $WORK/KIND[-NAME].log
tier_run() {
    local run=$1 kind=${1%%-*}; shift
    local suffix=${run#"$kind"} runner dir db
    case $kind in
        regress)   runner=src/test/regress/pg_regress; dir=output_regress$suffix; db=contrib_regression
                   set -- --inputdir=test "$@" ;;
        isolation) runner=src/test/isolation/pg_isolation_regress; dir=output_iso$suffix; db=isolation_regression
                   set -- --inputdir=test/isolation "$@" ;;
    esac
    log "$run: $(($# - 1)) tests"
    echo "$(($# - 1)) $dir" >"$WORK/$run.tests"
    (cd "$WORK/tree" && as_cluster_user "$PGXS_DIR/$runner" --outputdir="$dir" --bindir="$PG_BIN" \
        --host="$PGHOST" --port="$PGPORT" --user=postgres --dbname="$db${suffix//-/_}" "${REGRESS_EXTENSIONS[@]}" "$@") >"$WORK/$run.log" 2>&1
    echo $? >"$WORK/$run.status"
}

# tier_count KIND[-NAME]: count the results of a tier_run; a runner that
# stopped early counts the tests it did not report as failed.  Prints the
# diffs of failed tests.
tier_count() {
    local run=$1 log="$WORK/$1.log" ntests dir status p f
    read -r ntests dir <"$WORK/$run.tests"
    status=$(cat "$WORK/$run.status")
    grep -E '\.\.\. (ok|FAILED)' "$log" || true
    p=$(grep -cE '^(test |     )?[[:space:]]*[a-z0-9_]+[[:space:]]+\.\.\. ok' "$log")
    f=$(grep -cE '^(test |     )?[[:space:]]*[a-z0-9_]+[[:space:]]+\.\.\. FAILED' "$log")
    [ $((p + f)) -ge "$ntests" ] || f=$((ntests - p))
    [ "$status" -eq 0 ] || [ "$f" -gt 0 ] || f=1
    tier_passed=$((tier_passed + p))
    tier_failed=$((tier_failed + f))
    if [ "$f" -gt 0 ]; then
        if [ -s "$WORK/tree/$dir/regression.diffs" ]; then
            head -n 200 "$WORK/tree/$dir/regression.diffs"
        else
            tail -n 20 "$log"
        fi
    fi
}
