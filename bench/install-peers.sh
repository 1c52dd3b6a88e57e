#!/usr/bin/env bash
# Installs the benchmark peers, idempotently:
#   - Debian packages: lego, certbot, hyperfine, time (GNU /usr/bin/time);
#   - the step CLI (github.com/smallstep/cli), built with `go install` from
#     the Go module proxy into /usr/local/lib/cert-agent-test/bin/step,
#     pinned to the same release line as the test step-ca (v0.30.2, the newest
#     version the proxy serves at the time of writing).
# Runs as root on Debian with Go installed. A missing peer is not fatal for
# `make bench`: the benchmark reports it as "not installed".
set -euo pipefail

STEP_VERSION="${STEP_CLI_VERSION:-0.30.2}"
PREFIX="${CERT_AGENT_TEST_PREFIX:-/usr/local/lib/cert-agent-test}"
BIN_DIR="$PREFIX/bin"
TARGET="$BIN_DIR/step"

log() { printf 'install-peers: %s\n' "$*" >&2; }
# shellcheck source=../test/harness/go-tool.sh
. "$(dirname "$0")/../test/harness/go-tool.sh"

missing=""
for c in lego:lego certbot:certbot hyperfine:hyperfine /usr/bin/time:time; do
  cmd="${c%%:*}"
  if [ "${cmd#/}" != "$cmd" ]; then [ -x "$cmd" ] || missing="$missing ${c##*:}"
  else command -v "$cmd" >/dev/null 2>&1 || missing="$missing ${c##*:}"; fi
done
if [ -n "$missing" ]; then
  log "installing:$missing"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
  # certbot enables a renewal timer; the benchmark runs it by hand only.
  systemctl disable --now certbot.timer >/dev/null 2>&1 || true
fi

if reports_version "$STEP_VERSION" "$TARGET" version; then
  log "step ${STEP_VERSION} already installed at $TARGET"
  exit 0
fi
if ! find_go; then
  log "Go not found: the step CLI peer will be skipped"
  exit 0
fi
log "building step ${STEP_VERSION} with $(go version)"
if ! go_build_tool github.com/smallstep/cli/cmd/step "$STEP_VERSION" step "$TARGET"; then
  log "building step failed: the step CLI peer will be skipped"
  exit 0
fi
log "installed $("$TARGET" version 2>&1 | head -n1) at $TARGET"
