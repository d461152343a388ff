#!/usr/bin/env bash
# Runs every unit test binary in DIR (built with ASan/UBSan); any failure,
# memory error or leak fails the run.
set -u
dir=${1:?usage: run-unit-tests.sh DIR}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0; ran=0
for t in "$dir"/test_*; do
    [ -x "$t" ] || continue
    ran=$((ran + 1))
    echo "== $(basename "$t")"
    if ! "$t"; then
        echo "FAILED: $(basename "$t")"
        failed=$((failed + 1))
    fi
done
echo "unit test binaries: $((ran - failed)) passed, $failed failed"
[ "$ran" -gt 0 ] && [ "$failed" -eq 0 ]
