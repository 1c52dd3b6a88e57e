/**
 * A TLS client in a namespace of its own (the "client" host of a Topology):
 * one handshake, or a loop of them, trusting exactly one root file, with SNI
 * and the hostname checked, as a browser in another container would.
 */
import type { Topology } from './netns.js';

export interface Handshake {
  ok: boolean;
  /** Lowercase hex serial of the served leaf (also when verification failed). */
  serial?: string;
  /** Node's verdict against the given root only (hostname included). */
  authorized?: boolean;
  authorizationError?: string;
  issuer?: string;
  subjectAltName?: string;
  error?: string;
}

// One handshake trusting exactly the root in caFile (`ca` replaces Node's
// default store), SNI = servername, hostname checked against the certificate.
const HANDSHAKE = `
const tls = require('node:tls'), fs = require('node:fs');
function once(host, port, servername, ca) {
  return new Promise((resolve) => {
    const s = tls.connect({ host, port: Number(port), servername, ca, rejectUnauthorized: false, timeout: 3000 }, () => {
      const c = s.getPeerCertificate();
      let authorizationError = s.authorizationError ? String(s.authorizationError) : undefined;
      if (s.authorized) { const e = tls.checkServerIdentity(servername, c); if (e) authorizationError = e.message; }
      resolve({ ok: true, serial: (c.serialNumber || '').toLowerCase(), authorized: s.authorized && !authorizationError, authorizationError,
        issuer: c.issuer && c.issuer.CN, subjectAltName: c.subjectaltname });
      s.end();
    });
    s.once('timeout', () => s.destroy(new Error('handshake timed out')));
    s.once('error', (e) => resolve({ ok: false, error: e.code || e.message }));
  });
}
`;

const PROBE = `${HANDSHAKE}
const [host, port, servername, caFile] = process.argv.slice(1);
once(host, port, servername, fs.readFileSync(caFile)).then((r) => process.stdout.write(JSON.stringify(r)));
`;

// Handshakes back to back until SIGTERM; prints a summary. A failure is a
// handshake that errors or whose certificate does not verify to the root.
const LOOP = `${HANDSHAKE}
const [host, port, servername, caFile] = process.argv.slice(1);
const ca = fs.readFileSync(caFile);
let total = 0, stop = false; const failures = [], serials = [];
process.on('SIGTERM', () => { stop = true; });
(async () => {
  process.stdout.write('started\\n');
  while (!stop) {
    const r = await once(host, port, servername, ca);
    total++;
    if (!r.ok || !r.authorized) failures.push({ at: new Date().toISOString(), error: r.error || r.authorizationError || 'not authorized', serial: r.serial });
    if (r.serial && serials[serials.length - 1] !== r.serial) serials.push(r.serial);
    await new Promise((res) => setTimeout(res, 20));
  }
  process.stdout.write(JSON.stringify({ total, failures, serials }) + '\\n');
})();
`;

/** One handshake from `fromKey`'s namespace to host:port, trusting only the root in caFile. */
export async function probeTls(
  topo: Topology,
  fromKey: string,
  target: { host: string; port: number; servername: string; caFile: string },
): Promise<Handshake> {
  const r = await topo.exec(
    fromKey,
    [process.execPath, '-e', PROBE, target.host, String(target.port), target.servername, target.caFile],
    { timeoutMs: 15_000 },
  );
  if (r.code !== 0) throw new Error(`TLS probe from ${fromKey} failed to run (exit ${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Handshake;
}

export interface LoopSummary {
  total: number;
  failures: { at: string; error: string; serial?: string }[];
  /** Distinct serials in the order they were first served. */
  serials: string[];
}

/** Starts a handshake loop in `fromKey`'s namespace; stop() ends it and returns what it saw. */
export async function startTlsLoop(
  topo: Topology,
  fromKey: string,
  target: { host: string; port: number; servername: string; caFile: string },
): Promise<{ stop(): Promise<LoopSummary> }> {
  const child = topo.spawn(
    fromKey,
    [process.execPath, '-e', LOOP, target.host, String(target.port), target.servername, target.caFile],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  while (!out.startsWith('started')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`TLS loop did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    async stop() {
      child.kill('SIGTERM');
      await exited;
      const last = out.trim().split('\n').pop() ?? '';
      try {
        return JSON.parse(last) as LoopSummary;
      } catch {
        throw new Error(`TLS loop printed no summary: ${out} ${err}`);
      }
    },
  };
}

/**
 * The leaf a server presents for `servername`, fetched with `openssl
 * s_client` from `fromKey`'s namespace, the chain and the name verified
 * against the root in caFile alone (the command fails otherwise). The PEM,
 * for the caller to read its serial and key type.
 */
export async function servedLeafPem(
  topo: Topology,
  fromKey: string,
  target: { host: string; port: number; servername: string; caFile: string },
): Promise<string> {
  const r = await topo.exec(
    fromKey,
    [
      'openssl',
      's_client',
      '-connect',
      `${target.host}:${target.port}`,
      '-servername',
      target.servername,
      '-CAfile',
      target.caFile,
      '-verify_hostname',
      target.servername,
      '-verify_return_error',
    ],
    { input: '', timeoutMs: 15_000 },
  );
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.stdout)?.[0];
  if (r.code !== 0 || !r.stdout.includes('Verify return code: 0 (ok)') || !pem)
    throw new Error(`openssl s_client to ${target.servername} (exit ${r.code}): ${r.stdout}${r.stderr}`);
  return pem;
}
