#!/bin/sh
# Runs one fuzz target under libFuzzer, with ASan+UBSan, for a while:
#   scripts/fuzz.sh ring|pool|array|env [SECONDS]      (default 60 s)
# Sets up build-fuzz (clang, -Dfuzz=true) the first time.  The fuzzer runs as
# one process on a corpus in build-fuzz/corpus/TARGET, seeded from
# fuzz/corpus/TARGET and kept between runs.  An input that crashes or breaks
# an invariant is saved in build-fuzz/crashes/TARGET/; copied into
# fuzz/corpus/TARGET/ (named regress-*), it becomes a regression test.
cd "$(dirname "$0")/.."
. scripts/deps.sh
$brd_deps_ok || exit 1

target=$1
secs=${2:-60}
case "$target" in
ring|pool|array|env) ;;
*)      echo "usage: $0 ring|pool|array|env [SECONDS]" >&2
        exit 2 ;;
esac

dir=build-fuzz
opts="-Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false
      -Dc_args=-fno-sanitize-recover=undefined -Ddebug_checks=true"
# A directory set up otherwise (by another compiler, without -Dfuzz, by
# another meson) is made again, as scripts/test.sh does with its builds.
# shellcheck disable=SC2086  # $opts: one option per word
if ! [ -f "$dir/build.ninja" ] || [ "$(cat "$dir/.brood-cc" 2>/dev/null)" != clang ] ||
   ! meson configure "$dir" $opts >/dev/null 2>&1; then
        rm -rf "$dir"
        CC=clang meson setup "$dir" $opts >/dev/null || exit 1
        echo clang >"$dir/.brood-cc"
fi
ninja -C "$dir" "fuzz/fuzz-$target" || exit 1

corpus=$dir/corpus/$target
crashes=$dir/crashes/$target
mkdir -p "$corpus" "$crashes"
cp fuzz/corpus/"$target"/* "$corpus"/
# The pool caches blocks per process only while the process has one thread;
# libFuzzer's RSS-watching thread would turn that path off.
extra=""
[ "$target" = pool ] && extra=-rss_limit_mb=0
echo "fuzz-$target: $secs s on $corpus; crashes go to $crashes/"
# -timeout: no call may block (timeouts are 0 or 1 ms, lock waits are bounded)
exec "$dir/fuzz/fuzz-$target" -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$crashes/" $extra "$corpus"
