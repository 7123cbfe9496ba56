#!/bin/sh
# Build brood and run its main job: `brood demo` (arguments are passed on).
set -e
cd "$(dirname "$0")/.."
. scripts/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
exec ./build/tools/brood demo "$@"
