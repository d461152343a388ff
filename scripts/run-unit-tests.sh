#!/usr/bin/env bash
# Runs every unit test binary in each DIR (the release build and the one
# built with ASan/UBSan); any failure, memory error or leak fails the run.
# The DIRs run side by side (their tests mostly wait on sockets and fakes);
# each one's output is printed whole once all are done.
set -u
[ $# -gt 0 ] || { echo "usage: run-unit-tests.sh DIR..." >&2; exit 2; }
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# run_dir DIR: runs DIR's tests; its last line is "RAN FAILED".
run_dir() {
    local failed=0 ran=0 t
    for t in "$1"/test_*; do
        [ -x "$t" ] || continue
        ran=$((ran + 1))
        echo "== $t"
        if ! "$t"; then
            echo "FAILED: $t"
            failed=$((failed + 1))
        fi
    done
    echo "$ran $failed"
}

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
i=0
for dir in "$@"; do
    run_dir "$dir" > "$out/$i.log" 2>&1 &
    i=$((i + 1))
done
wait

ran=0; failed=0
for ((j = 0; j < i; j++)); do
    head -n -1 "$out/$j.log"
    read -r r f < <(tail -n 1 "$out/$j.log")
    ran=$((ran + r)); failed=$((failed + f))
done
grep -h "^FAILED: " "$out"/*.log
echo "unit test binaries: $((ran - failed)) passed, $failed failed"
[ "$ran" -gt 0 ] && [ "$failed" -eq 0 ]
