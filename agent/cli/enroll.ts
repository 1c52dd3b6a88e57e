/**
 * `cert-agent enroll`: turns flags (or CERT_AGENT_* variables, for template
 * hooks) into the config file and pins the CA. Fields the operator added by
 * hand are kept: the given values are merged into the existing document. The
 * order makes failure harmless: validate everything, prove the pin against
 * the CA, and only then write trust and config. Same input, same file.
 * A change of pins over an existing trust is a re-pin: recorded with who
 * vouched for it (--vouched-by, from the host script that ran enroll).
 */
import { dirname, join } from 'node:path';
import { Document, isDocument, parseDocument, type YAMLMap } from 'yaml';
import { CaUnavailableError, ConfigError, UsageError } from '../lib/errors.js';
import { validateConfig, yamlPosition, yamlReason, type Config } from '../config/config.js';
import { CERTIFICATE_NAME, DEFAULTS, DEFAULT_NAME } from '../config/schema.js';
import { ensurePrivateDir, readIfExists, writeFileAtomic } from '../lib/fs.js';
import { bootstrapTrust, trustFromRootFile } from '../trust/pin.js';
import { loadTrust, recordRepin, saveTrust, trustForPins, VOUCHED_BY, type TrustBundle } from '../trust/file.js';
import { acquireLockWaiting } from '../store/lock.js';
import { secretFileProblem } from '../config/path-safety.js';
import { DAEMON_PID_FILE } from '../store/layout.js';
import { reloadTargets, type TargetDefaults } from '../reload/index.js';
import { ENROLL_FIELDS, type EnrollFlag, type EnrollInput } from './enroll-input.js';

export { enrollInputFrom, parseArgvInput, type EnrollInput } from './enroll-input.js';

/** How long enroll waits for a renewal pass in flight before giving up with exit 75. */
const LOCK_WAIT_MS = 60_000;

export interface EnrollResult {
  configPath: string;
  configChanged: boolean;
  config: Config;
  /** Undefined when the CA was unreachable and allowUnreachable was given. */
  trust: TrustBundle | undefined;
}

/** What a reload target brings (its own defaults); none for a name that is not a target (validation says so). */
function defaultsOf(target: string): TargetDefaults | undefined {
  return Object.hasOwn(reloadTargets, target)
    ? reloadTargets[target as keyof typeof reloadTargets].defaults
    : undefined;
}

/**
 * Defaults that follow the reload target, written into the file so that it
 * says what the agent does: the challenge mode and reload.verify the
 * target brings (nginx: webroot, traefik: proxy, otherwise standalone; for
 * a proxy, its 443).
 * A value the operator chose (a flag, a variable, or a field in the file that
 * is not the default of the previous target) is kept, and so is what an
 * existing file says while its target stays the same.
 */
function applyTargetDefaults(doc: Document, before: Document | undefined, input: EnrollInput, at: EntryPaths): void {
  const own = (path: string[]) => [...at.sections, ...path];
  const targetOf = (d: Document | undefined) =>
    String(d?.getIn(own(['reload', 'target'])) ?? d?.getIn(['reload', 'target']) ?? 'none');
  const target = targetOf(doc);
  // The shared sections existed with the file; an entry's own overrides with that entry.
  const existed = before !== undefined && (!at.sections.length || before.getIn(at.entry) !== undefined);
  const oldTarget = existed ? targetOf(before) : 'none';
  // A first enroll of this certificate, or a change of target over a value that followed the old one.
  const follows = (value: unknown, derived: unknown) => !existed || (target !== oldTarget && value === derived);
  if (input.challenge === undefined) {
    const mode = doc.getIn(own(['challenge', 'mode']));
    const inherited = at.sections.length ? doc.getIn(['challenge', 'mode']) : undefined;
    if (follows(mode ?? inherited ?? 'standalone', defaultsOf(oldTarget)?.challengeMode)) {
      const want = defaultsOf(target)?.challengeMode ?? 'standalone';
      // The file's own default (standalone, or what the shared section says) is said by leaving the field out.
      if (want === (inherited ?? 'standalone')) {
        if (mode !== undefined) doc.deleteIn(own(['challenge', 'mode']));
      } else {
        doc.setIn(own(['challenge', 'mode']), want);
      }
    }
  }
  if (input.verify === undefined) followVerify(doc, own(['reload', 'verify']), target, oldTarget, follows);
}

/** reload.verify at `path` moved to the new target's, when it followed the old one. */
function followVerify(doc: Document, path: Path, target: string, old: string, follows: Follows): void {
  const verify = doc.getIn(path);
  if (!follows(verify, defaultsOf(old)?.verify)) return;
  const want = defaultsOf(target)?.verify;
  if (want) doc.setIn(path, want);
  else if (verify !== undefined) doc.deleteIn(path);
}
type Path = (string | number)[];
type Follows = (value: unknown, derived: unknown) => boolean;

/**
 * Where one certificate's fields go in the document: `entry` its own
 * mapping (the short form's `certificate`, or one item of `certificates`),
 * `sections` the prefix of its challenge and reload fields: the shared
 * sections at the top ([]) while the file has only this certificate, its own
 * overrides inside the entry once there are several.
 */
interface EntryPaths {
  entry: (string | number)[];
  sections: (string | number)[];
}

/**
 * Finds, or makes, the entry `--name` names. No file yet: a list of one.
 * The short form stays the short form for its own certificate and becomes
 * a list when another is added. Without --name, the only certificate.
 */
export function entryFor(doc: Document, name: string | undefined): EntryPaths {
  const short = doc.get('certificate') as { get?(k: string): unknown } | undefined;
  const list = doc.get('certificates') as { items?: { get?(k: string): unknown }[] } | undefined;
  if (!short && !list?.items?.length) {
    doc.set('certificates', doc.createNode([{ name: name ?? DEFAULT_NAME }]));
    return { entry: ['certificates', 0], sections: [] };
  }
  if (short) return shortFormEntry(doc, String(short.get?.('name') ?? DEFAULT_NAME), name);
  const items = list?.items ?? [];
  const names = items.map((i) => String(i.get?.('name') ?? ''));
  if (name === undefined && names.length > 1)
    throw new UsageError(
      `the config has ${names.length} certificates: name one with --name (one of: ${names.join(', ')})`,
    );
  const index = name === undefined ? 0 : names.indexOf(name);
  if (index >= 0) {
    const entry = ['certificates', index];
    // A list of one shares the top sections, unless its entry overrides them: its flags go where they are read from.
    const overrides = ['challenge', 'reload'].some((k) => items[index]?.get?.(k) !== undefined);
    return { entry, sections: names.length > 1 || overrides ? entry : [] };
  }
  doc.addIn(['certificates'], doc.createNode({ name }));
  const entry = ['certificates', names.length];
  return { entry, sections: entry };
}

/** The short form's own certificate, or a list of it and the new one `name` names. */
function shortFormEntry(doc: Document, shortName: string, name: string | undefined): EntryPaths {
  if (name === undefined || name === shortName) return { entry: ['certificate'], sections: [] };
  const first = doc.get('certificate', true) as YAMLMap;
  doc.delete('certificate');
  if (!first.has('name')) first.items.unshift(doc.createPair('name', shortName) as (typeof first.items)[number]);
  keepTraefikFile(doc, first, shortName);
  doc.set('certificates', doc.createNode([first, { name }]));
  return { entry: ['certificates', 1], sections: ['certificates', 1] };
}

/** The short form's certificate, named other than default and made a list, keeps the shared Traefik file it had. */
function keepTraefikFile(doc: Document, first: YAMLMap, name: string): void {
  if (name === DEFAULT_NAME || doc.getIn(['reload', 'target']) !== 'traefik') return;
  const file: unknown = doc.getIn(['reload', 'traefik', 'dynamicFile']) ?? DEFAULTS.traefikDynamicFile;
  first.setIn(['reload', 'traefik', 'dynamicFile'], file);
}

/** Where an enroll field goes for this entry: its own fields into the entry, challenge and reload by `sections`. */
function pathFor(path: readonly string[], at: EntryPaths): (string | number)[] {
  if (path[0] === 'certificate') return [...at.entry, ...path.slice(1)];
  if (path[0] === 'challenge' || path[0] === 'reload') return [...at.sections, ...path];
  return [...path];
}

export function mergeEnrollInput(existing: string | undefined, input: EnrollInput, name?: string): Document {
  const doc = existing ? parseDocument(existing) : new Document({});
  if (!isDocument(doc) || doc.errors.length) {
    const err = doc.errors[0];
    const where = err ? yamlPosition(err).replace(/,$/, '') : '';
    const reason = err ? yamlReason(err) : 'unreadable';
    const what = `the existing config file is not valid YAML${where} (${reason})`;
    throw new ConfigError('', `${what}; fix or remove it before enrolling`);
  }
  const at = entryFor(doc, name);
  for (const f of ENROLL_FIELDS) {
    const value = input[f.flag];
    if (value !== undefined) doc.setIn(pathFor(f.path, at), value);
  }
  applyDnsChoice(doc, input, at);
  // An entry of several that names no target of its own is the shared consumer's: it
  // inherits the shared challenge and verify as they are (chosen by hand or not).
  if (!at.sections.length || doc.getIn([...at.sections, 'reload', 'target']) !== undefined)
    applyTargetDefaults(doc, existing ? parseDocument(existing) : undefined, input, at);
  return doc;
}

const TSIG_FLAGS: EnrollFlag[] = ['tsig-name', 'tsig-algorithm', 'tsig-secret-file'];
const DNS_FLAGS = ENROLL_FIELDS.filter((f) => f.path[1] === 'dns').map((f) => f.flag);

/**
 * The dns-01 form given replaces the other one in the file (a TSIG key or a
 * command, never both), and --challenge other than dns without any dns flag
 * leaves dns-01: its section goes with it.
 */
function applyDnsChoice(doc: Document, input: EnrollInput, at: EntryPaths): void {
  const dns = [...at.sections, 'challenge', 'dns'];
  const tsig = TSIG_FLAGS.some((f) => input[f] !== undefined);
  const command = input['dns-command'] !== undefined;
  if (command && !tsig) doc.deleteIn([...dns, 'tsig']);
  if (tsig && !command) doc.deleteIn([...dns, 'command']);
  const anyDns = DNS_FLAGS.some((f) => input[f] !== undefined);
  if (input.challenge !== undefined && input.challenge !== 'dns' && !anyDns) doc.deleteIn(dns);
}

export async function enroll(
  configPath: string,
  input: EnrollInput,
  now: Date,
  opts: { allowUnreachable?: boolean; vouchedBy?: string; name?: string } = {},
): Promise<EnrollResult> {
  if (opts.name !== undefined && !CERTIFICATE_NAME.test(opts.name))
    throw new UsageError(
      `--name ${JSON.stringify(opts.name)}: lower-case letters, digits, - and _ (up to 63, starting with a letter or digit)`,
    );
  if (opts.vouchedBy !== undefined && !VOUCHED_BY.test(opts.vouchedBy)) {
    throw new UsageError(
      `--vouched-by ${JSON.stringify(opts.vouchedBy)}: 1 to 100 letters, digits, spaces and . _ : @ / - (e.g. "host pve1 ca-hook 103")`,
    );
  }
  const before = readIfExists(configPath);
  const doc = mergeEnrollInput(before, input, opts.name);
  const entry = entryFor(doc, opts.name);
  const missing = missingInputs(doc, entry);
  if (missing.length) throw new UsageError(`enroll needs ${missing.join(', ')} (see cert-agent enroll --help)`);
  let config: Config;
  try {
    const all = validateConfig(doc.toJS());
    const name = String(doc.getIn([...entry.entry, 'name']) ?? DEFAULT_NAME);
    config = all.certificates.find((c) => c.certificate.name === name) ?? all;
  } catch (err) {
    throw err instanceof ConfigError ? asFlagError(err, input) : err;
  }
  checkSecretFile(config, input);
  const trust = await pinnedTrust(config, now, opts.allowUnreachable ?? false);
  const { saved, sameRoots } = await storeTrust(config, trust, now, opts.vouchedBy);
  const text = doc.toString({ lineWidth: 0 });
  const changed = text !== before;
  if (changed) {
    ensurePrivateDir(dirname(configPath), 0o755);
    writeFileAtomic(configPath, text, 0o600);
    signalDaemon(config.stateDir);
  }
  return { configPath, configChanged: changed, config, trust: trust && sameRoots && saved ? saved : trust };
}

/** The CA's roots, proven against the pins (or the root file); undefined when the CA is not up yet and that is allowed. */
async function pinnedTrust(config: Config, now: Date, allowUnreachable: boolean): Promise<TrustBundle | undefined> {
  try {
    return config.ca.rootFile
      ? trustFromRootFile(config.ca.rootFile, config.ca.fingerprints, now)
      : await bootstrapTrust(config.ca.url, config.ca.fingerprints, now);
  } catch (err) {
    // A template hook may run before the CA container is up: with
    // allowUnreachable the config is written and the daemon pins the root
    // (with the same checks) once the CA answers. A wrong pin still fails.
    if (!(err instanceof CaUnavailableError && allowUnreachable)) throw err;
    return undefined;
  }
}

const fingerprintsOf = (t: TrustBundle) =>
  t.roots
    .map((r) => r.fingerprint)
    .sort()
    .join();

/**
 * trust.json is the daemon's too: written under the lock, after any pass in
 * flight. A change of pins is recorded with who vouched for it.
 */
async function storeTrust(
  config: Config,
  trust: TrustBundle | undefined,
  now: Date,
  vouchedBy: string | undefined,
): Promise<{ saved: TrustBundle | undefined; sameRoots: boolean }> {
  ensurePrivateDir(config.stateDir);
  const release = await acquireLockWaiting(config.stateDir, LOCK_WAIT_MS);
  try {
    const saved = trustForPins(config.stateDir, config.ca.fingerprints);
    const sameRoots = !trust || Boolean(saved && fingerprintsOf(saved) === fingerprintsOf(trust));
    if (trust && !sameRoots) {
      const previous = loadTrust(config.stateDir)?.pins ?? [];
      saveTrust(config.stateDir, trust);
      const to = [...config.ca.fingerprints].sort();
      if (previous.length && to.length && [...previous].sort().join() !== to.join()) {
        const by = vouchedBy ?? 'enroll without --vouched-by';
        recordRepin(config.stateDir, { at: now.toISOString(), from: previous, to, vouchedBy: by });
      }
    }
    return { saved, sameRoots };
  } finally {
    release();
  }
}

/** The required inputs neither given nor already in the file, as flag (variable) for the error. */
function missingInputs(doc: Document, { entry, sections }: EntryPaths): string[] {
  const absent = (path: string[]) => {
    const value: unknown = doc.getIn(path);
    if (value === undefined || value === null || value === '') return true;
    return typeof value === 'object' && 'items' in value && Array.isArray(value.items) && !value.items.length;
  };
  const needed: [string, string, boolean][] = [
    ['ca-url', 'URL', absent(['ca', 'url'])],
    ['fingerprint', 'HEX', absent(['ca', 'fingerprint']) && absent(['ca', 'rootFile'])],
    ['domain', 'NAME', absent([...entry, 'domains'] as string[])],
    ['reload-command', 'ARG', commandMissing(doc, sections, absent)],
  ];
  return needed
    .filter(([, , isMissing]) => isMissing)
    .map(([flag, meta]) => `--${flag} ${meta} (${ENROLL_FIELDS.find((f) => f.flag === flag)?.env})`);
}

/** Target command without its argv: an entry's own target needs its own; an inherited one has the shared command. */
function commandMissing(doc: Document, sections: (string | number)[], absent: (path: string[]) => boolean): boolean {
  const own = (path: string[]) => [...sections, ...path] as string[];
  const ownTarget: unknown = doc.getIn(own(['reload', 'target']));
  if (ownTarget !== undefined) return ownTarget === 'command' && absent(own(['reload', 'command']));
  return doc.getIn(['reload', 'target']) === 'command' && absent(['reload', 'command']);
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

/** The TSIG key's file is checked as every load will (root's alone): a config that would not load is not written. */
function checkSecretFile(config: Config, input: EnrollInput): void {
  const file = config.challenge.dns?.tsig?.secretFile;
  const problem = file !== undefined ? secretFileProblem(file) : undefined;
  if (!problem) return;
  const err = new ConfigError('challenge.dns.tsig.secretFile', `${file} ${problem}`);
  throw asFlagError(err, input);
}

/** A config error caused by a flag is reported against the flag, as a usage error. */
function asFlagError(err: ConfigError, input: EnrollInput): Error {
  // A list entry's field (certificates[1] (b).reload.target) is the flag's field of that certificate.
  const inEntry = /^certificates\[\d+\](?: \([^)]*\))?\.(.*)$/.exec(err.field)?.[1];
  const own = inEntry && !/^(challenge|reload)\./.test(inEntry) ? `certificate.${inEntry}` : inEntry;
  const field = (own ?? err.field).replace(/\[\d+\]$/, '');
  const given = ENROLL_FIELDS.filter((f) => input[f.flag] !== undefined);
  const source = given.find((f) => f.path.join('.') === field);
  const message = err.message.replace(/^config: [^:]*: /, '');
  if (source) return new UsageError(`--${source.flag} (${source.env}): ${message}`);
  // A rule between the dns fields (server with tsig, tsig or command) is the dns flags' (or --challenge's) together.
  const dns = field.startsWith('challenge.dns')
    ? (given.find((f) => f.path[1] === 'dns') ?? given.find((f) => f.flag === 'challenge'))
    : undefined;
  return dns ? new UsageError(`--${dns.flag} (${dns.env}): ${field} ${message}`) : err;
}
