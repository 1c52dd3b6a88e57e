/**
 * Configuration: the file format, its defaults, and validation of
 * the whole document before anything on disk is touched. Every error is a
 * ConfigError (exit 78) naming the field, the value and what is allowed.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { isIP } from '../pki/ip.js';
import { parse as parseYaml } from 'yaml';
import { cronProblem } from '../renewal/cron.js';
import { ConfigError, describeError } from '../lib/errors.js';
import { FieldReader, show } from './validate.js';
import { checkPathSafety } from './path-safety.js';
import { fingerprintProblem, parseFingerprint } from '../pki/fingerprint.js';
import { parseDurationSeconds, type AllowanceThreshold } from '../renewal/schedule.js';
import { ipv6Bytes } from '../pki/der.js';

export { DEFAULT_CONFIG_PATH } from './defaults.js';
export const KEY_TYPES = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'] as const;
export const CHALLENGE_MODES = ['standalone', 'webroot', 'proxy'] as const;
export const RELOAD_TARGETS = ['nginx', 'traefik', 'command', 'none'] as const;
export type KeyType = (typeof KEY_TYPES)[number];
export type ChallengeMode = (typeof CHALLENGE_MODES)[number];
export type ReloadTarget = (typeof RELOAD_TARGETS)[number];

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
  stateDir: '/var/lib/cert-agent',
  renewalAt: 0.66,
  /** Share of the lifetime under which status warns about the CA-outage allowance. */
  minAllowanceShare: 0.25,
  jitter: 0.05,
  check: '*/5 * * * *',
  orderTimeoutSeconds: 600,
  standaloneListen: '0.0.0.0:80',
  proxyListen: '127.0.0.1:8402',
  // Outside the 0700 state directory: the proxy's workers (www-data) must read the tokens.
  webroot: '/var/www/acme-challenge',
  traefikDynamicFile: '/etc/traefik/dynamic/cert-agent.yml',
  reloadTimeoutSeconds: 30,
};

/**
 * Reads, parses and validates the file; a missing or unreadable file is a
 * ConfigError too. `command`, when given, names the command for the hint
 * when the file is not readable by this user (it is root's, 0600).
 */
export function loadConfig(path: string, command?: string): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') {
      // status and metrics are what monitoring runs, as its own user.
      const monitoring = ['status', 'metrics'].includes(command ?? '')
        ? ', or for a monitoring user allow exactly that command in sudoers (see docs/monitoring.md)'
        : '';
      const sudo = command ? ` (sudo cert-agent ${command})` : '';
      throw new ConfigError('', `cannot read ${path}: permission denied; run as root${sudo}${monitoring}`);
    }
    const hint = code === 'ENOENT' ? ' (run `cert-agent enroll` to create it)' : '';
    throw new ConfigError('', `cannot read ${path}: ${code ?? describeError(err)}${hint}`);
  }
  const config = parseConfig(text, path);
  checkPathSafety(path, config);
  return config;
}

export function parseConfig(text: string, source = 'configuration'): Config {
  let doc: unknown;
  try {
    // YAML 1.2 is a superset of JSON, so one parser takes both formats.
    doc = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    throw new ConfigError('', `${source}${yamlPosition(err)} is not valid YAML or JSON: ${yamlReason(err)}`);
  }
  return validateConfig(doc);
}

/** ", line 3, column 7" for a YAML parse error, so the operator can go straight to it. */
export function yamlPosition(err: unknown): string {
  const pos = (err as { linePos?: { line: number; col: number }[] }).linePos?.[0];
  return pos ? `, line ${pos.line}, column ${pos.col},` : '';
}

/** The parser's reason on one line, without the position and the source excerpt it appends. */
export function yamlReason(err: unknown): string {
  return describeError(err)
    .replace(/ at line \d+, column \d+:[\s\S]*$/, '')
    .split('\n')[0] as string;
}

export function validateConfig(doc: unknown): Config {
  const root = FieldReader.root(doc);

  const ca = root.section('ca');
  const url = ca.string('url', { check: httpsUrlProblem }).replace(/\/+$/, '');
  const rootFile = ca.optionalString('rootFile', (v) => (isAbsolute(v) ? undefined : 'must be an absolute path'));
  const fingerprints = ca
    .stringList('fingerprint', { acceptSingle: true, check: fingerprintProblem })
    .map((fp) => parseFingerprint(fp) as string);
  if (fingerprints.length === 0 && !rootFile) {
    throw new ConfigError(
      'ca.fingerprint',
      'is required (the SHA-256 of the CA root, from `step certificate fingerprint root_ca.crt`), unless ca.rootFile is set',
    );
  }
  const provisioner = ca.string('provisioner', {
    default: DEFAULTS.provisioner,
    check: (v) => (/^[\w.@+-]+$/.test(v) ? undefined : 'may only contain letters, digits and . _ @ + -'),
  });
  const directory =
    ca.optionalString('directory', httpsUrlProblem) ?? `${url}/acme/${encodeURIComponent(provisioner)}/directory`;
  ca.done();

  const account = root.section('account');
  const email = account.optionalString('email', (v) =>
    /^[^\s@]+@[^\s@]+$/.test(v) ? undefined : 'is not an email address',
  );
  account.done();

  const cert = root.section('certificate');
  const domains = cert.stringList('domains', { required: true, check: identifierProblem }).map((d) => d.toLowerCase());
  const duplicate = domains.find((d, i) => domains.indexOf(d) !== i);
  if (duplicate) throw new ConfigError('certificate.domains', `${JSON.stringify(duplicate)} is listed twice`);
  const keyType = cert.string('keyType', { default: DEFAULTS.keyType, allowed: KEY_TYPES }) as KeyType;
  const dir = cert.string('dir', { default: DEFAULTS.certDir, check: absolutePathProblem });
  const owner = cert.string('owner', { default: 'root', check: accountNameProblem });
  const group = cert.string('group', { default: 'root', check: accountNameProblem });
  cert.done();

  const renewal = root.section('renewal');
  const at = renewal.number('at', { default: DEFAULTS.renewalAt, min: 0.1, max: 0.95 });
  const jitter = renewal.number('jitter', { default: DEFAULTS.jitter, min: 0, max: 0.3 });
  if (jitter >= at) throw new ConfigError('renewal.jitter', `${jitter} must be smaller than renewal.at (${at})`);
  const check = renewal.string('check', {
    default: DEFAULTS.check,
    check: (v) => {
      const problem = cronProblem(v);
      return problem && `is not a valid cron expression (e.g. "*/5 * * * *"): ${problem}`;
    },
  });
  const orderTimeoutSeconds = renewal.number('orderTimeout', {
    default: DEFAULTS.orderTimeoutSeconds,
    min: 10,
    max: 3600,
    integer: true,
  });
  const minAllowance = allowanceThreshold(renewal.raw('minAllowance'), at);
  renewal.done();

  const challenge = root.section('challenge');
  const mode = challenge.string('mode', { default: 'standalone', allowed: CHALLENGE_MODES }) as ChallengeMode;
  const listen = challenge.string('listen', {
    default: mode === 'proxy' ? DEFAULTS.proxyListen : DEFAULTS.standaloneListen,
    check: listenProblem,
  });
  const webroot = challenge.string('webroot', { default: DEFAULTS.webroot, check: absolutePathProblem });
  challenge.done();

  const reload = root.section('reload');
  const target = reload.string('target', { default: 'none', allowed: RELOAD_TARGETS }) as ReloadTarget;
  const command = reload.has('command')
    ? reload.stringList('command', { required: true })
    : (reload.raw('command'), undefined);
  if (target === 'command' && !command)
    throw new ConfigError(
      'reload.command',
      'is required when reload.target is command (an argv list, e.g. [systemctl, reload, haproxy])',
    );
  const timeoutSeconds = reload.number('timeout', {
    default: DEFAULTS.reloadTimeoutSeconds,
    min: 1,
    max: 600,
    integer: true,
  });
  const traefikSection = reload.section('traefik');
  const dynamicFile = traefikSection.string('dynamicFile', {
    default: DEFAULTS.traefikDynamicFile,
    check: absolutePathProblem,
  });
  const entryPoint = traefikSection.string('entryPoint', {
    default: 'web',
    check: (v) => (/^[\w-]+$/.test(v) ? undefined : 'is not a Traefik entry point name'),
  });
  traefikSection.done();
  const nginxSection = reload.section('nginx');
  const nginxBinary = nginxSection.string('binary', { default: 'nginx' });
  const nginxConfig = nginxSection.optionalString('config', absolutePathProblem);
  nginxSection.done();
  const verify = reload.optionalString('verify', listenProblem);
  reload.done();

  const trust = root.section('trust');
  const installSystem = trust.boolean('installSystem', false);
  trust.done();

  const metrics = root.section('metrics');
  const textfile = metrics.optionalString(
    'textfile',
    (v) =>
      absolutePathProblem(v) ??
      (v.endsWith('.prom') ? undefined : "must end in .prom (node_exporter's textfile collector reads only *.prom)"),
  );
  metrics.done();

  const permissions = root.section('permissions');
  const onDrift = permissions.string('onDrift', { default: 'repair', allowed: ['repair', 'report'] }) as
    'repair' | 'report';
  permissions.done();

  const stateDir = root.string('stateDir', { default: DEFAULTS.stateDir, check: absolutePathProblem });
  root.done();

  return {
    ca: { url, fingerprints, provisioner, directory, ...(rootFile ? { rootFile } : {}) },
    account: email ? { email } : {},
    certificate: { domains, keyType, dir, owner, group },
    renewal: { at, jitter, check, orderTimeoutSeconds, minAllowance },
    challenge: { mode, listen, webroot },
    reload: {
      target,
      ...(command ? { command } : {}),
      timeoutSeconds,
      traefik: { dynamicFile, entryPoint },
      nginx: { binary: nginxBinary, ...(nginxConfig ? { config: nginxConfig } : {}) },
      ...(verify ? { verify } : {}),
    },
    trust: { installSystem },
    permissions: { onDrift },
    metrics: textfile ? { textfile } : {},
    stateDir,
  };
}

/**
 * renewal.minAllowance: a share of the lifetime below what the schedule
 * leaves every day (1 − renewal.at; more would warn on every normal day), or
 * a duration such as "6h".
 */
function allowanceThreshold(value: unknown, at: number): AllowanceThreshold {
  if (value === undefined || value === null) {
    const share = DEFAULTS.minAllowanceShare;
    return { share: share < 1 - at ? share : Math.round((1 - at) * 50) / 100 };
  }
  const limit = Math.round((1 - at) * 1000) / 1000;
  const allowed =
    `a share of the lifetime above 0 and below 1 - renewal.at (${limit}), ` + 'or a duration such as 6h, 90m or 1h30m';
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value > 0 && value < 1 - at) return { share: value };
    throw new ConfigError('renewal.minAllowance', `${show(value)} is not allowed; use ${allowed}`);
  }
  const seconds = typeof value === 'string' ? parseDurationSeconds(value) : undefined;
  if (seconds === undefined) {
    throw new ConfigError('renewal.minAllowance', `${show(value)} is not allowed; use ${allowed}`);
  }
  return { seconds };
}

function httpsUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not a URL; expected e.g. https://ca.internal:9000';
  }
  if (url.protocol !== 'https:') return 'must use https:// (step-ca only speaks TLS)';
  if (url.username || url.password) return 'must not contain credentials';
  if (url.search || url.hash) return 'must not contain a query or fragment';
  return undefined;
}

const DNS_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;

/** A DNS name or IP address step-ca can validate over http-01. */
export function identifierProblem(value: string): string | undefined {
  if (isIP(value) === 6) {
    const b = ipv6Bytes(value);
    if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
      // step-ca (Go) takes it for the IPv4 address and issues for that; the names would never match.
      const v4 = b.subarray(12).join('.');
      return `is an IPv4-mapped IPv6 address; clients connect over IPv4, so list the IPv4 form ${v4}`;
    }
  }
  if (isIP(value)) return undefined;
  if (value.startsWith('*.')) return 'is a wildcard; http-01 cannot validate wildcards';
  if (value.length > 253) return 'is longer than 253 characters';
  const labels = value.replace(/\.$/, '').split('.');
  if (!labels.every((l) => DNS_LABEL.test(l))) return 'is not a valid DNS name or IP address';
  return undefined;
}

function absolutePathProblem(value: string): string | undefined {
  if (!isAbsolute(value)) return 'must be an absolute path';
  if (value.includes('\0')) return 'must not contain NUL';
  return undefined;
}

function accountNameProblem(value: string): string | undefined {
  return /^([a-z_][a-z0-9_.-]*\$?|\d+)$/i.test(value) ? undefined : 'is not a user or group name or numeric id';
}

/** host:port, [v6]:port or :port. */
export function listenProblem(value: string): string | undefined {
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:\s[\]]*)):(\d{1,5})$/i.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535)
    return 'must be host:port with a port from 1 to 65535 (e.g. 0.0.0.0:80 or [::]:80)';
  if (m[1] && isIP(m[1]) !== 6) return 'has an invalid IPv6 address in brackets';
  return undefined;
}
