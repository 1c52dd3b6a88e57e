/**
 * `cert-agent enroll`: turns flags (or CERT_AGENT_* variables, for template
 * hooks) into the config file and pins the CA. Fields the operator added by
 * hand are kept: the given values are merged into the existing document. The
 * order makes failure harmless: validate everything, prove the pin against
 * the CA, and only then write trust and config. Same input, same file.
 */
import { dirname, join } from 'node:path';
import { Document, isDocument, parseDocument } from 'yaml';
import { CaUnavailableError, ConfigError, UsageError } from '../lib/errors.js';
import { validateConfig, type Config } from '../config/config.js';
import { ensurePrivateDir, readIfExists, writeFileAtomic } from '../lib/fs.js';
import { bootstrapTrust, trustFromRootFile } from '../trust/pin.js';
import { saveTrust, trustForPins, type TrustBundle } from '../trust/file.js';
import { acquireLockWaiting } from '../store/lock.js';
import { DAEMON_PID_FILE } from '../store/layout.js';

/** How long enroll waits for a renewal pass in flight before giving up with exit 75. */
const LOCK_WAIT_MS = 60_000;

/** Each enroll input: flag, environment variable, config path, and whether it is a list. */
export const ENROLL_FIELDS = [
  { flag: 'ca-url', env: 'CERT_AGENT_CA_URL', path: ['ca', 'url'] },
  { flag: 'fingerprint', env: 'CERT_AGENT_FINGERPRINT', path: ['ca', 'fingerprint'], list: true },
  { flag: 'provisioner', env: 'CERT_AGENT_PROVISIONER', path: ['ca', 'provisioner'] },
  { flag: 'root-file', env: 'CERT_AGENT_ROOT_FILE', path: ['ca', 'rootFile'] },
  { flag: 'domain', env: 'CERT_AGENT_DOMAINS', path: ['certificate', 'domains'], list: true },
  { flag: 'key-type', env: 'CERT_AGENT_KEY_TYPE', path: ['certificate', 'keyType'] },
  { flag: 'cert-dir', env: 'CERT_AGENT_CERT_DIR', path: ['certificate', 'dir'] },
  { flag: 'owner', env: 'CERT_AGENT_OWNER', path: ['certificate', 'owner'] },
  { flag: 'group', env: 'CERT_AGENT_GROUP', path: ['certificate', 'group'] },
  { flag: 'email', env: 'CERT_AGENT_EMAIL', path: ['account', 'email'] },
  { flag: 'challenge', env: 'CERT_AGENT_CHALLENGE', path: ['challenge', 'mode'] },
  { flag: 'listen', env: 'CERT_AGENT_LISTEN', path: ['challenge', 'listen'] },
  { flag: 'webroot', env: 'CERT_AGENT_WEBROOT', path: ['challenge', 'webroot'] },
  { flag: 'reload', env: 'CERT_AGENT_RELOAD', path: ['reload', 'target'] },
  { flag: 'verify', env: 'CERT_AGENT_VERIFY', path: ['reload', 'verify'] },
  { flag: 'state-dir', env: 'CERT_AGENT_STATE_DIR', path: ['stateDir'] },
] as const;

export type EnrollInput = Partial<Record<(typeof ENROLL_FIELDS)[number]['flag'], string | string[]>>;

export interface EnrollResult {
  configPath: string;
  configChanged: boolean;
  config: Config;
  /** Undefined when the CA was unreachable and allowUnreachable was given. */
  trust: TrustBundle | undefined;
}

/** Flags win over environment variables; list variables are comma-separated. */
export function enrollInputFrom(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): EnrollInput {
  const input: EnrollInput = {};
  for (const f of ENROLL_FIELDS) {
    const flag = flags[f.flag];
    const fromFlag = Array.isArray(flag) ? (flag.length ? flag : undefined) : (flag as string | undefined);
    const raw = fromFlag ?? env[f.env];
    if (raw === undefined || raw === '') continue;
    const list = 'list' in f && f.list;
    input[f.flag] = list
      ? (Array.isArray(raw) ? raw : raw.split(','))
          .flatMap((v) => v.split(','))
          .map((v) => v.trim())
          .filter(Boolean)
      : (raw as string);
  }
  return input;
}

export function mergeEnrollInput(existing: string | undefined, input: EnrollInput): Document {
  const doc = existing ? parseDocument(existing) : new Document({});
  if (!isDocument(doc) || doc.errors.length)
    throw new ConfigError(
      '',
      `the existing config file is not valid YAML (${doc.errors[0]?.message ?? 'unreadable'}); fix or remove it before enrolling`,
    );
  for (const f of ENROLL_FIELDS) {
    const value = input[f.flag];
    if (value !== undefined) doc.setIn([...f.path], value);
  }
  return doc;
}

export async function enroll(
  configPath: string,
  input: EnrollInput,
  now: Date,
  opts: { allowUnreachable?: boolean } = {},
): Promise<EnrollResult> {
  for (const required of ['ca-url', 'domain'] as const) {
    if (input[required] === undefined && !readIfExists(configPath))
      throw new UsageError(`enroll needs --${required} (or ${ENROLL_FIELDS.find((f) => f.flag === required)?.env})`);
  }
  const before = readIfExists(configPath);
  const doc = mergeEnrollInput(before, input);
  let config: Config;
  try {
    config = validateConfig(doc.toJS());
  } catch (err) {
    throw err instanceof ConfigError ? asFlagError(err, input) : err;
  }
  let trust: TrustBundle | undefined;
  try {
    trust = config.ca.rootFile
      ? trustFromRootFile(config.ca.rootFile, config.ca.fingerprints, now)
      : await bootstrapTrust(config.ca.url, config.ca.fingerprints, now);
  } catch (err) {
    // A template hook may run before the CA container is up: with
    // allowUnreachable the config is written and the daemon pins the root
    // (with the same checks) once the CA answers. A wrong pin still fails.
    if (!(err instanceof CaUnavailableError && opts.allowUnreachable)) throw err;
  }

  ensurePrivateDir(config.stateDir);
  // trust.json is the daemon's too: written under the lock, after any pass in flight.
  const release = await acquireLockWaiting(config.stateDir, LOCK_WAIT_MS);
  let saved: TrustBundle | undefined;
  let sameRoots: boolean;
  try {
    saved = trustForPins(config.stateDir, config.ca.fingerprints);
    sameRoots =
      !trust ||
      Boolean(
        saved &&
        saved.roots
          .map((r) => r.fingerprint)
          .sort()
          .join() ===
          trust.roots
            .map((r) => r.fingerprint)
            .sort()
            .join(),
      );
    if (trust && !sameRoots) saveTrust(config.stateDir, trust);
  } finally {
    release();
  }
  const text = doc.toString({ lineWidth: 0 });
  const changed = text !== before;
  if (changed) {
    ensurePrivateDir(dirname(configPath), 0o755);
    writeFileAtomic(configPath, text, 0o600);
  }
  if (changed) signalDaemon(config.stateDir);
  return { configPath, configChanged: changed, config, trust: trust && sameRoots && saved ? saved : trust };
}

/** A running daemon re-reads the config at once instead of at its next check. */
function signalDaemon(stateDir: string): void {
  const pid = Number(readIfExists(join(stateDir, DAEMON_PID_FILE))?.trim());
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) return;
  // A stale pid file may name an unrelated process by now: signal only a cert-agent.
  const cmdline = readIfExists(`/proc/${pid}/cmdline`) ?? '';
  if (!cmdline.includes('cert-agent')) return;
  try {
    process.kill(pid, 'SIGHUP');
  } catch {
    // Not running (a stale pid file): it reads the new config when it starts.
  }
}

/** A config error caused by a flag is reported against the flag, as a usage error. */
function asFlagError(err: ConfigError, input: EnrollInput): Error {
  const field = err.field.replace(/\[\d+\]$/, '');
  const source = ENROLL_FIELDS.find((f) => f.path.join('.') === field && input[f.flag] !== undefined);
  if (!source) return err;
  return new UsageError(`--${source.flag} (${source.env}): ${err.message.replace(/^config: [\w.[\]]+: /, '')}`);
}
