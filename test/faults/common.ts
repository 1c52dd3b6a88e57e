/**
 * Shared pieces of the fault suite: configs written straight to disk, a
 * checker for the live set that trusts nothing but the files and the pinned
 * root, and an esbuild step that turns a fixture script (which imports the
 * agent's modules) into one .mjs a child process can run and be SIGKILLed.
 */
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { nodeEsm, requireBanner } from '../../bundle/esbuild-options.mjs';
import { tempDir } from '../helpers/agent.js';

const ROOT = resolve(import.meta.dirname, '../..');

export interface AgentPaths {
  dir: string;
  config: string;
  certDir: string;
  stateDir: string;
}

export function agentPaths(prefix = 'cert-agent-fault-'): AgentPaths {
  const dir = tempDir(prefix);
  return { dir, config: join(dir, 'config.yaml'), certDir: join(dir, 'tls'), stateDir: join(dir, 'state') };
}

/** Writes a config as JSON (the agent reads YAML 1.2, a superset of JSON). */
export function writeConfig(
  p: AgentPaths,
  ca: { url: string; rootFingerprint: string },
  listenPort: number,
  extra: Record<string, unknown> = {},
): void {
  const { ca: caExtra, certificate, ...rest } = extra as { ca?: object; certificate?: object };
  const doc = {
    ca: { url: ca.url, fingerprint: ca.rootFingerprint, ...caExtra },
    certificate: { domains: ['localhost'], dir: p.certDir, ...certificate },
    challenge: { mode: 'standalone', listen: `127.0.0.1:${listenPort}` },
    stateDir: p.stateDir,
    ...rest,
  };
  writeFileSync(p.config, JSON.stringify(doc, null, 2), { mode: 0o600 });
}

export interface LiveVerdict {
  ok: boolean;
  problem?: string;
  set?: string;
  serial?: string;
}

/**
 * What a reader of the certificate directory gets now: `current` resolved
 * once, key and leaf from that set, the key must match the leaf and the
 * chain must verify to `rootPem` (signatures and validity at `now`).
 */
export function checkLive(certDir: string, rootPem: string, now = new Date()): LiveVerdict {
  // With a writer running, `current` may move (and the old set be pruned)
  // while we read: only a verdict on a set that stayed current counts.
  let verdict = checkOnce(certDir, rootPem, now);
  for (let i = 0; i < 5 && !verdict.ok && currentTarget(certDir) !== verdict.set; i++)
    verdict = checkOnce(certDir, rootPem, now);
  return verdict;
}

function currentTarget(certDir: string): string | undefined {
  try {
    return readlinkSync(join(certDir, 'current')).replace(/^\.sets\//, '');
  } catch {
    return undefined;
  }
}

function checkOnce(certDir: string, rootPem: string, now: Date): LiveVerdict {
  let setDir: string;
  try {
    setDir = realpathSync(join(certDir, 'current'));
  } catch (err) {
    return { ok: false, problem: `current does not resolve: ${(err as Error).message}` };
  }
  const set = setDir.split('/').pop()!;
  try {
    const key = readFileSync(join(setDir, 'key.pem'), 'utf8');
    const pems =
      readFileSync(join(setDir, 'fullchain.pem'), 'utf8').match(
        /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g,
      ) ?? [];
    const [leaf, ...chain] = pems.map((p) => new X509Certificate(p));
    if (!leaf) return { ok: false, set, problem: 'no leaf in fullchain.pem' };
    const serial = leaf.serialNumber.toLowerCase();
    if (!pairMatches(key, leaf)) return { ok: false, set, serial, problem: 'key does not match the leaf' };
    const root = new X509Certificate(rootPem);
    let issuer = leaf;
    for (const c of [...chain, root]) {
      if (!issuer.verify(c.publicKey))
        return { ok: false, set, serial, problem: `${issuer.subject} not signed by ${c.subject}` };
      issuer = c;
    }
    if (now < new Date(leaf.validFrom) || now > new Date(leaf.validTo))
      return { ok: false, set, serial, problem: 'leaf not valid now' };
    // The names a proxy opens must lead through `current`.
    for (const name of ['key.pem', 'cert.pem', 'fullchain.pem']) {
      if (readlinkSync(join(certDir, name)) !== `current/${name}`)
        return { ok: false, set, serial, problem: `${name} does not point through current` };
    }
    return { ok: true, set, serial };
  } catch (err) {
    return { ok: false, set, problem: (err as Error).message };
  }
}

export function pairMatches(keyPem: string, cert: X509Certificate): boolean {
  try {
    const pub = createPublicKey(createPrivateKey(keyPem)).export({ format: 'der', type: 'spki' });
    return pub.equals(cert.publicKey.export({ format: 'der', type: 'spki' }) as Buffer);
  } catch {
    return false;
  }
}

/** Entries of .sets and *.tmp names in the certificate directory. */
export function leftovers(certDir: string): { sets: string[]; tmp: string[]; current?: string; previous?: string } {
  const link = (n: string) =>
    existsSync(join(certDir, n)) ? readlinkSync(join(certDir, n)).replace(/^\.sets\//, '') : undefined;
  const sets = existsSync(join(certDir, '.sets')) ? readdirSync(join(certDir, '.sets')) : [];
  const tmp = existsSync(certDir) ? readdirSync(certDir).filter((e) => e.endsWith('.tmp')) : [];
  const current = link('current');
  const previous = link('previous');
  return { sets, tmp, ...(current ? { current } : {}), ...(previous ? { previous } : {}) };
}

const built = new Map<string, string>();
/** Bundles test/faults/fixtures/<name>.ts (and the agent modules it imports) into one runnable .mjs. */
export async function buildFixture(name: string): Promise<string> {
  const have = built.get(name);
  if (have && existsSync(have)) return have;
  const outDir = tempDir('cert-agent-fixture-');
  process.once('exit', () => rmSync(outDir, { recursive: true, force: true }));
  const outfile = join(outDir, `${name}.mjs`);
  await build({
    entryPoints: [join(ROOT, 'test/faults/fixtures', `${name}.ts`)],
    outfile,
    ...nodeEsm,
    minify: true,
    banner: { js: requireBanner },
  });
  built.set(name, outfile);
  return outfile;
}

/** Every path under dir with its type, mode, size, mtime and owner: "touched" means this changed. */
export function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = lstatSync(p);
    out.push(`${p} ${st.mode.toString(8)} ${st.size} ${st.mtimeMs} ${st.uid}`);
    if (st.isDirectory()) for (const e of readdirSync(p).sort()) walk(join(p, e));
  };
  walk(dir);
  return out;
}

/** The one line a failed command prints for the operator (stderr also carries JSON log events). */
export function plainLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l && !l.startsWith('{'));
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
