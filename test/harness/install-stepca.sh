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
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

if ! command -v openssl >/dev/null 2>&1; then
  log "installing openssl"
  apt_install openssl ca-certificates
fi

go_tool github.com/smallstep/certificates/cmd/step-ca "$STEPCA_VERSION" step-ca "$BIN_DIR/step-ca" --version
