#!/bin/sh
# Build brood and run its main job: `brood demo` (arguments are passed on).
set -e
cd "$(dirname "$0")/.." || exit 1
. scripts/deps.sh
$brd_deps_ok
# Quiet unless it fails: then everything it said (ninja prints a failed
# command and the compiler's errors on stdout).
quiet() {
        out=$("$@" 2>&1) || { printf '%s\n' "$out" >&2; return 1; }
}
# A build directory that does not build (made by another meson version,
# say) is made again.
if ! { [ -f build/build.ninja ] && quiet ninja -C build; }; then
        rm -rf build
        quiet meson setup build
        quiet ninja -C build
fi
exec ./build/tools/brood demo "$@"
