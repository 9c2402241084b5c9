#!/usr/bin/env bash
# `make bench`: streamio and the Node anchor side by side, same scenarios, same run.
#
#   scripts/bench.sh [path/to/streamio]
#
# Environment: BENCH_QUICK=1 (default: a few minutes) or 0 (full sizes from issue 7);
# BENCH_SERVERS="streamio node" (either may be left out); BENCH_ANCHOR=<node-seed dir>
# (default ../shared/anchors/node-seed, installed with npm ci in a temp copy, never in place);
# BENCH_SCENARIOS="fanout-max fanout-2000 fanout-4000 idle-latency connect-10k scaling cluster"
# (any subset; cluster: streamio on one redis-server then on a 3-master Redis Cluster,
# scripts/bench-cluster.js, results in $BENCH_OUT/cluster.jsonl); BENCH_OUT=<dir> (default build/bench/<UTC time>); BENCH_PERF=1 also records
# `perf record -g` of the server's processes and redis-server while the load runs
# at BENCH_PERF_FREQ Hz (499), call graphs BENCH_PERF_CALLGRAPH (-g; "--call-graph dwarf" also
# unwinds through libc) ($BENCH_OUT/<scenario>-<label>.perf.data; `perf report -i FILE`);
# BENCH_STREAMIO_ENV="NAME=value ..." adds settings to streamio's environment (experiments).
# BENCH_BASELINE=<path to another streamio binary> runs it too, as server "base", in the same run
# and on the same scenarios (before/after a change; build it from an older commit).
# Redis' INFO commandstats of each run's load window (reset after the warm-up) is saved beside the
# results and summed into them (redis_cmds, redis_cmd_us_per_entry).
# Starts its own redis-server and every server on free loopback ports, one at a time; the load
# generator and producer (bench/, built by `make bench`) stop by themselves; everything started
# here is stopped here, by pid. Results: $BENCH_OUT/results.jsonl + report.txt (also printed).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(realpath "${1:-$ROOT/build/release/streamio}")
TOOLS=$(dirname "$BIN")/bench
QUICK=${BENCH_QUICK:-1}
SERVERS=${BENCH_SERVERS:-streamio node}
BASELINE=${BENCH_BASELINE:+$(realpath "$BENCH_BASELINE")}
[ -z "$BASELINE" ] || SERVERS="streamio base ${SERVERS/streamio/}"
SCENARIOS=${BENCH_SCENARIOS:-fanout-max fanout-2000 fanout-4000 idle-latency connect-10k scaling cluster}
ANCHOR=${BENCH_ANCHOR:-$ROOT/../shared/anchors/node-seed}
OUT=${BENCH_OUT:-$ROOT/build/bench/$(date -u +%Y%m%dT%H%M%SZ)}

for t in "$BIN" ${BASELINE:+"$BASELINE"} "$TOOLS/loadgen" "$TOOLS/producer" "$TOOLS/floor"; do
    [ -x "$t" ] || { echo "bench: $t missing (run make bench)" >&2; exit 2; }
done
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
WORK=$(mktemp -d /tmp/streamio-bench.XXXXXX)
REDIS_PID=
SERVER_PID=

log() { echo "bench: $*" >&2; }

stop_pid() { # pid [grace seconds]
    local pid=$1 grace=${2:-10} i
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    log "pid $pid ignored SIGTERM for ${grace}s, killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    stop_pid "$SERVER_PID"
    stop_pid "$REDIS_PID" 5
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

rcli() { redis-cli -p "$REDIS_PORT" "$@" >/dev/null; }

# --- Redis ---------------------------------------------------------------------------------------
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
    --maxclients 1000 --loglevel warning >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
for _ in $(seq 50); do rcli PING 2>/dev/null && break; sleep 0.1; done
rcli PING || { log "redis-server did not start"; cat "$WORK/redis.log" >&2; exit 1; }

# --- Node anchor (temp copy, npm ci) -------------------------------------------------------------
ANCHOR_RUN=
if [[ " $SERVERS " == *" node "* ]]; then
    [ -f "$ANCHOR/server.js" ] || { log "no Node anchor at $ANCHOR (BENCH_ANCHOR)"; exit 2; }
    ANCHOR_RUN=$WORK/anchor
    mkdir -p "$ANCHOR_RUN"
    cp "$ANCHOR"/server.js "$ANCHOR"/package.json "$ANCHOR"/package-lock.json "$ANCHOR_RUN"/
    log "npm ci of the Node anchor in $ANCHOR_RUN"
    (cd "$ANCHOR_RUN" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

# --- one server at a time ------------------------------------------------------------------------
start_server() { # name workers
    local name=$1 workers=$2 i
    SERVER_PORT=$(free_port)
    rcli FLUSHALL
    local common=(PATH="$PATH" HOME="$WORK" REDIS_HOST=127.0.0.1 REDIS_PORT="$REDIS_PORT"
        HOST=127.0.0.1 PORT="$SERVER_PORT" STREAM_PATTERN='bench.*' DISCOVERY_INTERVAL=500
        LOG_LEVEL=warn)
    if [ "$name" = streamio ] || [ "$name" = base ]; then
        local bin=$BIN
        [ "$name" = base ] && bin=$BASELINE
        # shellcheck disable=SC2086 # BENCH_STREAMIO_ENV is a list of NAME=value words
        env -i "${common[@]}" CLUSTER_WORKERS="$workers" ${BENCH_STREAMIO_ENV:-} "$bin" \
            >"$WORK/server.log" 2>&1 &
    elif [ "$workers" -gt 1 ]; then
        (cd "$ANCHOR_RUN" && exec env -i "${common[@]}" CLUSTER_ENABLED=true \
            CLUSTER_WORKERS="$workers" SOCKETIO_REDIS_ADAPTER=true node server.js) \
            >"$WORK/server.log" 2>&1 &
    else
        (cd "$ANCHOR_RUN" && exec env -i "${common[@]}" CLUSTER_ENABLED=false node server.js) \
            >"$WORK/server.log" 2>&1 &
    fi
    SERVER_PID=$!
    for ((i = 0; i < 200; i++)); do
        curl -sf "http://127.0.0.1:$SERVER_PORT/health" >/dev/null 2>&1 && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    log "$name did not become healthy"; tail -20 "$WORK/server.log" >&2
    return 1
}

# scenario server workers loadgen-args... (producer command given with --exec)
run_one() {
    local scen=$1 name=$2 workers=$3 rooms=$4
    shift 4
    local label="$name"
    [ "$workers" -gt 1 ] && label="$name-w$workers"
    log "--- $scen: $label"
    if ! start_server "$name" "$workers"; then
        echo "{\"scenario\":\"$scen\",\"label\":\"$label\",\"error\":\"server did not start\"}" \
            >>"$RESULTS"
        stop_pid "$SERVER_PID"; SERVER_PID=
        return 0
    fi
    # Node needs its cluster workers up before the pids are sampled.
    [ "$workers" -gt 1 ] && sleep 1
    if ! "$TOOLS/producer" --port "$REDIS_PORT" --rooms "$rooms" --warm --timeout 30; then
        log "$label never consumed the warm-up entries"
    fi
    local line perf_pid= stats=$OUT/$scen-$label.commandstats
    rcli CONFIG RESETSTAT
    if [ "${BENCH_PERF:-0}" = 1 ]; then
        # the server and its workers (children by parent pid), and Redis
        local pids
        pids=$( (echo "$SERVER_PID"; pgrep -P "$SERVER_PID" || true; echo "$REDIS_PID") | paste -sd,)
        perf record ${BENCH_PERF_CALLGRAPH:--g} -F "${BENCH_PERF_FREQ:-499}" -p "$pids" -o "$OUT/$scen-$label.perf.data" >/dev/null 2>&1 &
        perf_pid=$!
    fi
    line=$("$TOOLS/loadgen" --port "$SERVER_PORT" --server-pid "$SERVER_PID" \
        --redis-pid "$REDIS_PID" --rooms "$rooms" --label "$label" "$@" || true)
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
    fi
    redis-cli -p "$REDIS_PORT" INFO commandstats | tr -d '\r' >"$stats"
    [ -n "$line" ] || line="{\"label\":\"$label\",\"error\":\"loadgen failed\"}"
    # cmdstat_<name>:calls=N,usec=N,... -> {"<name>":{"calls":N,"usec":N},...}
    local cmds
    cmds=$(awk -F'[:,=]' '/^cmdstat_/ { sub(/^cmdstat_/, "", $1)
        printf "%s\"%s\":{\"calls\":%s,\"usec\":%s}", sep, $1, $3, $5; sep = "," }' "$stats")
    echo "$line" | jq -c --arg s "$scen" --argjson w "$workers" --arg srv "$name" \
        --argjson cmds "{$cmds}" \
        '. + {scenario:$s, server:$srv, workers:$w, redis_cmds:$cmds}
         | ([$cmds[].usec] | add // 0) as $u
         | if (.entries // 0) > 0 then . + {redis_cmd_us_per_entry: ($u / .entries)} else . end' \
        >>"$RESULTS"
    stop_pid "$SERVER_PID"
    SERVER_PID=
}

if [ "$QUICK" = 1 ]; then
    PACED=6000 IDLE=500 CONN_PAR=256
else
    PACED=20000 IDLE=3000 CONN_PAR=512
fi
prod() { echo "$TOOLS/producer --port $REDIS_PORT $*"; }

log "mode: $([ "$QUICK" = 1 ] && echo quick || echo full); results in $OUT"
# The floor under CPU per delivery on this box now: one write of one small frame to each of 10
# loopback sockets, paced like the fan-out scenarios.
for rate in 2000 4000; do
    "$TOOLS/floor" --sockets 10 --bytes 150 --rate "$rate" --seconds 2 |
        jq -c '. + {scenario:"floor"}' >>"$RESULTS" || log "floor at $rate/s failed"
done
for scen in $SCENARIOS; do
    for srv in $SERVERS; do
        case $scen in
        fanout-max)
            run_one "$scen" "$srv" 1 100 --clients 1000 --entries 20000 --timeout 120 \
                --exec "$(prod --rooms 100 --count 20000 --rate 0)" ;;
        fanout-2000 | fanout-4000)
            rate=${scen#fanout-}
            n=$PACED; [ "$rate" = 4000 ] && n=$((PACED * 2))
            [ "$QUICK" = 1 ] || n=20000
            run_one "$scen" "$srv" 1 100 --clients 1000 --entries "$n" --timeout 120 \
                --exec "$(prod --rooms 100 --count "$n" --rate "$rate")" ;;
        idle-latency)
            run_one "$scen" "$srv" 1 1 --clients 1 --entries "$IDLE" --timeout 120 \
                --exec "$(prod --rooms 1 --count "$IDLE" --rate 100)" ;;
        connect-10k)
            run_one "$scen" "$srv" 1 100 --clients 10000 --mode connect --parallel "$CONN_PAR" \
                --hold-ms 1000 --timeout 120 ;;
        connect-100k)
            log "connect-100k skipped: needs ulimit -n >= 100k for both sides (here $(ulimit -Hn))" \
                "and more than one loopback source address (28k ephemeral ports per address)" ;;
        scaling)
            run_one "$scen" "$srv" 2 100 --clients 1000 --entries 20000 --timeout 120 \
                --exec "$(prod --rooms 100 --count 20000 --rate 0)" ;;
        cluster)
            # streamio only (the anchor has no Redis Cluster support); its own report
            [ "$srv" = streamio ] || continue
            n=20000
            [ "$QUICK" = 1 ] || n=100000
            log "--- cluster: streamio on one Redis, then on a 3-master Redis Cluster"
            node "$ROOT/scripts/bench-cluster.js" --streamio "$BIN" --clients 1000 --rooms 100 \
                --entries "$n" >"$OUT/cluster.jsonl" || log "the cluster scenario failed" ;;
        *) log "unknown scenario $scen" ;;
        esac
    done
done

node "$ROOT/bench/report.js" "$RESULTS" "$0 $*" "BENCH_QUICK=$QUICK" | tee "$OUT/report.txt"
