#!/usr/bin/env bash
# `make fuzz`: runs each libFuzzer binary given after the time budget for that many seconds, on a
# scratch copy of its corpus (tests/fuzz/corpus/<target>), and prints per target the executions,
# the coverage and any crash (the input is kept under build/fuzz/artifacts/<target>/).
# FUZZ_MERGE=1 merges the new inputs back into tests/fuzz/corpus/<target> with -merge=1 (which
# keeps only inputs that add coverage edges). Ends with "fuzz: N targets, N crashed"; exit 1 on a crash.
set -u
cd "$(dirname "$0")/.."
secs=$1
shift
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
crashed=()
for bin in "$@"; do
    t=$(basename "$bin")
    t=${t#fuzz_}
    corpus=tests/fuzz/corpus/$t
    art=build/fuzz/artifacts/$t
    mkdir -p "$corpus" "$art" "$scratch/$t"
    cp -r "$corpus"/. "$scratch/$t"/
    log=$scratch/$t.log
    "$bin" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$art/" "$scratch/$t" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    if [ "$rc" -ne 0 ]; then
        crashed+=("$t")
        echo "fuzz $t: CRASH after ${execs:-?} executions, ${cov:-cov: ?}; input in $art/"
        grep -m1 -A12 -E 'ERROR: |runtime error|deadly signal' "$log"
    else
        echo "fuzz $t: ${execs:-?} executions in ${secs}s, ${cov:-cov: ?}, no crash"
    fi
    if [ "${FUZZ_MERGE:-0}" = 1 ] && [ "$rc" -eq 0 ]; then
        "$bin" -merge=1 -use_counters=0 -max_len=4096 "$corpus" "$scratch/$t" >/dev/null 2>&1
    fi
done
echo "fuzz: $# targets, ${#crashed[@]} crashed${crashed[*]:+ (${crashed[*]})}"
[ ${#crashed[@]} -eq 0 ]
