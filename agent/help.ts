/** Help texts: the command line's specification, with defaults and examples. */
export const HELP: Record<string, string> = {
  main: `cert-agent — keeps this container's TLS certificate valid, issued over ACME by your step-ca

Usage: cert-agent <command> [flags]

Commands:
  enroll      write the config file and pin the CA root (run once, e.g. from a template hook)
  bootstrap   fetch the CA roots, verify the pin, print or write the root PEM
  renew       one pass: renew if due (or --force), install, reload
  run         the daemon: renew on schedule, survive CA outages (started by systemd)
  status      what the certificate, renewal, trust and reload look like now
  doctor      audit the installation and say what to fix

Global flags:
  --config PATH   config file (default /etc/cert-agent/config.yaml, or $CERT_AGENT_CONFIG)
  --help          help for any command
  --version       print the version

Exit codes: 0 ok, 1 failed (see message), 64 bad usage, 65 CA not trusted (pin),
69 CA unreachable, 73 cannot write files, 75 another agent holds the lock,
76 CA answered wrongly, 78 bad configuration. status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

Run 'cert-agent <command> --help' for a command's flags and examples.
`,
  enroll: `Usage: cert-agent enroll --ca-url URL --fingerprint HEX --domain NAME [--domain NAME…] [flags]

Writes the config file (0600) and pins the CA root: fetches /roots, keeps the root
whose SHA-256 equals --fingerprint, and proves that the CA's own TLS certificate
chains to it. Nothing is written when any of this fails. Running it again with the
same input changes nothing; other fields already in the config file are kept.

Flags (each also from the environment variable in brackets):
  --ca-url URL          step-ca base URL                        [CERT_AGENT_CA_URL]
  --fingerprint HEX     SHA-256 of the CA root; repeat to pin several roots for a
                        planned rotation (colons allowed)        [CERT_AGENT_FINGERPRINT, comma-separated]
  --domain NAME         name or IP for the certificate; repeat; the first is the
                        subject                                  [CERT_AGENT_DOMAINS, comma-separated]
  --reload TARGET       nginx | traefik | command | none (default none)   [CERT_AGENT_RELOAD]
  --challenge MODE      standalone | webroot | proxy (default standalone) [CERT_AGENT_CHALLENGE]
  --listen HOST:PORT    challenge listener (default 0.0.0.0:80; proxy 127.0.0.1:8402) [CERT_AGENT_LISTEN]
  --webroot DIR         directory for webroot tokens (default /var/lib/cert-agent/acme-challenge) [CERT_AGENT_WEBROOT]
  --verify HOST:PORT    after a reload, check the served serial here [CERT_AGENT_VERIFY]
  --cert-dir DIR        certificate directory (default /etc/cert-agent/tls) [CERT_AGENT_CERT_DIR]
  --state-dir DIR       account, trust and state (default /var/lib/cert-agent) [CERT_AGENT_STATE_DIR]
  --key-type TYPE       ec-p256 (default) | ec-p384 | rsa-2048 | rsa-3072 | rsa-4096 [CERT_AGENT_KEY_TYPE]
  --owner USER          owner of the certificate files (default root) [CERT_AGENT_OWNER]
  --group GROUP         group of the certificate files (default root) [CERT_AGENT_GROUP]
  --email ADDR          ACME account contact                    [CERT_AGENT_EMAIL]
  --provisioner NAME    step-ca ACME provisioner (default acme)  [CERT_AGENT_PROVISIONER]
  --root-file PATH      use this root PEM instead of /roots      [CERT_AGENT_ROOT_FILE]

Examples:
  cert-agent enroll --ca-url https://ca.internal:9000 \\
    --fingerprint 4a5679…c0ffee --domain app.internal --domain www.app.internal --reload nginx
  CERT_AGENT_CA_URL=https://ca.internal:9000 CERT_AGENT_FINGERPRINT=4a56… \\
    CERT_AGENT_DOMAINS=app.internal cert-agent enroll
`,
  bootstrap: `Usage: cert-agent bootstrap --ca-url URL --fingerprint HEX [--out FILE]

Fetches the CA's roots from URL/roots, keeps the one whose SHA-256 over DER equals
HEX, proves the CA's TLS certificate chains to it, and prints its PEM (or writes it
to FILE, 0644, atomically). On a mismatch it names the expected and the offered
fingerprints, writes nothing and exits 65.

Example:
  cert-agent bootstrap --ca-url https://ca.internal:9000 --fingerprint 4a5679… --out /tmp/root.pem
`,
  renew: `Usage: cert-agent renew [--force] [--config PATH]

One pass: check trust, renew the certificate if it is due (renewal.at of its
lifetime, minus jitter) or missing, broken or a placeholder; install the new set
atomically and reload the consumer. With --force, renew now whatever the schedule.
Exit 0 when renewed or not due; non-zero (see 'cert-agent --help') on failure, in
which case the current certificate stays in place.

Examples:
  cert-agent renew            # renew if due
  cert-agent renew --force    # renew now
`,
  run: `Usage: cert-agent run [--config PATH]

The daemon started by cert-agent.service. Checks on renewal.check (cron, default
every 5 minutes) and at the exact renewal moment, deciding from the certificate on
disk and the wall clock each time; retries with exponential backoff when the CA
fails; writes a marked self-signed placeholder when the CA is unreachable at first
start. SIGHUP re-reads the config and checks now; SIGTERM/SIGINT stop cleanly.
Logs are JSON lines on stdout.
`,
  status: `Usage: cert-agent status [--json] [--config PATH]

Shows the certificate (names, serial, issuer, validity, share of lifetime used),
the next renewal, the last attempt and its error, the CA and trust state and the
last reload. Reads disk only: works without the daemon and without network.
Exit: 0 OK, 1 WARNING (placeholder, overdue, last attempt failed), 2 CRITICAL
(missing, expired, key mismatch, trust broken), 3 UNKNOWN (no usable config).

  --json   the same as a stable JSON document (schema cert-agent.status/v1)
`,
  doctor: `Usage: cert-agent doctor [--fix] [--config PATH]

Audits the installation, one line per check with what to do.
`,
};
