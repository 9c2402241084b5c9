#!/usr/bin/env bash
# Runs the black-box integration suite (tests/integration/*.test.js, Node's built-in test runner)
# against the streamio binary given as $1. Installs the suite's npm dependencies with `npm ci`
# when tests/integration/node_modules lacks them. Needs node >= 18, npm and redis-server.
# Exit status: the test runner's (124 when the overall 900 s limit was hit).
set -u

if [ $# -ne 1 ]; then
    echo "usage: $0 path/to/streamio" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$1
case $bin in
/*) ;;
*) bin=$PWD/$bin ;;
esac
if [ ! -x "$bin" ]; then
    echo "run-integration: $bin is not an executable file" >&2
    exit 2
fi
for tool in node npm redis-server; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "run-integration: $tool not found in PATH" >&2
        exit 2
    fi
done
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
    echo "run-integration: node >= 18 needed, found $(node --version)" >&2
    exit 2
fi

suite=$root/tests/integration
if [ ! -d "$suite/node_modules/socket.io-client" ] || [ ! -d "$suite/node_modules/@socket.io/redis-adapter" ]; then
    (cd "$suite" && npm ci --no-audit --no-fund) || {
        echo "run-integration: npm ci in $suite failed" >&2
        exit 2
    }
fi

export STREAMIO_BIN=$bin
cd "$root" || exit 2
timeout --kill-after=10 900 node --test --test-concurrency=1 "$suite"/*.test.js
status=$?
[ "$status" -eq 124 ] && echo "run-integration: overall time limit (900 s) reached" >&2
exit "$status"
