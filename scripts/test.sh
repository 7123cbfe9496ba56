#!/bin/sh
# Build brood and run every test twice: a gcc build (-Werror) and a clang
# ASan+UBSan build; then the threads-only ring test under ThreadSanitizer.
# Ends with "N passed, N failed" and exits non-zero if anything failed.
cd "$(dirname "$0")/.." || exit 1
. scripts/deps.sh
if ! $brd_deps_ok; then
        echo "0 passed, 1 failed"
        exit 1
fi

passed=0
failed=0
why=        # the failed tests' lines, repeated at the end where a CI tail shows them
skipped=0
wrap=""
run() {     # run <builddir> <meson test args...>, under $wrap if set
        dir=$1; shift
        log=$(mktemp)
        rm -f "$dir/meson-logs/testlog.txt"    # read below: never an older run's
        $wrap meson test -C "$dir" --print-errorlogs "$@" >"$log" 2>&1
        rc=$?
        cat "$log"
        # Failed tests, their failed checks, and a test that never ended
        # (a cmocka RUN line with no OK or FAILED after it: it hung).
        why="$why$(awk '
                / (FAIL|TIMEOUT|ERROR) +[0-9.]+s|\[  (FAILED|ERROR) +\]|: error: |^ERROR: / { print }
                /^\[ RUN / { if (run != "") print run " (never ended)"; run = $0 }
                /^\[       OK \]|^\[  FAILED  \]|^\[  SKIPPED \]/ { run = "" }
                /^\[==========\] Running/ { if (run != "") print run " (never ended)"; run = "" }
                END { if (run != "") print run " (never ended)" }' "$log" |
                sed "s|^|$dir: |" | head -n 40)
"
        ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
        ko=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
        to=$(sed -n 's/^Timeout: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
        # Test cases that skipped themselves (no futex_waitv, CLFLUSHOPT,
        # root, a debug-checks build...): their program passed, and the
        # summary says so.  The whole log has cmocka's counts.
        sk=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test(s).*/\1/p' \
                "$dir/meson-logs/testlog.txt" 2>/dev/null | awk '{ n += $1 } END { print n + 0 }')
        skipped=$((skipped + ${sk:-0}))
        rm -f "$log"
        passed=$((passed + ${ok:-0}))
        failed=$((failed + ${ko:-0} + ${to:-0}))
        [ $rc -eq 0 ] || [ $((${ko:-0} + ${to:-0})) -gt 0 ] || failed=$((failed + 1))
}
broken() {  # broken <builddir>: it did not configure or build
        failed=$((failed + 1))
        why="$why$1: did not build
"
}
setup() {   # setup <builddir> <meson setup args...>, with the compiler $CC
        dir=$1; shift
        brd_dir_mine "$dir" || { broken "$dir"; return 1; }
        # A directory this script did not set up with $CC (another compiler,
        # options of someone's own), or that meson cannot configure (made by
        # another meson version), is made again: meson configure cannot
        # change the compiler, and the three builds must be what they say.
        # -Dtests=enabled: no cmocka is an error, not a suite that quietly
        # shrinks to what needs none.  meson says why it failed on stdout:
        # shown only then.
        if ! [ -f "$dir/build.ninja" ] || [ "$(cat "$dir/.brood-cc" 2>/dev/null)" != "$CC" ] ||
           ! meson configure "$dir" -Dtests=enabled "$@" >/dev/null 2>&1; then
                rm -rf "$dir"
                if [ -e "$dir" ]; then
                        echo "brood: cannot remove $dir: remove it" >&2
                        broken "$dir"
                        return 1
                fi
                out=$(meson setup "$dir" -Dtests=enabled "$@" 2>&1) ||
                        { printf '%s\n' "$out" | tail -n 20; broken "$dir"; return 1; }
                echo "$CC" >"$dir/.brood-cc"
        fi
        ninja -C "$dir" || { broken "$dir"; return 1; }
}

echo "== gcc build (-Wall -Wextra -Werror)"
CC=gcc setup build -Dwerror=true -Db_sanitize=none -Ddebug_checks=false && run build
# clang 14's sanitizers cannot run with more than 28 bits of mmap
# randomisation (TSan: "unexpected memory mapping"; ASan now and then):
# then without it, where that may be asked.  The sysctl is root's to read:
# unreadable, the same.
bits=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 99)
norand=
if [ "$bits" -gt 28 ]; then
        if setarch "$(uname -m)" -R true 2>/dev/null; then
                norand="setarch $(uname -m) -R"
        else
                # A container whose seccomp refuses personality(): say why
                # the sanitizer builds may fail (the machine's setting is
                # not ours to change).
                [ "$bits" = 99 ] && bits="unknown (unreadable)"
                echo "brood: vm.mmap_rnd_bits is $bits and setarch -R is refused: clang 14's" \
                     "sanitizers may fail (\"unexpected memory mapping\") above 28" >&2
        fi
fi
echo "== clang ASan+UBSan build, with the debug checks"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# The sanitizers run the code 2-5x slower: 3x the time limits (no timing
# bound inside a test moves).
wrap=$norand
CC=clang setup build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
        -Dc_args=-fno-sanitize-recover=undefined -Ddebug_checks=true && run build-asan -t 3
echo "== clang ThreadSanitizer build (the threads-only ring test)"
CC=clang setup build-tsan -Dwerror=true -Db_sanitize=thread -Db_lundef=false && run build-tsan --suite tsan -t 3
wrap=
echo
why=$(printf '%s' "$why" | grep -v '^$')
if [ "$failed" -gt 0 ] && [ -n "$why" ]; then
        echo "What failed (each build's meson-logs/testlog.txt has the whole log):"
        printf '%s\n' "$why"
fi
[ "$skipped" -eq 0 ] || echo "($skipped test cases skipped themselves: see the logs' SKIPPED lines)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
