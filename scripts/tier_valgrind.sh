#!/usr/bin/env bash
# scripts/tier_valgrind.sh: the CI tier that runs the server under valgrind.
#
# Runs pg_regress tests against a PostgreSQL 15 server started under
# valgrind memcheck (--trace-children=yes, PostgreSQL's own suppression file
# src/tools/valgrind.supp), one XML log per process, and fails on any error
# whose stack has a frame in crm.so.  Errors with no frame in crm.so are the
# server's own: Debian's server is built without USE_VALGRIND, so memcheck
# does not know about memory contexts and reports some false positives there;
# they are not this project's to fix, and they are counted but not failed.
#
# The suppression file is not in Debian's binary packages, only in the
# source package: the tier downloads postgresql-15's source package with
# apt-get source (the installed version, else the newest the archive has),
# through a private apt configuration whose deb-src entries are made from
# the machine's own apt sources, so nothing in /etc/apt changes.  It keeps
# the file in $CRM_CACHE_DIR (/var/cache/crm-ci) for the next run.
#
# The subset.  The whole pg_regress suite under valgrind takes far longer
# than the CI budget (a backend runs some 50 times slower; each test file's
# CREATE EXTENSION alone takes a minute or more), so the tier runs the
# smallest set of test files that together call every C function of the
# extension (the 40 LANGUAGE C functions of sql/install/*.sql, triggers
# included; found by running each test file alone with gcov):
#   catalog                crm_internal.price_book_guard (only test that reaches it),
#                          the price book entry and line item functions
#   activities             crm.participant_response, the activity triggers
#   opportunity_lifecycle  crm_internal.opportunity_stage_guard (only test that does)
#   reminders              crm.take_reminder (only test that does),
#                          crm.claim_due_reminders, the activity triggers
#   bad_input              quotes (create, submit, approve, reject, sync),
#                          orders (create, activate, cancel), conversion,
#                          aggregates, normalization: most of the rest
#   currencies             the currency triggers of src/currencies.c (rates,
#                          settings, price book currency: only test that does)
#   quotas                 crm_internal.quota_guard (only test that does)
#   row_security           crm_internal.audit_append_only (only test that does), the
#                          sharing and reporting-line functions
# The first runs alone; row_security, the longest, runs beside the others,
# in another database, so that both cores work.  The tier proves the
# subset's claim on every run: it builds the extension with gcov
# instrumentation, and fails if any C function named in a LANGUAGE C
# definition was not entered.  A new C function that the subset does not
# reach fails the tier until a test that calls it joins the list.
# CRM_VALGRIND_TESTS replaces the list (the last one runs beside the rest).
# The isolation specs are left out: they wait on each other with timeouts,
# which valgrind's slowness makes meaningless.
#
# Ends with one line "N passed, N failed"; exit status 0 only when nothing
# failed.  CRM_PG_ROOT as for scripts/test.sh.  CRM_VALGRIND=0 runs the same
# steps without valgrind (to check the subset's coverage quickly).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/tier_lib.sh"

TESTS=${CRM_VALGRIND_TESTS:-catalog activities opportunity_lifecycle reminders bad_input currencies quotas row_security}
CACHE=${CRM_CACHE_DIR:-/var/cache/crm-ci}

ensure_packages
install_missing valgrind python3 bzip2 dpkg-dev

# valgrind_supp: print the path of PostgreSQL's valgrind.supp, fetching the
# source package of postgresql-$PG_MAJOR when it is not in $CACHE yet
valgrind_supp() {
    local supp=$CACHE/postgresql-$PG_MAJOR-valgrind.supp
    if [ ! -s "$supp" ]; then
        local apt=$CACHE/apt f version
        rm -rf "$apt"
        mkdir -p "$apt/sources.list.d" "$apt/lists/partial" "$apt/cache" "$apt/src"
        # deb-src twins of the machine's deb entries (one-line and deb822 styles)
        sed -n 's/^deb \(.*\)/deb-src \1/p' /etc/apt/sources.list >"$apt/sources.list" 2>/dev/null
        for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
            [ -f "$f" ] || continue
            case $f in
                *.list) sed -n 's/^deb \(.*\)/deb-src \1/p' "$f" >"$apt/sources.list.d/$(basename "$f")" ;;
                *.sources) sed 's/^Types:.*/Types: deb-src/' "$f" >"$apt/sources.list.d/$(basename "$f")" ;;
            esac
        done
        local opts=(-o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts="$apt/sources.list.d"
                    -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache" -o APT::Sandbox::User=root)
        # a repository without sources makes update complain; what matters
        # is whether the source package can be found afterwards
        apt-get "${opts[@]}" -qq update >&2 || true
        # the installed version first, then every other one the archive lists
        # (a mirror may lack a version's source files): the file changes
        # little between minor releases
        for version in $(dpkg-query -W -f='${Version}' "postgresql-$PG_MAJOR" 2>/dev/null) \
                       $(apt-cache "${opts[@]}" showsrc "postgresql-$PG_MAJOR" 2>/dev/null | sed -n 's/^Version: //p'); do
            (cd "$apt/src" && apt-get "${opts[@]}" -qq source --download-only "postgresql-$PG_MAJOR=$version") \
                >/dev/null 2>&1 && break
        done
        f=$(ls "$apt"/src/postgresql-"$PG_MAJOR"_*.orig.tar.* 2>/dev/null | head -n 1)
        [ -n "$f" ] || { log "no source package of postgresql-$PG_MAJOR could be fetched"; return 1; }
        tar -xaf "$f" -C "$apt/src" --wildcards '*/src/tools/valgrind.supp' || return 1
        cp "$apt"/src/postgresql-*/src/tools/valgrind.supp "$supp"
        log "valgrind.supp taken from $(basename "$f")"
        rm -rf "$apt"
    fi
    echo "$supp"
}

tier_workdir crm-valgrind
SUPP=$(valgrind_supp) && tier_pass "valgrind: PostgreSQL's valgrind.supp" \
    || { tier_fail "valgrind: PostgreSQL's valgrind.supp"; tier_end; exit; }

# Built in the scratch copy, with gcov counters the backends (the cluster
# user) write next to the objects when they exit.
TIER_SRC=$WORK/tree
tier_build "-Werror --coverage" && tier_pass "valgrind: build with --coverage" \
    || { tier_fail "valgrind: build with --coverage"; tier_end; exit; }
[ "$(id -u)" -ne 0 ] || chown -R "$(cluster_user)": "$WORK/tree"

# The cluster is made as usual, then restarted with postgres under valgrind.
start_cluster "$WORK/cluster" >/dev/null && stop_cluster "$WORK/cluster" \
    || { tier_fail "valgrind: cluster"; tier_end; exit; }
mkdir -p "$WORK/valgrind"
# Beside PostgreSQL's file, one suppression for a server built without
# USE_VALGRIND: an invalidation message is a union, and the server sends an
# smgr one with the bytes past its members unset; a USE_VALGRIND server marks
# them defined (VALGRIND_MAKE_MEM_DEFINED in CacheInvalidateSmgr), Debian's
# does not, so any backend that takes a relation lock (the extension's SPI
# queries and DDL among them) may be told of uninitialised bytes when it
# reads the message back and looks the relation up.  And one for the
# server's regular-expression cache (regexp.c, RE_compile_and_cache): it
# moves a cached entry to the front with memmove, which the fortified
# server build calls through glibc's __memmove_chk, and valgrind reports
# that as "overlap in memcpy_chk" -- a move that is correct by definition.
# Any query that uses a few regular expressions in turn (the erasure's
# needles) meets it.  And two for the padding bytes a server writes to disk
# (the relation cache's init file, a WAL record), which PostgreSQL's own
# file suppresses under the names of static functions that Debian's
# stripped build shows as "?": met by the refusal worker of
# crm.capture_lead (capture_log.c), a process whose every frame starts in
# crm.so.
cat >"$WORK/server.supp" <<'SUPP'
{
   non-USE_VALGRIND server: relation cache init file written with padding
   Memcheck:Param
   write(buf)
   ...
   fun:RelationCacheInitializePhase3
}
{
   non-USE_VALGRIND server: WAL written with record padding
   Memcheck:Param
   pwrite64(buf)
   ...
   fun:XLogFlush
}
{
   fortified memmove of the regex cache reported as memcpy_chk overlap
   Memcheck:Overlap
   fun:__memcpy_chk
   fun:RE_compile_and_cache
}
{
   non-USE_VALGRIND server: smgr invalidation message bytes (cond)
   Memcheck:Cond
   ...
   fun:smgrclosenode
   fun:ReceiveSharedInvalidMessages
}
{
   non-USE_VALGRIND server: smgr invalidation message bytes (value)
   Memcheck:Value8
   ...
   fun:smgrclosenode
   fun:ReceiveSharedInvalidMessages
}
SUPP
cat >"$WORK/postgres" <<EOF
#!/bin/sh
exec valgrind --tool=memcheck --trace-children=yes --suppressions=$SUPP --suppressions=$WORK/server.supp \\
    --num-callers=40 --error-limit=no --leak-check=no --gen-suppressions=all \\
    --xml=yes --xml-file=$WORK/valgrind/%p.xml --log-file=$WORK/valgrind/%p.log \\
    "$PG_BIN/postgres" "\$@"
EOF
[ "${CRM_VALGRIND:-1}" != 0 ] || printf '#!/bin/sh\nexec "%s" "$@"\n' "$PG_BIN/postgres" >"$WORK/postgres"
chmod 755 "$WORK/postgres"
[ "$(id -u)" -ne 0 ] || chown -R "$(cluster_user)": "$WORK/valgrind"
# JIT off: LLVM's own allocations and the loader's reads when it loads
# llvmjit.so are reported under whatever query was compiled (an erasure's,
# say), and a JIT-compiled expression hides the extension's code from
# memcheck anyway.
as_cluster_user pg_ctl -D "$WORK/cluster/data" -p "$WORK/postgres" -l "$WORK/cluster/server.log" \
    -o "-c jit=off" -w -t 600 start >/dev/null || { tail -n 20 "$WORK/cluster/server.log"; tier_fail "valgrind: server start"; tier_end; exit; }

# The first test alone (its CREATE EXTENSION makes the extension's roles),
# the others in two runs side by side, each in its own database, to use
# both cores: the last test of the list (the longest) in one, the rest in
# the other.
set -- $TESTS
tier_suite regress-first "$1"
shift
if [ $# -gt 1 ]; then
    tier_run regress-a "${@:1:$#-1}" &
    tier_run regress-b "${@: -1}"
    wait
    tier_count regress-a
    tier_count regress-b
elif [ $# -eq 1 ]; then
    tier_suite regress-a "$1"
fi
as_cluster_user pg_ctl -D "$WORK/cluster/data" -m fast -w -t 600 stop >/dev/null

# Memcheck errors: those with a frame in crm.so fail the tier.
python3 - "$WORK/valgrind" <<'EOF'
import glob, re, sys
ours = others = 0
for path in sorted(glob.glob(sys.argv[1] + "/*.xml")):
    text = open(path, errors="replace").read()
    for err in re.findall(r"<error>(.*?)</error>", text, re.S):
        if "/crm.so</obj>" not in err:
            others += 1
            continue
        ours += 1
        kind = re.search(r"<kind>(.*?)</kind>", err)
        what = re.search(r"<what>(.*?)</what>", err) or re.search(r"<text>(.*?)</text>", err)
        print("==== %s: %s" % (kind.group(1) if kind else "?", what.group(1) if what else "?"))
        print("     (pid file %s)" % path)
        for frame in re.findall(r"<frame>(.*?)</frame>", err, re.S):
            fn = re.search(r"<fn>(.*?)</fn>", frame)
            file = re.search(r"<file>(.*?)</file>", frame)
            line = re.search(r"<line>(.*?)</line>", frame)
            print("     %s %s" % (fn.group(1) if fn else "?",
                                 "(%s:%s)" % (file.group(1), line.group(1)) if file and line else ""))
print("memcheck: %d error(s) through crm.so, %d elsewhere in the server" % (ours, others))
sys.exit(1 if ours else 0)
EOF
if [ $? -eq 0 ]; then
    tier_pass "valgrind: no memcheck error through crm.so"
else
    tier_fail "valgrind: no memcheck error through crm.so"
fi
[ "${CRM_VALGRIND:-1}" = 0 ] || [ -n "$(ls "$WORK"/valgrind/*.xml 2>/dev/null)" ] \
    || tier_fail "valgrind: the server ran under valgrind"

# Every C function of the extension was entered during the run.
symbols=$(grep -ohE "'MODULE_PATHNAME', *'[A-Za-z_0-9]+'" "$REPO_ROOT"/sql/install/*.sql \
    | sed -E "s/.*, *'(.*)'/\1/" | sort -u)
entered=$(cd "$WORK/tree" && gcov -n -f -o src src/*.c 2>/dev/null \
    | awk '/^Function /{gsub(/'"'"'/, "", $2); fn = $2} /^Lines executed:/{ if ($2 !~ /:0\.00%/) print fn }' | sort -u)
unreached=$(comm -23 <(echo "$symbols") <(echo "$entered"))
if [ -z "$unreached" ]; then
    tier_pass "valgrind: the tests entered all $(echo "$symbols" | wc -l) C functions"
else
    echo "C functions the tests did not enter:" $unreached
    tier_fail "valgrind: the tests entered all $(echo "$symbols" | wc -l) C functions"
fi
tier_end
