#!/bin/sh
# Installs the Debian packages brood needs to build and test, if any is missing.
# Sourced by scripts/demo.sh and scripts/test.sh.
# libclang-rt-14-dev: the sanitizer runtimes, only a Recommends of clang's
# packages (not installed with --no-install-recommends).
BRD_PKGS="meson ninja-build gcc clang libclang-rt-14-dev pkg-config libatomic-ops-dev libcmocka-dev python3 gnuplot-nox"
brd_missing=""
for p in $BRD_PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
                brd_missing="$brd_missing $p"
done
# The caller decides what a failure means (brd_deps_ok=false): test.sh
# still ends with its summary line.  env: sudo's env_reset would drop a
# plain DEBIAN_FRONTEND=... before it.
brd_deps_ok=true
if [ -n "$brd_missing" ]; then
        echo "brood: installing:$brd_missing"
        if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
        if [ -n "$SUDO" ] && ! command -v sudo >/dev/null 2>&1; then
                echo "brood: run as root, or install sudo; missing:$brd_missing" >&2
                brd_deps_ok=false
        elif [ -n "$SUDO" ] && ! sudo -v; then
                # Asked once (not at every try below): not in sudoers, a
                # wrong password, or one needed with no terminal.
                echo "brood: sudo refused; run as root, or install:$brd_missing" >&2
                brd_deps_ok=false
        else
                # An install cut short before (Ctrl-C, a CI timeout) must be
                # finished first, or every apt-get says so and stops.
                $SUDO env DEBIAN_FRONTEND=noninteractive dpkg --configure -a >/dev/null 2>&1 || true
                # A fresh machine's apt-daily or cloud-init may hold the lists'
                # lock (the lock timeout covers dpkg's only), and one mirror
                # may fail for a moment: a few tries, and no try is fatal
                # (lists already there may do).
                for brd_try in 1 2 3 4 5 6; do
                        if brd_err=$($SUDO apt-get -o DPkg::Lock::Timeout=120 update -qq 2>&1 >/dev/null); then
                                brd_err=
                                break
                        fi
                        [ "$brd_try" = 6 ] || sleep 10
                done
                [ -z "$brd_err" ] || echo "brood: apt-get update: $brd_err (trying the install anyway)" >&2
                if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=1200 \
                        -o Dpkg::Options::=--force-confold install -y -qq $brd_missing >/dev/null; then
                        echo "brood: could not install:$brd_missing" >&2
                        brd_deps_ok=false
                fi
        fi
fi
# brd_dir_mine DIR: false, saying what to do, when DIR holds a file of
# another user (a build made as root, then run as yourself), which no build
# of ours could write or remove.
brd_dir_mine() {
        [ -e "$1" ] && [ "$(id -u)" != 0 ] || return 0
        brd_other=$(find "$1" ! -user "$(id -u)" -print -quit 2>/dev/null)
        [ -n "$brd_other" ] || return 0
        echo "brood: $1/ holds files of another user ($brd_other): remove it (sudo rm -rf $1), or run as that user" >&2
        return 1
}
