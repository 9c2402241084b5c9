#!/usr/bin/env bash
# Installs what streamio needs on a Debian 12 machine, only what is missing (idempotent).
#   install-deps.sh run   build + run: compiler, libraries, redis-server for the embedded default
#   install-deps.sh test  everything for `make test`: + cmocka, Node.js/npm and the npm clients
#   install-deps.sh bench everything for `make bench`: test's set + gnuplot (the charts)
#   install-deps.sh fuzz  + clang (libFuzzer) for `make fuzz`
#   install-deps.sh deb   + debhelper and lintian for `make deb`
set -euo pipefail
what=${1:-run}
here=$(cd "$(dirname "$0")/.." && pwd)

pkgs=(gcc make pkg-config libc6-dev libuv1-dev libhiredis-dev libwslay-dev libhttp-parser-dev
      libssl-dev zlib1g-dev libjwt-dev libedit-dev liburing-dev redis-server redis-tools)
# dpkg-buildpackage requires build-essential besides the Build-Depends of contrib/debian/control
debpkgs=(build-essential debhelper dpkg-dev fakeroot lintian)
if [ "$what" = deb ]; then pkgs+=("${debpkgs[@]}"); fi
if [ "$what" = bench ]; then pkgs+=(gnuplot-nox); fi
if [ "$what" = test ] || [ "$what" = bench ]; then
    # prometheus for promtool and nginx for seed 003's load balancer (their daemons are never
    # started by the tests); iptables,
    # iproute2 and util-linux (unshare) for the fault tests' network namespaces
    pkgs+=(libcmocka-dev curl jq python3 python3-socketio python3-redis python3-requests python3-websocket
           chromium redis-sentinel openssl prometheus nginx iptables iproute2 util-linux "${debpkgs[@]}")
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
    # Packages such as redis-server and prometheus start their daemons on install; the tests start
    # their own on free loopback ports and never need those, so keep them from starting (the
    # standard policy-rc.d veto) unless the machine already has a policy of its own.
    policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\n# install-deps.sh: no daemon starts during this install\nexit 101\n' |
            $sudo tee "$policy" >/dev/null
        $sudo chmod 0755 "$policy"
    fi
    rc=0
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
    [ -z "$policy" ] || $sudo rm -f "$policy"
    [ "$rc" -eq 0 ] || exit "$rc"
fi

if [ "$what" = test ] || [ "$what" = bench ]; then
    dir=$here/tests/integration
    if [ ! -d "$dir/node_modules/socket.io-client" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
        echo "install-deps: npm ci in tests/integration"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
        touch "$dir/node_modules"
    fi
fi
