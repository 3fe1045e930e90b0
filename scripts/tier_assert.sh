#!/usr/bin/env bash
# scripts/tier_assert.sh: the CI tier with the extension's own Asserts on.
#
# Builds the extension with -Werror -DUSE_ASSERT_CHECKING against the Debian
# (non-assert) server, installs it, and runs the pg_regress and isolation
# suites in a throwaway cluster, so that every Assert in src/ (for example
# the byte-for-byte check of the cents output in cents.c) is evaluated by the
# tests; a failed Assert aborts the backend and fails the test.
#
# An extension built with USE_ASSERT_CHECKING against a server built without
# it: what differs, and how the tier makes sure it does not matter.
#  - Assert() calls ExceptionalCondition(), which every server exports, so
#    the Asserts work.  The tier checks that crm.so calls it (else the
#    flag did not reach the compiler and the tier would prove nothing).
#  - Some server headers declare functions only under USE_ASSERT_CHECKING
#    (AssertCouldGetRelation, AssertTransactionIdInAllowableRange,
#    AssertBufferLocksPermitCatalogRead, GetLockMethodLocalHash,
#    pgstat_assert_is_up, and MemoryContextCheck through
#    MEMORY_CONTEXT_CHECKING); a non-assert server does not have them.  A
#    call to one would make crm.so fail to load (PostgreSQL dlopens with
#    RTLD_NOW).  The tier checks before running anything that every
#    unversioned symbol crm.so needs is exported by this server's postgres
#    binary (versioned ones, name@GLIBC_x, come from the C library), and
#    names any that is not.  Today none is.
#  - USE_ASSERT_CHECKING also turns on MEMORY_CONTEXT_CHECKING (an extra
#    member at the end of MemoryContextMethods), CLOBBER_FREED_MEMORY and
#    DISCARD_CACHES_ENABLED in pg_config_manual.h.  They change no layout
#    the extension shares with the server: the extension defines no memory
#    context type and reads none of those structs' members.
#  - castNode() becomes an inline function that checks the node tag.
#
# Ends with one line "N passed, N failed"; exit status 0 only when nothing
# failed.  CRM_PG_ROOT as for scripts/test.sh.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/tier_lib.sh"

ensure_packages
install_missing binutils
if tier_build "-Werror -DUSE_ASSERT_CHECKING"; then
    tier_pass "assert: build with -Werror -DUSE_ASSERT_CHECKING"
else
    tier_fail "assert: build with -Werror -DUSE_ASSERT_CHECKING"
    tier_end; exit
fi

# The Asserts are compiled in: crm.so calls ExceptionalCondition.
if nm -D --undefined-only "$REPO_ROOT/crm.so" | grep -w ExceptionalCondition >/dev/null; then
    tier_pass "assert: crm.so calls ExceptionalCondition"
else
    tier_fail "assert: crm.so calls ExceptionalCondition"
fi

# Every server symbol crm.so needs is in this (non-assert) server.
missing=$(comm -23 \
    <(nm -D --undefined-only "$REPO_ROOT/crm.so" | awk '$1 == "U" && $2 !~ /@/ {print $2}' | sort -u) \
    <(nm -D --defined-only "$PG_BIN/postgres" | awk '{print $3}' | sed 's/@.*//' | sort -u))
if [ -z "$missing" ]; then
    tier_pass "assert: every symbol crm.so needs is in the server"
else
    echo "symbols crm.so needs that $PG_BIN/postgres does not export:" $missing
    tier_fail "assert: every symbol crm.so needs is in the server"
fi

tier_workdir crm-assert
start_cluster "$WORK/cluster" >/dev/null || { tier_fail "assert: cluster start"; tier_end; exit; }
tier_suite regress $(tier_make print-regress)
tier_suite isolation $(tier_make print-isolation)
# a failed Assert logs "TRAP: FailedAssertion(...)" and aborts the backend
if grep -q '^TRAP: ' "$WORK/cluster/server.log"; then
    grep -A4 '^TRAP: ' "$WORK/cluster/server.log" | head -n 20
    tier_fail "assert: no failed Assert in the server log"
else
    tier_pass "assert: no failed Assert in the server log"
fi
stop_cluster "$WORK/cluster"
tier_end
