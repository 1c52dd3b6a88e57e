/**
 * The configuration's shape and defaults: the one place they are written,
 * which the parser applies, the help text and packaging/config.example.yaml
 * are checked against (test/unit/config/schema.test.ts), and the CLI reads
 * the default path from.
 */
import type { KeyType } from '../pki/keys.js';

/** Where the agent looks for its configuration unless told otherwise (--config, CERT_AGENT_CONFIG). */
export const DEFAULT_CONFIG_PATH = '/etc/cert-agent/config.yaml';

export const CHALLENGE_MODES = ['standalone', 'webroot', 'proxy', 'dns'] as const;
/** TSIG algorithms the dns-01 solver signs updates with (names as bind9 writes them). */
export const TSIG_ALGORITHMS = ['hmac-sha256', 'hmac-sha512'] as const;
export type TsigAlgorithm = (typeof TSIG_ALGORITHMS)[number];
export const RELOAD_TARGETS = ['nginx', 'traefik', 'command', 'none'] as const;
/**
 * How a certificate that is already live is renewed: `step` over step-ca's
 * own API (a new key over mutual TLS with the current certificate, no
 * challenge), `acme` an ACME order, `auto` the API with ACME as the fallback.
 * A first issuance is always an ACME order.
 */
export const RENEWAL_METHODS = ['auto', 'acme', 'step'] as const;
export type RenewalMethod = (typeof RENEWAL_METHODS)[number];
export type ChallengeMode = (typeof CHALLENGE_MODES)[number];
export type ReloadTarget = (typeof RELOAD_TARGETS)[number];

/** The first field of each certificate: a safe path component, unique in the list. */
export const CERTIFICATE_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/** The name of the short form's one certificate, which keeps 0.1.0's file names (state.json, /etc/cert-agent/tls). */
export const DEFAULT_NAME = 'default';

export interface CertificateSettings {
  name: string;
  domains: string[];
  keyType: KeyType;
  dir: string;
  owner: string;
  group: string;
}

/**
 * challenge.dns: how the dns-01 solver publishes `_acme-challenge` TXT
 * records. Either an RFC 2136 server with a TSIG key (`server` + `tsig`), or
 * `command`, the generic hook for any other DNS provider (then `server`, if
 * given, is only where the zone's authoritative servers are looked up).
 */
export interface DnsChallengeSettings {
  /** Where updates (and the lookups of the zone and its servers) go: an IP address and port. */
  server?: { host: string; port: number };
  /** The zone the records go in (lower case, no trailing dot); found by an SOA lookup at `server` when absent. */
  zone?: string;
  tsig?: { name: string; algorithm: TsigAlgorithm; secretFile: string };
  /** argv, called as `command... present|cleanup NAME VALUE`. */
  command?: string[];
  /** How long to wait for every authoritative server to answer the record. */
  propagationTimeoutSeconds: number;
  /** TTL of the record. */
  ttl: number;
}

/** The allowance below which `status` warns: a share of the lifetime, or a fixed duration. */
export type AllowanceThreshold = { share: number } | { seconds: number };

/**
 * What the agent does for ONE certificate: that certificate's settings, its
 * challenge and reload (each entry's overrides applied on the shared
 * sections) and everything the certificates share (CA, account, renewal
 * policy, trust, state directory). Every step below the pass takes one.
 */
export interface Config {
  ca: {
    url: string;
    /** Normalised SHA-256 pins; more than one allows a planned root rotation. */
    fingerprints: string[];
    provisioner: string;
    /** Full ACME directory URL (derived from url + provisioner unless overridden). */
    directory: string;
    rootFile?: string;
  };
  account: { email?: string };
  /** This certificate's own settings (`name` its id in status, metrics, logs and file names). */
  certificate: CertificateSettings;
  /**
   * orderTimeoutSeconds: the whole ACME order of one pass, after which it is abandoned.
   * minAllowance: `status` warns when the CA-outage allowance falls under it.
   * method: how a live certificate is renewed (RENEWAL_METHODS).
   */
  renewal: {
    at: number;
    jitter: number;
    check: string;
    orderTimeoutSeconds: number;
    minAllowance: AllowanceThreshold;
    method: RenewalMethod;
  };
  challenge: { mode: ChallengeMode; listen: string; webroot: string; dns?: DnsChallengeSettings };
  reload: {
    target: ReloadTarget;
    command?: string[];
    timeoutSeconds: number;
    /** defaultCertificate: false for every Traefik certificate but the first (one default TLS store). */
    traefik: { dynamicFile: string; entryPoint: string; defaultCertificate?: boolean };
    nginx: { binary: string; config?: string };
    verify?: string;
  };
  trust: { installSystem: boolean };
  /** What a pass does when the key or its directories are open to group/others. */
  permissions: { onDrift: 'repair' | 'report' };
  /** textfile: Prometheus text file for node_exporter's textfile collector, rewritten after every pass. */
  metrics: { textfile?: string };
  stateDir: string;
}

export const DEFAULTS = {
  provisioner: 'acme',
  keyType: 'ec-p256' as KeyType,
  certDir: '/etc/cert-agent/tls',
  /** Under which every certificate but the short form's gets a directory named after it. */
  certsDir: '/etc/cert-agent/certs',
  owner: 'root',
  group: 'root',
  stateDir: '/var/lib/cert-agent',
  renewalAt: 0.66,
  /** Share of the lifetime under which status warns about the CA-outage allowance. */
  minAllowanceShare: 0.25,
  jitter: 0.05,
  check: '*/5 * * * *',
  orderTimeoutSeconds: 600,
  renewalMethod: 'auto' as RenewalMethod,
  challengeMode: 'standalone' as ChallengeMode,
  standaloneListen: '0.0.0.0:80',
  proxyListen: '127.0.0.1:8402',
  // Outside the 0700 state directory: the proxy's workers (www-data) must read the tokens.
  webroot: '/var/www/acme-challenge',
  dnsPropagationTimeoutSeconds: 120,
  dnsTtl: 60,
  tsigAlgorithm: 'hmac-sha256' as TsigAlgorithm,
  reloadTarget: 'none' as ReloadTarget,
  reloadTimeoutSeconds: 30,
  traefikDynamicFile: '/etc/traefik/dynamic/cert-agent.yml',
  traefikEntryPoint: 'web',
  nginxBinary: 'nginx',
  installSystemTrust: false,
  onDrift: 'repair' as Config['permissions']['onDrift'],
};

/**
 * The whole configuration file: the view of its first certificate (what a
 * one-certificate file always was) plus the view of every certificate, in
 * the file's order. Only the agent-level code (the pass, status, metrics,
 * doctor, enroll) reads `certificates`; everything per certificate takes a
 * Config.
 */
export type AgentConfig = Config & { certificates: Config[] };

/** The certificates to act on: every one, or the one named (undefined when no certificate has that name). */
export function certificatesOf(config: Config | AgentConfig, name?: string): Config[] | undefined {
  const all = viewsOf(config);
  if (name === undefined) return all;
  const one = all.find((c) => c.certificate.name === name);
  return one ? [one] : undefined;
}

/** With one certificate the top of the document is its view (what a caller changes there counts). */
function viewsOf(config: Config | AgentConfig): Config[] {
  if (!('certificates' in config)) return [config];
  if (config.certificates.length !== 1) return config.certificates;
  const { certificates: _all, ...view } = config;
  return [view];
}

/** Where a certificate lives unless its entry says: 0.1.0's directory for the short form's, a directory of its own for any other. */
export function defaultCertDir(name: string): string {
  return name === DEFAULT_NAME ? DEFAULTS.certDir : `${DEFAULTS.certsDir}/${name}`;
}
