#!/usr/bin/env bash
# Builds cert-agent_<version>_all.deb with dpkg-deb from the bundle, the
# systemd units (daemon, and timer mode's timer and oneshot service), the example config, the proxy snippets and the docs.
# Usage: packaging/deb/build.sh [OUTDIR]   (default bundle/out)
# Reproducible: file times come from SOURCE_DATE_EPOCH (default: the last
# commit), owners are root:root, modes are set explicitly.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-$ROOT/bundle/out}
BUNDLE=$ROOT/bundle/out/cert-agent.cjs
[ -f "$BUNDLE" ] || { echo "build.sh: $BUNDLE is missing; run \`make bundle\` first" >&2; exit 66; }
VERSION=$(node -p "require('$ROOT/package.json').version")
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}
# Override for a site build: DEB_MAINTAINER="Ops <ops@example.net>" make deb
MAINTAINER=${DEB_MAINTAINER:-cert-agent maintainers <cert-agent@example.org>}
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
P=$STAGE/pkg
DOC=$P/usr/share/doc/cert-agent
SHARE=$P/usr/share/cert-agent

install -d -m 0755 "$P/DEBIAN" "$P/usr/lib/cert-agent" "$P/usr/bin" "$P/usr/lib/systemd/system" "$DOC" "$SHARE"
install -m 0755 "$BUNDLE" "$P/usr/lib/cert-agent/cert-agent.cjs"
# The bundle starts with `#!/usr/bin/env node`, so a symlink is the whole wrapper.
ln -s ../lib/cert-agent/cert-agent.cjs "$P/usr/bin/cert-agent"
# Both modes ship; postinst enables one (CERT_AGENT_MODE, default timer).
for unit in cert-agent.service cert-agent-pass.service cert-agent.timer; do
  install -m 0644 "$ROOT/packaging/$unit" "$P/usr/lib/systemd/system/$unit"
done
# Outside /usr/share/doc: minimal images drop that tree (dpkg path-exclude),
# and the snippets are meant to be included from live proxy configs.
install -m 0644 "$ROOT/packaging/config.example.yaml" "$SHARE/config.example.yaml"
for proxy in nginx traefik; do
  # Owned by another part of the project; shipped when present.
  if [ -d "$ROOT/packaging/$proxy" ]; then
    (cd "$ROOT/packaging/$proxy" && find . -type f | sort | while read -r f; do install -D -m 0644 "$f" "$SHARE/$proxy/${f#./}"; done)
  fi
done
# The template hook and the Proxmox host scripts: cert-agent-fleet install
# takes the hook from the package it pushes; the host scripts are copied from
# here to the Proxmox host (they run there, not in the container).
install -m 0755 "$ROOT/packaging/postinstall.sh" "$SHARE/postinstall.sh"
if [ -d "$ROOT/packaging/proxmox" ]; then
  install -d -m 0755 "$SHARE/proxmox"
  for f in cert-agent-fleet cert-agent-ca-hook; do install -m 0755 "$ROOT/packaging/proxmox/$f" "$SHARE/proxmox/$f"; done
  install -m 0644 "$ROOT/packaging/proxmox/cert-agent-cluster.sh" "$SHARE/proxmox/cert-agent-cluster.sh"
fi
install -m 0644 "$ROOT/README.md" "$DOC/README.md"
[ -f "$ROOT/docs/migration.md" ] && install -m 0644 "$ROOT/docs/migration.md" "$DOC/migration.md"
# The license of every package in the bundle, from esbuild's metafile of this build.
[ -f "$ROOT/bundle/out/meta.json" ] \
  || { echo "build.sh: bundle/out/meta.json is missing; run \`make bundle\` first" >&2; exit 66; }
node "$ROOT/packaging/deb/notices.mjs" "$ROOT/bundle/out/meta.json" > "$DOC/THIRD-PARTY-NOTICES"
chmod 0644 "$DOC/THIRD-PARTY-NOTICES"
# The document `cert-agent status --json` prints, for monitoring; outside
# /usr/share/doc like the snippets, because tools read it.
install -m 0644 "$ROOT/docs/status.schema.json" "$SHARE/status.schema.json"
sed "s/@YEAR@/$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y)/" "$ROOT/packaging/deb/copyright" > "$DOC/copyright"
chmod 0644 "$DOC/copyright"
{
  printf 'cert-agent (%s) unstable; urgency=medium\n\n  * Release %s.\n\n' "$VERSION" "$VERSION"
  printf ' -- %s  %s\n' "$MAINTAINER" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n > "$DOC/changelog.gz"   # a native package (no Debian revision)
chmod 0644 "$DOC/changelog.gz"

for s in postinst prerm postrm; do install -m 0755 "$ROOT/packaging/deb/$s" "$P/DEBIAN/$s"; done
SIZE=$(du -sk --exclude=DEBIAN "$P" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@SIZE@/$SIZE/" -e "s|@MAINTAINER@|$MAINTAINER|" "$ROOT/packaging/deb/control.in" > "$P/DEBIAN/control"
(cd "$P" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort | xargs md5sum) > "$P/DEBIAN/md5sums"
chmod 0644 "$P/DEBIAN/control" "$P/DEBIAN/md5sums"
find "$P" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$OUT"
DEB=$OUT/cert-agent_${VERSION}_all.deb
dpkg-deb --root-owner-group -Zxz --build "$P" "$DEB" >/dev/null
echo "$DEB"
