#!/usr/bin/env bash
# Checks the layer table: every `#include "…"` of a project source may name a header of its own
# folder or of a folder its layer lists below; anything else (upward or sideways) fails, naming the
# file, the line and the rule. Layers form a DAG, so no include cycle can cross folders.
#   scripts/check-layers.sh [ROOT]       check the tree at ROOT (default: the repository)
#   scripts/check-layers.sh --self-test  prove the check fails on an upward and a sideways include
# docs/architecture.md explains the layers; keep the table below and that document in step.
set -euo pipefail

# layer (a folder, or one file)  : the layers it may include besides its own folder
TABLE='
common          :
common/proto    : common
shm             : common common/proto
common/redis    : common common/proto shm
common/bridge   : common common/proto shm common/redis
worker/net      : common common/proto shm common/redis common/bridge
worker/ws       : common common/proto shm common/redis common/bridge worker/net
worker/http     : common common/proto shm common/redis common/bridge worker/net worker/ws
worker/eio      : common common/proto shm common/redis common/bridge worker/net worker/ws worker/http
worker/sio      : common common/proto shm common/redis common/bridge worker/net worker/ws worker/http worker/eio
worker/fanout   : common common/proto shm common/redis common/bridge worker/net worker/ws worker/http worker/eio worker/sio
worker/bridge   : common common/proto shm common/redis common/bridge worker/net worker/ws worker/http worker/eio worker/sio worker/fanout
worker/recovery : common common/proto shm common/redis common/bridge worker/net worker/ws worker/http worker/eio worker/sio worker/fanout
worker/stream   : common common/proto shm common/redis common/bridge worker/net worker/ws worker/http worker/eio worker/sio worker/fanout worker/recovery
worker/cluster  : common common/proto shm common/redis common/bridge worker/net worker/ws worker/http worker/eio worker/sio worker/fanout worker/recovery worker/stream
worker          : common common/proto shm common/redis common/bridge worker/net worker/ws worker/http worker/eio worker/sio worker/fanout worker/bridge worker/recovery worker/stream worker/cluster
master/proc      : common common/proto shm
master/discovery : common common/proto shm common/redis
master/admin     : common common/proto shm common/redis common/bridge
master           : common common/proto shm common/redis common/bridge master/proc master/discovery master/admin
master/main.c    : common common/proto shm common/redis common/bridge master master/proc master/discovery master/admin worker
ctl             : common common/proto
'

check() {
    local root=$1
    (cd "$root" && { find common shm worker master ctl -name '*.[ch]' 2>/dev/null || true; } | sort) |
        while read -r f; do
            { grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$root/$f" || true; } |
                sed 's/^\([0-9]*\):.*"\(.*\)".*/\1 \2/' | sed "s|^|$f |"
        done |
        awk -v table="$TABLE" '
        BEGIN {
            n = split(table, lines, "\n")
            for (i = 1; i <= n; i++) {
                if (lines[i] !~ /:/) continue
                split(lines[i], parts, ":")
                layer = parts[1]; gsub(/[[:space:]]/, "", layer)
                known[layer] = 1
                m = split(parts[2], allow, " ")
                for (j = 1; j <= m; j++) if (allow[j] != "") ok[layer, allow[j]] = 1
            }
            bad = 0
        }
        function dir(p) { return p ~ /\// ? substr(p, 1, match(p, /\/[^\/]*$/) - 1) : "." }
        {
            file = $1; line = $2; inc = $3
            layer = (file in known) ? file : dir(file)
            target = dir(inc)
            if (!(layer in known)) {
                printf "check-layers: %s is in %s, a folder the layer table does not list\n", file, layer
                bad = 1; next
            }
            if (target == dir(file) || target == layer || ok[layer, target]) next
            if (target == "." && inc ~ /\.inc$/) next # generated at build time (build/gen)
            printf "check-layers: %s:%s includes \"%s\": layer %s may not include %s\n", file, line, inc, layer, target
            bad = 1
        }
        END { exit bad }'
}

if [ "${1:-}" = --self-test ]; then
    here=$(cd "$(dirname "$0")/.." && pwd)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    mkdir -p "$tmp/common/proto" "$tmp/worker/net" "$tmp/master"
    printf '#include "common/buf.h"\n' >"$tmp/common/proto/a.c"
    printf '#include "common/proto/a.h"\n' >"$tmp/worker/net/b.c"
    check "$tmp" >/dev/null || { echo "check-layers: self-test: a clean tree failed"; exit 1; }
    printf '#include "worker/net/b.h"\n' >>"$tmp/common/proto/a.c" # upward
    if check "$tmp" >/dev/null; then echo "check-layers: self-test: an upward include passed"; exit 1; fi
    printf '#include "common/proto/a.h"\n' >"$tmp/common/proto/a.c"
    printf '#include "worker/net/b.h"\n' >"$tmp/master/c.c" # sideways
    if check "$tmp" >/dev/null; then echo "check-layers: self-test: a sideways include passed"; exit 1; fi
    echo "check-layers: self-test passed"
    exit 0
fi

root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
if check "$root"; then
    echo "check-layers: every include follows the layer table"
else
    exit 1
fi
