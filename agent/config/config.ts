/**
 * Configuration: reading the file, parsing it, and validation of the whole
 * document before anything on disk is touched. Every error is a ConfigError
 * (exit 78) naming the field, the value and what is allowed. The shape and
 * defaults are schema.ts's, the formats of single values values.ts's.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { cronProblem } from '../lib/cron.js';
import { ConfigError, describeError } from '../lib/errors.js';
import { fingerprintProblem, parseFingerprint } from '../pki/fingerprint.js';
import { FieldReader, show } from './validate.js';
import { checkPathSafety } from './path-safety.js';
import { readCertificates, checkDistinct } from './certificates.js';
import {
  DEFAULTS,
  RENEWAL_METHODS,
  type AgentConfig,
  type AllowanceThreshold,
  type Config,
  type RenewalMethod,
} from './schema.js';
import { readChallenge, readReload } from './sections.js';
import { absolutePathProblem, httpsUrlProblem, parseDurationSeconds } from './values.js';

export type { AgentConfig, ChallengeMode, Config, ReloadTarget } from './schema.js';
export { certificatesOf } from './schema.js';

/**
 * Reads, parses and validates the file; a missing or unreadable file is a
 * ConfigError too. `command`, when given, names the command for the hint
 * when the file is not readable by this user (it is root's, 0600).
 */
export function loadConfig(path: string, command?: string): AgentConfig {
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
  const seen = new Set<string>();
  for (const view of config.certificates) checkPathSafety(path, view, seen);
  return config;
}

export function parseConfig(text: string, source = 'configuration'): AgentConfig {
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

export function validateConfig(doc: unknown): AgentConfig {
  const root = FieldReader.root(doc);
  const ca = readCa(root.section('ca'));
  const account = readAccount(root.section('account'));
  const renewal = readRenewal(root.section('renewal'));
  const challenge = readChallenge(root.section('challenge'));
  const reload = readReload(root.section('reload'));
  const entries = readCertificates(root, { challenge, reload });
  const trust = root.section('trust');
  const installSystem = trust.boolean('installSystem', DEFAULTS.installSystemTrust);
  trust.done();
  const metrics = readMetrics(root.section('metrics'));
  const permissions = root.section('permissions');
  const onDrift = permissions.string('onDrift', { default: DEFAULTS.onDrift, allowed: ['repair', 'report'] }) as
    'repair' | 'report';
  permissions.done();
  const stateDir = root.string('stateDir', { default: DEFAULTS.stateDir, check: absolutePathProblem });
  root.done();
  const shared = { ca, account, renewal, trust: { installSystem }, permissions: { onDrift }, metrics, stateDir };
  const certificates: Config[] = entries.map((entry) => ({ ...shared, ...entry }));
  checkDistinct(certificates, root.has('certificate'));
  certificates
    .filter((c) => c.reload.target === 'traefik')
    .slice(1)
    .forEach((c) => (c.reload = { ...c.reload, traefik: { ...c.reload.traefik, defaultCertificate: false } }));
  return { ...(certificates[0] as Config), certificates };
}

function readCa(ca: FieldReader): Config['ca'] {
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
  return { url, fingerprints, provisioner, directory, ...(rootFile ? { rootFile } : {}) };
}

function readAccount(account: FieldReader): Config['account'] {
  const email = account.optionalString('email', (v) =>
    /^[^\s@]+@[^\s@]+$/.test(v) ? undefined : 'is not an email address',
  );
  account.done();
  return email ? { email } : {};
}

function readRenewal(renewal: FieldReader): Config['renewal'] {
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
  const method = renewal.string('method', {
    default: DEFAULTS.renewalMethod,
    allowed: RENEWAL_METHODS,
  }) as RenewalMethod;
  renewal.done();
  return { at, jitter, check, orderTimeoutSeconds, minAllowance, method };
}

function readMetrics(metrics: FieldReader): Config['metrics'] {
  const textfile = metrics.optionalString(
    'textfile',
    (v) =>
      absolutePathProblem(v) ??
      (v.endsWith('.prom') ? undefined : "must end in .prom (node_exporter's textfile collector reads only *.prom)"),
  );
  metrics.done();
  return textfile ? { textfile } : {};
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
