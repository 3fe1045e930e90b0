#!/usr/bin/env bash
# scripts/ci_tiers.sh: the CI tiers beyond the suite, one after the other:
#   tier_assert.sh      the suite with the extension's Asserts compiled in
#   tier_valgrind.sh    a subset of pg_regress with the server under valgrind
#   tier_scan_build.sh  the clang static analyzer over src/
# Each prints its own "N passed, N failed" line and how long it took; this
# script ends with the sum, "tiers: N passed, N failed", and exits non-zero
# when any tier failed.  Leaves the extension built as scripts/test.sh
# builds it (the tiers install their own builds).
set -uo pipefail
cd "$(dirname "$0")/.."
passed=0
failed=0
status=0
logs=$(mktemp -d /tmp/crm-tiers.XXXXXX)
trap 'rm -rf "$logs"' EXIT
for tier in assert valgrind scan_build; do
    start=$(date +%s)
    bash "scripts/tier_$tier.sh" 2>&1 | tee "$logs/$tier.log"
    tier_status=${PIPESTATUS[0]}
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$logs/$tier.log" | tail -n 1)
    p=${line%% *}; f=$(echo "$line" | awk '{print $3}')
    [ -n "$line" ] || { p=0; f=0; }
    if [ "$tier_status" -ne 0 ]; then
        status=1
        [ "$f" -gt 0 ] || f=1
    fi
    passed=$((passed + p)); failed=$((failed + f))
    echo "==> tier $tier: $(( $(date +%s) - start )) s"
done
# reinstall the ordinary build, as the suite left it
source scripts/common.sh
build_and_install >/dev/null || status=1
echo "tiers: $passed passed, $failed failed"
[ "$status" -eq 0 ]
