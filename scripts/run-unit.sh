#!/usr/bin/env bash
# Runs each cmocka unit-test binary given on the command line (each under a time limit, since
# cmocka has none), then prints one line counting test cases: "unit: N passed, N failed".
# Exit status 1 if any binary failed.
set -u
pass=0
fail=0
bad=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "$@"; do
    timeout 120 "$t" >"$log" 2>&1
    rc=$?
    cat "$log"
    # a binary may run several groups (test_http_server: with and without io_uring): add them up
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s += $1} END {if (NR) print s}')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | awk '{s += $1} END {if (NR) print s}')
    pass=$((pass + ${p:-0}))
    if [ "$rc" -ne 0 ]; then
        fail=$((fail + ${f:-1}))
        bad+=("$(basename "$t")")
    fi
done
echo "unit: $pass passed, $fail failed"
[ ${#bad[@]} -eq 0 ] || { echo "unit: failing binaries: ${bad[*]}"; exit 1; }
