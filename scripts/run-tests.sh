#!/usr/bin/env bash
# `make test`: unit tests, integration tests against the real binary, then both again under
# AddressSanitizer + UBSan (any sanitizer report from any process fails the run). Ends with one line counting every test case:
# "tests: N passed, N failed". Exit 1 if anything failed.
set -u
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=()
passed_cases=0
failed_cases=0
count() {
    # unit runner: "unit: N passed, N failed"; node --test: "# pass N" / "# fail N"
    local p f
    p=$(sed -n -e 's/^unit: \([0-9]*\) passed.*/\1/p' -e 's/^# pass \([0-9]*\)$/\1/p' "$log" | tail -1)
    f=$(sed -n -e 's/^unit: [0-9]* passed, \([0-9]*\) failed.*/\1/p' -e 's/^# fail \([0-9]*\)$/\1/p' "$log" | tail -1)
    passed_cases=$((passed_cases + ${p:-0}))
    failed_cases=$((failed_cases + ${f:-0}))
}
step() {
    local name=$1
    shift
    echo "==> $name"
    "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    count
    if [ "$rc" -eq 0 ]; then
        echo "==> $name: ok"
    else
        echo "==> $name: FAILED"
        failed+=("$name")
        # a step that failed without reporting a case still counts as one failure
        [ "$(sed -n 's/^unit: [0-9]* passed, \([0-9]*\) failed.*/\1/p; s/^# fail \([0-9]*\)$/\1/p' "$log" | tail -1)" ] ||
            failed_cases=$((failed_cases + 1))
    fi
}
layers() { scripts/check-layers.sh --self-test && scripts/check-layers.sh; }
step layers layers
env_reads() { scripts/check-env.sh --self-test && scripts/check-env.sh; }
step env env_reads
step build make -s -j"$jobs" all
step unit make -s -j"$jobs" unit
step integration make -s integration
step unit-asan make -s -j"$jobs" unit ASAN=1

# Every streamio process of the sanitized run writes its reports under one directory.
integration_asan() {
    local dir
    dir=$(mktemp -d)
    make -s ASAN=1 all || return 1
    ASAN_OPTIONS="log_path=$dir/asan:detect_leaks=1" \
        UBSAN_OPTIONS="log_path=$dir/ubsan:print_stacktrace=1" \
        scripts/run-integration.sh build/asan/streamio
    local rc=$?
    if [ -n "$(ls -A "$dir")" ]; then
        echo "sanitizer reports:"
        cat "$dir"/*
        rc=1
    fi
    rm -rf "$dir"
    return $rc
}
step integration-asan integration_asan
[ ${#failed[@]} -eq 0 ] || echo "failed steps: ${failed[*]}"
echo "tests: $passed_cases passed, $failed_cases failed"
[ ${#failed[@]} -eq 0 ]
