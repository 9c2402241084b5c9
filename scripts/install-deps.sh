#!/usr/bin/env bash
# Installs what streamio needs on a Debian 12 machine, only what is missing (idempotent).
#   install-deps.sh run   build + run: compiler, libraries, redis-server for the embedded default
#   install-deps.sh test  everything for `make test`: + cmocka, Node.js/npm and the npm clients
#   install-deps.sh fuzz  + clang (libFuzzer) for `make fuzz`
set -euo pipefail
what=${1:-run}
here=$(cd "$(dirname "$0")/.." && pwd)

pkgs=(gcc make pkg-config libc6-dev libuv1-dev libhiredis-dev libwslay-dev libhttp-parser-dev
      libssl-dev zlib1g-dev libjwt-dev redis-server redis-tools)
if [ "$what" = test ]; then
    pkgs+=(libcmocka-dev curl jq python3 python3-socketio python3-requests python3-websocket chromium
           iptables iproute2 util-linux)
    command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
    command -v npm >/dev/null 2>&1 || pkgs+=(npm)
fi
if [ "$what" = fuzz ]; then pkgs+=(clang); fi

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    sudo=
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # the Debian package starts a system redis on 6379 where systemd runs; the tests never use it
fi

if [ "$what" = test ]; then
    dir=$here/tests/integration
    if [ ! -d "$dir/node_modules/socket.io-client" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
        echo "install-deps: npm ci in tests/integration"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
        touch "$dir/node_modules"
    fi
fi
