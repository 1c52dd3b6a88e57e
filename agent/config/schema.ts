/**
 * The configuration's shape and defaults: the one place they are written,
 * which the parser applies, the help text and packaging/config.example.yaml
 * are checked against (test/unit/config/schema.test.ts), and the CLI reads
 * the default path from.
 */
import type { KeyType } from '../pki/keys.js';

/** Where the agent looks for its configuration unless told otherwise (--config, CERT_AGENT_CONFIG). */
export const DEFAULT_CONFIG_PATH = '/etc/cert-agent/config.yaml';

export const CHALLENGE_MODES = ['standalone', 'webroot', 'proxy'] as const;
export const RELOAD_TARGETS = ['nginx', 'traefik', 'command', 'none'] as const;
export type ChallengeMode = (typeof CHALLENGE_MODES)[number];
export type ReloadTarget = (typeof RELOAD_TARGETS)[number];

/** The allowance below which `status` warns: a share of the lifetime, or a fixed duration. */
export type AllowanceThreshold = { share: number } | { seconds: number };

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
  certificate: { domains: string[]; keyType: KeyType; dir: string; owner: string; group: string };
  /**
   * orderTimeoutSeconds: the whole ACME order of one pass, after which it is abandoned.
   * minAllowance: `status` warns when the CA-outage allowance falls under it.
   */
  renewal: { at: number; jitter: number; check: string; orderTimeoutSeconds: number; minAllowance: AllowanceThreshold };
  challenge: { mode: ChallengeMode; listen: string; webroot: string };
  reload: {
    target: ReloadTarget;
    command?: string[];
    timeoutSeconds: number;
    traefik: { dynamicFile: string; entryPoint: string };
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
  owner: 'root',
  group: 'root',
  stateDir: '/var/lib/cert-agent',
  renewalAt: 0.66,
  /** Share of the lifetime under which status warns about the CA-outage allowance. */
  minAllowanceShare: 0.25,
  jitter: 0.05,
  check: '*/5 * * * *',
  orderTimeoutSeconds: 600,
  challengeMode: 'standalone' as ChallengeMode,
  standaloneListen: '0.0.0.0:80',
  proxyListen: '127.0.0.1:8402',
  // Outside the 0700 state directory: the proxy's workers (www-data) must read the tokens.
  webroot: '/var/www/acme-challenge',
  reloadTarget: 'none' as ReloadTarget,
  reloadTimeoutSeconds: 30,
  traefikDynamicFile: '/etc/traefik/dynamic/cert-agent.yml',
  traefikEntryPoint: 'web',
  nginxBinary: 'nginx',
  installSystemTrust: false,
  onDrift: 'repair' as Config['permissions']['onDrift'],
};
