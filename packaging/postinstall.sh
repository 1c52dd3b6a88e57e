#!/bin/sh
# cert-agent container-template hook: install, enroll, enable, first
# certificate, status. Run as root inside a new container (e.g. from the
# Proxmox host: `pct push` this file and the .deb, then `pct exec`).
#
# Input (environment):
#   CERT_AGENT_CA_URL       step-ca URL, https://…                    (required)
#   CERT_AGENT_FINGERPRINT  SHA-256 of the CA root, hex; several comma-separated
#                           (required unless CERT_AGENT_ROOT_FILE is set)
#   CERT_AGENT_DOMAINS      names/IPs, comma-separated, first = subject (required)
#   CERT_AGENT_DEB          the .deb to install (default: cert-agent_*.deb next
#                           to this script), or
#   CERT_AGENT_BUNDLE       cert-agent.cjs (needs Node >= 20) or the single
#                           executable, for containers without the package;
#                           the unit comes from CERT_AGENT_UNIT (default:
#                           cert-agent.service next to this script), timer
#                           mode's cert-agent-pass.service and
#                           cert-agent.timer from the same directory
#   CERT_AGENT_MODE         timer (default): cert-agent.timer runs one check
#                           every 5 minutes (cert-agent-pass.service), nothing
#                           stays in memory between checks; daemon:
#                           cert-agent.service runs all the time and renews at
#                           the exact moment. The other one is disabled.
#   CERT_AGENT_WAIT         seconds to wait for the first certificate when
#                           systemd runs (default 120)
#   CERT_AGENT_ALLOW_UNREACHABLE=1  enroll even when the CA is not up yet (a
#                           template booting before the CA container): the
#                           daemon pins the root with the same checks when the
#                           CA answers and serves a placeholder until then
#   every other CERT_AGENT_* variable of `cert-agent enroll --help`
#   (CERT_AGENT_RELOAD, CERT_AGENT_CHALLENGE, CERT_AGENT_LISTEN, …), e.g.
#   CERT_AGENT_RELOAD=command CERT_AGENT_RELOAD_COMMAND='["systemctl","reload","haproxy"]'
#   (a JSON array: the command runs without a shell);
#   CERT_AGENT_CERT_DIR, CERT_AGENT_STATE_DIR and CERT_AGENT_WEBROOT must be
#   absolute paths of letters, digits and / . _ - + @ (they go into a unit
#   drop-in)
#   dns-01 (CERT_AGENT_CHALLENGE=dns: no port 80, and wildcards such as
#   CERT_AGENT_DOMAINS='*.app.internal,app.internal'), as enroll's flags:
#   CERT_AGENT_DNS_SERVER   the DNS server, IP, IP:PORT or [IPv6]:PORT (port
#                           53 unless given); an address, not a host name.
#                           The units allow IP only to loopback and private
#                           ranges: for an address outside them the hook
#                           writes the drop-in dns-server.conf with
#                           IPAddressAllow=<that address>
#   CERT_AGENT_DNS_ZONE     the zone (default: found by an SOA lookup)
#   CERT_AGENT_TSIG_NAME, CERT_AGENT_TSIG_ALGORITHM (hmac-sha256, the
#   default, or hmac-sha512), CERT_AGENT_TSIG_SECRET_FILE (the key's secret,
#   a file already in the container, root's, mode 0600): an RFC 2136 update
#   with that key; or CERT_AGENT_DNS_COMMAND, a JSON array, for any other
#   DNS provider; CERT_AGENT_DNS_PROPAGATION_TIMEOUT seconds (default 120)
#
# With systemd running, the unit is started and the hook waits for the first
# certificate. Without (a chroot, an image build), the hook runs one
# `cert-agent renew` itself so the container has its certificate before the
# proxy first starts; the enabled unit takes over at boot.
#
# Idempotent: a second run with the same input changes nothing (same package
# version: not reinstalled; same flags: config unchanged; valid certificate:
# not renewed). Missing or malformed input is refused (exit 64) before
# anything is installed.
#
# Before installing anything it checks that the container can run the agent
# and answer the challenge, and names the fix (exit 78, nothing installed):
# the package's Node.js (>= 20; Debian 12 ships 18: use the single
# executable), a mount namespace for the unit's sandbox (the container's
# `nesting` feature), and the chosen challenge mode's prerequisites (standalone:
# the port free; webroot: nginx serving the webroot when nginx is the proxy;
# proxy: the port free, Traefik's dynamic directory present).
#
# Exit: the final `cert-agent status` code (0 OK, 1 WARNING, 2 CRITICAL,
# 3 UNKNOWN), 64 bad input, 66 artifact missing, 70 the installed program
# does not run, 75 no certificate within CERT_AGENT_WAIT, 78 the container
# lacks a prerequisite (nothing installed), or the exit code of the step that
# failed.
#
# Uninstall: `sh postinstall.sh --uninstall` (or CERT_AGENT_UNINSTALL=1)
# removes the agent whichever way it was installed (the package is purged),
# with its config, state, certificates, unit drop-ins, the webroot this hook
# created (when empty) and the roots it put in the system store.
# CERT_AGENT_KEEP_CERTS=1 keeps the certificate directory (and the Traefik
# file naming it), so a proxy keeps serving until the certificate expires.
# Exit 0, or 64 for bad input.
set -eu

say() { printf 'postinstall: %s\n' "$*"; }
die() { code=$1; shift; printf 'postinstall: %s\n' "$*" >&2; exit "$code"; }
HERE=$(cd "$(dirname "$0")" && pwd)

# ---- uninstall (--uninstall or CERT_AGENT_UNINSTALL=1) ----------------------
# purge_agent_files: the same function is in packaging/deb/postrm and
# packaging/postinstall.sh (a test compares them). Deletes what the agent and
# the template hook created outside the package's own files: the config, the
# state, the certificates (kept with CERT_AGENT_KEEP_CERTS=1), the hook's unit
# drop-ins, directories the hook created (the webroot) when they are empty,
# the roots trust.installSystem added, the metrics textfile and the Traefik
# file the agent owns. Paths come from the config, defaults otherwise.
purge_agent_files() {
	conf=/etc/cert-agent/config.yaml
	setting() {
		# key: /path, "key": "/path" or key: '/path'; the first, or with "all" every one (one per certificate)
		re="s/^[[:space:]]*-\{0,1\}[[:space:]]*\"\{0,1\}$1\"\{0,1\}:[[:space:]]*[\"']\{0,1\}\(\/[^\"' ,#]*\).*/\1/p"
		if [ "${2:-}" = all ]; then sed -n "$re" "$conf" 2>/dev/null; else sed -n "$re" "$conf" 2>/dev/null | head -n 1; fi
	}
	# Every certificate's directory: those the config names, the short form's default, and the named
	# certificates' default ones under /etc/cert-agent/certs.
	certdirs=$(setting dir all)
	for d in /etc/cert-agent/tls /etc/cert-agent/certs/*; do [ ! -d "$d" ] || certdirs="$certdirs
$d"; done
	statedir=$(setting stateDir)
	statedir=${statedir:-/var/lib/cert-agent}
	textfile=$(setting textfile)
	dynfiles="$(setting dynamicFile all)
/etc/traefik/dynamic/cert-agent.yml"
	created=$(cat /etc/cert-agent/created-paths 2>/dev/null || true)
	keep=""
	[ "${CERT_AGENT_KEEP_CERTS:-}" != 1 ] || keep=1

	ca_removed=""
	for f in /usr/local/share/ca-certificates/cert-agent-*.crt; do
		[ -f "$f" ] || continue
		rm -f "$f"
		ca_removed=1
	done
	if [ -n "$ca_removed" ] && command -v update-ca-certificates >/dev/null 2>&1; then
		update-ca-certificates >/dev/null 2>&1 || true
	fi
	case "$textfile" in /*.prom) rm -f "$textfile" ;; esac
	# The Traefik files name the certificate files: they go with them (cert-agent.yml and one
	# cert-agent-NAME.yml per named certificate, in the directory of each, marked as the agent's).
	if [ -z "$keep" ]; then
		for dyndir in $(printf '%s\n' "$dynfiles" | sed -n 's|/[^/]*$||p' | sort -u); do
			for f in "$dyndir"/cert-agent.yml "$dyndir"/cert-agent-*.yml; do
				if [ -f "$f" ] && grep -q '^# Managed by cert-agent' "$f"; then rm -f "$f"; fi
			done
		done
	fi
	for unit in cert-agent.service cert-agent-pass.service; do
		rm -f "/etc/systemd/system/$unit.d/paths.conf" "/etc/systemd/system/$unit.d/dns-server.conf"
		rmdir "/etc/systemd/system/$unit.d" 2>/dev/null || true
	done
	# A directory elsewhere is removed only when it has the agent's layout.
	for certdir in $certdirs; do
		if [ -z "$keep" ] && [ -d "$certdir" ] && { [ "$certdir" = /etc/cert-agent/tls ] || [ -e "$certdir/.sets" ] \
			|| [ -z "$(ls -A "$certdir")" ]; }; then
			rm -rf "$certdir"
		fi
	done
	if [ -d "$statedir" ] && { [ "$statedir" = /var/lib/cert-agent ] || [ -e "$statedir/account.key" ] \
		|| [ -z "$(ls -A "$statedir")" ]; }; then
		rm -rf "$statedir"
	fi
	if [ -n "$keep" ]; then
		# Everything of /etc/cert-agent but the top directories that hold a kept certificate directory.
		tops=$(printf '%s\n' "$certdirs" | sed -n 's|^\(/etc/cert-agent/[^/][^/]*\).*|\1|p' | sort -u)
		for e in /etc/cert-agent/* /etc/cert-agent/.[!.]*; do
			[ -e "$e" ] || [ -L "$e" ] || continue
			printf '%s\n' "$tops" | grep -qxF "$e" || rm -rf "$e"
		done
	else
		rm -rf /etc/cert-agent
	fi
	# Deepest first; rmdir leaves anything that is not empty.
	printf '%s\n' "$created" | awk 'NF { print length($0), $0 }' | sort -rn | cut -d' ' -f2- | while read -r d; do
		rmdir "$d/.well-known/acme-challenge" "$d/.well-known" 2>/dev/null || true
		rmdir "$d" 2>/dev/null || true
	done
}

uninstall() {
	[ "$(id -u)" = 0 ] || die 64 "must run as root (it removes /etc/cert-agent and the package)"
	case "${CERT_AGENT_KEEP_CERTS:-}" in
		'' | 0 | 1) ;;
		*) die 64 "CERT_AGENT_KEEP_CERTS=$CERT_AGENT_KEEP_CERTS: must be 1 (keep the certificates) or 0" ;;
	esac
	units="cert-agent.timer cert-agent-pass.service cert-agent.service"
	if dpkg-query -W -f='${Status}' cert-agent 2>/dev/null | grep -Eq 'ok (installed|config-files)'; then
		# The package's prerm and postrm stop the units and call purge_agent_files.
		say "purging the cert-agent package"
		if command -v apt-get >/dev/null 2>&1; then
			DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq cert-agent >/dev/null
		else
			dpkg --purge cert-agent >/dev/null
		fi
	else
		if [ -d /run/systemd/system ]; then
			for u in $units; do systemctl stop "$u" >/dev/null 2>&1 || true; done
		fi
		if command -v systemctl >/dev/null 2>&1; then
			for u in $units; do systemctl disable --quiet "$u" >/dev/null 2>&1 || true; done
		fi
		for u in $units; do rm -f "/etc/systemd/system/$u" /etc/systemd/system/*.wants/"$u"; done
		case "$(readlink /usr/bin/cert-agent 2>/dev/null || true)" in /usr/lib/cert-agent/*) rm -f /usr/bin/cert-agent ;; esac
		rm -rf /usr/lib/cert-agent
		purge_agent_files
		[ ! -d /run/systemd/system ] || systemctl daemon-reload
		say "removed cert-agent"
	fi
	[ "${CERT_AGENT_KEEP_CERTS:-}" != 1 ] || say "kept the certificate directory (CERT_AGENT_KEEP_CERTS=1)"
	exit 0
}
if [ "${1:-}" = --uninstall ] || [ "${CERT_AGENT_UNINSTALL:-}" = 1 ]; then uninstall; fi
[ $# -eq 0 ] || die 64 "unknown argument $1 (the only argument is --uninstall; input comes from CERT_AGENT_* variables)"

# The address of a CERT_AGENT_DNS_SERVER value: IP, IP:PORT, [IPv6], [IPv6]:PORT or a bare IPv6 address.
dns_server_address() {
  case "$1" in
    \[*) a=${1#?}; printf '%s' "${a%%]*}" ;;
    *:*:*) printf '%s' "$1" ;;
    *) printf '%s' "${1%%:*}" ;;
  esac
}
# Whether the units' IPAddressAllow= covers ADDR: loopback, 169.254/16 and the
# private ranges (IPv6: ::1 and fc00::/7; any other, link-local too, gets its own line).
in_unit_ranges() {
  case "$1" in
    *:*)
      case "$(printf '%s' "$1" | tr 'A-F' 'a-f')" in ::1 | f[cd]??:*) return 0 ;; *) return 1 ;; esac
      ;;
  esac
  a=${1%%.*}; b=${1#*.}; b=${b%%.*}
  case "$a.$b" in 127.* | 10.* | 169.254 | 192.168) return 0 ;; esac
  { [ "$a" -eq 172 ] && [ "$b" -ge 16 ] && [ "$b" -le 31 ]; } && return 0
  { [ "$a" -eq 100 ] && [ "$b" -ge 64 ] && [ "$b" -le 127 ]; } && return 0
  return 1
}

# ---- 1. input, all checked before anything is touched --------------------
[ "$(id -u)" = 0 ] || die 64 "must run as root (it installs a package and writes /etc/cert-agent)"
missing=""
[ -n "${CERT_AGENT_CA_URL:-}" ] || missing="$missing CERT_AGENT_CA_URL"
[ -n "${CERT_AGENT_FINGERPRINT:-}${CERT_AGENT_ROOT_FILE:-}" ] || missing="$missing CERT_AGENT_FINGERPRINT"
[ -n "${CERT_AGENT_DOMAINS:-}" ] || missing="$missing CERT_AGENT_DOMAINS"
[ -z "$missing" ] || die 64 "missing:$missing (e.g. CERT_AGENT_CA_URL=https://ca.internal:9000 CERT_AGENT_FINGERPRINT=<sha256 of the root> CERT_AGENT_DOMAINS=app.internal); nothing was installed"
case "$CERT_AGENT_CA_URL" in https://?*) ;; *) die 64 "CERT_AGENT_CA_URL=$CERT_AGENT_CA_URL: must be an https:// URL; nothing was installed" ;; esac
old_ifs=$IFS; IFS=,
for fp in ${CERT_AGENT_FINGERPRINT:-}; do
  # As step, `openssl x509 -fingerprint -sha256 -noout` or sha256sum print it (see parseFingerprint).
  hex=$(printf '%s' "$fp" | tr '[:upper:]' '[:lower:]' | sed -e 's/^ *//' -e 's/^sha-\{0,1\}256 fingerprint=//' \
    -e 's/^sha-\{0,1\}256[:=]//' -e 's/^\([0-9a-f]\{64\}\) [ *]-$/\1/' | tr -d ': ')
  printf '%s' "$hex" | grep -Eq '^[0-9a-f]{64}$' || die 64 "CERT_AGENT_FINGERPRINT: \"$fp\" is not a SHA-256 fingerprint (64 hex digits, colons allowed); nothing was installed"
done
IFS=$old_ifs
[ -n "$(printf '%s' "$CERT_AGENT_DOMAINS" | tr -d ', ')" ] || die 64 "CERT_AGENT_DOMAINS: no name given; nothing was installed"
# Paths that end up in the unit's drop-in (step 4): absolute, and made only of
# characters that need no quoting or escaping in a unit file (no space, %,
# quote, backslash or newline, which would split the setting or start a new
# one), and no `..` (systemd refuses paths that are not normalised).
for var in CERT_AGENT_CERT_DIR CERT_AGENT_STATE_DIR CERT_AGENT_WEBROOT; do
  eval "val=\${$var:-}"
  [ -n "$val" ] || continue
  case "$val" in
    /*[!A-Za-z0-9._+@/-]* | */../* | */.. | [!/]*)
      shown=$(printf '%s' "$val" | tr -c 'A-Za-z0-9._+@/-' '?')
      die 64 "$var=$shown: must be an absolute path of letters, digits and / . _ - + @" \
        "(no spaces, newlines or ..); nothing was installed" ;;
  esac
done
# IPv4[:PORT] (octets up to 255), [IPv6][:PORT] or a bare IPv6 address, a port 1-65535: as the agent reads it.
dns_server_ok() {
  printf '%s\n' "$1" | awk '
    function port_ok(p) { return p == "" || (p ~ /^:[0-9]+$/ && substr(p, 2) + 0 >= 1 && substr(p, 2) + 0 <= 65535) }
    function v4_ok(a,   n, o, i) {
      if (a !~ /^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$/) return 0
      n = split(a, o, ".")
      for (i = 1; i <= n; i++) if (length(o[i]) > 3 || o[i] + 0 > 255) return 0
      return 1
    }
    function v6_ok(a,   head) {
      head = a; sub(/:[^:]*$/, "", head)
      return a ~ /^[0-9A-Fa-f:.]+$/ && a ~ /:.*:/ && head !~ /\./
    }
    NR > 1 { bad = 1; exit }
    /^\[/ { i = index($0, "]"); if (i && v6_ok(substr($0, 2, i - 2)) && port_ok(substr($0, i + 1))) ok = 1; next }
    /:.*:/ { if (v6_ok($0)) ok = 1; next }
    { i = index($0, ":"); a = i ? substr($0, 1, i - 1) : $0; p = i ? substr($0, i) : ""; if (v4_ok(a) && port_ok(p)) ok = 1 }
    END { exit (ok && !bad) ? 0 : 1 }'
}
# The DNS server may end up in a unit drop-in (step 4): an IP address, nothing else.
DNS_ADDR=""
if [ -n "${CERT_AGENT_DNS_SERVER:-}" ]; then
  DNS_ADDR=$(dns_server_address "$CERT_AGENT_DNS_SERVER")
  # The characters first (grep looks at one line at a time, and a newline would start a new setting).
  case "$DNS_ADDR" in '' | *[!0-9A-Fa-f:.]*) DNS_ADDR=bad ;; esac
  if ! dns_server_ok "$CERT_AGENT_DNS_SERVER"; then
    shown=$(printf '%s' "$CERT_AGENT_DNS_SERVER" | tr -c 'A-Za-z0-9._:[]-' '?')
    die 64 "CERT_AGENT_DNS_SERVER=$shown: must be an IP address with an optional port (IP:PORT or [IPv6]:PORT)," \
      "not a host name; nothing was installed"
  fi
fi
# The TSIG key's file must be in the container already, root's alone, as the
# agent checks at every load: a key not pushed yet, or pushed without
# --perms 0600, is refused here, not by enroll once the package is in. (The
# directories above it are the agent's check alone.)
if [ -n "${CERT_AGENT_TSIG_SECRET_FILE:-}" ]; then
  f=$CERT_AGENT_TSIG_SECRET_FILE
  shown=$(printf '%s' "$f" | tr -c 'A-Za-z0-9._/+@-' '?')
  problem=""
  if [ -L "$f" ]; then problem="is a symlink: name the file itself"
  elif [ ! -e "$f" ]; then problem="does not exist: push the TSIG key into the container first (pct push <ID> <KEY>.conf $shown --perms 0600)"
  elif [ ! -f "$f" ]; then problem="is not a regular file: name the file holding the TSIG key"
  elif [ "$(stat -c %u "$f")" != 0 ]; then problem="is owned by uid $(stat -c %u "$f"), not root: the TSIG key must be root's alone (chown root)"
  elif [ -n "$(find "$f" -maxdepth 0 -perm /077)" ]; then
    problem="is readable or writable by group or others (mode $(printf %04d "$(stat -c %a "$f")")): the TSIG key must be root's alone (chmod 600)"
  fi
  [ -z "$problem" ] || die 64 "CERT_AGENT_TSIG_SECRET_FILE=$shown: $problem; nothing was installed"
fi
MODE=${CERT_AGENT_MODE:-timer}
case "$MODE" in
  daemon|timer) ;;
  *) die 64 "CERT_AGENT_MODE=$MODE: must be daemon or timer; nothing was installed" ;;
esac
# The package's postinst enables this mode on a first install.
export CERT_AGENT_MODE="$MODE"
WAIT=${CERT_AGENT_WAIT:-120}
case "$WAIT" in ''|*[!0-9]*) die 64 "CERT_AGENT_WAIT=$WAIT: must be a number of seconds" ;; esac

DEB=${CERT_AGENT_DEB:-}
units_changed=""
program_changed=""
BUNDLE=${CERT_AGENT_BUNDLE:-}
[ -z "$DEB" ] || [ -z "$BUNDLE" ] || die 64 "set CERT_AGENT_DEB or CERT_AGENT_BUNDLE, not both"
if [ -z "$DEB$BUNDLE" ]; then
  # shellcheck disable=SC2012 # our own package names (no newlines); sort -V picks the newest version
  DEB=$(ls "$HERE"/cert-agent_*_all.deb 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$DEB" ] || command -v cert-agent >/dev/null 2>&1 || die 66 "no package to install: set CERT_AGENT_DEB (or CERT_AGENT_BUNDLE), or put cert-agent_<version>_all.deb next to $0"
fi
[ -z "$DEB" ] || [ -f "$DEB" ] || die 66 "CERT_AGENT_DEB=$DEB: no such file"
[ -z "$BUNDLE" ] || [ -f "$BUNDLE" ] || die 66 "CERT_AGENT_BUNDLE=$BUNDLE: no such file"
UNIT_SRC=${CERT_AGENT_UNIT:-$HERE/cert-agent.service}
UNIT_DIR=$(dirname "$UNIT_SRC")
if [ -n "$BUNDLE" ]; then
  [ -f "$UNIT_SRC" ] || die 66 "CERT_AGENT_UNIT=$UNIT_SRC: no such file (the bundle needs the systemd unit next to it)"
  if [ "$MODE" = timer ]; then
    for u in cert-agent-pass.service cert-agent.timer; do
      [ -f "$UNIT_DIR/$u" ] || die 66 "$UNIT_DIR/$u: no such file (timer mode needs it next to $(basename "$UNIT_SRC"))"
    done
  fi
  ! dpkg-query -W -f='${Status}' cert-agent 2>/dev/null | grep -q 'ok installed' || die 64 "cert-agent is installed from the Debian package here; upgrade it with CERT_AGENT_DEB, not CERT_AGENT_BUNDLE"
  if [ "$(head -c 4 "$BUNDLE" | od -An -c | tr -d ' ')" != '177ELF' ]; then
    node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null \
      || die 78 "CERT_AGENT_BUNDLE is the JavaScript bundle, which needs Node.js 20 or newer as \`node\`:" \
        "use the single executable (make sea) instead; nothing was installed"
  fi
fi

# ---- 1b. can this container run the agent? (nothing installed yet) ---------
# Each check names what is wrong and the fix, exit 78.
if [ -n "$DEB" ]; then
  # The package depends on nodejs >= 20: the installed one, else apt's candidate.
  nodev=$(dpkg-query -W -f='${Status} ${Version}' nodejs 2>/dev/null | sed -n 's/^install ok installed //p' || true)
  [ -n "$nodev" ] || nodev=$(apt-cache policy nodejs 2>/dev/null | sed -n 's/^ *Candidate: //p' | head -n 1)
  case "$nodev" in
    '' | '(none)') die 78 "no nodejs package installed or available from apt here, and the .deb needs nodejs >= 20:" \
      "use the single executable instead (CERT_AGENT_BUNDLE=/root/cert-agent from make sea); nothing was installed" ;;
  esac
  dpkg --compare-versions "$nodev" ge 20~ || die 78 "nodejs $nodev is too old for the .deb (it needs >= 20;" \
    "Debian 12 ships 18): use the single executable instead (CERT_AGENT_BUNDLE=/root/cert-agent from make sea," \
    "with CERT_AGENT_UNIT); nothing was installed"
fi
# The unit's sandbox needs a mount namespace with read-only binds and a private
# /tmp; without the container's `nesting` feature systemd cannot build it and
# the unit fails with 226/NAMESPACE. Try the same in a namespace that dies at
# once. Not in a chroot (an image build: / is no mount point there, and the
# unit runs only once the container boots).
if command -v systemctl >/dev/null 2>&1 && command -v unshare >/dev/null 2>&1 \
  && awk '$5 == "/" { f = 1 } END { exit !f }' /proc/self/mountinfo 2>/dev/null; then
  unshare --mount --propagation private sh -c \
    'mount --bind /usr /usr && mount -o remount,bind,ro /usr && mount -t tmpfs tmpfs /tmp' \
    >/dev/null 2>&1 || die 78 "this container cannot create the mount namespace the cert-agent unit runs in" \
    "(systemd would fail it with 226/NAMESPACE): enable nesting on the Proxmox host" \
    "(pct set <ID> --features nesting=1, then pct reboot <ID>); nothing was installed"
fi
# The challenge mode's prerequisites. Without CERT_AGENT_CHALLENGE the mode
# follows the proxy: nginx serves a webroot, Traefik forwards to the agent.
CHALLENGE=${CERT_AGENT_CHALLENGE:-}
if [ -z "$CHALLENGE" ]; then
  case "${CERT_AGENT_RELOAD:-}" in nginx) CHALLENGE=webroot ;; traefik) CHALLENGE=proxy ;; *) CHALLENGE=standalone ;; esac
fi
# Is something listening on this TCP port (any address)? From /proc, no tools needed.
listening() {
  hex=$(printf ':%04X' "$1")
  cat /proc/net/tcp /proc/net/tcp6 2>/dev/null \
    | awk -v p="$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }'
}
case "$CHALLENGE" in
  standalone | proxy)
    if [ "$CHALLENGE" = standalone ]; then port=80; else port=8402; fi
    [ -z "${CERT_AGENT_LISTEN:-}" ] || port=${CERT_AGENT_LISTEN##*:}
    # A repeat run finds nothing of its own there: the agent binds only while validating.
    if listening "$port"; then
      if [ "$CHALLENGE" = standalone ]; then
        die 78 "standalone challenge: port $port is already taken here, and the agent must bind it" \
          "while the CA validates:" \
          "stop that server, or let it serve the challenge (CERT_AGENT_CHALLENGE=webroot for nginx, proxy for Traefik);" \
          "nothing was installed"
      fi
      die 78 "proxy challenge: port $port is already taken here, and the agent listens there while the CA validates:" \
        "choose a free one with CERT_AGENT_LISTEN=127.0.0.1:<port> (and forward to it); nothing was installed"
    fi
    ;;
  webroot)
    if [ "${CERT_AGENT_RELOAD:-}" = nginx ]; then
      wr=${CERT_AGENT_WEBROOT:-/var/www/acme-challenge}
      command -v nginx >/dev/null 2>&1 || die 78 "webroot challenge with CERT_AGENT_RELOAD=nginx, but nginx is" \
        "not installed here: install nginx first (apt-get install nginx); nothing was installed"
      nginx -T 2>/dev/null | grep -qF "$wr" || die 78 "webroot challenge: nginx's configuration does not serve $wr" \
        "(nginx -T does not name it, or fails): include snippets/cert-agent-challenge-webroot.conf in the port-80" \
        "server of every name and reload nginx; nothing was installed"
    fi
    ;;
esac
if [ "${CERT_AGENT_RELOAD:-}" = traefik ] && [ ! -d /etc/traefik/dynamic ]; then
  die 78 "CERT_AGENT_RELOAD=traefik: /etc/traefik/dynamic does not exist; the agent writes its file there and the" \
    "unit can only be given write access to a directory that exists: create it and point Traefik's file provider at" \
    "it (providers.file.directory: /etc/traefik/dynamic, watch: true); nothing was installed"
fi

# ---- 2. install ------------------------------------------------------------
if [ -n "$DEB" ]; then
  want=$(dpkg-deb -f "$DEB" Version)
  if [ "$(dpkg-query -W -f='${Status} ${Version}' cert-agent 2>/dev/null || true)" = "install ok installed $want" ]; then
    say "cert-agent $want already installed"
  else
    say "installing $(basename "$DEB")"
    case "$DEB" in /*) ;; *) DEB=$PWD/$DEB ;; esac
    # apt resolves the nodejs dependency from the container's own mirror and
    # refuses before unpacking when it cannot; bare dpkg would leave the
    # package half-configured instead.
    if command -v apt-get >/dev/null 2>&1; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$DEB" >/dev/null
    else
      dpkg -i "$DEB"
    fi
  fi
elif [ -n "$BUNDLE" ]; then
  # The bundle keeps its module type: Node reads .cjs as CommonJS, .mjs (an
  # older build) as an ES module.
  if [ "$(head -c 4 "$BUNDLE" | od -An -c | tr -d ' ')" = '177ELF' ]; then target=/usr/lib/cert-agent/cert-agent
  else case "$BUNDLE" in *.mjs) target=/usr/lib/cert-agent/cert-agent.mjs ;; *) target=/usr/lib/cert-agent/cert-agent.cjs ;; esac
  fi
  changed=""
  install -d -m 0755 /usr/lib/cert-agent
  cmp -s "$BUNDLE" "$target" || { install -m 0755 "$BUNDLE" "$target"; changed=1; program_changed=1; }
  [ "$(readlink /usr/bin/cert-agent 2>/dev/null)" = "$target" ] || { ln -sfn "$target" /usr/bin/cert-agent; changed=1; program_changed=1; }
  # An admin-installed unit belongs in /etc/systemd/system.
  cmp -s "$UNIT_SRC" /etc/systemd/system/cert-agent.service || { install -D -m 0644 "$UNIT_SRC" /etc/systemd/system/cert-agent.service; changed=1; units_changed=1; }
  for u in cert-agent-pass.service cert-agent.timer; do
    [ -f "$UNIT_DIR/$u" ] || continue
    cmp -s "$UNIT_DIR/$u" "/etc/systemd/system/$u" && continue
    install -D -m 0644 "$UNIT_DIR/$u" "/etc/systemd/system/$u"
    changed=1
    units_changed=1
  done
  [ -d /etc/cert-agent ] || install -d -m 0755 /etc/cert-agent
  [ -d /etc/cert-agent/tls ] || install -d -m 0700 /etc/cert-agent/tls
  [ -d /var/lib/cert-agent ] || install -d -m 0700 /var/lib/cert-agent
  if [ -n "$changed" ]; then say "installed $target"; else say "$target already installed"; fi
fi
version=$(cert-agent --version) || die 70 "the installed cert-agent does not run (cert-agent --version failed); nothing else was changed"
say "$version"
if [ -n "${target:-}" ]; then
  # What an earlier install by another route left beside it, once the new one runs.
  for f in /usr/lib/cert-agent/cert-agent /usr/lib/cert-agent/cert-agent.mjs /usr/lib/cert-agent/cert-agent.cjs; do
    [ "$f" = "$target" ] || rm -f "$f"
  done
fi

# ---- 3. enroll (config + pinned root; prints "unchanged" on a repeat) ------
# A CA that does not answer (69) may only be busy: a whole fleet enrolling at
# once, or a host starved of CPU. Try three times before giving up.
tries=0
until rc=0 && cert-agent enroll || rc=$?; [ "$rc" -eq 0 ]; do
  tries=$((tries + 1))
  [ "$rc" -eq 69 ] && [ "$tries" -lt 3 ] || exit "$rc"
  say "CA did not answer; trying again in 5s"
  sleep 5
done

# ---- 4. paths outside the unit's ReadWritePaths= get a drop-in --------------
# The values were checked in step 1: they need no quoting in a unit file.
extra=""
for d in "${CERT_AGENT_CERT_DIR:-}" "${CERT_AGENT_STATE_DIR:-}" "${CERT_AGENT_WEBROOT:-}"; do
  case "$d" in ''|/etc/cert-agent|/etc/cert-agent/*|/var/lib/cert-agent|/var/lib/cert-agent/*|/var/www/acme-challenge) ;; *) extra="$extra -$d" ;; esac
done
# A webroot (a document root: the agent writes .well-known/acme-challenge/
# under it) must exist before the unit starts (ProtectSystem=strict cannot
# make a missing path writable); the proxy's workers read it, hence 0755.
# The default is the one the shipped snippet serves.
WEBROOT=${CERT_AGENT_WEBROOT:-}
# Without CERT_AGENT_CHALLENGE, enroll picks webroot for nginx ($CHALLENGE, step 1b).
[ -n "$WEBROOT" ] || [ "$CHALLENGE" != webroot ] || WEBROOT=/var/www/acme-challenge
if [ -n "$WEBROOT" ] && [ ! -d "$WEBROOT" ]; then
  # Remembered, with each missing parent, for --uninstall and apt purge.
  d=$WEBROOT
  while [ -n "$d" ] && [ ! -e "$d" ]; do printf '%s\n' "$d" >> /etc/cert-agent/created-paths; d=${d%/*}; done
  install -d -m 0755 "$WEBROOT"
  say "created $WEBROOT"
fi
# Both services (daemon and timer mode) get it: they share one sandbox.
if [ -n "$extra" ]; then
  want=$(printf '# Written by the cert-agent template hook: paths outside the unit defaults.\n[Service]\nReadWritePaths=%s' "${extra# }")
  for svc in cert-agent cert-agent-pass; do
    DROPIN=/etc/systemd/system/$svc.service.d/paths.conf
    if [ "$(cat "$DROPIN" 2>/dev/null || true)" != "$want" ]; then
      install -d -m 0755 "$(dirname "$DROPIN")"
      printf '%s\n' "$want" > "$DROPIN"
      say "wrote $DROPIN"
      units_changed=1
    fi
  done
fi

# A DNS server outside the units' ranges (dns-01): that address is allowed, nothing more.
if [ -n "$DNS_ADDR" ] && ! in_unit_ranges "$DNS_ADDR"; then
  want=$(printf '# Written by the cert-agent template hook: the dns-01 server, outside the unit defaults.\n[Service]\nIPAddressAllow=%s' "$DNS_ADDR")
  for svc in cert-agent cert-agent-pass; do
    DROPIN=/etc/systemd/system/$svc.service.d/dns-server.conf
    if [ "$(cat "$DROPIN" 2>/dev/null || true)" != "$want" ]; then
      install -d -m 0755 "$(dirname "$DROPIN")"
      printf '%s\n' "$want" > "$DROPIN"
      say "wrote $DROPIN"
      units_changed=1
    fi
  done
elif [ -n "$DNS_ADDR" ] || { [ -n "${CERT_AGENT_CHALLENGE:-}" ] && [ "$CERT_AGENT_CHALLENGE" != dns ]; }; then
  # The server moved into the units' ranges, or dns-01 was given up: an old allowance goes.
  for svc in cert-agent cert-agent-pass; do
    DROPIN=/etc/systemd/system/$svc.service.d/dns-server.conf
    if [ -e "$DROPIN" ]; then
      rm -f "$DROPIN"
      say "removed $DROPIN"
      units_changed=1
    fi
  done
fi

# ---- 5. enable the chosen mode, and the first certificate -----------------
if [ "$MODE" = timer ]; then UNIT=cert-agent.timer; OTHER=cert-agent.service; else UNIT=cert-agent.service; OTHER=cert-agent.timer; fi
if command -v systemctl >/dev/null 2>&1; then
  if systemctl is-enabled --quiet "$OTHER" 2>/dev/null; then
    systemctl disable --quiet "$OTHER"
    say "disabled $OTHER ($MODE mode)"
  fi
  if systemctl is-enabled --quiet "$UNIT" 2>/dev/null; then
    say "$UNIT already enabled"
  else
    [ ! -d /run/systemd/system ] || systemctl daemon-reload
    systemctl enable --quiet "$UNIT"
    say "enabled $UNIT"
  fi
else
  say "no systemctl here: start \`cert-agent run\` from this system's service manager (or \`cert-agent check\` every 5 minutes)"
fi

if [ -d /run/systemd/system ]; then
  [ -z "$units_changed" ] || systemctl daemon-reload
  ! systemctl is-active --quiet "$OTHER" || { systemctl stop "$OTHER"; say "stopped $OTHER"; }
  if [ "$MODE" = timer ]; then
    systemctl is-active --quiet cert-agent.timer || { systemctl start cert-agent.timer; say "started cert-agent.timer"; }
  elif systemctl is-active --quiet cert-agent.service; then
    if [ -n "$units_changed$program_changed" ]; then
      # A new unit or a new program: the daemon must be the new one (its pass
      # processes are started from the program it was started from).
      systemctl restart cert-agent.service
    else
      # Re-reads the config (SIGHUP) in case enroll changed it; checks now.
      systemctl reload cert-agent.service
    fi
  else
    systemctl start cert-agent.service
    say "started cert-agent.service"
  fi
  say "waiting up to ${WAIT}s for the first certificate"
  waited=0
  # Timer mode: one check now instead of at the timer's next run. A check
  # before the retry time after a failure does nothing, so repeating it here
  # does not hammer a CA that is down.
  until { [ "$MODE" != timer ] || systemctl start cert-agent-pass.service; } && cert-agent status >/dev/null 2>&1; do
    if [ "$waited" -ge "$WAIT" ]; then
      cert-agent status || true
      die 75 "no valid certificate after ${WAIT}s; the agent keeps trying (journalctl -u $([ "$MODE" = timer ] && echo cert-agent-pass || echo cert-agent), cert-agent doctor)"
    fi
    sleep 2
    waited=$((waited + 2))
  done
elif cert-agent status >/dev/null 2>&1; then
  say "certificate present and valid; not renewing"
else
  # No running systemd (chroot, image build): one pass now.
  cert-agent renew || die $? "cert-agent renew failed (see above); the $MODE mode retries at boot"
fi

# ---- 6. status -------------------------------------------------------------
rc=0
cert-agent status || rc=$?
exit "$rc"
