#!/bin/sh
# Installs the Debian packages brood needs to build and test, if any is missing.
# Sourced by scripts/demo.sh and scripts/test.sh.
BRD_PKGS="meson ninja-build gcc clang pkg-config libatomic-ops-dev libcmocka-dev python3 gnuplot-nox"
brd_missing=""
for p in $BRD_PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
                brd_missing="$brd_missing $p"
done
if [ -n "$brd_missing" ]; then
        echo "brood: installing:$brd_missing"
        if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
        $SUDO apt-get update -qq >/dev/null || exit 1
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $brd_missing >/dev/null || exit 1
fi
