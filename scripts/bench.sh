#!/usr/bin/env bash
# `make bench`: streamio and the Node anchor side by side, same scenarios, same run.
#
#   scripts/bench.sh [path/to/streamio]
#
# Environment: BENCH_QUICK=1 (default: a few minutes) or 0 (full sizes from issue 7);
# BENCH_SERVERS="streamio node" (either may be left out); BENCH_ANCHOR=<node-seed dir>
# (default ../shared/anchors/node-seed, installed with npm ci in a temp copy, never in place);
# BENCH_SCENARIOS="fanout-max fanout-2000 fanout-4000 idle-latency connect-10k scaling adapter
# adapter-2000 deflate cluster" (any subset, plus connect-100k: see below; cluster: streamio on
# one redis-server then on a 3-master Redis Cluster, scripts/bench-cluster.js, results in
# $BENCH_OUT/cluster.jsonl; cluster-100k, not in the default set: the same with 100,000 streams,
# idle cost, new-stream latency and a paced load, scripts/bench-cluster.js --streams 100000,
# results in $BENCH_OUT/cluster-100k.jsonl); BENCH_OUT=<dir> (default
# build/bench/<UTC time>); BENCH_PERF=1 also records
# `perf record -g` of the server's processes and redis-server while the load runs
# at BENCH_PERF_FREQ Hz (499), call graphs BENCH_PERF_CALLGRAPH (-g; "--call-graph dwarf" also
# unwinds through libc) ($BENCH_OUT/<scenario>-<label>.perf.data; `perf report -i FILE`);
# BENCH_STREAMIO_ENV="NAME=value ..." adds settings to streamio's environment (experiments).
# BENCH_SERVERS may also name "producer": in fanout-2000, fanout-4000 and idle-latency, the bench
# producer alone against the same Redis, no server (its XADDs' own Redis CPU, "redis CPU µs", to
# subtract from each server's; put it last: Redis keeps the notify-keyspace-events a server set).
# BENCH_BASELINE=<path to another streamio binary> runs it too, as server "base", in the same run
# and on the same scenarios (before/after a change; build it from an older commit).
# Redis' INFO commandstats of each run's load window (reset after the warm-up) is saved beside the
# results and summed into them (redis_cmds, redis_cmd_us_per_entry; redis_reader_cmd_us_per_entry
# leaves out the producer's XADD: what the server's own commands cost Redis per entry).
# Starts its own redis-server and every server on free loopback ports, one at a time; the load
# generator and producer (bench/, built by `make bench`) stop by themselves; everything started
# here is stopped here, by pid. Results: $BENCH_OUT/results.jsonl + report.txt (also printed),
# and one chart per scenario, $BENCH_OUT/<scenario>.svg (bench/charts.js, gnuplot).
#
# adapter, adapter-2000: 2 workers, fan-out at full speed or paced at 2000 entries/s, streamio with
# SOCKETIO_REDIS_ADAPTER false, true and sharded against Node's cluster (which needs the adapter):
# the adapter's cost per delivery. The full-speed one sends BENCH_ADAPTER_N entries (quick 200,000,
# full 400,000: 2 and 4 million deliveries, several seconds each, so CPU per delivery is stable;
# Node, ~25x slower per delivery, a tenth of them). The first run of a series tends to be the
# slowest and the box drifts, so `adapter` is fair to every mode: one warm-up run (round 0, not
# reported), then BENCH_ADAPTER_ROUNDS rounds (quick 3, full 5), each running every streamio
# binary (streamio, base) in every mode, a mode's binaries side by side; round k starts
# (k-1)/rounds of the way along the list (with 3 rounds and 3 modes: off, classic, sharded
# first in turn). The report gives each label's median over the rounds (lost and duplicates:
# the worst round's), each round's CPU per delivery, and per binary the ratio of the medians
# and the median of the ratios taken inside each round. Round k's files are
# $BENCH_OUT/adapter-<label>.r<k>.*. Node runs once, after them. adapter-2000 runs once each.
# deflate: 1,000 clients in 100 rooms, entries with a 4 KB JSON data field at 500/s (issue 16 §5),
# every client offering permessage-deflate as npm ws does: streamio with
# SOCKETIO_PER_MESSAGE_DEFLATE=true (one compressed frame per entry, shared) and without it, Node
# with socket.io's perMessageDeflate (threshold 1024; bench/node-deflate.js, preloaded: the anchor
# has no setting for it), which compresses per socket. Reports CPU and bytes read per delivery.
# connect-100k (not in the default set; BENCH_100K_CLIENTS, default 100000): that many idle
# WebSockets at once, from BENCH_100K_LOADGENS load generators (each from its own loopback
# address 127.0.0.2, .3, ...: one address has ~28k ephemeral ports) against BENCH_100K_WORKERS
# workers (each process may hold `ulimit -Hn` descriptors; the soft limit is raised to it here;
# default: 80 % of that per worker, as a full worker leaves the rest to its siblings).
# Reports handshakes/s, RSS in total and per connection, idle CPU over BENCH_100K_IDLE_S
# seconds (a ping round at the default 25 s interval), and the time one entry takes to reach
# every client of the one room they all joined.
# soak (not in the default set; issue 18): BENCH_SOAK_CLIENTS (10000) WebSockets in 100 rooms on
# 2 workers, fan-out paced at BENCH_SOAK_RATE entries/s (100) for BENCH_SOAK_S seconds (600).
# Every BENCH_SOAK_EVERY_S (10) s it samples the RSS and the open descriptors of every process of
# the server (master and workers); the verdict: every sample after BENCH_SOAK_SETTLE_S (60) of
# fan-out within ±2 % of the first one, and every delivery counted exactly (0 lost, 0 twice).
# Samples in $BENCH_OUT/soak-<label>.samples ("<s> <rss KB> <fds> <processes>").
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(realpath "${1:-$ROOT/build/release/streamio}")
TOOLS=$(dirname "$BIN")/bench
QUICK=${BENCH_QUICK:-1}
SERVERS=${BENCH_SERVERS:-streamio node}
BASELINE=${BENCH_BASELINE:+$(realpath "$BENCH_BASELINE")}
[ -z "$BASELINE" ] || SERVERS="streamio base ${SERVERS/streamio/}"
SCENARIOS=${BENCH_SCENARIOS:-fanout-max fanout-2000 fanout-4000 idle-latency connect-10k scaling adapter adapter-2000 deflate cluster}
ANCHOR=${BENCH_ANCHOR:-$ROOT/../shared/anchors/node-seed}
OUT=${BENCH_OUT:-$ROOT/build/bench/$(date -u +%Y%m%dT%H%M%SZ)}

for t in "$BIN" ${BASELINE:+"$BASELINE"} "$TOOLS/loadgen" "$TOOLS/producer" "$TOOLS/floor" \
    "$TOOLS/connfloor"; do
    [ -x "$t" ] || { echo "bench: $t missing (run make bench)" >&2; exit 2; }
done
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
WORK=$(mktemp -d /tmp/streamio-bench.XXXXXX)
REDIS_PID=
SERVER_PID=
LG_PIDS=()
# every process started here (servers, load generators) may use all the descriptors it is allowed
FD_HARD=$(ulimit -Hn)
ulimit -Sn "$FD_HARD"

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
    local p
    for p in "${LG_PIDS[@]}"; do stop_pid "$p" 2; done
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
# RUN_NODE_ENV: NAME=value words for the Node anchor's environment (experiments, preloads).
start_server() { # name workers [NAME=value ... for streamio]
    local name=$1 workers=$2 i
    shift 2
    SERVER_PORT=$(free_port)
    rcli FLUSHALL
    local common=(PATH="$PATH" HOME="$WORK" REDIS_HOST=127.0.0.1 REDIS_PORT="$REDIS_PORT"
        HOST=127.0.0.1 PORT="$SERVER_PORT" STREAM_PATTERN='bench.*' DISCOVERY_INTERVAL=500
        LOG_LEVEL=warn)
    if [ "$name" = streamio ] || [ "$name" = base ]; then
        local bin=$BIN
        [ "$name" = base ] && bin=$BASELINE
        # shellcheck disable=SC2086 # BENCH_STREAMIO_ENV is a list of NAME=value words
        env -i "${common[@]}" CLUSTER_WORKERS="$workers" ${BENCH_STREAMIO_ENV:-} "$@" "$bin" \
            >"$WORK/server.log" 2>&1 &
    elif [ "$workers" -gt 1 ]; then
        # shellcheck disable=SC2086 # RUN_NODE_ENV is a list of NAME=value words
        (cd "$ANCHOR_RUN" && exec env -i "${common[@]}" CLUSTER_ENABLED=true \
            CLUSTER_WORKERS="$workers" SOCKETIO_REDIS_ADAPTER=true ${RUN_NODE_ENV:-} node server.js) \
            >"$WORK/server.log" 2>&1 &
    else
        # shellcheck disable=SC2086
        (cd "$ANCHOR_RUN" && exec env -i "${common[@]}" CLUSTER_ENABLED=false ${RUN_NODE_ENV:-} \
            node server.js) >"$WORK/server.log" 2>&1 &
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

# scenario server workers loadgen-args... (producer command given with --exec); RUN_ENV (streamio
# settings, NAME=value words) and RUN_TAG (label suffix) vary one server's configuration.
run_one() {
    local scen=$1 name=$2 workers=$3 rooms=$4
    shift 4
    local label="$name"
    [ "$workers" -gt 1 ] && label="$name-w$workers"
    label+=${RUN_TAG:-}
    # RUN_ROUND (rounds of the adapter scenario): kept in the result, and in the files' names
    local file=$label${RUN_ROUND:+.r$RUN_ROUND}
    log "--- $scen: $label${RUN_ROUND:+, round $RUN_ROUND}"
    # shellcheck disable=SC2086 # RUN_ENV is a list of NAME=value words
    if ! start_server "$name" "$workers" ${RUN_ENV:-}; then
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
    local line perf_pid= stats=$OUT/$scen-$file.commandstats
    rcli CONFIG RESETSTAT
    if [ "${BENCH_PERF:-0}" = 1 ]; then
        # the server and its workers (children by parent pid), and Redis
        local pids
        pids=$( (echo "$SERVER_PID"; pgrep -P "$SERVER_PID" || true; echo "$REDIS_PID") | paste -sd,)
        perf record ${BENCH_PERF_CALLGRAPH:--g} -F "${BENCH_PERF_FREQ:-499}" -p "$pids" -o "$OUT/$scen-$file.perf.data" >/dev/null 2>&1 &
        perf_pid=$!
    fi
    line=$("$TOOLS/loadgen" --port "$SERVER_PORT" --server-pid "$SERVER_PID" \
        --redis-pid "$REDIS_PID" --rooms "$rooms" --label "$label" \
        --lat-out "$OUT/$scen-$file.lat" "$@" || true)
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
    fi
    redis-cli -p "$REDIS_PORT" INFO commandstats | tr -d '\r' >"$stats"
    # the bytes Redis read and wrote over the same window (RESETSTAT zeroes them too)
    local net_in net_out
    net_in=$(redis-cli -p "$REDIS_PORT" INFO stats | tr -d '\r' | sed -n 's/^total_net_input_bytes://p')
    net_out=$(redis-cli -p "$REDIS_PORT" INFO stats | tr -d '\r' | sed -n 's/^total_net_output_bytes://p')
    [ -n "$line" ] || line="{\"label\":\"$label\",\"error\":\"loadgen failed\"}"
    # cmdstat_<name>:calls=N,usec=N,... -> {"<name>":{"calls":N,"usec":N},...}
    local cmds
    cmds=$(awk -F'[:,=]' '/^cmdstat_/ { sub(/^cmdstat_/, "", $1)
        printf "%s\"%s\":{\"calls\":%s,\"usec\":%s}", sep, $1, $3, $5; sep = "," }' "$stats")
    echo "$line" | jq -c --arg s "$scen" --argjson w "$workers" --arg srv "$name" \
        --argjson cmds "{$cmds}" --argjson nin "${net_in:-0}" --argjson nout "${net_out:-0}" \
        --argjson round "${RUN_ROUND:-null}" \
        '. + {scenario:$s, server:$srv, workers:$w, redis_cmds:$cmds, redis_net_in:$nin,
              redis_net_out:$nout}
         | if $round != null then . + {round:$round} else . end
         | ([$cmds[].usec] | add // 0) as $u
         | ([$cmds | to_entries[] | select(.key != "xadd" and .key != "config|resetstat"
              and .key != "select") | .value.usec] | add // 0) as $r
         | if (.entries // 0) > 0 then . + {redis_cmd_us_per_entry: ($u / .entries),
             redis_reader_cmd_us_per_entry: ($r / .entries),
             redis_in_bytes_per_entry: ($nin / .entries),
             redis_out_bytes_per_entry: ($nout / .entries)} else . end' \
        >>"$RESULTS"
    stop_pid "$SERVER_PID"
    SERVER_PID=
    cp "$WORK/server.log" "$OUT/$scen-$file.server.log"
}

# "<cpu µs> <rss KB>" of a process and its direct children (a server's master and workers)
tree_stat() {
    local p cpu=0 rss=0 t r
    for p in "$1" $(pgrep -P "$1" || true); do
        t=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null) || continue
        r=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null) || continue
        cpu=$((cpu + t)) rss=$((rss + ${r:-0}))
    done
    echo "$((cpu * 1000000 / $(getconf CLK_TCK))) $rss"
}

# The producer alone (no server): Redis' CPU for its XADDs over the same load.
run_producer_only() { # scenario rooms count rate
    local scen=$1 rooms=$2 n=$3 rate=$4 before after flags
    log "--- $scen: producer only"
    rcli FLUSHALL
    flags=$(redis-cli -p "$REDIS_PORT" CONFIG GET notify-keyspace-events | tail -1)
    before=$(tree_stat "$REDIS_PID")
    "$TOOLS/producer" --port "$REDIS_PORT" --rooms "$rooms" --count "$n" --rate "$rate" >&2 ||
        log "the producer failed"
    after=$(tree_stat "$REDIS_PID")
    jq -nc --arg s "$scen" --arg f "$flags" --argjson n "$n" \
        --argjson cpu "$((${after% *} - ${before% *}))" \
        '{scenario:$s, label:"producer", server:"producer", entries:$n, redis_cpu_us:$cpu,
          notify_keyspace_events:$f}' >>"$RESULTS"
}

# connect-100k for one server: see the header.
run_100k() {
    local name=$1 clients=${BENCH_100K_CLIENTS:-100000} i n
    local per_lg=$((FD_HARD - 1000))
    [ "$per_lg" -gt 20000 ] && per_lg=20000
    local lgs=${BENCH_100K_LOADGENS:-$(((clients + per_lg - 1) / per_lg))}
    # a full worker leaves new connections to the others (worker/net/acceptor): 80 % each
    local workers=${BENCH_100K_WORKERS:-$(((clients * 5 + FD_HARD * 4 - 1) / (FD_HARD * 4)))}
    [ "$workers" -lt 2 ] && workers=2
    local label="$name-w$workers" scen=connect-100k
    log "--- $scen: $label, $clients clients from $lgs load generators, fd limit $FD_HARD"
    if [ $(((clients + lgs - 1) / lgs)) -gt $((FD_HARD - 100)) ]; then
        log "$scen: $((clients / lgs)) clients per load generator exceed the fd limit $FD_HARD"
        echo "{\"scenario\":\"$scen\",\"label\":\"$label\",\"error\":\"fd limit\"}" >>"$RESULTS"
        return 0
    fi
    if ! start_server "$name" "$workers"; then
        echo "{\"scenario\":\"$scen\",\"label\":\"$label\",\"error\":\"server did not start\"}" \
            >>"$RESULTS"
        stop_pid "$SERVER_PID"; SERVER_PID=
        return 0
    fi
    [ "$workers" -gt 1 ] && sleep 1
    "$TOOLS/producer" --port "$REDIS_PORT" --rooms 1 --warm --timeout 30 ||
        log "$label never consumed the warm-up entry"
    local before after idle0 idle1 t0 t1 go=$WORK/go.$name
    rm -f "$go" "$WORK"/ready.* "$WORK"/lg.*.json
    read -r _ before_rss <<<"$(tree_stat "$SERVER_PID")"
    LG_PIDS=()
    for ((i = 0; i < lgs; i++)); do
        n=$((clients / lgs + (i < clients % lgs ? 1 : 0)))
        local exec=()
        [ "$i" = 0 ] && exec=(--exec "$(prod --rooms 1 --count 1 --rate 0)")
        "$TOOLS/loadgen" --port "$SERVER_PORT" --server-pid "$SERVER_PID" --clients "$n" --rooms 1 \
            --entries 1 --bind "127.0.0.$((i + 2))" --parallel "$CONN_PAR" --hold-ms 200 \
            --idle-ms 20000 --timeout 900 --label "$label" --ready-file "$WORK/ready.$i" \
            --go-file "$go" "${exec[@]}" >"$WORK/lg.$i.json" 2>"$WORK/lg.$i.log" &
        LG_PIDS+=($!)
    done
    t0=$(date +%s)
    for ((i = 0; i < lgs; i++)); do
        while [ ! -e "$WORK/ready.$i" ] && kill -0 "${LG_PIDS[$i]}" 2>/dev/null &&
            [ $(($(date +%s) - t0)) -lt 900 ]; do sleep 0.2; done
    done
    read -r idle0 after_rss <<<"$(tree_stat "$SERVER_PID")"
    sleep "${BENCH_100K_IDLE_S:-30}"
    read -r idle1 _ <<<"$(tree_stat "$SERVER_PID")"
    t1=${BENCH_100K_IDLE_S:-30}
    touch "$go"
    for i in "${!LG_PIDS[@]}"; do wait "${LG_PIDS[$i]}" 2>/dev/null || true; done
    LG_PIDS=()
    cat "$WORK"/lg.*.log >&2 || true
    # one result from the load generators' own, and the server's figures measured here
    cat "$WORK"/lg.*.json | jq -s -c --arg s "$scen" --arg srv "$name" --argjson w "$workers" \
        --argjson lgs "$lgs" --argjson rb "$before_rss" --argjson ra "$after_rss" \
        --argjson ic "$((idle1 - idle0))" --argjson is "$t1" --argjson fd "$FD_HARD" '
        (map(.connected) | add) as $c |
        {scenario:$s, server:$srv, workers:$w, label:.[0].label, mode:"connect100k",
         clients:(map(.clients) | add), rooms:1, loadgens:$lgs, fd_limit:$fd, connected:$c,
         failed:(map(.failed) | add),
         handshakes_per_s:(if (map(.connect_s) | max) > 0 then $c / (map(.connect_s) | max) else 0 end),
         server_rss_kb_before:$rb, server_rss_kb_after:$ra,
         rss_bytes_per_conn:(if $c > 0 then ($ra - $rb) * 1024 / $c else null end),
         idle_cpu_pct:($ic / $is / 10000), idle_cpu_us_per_conn_s:(if $c > 0 then $ic / $is / $c else null end),
         received:(map(.received) | add), lost:(map(.lost) | add), dups:(map(.dups) | add),
         broadcast_ms:(map(.lat_max_ms) | max), broadcast_p50_ms:(map(.lat_p50_ms) | max)}' \
        >>"$RESULTS" || log "$scen: no results from the load generators"
    for i in "$WORK"/lg.*.log; do cp "$i" "$OUT/$scen-$label.$(basename "$i")"; done
    stop_pid "$SERVER_PID" 30
    SERVER_PID=
    cp "$WORK/server.log" "$OUT/$scen-$label.server.log"
}

# "<rss KB> <fds> <processes>" of a process and its direct children
tree_mem() {
    local p rss=0 fds=0 n=0 r f
    for p in "$1" $(pgrep -P "$1" || true); do
        r=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null) || continue
        f=$(find "/proc/$p/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l) || continue
        rss=$((rss + ${r:-0})) fds=$((fds + f)) n=$((n + 1))
    done
    echo "$rss $fds $n"
}

# soak for one server: see the header.
run_soak() {
    local name=$1 clients=${BENCH_SOAK_CLIENTS:-10000} rate=${BENCH_SOAK_RATE:-100}
    local secs=${BENCH_SOAK_S:-600} every=${BENCH_SOAK_EVERY_S:-10} settle=${BENCH_SOAK_SETTLE_S:-60}
    local scen=soak label="$name-w2" rooms=100 n t0 lg sampler samples
    n=$((rate * secs))
    samples=$OUT/$scen-$label.samples
    log "--- $scen: $label, $clients clients, $n entries at $rate/s (${secs} s)"
    if ! start_server "$name" 2; then
        echo "{\"scenario\":\"$scen\",\"label\":\"$label\",\"error\":\"server did not start\"}" \
            >>"$RESULTS"
        stop_pid "$SERVER_PID"; SERVER_PID=
        return 0
    fi
    sleep 1
    "$TOOLS/producer" --port "$REDIS_PORT" --rooms "$rooms" --warm --timeout 30 ||
        log "$label never consumed the warm-up entries"
    rm -f "$WORK/soak.ready"
    "$TOOLS/loadgen" --port "$SERVER_PORT" --server-pid "$SERVER_PID" --redis-pid "$REDIS_PID" \
        --clients "$clients" --rooms "$rooms" --entries "$n" --parallel "$CONN_PAR" \
        --timeout $((secs + 600)) --label "$label" --ready-file "$WORK/soak.ready" \
        --exec "$(prod --rooms "$rooms" --count "$n" --rate "$rate" --timeout $((secs + 60)))" \
        >"$WORK/soak.json" &
    lg=$!
    LG_PIDS=("$lg")
    t0=$(date +%s)
    while [ ! -e "$WORK/soak.ready" ] && kill -0 "$lg" 2>/dev/null &&
        [ $(($(date +%s) - t0)) -lt 600 ]; do sleep 0.2; done
    # the fan-out runs from here: one sample now, then one every $every s while the load runs
    (
        s=0
        while kill -0 "$lg" 2>/dev/null && [ "$s" -le $((secs + 600)) ]; do
            echo "$s $(tree_mem "$SERVER_PID")"
            sleep "$every"
            s=$((s + every))
        done
    ) >"$samples" &
    sampler=$!
    wait "$lg" 2>/dev/null || true
    LG_PIDS=()
    wait "$sampler" 2>/dev/null || true
    [ -s "$WORK/soak.json" ] || echo "{\"label\":\"$label\",\"error\":\"loadgen failed\"}" >"$WORK/soak.json"
    # flat: each sample from the settling time to the producer's end within ±2 % of the first
    local flat
    flat=$(awk -v settle="$settle" -v end="$secs" '$1 >= settle && $1 <= end && $4 > 0 {
            if (!n++) { r0 = $2; f0 = $3 }
            dr = ($2 - r0) / r0 * 100; df = ($3 - f0) / f0 * 100
            if (dr > rmax) rmax = dr; if (dr < rmin) rmin = dr
            if (df > fmax) fmax = df; if (df < fmin) fmin = df
            r1 = $2; f1 = $3 }
        END { printf "{\"samples\":%d,\"rss_kb_first\":%d,\"rss_kb_last\":%d,\"rss_pct_min\":%.2f,", n, r0, r1, rmin
              printf "\"rss_pct_max\":%.2f,\"fds_first\":%d,\"fds_last\":%d,\"fds_pct_min\":%.2f,", rmax, f0, f1, fmin
              printf "\"fds_pct_max\":%.2f}", fmax }' "$samples")
    jq -c --arg s "$scen" --arg srv "$name" --argjson flat "$flat" --argjson secs "$secs" \
        --argjson rate "$rate" '. + {scenario:$s, server:$srv, workers:2, soak_s:$secs, soak_rate:$rate}
        + {soak:$flat}
        | .soak.flat = (.soak.samples > 0 and ([.soak.rss_pct_min, .soak.fds_pct_min] | min) >= -2
                        and ([.soak.rss_pct_max, .soak.fds_pct_max] | max) <= 2)
        | .soak.exact = ((.lost // 1) == 0 and (.dups // 1) == 0 and (.received // 0) == (.expected // -1))
        | .soak.verdict = (if .soak.flat and .soak.exact then "pass" else "fail" end)' \
        "$WORK/soak.json" >>"$RESULTS"
    tail -1 "$RESULTS" | jq -r '"bench: soak \(.label): \(.soak.verdict) — RSS \(.soak.rss_kb_first) -> \(.soak.rss_kb_last) KB (\(.soak.rss_pct_min)..\(.soak.rss_pct_max) %), fds \(.soak.fds_first) -> \(.soak.fds_last) (\(.soak.fds_pct_min)..\(.soak.fds_pct_max) %), \(.soak.samples) samples; deliveries \(.received)/\(.expected), lost \(.lost), twice \(.dups)"' >&2
    stop_pid "$SERVER_PID" 30
    SERVER_PID=
    cp "$WORK/server.log" "$OUT/$scen-$label.server.log"
}

# ADAPTER_N: the full-speed adapter scenario's entries, enough for a fan-out of several seconds
# (~0.5 M deliveries/s here), so CPU per delivery is not swamped by the start and the end
if [ "$QUICK" = 1 ]; then
    PACED=6000 IDLE=500 CONN_PAR=256 DEFLATE_N=2000 ADAPTER_N=${BENCH_ADAPTER_N:-200000}
    ADAPTER_ROUNDS=${BENCH_ADAPTER_ROUNDS:-3}
else
    PACED=20000 IDLE=3000 CONN_PAR=512 DEFLATE_N=10000 ADAPTER_N=${BENCH_ADAPTER_N:-400000}
    ADAPTER_ROUNDS=${BENCH_ADAPTER_ROUNDS:-5}
fi
prod() { echo "$TOOLS/producer --port $REDIS_PORT $*"; }

# One adapter run of a streamio binary: server name, SOCKETIO_REDIS_ADAPTER, entries, rate.
run_adapter() {
    RUN_ENV="SOCKETIO_REDIS_ADAPTER=$2" RUN_TAG=
    [ "$1" != node ] && RUN_TAG="-adapter-$2"
    run_one "$scen" "$1" 2 100 --clients 1000 --entries "$3" --timeout 300 \
        --exec "$(prod --rooms 100 --count "$3" --rate "$4" --timeout 300)"
    RUN_ENV='' RUN_TAG=''
}

# The full-speed adapter scenario for every streamio binary of SERVERS: a warm-up run (round 0),
# then ADAPTER_ROUNDS rounds over every (binary, mode), the same mode's binaries side by side,
# each round's order rotated so that every mode leads in turn (see the header).
run_adapter_rounds() {
    local srvs=() modes=() srv am k i j n
    for am in false true sharded; do
        for srv in $SERVERS; do
            [ "$srv" = node ] || [ "$srv" = producer ] || { srvs+=("$srv"); modes+=("$am"); }
        done
    done
    n=${#srvs[@]}
    [ "$n" -gt 0 ] || return 0
    RUN_ROUND=0
    run_adapter "${srvs[0]}" "${modes[0]}" "$ADAPTER_N" 0
    for ((k = 1; k <= ADAPTER_ROUNDS; k++)); do
        RUN_ROUND=$k
        for ((i = 0; i < n; i++)); do
            j=$(((i + (k - 1) * n / ADAPTER_ROUNDS) % n))
            run_adapter "${srvs[$j]}" "${modes[$j]}" "$ADAPTER_N" 0
        done
    done
    RUN_ROUND=''
}

log "mode: $([ "$QUICK" = 1 ] && echo quick || echo full); results in $OUT"
# The floor under CPU per delivery on this box now: one write of one small frame to each of 10
# loopback sockets, paced like the fan-out scenarios; once with a write() each, once as one
# io_uring submit per round (how streamio's transport writes where the kernel allows it).
for rate in 2000 4000; do
    for how in "" --uring; do
        "$TOOLS/floor" --sockets 10 --bytes 150 --rate "$rate" --seconds 2 $how |
            jq -c '. + {scenario:"floor"}' >>"$RESULTS" || log "floor${how:+ $how} at $rate/s failed"
    done
done
# The floor under connect-10k: the same handshake bytes between two minimal C processes, nothing
# but the kernel's work and the fewest system calls (bench/connfloor.c).
if [[ " $SCENARIOS " == *" connect-10k "* ]]; then
    "$TOOLS/connfloor" --clients 10000 --parallel "$CONN_PAR" |
        jq -c '. + {scenario:"connfloor"}' >>"$RESULTS" || log "connfloor failed"
fi
for scen in $SCENARIOS; do
    [ "$scen" = adapter ] && run_adapter_rounds
    for srv in $SERVERS; do
        if [ "$srv" = producer ]; then
            case $scen in
            fanout-2000 | fanout-4000)
                rate=${scen#fanout-}
                n=$PACED; [ "$rate" = 4000 ] && n=$((PACED * 2))
                [ "$QUICK" = 1 ] || n=20000
                run_producer_only "$scen" 100 "$n" "$rate" ;;
            idle-latency) run_producer_only "$scen" 1 "$IDLE" 100 ;;
            esac
            continue
        fi
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
            run_100k "$srv" ;;
        soak)
            run_soak "$srv" ;;
        adapter)
            # one server, 2 workers: what sharing with other servers costs each delivery, as fast
            # as possible; streamio's binaries ran in rounds above. Node spends ~25x more per
            # delivery: a tenth of the entries lasts as long.
            [ "$srv" = node ] && run_adapter node true $((ADAPTER_N / 10)) 0 ;;
        adapter-2000)
            # the same, paced
            if [ "$srv" = node ]; then
                run_adapter node true "$PACED" 2000
            else
                for am in false true sharded; do run_adapter "$srv" "$am" "$PACED" 2000; done
            fi ;;
        deflate)
            if [ "$srv" != node ]; then
                for z in true false; do
                    RUN_ENV="SOCKETIO_PER_MESSAGE_DEFLATE=$z" RUN_TAG=-deflate-$z
                    run_one "$scen" "$srv" 1 100 --clients 1000 --entries "$DEFLATE_N" \
                        --timeout 120 --deflate \
                        --exec "$(prod --rooms 100 --count "$DEFLATE_N" --rate 500 --data-bytes 4096)"
                done
            else
                RUN_NODE_ENV="NODE_OPTIONS=--require=$ROOT/bench/node-deflate.js" RUN_TAG=-deflate
                run_one "$scen" "$srv" 1 100 --clients 1000 --entries "$DEFLATE_N" --timeout 120 \
                    --deflate \
                    --exec "$(prod --rooms 100 --count "$DEFLATE_N" --rate 500 --data-bytes 4096)"
            fi
            RUN_ENV= RUN_TAG= RUN_NODE_ENV= ;;
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
        cluster-100k)
            [ "$srv" = streamio ] || continue
            log "--- cluster-100k: 100,000 streams on one Redis, then on a 3-master Redis Cluster"
            node "$ROOT/scripts/bench-cluster.js" --streamio "$BIN" --streams 100000 \
                >"$OUT/cluster-100k.jsonl" || log "the cluster-100k scenario failed" ;;
        *) log "unknown scenario $scen" ;;
        esac
    done
done

node "$ROOT/bench/report.js" "$RESULTS" "$0 $*" "BENCH_QUICK=$QUICK" | tee "$OUT/report.txt"
node "$ROOT/bench/charts.js" "$RESULTS" "$OUT" || log "charts failed (is gnuplot installed?)"
