#!/usr/bin/env bash
# scripts/tier_scan_build.sh: the CI tier with the clang static analyzer.
#
# Runs scan-build (Debian's clang-tools) over a clean build of src/ and
# fails on any report not explained below.  The compile itself is still
# gcc's with -Werror; the analyzer (clang) parses the same sources
# alongside.  Real defects are fixed in src/; a report on a path that cannot
# happen is listed in EXPLAINED with the reason, which keeps src/ free of
# analyzer-only code.
#
# Ends with one line "N passed, N failed"; exit status 0 only when nothing
# failed.  CRM_PG_ROOT as for scripts/test.sh.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/tier_lib.sh"

ensure_packages
install_missing clang-tools python3
SCAN_BUILD=$(command -v scan-build || ls /usr/bin/scan-build-* 2>/dev/null | sort -V | tail -n 1)
[ -n "$SCAN_BUILD" ] || { tier_fail "scan-build: installed"; tier_end; exit; }

# Reports the analyzer makes on paths that cannot happen, each explained.
# One a line: file|function|the analyzer's description|why it cannot happen.
# A report matches by file, function and description (not by line, so that
# edits elsewhere in the file do not unmatch it).  One no longer made is
# named in the output but does not fail the tier: the analyzer's path
# search has budgets, and an edit elsewhere in a file can end a report.
EXPLAINED='
src/aggregates.c|agg_fold_new|Dereference of null pointer|the analyzer takes &fold->groups[e->pos] from the hash-table path of agg_fold_find to be NULL, with fold->groups NULL; agg_fold_init pallocs groups (palloc never returns NULL) before any row is folded
src/aggregates.c|agg_fold_table|Assigned value is garbage or undefined|folds[0].row with nfolds 0: crm_aggregates_maintain folds the specs of opportunity_specs or lead_specs, static lists of at least one spec each, so folds[0] is always initialized
src/aggregates.c|agg_add_query|Assigned value is garbage or undefined|types[i] for i < n: the loops above set types[0 .. n-1] (the key columns, stripe, count and sums, counted by n); the analyzer does not tie n to t->nkeys + 2 + t->nsums
src/aggregate_stripes.c|agg_target_lookup|8th function call argument is an uninitialized value|t->keyval[i] for each column of the primary key: agg_target_add sets it for the stripe column and each group column, and agg_target_open uses a primary key only when its columns are exactly those (else the SQL path writes); the analyzer does not carry that check over to the lookup
src/aggregate_stripes.c|agg_target_other_row|8th function call argument is an uninitialized value|the same t->keyval[i] as in agg_target_lookup
src/aggregates.c|agg_write_groups|Array access results in an undefined pointer dereference|cols[col] with col < ncols = nkeys + 1 + nsums, each one palloced above; the analyzer does not tie ncols to spec->nkeys and spec->nsums, which the calls in between could change as far as it knows
'

OUT=$(mktemp -d /tmp/crm-scan-build.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
tier_make clean >/dev/null
log "scan-build over src/ ($SCAN_BUILD)"
# PGXS sets CC itself: hand it scan-build's compiler wrapper ($CC there).
"$SCAN_BUILD" -plist -o "$OUT" sh -c \
    'make -C "$1" -s -j"$(nproc)" with_llvm=no PG_CONFIG="$2" CRM_EXTRA_CFLAGS=-Werror CC="$CC"' \
    sh "$REPO_ROOT" "$PG_BIN/pg_config" >"$OUT/scan.log" 2>&1
status=$?
grep -E '^scan-build:' "$OUT/scan.log"
if [ "$status" -eq 0 ]; then
    tier_pass "scan-build: the build"
else
    tail -n 30 "$OUT/scan.log"
    tier_fail "scan-build: the build"
fi

# Each report: explained (listed above) or not (fails the tier).
python3 - "$OUT" "$REPO_ROOT" "$EXPLAINED" >"$OUT/verdict" <<'PY'
import glob, os, plistlib, sys
out, root, explained = sys.argv[1], sys.argv[2], sys.argv[3]
listed = {}
for line in explained.strip().splitlines():
    f, fn, desc, why = line.split("|", 3)
    listed[(f, fn, desc)] = why
seen, new = set(), set()
for path in glob.glob(out + "/*/*.plist"):
    with open(path, "rb") as fh:
        p = plistlib.load(fh)
    for d in p.get("diagnostics", []):
        f = os.path.relpath(p["files"][d["location"]["file"]], root)
        key = (f, d.get("issue_context", "?"), d["description"])
        if key in listed:
            seen.add(key)
        else:
            new.add("%s:%d: %s [%s] in %s" % (f, d["location"]["line"], d["description"],
                                              d.get("check_name", "?"), key[1]))
for key in sorted(listed):
    print("%s %s %s: %s" % ("explained" if key in seen else "gone", key[0], key[1], key[2]))
for n in sorted(new):
    print("new " + n)
PY
verdict_status=$?
sed -n 's/^explained /explained report: /p; s/^gone /no longer reported (may come off EXPLAINED): /p; s/^new /report: /p' "$OUT/verdict"
if [ "$verdict_status" -ne 0 ] || grep -q '^new ' "$OUT/verdict"; then
    tier_fail "scan-build: no unexplained report over src/"
else
    tier_pass "scan-build: no unexplained report over src/"
fi
tier_make clean >/dev/null
tier_end
