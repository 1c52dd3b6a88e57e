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
# shellcheck source=../test/harness/lib.sh
. "$(dirname "$0")/../test/harness/lib.sh"

missing=$(missing_packages lego:lego certbot:certbot hyperfine:hyperfine /usr/bin/time:time)
if [ -n "$missing" ]; then
  log "installing: $missing"
  # shellcheck disable=SC2086 # one word per package
  apt_install $missing
  # certbot enables a renewal timer; the benchmark runs it by hand only.
  systemctl disable --now certbot.timer >/dev/null 2>&1 || true
fi

go_tool github.com/smallstep/cli/cmd/step "$STEP_VERSION" step "$BIN_DIR/step" version ||
  log "the step CLI peer will be skipped"
