/**
 * `cert-agent doctor`: audits the installation, one line per check
 * saying what is wrong and what to do. `--fix` repairs only what cannot make
 * things worse — modes and ownership of the agent's own files — and says what
 * it changed. Exit 0 when nothing is wrong (after fixes), 1 otherwise.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { createServer } from 'node:http';
import { isIP } from '../pki/ip.js';
import { randomBytes, X509Certificate } from 'node:crypto';
import { dirname, join } from 'node:path';
import { loadConfig, type Config } from '../config/config.js';
import { splitHostPort } from '../config/host-port.js';
import { StoreError, TrustError, describeError } from '../lib/errors.js';
import { bootstrapTrust, fetchRoots } from '../trust/pin.js';
import { loadTrust, rootsPem } from '../trust/file.js';
import { certFingerprint } from '../pki/x509.js';
import { assessSet, type FindingCode } from '../pki/assess.js';
import { ownershipForReading, ownershipOf } from '../store/ownership.js';
import { acquireLockWaiting } from '../store/lock.js';
import { CertStore } from '../store/sets.js';
import type { Ownership } from '../store/layout.js';
import { auditOwnedPaths } from '../store/audit.js';
import { nginxConfigDump } from '../reload/nginx.js';
import { openSolver, type Challenge, type Solver } from '../challenge/index.js';
import { readState } from '../store/state.js';
import { inspectPublishedNames } from '../store/published.js';
import { leastNormalDayAllowanceMs } from '../renewal/schedule.js';
import { human } from './status-text.js';
import { servedSerial } from '../reload/verify.js';
import { hostMountsWithReadableKeys, parseMountinfo, sharedMountProblem, type Mount } from './mounts.js';
export { hostMountsWithReadableKeys, parseMountinfo, sharedMountProblem } from './mounts.js';

/** WARN: works now, but leaves little room (it does not change the exit code). */
export type Verdict = 'ok' | 'PROBLEM' | 'FIXED' | 'WARN' | 'skip';
export interface CheckLine {
  verdict: Verdict;
  check: string;
  detail: string;
}

type Add = (verdict: Verdict, check: string, detail: string) => void;

export async function runDoctor(
  configPath: string,
  opts: { fix: boolean; now: Date; selfCheckPort?: number },
): Promise<CheckLine[]> {
  const lines: CheckLine[] = [];
  const add: Add = (verdict, check, detail) => lines.push({ verdict, check, detail });
  let config: Config;
  try {
    config = loadConfig(configPath);
    add('ok', 'config', `${configPath} is valid`);
  } catch (err) {
    add('PROBLEM', 'config', `${describeError(err)}; the other checks need a valid config`);
    return lines;
  }
  let owner: Ownership | undefined;
  try {
    owner = ownershipOf(config);
  } catch (err) {
    add('PROBLEM', 'owner', `${describeError(err)}: create the user/group or change certificate.owner/group`);
  }
  await checkPermissionsLocked(config, owner, opts.fix, add);
  checkMounts(config, add);
  await checkCa(config, opts.now, add);
  checkCertificate(config, opts.now, add);
  checkOutageAllowance(config, add);
  await checkProxyConfig(config, add);
  await checkChallenge(config, add, opts.selfCheckPort);
  checkLastAttempt(config, add);
  await checkServed(config, add);
  return lines;
}

// ---- modes and ownership ----------------------------------------------------

/** How long `doctor --fix` waits for a renewal pass in flight before fixing nothing. */
const FIX_LOCK_WAIT_MS = 30_000;

/**
 * `--fix` changes modes and owners in the state and certificate directories,
 * so it holds the lock like every other writer there; without --fix, or when
 * no state directory exists yet (no agent has run), it only reads.
 */
async function checkPermissionsLocked(
  config: Config,
  owner: Ownership | undefined,
  fix: boolean,
  add: Add,
): Promise<void> {
  if (!fix || !existsSync(config.stateDir)) return checkPermissions(config, owner, fix, add);
  let release: (() => void) | undefined;
  try {
    release = await acquireLockWaiting(config.stateDir, FIX_LOCK_WAIT_MS);
  } catch (err) {
    add('PROBLEM', 'lock', `${describeError(err)}: nothing was fixed; run cert-agent doctor --fix again`);
    return checkPermissions(config, owner, false, add);
  }
  try {
    checkPermissions(config, owner, fix, add);
  } finally {
    release();
  }
}

/** Formats the store's audit of the agent's own paths (store/audit.ts): what each should be and what it is. */
function checkPermissions(config: Config, owner: Ownership | undefined, fix: boolean, add: Add): void {
  const dirs = { stateDir: config.stateDir, certDir: config.certificate.dir };
  const { paths, foreignKeyLink: link } = auditOwnedPaths(dirs, owner, fix);
  if (link) {
    const todo = "run cert-agent renew --force (it puts the agent's link back)";
    const why = `not the agent's link ${link.want}: not followed, not changed`;
    add('PROBLEM', 'private key', `${link.path} is ${link.found}, ${why}; ${todo}`);
  }
  let good = 0;
  for (const a of paths) {
    if ('notOurs' in a) {
      const todo = 'not followed, not changed; remove it and run cert-agent renew --force';
      add('PROBLEM', a.what, `${a.path} is ${a.notOurs}, not the agent's: ${todo}`);
      continue;
    }
    if ('chainProblem' in a) {
      add('PROBLEM', a.what, a.chainProblem);
      continue;
    }
    const { st, uid, gid } = a;
    if (!a.loose && !a.closed && !a.wrongOwner) {
      good++;
      continue;
    }
    const modes = `(mode ${octal4(st.mode)}, want ${octal4(a.mode)})`;
    const who = [st.mode & 0o070 ? 'group' : '', st.mode & 0o007 ? 'others' : ''].filter(Boolean).join(' and ');
    const problems = [
      ...(a.loose ? [`is ${st.mode & 0o044 ? 'readable' : 'accessible'} by ${who} ${modes}`] : []),
      ...(a.closed ? [`is not readable by the consumer group ${gid} ${modes}`] : []),
      ...(a.wrongOwner ? [`is owned by ${st.uid}:${st.gid}, want ${uid}:${gid}`] : []),
    ].join(' and ');
    if (a.fixed) {
      const changed = [
        (st.mode & 0o777) !== a.fixed.mode ? `mode ${octal4(st.mode)} -> ${octal4(a.fixed.mode)}` : '',
        a.fixed.owner ? `owner ${st.uid}:${st.gid} -> ${uid}:${gid}` : '',
      ];
      add('FIXED', a.what, `${a.path}: ${changed.filter(Boolean).join(', ')}`);
    } else if (a.fixError !== undefined) {
      add('PROBLEM', a.what, `${a.path} ${problems}; --fix failed: ${a.fixError}`);
    } else {
      add('PROBLEM', a.what, `${a.path} ${problems}: run cert-agent doctor --fix`);
    }
  }
  if (good) add('ok', 'permissions', `${good} path(s) private and owned as configured`);
}

const octal4 = (m: number) => (m & 0o777).toString(8).padStart(4, '0');

// ---- bind mounts from the host (the legacy shared directory): see mounts.ts --

function checkMounts(config: Config, add: Add): void {
  let mounts: Mount[];
  try {
    mounts = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
  } catch (err) {
    add('skip', 'mounts', `cannot read /proc/self/mountinfo: ${describeError(err)}`);
    return;
  }
  for (const [what, dir] of [
    ['certificate directory', config.certificate.dir],
    ['state directory', config.stateDir],
  ] as const) {
    const problem = sharedMountProblem(existingReal(dir), mounts);
    if (problem)
      add(
        'PROBLEM',
        'mount',
        `${what} ${dir} ${problem}: keys must stay inside this container; use a local directory and remove the mount point from the container config (the old shared-directory setup)`,
      );
    else add('ok', 'mount', `${what} ${dir} is local to this container`);
  }
  checkExposedKeyMounts(mounts, add);
}

/** Any host directory mounted in with private keys others can read, wherever it is mounted. */
export function checkExposedKeyMounts(mounts: Mount[], add: Add): void {
  for (const { mount: m, files } of hostMountsWithReadableKeys(mounts)) {
    const shown = files.slice(0, 3).join(', ') + (files.length > 3 ? ` and ${files.length - 3} more` : '');
    add(
      'PROBLEM',
      'mount',
      `${m.point} is a mount of ${m.root} (from ${m.source}) shared with the host, with private keys ` +
        `anyone can read (${shown}): remove it on the host with \`pct set <ID> -delete mpN\` ` +
        `(the mpN whose mp=${m.point}; or delete that mpN line from /etc/pve/lxc/<ID>.conf), ` +
        'then reboot the container',
    );
  }
}

// ---- CA, trust and the installed set --------------------------------------

async function checkCa(config: Config, now: Date, add: Add): Promise<void> {
  const trust = loadTrust(config.stateDir);
  try {
    if (!trust) {
      if (config.ca.rootFile)
        return add('PROBLEM', 'CA', `no trust.json yet: run cert-agent renew (it pins ${config.ca.rootFile})`);
      await bootstrapTrust(config.ca.url, config.ca.fingerprints, now);
      return add(
        'PROBLEM',
        'CA',
        `${config.ca.url} is reachable and serves the pinned root, but it is not saved yet: run cert-agent renew`,
      );
    }
    const served = (await fetchRoots(config.ca.url, { roots: rootsPem(trust) })).map(certFingerprint);
    const pinned = served.filter(
      (fp) => config.ca.fingerprints.includes(fp) || trust.roots.some((r) => r.fingerprint === fp),
    );
    if (!pinned.length)
      return add(
        'PROBLEM',
        'CA',
        `${config.ca.url} answers over the pinned TLS trust but serves roots ${served.join(', ')}, none pinned: check ca.fingerprint`,
      );
    add('ok', 'CA', `${config.ca.url} is reachable and its TLS chains to the pinned root ${pinned.join(', ')}`);
  } catch (err) {
    if (err instanceof TrustError) {
      const offered = await fetchRoots(config.ca.url, { insecureFirstContact: true }).then(
        (c) => c.map(certFingerprint).join(', '),
        () => 'unknown',
      );
      return add(
        'PROBLEM',
        'CA',
        `${describeError(err)}; the CA offers root ${offered}. If it was recreated on purpose, run: cert-agent enroll --fingerprint <new fingerprint>`,
      );
    }
    add(
      'PROBLEM',
      'CA',
      `${describeError(err)}: check that step-ca runs and ${config.ca.url} is reachable from this container`,
    );
  }
}

function checkCertificate(config: Config, now: Date, add: Add): void {
  let live;
  try {
    live = new CertStore(config.certificate.dir, ownershipForReading(config)).live();
  } catch (err) {
    if (err instanceof StoreError) return add('PROBLEM', 'certificate', describeError(err));
    throw err;
  }
  if (!live)
    return add('PROBLEM', 'certificate', `no certificate installed in ${config.certificate.dir}: run cert-agent renew`);
  const serial = live.cert.serialNumber.toLowerCase();
  const roots = (loadTrust(config.stateDir)?.roots ?? []).map((r) => new X509Certificate(r.pem));
  // The same assessment as the renewal decision, the store and status: one line per kind of check.
  const { findings, root } = assessSet(live, { domains: config.certificate.domains, roots, now });
  const found = (...codes: FindingCode[]) => findings.find((f) => codes.includes(f.code));
  const key = found('key-mismatch');
  if (key) add('PROBLEM', 'key', `${key.message}: run cert-agent renew --force to install a new matching set`);
  else add('ok', 'key', `key.pem matches cert.pem (serial ${serial})`);
  const chain = found('placeholder', 'chain', 'expired', 'not-yet-valid');
  if (chain?.code === 'placeholder') add('PROBLEM', 'chain', `${chain.message} (see the CA line)`);
  else if (chain) add('PROBLEM', 'chain', `${chain.message}: run cert-agent renew --force`);
  else if (root) add('ok', 'chain', `cert.pem + chain.pem verify to the pinned root ${certFingerprint(root)}`);
  const names = found('names-missing');
  if (names) add('PROBLEM', 'names', `${names.message}: run cert-agent renew --force`);
  const published = inspectPublishedNames(config.certificate.dir);
  for (const p of published.filter((n) => n.state !== 'ok')) {
    const keep = p.state === 'regular-file' ? ` and keeps the file as ${p.name}.before-cert-agent` : '';
    const fix = p.state === 'dangling' ? 'it installs a complete set' : `it restores the link${keep}`;
    add('PROBLEM', 'published name', `${p.detail}: run cert-agent renew (${fix}), or let the next check do it`);
  }
  if (published.every((p) => p.state === 'ok')) {
    add('ok', 'published names', `${published.map((p) => p.name).join(', ')} link to the live set`);
  }
}

/** Less than this between the renewal time and expiry leaves no time to notice and fix a CA outage. */
const MIN_NORMAL_DAY_ALLOWANCE_MS = 60 * 60_000;

/** Whether renewal.at and jitter leave the CA room for an outage, for the lifetime the CA actually issues. */
function checkOutageAllowance(config: Config, add: Add): void {
  let live;
  try {
    live = new CertStore(config.certificate.dir, ownershipForReading(config)).live();
  } catch {
    return; // the certificate line already says why it cannot be read
  }
  if (!live || live.placeholder) return;
  const lifetimeMs = new Date(live.cert.validTo).getTime() - new Date(live.cert.validFrom).getTime();
  const least = leastNormalDayAllowanceMs(lifetimeMs, config.renewal);
  const most = leastNormalDayAllowanceMs(lifetimeMs, { at: config.renewal.at - config.renewal.jitter, jitter: 0 });
  const policy = `renewal.at ${config.renewal.at} and jitter ${config.renewal.jitter}`;
  const range = `${human(least / 1000)} to ${human(most / 1000)}`;
  if (least < MIN_NORMAL_DAY_ALLOWANCE_MS) {
    const certs = `the CA's ${human(lifetimeMs / 1000)} certificates`;
    add(
      'WARN',
      'outage allowance',
      `with ${policy}, ${certs} leave only ${range} between renewal and expiry ` +
        'for a CA outage (less than 1h): lower renewal.at, or have the CA issue longer certificates',
    );
  } else {
    add(
      'ok',
      'outage allowance',
      `with ${policy}, the CA's ${human(lifetimeMs / 1000)} certificates leave ${range} ` +
        'between renewal and expiry for a CA outage',
    );
  }
}

// ---- the consumer ---------------------------------------------------------

async function checkProxyConfig(config: Config, add: Add): Promise<void> {
  const dir = config.certificate.dir;
  const target = config.reload.target;
  if (target === 'nginx') {
    const { binary } = config.reload.nginx;
    const dump = await nginxConfigDump(config.reload.nginx, config.reload.timeoutSeconds);
    if ('problem' in dump)
      return add('PROBLEM', 'proxy config', `cannot read nginx's configuration with ${binary} -T: ${dump.problem}`);
    const paths = [
      ...dump.text.replace(/#[^\n]*/g, '').matchAll(/(?<![\w$])(ssl_certificate(?:_key)?)\s+("?)([^";\s]+)\2\s*;/g),
    ].map((m) => ({ directive: m[1], path: m[3] as string }));
    const ours = paths.filter((p) => p.path.startsWith(`${dir}/`));
    const hasCert = ours.some((p) => p.directive === 'ssl_certificate');
    const hasKey = ours.some((p) => p.directive === 'ssl_certificate_key');
    if (hasCert && hasKey)
      return add('ok', 'proxy config', `nginx uses ${[...new Set(ours.map((p) => p.path))].join(', ')}`);
    const others = [...new Set(paths.filter((p) => !p.path.startsWith(`${dir}/`)).map((p) => p.path))];
    return add(
      'PROBLEM',
      'proxy config',
      `nginx does not use the agent's files: set ssl_certificate ${dir}/fullchain.pem; and ssl_certificate_key ${dir}/key.pem;${others.length ? ` (it uses ${others.join(', ')})` : ''}`,
    );
  }
  if (target === 'traefik') {
    const file = config.reload.traefik.dynamicFile;
    if (!existsSync(file))
      return add(
        'PROBLEM',
        'proxy config',
        `${file} does not exist: run cert-agent renew (it writes it), and have Traefik's file provider watch ${dirname(file)}`,
      );
    const text = readFileSync(file, 'utf8');
    if (text.includes(`${dir}/`))
      add(
        'ok',
        'proxy config',
        `${file} names the certificate files in ${dir} (Traefik must load it: providers.file.directory ${dirname(file)})`,
      );
    else add('PROBLEM', 'proxy config', `${file} does not name files in ${dir}: run cert-agent renew to rewrite it`);
    return;
  }
  add(
    'skip',
    'proxy config',
    target === 'command'
      ? `reload.command ${JSON.stringify(config.reload.command)}: cannot tell which files the consumer reads; point it at ${dir}/fullchain.pem and ${dir}/key.pem`
      : 'reload.target is none',
  );
}

/** Every mode: a probe token of our own, presented by the configured solver and fetched as the CA will. */
async function checkChallenge(config: Config, add: Add, selfCheckPort: number | undefined): Promise<void> {
  const { mode, listen, webroot } = config.challenge;
  const { host, port } = splitHostPort(listen);
  // Nothing is created for the operator's site here: the document root must exist.
  if (mode === 'webroot' && !existsSync(webroot)) {
    return add(
      'PROBLEM',
      'challenge',
      `webroot ${webroot} does not exist: create it, and serve it as the ` +
        'document root of the port-80 server (or include snippets/cert-agent-challenge-webroot.conf)',
    );
  }
  let solver: Solver;
  try {
    const nginx = config.reload.target === 'nginx' ? { nginx: config.reload.nginx } : {};
    const names = config.certificate.domains;
    solver = await openSolver(config.challenge, { ...(selfCheckPort ? { selfCheckPort } : {}), ...nginx, names });
  } catch (err) {
    if (mode === 'standalone') {
      const bound = await tryListen(host, port);
      const why = bound === true ? describeError(err) : bound;
      return add(
        'PROBLEM',
        'challenge',
        `cannot bind ${listen} (${why}): another process holds it; stop it, ` +
          'or use challenge.mode webroot or proxy through the server that holds the port',
      );
    }
    if (mode === 'proxy') {
      const why = `${listen} is busy (${describeError(err)})`;
      return add('skip', 'challenge', `${why}; run doctor again when no renewal is in progress`);
    }
    return add('PROBLEM', 'challenge', describeError(err));
  }
  // A probe token of our own, fetched for every name the way the CA will.
  const token = randomBytes(24).toString('base64url');
  try {
    for (const name of config.certificate.domains) {
      const probe: Challenge = {
        type: solver.type,
        identifier: { type: isIP(name) ? 'ip' : 'dns', value: name },
        token,
        keyAuthorization: `${token}.doctor-${randomBytes(8).toString('hex')}`,
      };
      await solver.present(probe);
      try {
        const finding = await solver.selfCheck?.(probe);
        if (finding) add('PROBLEM', 'challenge', finding);
        else {
          const url = `http://${name}/.well-known/acme-challenge/`;
          const from =
            mode === 'standalone' ? `the agent on ${listen} (bound only while the CA validates)` : `the ${mode}`;
          add('ok', 'challenge', `${url} answers from ${from}, checked from this container as the CA fetches it`);
        }
      } finally {
        await solver.cleanup(probe);
      }
    }
  } finally {
    await solver.close();
  }
}

/** Whether host:port can be bound now; true, or the reason it could not. */
function tryListen(host: string, port: number): Promise<true | string> {
  return new Promise((resolve) => {
    const server = createServer((_req, res) => res.writeHead(404).end());
    server.once('error', (err) => resolve((err as NodeJS.ErrnoException).code ?? describeError(err)));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** The last pass failed: its error (with the self-check's finding, when there was one) is what to fix first. */
function checkLastAttempt(config: Config, add: Add): void {
  const last = readState(config.stateDir).lastAttempt;
  if (last?.result === 'failed') {
    add('PROBLEM', 'last renewal', `the attempt at ${last.at} failed: ${last.error ?? 'no detail'}`);
  } else if (last) add('ok', 'last renewal', `the attempt at ${last.at}: ${last.result}`);
}

async function checkServed(config: Config, add: Add): Promise<void> {
  const verify = config.reload.verify;
  let live;
  try {
    live = new CertStore(config.certificate.dir, ownershipForReading(config)).live();
  } catch {
    return; // said under "certificate"
  }
  if (!verify || !live) return;
  const want = live.cert.serialNumber.toLowerCase().replace(/^0+/, '');
  try {
    const seen = await servedSerial(verify, config.certificate.domains[0] as string);
    if (seen.replace(/^0+/, '') === want)
      add('ok', 'served', `${verify} serves the installed certificate (serial ${seen})`);
    else
      add(
        'PROBLEM',
        'served',
        `${verify} serves serial ${seen}, not the installed ${want}: reload the ${config.reload.target === 'none' ? 'server' : config.reload.target} (cert-agent renew --force reloads)`,
      );
  } catch (err) {
    add('PROBLEM', 'served', `no TLS answer from ${verify} (reload.verify): ${describeError(err)}`);
  }
}

// ---- helpers and the command ----------------------------------------------

/** The real path of the nearest existing ancestor, so a directory not yet created is judged by where it will be. */
function existingReal(path: string): string {
  for (let p = path; ; p = dirname(p)) {
    try {
      return p === path ? realpathSync(p) : join(realpathSync(p), path.slice(p.length));
    } catch {
      if (p === dirname(p)) return path;
    }
  }
}

export function renderDoctor(lines: CheckLine[]): string {
  const problems = lines.filter((l) => l.verdict === 'PROBLEM').length;
  const fixed = lines.filter((l) => l.verdict === 'FIXED').length;
  const warned = lines.filter((l) => l.verdict === 'WARN').length;
  const out = lines.map((l) => `${l.verdict.padEnd(8)}${l.check.padEnd(28)}${l.detail}`);
  const extra = [fixed ? `${fixed} fixed` : '', warned ? `${warned} warning(s)` : ''].filter(Boolean).join(', ');
  if (problems) out.push(`doctor: ${problems} problem(s)${extra ? `, ${extra}` : ''}`);
  else out.push(`doctor: all good${extra ? ` (${extra})` : ''}`);
  return out.join('\n') + '\n';
}
