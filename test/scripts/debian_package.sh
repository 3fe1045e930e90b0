#!/usr/bin/env bash
# test/scripts/debian_package.sh: the Debian package builds for the major
# under test ($PG_MAJOR: 15, 17 or 18), contains the
# extension where that PostgreSQL looks for it, installs with dpkg, works, and
# removes cleanly; META.json is a valid PGXN Meta Spec 1.0.0 document.
#
#   1. META.json parses (perl JSON::PP) and has the keys the PGXN Meta Spec
#      1.0.0 requires; its version and the version of provides.crm are the
#      semantic version of crm.control's default_version (0.2 -> 0.2.0);
#      provides.crm.file and docfile exist; PostgreSQL >= 15 is a runtime
#      prerequisite, below 19.  debian/changelog's upstream version is default_version.
#   2. The checkout's files (tracked and not ignored; no .git, no build
#      products) are copied to a scratch directory and the binary package is
#      built there with dpkg-buildpackage -b (debian/rules: dh --with
#      pgxs_loop, CRM_EXTRA_CFLAGS=-Werror; the regression tests, which the
#      suite runs anyway, are skipped with DEB_BUILD_OPTIONS=nocheck, and no -dbgsym package: noddebs); the
#      compiler ran with -Werror, and neither it nor dpkg's tools warned.
#   3. postgresql-15-crm_<version>_<arch>.deb: its files are crm.so in
#      pkglibdir (plus JIT bitcode), crm.control and the scripts of every
#      version (crm--V.sql of default_version and sql/versions/*) in
#      sharedir/extension (pg_config of /usr/lib/postgresql/15), and docs;
#      nothing else.  The scripts and control file are byte for byte the
#      sources (crm--0.2.sql = sql/install/*.sql in name order).  Its control
#      data: Package postgresql-15-crm, the changelog's version, Depends on
#      postgresql-15.
#   4. dpkg -i installs it into the real system; dpkg --verify agrees.  A
#      throwaway cluster run with the system binaries
#      (/usr/lib/postgresql/15/bin, whatever CRM_PG_ROOT says) then does
#      CREATE EXTENSION crm (extversion = default_version, functions from
#      $libdir/crm), a sales rep converts a lead once and a second conversion
#      is refused; and for every released version V: CREATE EXTENSION crm
#      VERSION 'V', ALTER EXTENSION crm UPDATE reaches default_version and a
#      lead converts.
#   5. dpkg --purge removes every file of the package.
# The system PostgreSQL tree is left exactly as it was found, on success and
# on failure (EXIT trap): files at the package's paths are backed up before
# dpkg -i and put back after the purge, and checksums of every crm file in
# pkglibdir, its bitcode directory and sharedir/extension (and of every path
# of the package) are compared before and after.  A postgresql-15-crm
# package installed before the test is refused, not replaced.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source scripts/common.sh

# The package installs into the system PostgreSQL, so the test cluster runs
# the system binaries even when the suite uses a copy ($CRM_PG_ROOT).
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PKG=postgresql-$PG_MAJOR-crm

version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" crm.control)
[ -n "$version" ] || fail "no default_version in crm.control"

# ---------------------------------------------------------------- META.json
perl -MJSON::PP -e '
    my ($version) = @ARGV;
    my @v = split /\./, $version;
    push @v, 0 while @v < 3;
    my $semver = join ".", @v;
    open my $fh, "<", "META.json" or die "META.json: $!\n";
    my $m = eval { local $/; JSON::PP->new->decode(<$fh>) } or die "META.json does not parse: $@";
    my @err;
    for my $k (qw(name abstract version maintainer license provides meta-spec)) {
        push @err, "required key $k missing" unless defined $m->{$k};
    }
    push @err, "name is not crm" unless ($m->{name} // "") eq "crm";
    push @err, "meta-spec version is not 1.0.0" unless ($m->{"meta-spec"}{version} // "") eq "1.0.0";
    push @err, "version $m->{version} is not $semver (crm.control: $version)" unless ($m->{version} // "") eq $semver;
    push @err, "version is not a semantic version" unless ($m->{version} // "") =~ /^\d+\.\d+\.\d+$/;
    push @err, "license is not postgresql" unless ($m->{license} // "") eq "postgresql";
    push @err, "maintainer is not a list" unless ref $m->{maintainer} eq "ARRAY" && @{$m->{maintainer}};
    my $p = $m->{provides}{crm};
    if (!$p) { push @err, "provides.crm missing" }
    else {
        push @err, "provides.crm.version $p->{version} is not $semver" unless ($p->{version} // "") eq $semver;
        push @err, "provides.crm.file missing or not a file" unless defined $p->{file} && -f $p->{file};
        push @err, "provides.crm.docfile missing or not a file" unless defined $p->{docfile} && -f $p->{docfile};
        push @err, "provides.crm.abstract missing" unless $p->{abstract};
    }
    # the tested majors: 15 up to 18 (debian/pgversions)
    push @err, "prereqs.runtime.requires.PostgreSQL is not \">= 15.0.0, < 19.0.0\""
        unless ($m->{prereqs}{runtime}{requires}{PostgreSQL} // "") eq ">= 15.0.0, < 19.0.0";
    for my $d (@{ $m->{no_index}{directory} // [] }) { push @err, "no_index directory $d does not exist" unless -d $d }
    push @err, "release_status is not stable, testing or unstable"
        unless ($m->{release_status} // "stable") =~ /^(stable|testing|unstable)$/;
    if (@err) { print STDERR "META.json: $_\n" for @err; exit 1 }
' "$version" || fail "META.json is not a valid PGXN Meta Spec 1.0.0 document for crm $version"
echo "ok: META.json is PGXN Meta Spec 1.0.0, version $(perl -MJSON::PP -0777 -ne 'print decode_json($_)->{version}' META.json) = crm.control $version"

# ---------------------------------------------------------------- build
install_missing build-essential debhelper dpkg-dev postgresql-server-dev-all \
    "postgresql-server-dev-$PG_MAJOR" "postgresql-$PG_MAJOR"

debversion=$(dpkg-parsechangelog -S Version)
[ "${debversion%-*}" = "$version" ] \
    || fail "debian/changelog is at $debversion, crm.control at $version"

WORK=$(mktemp -d /tmp/crm-deb.XXXXXX)
chmod 755 "$WORK"
snapshot_taken=
pkg_installed_by_us=

pkglibdir=$("$PG_BIN/pg_config" --pkglibdir)
extdir=$("$PG_BIN/pg_config" --sharedir)/extension

# state: one line per path of the package and per crm file or directory in
# the system tree, with its checksum (or "absent"), plus the package status
state() {
    {
        cat "$WORK/paths"
        find "$pkglibdir" "$extdir" -maxdepth 1 -name 'crm*' 2>/dev/null
        # (no bitcode directory where the JIT is a package of its own: sid)
        [ ! -d "$pkglibdir/bitcode" ] || find "$pkglibdir/bitcode" -maxdepth 1 -name 'crm*' | while read -r d; do find "$d"; done
    } | sort -u | while read -r p; do
        if [ -d "$p" ]; then echo "dir $p"
        elif [ -e "$p" ]; then sha256sum "$p"
        else echo "absent $p"; fi
    done
    echo "package $(dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null || echo not-installed)"
}

# put the system tree back as it was before dpkg -i
restore_system() {
    local p rc=0
    if [ -n "$pkg_installed_by_us" ]; then
        as_root dpkg --purge "$PKG" >/dev/null 2>&1 || { echo "dpkg --purge $PKG failed" >&2; rc=1; }
    fi
    while read -r p; do
        if [ -e "$WORK/backup$p" ]; then
            as_root mkdir -p "$(dirname "$p")"
            as_root cp -a "$WORK/backup$p" "$p"
        elif [ -e "$p" ] || [ -L "$p" ]; then
            as_root rm -f "$p"
        fi
    done <"$WORK/paths"
    state >"$WORK/state.after"
    if ! diff "$WORK/state.before" "$WORK/state.after" >&2; then
        echo "FAIL: the system PostgreSQL tree differs from before the test (< before, > after)" >&2
        rc=1
    else
        echo "ok: system PostgreSQL tree restored: $(grep -c '^[0-9a-f]\{64\} ' "$WORK/state.after") crm files unchanged, $(grep -c '^absent ' "$WORK/state.after") paths still absent, $PKG not installed"
    fi
    return $rc
}

cleanup() {
    local rc=$?
    stop_cluster "$WORK/cluster" >/dev/null 2>&1 || true
    if [ -n "$snapshot_taken" ]; then restore_system || rc=1; fi
    if [ -n "${CRM_KEEP_TEST_DIR:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
    exit $rc
}
trap cleanup EXIT

# The checkout's own files: tracked and new ones, not ignored ones (build
# products), not .git.
src=$WORK/src/crm-$version
mkdir -p "$src"
if git rev-parse --git-dir >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
        | tar --null -T - -cf - | tar -C "$src" -xf -
else
    tar --exclude=.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' --exclude="./crm--*.sql" \
        --exclude=./results --exclude=./output_iso --exclude=./debian/.debhelper \
        --exclude="./debian/$PKG" -cf - . | tar -C "$src" -xf -
fi
[ -f "$src/debian/rules" ] && [ ! -e "$src/crm--$version.sql" ] && [ -z "$(find "$src" -name '*.o' -o -name '*.so')" ] \
    || fail "the scratch copy of the checkout is incomplete or has build products"

# The package for the major under test only: pg_buildext builds for the
# majors of debian/pgversions that PG_SUPPORTED_VERSIONS names, and
# regenerates debian/control from control.in for them (PG_UPDATECONTROL)
log "dpkg-buildpackage -b in $src (PostgreSQL $PG_MAJOR)"
grep -qx "$PG_MAJOR" debian/pgversions || fail "debian/pgversions does not list $PG_MAJOR"
(cd "$src" && PG_SUPPORTED_VERSIONS=$PG_MAJOR PG_UPDATECONTROL=yes \
    DEB_BUILD_OPTIONS="nocheck noddebs parallel=$(nproc)" dpkg-buildpackage -us -uc -b) >"$WORK/build.log" 2>&1 \
    || { tail -n 60 "$WORK/build.log" >&2; fail "dpkg-buildpackage failed"; }
grep -qE '^([a-z0-9_]+-)*(gcc|cc)(-[0-9]+)? .* -Werror .*-c -o src/convert\.o' "$WORK/build.log" \
    || { grep -E ' -c -o src/' "$WORK/build.log" | head -n 3 >&2; fail "the package was not compiled with -Werror"; }
if grep -E '\.[ch]:[0-9]+(:[0-9]+)?: warning:' "$WORK/build.log" >&2; then fail "the compiler printed warnings (above)"; fi
if grep -E 'warning:' "$WORK/build.log" >&2; then fail "the package build printed warnings (above)"; fi
deb=$WORK/src/${PKG}_${debversion}_$(dpkg --print-architecture).deb
[ -f "$deb" ] || { ls "$WORK/src" >&2; fail "no $(basename "$deb") built"; }
echo "ok: $(basename "$deb") built with -Werror, no warnings from the compiler or the packaging tools"

# ---------------------------------------------------------------- the .deb
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' | grep -v '/$' | sort >"$WORK/paths"
expected=("$pkglibdir/crm.so" "$extdir/crm.control" "$extdir/crm--$version.sql")
for f in sql/versions/crm--*.sql; do expected+=("$extdir/$(basename "$f")"); done
for p in "${expected[@]}"; do
    grep -qxF "$p" "$WORK/paths" || { cat "$WORK/paths" >&2; fail "$p is not in the package"; }
done
if unexpected=$(grep -vE "^($pkglibdir/crm\.so|$pkglibdir/bitcode/crm(\.index\.bc|/src/[a-z_]+\.bc)|$extdir/crm(\.control|--[0-9.]+(--[0-9.]+)?\.sql)|/usr/share/doc/$PKG/.*)$" "$WORK/paths"); then
    echo "$unexpected" >&2; fail "the package has files outside the extension's paths (above)"
fi
n_sql=$(grep -c "^$extdir/crm--.*\.sql$" "$WORK/paths")
[ "$n_sql" -eq $(( $(ls sql/versions/crm--*.sql | wc -l) + 1 )) ] \
    || { cat "$WORK/paths" >&2; fail "the package has $n_sql extension scripts, not sql/versions/* plus crm--$version.sql"; }

dpkg-deb -x "$deb" "$WORK/deb"
cmp -s "$WORK/deb$extdir/crm.control" crm.control || fail "the packaged crm.control is not the checkout's"
cat $(ls sql/install/*.sql | LC_ALL=C sort) | cmp -s - "$WORK/deb$extdir/crm--$version.sql" \
    || fail "the packaged crm--$version.sql is not sql/install/*.sql"
for f in sql/versions/crm--*.sql; do
    cmp -s "$f" "$WORK/deb$extdir/$(basename "$f")" || fail "the packaged $(basename "$f") is not $f"
done
echo "ok: the package holds crm.so, crm.control and $n_sql scripts (crm--$version.sql and sql/versions/*), byte for byte, and nothing else but bitcode and docs"

[ "$(dpkg-deb -f "$deb" Package)" = "$PKG" ] || fail "package name is $(dpkg-deb -f "$deb" Package), not $PKG"
[ "$(dpkg-deb -f "$deb" Version)" = "$debversion" ] || fail "package version is $(dpkg-deb -f "$deb" Version), not $debversion"
depends=$(dpkg-deb -f "$deb" Depends)
grep -qE "(^|, )postgresql-$PG_MAJOR( |,|$)" <<<"$depends" || fail "Depends does not name postgresql-$PG_MAJOR: $depends"
echo "ok: $PKG $debversion, Depends: $depends"

# ---------------------------------------------------------------- install
if dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null | grep -qx installed; then
    fail "$PKG is installed already; this test would replace and then remove it"
fi
state >"$WORK/state.before"
while read -r p; do
    if [ -e "$p" ]; then mkdir -p "$WORK/backup$(dirname "$p")"; cp -a "$p" "$WORK/backup$p"; fi
done <"$WORK/paths"
snapshot_taken=1
echo "ok: system tree recorded: $(grep -c '^[0-9a-f]\{64\} ' "$WORK/state.before") crm files present (backed up), $(grep -c '^absent ' "$WORK/state.before") package paths absent"

pkg_installed_by_us=1
as_root dpkg -i "$deb" >"$WORK/dpkg-i.log" 2>&1 || { cat "$WORK/dpkg-i.log" >&2; fail "dpkg -i failed"; }
dpkg-query -W -f='${db:Status-Status}' "$PKG" | grep -qx installed || fail "$PKG is not installed after dpkg -i"
as_root dpkg --verify "$PKG" || fail "the installed files differ from the package (dpkg --verify)"
echo "ok: dpkg -i installed $PKG; dpkg --verify agrees"

mkdir -p "$WORK/cluster"
start_cluster "$WORK/cluster" >/dev/null 2>&1 || { cat "$WORK/cluster/server.log" >&2; fail "the cluster did not start"; }
[ "$(psql_as postgres postgres -c 'SHOW data_directory')" = "$WORK/cluster/data" ] || fail "not our cluster"

# convert_once DB: a rep converts a new lead, once
convert_once() {
    local db=$1 lead out
    lead=$(psql_as rep "$db" -c "INSERT INTO crm.lead (name, company, status) VALUES ('Paula Package', 'Packaged $db Ltd', 'Completed') RETURNING id")
    [ "$(psql_as rep "$db" -c "SELECT account_created FROM crm.convert_lead($lead)")" = "t" ] \
        || fail "$db: the lead did not convert to a new account"
    out=$(psql_as rep "$db" -c "SELECT crm.convert_lead($lead)" 2>&1 || true)
    grep -q "already converted" <<<"$out" || fail "$db: a lead converted twice: $out"
}

psql_as postgres postgres -c "CREATE DATABASE crm_pkg"
psql_as postgres crm_pkg -c "CREATE EXTENSION crm CASCADE"
[ "$(psql_as postgres crm_pkg -c "SELECT extversion FROM pg_extension WHERE extname = 'crm'")" = "$version" ] \
    || fail "CREATE EXTENSION crm from the package is not at $version"
[ "$(psql_as postgres crm_pkg -c "SELECT DISTINCT probin FROM pg_proc WHERE prolang = (SELECT oid FROM pg_language WHERE lanname = 'c') AND pronamespace = 'crm'::regnamespace")" = '$libdir/crm' ] \
    || fail "the C functions do not come from \$libdir/crm"
psql_as postgres crm_pkg -c "CREATE ROLE rep LOGIN IN ROLE crm_sales"
convert_once crm_pkg
echo "ok: CREATE EXTENSION crm from the package: version $version, a lead converts once"

released=0
for v in $(released_versions); do
    [ "$v" != "$version" ] || continue
    released=$((released + 1))
    db="crm_pkg_${v//./_}"
    psql_as postgres postgres -c "CREATE DATABASE $db"
    psql_as postgres "$db" -c "CREATE EXTENSION crm VERSION '$v' CASCADE"
    psql_as postgres "$db" -c "ALTER EXTENSION crm UPDATE"
    got=$(psql_as postgres "$db" -c "SELECT extversion FROM pg_extension WHERE extname = 'crm'")
    [ "$got" = "$version" ] || fail "from the package, $v updated to $got, not $version"
    convert_once "$db"
    echo "ok: from the package, CREATE EXTENSION crm VERSION '$v' + ALTER EXTENSION crm UPDATE reach $version; a lead converts"
done
[ "$released" -ge 1 ] || fail "no released version in sql/versions/"
stop_cluster "$WORK/cluster"

# ---------------------------------------------------------------- remove
as_root dpkg --purge "$PKG" >"$WORK/dpkg-purge.log" 2>&1 || { cat "$WORK/dpkg-purge.log" >&2; fail "dpkg --purge failed"; }
pkg_installed_by_us=
if dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null | grep -qv '^not-installed$'; then
    fail "$PKG is still known to dpkg after --purge"
fi
while read -r p; do [ ! -e "$p" ] || fail "$p is still there after dpkg --purge"; done <"$WORK/paths"
echo "ok: dpkg --purge removed all $(wc -l <"$WORK/paths") files of $PKG"
# the EXIT trap puts the system tree back and compares it with before
