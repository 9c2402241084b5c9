#!/usr/bin/env bash
# `make deb`: builds build/streamio_<version>_amd64.deb with Debian's debhelper from a copy of the
# source tree (what git tracks, plus new files it does not ignore) with contrib/debian/ as its
# debian/ directory and a changelog entry for the Makefile's VERSION, then runs lintian on it:
# any error or warning fails the build (contrib/debian/streamio.lintian-overrides says why each
# overridden tag is fine).
set -euo pipefail
version=$1
root=$(cd "$(dirname "$0")/.." && pwd)
stage=$root/build/deb
src=$stage/streamio-$version
rm -rf "$stage"
mkdir -p "$src"
if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$root" && git ls-files -z --cached --others --exclude-standard |
        tar --null --no-recursion --ignore-failed-read -T - -cf -) | tar -xf - -C "$src"
else
    (cd "$root" && tar --exclude=./build --exclude=node_modules -cf - .) | tar -xf - -C "$src"
fi
rm -rf "$src/debian"
cp -r "$root/contrib/debian" "$src/debian"
when=$(git -C "$root" log -1 --format=%aD 2>/dev/null || date -R)
maint=$(sed -n 's/^Maintainer: //p' "$src/debian/control")
cat >"$src/debian/changelog" <<CHANGELOG
streamio ($version) unstable; urgency=medium

  * streamio $version, built from the source tree (see README.md).

 -- $maint  $when
CHANGELOG
(cd "$src" && DEB_BUILD_OPTIONS="parallel=$(nproc 2>/dev/null || echo 2)" \
    dpkg-buildpackage -b -us -uc)
deb=streamio_${version}_$(dpkg-architecture -qDEB_HOST_ARCH).deb
mv "$stage/$deb" "$root/build/$deb"
echo "deb: build/$deb"
lintian --fail-on error,warning --tag-display-limit 0 "$root/build/$deb"
echo "deb: lintian clean"
