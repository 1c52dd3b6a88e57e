# Shared by the scripts that build smallstep tools from the Go module proxy
# (test/harness/install-stepca.sh, bench/install-peers.sh). Source it; it
# defines functions only.

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
