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
installed_version_ok() {
  [ -x "$TARGET" ] || return 1
  # Prints e.g. "Smallstep CA/0.30.2 (linux/amd64)"; anchor on the slash so
  # 0.30.20 or a "-dev" build does not pass.
  # Read the whole output before matching: `grep -q` under pipefail can turn
  # an early exit into SIGPIPE for the writer and a false "not installed".
  local out
  out=$("$TARGET" --version 2>/dev/null) || return 1
  grep -Eq "/v?${STEPCA_VERSION//./\\.} " <<<"$out"
}

if installed_version_ok; then
  log "step-ca ${STEPCA_VERSION} already installed at $TARGET"
  exit 0
fi

# Go may be installed without being on root's PATH (e.g. non-login shells).
if ! command -v go >/dev/null 2>&1; then
  for d in /usr/local/go/bin /usr/lib/go/bin; do
    if [ -x "$d/go" ]; then PATH="$d:$PATH"; break; fi
  done
fi
if ! command -v go >/dev/null 2>&1; then
  log "Go is required to build step-ca but was not found"
  exit 1
fi

log "building step-ca ${STEPCA_VERSION} with $(go version)"
mkdir -p "$BIN_DIR"
# Build into a scratch GOBIN and move into place afterwards, so an interrupted
# build never leaves a half-written binary at the stable path.
tmp_bin="$(mktemp -d "$PREFIX/.build.XXXXXX")"
trap 'rm -rf "$tmp_bin"' EXIT

# CGO_ENABLED=0: with cgo on, the YubiKey KMS needs libpcsclite headers, which
# a plain Debian lacks; upstream release builds disable cgo too.
# -X main.Version: `go install` leaves the version as "N/A", which step-ca
# prints as "0000000-dev"; stamping it lets the check above recognise it.
(
  cd /
  CGO_ENABLED=0 GOBIN="$tmp_bin" go install \
    -ldflags "-w -X main.Version=${STEPCA_VERSION} -X 'main.BuildTime=$(date -u '+%Y-%m-%d %H:%M UTC')'" \
    "github.com/smallstep/certificates/cmd/step-ca@v${STEPCA_VERSION}"
)
install -m 0755 "$tmp_bin/step-ca" "$TARGET.new"
mv -f "$TARGET.new" "$TARGET"

if ! installed_version_ok; then
  log "installed $TARGET but it does not report version ${STEPCA_VERSION}:"
  "$TARGET" --version >&2 || true
  exit 1
fi
log "installed $("$TARGET" --version | head -n1) at $TARGET"
