// Starts a real step-ca (v0.30.2) in a temp dir for integration tests: one
// ACME provisioner, a badger database, and http-01 validation redirected to a
// per-CA port so tests need neither port 80 nor root.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fingerprintOf, makePki, type Pki } from './pki.js';
import { killOnExit, killedWithParent } from './children.js';
import { caJson } from './stepca-config.js';

export type { Pki } from './pki.js';

export { fingerprintOf, makeOtherCa } from './pki.js';

export interface StepCaOptions {
  /** defaultTLSCertDuration of the ACME provisioner, e.g. "24h" (default) or "3m". */
  certDuration?: string;
  /** minTLSCertDuration, default "1m". */
  minCertDuration?: string;
  /** ACME provisioner name, default "acme"; it is part of every ACME URL. */
  provisioner?: string;
  /**
   * Run as in production instead: inside a network namespace, on
   * address:port (default 443), without --acme-http-port, so http-01 is
   * validated on port 80 of each name as the namespace resolves it.
   */
  netns?: StepCaNetns;
  /**
   * The CA's certificate issuance policy, written as ca.json's
   * `authority.policy` (e.g. `{ x509: { allow: { dns: ['*.example'] } } }`):
   * names outside it are refused at new-order with `rejectedIdentifier`.
   * step-ca reads a provisioner's own policy only from its admin database,
   * not from ca.json; with the one ACME provisioner of this harness, the
   * authority's policy is that provisioner's.
   */
  policy?: object;
  /**
   * The ACME provisioner's `claims.disableRenewal`: step-ca then refuses
   * `/1.0/renew` and `/1.0/rekey` (401) for the certificates it issued over
   * ACME, while ACME orders go on. Switch it on a running CA with
   * setDisableRenewal(). See stepca-config.ts for step-ca's behaviour.
   */
  disableRenewal?: boolean;
  /**
   * `--resolver HOST:PORT`: the DNS server step-ca resolves through, for
   * dns-01 (the TXT records) and every name it validates.
   */
  resolver?: string;
}

export interface StepCaNetns {
  /** Namespace name (see test/harness/netns.ts). */
  ns: string;
  address: string;
  port?: number;
  /** Names of the CA; the first one is used in `url`. */
  dnsNames: string[];
}

export interface StepCa {
  /** https://127.0.0.1:PORT (https://localhost:PORT works too). */
  url: string;
  port: number;
  /** Temp dir holding ca.json, pki/, db/ and step-ca.log. */
  dir: string;
  /** Port step-ca dials for http-01 validation (80 with the netns option). */
  acmeHttpPort: number;
  /** Current root PEM; changes on recreate(). */
  rootPem: string;
  /** Lowercase hex SHA-256 over the root's DER, as `step certificate fingerprint` prints. */
  rootFingerprint: string;
  /** `${url}/acme/${provisioner}/directory` */
  directoryUrl: string;
  /** (Re)starts step-ca; resolves once /health answers. */
  start(): Promise<void>;
  /** SIGTERM, then SIGKILL after 5 s; resolves when the process is gone. */
  stop(): Promise<void>;
  /** A CA that lost its database: same root, same port, empty DB. */
  resetDatabase(): Promise<void>;
  /** A CA rebuilt from scratch: new root and intermediate, same port, empty DB. */
  recreate(): Promise<void>;
  /** Files of the current root and intermediate (keys included), e.g. to cross-sign or issue with them. */
  pki: Pki;
  /**
   * Restarts step-ca with ca.json `root` as a list: the CA's own root first,
   * then these PEM certificates, all of which /roots then serves. An empty
   * list goes back to the single root.
   */
  serveExtraRoots(pems: string[]): Promise<void>;
  /** Restarts step-ca with the ACME provisioner's `claims.disableRenewal` set to `on`: same root, port and database. */
  setDisableRenewal(on: boolean): Promise<void>;
  /** Stops and deletes dir; safe to call twice. */
  cleanup(): Promise<void>;
  /** Last ~50 lines of step-ca's log, for failure messages. */
  logTail(): string;
}

export const DEFAULT_STEP_CA_BIN = '/usr/local/lib/cert-agent-test/bin/step-ca';
const START_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5_000;

export function stepCaBinary(): string {
  const bin = process.env.STEP_CA_BIN || DEFAULT_STEP_CA_BIN;
  if (!fs.existsSync(bin)) {
    throw new Error(`step-ca binary not found at ${bin}; run \`make deps\` (or set STEP_CA_BIN)`);
  }
  return bin;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

// ---- the running CA ---------------------------------------------------------

// Readiness only: whether the CA presents the right chain is what the tests
// check, so the harness does not verify TLS here. No agent, so no pooled
// socket outlives a restart.
function healthy(port: number, netns?: StepCaNetns): Promise<boolean> {
  // The CA's namespace is not reachable from here: ask from inside it.
  if (netns) return healthyIn(netns, port);
  return new Promise((resolve) => {
    const req = https.get(
      { host: '127.0.0.1', port, path: '/health', rejectUnauthorized: false, timeout: 1_000, agent: false },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

function healthyIn(netns: StepCaNetns, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(
      'ip',
      [
        'netns',
        'exec',
        netns.ns,
        'curl',
        '-sk',
        '--max-time',
        '1',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        `https://${netns.address}:${port}/health`,
      ],
      (err, stdout) => resolve(!err && stdout.trim() === '200'),
    );
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class StepCaInstance implements StepCa {
  url: string;
  directoryUrl: string;
  rootPem = '';
  rootFingerprint = '';
  pki!: Pki;
  private child: ChildProcess | undefined;
  private readonly logFile: string;
  private readonly pkiDir: string;
  private readonly dbDir: string;
  private cleaned = false;

  constructor(
    readonly dir: string,
    readonly port: number,
    readonly acmeHttpPort: number,
    private readonly opts: Required<Omit<StepCaOptions, 'netns' | 'policy' | 'resolver'>> &
      Pick<StepCaOptions, 'netns' | 'policy' | 'resolver'>,
  ) {
    const net = opts.netns;
    this.url = net ? `https://${net.dnsNames[0]}${port === 443 ? '' : `:${port}`}` : `https://127.0.0.1:${port}`;
    this.directoryUrl = `${this.url}/acme/${encodeURIComponent(opts.provisioner)}/directory`;
    this.logFile = path.join(dir, 'step-ca.log');
    this.pkiDir = path.join(dir, 'pki');
    this.dbDir = path.join(dir, 'db');
  }

  /** Fresh root + intermediate and the ca.json pointing at them. */
  async init(): Promise<void> {
    await fsp.rm(this.pkiDir, { recursive: true, force: true });
    const pki = await makePki(this.pkiDir, 'step-ca test');
    this.pki = pki;
    this.rootPem = pki.rootPem;
    this.rootFingerprint = fingerprintOf(pki.rootPem);
    await this.writeCaJson();
  }

  private async writeCaJson(): Promise<void> {
    const cfg = caJson({
      port: this.port,
      pki: this.pki,
      dbDir: this.dbDir,
      provisioner: this.opts.provisioner,
      min: this.opts.minCertDuration,
      def: this.opts.certDuration,
      disableRenewal: this.opts.disableRenewal,
      ...(this.opts.netns ? { netns: this.opts.netns } : {}),
      ...(this.opts.policy ? { policy: this.opts.policy } : {}),
    });
    await fsp.writeFile(path.join(this.dir, 'ca.json'), JSON.stringify(cfg, null, 2));
  }

  async setDisableRenewal(on: boolean): Promise<void> {
    this.opts.disableRenewal = on;
    const file = path.join(this.dir, 'ca.json');
    // Only the claim changes: whatever else was rewritten (extra roots) stays.
    const cfg = JSON.parse(await fsp.readFile(file, 'utf8')) as {
      authority: { provisioners: { claims: Record<string, unknown> }[] };
    };
    const claims = cfg.authority.provisioners[0]!.claims;
    if (on) claims.disableRenewal = true;
    else delete claims.disableRenewal;
    await fsp.writeFile(file, JSON.stringify(cfg, null, 2));
    await this.start();
  }

  async start(): Promise<void> {
    if (this.cleaned) throw new Error('step-ca harness: start() after cleanup()');
    await this.stop();
    const net = this.opts.netns;
    const args = net
      ? ['ip', 'netns', 'exec', net.ns, stepCaBinary(), path.join(this.dir, 'ca.json')]
      : [
          stepCaBinary(),
          path.join(this.dir, 'ca.json'),
          // --acme-http-port makes http-01 validation dial this port instead of 80,
          // so tests need no privileged port and parallel CAs never collide.
          '--insecure',
          `--acme-http-port=${this.acmeHttpPort}`,
        ];
    if (this.opts.resolver) args.push(`--resolver=${this.opts.resolver}`);
    const argv = killedWithParent(args);
    const env: NodeJS.ProcessEnv = { ...process.env, STEPPATH: path.join(this.dir, 'step'), HOME: this.dir };
    // Validation requests must reach the test's own listener, never a proxy.
    for (const k of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'ALL_PROXY', 'all_proxy']) delete env[k];
    const fd = fs.openSync(this.logFile, 'a');
    fs.writeSync(fd, `\n=== starting step-ca at ${new Date().toISOString()} ===\n`);
    let child: ChildProcess;
    try {
      child = spawn(argv[0]!, argv.slice(1), { cwd: this.dir, env, stdio: ['ignore', fd, fd] });
    } finally {
      fs.closeSync(fd);
    }
    this.child = child;
    killOnExit(child);
    let exited = false;
    child.once('exit', () => {
      exited = true;
    });
    child.once('error', () => {
      exited = true;
    });
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (exited) throw new Error(`step-ca exited during startup (code ${child.exitCode}):\n${this.logTail()}`);
      if (await healthy(this.port, this.opts.netns)) return;
      await sleep(50);
    }
    await this.stop();
    throw new Error(`step-ca did not answer /health within ${START_TIMEOUT_MS} ms:\n${this.logTail()}`);
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await gone;
    clearTimeout(timer);
  }

  async serveExtraRoots(pems: string[]): Promise<void> {
    const files = pems.map((_, i) => path.join(this.pkiDir, `extra_root_${i}.crt`));
    await Promise.all(pems.map((pem, i) => fsp.writeFile(files[i]!, pem)));
    const file = path.join(this.dir, 'ca.json');
    const cfg = JSON.parse(await fsp.readFile(file, 'utf8')) as { root: string | string[] };
    cfg.root = files.length ? [this.pki.rootCrt, ...files] : this.pki.rootCrt;
    await fsp.writeFile(file, JSON.stringify(cfg, null, 2));
    await this.start();
  }

  async resetDatabase(): Promise<void> {
    await this.stop();
    await fsp.rm(this.dbDir, { recursive: true, force: true });
    await this.start();
  }

  async recreate(): Promise<void> {
    await this.stop();
    await fsp.rm(this.dbDir, { recursive: true, force: true });
    await this.init();
    await this.start();
  }

  async cleanup(): Promise<void> {
    await this.stop();
    this.cleaned = true;
    await fsp.rm(this.dir, { recursive: true, force: true });
  }

  logTail(): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8').split('\n').slice(-50).join('\n');
    } catch {
      return '(no step-ca log)';
    }
  }
}

export async function startStepCa(opts: StepCaOptions = {}): Promise<StepCa> {
  const full = {
    certDuration: opts.certDuration ?? '24h',
    minCertDuration: opts.minCertDuration ?? '1m',
    provisioner: opts.provisioner ?? 'acme',
    disableRenewal: opts.disableRenewal ?? false,
    ...(opts.netns ? { netns: opts.netns } : {}),
    ...(opts.policy ? { policy: opts.policy } : {}),
    ...(opts.resolver ? { resolver: opts.resolver } : {}),
  };
  stepCaBinary(); // fail fast, before any temp dir exists
  // Ports are picked by binding port 0 and releasing it, so another process
  // can grab one before step-ca binds it; retry with fresh ports if so.
  for (let attempt = 1; ; attempt++) {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'cert-agent-stepca-'));
    // In its own namespace the CA has every port to itself.
    const port = opts.netns ? (opts.netns.port ?? 443) : await freePort();
    let acmeHttpPort = opts.netns ? 80 : await freePort();
    while (acmeHttpPort === port) acmeHttpPort = await freePort();
    const ca = new StepCaInstance(dir, port, acmeHttpPort, full);
    try {
      await ca.init();
      await ca.start();
      // The agent's http-01 self-check fetches where this CA validates (the
      // agent and bundles started by the tests of this process inherit it).
      process.env.CERT_AGENT_SELF_CHECK_PORT = String(acmeHttpPort);
      return ca;
    } catch (err) {
      const portClash = /address already in use/i.test(ca.logTail());
      await ca.cleanup();
      if (!portClash || attempt >= 3) throw err;
    }
  }
}
