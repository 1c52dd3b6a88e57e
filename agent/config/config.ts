/**
 * Configuration: the file format, its defaults, and validation of
 * the whole document before anything on disk is touched. Every error is a
 * ConfigError (exit 78) naming the field, the value and what is allowed.
 */
import { lstatSync, readFileSync, realpathSync, statSync, type Stats } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { isIP } from 'node:net';
import { parse as parseYaml } from 'yaml';
import cron from 'node-cron';
import { ConfigError, describeError } from '../lib/errors.js';
import { FieldReader } from './validate.js';
import { fingerprintProblem, parseFingerprint } from '../pki/fingerprint.js';
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
  /** orderTimeoutSeconds: the whole ACME order of one pass, after which it is abandoned. */
  renewal: { at: number; jitter: number; check: string; orderTimeoutSeconds: number };
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

/** Reads, parses and validates the file; a missing or unreadable file is a ConfigError too. */
export function loadConfig(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === 'ENOENT' ? ' (run `cert-agent enroll` to create it)' : '';
    throw new ConfigError('', `cannot read ${path}: ${code ?? describeError(err)}${hint}`);
  }
  const config = parseConfig(text, path);
  checkPathSafety(path, config);
  return config;
}

/**
 * The files the agent obeys or writes must not be open to other users: a
 * world-writable config lets anyone choose the reload command run as root,
 * and a symlink another user owns (or a world-writable parent without the
 * sticky bit) lets them redirect where keys are written. Checked at load, on
 * what exists now; missing directories are created later with private modes.
 */
function checkPathSafety(configPath: string, config: Config): void {
  const paths: [string, string][] = [['', configPath], ['certificate.dir', config.certificate.dir], ['stateDir', config.stateDir]];
  if (config.challenge.mode === 'webroot') paths.push(['challenge.webroot', config.challenge.webroot]);
  for (const [field, path] of paths) {
    const problem = unsafePathProblem(resolve(path));
    if (problem) throw new ConfigError(field, `${JSON.stringify(path)} ${problem}`);
  }
  const owned = configOwnershipProblem(resolve(configPath));
  if (owned) throw new ConfigError('', owned);
}

/**
 * The config chooses commands the agent runs as root, so, like sshd's
 * StrictModes, the file and every directory above it (after resolving links)
 * must be owned by root or by the agent's own user and writable by neither
 * group nor others. The sticky bit does not excuse a directory here (sshd
 * makes no exception for it either): a shared /tmp is no place for this file.
 */
export function configOwnershipProblem(path: string): string | undefined {
  const me = process.getuid?.() ?? 0;
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return undefined; // reading it already failed or will fail with its own message
  }
  const owners = me === 0 ? 'root' : `root or uid ${me}`;
  for (let p = real; ; p = dirname(p)) {
    const st = statOrUndefined(p);
    if (!st) return undefined;
    const badOwner = st.uid !== 0 && st.uid !== me;
    const badMode = (st.mode & 0o022) !== 0;
    if (badOwner || badMode) {
      const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
      const shown = JSON.stringify(path);
      const resolved = real !== path ? ` (${real})` : '';
      const what = p === real ? `${shown}${resolved} is` : `${shown} lies under ${p}, which is`;
      const fix = [badOwner ? `chown root ${p}` : '', badMode ? `chmod go-w ${p}` : ''].filter(Boolean).join('; ');
      const where = p === real ? '' : ' or move the file to a directory only root can write (e.g. /etc/cert-agent)';
      const writable = badMode ? ', writable by group or others' : '';
      return `${what} owned by uid ${st.uid} with mode ${mode}${writable}; `
        + 'the configuration chooses commands run as root, so it and every directory above it '
        + `must be owned by ${owners} and not writable by group or others: ${fix}${where}`;
    }
    if (dirname(p) === p) return undefined;
  }
}

function unsafePathProblem(path: string): string | undefined {
  const me = process.getuid?.() ?? 0;
  for (let p = path; ; p = dirname(p)) {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      st = undefined; // not there yet
    }
    const where = p === path ? 'is' : `lies under ${p}, which is`;
    if (st?.isSymbolicLink() && st.uid !== 0 && st.uid !== me) return `${where} a symlink owned by uid ${st.uid}; another user could point it elsewhere`;
    if (st && p === path) {
      const target = st.isSymbolicLink() ? statOrUndefined(p) : st;
      if (target && target.mode & 0o002) return `is writable by every user (mode ${(target.mode & 0o7777).toString(8).padStart(4, '0')}); remove write access for others (chmod o-w)`;
    } else if (st?.isDirectory() && st.mode & 0o002 && !(st.mode & 0o1000)) {
      return `${where} writable by every user without the sticky bit; anyone could replace what is in it`;
    }
    if (dirname(p) === p) return undefined;
  }
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

export function parseConfig(text: string, source = 'configuration'): Config {
  let doc: unknown;
  try {
    // YAML 1.2 is a superset of JSON, so one parser takes both formats.
    doc = parseYaml(text, { prettyErrors: false, uniqueKeys: true });
  } catch (err) {
    throw new ConfigError('', `${source} is not valid YAML or JSON: ${describeError(err)}`);
  }
  return validateConfig(doc);
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
    throw new ConfigError('ca.fingerprint', 'is required (the SHA-256 of the CA root, from `step certificate fingerprint root_ca.crt`), unless ca.rootFile is set');
  }
  const provisioner = ca.string('provisioner', { default: DEFAULTS.provisioner, check: (v) => (/^[\w.@+-]+$/.test(v) ? undefined : 'may only contain letters, digits and . _ @ + -') });
  const directory = ca.optionalString('directory', httpsUrlProblem) ?? `${url}/acme/${encodeURIComponent(provisioner)}/directory`;
  ca.done();

  const account = root.section('account');
  const email = account.optionalString('email', (v) => (/^[^\s@]+@[^\s@]+$/.test(v) ? undefined : 'is not an email address'));
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
  const check = renewal.string('check', { default: DEFAULTS.check, check: (v) => (cron.validate(v) ? undefined : 'is not a valid cron expression (e.g. "*/5 * * * *")') });
  const orderTimeoutSeconds = renewal.number('orderTimeout', {
    default: DEFAULTS.orderTimeoutSeconds, min: 10, max: 3600, integer: true,
  });
  renewal.done();

  const challenge = root.section('challenge');
  const mode = challenge.string('mode', { default: 'standalone', allowed: CHALLENGE_MODES }) as ChallengeMode;
  const listen = challenge.string('listen', { default: mode === 'proxy' ? DEFAULTS.proxyListen : DEFAULTS.standaloneListen, check: listenProblem });
  const webroot = challenge.string('webroot', { default: DEFAULTS.webroot, check: absolutePathProblem });
  challenge.done();

  const reload = root.section('reload');
  const target = reload.string('target', { default: 'none', allowed: RELOAD_TARGETS }) as ReloadTarget;
  const command = reload.has('command') ? reload.stringList('command', { required: true }) : (reload.raw('command'), undefined);
  if (target === 'command' && !command) throw new ConfigError('reload.command', 'is required when reload.target is command (an argv list, e.g. [systemctl, reload, haproxy])');
  const timeoutSeconds = reload.number('timeout', { default: DEFAULTS.reloadTimeoutSeconds, min: 1, max: 600, integer: true });
  const traefikSection = reload.section('traefik');
  const dynamicFile = traefikSection.string('dynamicFile', { default: DEFAULTS.traefikDynamicFile, check: absolutePathProblem });
  const entryPoint = traefikSection.string('entryPoint', { default: 'web', check: (v) => (/^[\w-]+$/.test(v) ? undefined : 'is not a Traefik entry point name') });
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
  const textfile = metrics.optionalString('textfile', (v) => absolutePathProblem(v) ?? (v.endsWith('.prom') ? undefined : "must end in .prom (node_exporter's textfile collector reads only *.prom)"));
  metrics.done();

  const permissions = root.section('permissions');
  const onDrift = permissions.string('onDrift', { default: 'repair', allowed: ['repair', 'report'] }) as 'repair' | 'report';
  permissions.done();

  const stateDir = root.string('stateDir', { default: DEFAULTS.stateDir, check: absolutePathProblem });
  root.done();

  return {
    ca: { url, fingerprints, provisioner, directory, ...(rootFile ? { rootFile } : {}) },
    account: email ? { email } : {},
    certificate: { domains, keyType, dir, owner, group },
    renewal: { at, jitter, check, orderTimeoutSeconds },
    challenge: { mode, listen, webroot },
    reload: { target, ...(command ? { command } : {}), timeoutSeconds, traefik: { dynamicFile, entryPoint }, nginx: { binary: nginxBinary, ...(nginxConfig ? { config: nginxConfig } : {}) }, ...(verify ? { verify } : {}) },
    trust: { installSystem },
    permissions: { onDrift },
    metrics: textfile ? { textfile } : {},
    stateDir,
  };
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
  if (!m || port < 1 || port > 65535) return 'must be host:port with a port from 1 to 65535 (e.g. 0.0.0.0:80 or [::]:80)';
  if (m[1] && isIP(m[1]) !== 6) return 'has an invalid IPv6 address in brackets';
  return undefined;
}

/** Splits a validated listen/verify address into host and port. */
export function splitHostPort(value: string, defaultHost = '0.0.0.0'): { host: string; port: number } {
  const idx = value.lastIndexOf(':');
  const host = value.slice(0, idx).replace(/^\[|\]$/g, '') || defaultHost;
  return { host, port: Number(value.slice(idx + 1)) };
}
