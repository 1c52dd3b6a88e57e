#!/usr/bin/env bash
# Builds the .deb of an earlier release from its commit, for the upgrade
# test (test/integration/upgrade.test.ts): the release's own sources (git
# archive of the commit), its own lock file (npm ci, from npm's cache when it
# has the packages) and its own `make deb`. The result is cached outside the
# repository, keyed by the commit, with that release's template hook beside
# it: $CERT_AGENT_ROOTFS_CACHE/release-<commit>/{cert-agent_<v>_all.deb,
# postinstall.sh}. A second run only prints the path.
# Usage: test/harness/build-release-deb.sh COMMIT   (prints the .deb's path)
# Needs the commit in this clone (full history, not a shallow clone), Node.js
# with npm, git and dpkg-deb.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
COMMIT=${1:?usage: build-release-deb.sh COMMIT}
CACHE=${CERT_AGENT_ROOTFS_CACHE:-/var/cache/cert-agent-test}
OUT=$CACHE/release-$COMMIT

cached() {
  local deb
  for deb in "$OUT"/cert-agent_*_all.deb; do
    [ -f "$deb" ] && [ -f "$OUT/postinstall.sh" ] && { echo "$deb"; return 0; }
  done
  return 1
}
cached && exit 0

git -C "$ROOT" cat-file -e "$COMMIT^{commit}" 2>/dev/null || {
  echo "build-release-deb.sh: commit $COMMIT is not in this clone (a shallow clone? git fetch --unshallow)" >&2
  exit 66
}
echo "building the .deb of release commit $COMMIT (once, cached in $OUT)" >&2
mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/.release-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
git -C "$ROOT" archive --format=tar "$COMMIT" | tar -C "$WORK" -xf -
# The release's Makefile installs its modules with `npm install`, which may
# update the lock; `npm ci` installs exactly what the release locked.
(cd "$WORK" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error >&2)
# What the release's deps-node target leaves behind, so its `make deb` runs
# only the bundle and the package build. The file times of a release build
# are the commit's (its build.sh reads them from git, which the archive lacks).
touch "$WORK/node_modules/.installed"
SOURCE_DATE_EPOCH=$(git -C "$ROOT" log -1 --format=%ct "$COMMIT") make -C "$WORK" --no-print-directory deb >&2
PART=$(mktemp -d "$OUT.part.XXXXXX")
chmod 0755 "$PART"
cp "$WORK"/bundle/out/cert-agent_*_all.deb "$WORK/packaging/postinstall.sh" "$PART/"
# Another build may have finished first: its result is the same.
mv -T "$PART" "$OUT" 2>/dev/null || rm -rf "$PART"
cached || { echo "build-release-deb.sh: no .deb in $OUT" >&2; exit 70; }
