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
brd_dir_mine build || exit 1
# A build directory meson cannot configure (made by another meson
# version, say) is made again; one that fails to compile is not.  The
# options test.sh gives it too: a build someone set up with sanitizers or
# debug checks would print figures of that build, not of brood.
brd_opts="-Db_sanitize=none -Ddebug_checks=false -Dbuildtype=debugoptimized"
if [ -f build/build.ninja ] && ! meson configure build $brd_opts >/dev/null 2>&1; then
        rm -rf build
fi
[ -f build/build.ninja ] || quiet meson setup build $brd_opts
# The command only: the tests and benchmarks are test.sh's to build.
quiet ninja -C build tools/brood
exec ./build/tools/brood demo "$@"
