/** Help texts: the command line's specification, with defaults and examples. */
export const HELP: Record<string, string> = {
  main: `cert-agent - keeps this container's TLS certificate valid, issued over ACME by your step-ca

Usage: cert-agent <command> [flags]

Commands:
  enroll      write the config file and pin the CA root (run once, e.g. from a template hook)
  bootstrap   fetch the CA roots, verify the pin, print or write the root PEM
  renew       one pass: renew if due (or --force), install, reload; --dry-run tests it
  run         the daemon: renew on schedule, survive CA outages (started by systemd)
  check       timer mode: one check of the daemon, then exit (started by cert-agent.timer)
  status      what the certificate, renewal, trust and reload look like now
  doctor      audit the installation and say what to fix (--fix repairs modes and owners)
  metrics     print Prometheus metrics (also written to metrics.textfile by the daemon)

Global flags:
  -c, --config PATH   config file (default /etc/cert-agent/config.yaml, or $CERT_AGENT_CONFIG)
  -h, --help          help for any command (also: cert-agent help <command>)
  --version           print the version

Exit codes: 0 ok, 1 failed (see message), 64 bad usage, 65 CA not trusted (pin),
69 CA unreachable or order not done in time, 73 cannot write files,
75 another agent holds the lock, 76 CA answered wrongly or refused a renewal over its API, 78 bad configuration.
status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
doctor: 0 all good, 1 problems found.

Examples:
  cert-agent enroll --ca-url https://ca.internal:9000 --fingerprint 4a5679... --domain app.internal
  cert-agent renew --dry-run
  cert-agent status
  cert-agent doctor --fix

Run 'cert-agent help <command>' (or 'cert-agent <command> --help') for a command's
flags and examples, 'cert-agent help config' for every field of the config file.
Output is plain ASCII when it does not go to a terminal.
`,

  config: `The config file (default /etc/cert-agent/config.yaml): YAML or JSON, validated
whole before anything is touched; an unknown field is an error. \`cert-agent enroll\`
writes it and keeps fields added by hand. Every field, with its default:

  ca.url                      step-ca base URL, https only (required)
  ca.fingerprint              SHA-256 of the CA root, hex, colons allowed; a list pins several
                              roots (required unless ca.rootFile is set)
  ca.provisioner              step-ca ACME provisioner (default acme)
  ca.directory                full ACME directory URL (default {url}/acme/{provisioner}/directory)
  ca.rootFile                 root PEM to trust instead of fetching /roots (default none)
  account.email               ACME account contact (default none)
  certificate.name            its name in status, metrics, logs and file names (default default)
  certificate.domains         DNS names or IP addresses, the first is the subject; a wildcard
                              (*.app.internal) only with challenge.mode dns, an IP address
                              never with it (required)
  certificate.keyType         ec-p256 | ec-p384 | rsa-2048 | rsa-3072 | rsa-4096 (default ec-p256)
  certificate.dir             the key, certificate and chain files (default /etc/cert-agent/tls)
  certificate.owner           user that must read the files, through a group (default root)
  certificate.group           group that reads the files (default root)
  renewal.at                  renew at this share of the lifetime, 0.1 to 0.95 (default 0.66)
  renewal.jitter              random share taken off renewal.at, 0 to 0.3 (default 0.05)
  renewal.check               the daemon's cron schedule, local time (default */5 * * * *)
  renewal.orderTimeout        seconds one ACME order may take, 10 to 3600 (default 600)
  renewal.minAllowance        status warns when the CA-outage allowance falls under this: a
                              share of the lifetime or a duration such as 6h (default 0.25,
                              half of 1 - renewal.at when that is smaller)
  renewal.method              auto | acme | step (default auto): how a live certificate is
                              renewed. auto: over the CA's renewal API (step-ca's /1.0/rekey,
                              a new key, the current certificate as the TLS client
                              certificate: no challenge, no port 80), an ACME order in the
                              same pass when the CA refuses or cannot; step: the API only;
                              acme: an order every time. The first certificate is ACME.
  challenge.mode              standalone | webroot | proxy | dns (default standalone); dns:
                              a TXT record at _acme-challenge.NAME, no port 80, wildcards
  challenge.listen            host:port (default 0.0.0.0:80; proxy 127.0.0.1:8402)
  challenge.webroot           document root for webroot mode (default /var/www/acme-challenge)
  challenge.dns               for mode dns only, and required then: server and tsig (an
                              RFC 2136 update signed with a TSIG key), or command (any
                              other DNS provider), not both
  challenge.dns.server        the DNS server as IP:PORT or [IPv6]:PORT, port 53 unless
                              given; an address, not a host name (required with tsig;
                              with command, optional: it only answers the lookups)
  challenge.dns.zone          the zone the records go in (default: found by an SOA lookup)
  challenge.dns.tsig.name     the TSIG key's name, as bind9's key statement (required with tsig)
  challenge.dns.tsig.algorithm hmac-sha256 | hmac-sha512 (default hmac-sha256)
  challenge.dns.tsig.secretFile the key: bind9's key clause as tsig-keygen prints it,
                              dnssec-keygen's .private file, or the base64 secret
                              alone; root's, mode 0600 or 0400, in directories only
                              root can change (required with tsig)
  challenge.dns.command       argv list, run as COMMAND... present|cleanup NAME VALUE
                              (required unless server and tsig)
  challenge.dns.propagationTimeout seconds to wait until every authoritative server
                              answers the record, 5 to 3600 (default 120)
  challenge.dns.ttl           TTL of the record in seconds, 1 to 86400 (default 60)
  reload.target               nginx | traefik | command | none (default none)
  reload.command              argv list, for target command (required then)
  reload.timeout              seconds a reload step may take, 1 to 600 (default 30)
  reload.traefik.dynamicFile  the file the agent owns (default /etc/traefik/dynamic/cert-agent.yml)
  reload.traefik.entryPoint   the challenge router's entry point in proxy mode (default web)
  reload.nginx.binary         nginx binary (default nginx)
  reload.nginx.config         main config file, nginx -c (default nginx's own)
  reload.verify               host:port where a reload's new serial is checked (default none)
  trust.installSystem         also install the root in the system store (default false)
  metrics.textfile            Prometheus text file (*.prom) written after every check (default none)
  permissions.onDrift         repair | report: what a check does when the key or its
                              directories are open to group or others (default repair)
  stateDir                    account key, trust.json, state.json, lock (default /var/lib/cert-agent)

certificate is the short form of a list of one. Several certificates:
  certificates                a list of entries with the certificate.* fields; name required,
                              unique (a-z 0-9 - _); dir default /etc/cert-agent/certs/NAME;
                              optional challenge (mode, listen, webroot, and dns, which
                              replaces the shared one whole) and reload (target, command,
                              verify, traefik.dynamicFile, default cert-agent-NAME.yml
                              beside the shared one) over the shared sections
One account, one lock and one pass for all; each has its own schedule, backoff
and state file (state-NAME.json; state.json for the one named default). A
consumer shared by several certificates is reloaded once per pass.

  certificates:
    - name: app
      domains: [app.internal]
    - name: grafana
      domains: [grafana.internal]
      keyType: rsa-2048
      reload: { target: command, command: [systemctl, reload, grafana-server] }

Every field with comments: /usr/share/cert-agent/config.example.yaml.
`,
  enroll: `Usage: cert-agent enroll --ca-url URL --fingerprint HEX --domain NAME [--domain NAME...] [--name N] [flags]

Required: --ca-url, --domain, and --fingerprint (or --root-file); with --reload
command also --reload-command; with --challenge dns also --dns-server,
--tsig-name and --tsig-secret-file, or --dns-command. Each missing one is named
(exit 64).

Writes the config file (0600) and pins the CA root: fetches /roots, keeps the root
whose SHA-256 equals --fingerprint, and proves that the CA's own TLS certificate
chains to it. Nothing is written when any of this fails. Running it again with the
same input changes nothing; other fields already in the config file are kept.

Several certificates: --name N adds the certificate N, or changes it, and
leaves every other entry as it is (its --domain, --key-type, --cert-dir,
--owner, --group, and its own --challenge, --listen, --webroot, the dns flags,
--reload, --reload-command, --verify once there are several; --ca-url, --fingerprint and
the rest are shared). The first enroll writes a list of one (named default
without --name); without --name, enroll changes the only certificate, and
needs --name once there are several.

Flags (each also from the environment variable in brackets):
  --ca-url URL          step-ca base URL                        [CERT_AGENT_CA_URL]
  --fingerprint HEX     SHA-256 of the CA root as step certificate fingerprint, openssl
                        x509 -fingerprint -sha256 -noout, or sha256sum of the DER print
                        it; repeat to pin several roots for a planned rotation
                                                                 [CERT_AGENT_FINGERPRINT, comma-separated]
  -d, --domain NAME     name or IP for the certificate; repeat; the first is the
                        subject                                  [CERT_AGENT_DOMAINS, comma-separated]
  --reload TARGET       nginx | traefik | command | none (default none)   [CERT_AGENT_RELOAD]
  --reload-command ARG  with --reload command: the program and its arguments, run
                        without a shell; repeat once per argument, or give one JSON
                        array                                    [CERT_AGENT_RELOAD_COMMAND, a JSON array]
  --challenge MODE      standalone | webroot | proxy | dns; default follows --reload:
                        nginx webroot, traefik proxy (both own port 80), otherwise
                        standalone; dns: a TXT record, no port 80, and wildcards
                        (*.app.internal)                         [CERT_AGENT_CHALLENGE]
  --listen HOST:PORT    challenge listener (default 0.0.0.0:80; proxy 127.0.0.1:8402) [CERT_AGENT_LISTEN]
  --webroot DIR         document root of the port-80 site, as for certbot --webroot-path:
                        tokens go to DIR/.well-known/acme-challenge/ (default
                        /var/www/acme-challenge, served by the shipped snippet) [CERT_AGENT_WEBROOT]
  --dns-server IP:PORT  with --challenge dns: the DNS server the RFC 2136 updates (and
                        the lookups) go to, an address, not a host name; port 53 unless
                        given, [IPv6]:PORT                      [CERT_AGENT_DNS_SERVER]
  --dns-zone ZONE       the zone the records go in (default: found by an SOA lookup at
                        the server)                              [CERT_AGENT_DNS_ZONE]
  --tsig-name NAME      the TSIG key the updates are signed with, as bind9 names it
                                                                 [CERT_AGENT_TSIG_NAME]
  --tsig-algorithm ALG  hmac-sha256 | hmac-sha512 (default hmac-sha256) [CERT_AGENT_TSIG_ALGORITHM]
  --tsig-secret-file PATH
                        the file holding the key's secret: root's, mode 0600, in
                        directories only root can change (checked now and at every
                        load)                                    [CERT_AGENT_TSIG_SECRET_FILE]
  --dns-command ARG     instead of a TSIG key, for any other DNS provider: the program
                        and its arguments, run as ARG... present|cleanup NAME VALUE
                        without a shell; repeat once per argument, or give one JSON
                        array                                    [CERT_AGENT_DNS_COMMAND, a JSON array]
  --dns-propagation-timeout SECONDS
                        how long to wait until every authoritative server answers
                        the record, 5 to 3600 (default 120) [CERT_AGENT_DNS_PROPAGATION_TIMEOUT]
  --verify HOST:PORT    after a reload, check the served serial here (default for
                        nginx and traefik 127.0.0.1:443, otherwise none) [CERT_AGENT_VERIFY]
  --cert-dir DIR        certificate directory (default /etc/cert-agent/tls) [CERT_AGENT_CERT_DIR]
  --state-dir DIR       account, trust and state (default /var/lib/cert-agent) [CERT_AGENT_STATE_DIR]
  --renewal-method M    auto | acme | step: how a live certificate is renewed (default
                        auto: over the CA's renewal API, ACME when it cannot; see
                        'cert-agent help config')                [CERT_AGENT_RENEWAL_METHOD]
  --name N              the certificate to add or change (a-z 0-9 - _; default: the only one,
                        or default for the first)            [CERT_AGENT_NAME]
  --key-type TYPE       ec-p256 (default) | ec-p384 | rsa-2048 | rsa-3072 | rsa-4096 [CERT_AGENT_KEY_TYPE]
  --owner USER          user that must read the certificate files, through its primary
                        group; the files stay root's (default root) [CERT_AGENT_OWNER]
  --group GROUP         group that reads the certificate files (default root) [CERT_AGENT_GROUP]
  --email ADDR          ACME account contact                    [CERT_AGENT_EMAIL]
  --provisioner NAME    step-ca ACME provisioner (default acme)  [CERT_AGENT_PROVISIONER]
  --root-file PATH      use this root PEM instead of /roots      [CERT_AGENT_ROOT_FILE]
  --allow-unreachable   when the CA cannot be reached now (a template booting before the
                        CA container), write the config anyway; the daemon pins the root
                        with the same checks when the CA answers and serves a placeholder
                        until then. A wrong fingerprint still fails. [CERT_AGENT_ALLOW_UNREACHABLE=1]
  --vouched-by TEXT     who vouches for a new fingerprint (e.g. "host pve1 ca-hook 103"), kept
                        with the old and new one and the time; status shows the last re-pin
  -c, --config PATH     where to write the config (default /etc/cert-agent/config.yaml) [CERT_AGENT_CONFIG]

Examples:
  cert-agent enroll --ca-url https://ca.internal:9000 \\
    --fingerprint 4a5679...c0ffee --domain app.internal --domain www.app.internal --reload nginx
  CERT_AGENT_CA_URL=https://ca.internal:9000 CERT_AGENT_FINGERPRINT=4a56... \\
    CERT_AGENT_DOMAINS=app.internal cert-agent enroll
  cert-agent enroll --ca-url https://ca.internal:9000 --fingerprint 4a5679... --domain mail.internal \\
    --reload command --reload-command '["systemctl","reload","postfix"]'
  cert-agent enroll --ca-url https://ca.internal:9000 --fingerprint 4a5679... \\
    --domain '*.app.internal' --domain app.internal --challenge dns --dns-server 10.0.0.53 \\
    --tsig-name cert-agent --tsig-secret-file /etc/cert-agent/tsig.secret
`,
  bootstrap: `Usage: cert-agent bootstrap --ca-url URL --fingerprint HEX [--out FILE]

Fetches the CA's roots from URL/roots, keeps the one whose SHA-256 over DER equals
HEX, proves the CA's TLS certificate chains to it, and prints its PEM (or writes it
to FILE, 0644, atomically). On a mismatch it names the expected and the offered
fingerprints, writes nothing and exits 65.

Flags:
  --ca-url URL        step-ca base URL (required)           [CERT_AGENT_CA_URL]
  --fingerprint HEX   SHA-256 of the root; repeat for several (required, colons allowed)
                                                            [CERT_AGENT_FINGERPRINT, comma-separated]
  --out FILE          write the PEM here, 0644 (default: print it on stdout)

Examples:
  cert-agent bootstrap --ca-url https://ca.internal:9000 --fingerprint 4a5679... --out /tmp/root.pem
  cert-agent bootstrap --ca-url https://ca.internal:9000 --fingerprint 4a5679... | openssl x509 -noout -subject
`,
  renew: `Usage: cert-agent renew [--force | --dry-run] [--name N] [--config PATH]

One pass, for every certificate (or --name's): check trust, renew each certificate if it is due (renewal.at of its
lifetime, minus jitter) or missing, broken or a placeholder; install the new set
atomically and reload the consumer. With --force, renew now whatever the schedule.
A live certificate is renewed over the CA's renewal API (a new key, the current
certificate as the TLS client certificate, no challenge) unless renewal.method says
acme; with auto, an ACME order follows in the same pass when the CA refuses or the
certificate cannot be renewed that way (expired, no clientAuth, another CA, names
changed), and the output says which way it went and why.
Due or not, the names consumers read (key.pem, cert.pem, ...) are put back as links
into the live set when missing, copied over or pointing elsewhere (a copied file
is kept as <name>.before-cert-agent), and the consumer is reloaded.
Exit 0 when renewed or not due; non-zero (see 'cert-agent --help') on failure, in
which case the current certificate stays in place. With several certificates,
one line (or two) each, headed by its name; a failure is one line on stderr
naming the certificate, the others go on, and the exit code is the first
failure's. A consumer several renewed certificates share is reloaded once.

With --dry-run, the whole path (trust, account, challenge, order, and the
checks an install makes) runs under the lock whether or not renewal is due,
and nothing is kept: the issued certificate is checked and dropped; the live
set, state.json, trust and account files stay as they are and nothing is
reloaded. It tests the ACME order (the first certificate's way, and the fallback's);
'cert-agent doctor' tests the CA's renewal API. It prints what a real renew would do. Exit 0 when the test order
succeeded; otherwise the code of the failure, with its reason.

Flags:
  -f, --force         renew now, even when not due
  --dry-run           test the whole renewal without keeping anything (see above)
  --name N            only this certificate (default: every one)
  -c, --config PATH   config file (default /etc/cert-agent/config.yaml, or $CERT_AGENT_CONFIG)

Examples:
  cert-agent renew            # renew if due
  cert-agent renew --force    # renew now
  cert-agent renew --dry-run  # would renewal work? (a test order at the CA)
  cert-agent renew --name grafana --force   # one certificate of several, now
`,
  run: `Usage: cert-agent run [--config PATH]

The daemon started by cert-agent.service. Checks on renewal.check (a cron
expression in local time, five fields or six with seconds first; default every
5 minutes) and at the exact renewal moment, deciding from the certificate on
disk and the wall clock each time; retries with exponential backoff when the CA
fails; writes a marked self-signed placeholder when the CA is unreachable at first
start. Each check's pass runs in a child process ('cert-agent check', given the
daemon's configuration on stdin), so the daemon itself holds only the schedule.
SIGHUP re-reads the config (keeping the previous one when the file is invalid)
and checks now, after a pass in flight; SIGTERM/SIGINT give a pass in flight
10 s, then stop it.
Logs are JSON lines on stdout; under systemd each line starts with its syslog
priority (<6> info, <4> warn, <3> error), which journald takes as the priority:
journalctl -u cert-agent -p warning shows every failure (docs/logs.md). With
metrics.textfile set, rewrites that file (Prometheus text format) after every check.

Flags:
  -c, --config PATH   config file (default /etc/cert-agent/config.yaml, or $CERT_AGENT_CONFIG)

Exit: 0 after SIGTERM/SIGINT; 78 bad configuration (systemd does not restart);
64 a CERT_AGENT_LOG_LEVEL that is not a level.
Environment: CERT_AGENT_LOG_LEVEL (debug, info, warn, error; default info);
CERT_AGENT_LOG_FORMAT=json (no priority prefix even on a journal stream) or
journal (always the prefix).

Examples:
  systemctl enable --now cert-agent
  cert-agent run --config /etc/cert-agent/config.yaml     # in the foreground
`,
  __pass: `Usage: cert-agent __pass --trigger WHY --daemon-pid PID   (internal)

Internal to the daemon ('cert-agent run'), not for operators: one pass of a
daemon's check, in a child process, so that the resident daemon never loads
the renewal code. The daemon has decided (backoff included); it sends the
configuration it runs with as JSON on stdin, and names itself with
--daemon-pid, honoured only when that is this process's parent (it goes into
daemon.pid, which 'enroll' signals). Otherwise the same pass as 'check':
placeholder, trust refresh, metrics textfile; logs as JSON lines on stdout.

Flags:
  --trigger WHY      why the daemon checks: start, cron, timer, SIGHUP, config file changed (default daemon)
  --daemon-pid PID   the daemon's pid; must be the parent process

Exit: 0 after the pass, whatever it did (the outcome is in state.json);
75 another cert-agent holds the lock; 64 not started by the daemon.

Example (what the daemon runs):
  cert-agent __pass --trigger cron --daemon-pid 1234 < config.json
`,
  check: `Usage: cert-agent check [--config PATH]

Timer mode: does exactly what one check of the daemon ('cert-agent run') does,
then exits, so nothing stays in memory between checks. Started by
cert-agent.timer (every 5 minutes, through cert-agent-pass.service) instead of
running the daemon. After a failed attempt it does nothing, without contacting
the CA, until the retry time recorded in state.json (exponential backoff, as
the daemon); a config file changed since the last pass (its SHA-256 differs
from the one recorded in state.json) is checked at once.
Otherwise one pass: renew if due (same renewal time and jitter as the daemon),
install, reload and verify, pin the CA root when it first answers, serve a
marked self-signed placeholder while the CA cannot be reached and nothing
usable is installed. With metrics.textfile set, rewrites that file after the
pass. Logs are JSON lines on stdout (journald).

The difference to the daemon: renewals and retries happen at the next timer
run, not at their exact moment (up to one timer period later; 5 minutes by
default). renewal.check is not read: the timer's OnCalendar= sets the period.

The daemon runs each of its checks' passes as the internal command
'cert-agent __pass' (see 'cert-agent help __pass'), not as this one.

Flags:
  --config PATH   config file (default /etc/cert-agent/config.yaml, or $CERT_AGENT_CONFIG)

Exit: 0 after the check, whatever the pass did (the outcome is in 'cert-agent
status', state.json and the log; the next run retries); 78 bad configuration.
Environment: CERT_AGENT_LOG_LEVEL (default info).

Examples:
  systemctl disable --now cert-agent.service && systemctl enable --now cert-agent.timer
  cert-agent check --config /etc/cert-agent/config.yaml     # one check by hand
  journalctl -u cert-agent-pass.service                     # what the runs did
`,
  status: `Usage: cert-agent status [--json | --line] [--name N] [--config PATH]

Shows, in one screen: names, serial, issuer, validity and a bar of the lifetime
used; the next renewal (absolute and "in 3h12m"); the last attempt and its
error; whether the self-signed placeholder is in use; the CA URL, the pinned
fingerprint and the trust state; the reload target, its last result and whether
the served certificate matched; the CA-outage allowance (how long the CA may
stay unreachable before the certificate expires, and what the schedule leaves
on a normal day). Reads only files (certificate.dir, stateDir): works without
the daemon and without network. Keeps its start-up caches in
/var/lib/cert-agent/code-cache when that directory is private
(CERT_AGENT_CACHE_DIR). Colour and a block bar on a
terminal; plain ASCII when piped or with NO_COLOR set.
Several certificates: a first line with the worst status and each one's, then
each certificate's screen headed by its name; the exit code is the worst.

Flags:
  -j, --json          the same as a stable JSON document (schema cert-agent.status/v2,
                      documented in docs/status.schema.json): the overall status
                      and problems, and "certificates", one report each
  --line              one line per certificate of tab-separated fields, for shells
                      without a JSON parser: v2, status, names (comma-separated),
                      seconds to expiry, seconds to the next renewal (negative:
                      due), pinned fingerprints, first problem, the certificate's
                      name; "-" where there is no value (without a usable config:
                      one line of the first seven fields, v1)
  --name N            only this certificate (default: every one)
  -c, --config PATH   config file (default /etc/cert-agent/config.yaml, or $CERT_AGENT_CONFIG)

The first line follows the monitoring-plugin convention, with performance data:
  cert-agent OK | expiry=79200s;26136:;0:;;86400 allowance=79200s;8640:;0:;;29376
(seconds to expiry: warn where status would warn, crit at expiry, max the
lifetime; CA-outage allowance: warn below renewal.minAllowance, max a normal day). NRPE command, sudoers line and Prometheus files: docs/monitoring.md.

Exit codes (monitoring-plugin convention):
  0 OK
  1 WARNING   placeholder in use, renewal overdue, last attempt or reload failed,
              served certificate stale, CA root not pinned yet, CA-outage
              allowance under renewal.minAllowance
  2 CRITICAL  no certificate, expired, key/certificate mismatch, chain does not
              verify to the pinned root, names missing, trust broken (CA recreated),
              a published file (key.pem, cert.pem, chain.pem, fullchain.pem, ca.pem,
              combined.pem) missing, dangling, a copied file, or a link elsewhere
  3 UNKNOWN   no usable config, or the files cannot be read (the config and the
              state are root's: run it as root, e.g. with sudo)

Examples:
  cert-agent status
  cert-agent status --json | jq -r '.certificates[0].certificate.notAfter'
  cert-agent status >/dev/null; echo $?      # as a Nagios/Icinga check
  sudo -n /usr/bin/cert-agent status | head -1   # what NRPE sees (as user nagios)
  cert-agent status --line | cut -f2,4,8     # status, seconds to expiry, name
  cert-agent status --json | jq -r '.certificates[] | "\\(.name) \\(.status)"'
`,
  doctor: `Usage: cert-agent doctor [--fix] [--name N] [--config PATH]

Audits the installation; one line per check: "ok", "PROBLEM" (with what to do),
"FIXED" (with what --fix changed) or "skip" (with why). The checks:
  config          the config file is valid
  permissions     state directory, account key, certificate directory, sets and
                  private keys: owned by root, readable only by the consumer group
                  (dirs 0750, keys 0640) or, without one, by nobody else (0700,
                  0600); a link where a directory or key belongs is reported,
                  never followed
  mount           certificate and state directory are not on a bind mount or a
                  network share from the host (read from /proc/self/mountinfo):
                  the old shared-directory setup
  CA              the CA is reachable and its TLS chains to the pinned root; names
                  the root it offers when it does not (CA recreated)
  key / chain     key.pem matches cert.pem; the chain verifies to the pinned root
  published name  each of key.pem, cert.pem, chain.pem, fullchain.pem, ca.pem,
                  combined.pem is the link into the live set (renew restores it)
  client auth     the live certificate may authenticate a TLS client (clientAuth),
                  as the CA's renewal API asks (renewal.method auto or step)
  renewal API     the CA renews this certificate over its API: one /1.0/renew with
                  it as the client certificate, the answer checked as an install
                  would and dropped (nothing written; the CA issues one
                  certificate); WARN with auto (renewals then need the ACME
                  challenge path), PROBLEM with step
  proxy config    nginx: \`nginx -T\` shows ssl_certificate/ssl_certificate_key in
                  certificate.dir; traefik: the dynamic file exists and names them
  challenge       the configured mode answers a test token (standalone: the agent
                  binds challenge.listen for a moment), fetched for each name as
                  the CA will, from http://<name>/.well-known/acme-challenge/ on
                  port 80 (the name resolved as this container does); a wrong
                  answer says what answered and what to change (nothing listens,
                  403 with the user and path, 404 missing location, redirect
                  without exception)
  last renewal    the last attempt's error, with the self-check's finding
  outage allowance  WARN (exit unchanged) when renewal.at and jitter leave less
                  than 1h between renewal and expiry for the live certificate's
                  lifetime
  served          with reload.verify: the server presents the installed serial

Flags:
  --fix               repair what is safe: chmod/chown the agent's own files and
                      directories (never anything else); each change is printed
  --name N            only this certificate (default: every one; the shared checks,
                      mount and CA, run once, the others per certificate, labelled
                      with its name when there are several)
  -c, --config PATH   config file (default /etc/cert-agent/config.yaml, or $CERT_AGENT_CONFIG)

Exit codes: 0 nothing wrong (after --fix), 1 at least one PROBLEM.
The CA check needs the network; everything else is local.

Examples:
  cert-agent doctor
  cert-agent doctor --fix
`,
  metrics: `Usage: cert-agent metrics [--config PATH]

Prints the agent's metrics in the Prometheus text format, computed like status
(from files, no network). With metrics.textfile set in the config (an absolute
path ending in .prom, e.g. /var/lib/prometheus/node-exporter/cert-agent.prom),
the daemon writes the same text there atomically after every check, for
node_exporter's textfile collector.

Metrics (all gauges). The first two are the agent's; every other one has a
certificate="NAME" label, one sample per certificate:
  cert_agent_status                                   worst of all: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN
  cert_agent_config_ok                                1 if the config could be read and is valid
  cert_agent_certificate_status                       this certificate's status, 0 to 3
  cert_agent_certificate_present                      1 if a certificate is installed
  cert_agent_certificate_info{serial,issuer,names}    always 1
  cert_agent_certificate_not_before_timestamp_seconds
  cert_agent_certificate_not_after_timestamp_seconds
  cert_agent_certificate_placeholder                  1 while the self-signed placeholder is in use
  cert_agent_certificate_key_matches                  1 if key.pem belongs to cert.pem
  cert_agent_certificate_chain_verifies               1 if the chain verifies to the pinned root
  cert_agent_renewal_next_timestamp_seconds
  cert_agent_renewal_remaining_seconds                until renewal is due, as of writing; negative once due
  cert_agent_last_success_timestamp_seconds           0 if never
  cert_agent_last_attempt_timestamp_seconds           0 if never
  cert_agent_consecutive_failures
  cert_agent_last_renewal_method{method}              1; method step (the CA's renewal API) or acme
  cert_agent_last_renewal_fallback                    1 if the last renewal fell back to ACME
  cert_agent_ca_outage_allowance_seconds              until expiry, as of writing
  cert_agent_ca_outage_allowance_normal_day_seconds   expiry minus the renewal time
  cert_agent_ca_outage_allowance_warning_seconds      renewal.minAllowance in seconds
  cert_agent_trust_broken                             1 if the CA no longer chains to the pinned root
  cert_agent_reload_last_success                      absent until the first reload
  cert_agent_served_certificate_match                 absent until reload.verify was checked

Flags:
  -c, --config PATH   config file (default /etc/cert-agent/config.yaml, or $CERT_AGENT_CONFIG)

Exit: 0 printed. Without a usable config (missing, unreadable, invalid) it still
prints cert_agent_status 3 and cert_agent_config_ok 0, says why on stderr and
exits 0, so a scraper has something to alert on.

Examples:
  cert-agent metrics
  # alert: expires within 6 hours
  #   cert_agent_certificate_not_after_timestamp_seconds - time() < 6*3600
`,
};
