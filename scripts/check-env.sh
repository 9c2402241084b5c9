#!/usr/bin/env bash
# Checks that configuration only comes through the config table: no C source but common/config.c
# calls getenv or secure_getenv (the table, its defaults and its one-line errors are the contract;
# docs/architecture.md). Names the file and the line of every other call.
#   scripts/check-env.sh [ROOT]       check the tree at ROOT (default: the repository)
#   scripts/check-env.sh --self-test  prove the check fails on a getenv outside common/config.c
set -euo pipefail

check() {
    local root=$1
    local hits
    hits=$(cd "$root" && { find . \( -name node_modules -o -name build -o -name .git \) -prune -o \
        -name '*.[ch]' -print | sed 's|^\./||' | grep -vx 'common/config.c' | sort |
        xargs -r grep -nE '(^|[^A-Za-z0-9_])(secure_)?getenv[[:space:]]*\(' || true; })
    if [ -n "$hits" ]; then
        printf '%s\n' "$hits" | sed 's/^/check-env: /; s/$/  (read it through the config table)/'
        return 1
    fi
}

if [ "${1:-}" = --self-test ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    mkdir -p "$tmp/common" "$tmp/worker"
    printf 'const char *v = getenv("PORT");\n' >"$tmp/common/config.c"
    printf 'static const char *getenv_fake(const char *n);\n' >"$tmp/worker/a.c"
    check "$tmp" >/dev/null || { echo "check-env: self-test: a clean tree failed"; exit 1; }
    printf 'const char *v = secure_getenv ("X");\n' >>"$tmp/worker/a.c"
    if check "$tmp" >/dev/null; then echo "check-env: self-test: a secure_getenv passed"; exit 1; fi
    printf 'int x = !getenv("X");\n' >"$tmp/worker/a.c"
    if check "$tmp" >/dev/null; then echo "check-env: self-test: a getenv passed"; exit 1; fi
    echo "check-env: self-test passed"
    exit 0
fi

root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
if check "$root"; then
    echo "check-env: only common/config.c reads the environment"
else
    exit 1
fi
