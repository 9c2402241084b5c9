#!/usr/bin/env bash
# `make run`: runs streamio in the foreground with the environment it is given. When none of
# REDIS_URL, REDIS_CLUSTER_NODES and REDIS_SENTINELS is set, no Redis answers at
# REDIS_HOST:REDIS_PORT (default 127.0.0.1:6379) and that address is local, a private
# redis-server is started on a free loopback port for this run and stopped afterwards. With one
# of those set, the Redis is the user's: streamio is started as it is and says itself what it
# cannot reach.
# SIGTERM/SIGINT are passed to streamio, which drains and exits 0; the private redis-server is
# stopped only after that. The /debug console is on
# (STREAMIO_DEBUG_PAGE=1) unless the environment says otherwise; the service unit never sets it.
set -u
bin=$1
host=${REDIS_HOST:-127.0.0.1}
port=${REDIS_PORT:-6379}
redis_pid=
workdir=

ping_redis() {
    local auth=()
    [ -n "${REDIS_PASSWORD:-}" ] && auth=(--no-auth-warning -a "$REDIS_PASSWORD")
    [ -n "${REDIS_USERNAME:-}" ] && auth+=(--user "$REDIS_USERNAME")
    timeout 2 redis-cli -h "$1" -p "$2" "${auth[@]}" ping 2>/dev/null | grep -q PONG
}

port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

cleanup() {
    if [ -n "$redis_pid" ]; then
        kill "$redis_pid" 2>/dev/null
        wait "$redis_pid" 2>/dev/null
    fi
    [ -n "$workdir" ] && rm -rf "$workdir"
}
trap cleanup EXIT

configured=
for v in REDIS_URL REDIS_CLUSTER_NODES REDIS_SENTINELS; do
    [ -n "${!v:-}" ] && configured=$v && break
done

if [ -n "$configured" ]; then
    echo "run: $configured is set: using that Redis (no private redis-server)"
elif ! ping_redis "$host" "$port"; then
    case "$host" in
    127.*|localhost|::1) ;;
    *) echo "run: no Redis answers at $host:$port (REDIS_HOST/REDIS_PORT)" >&2; exit 1 ;;
    esac
    p=$((6380 + RANDOM % 1000))
    while ! port_free "$p"; do p=$((p + 1)); done
    workdir=$(mktemp -d)
    # its own session: a terminal's Ctrl-C (SIGINT to the whole foreground group) reaches
    # streamio, which drains while this Redis still answers; cleanup stops it afterwards
    setsid redis-server --bind 127.0.0.1 --port "$p" --dir "$workdir" --save '' --appendonly no \
        ${REDIS_PASSWORD:+--requirepass "$REDIS_PASSWORD"} >"$workdir/redis.log" 2>&1 &
    redis_pid=$!
    for _ in $(seq 50); do ping_redis 127.0.0.1 "$p" && break; sleep 0.1; done
    if ! ping_redis 127.0.0.1 "$p"; then
        echo "run: could not start a private redis-server" >&2
        cat "$workdir/redis.log" >&2
        exit 1
    fi
    export REDIS_HOST=127.0.0.1 REDIS_PORT=$p
    echo "run: no Redis at $host:$port, started a private redis-server on 127.0.0.1:$p (pid $redis_pid)"
fi

http_port=${PORT:-3000}
url=http://127.0.0.1:$http_port
export STREAMIO_DEBUG_PAGE=${STREAMIO_DEBUG_PAGE-1}
echo "run: streamio on $url  (health: $url/health)"
[ "$STREAMIO_DEBUG_PAGE" = 1 ] && echo "run: debug console: $url/debug#chat.user.123"
echo "run: watch: $(dirname "$bin")/streamioctl watch chat.user.123 --url $url"
[ -z "$configured" ] && echo "run: try   redis-cli -p ${REDIS_PORT:-6379} XADD chat.user.123 '*' event user.message data '{\"user_id\":123,\"message\":\"Hello\"}'"

"$bin" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null' TERM INT
wait $pid
status=$?
while kill -0 $pid 2>/dev/null; do
    # wait returns early when a trapped signal arrives: keep waiting for the drain
    wait $pid
    status=$?
done
exit $status
