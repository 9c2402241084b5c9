#!/usr/bin/env bash
# Installs a streamio .deb into a fresh root and runs it there as its systemd unit would, for
# tests/integration/deb.test.js. Run as root inside `unshare -m` (every mount stays private):
#   deb-root.sh DEB REDIS_PORT HTTP_PORT
# The root is a copy-on-write overlay of this Debian system (its libraries and systemd units),
# so the host is never written. dpkg installs the package inside it with its maintainer scripts
# (no systemd runs there, so nothing starts); then systemd-analyze verifies the unit, and the
# script starts the installed binary the way the unit says: RuntimeDirectory, ExecStartPre (as
# root), ExecStart as User= with EnvironmentFile= and Environment=. SIGHUP runs ExecReload after
# an admin's edit of streamio.env (CLUSTER_WORKERS=2); SIGTERM stops the server and cleans up.
# Progress goes to stdout as "deb-root: <what> <value>" lines.
set -euo pipefail
deb=$1 redis_port=$2 http_port=$3
work=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        wait "$pid" || true
    fi
    umount -R "$work" 2>/dev/null || umount -lR "$work" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
say() { echo "deb-root: $*"; }

mount -t tmpfs tmpfs "$work"
mkdir "$work/up" "$work/work" "$work/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$work/up,workdir=$work/work" "$work/root"
R=$work/root
mount -t proc proc "$R/proc"
mount --bind /dev "$R/dev"
mount -t tmpfs tmpfs "$R/run"
mount -t tmpfs tmpfs "$R/tmp"
if chroot "$R" dpkg-query -W streamio >/dev/null 2>&1; then
    echo "deb-root: this system has a streamio package installed; the root would not be fresh" >&2
    exit 1
fi

cp "$deb" "$R/tmp/"
chroot "$R" dpkg -i "/tmp/$(basename "$deb")"
say installed "$(chroot "$R" dpkg-query -W -f='${Version}' streamio)"
say user "$(chroot "$R" getent passwd streamio)"
say envfile "$(stat -c '%a %U:%G' "$R/etc/streamio/streamio.env")"
say enabled "$(readlink "$R/etc/systemd/system/multi-user.target.wants/streamio.service")"
say verify "$(systemd-analyze verify --root="$R" streamio.service 2>&1 && echo ok)"
say version "$(chroot "$R" /usr/bin/streamio --version)"

# the admin's edit: where Redis is and where to listen (one worker, to see a reload change it)
printf 'REDIS_HOST=127.0.0.1\nREDIS_PORT=%s\nHOST=127.0.0.1\nPORT=%s\nCLUSTER_WORKERS=1\n' \
    "$redis_port" "$http_port" >>"$R/etc/streamio/streamio.env"

unit=$R/lib/systemd/system/streamio.service
user=$(sed -n 's/^User=//p' "$unit")
[ "$(sed -n 's/^RuntimeDirectory=//p' "$unit")" = streamio ]
mkdir -m "$(sed -n 's/^RuntimeDirectoryMode=//p' "$unit")" "$R/run/streamio"
chroot "$R" chown "$user:$user" /run/streamio
chroot "$R" /bin/sh -c "$(sed -n 's/^ExecStartPre=+//p' "$unit")"
if chroot --userspec="$user:$user" "$R" cat /etc/streamio/streamio.env >/dev/null 2>&1; then
    say secrets readable-by-service-user
else
    say secrets root-only
fi
say copy "$(stat -c '%a %u' "$R/run/streamio/streamio.env")"
envfile=$(sed -n 's/^EnvironmentFile=-\{0,1\}//p' "$unit")
start=$(sed -n 's/^ExecStart=//p' "$unit")
(
    set -a
    # shellcheck disable=SC1090
    . "$R$envfile" # systemd reads it as root, then the service gets the variables
    while IFS= read -r kv; do export "${kv?}"; done < <(sed -n 's/^Environment=//p' "$unit")
    set +a
    exec chroot --userspec="$user:$user" "$R" $start
) &
pid=$!
say started "$pid"

reload() {
    echo CLUSTER_WORKERS=2 >>"$R/etc/streamio/streamio.env"
    local cmd
    cmd=$(sed -n 's/^ExecReload=+//p' "$unit")
    chroot "$R" /bin/sh -c "${cmd//\$MAINPID/$pid}"
    say reloaded "$(stat -c '%a %u' "$R/run/streamio/streamio.env")"
}
stopping=
trap 'reload' HUP
trap 'stopping=1; kill -TERM "$pid"' TERM
status=0
while kill -0 "$pid" 2>/dev/null; do
    wait "$pid" && status=0 || status=$?
done
[ -n "$stopping" ] || say exited-by-itself "$status"
say stopped "$status"
pid=
exit "$status"
