#!/usr/bin/env bash
# Installs what the integration tests need to run a real step-ca:
#   - step-ca v0.30.2, built from source with `go install`, into
#     /usr/local/lib/cert-agent-test/bin/step-ca (outside the repo, so a fresh
#     clone or `git clean` does not throw away a multi-minute build);
#   - openssl, which the harness uses to mint the CA's root and intermediate.
# Idempotent: a second run with everything in place does nothing.
# Runs as root on Debian with Go installed.
set -euo pipefail

STEPCA_VERSION="0.30.2"
PREFIX="${CERT_AGENT_TEST_PREFIX:-/usr/local/lib/cert-agent-test}"
BIN_DIR="$PREFIX/bin"
TARGET="$BIN_DIR/step-ca"

log() { printf 'install-stepca: %s\n' "$*" >&2; }
# shellcheck source=go-tool.sh
. "$(dirname "$0")/go-tool.sh"

apt_updated=0
apt_install() {
  # `apt-get update` is slow and needs the network, so only pay for it when
  # something is actually missing, and only once per run.
  if [ "$apt_updated" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# --- openssl ---------------------------------------------------------------
if ! command -v openssl >/dev/null 2>&1; then
  log "installing openssl"
  apt_install openssl ca-certificates
fi

# --- step-ca ---------------------------------------------------------------
installed_version_ok() { reports_version "$STEPCA_VERSION" "$TARGET" --version; }

if installed_version_ok; then
  log "step-ca ${STEPCA_VERSION} already installed at $TARGET"
  exit 0
fi
if ! find_go; then
  log "Go is required to build step-ca but was not found"
  exit 1
fi
log "building step-ca ${STEPCA_VERSION} with $(go version)"
go_build_tool github.com/smallstep/certificates/cmd/step-ca "$STEPCA_VERSION" step-ca "$TARGET"

if ! installed_version_ok; then
  log "installed $TARGET but it does not report version ${STEPCA_VERSION}:"
  "$TARGET" --version >&2 || true
  exit 1
fi
log "installed $("$TARGET" --version | head -n1) at $TARGET"
