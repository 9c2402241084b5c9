#!/usr/bin/env bash
# `make test`: unit tests, integration tests against the real binary, then the unit tests again
# under AddressSanitizer + UBSan. Prints one summary line; exit 1 if anything failed.
set -u
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
failed=()
step() {
    local name=$1
    shift
    echo "==> $name"
    if "$@"; then echo "==> $name: ok"; else echo "==> $name: FAILED"; failed+=("$name"); fi
}
step build make -s -j"$jobs" all
step unit make -s -j"$jobs" unit
step integration make -s integration
step unit-asan make -s -j"$jobs" unit ASAN=1
total=4
echo "suites: $((total - ${#failed[@]})) passed, ${#failed[@]} failed${failed:+ (${failed[*]})}"
[ ${#failed[@]} -eq 0 ]
