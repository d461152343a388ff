#!/usr/bin/env bash
# Runs every unit test binary in each DIR (the release build and the one
# built with ASan/UBSan); any failure, memory error or leak fails the run.
set -u
[ $# -gt 0 ] || { echo "usage: run-unit-tests.sh DIR..." >&2; exit 2; }
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0; ran=0
for dir in "$@"; do
    for t in "$dir"/test_*; do
        [ -x "$t" ] || continue
        ran=$((ran + 1))
        echo "== $t"
        if ! "$t"; then
            echo "FAILED: $t"
            failed=$((failed + 1))
        fi
    done
done
echo "unit test binaries: $((ran - failed)) passed, $failed failed"
[ "$ran" -gt 0 ] && [ "$failed" -eq 0 ]
