# scripts/versions.sh: the suite on other PostgreSQL majors, in Debian chroots.
# Sourced by scripts/test.sh when PG_VERSIONS (or --all-versions) asks for
# more than the machine's own PostgreSQL.
#
# Each major comes from the Debian release that ships it, and from nothing
# else: 15 from bookworm, 17 from trixie, 18 from sid (unstable).  The
# machine's own release runs the suite directly; any other runs it in a
# minbase chroot of that release, made once with debootstrap and kept in
# $CRM_CHROOT_DIR (default /var/cache/crm-chroots/<release>): a chroot that is
# complete (its stamp file names the same recipe) is reused as it is.  The
# trixie chroot also gets bookworm's postgresql-15 (Debian's own package, from
# the bookworm suite), so that pg_upgrade can go from 15 to 17 in one
# filesystem.
#
# Inside a chroot, /proc and /dev/shm (PostgreSQL's dynamic shared memory)
# are mounted while a command runs and unmounted when it ends (trap).

CRM_CHROOT_DIR=${CRM_CHROOT_DIR:-/var/cache/crm-chroots}
CRM_DEBIAN_MIRROR=${CRM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Bump when the recipe below changes: existing chroots are then made anew.
CRM_CHROOT_RECIPE=1

# release_of MAJOR: the Debian release whose archive ships postgresql-MAJOR
release_of() {
    case $1 in
        15) echo bookworm ;;
        17) echo trixie ;;
        18) echo sid ;;
        *) echo "PostgreSQL $1 is not one of the tested majors (15 17 18)" >&2; return 1 ;;
    esac
}

# host_release: this machine's Debian release
host_release() { . /etc/os-release && echo "${VERSION_CODENAME:-unknown}"; }

# chroot_packages MAJOR: what the suite needs in the chroot (the build, the
# TAP and scripted tests, the Debian package build)
chroot_packages() {
    echo "postgresql-$1 postgresql-server-dev-$1 postgresql-server-dev-all postgresql-common" \
         "make gcc libc6-dev perl libipc-run-perl util-linux procps bc" \
         "build-essential debhelper dpkg-dev sqlsmith python3-psycopg"
}

# chroot_dir MAJOR
chroot_dir() { echo "$CRM_CHROOT_DIR/$(release_of "$1")"; }

# ensure_chroot MAJOR: the chroot for MAJOR exists and is complete; made
# when missing (about 3-5 minutes), reused otherwise
ensure_chroot() {
    local major=$1 release dir stamp
    release=$(release_of "$major") || return 1
    dir=$CRM_CHROOT_DIR/$release
    stamp="crm chroot recipe $CRM_CHROOT_RECIPE: $release, $(chroot_packages "$major")"
    if [ -f "$dir/.crm-chroot" ] && [ "$(cat "$dir/.crm-chroot")" = "$stamp" ]; then
        log "reusing the $release chroot in $dir"
        return 0
    fi
    command -v debootstrap >/dev/null 2>&1 || install_missing debootstrap
    local start=$SECONDS tmp=$dir.new
    log "creating a $release chroot for PostgreSQL $major in $dir (debootstrap, minbase)"
    as_root mkdir -p "$CRM_CHROOT_DIR"
    chroot_umount "$tmp"
    as_root rm -rf "$dir"
    # a base system that debootstrap completed before is kept (a run that
    # stopped while installing the packages goes on from there)
    if [ ! -f "$tmp/.crm-debootstrapped" ]; then
        as_root rm -rf "$tmp"
        as_root debootstrap --variant=minbase "$release" "$tmp" "$CRM_DEBIAN_MIRROR" >"$CRM_CHROOT_DIR/$release.debootstrap.log" 2>&1 \
            || { tail -n 30 "$CRM_CHROOT_DIR/$release.debootstrap.log" >&2; return 1; }
        as_root touch "$tmp/.crm-debootstrapped"
    fi
    # a throwaway system: dpkg need not sync every file it unpacks
    echo force-unsafe-io | as_root tee "$tmp/etc/dpkg/dpkg.cfg.d/crm-unsafe-io" >/dev/null
    # no services start in the chroot, and the packages make no cluster
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$tmp/usr/sbin/policy-rc.d" >/dev/null
    as_root chmod 755 "$tmp/usr/sbin/policy-rc.d"
    as_root mkdir -p "$tmp/etc/postgresql-common"
    echo "create_main_cluster = false" | as_root tee "$tmp/etc/postgresql-common/createcluster.conf" >/dev/null
    as_root cp /etc/resolv.conf "$tmp/etc/resolv.conf" 2>/dev/null || true
    echo "deb $CRM_DEBIAN_MIRROR $release main" | as_root tee "$tmp/etc/apt/sources.list" >/dev/null
    # sid's Release file is valid for a few days only; a mirror that lags
    # behind this machine's clock would otherwise be refused
    [ "$release" != sid ] || echo 'Acquire::Check-Valid-Until "false";' \
        | as_root tee "$tmp/etc/apt/apt.conf.d/crm-valid-until" >/dev/null
    local extra=()
    if [ "$release" = trixie ]; then
        # bookworm's postgresql-15 beside trixie's 17, for pg_upgrade 15 -> 17;
        # trixie's packages stay preferred for everything else
        printf 'deb %s bookworm main\ndeb %s bookworm-security main\n' \
            "$CRM_DEBIAN_MIRROR" "${CRM_DEBIAN_MIRROR%/debian}/debian-security" \
            | as_root tee "$tmp/etc/apt/sources.list.d/bookworm.list" >/dev/null
        printf 'Package: *\nPin: release n=bookworm\nPin-Priority: 100\n\nPackage: *\nPin: release n=bookworm-security\nPin-Priority: 100\n' \
            | as_root tee "$tmp/etc/apt/preferences.d/bookworm" >/dev/null
        extra=(postgresql-15)
    fi
    chroot_run_raw "$tmp" apt-get update -qq \
        && chroot_run_raw "$tmp" apt-get install -y -qq --no-install-recommends \
            $(chroot_packages "$major") "${extra[@]}" >"$CRM_CHROOT_DIR/$release.apt.log" 2>&1 \
        || { tail -n 30 "$CRM_CHROOT_DIR/$release.apt.log" >&2; chroot_umount "$tmp"; return 1; }
    chroot_run_raw "$tmp" apt-get clean
    chroot_umount "$tmp"
    echo "$stamp" | as_root tee "$tmp/.crm-chroot" >/dev/null
    as_root mv "$tmp" "$dir"
    log "the $release chroot took $((SECONDS - start)) s to make ($(du -sh "$dir" | cut -f1))"
}

# chroot_mount DIR / chroot_umount DIR: what PostgreSQL needs in the chroot
chroot_mount() {
    local dir=$1
    mountpoint -q "$dir/proc" || as_root mount -t proc proc "$dir/proc"
    as_root mkdir -p "$dir/dev/shm"
    mountpoint -q "$dir/dev/shm" || as_root mount -t tmpfs -o mode=1777,size=2g shm "$dir/dev/shm"
}
chroot_umount() {
    local dir=$1 m
    for m in "$dir/dev/shm" "$dir/proc"; do
        if mountpoint -q "$m" 2>/dev/null; then as_root umount "$m" || as_root umount -l "$m"; fi
    done
}

# chroot_run_raw DIR CMD...: run CMD in the chroot, with a clean environment,
# /proc and /dev/shm mounted for its duration
chroot_run_raw() {
    local dir=$1 rc; shift
    chroot_mount "$dir"
    # unmount when this shell is interrupted too
    trap "chroot_umount '$dir'; exit 130" INT TERM
    as_root chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive CI="${CI:-}" "$@"
    rc=$?
    trap - INT TERM
    chroot_umount "$dir"
    return $rc
}

# copy_tree_into DIR: the checkout's own files (tracked and new, no build
# products, no .git) into DIR/build/crm, owned by root
copy_tree_into() {
    local dest=$1/build/crm
    as_root rm -rf "$dest"
    as_root mkdir -p "$dest"
    if git -C "$REPO_ROOT" rev-parse --git-dir >/dev/null 2>&1; then
        (cd "$REPO_ROOT" && git ls-files -z --cached --others --exclude-standard \
            | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
            | tar --null -T - -cf -) | as_root tar -C "$dest" -xf -
    else
        tar -C "$REPO_ROOT" --exclude=.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
            --exclude='./crm--*.sql' --exclude=./results --exclude=./output_iso -cf - . \
            | as_root tar -C "$dest" -xf -
    fi
}

# trust_local_cas DIR: the certificate authorities this machine adds to its
# own (/usr/local/share/ca-certificates: a company's, a TLS-inspecting
# proxy's) are trusted in the chroot too, so that the scripted tests' npm
# reaches its registry from the chroot as it does from the machine; the
# chroot's ca-certificates takes them in when it is installed (the tests
# install nodejs) or now, when it already is
trust_local_cas() {
    local dir=$1
    compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null || return 0
    as_root mkdir -p "$dir/usr/local/share/ca-certificates"
    as_root cp /usr/local/share/ca-certificates/*.crt "$dir/usr/local/share/ca-certificates/"
    if [ -x "$dir/usr/sbin/update-ca-certificates" ]; then
        chroot_run_raw "$dir" update-ca-certificates >/dev/null 2>&1 || true
    fi
}

# cross_tests MAJOR: the test/versions/ scripts that run after MAJOR's suite
cross_tests() {
    case $1 in
        15) echo dump_on_15 ;;
        17) echo restore_on_new pg_upgrade_15_17 ;;
        *) echo restore_on_new ;;
    esac
}

# install_15_build_into DIR: this checkout's extension, built for the
# machine's PostgreSQL 15, installed into the chroot DIR's postgresql-15
# (for pg_upgrade from 15)
install_15_build_into() {
    local dir=$1 pgc=/usr/lib/postgresql/15/bin/pg_config
    [ -x "$pgc" ] || { echo "no $pgc on this machine" >&2; return 1; }
    make -C "$REPO_ROOT" -s with_llvm=no PG_CONFIG="$pgc" CRM_EXTRA_CFLAGS=-Werror >/dev/null \
        && as_root make -C "$REPO_ROOT" -s with_llvm=no PG_CONFIG="$pgc" DESTDIR="$dir" install >/dev/null
}

# run_major MAJOR CROSS OUT: the suite of MAJOR and the cross-version tests
# CROSS, on this machine or in MAJOR's chroot (made before: the status of
# ensure_chroot in OUT/chroot-MAJOR.rc); the output in OUT/pgMAJOR.log, the
# seconds it took in OUT/pgMAJOR.secs
run_major() {
    local v=$1 cross=$2 out=$3 rel dir made=0 start=$SECONDS
    local log=$out/pg$v.log
    rel=$(release_of "$v")
    if [ "$rel" = "$(host_release)" ]; then
        env -u PG_VERSIONS CRM_PG_MAJOR="$v" CRM_CROSS_TESTS="$cross" CRM_DUMP_DIR="$out/dumps" \
            bash "$REPO_ROOT/scripts/test.sh" 2>&1 | tee "$log"
    else
        dir=$(chroot_dir "$v")
        made=$(cat "$out/chroot-$v.rc" 2>/dev/null || echo 1)
        cat "$out/chroot-$v.log" >"$log"
        if [ "$made" -ne 0 ]; then
            echo "0 passed, 1 failed" >>"$log"
        else
            case " $cross " in *" pg_upgrade_15_17 "*)
                install_15_build_into "$dir" >>"$log" 2>&1 || cross=${cross/pg_upgrade_15_17/pg_upgrade_15_17_missing} ;;
            esac
            copy_tree_into "$dir"
            trust_local_cas "$dir"
            as_root rm -rf "$dir/build/dumps"
            if [ -d "$out/dumps" ]; then
                as_root cp -r "$out/dumps" "$dir/build/dumps"
                as_root chroot "$dir" chown -R postgres: /build/dumps
            fi
            chroot_run_raw "$dir" CRM_PG_MAJOR="$v" CRM_CROSS_TESTS="$cross" CRM_DUMP_DIR=/build/dumps \
                CRM_KEEP_TEST_DIR="${CRM_KEEP_TEST_DIR:-}" bash /build/crm/scripts/test.sh >>"$log" 2>&1
        fi
    fi
    echo $((SECONDS - start)) >"$out/pg$v.secs"
}

# run_all_versions MAJOR...: the suite and the cross-version tests on each
# major; one line per major and the total "N passed, N failed".  This
# machine's major runs first (15 makes the dump that the others restore)
# while the chroots are made in the background (debootstrap mostly waits for
# the network); then the chroots' majors run side by side (the suite mostly
# waits on locks and sleeps; each chroot has its own /tmp and sockets), and
# their output follows, one major after the other.
run_all_versions() {
    local majors v rel p f total_p=0 total_f=0 summary=() out cross pids=() start=$SECONDS
    majors=$(printf '%s\n' "$@" | sort -n -u | tr '\n' ' ')
    out=$(mktemp -d /tmp/crm-versions.XXXXXX)
    chmod 755 "$out"
    for v in $majors; do
        release_of "$v" >/dev/null || { echo "0 passed, 1 failed"; return 1; }
    done
    local makers=()
    for v in $majors; do
        [ "$(release_of "$v")" != "$(host_release)" ] || continue
        command -v debootstrap >/dev/null 2>&1 || install_missing debootstrap
        { ensure_chroot "$v"; echo $? >"$out/chroot-$v.rc"; } >"$out/chroot-$v.log" 2>&1 &
        makers+=($!)
    done
    # cross_of MAJOR: its cross-version tests (none without 15's dump)
    cross_of() { case " $majors " in *" 15 "*) cross_tests "$1" ;; esac; }
    # the chroots are made (side by side) before this machine's suite runs:
    # the suite's timing-sensitive tests (crash recovery under load, the
    # isolation specs) then do not share the two cores with debootstrap
    [ ${#makers[@]} -eq 0 ] || wait "${makers[@]}"
    for v in $majors; do
        [ "$(release_of "$v")" = "$(host_release)" ] || continue
        log "PostgreSQL $v (Debian $(release_of "$v"), this machine): the suite, then $(cross_of "$v")"
        run_major "$v" "$(cross_of "$v")" "$out"
    done
    for v in $majors; do
        [ "$(release_of "$v")" != "$(host_release)" ] || continue
        log "PostgreSQL $v (Debian $(release_of "$v"), chroot $(chroot_dir "$v")): the suite, then $(cross_of "$v") (in the background)"
        run_major "$v" "$(cross_of "$v")" "$out" &
        pids+=($!)
    done
    [ ${#pids[@]} -eq 0 ] || wait "${pids[@]}"
    for v in $majors; do
        rel=$(release_of "$v")
        if [ "$rel" != "$(host_release)" ]; then
            echo "===== PostgreSQL $v (Debian $rel, in its chroot)"
            cat "$out/pg$v.log"
        fi
        p=; f=
        read -r p f < <(sed -n 's/^\([0-9]\+\) passed, \([0-9]\+\) failed$/\1 \2/p' "$out/pg$v.log" | tail -n 1)
        if [ -z "${p:-}" ]; then p=0; f=1; fi
        total_p=$((total_p + p)); total_f=$((total_f + f))
        summary+=("PostgreSQL $v (Debian $rel): $p passed, $f failed, in $(cat "$out/pg$v.secs" 2>/dev/null || echo '?') s")
    done
    [ -n "${CRM_KEEP_TEST_DIR:-}" ] || rm -rf "$out"
    echo
    printf '%s\n' "${summary[@]}"
    echo "all majors in $((SECONDS - start)) s"
    echo "$total_p passed, $total_f failed"
    [ "$total_f" -eq 0 ]
}
