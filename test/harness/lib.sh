# shellcheck shell=bash
# Shared by the install scripts of the tests and the benchmark
# (test/harness/install-stepca.sh, test/harness/install-traefik.sh,
# bench/install-peers.sh): where the tools go, logging, Debian packages, and
# building smallstep tools from the Go module proxy. Source it after
# `set -euo pipefail`; it sets PREFIX and BIN_DIR and defines functions.

# Tools live outside the repository, so a fresh clone or `git clean` does not
# throw away a multi-minute build.
PREFIX="${CERT_AGENT_TEST_PREFIX:-/usr/local/lib/cert-agent-test}"
# shellcheck disable=SC2034 # used by the sourcing scripts
BIN_DIR="$PREFIX/bin"

# log MESSAGE…: one line on stderr, prefixed with the calling script's name.
log() { printf '%s: %s\n' "$(basename "$0" .sh)" "$*" >&2; }

# apt_install PACKAGE…: `apt-get update` is slow and needs the network, so it
# runs only when something is missing, and only once per run.
apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# missing_packages COMMAND:PACKAGE…: the packages whose command is not there
# (on PATH, or executable when COMMAND is an absolute path), space-separated.
missing_packages() {
  local c cmd missing=""
  for c in "$@"; do
    cmd="${c%%:*}"
    if [ "${cmd#/}" != "$cmd" ]; then
      [ -x "$cmd" ] || missing="$missing ${c##*:}"
    else
      command -v "$cmd" >/dev/null 2>&1 || missing="$missing ${c##*:}"
    fi
  done
  printf '%s' "${missing# }"
}

# reports_version VERSION CMD [ARGS…]: whether CMD prints "…/VERSION " (e.g.
# "Smallstep CA/0.30.2 (linux/amd64)"). The output is read whole before
# matching: `grep -q` in a pipe under pipefail can SIGPIPE the writer and
# report a false "not installed".
reports_version() {
  local version=$1 out
  shift
  [ -x "$1" ] || return 1
  out=$("$@" 2>/dev/null) || return 1
  grep -Eq "/v?${version//./\\.} " <<<"$out"
}

# find_go: puts Go on PATH when it is installed but not there (non-login shells).
find_go() {
  command -v go >/dev/null 2>&1 && return 0
  local d
  for d in /usr/local/go/bin /usr/lib/go/bin; do
    if [ -x "$d/go" ]; then PATH="$d:$PATH"; return 0; fi
  done
  return 1
}

# go_build_tool MODULE/CMD VERSION BINARY TARGET: builds MODULE/CMD@vVERSION
# into a scratch GOBIN and moves BINARY to TARGET, so an interrupted build
# never leaves a half-written binary at the stable path.
#   CGO_ENABLED=0: with cgo on, the YubiKey KMS needs libpcsclite headers,
#   which a plain Debian lacks; upstream release builds disable cgo too.
#   -X main.Version: `go install` leaves the version as "N/A" (printed as
#   "0000000-dev"); stamping it lets reports_version recognise the build.
go_build_tool() {
  local pkg=$1 version=$2 binary=$3 target=$4 scratch
  mkdir -p "$(dirname "$target")"
  scratch="$(mktemp -d "$(dirname "$target")/.build-${binary}.XXXXXX")"
  if ! (
    cd /
    CGO_ENABLED=0 GOBIN="$scratch" go install \
      -ldflags "-w -X main.Version=${version} -X 'main.BuildTime=$(date -u '+%Y-%m-%d %H:%M UTC')'" \
      "${pkg}@v${version}"
  ); then
    rm -rf "$scratch"
    return 1
  fi
  install -m 0755 "$scratch/$binary" "$target.new"
  mv -f "$target.new" "$target"
  rm -rf "$scratch"
}

# go_tool MODULE/CMD VERSION BINARY TARGET VERSION-ARG…: makes sure TARGET is
# MODULE/CMD at VERSION (checked with `TARGET VERSION-ARG…`), building it when
# it is not. Fails, with the reason logged, when Go is missing, the build
# fails or the result does not report VERSION.
go_tool() {
  local pkg=$1 version=$2 binary=$3 target=$4
  shift 4
  if reports_version "$version" "$target" "$@"; then
    log "$binary $version already installed at $target"
    return 0
  fi
  if ! find_go; then
    log "Go is needed to build $binary but was not found"
    return 1
  fi
  log "building $binary $version with $(go version)"
  go_build_tool "$pkg" "$version" "$binary" "$target" || { log "building $binary failed"; return 1; }
  if ! reports_version "$version" "$target" "$@"; then
    log "installed $target but it does not report version $version:"
    "$target" "$@" >&2 || true
    return 1
  fi
  log "installed $("$target" "$@" 2>&1 | head -n1) at $target"
}
