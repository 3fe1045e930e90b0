# scripts/common.sh: shared by demo.sh, test.sh and bench/run.sh.
#
# Installs what the project needs from Debian's packages, builds and installs
# the extension, and runs throwaway PostgreSQL clusters on a Unix socket in a
# temporary directory.  PostgreSQL refuses to run as root, so when we are root
# the cluster runs as the "postgres" system user (created by the Debian
# packages); otherwise as the invoking user, with sudo for the install steps.

# PG_MAJOR: the PostgreSQL major to build and test against: CRM_PG_MAJOR if
# set, else the default major of this Debian release (postgresql-common's
# supported-versions: 15 on bookworm, 17 on trixie, 18 on sid), else 15.
# scripts/test.sh runs other majors in Debian chroots (scripts/versions.sh).
default_pg_major() {
    local v
    if [ -x /usr/share/postgresql-common/supported-versions ]; then
        v=$(/usr/share/postgresql-common/supported-versions 2>/dev/null | tail -n 1)
    fi
    echo "${v:-15}"
}
PG_MAJOR=${CRM_PG_MAJOR:-$(default_pg_major)}
# CRM_PG_ROOT: an optional copy of the Debian PostgreSQL tree (usr/lib,
# usr/share and usr/include under one prefix; PostgreSQL finds its files
# relative to its binaries), so that several checkouts can build, install and
# test side by side without overwriting each other's installed extension.
CRM_PG_ROOT=${CRM_PG_ROOT:-}
PG_BIN=$CRM_PG_ROOT/usr/lib/postgresql/$PG_MAJOR/bin
PGXS_DIR=$CRM_PG_ROOT/usr/lib/postgresql/$PG_MAJOR/lib/pgxs
# the contrib extensions crm requires (crm.control), created in every test
# database before the tests run, as the Makefile's REGRESS_OPTS do
REGRESS_EXTENSIONS=(--load-extension=pg_trgm --load-extension=unaccent)

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '==> %s\n' "$*" >&2; }

# as_root CMD...: run CMD as root (directly, or through sudo)
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# The user that owns and runs test clusters.
cluster_user() {
    if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi
}

# as_cluster_user CMD...: run CMD as cluster_user, keeping the environment
as_cluster_user() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- env PATH="$PG_BIN:$PATH" "$@"
    else
        env PATH="$PG_BIN:$PATH" "$@"
    fi
}

# ensure_packages: install build and test dependencies when something is missing
ensure_packages() {
    local need=()
    [ -x "$PG_BIN/postgres" ] || need+=("postgresql-$PG_MAJOR")
    # pg_config and pg_isolation_regress come with the client package; the
    # server headers and PGXS makefiles only with the -dev package
    [ -f "/usr/include/postgresql/$PG_MAJOR/server/postgres.h" ] || need+=("postgresql-server-dev-$PG_MAJOR")
    [ -f "$PGXS_DIR/src/makefiles/pgxs.mk" ] || need+=("postgresql-server-dev-$PG_MAJOR")
    [ -x "$PGXS_DIR/src/test/isolation/pg_isolation_regress" ] || need+=("postgresql-server-dev-$PG_MAJOR")
    command -v make >/dev/null 2>&1 || need+=(make)
    command -v gcc >/dev/null 2>&1 || need+=(gcc)
    perl -MIPC::Run -e1 >/dev/null 2>&1 || need+=(libipc-run-perl)
    command -v prove >/dev/null 2>&1 || need+=(perl)
    command -v runuser >/dev/null 2>&1 || need+=(util-linux)
    [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null 2>&1 || {
        echo "not root and no sudo: run as root, or install sudo" >&2; exit 1; }
    if [ ${#need[@]} -gt 0 ]; then
        log "installing Debian packages: ${need[*]}"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        # the Debian package would start a system cluster; we don't need it
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
    fi
}

# install_missing PKG...: install those Debian packages that are not installed
# yet (for tests that need more than the build: sqlsmith, a client driver, ...)
install_missing() {
    local pkg need=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
    done
    [ ${#need[@]} -gt 0 ] || return 0
    log "installing Debian packages: ${need[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

# build_and_install: compile with warnings as errors and install into PostgreSQL
build_and_install() {
    log "building the extension (-Wall -Wextra -Werror)"
    # (each step returns on failure: a caller that tests the result, where
    # errexit does not apply, must not install what -Werror refused)
    make -C "$REPO_ROOT" -s clean with_llvm=no PG_CONFIG="$PG_BIN/pg_config" >/dev/null || return 1
    make -C "$REPO_ROOT" -s with_llvm=no PG_CONFIG="$PG_BIN/pg_config" CRM_EXTRA_CFLAGS=-Werror || return 1
    log "installing the extension"
    # exactly this checkout's scripts: none left over from an earlier install
    # (CREATE EXTENSION crm VERSION 'V' would use a stale crm--V.sql)
    as_root rm -f "$("$PG_BIN/pg_config" --sharedir)"/extension/crm--*.sql || return 1
    as_root make -C "$REPO_ROOT" -s with_llvm=no PG_CONFIG="$PG_BIN/pg_config" install >/dev/null || return 1
}

# start_cluster DIR: a new cluster in DIR/data with its socket in DIR
# (exported as PGHOST/PGPORT/PGUSER for the caller)
start_cluster() {
    local dir=$1
    mkdir -p "$dir"
    [ "$(id -u)" -ne 0 ] || chown postgres: "$dir"
    as_cluster_user initdb -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; return 1; }
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir'
port = 5432
max_connections = 60
shared_buffers = 256MB
fsync = off
max_locks_per_transaction = 256
# prepared transactions possible, as with transaction managers: the suite
# tests the aggregates with them (test/sql/aggregate_prepared.sql)
max_prepared_transactions = 10
CONF
    as_cluster_user pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
        || { cat "$dir/server.log" >&2; return 1; }
    export PGHOST=$dir PGPORT=5432 PGUSER=postgres
}

# stop_cluster DIR
stop_cluster() {
    local dir=$1
    [ -f "$dir/data/postmaster.pid" ] || return 0
    as_cluster_user pg_ctl -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

# ------------------------------------------------------------------------
# For the scripted tests in test/scripts/.

# fail MESSAGE: report a failed check and stop the test
fail() { echo "FAIL: $*" >&2; exit 1; }

# test_cluster PREFIX: a scratch directory $WORK (readable by the cluster
# user, who may write there too) with a running cluster in $WORK/cluster;
# both are removed when the script exits.  CRM_KEEP_TEST_DIR=1 keeps them.
test_cluster() {
    WORK=$(mktemp -d "/tmp/$1.XXXXXX")
    chmod 755 "$WORK"
    [ "$(id -u)" -ne 0 ] || chown "$(cluster_user)": "$WORK"
    trap 'stop_cluster "$WORK/cluster" >/dev/null 2>&1 || true
          if [ -n "${CRM_KEEP_TEST_DIR:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi' EXIT
    start_cluster "$WORK/cluster" >/dev/null 2>&1 || { cat "$WORK/cluster/server.log" >&2; fail "the cluster did not start"; }
}

# psql_as ROLE DB [PSQL-ARGS...]: unaligned, tuples only, stop on the first error
psql_as() {
    local role=$1 db=$2; shift 2
    as_cluster_user psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U "$role" -d "$db" "$@"
}

# released_versions: every version before crm.control's default_version,
# oldest first: the versions the update scripts sql/versions/crm--A--B.sql
# start from (CREATE EXTENSION crm VERSION 'A' runs crm--0.1.sql and the
# update scripts up to A)
released_versions() {
    ls "$REPO_ROOT/sql/versions/" | sed -n 's/^crm--\([0-9.]*\)--[0-9.]*\.sql$/\1/p' | sort -V
}
