/**
 * A real bind9 (`named`) authoritative for the zones a test gives, with TSIG
 * keys and per-zone update-policy lines, for the DNS client's integration
 * tests and the dns-01 tests after them: the server that the agent updates
 * and that step-ca asks. It runs in the foreground (`named -g`, its log on
 * stderr, kept for assertions) as a child that dies with the test, from a
 * fresh temp dir, on 127.0.0.1 and a free port, or inside a network
 * namespace on an address and port the test gives.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killOnExit, killedWithParent } from './children.js';
import { freePort } from './stepca.js';

export interface Bind9Key {
  name: string;
  algorithm: 'hmac-sha256' | 'hmac-sha512';
  /** Base64. */
  secret: string;
}

export interface Bind9Zone {
  /** e.g. "example.test" (no trailing dot). */
  name: string;
  /** Zone file lines after the SOA, NS and the NS's A record, e.g. `www 60 IN A 192.0.2.1`. */
  records?: string[];
  /** update-policy rules without the trailing ";", e.g. `grant k1 zonesub TXT`; none: updates refused. */
  updatePolicy?: string[];
  /** Name of the zone's one NS (default ns1.ZONE, with an A record in the zone: glue for itself). */
  ns?: string;
}

export interface Bind9Options {
  zones: Bind9Zone[];
  keys?: Bind9Key[];
  /** Network namespace to run in (`ip netns exec NS named …`), with `host` and `port` given. */
  ns?: string;
  /** Listen address, default 127.0.0.1. */
  host?: string;
  /** Default: a free port (53 in a namespace). */
  port?: number;
  /**
   * Also a resolver for the namespaces that name it in resolv.conf: recursion
   * on, every name outside its own zones forwarded to this address (the site's
   * primary), as a site's caching resolver would.
   */
  forwardTo?: string;
  /** Log every query (`querylog yes`), with the updates, in the log `log()` returns. */
  querylog?: boolean;
}

export interface DigResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Bind9 {
  address: { host: string; port: number };
  dir: string;
  /** named's log so far (stderr of `named -g`). */
  log(): string;
  /** `dig @host -p port ARGS…`, in the server's namespace when it has one. */
  dig(args: string[]): Promise<DigResult>;
  /** SIGTERM, SIGKILL after 5 s; removes the dir. Safe to call twice. */
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 15_000;

function zoneFile(zone: Bind9Zone, host: string): string {
  const ns = zone.ns ?? `ns1.${zone.name}`;
  const lines = [
    '$TTL 60',
    `@ IN SOA ${ns}. hostmaster.${zone.name}. 1 60 60 600 60`,
    `@ IN NS ${ns}.`,
    ...(ns.endsWith(`.${zone.name}`) ? [`${ns}. IN ${host.includes(':') ? 'AAAA' : 'A'} ${host}`] : []),
    ...(zone.records ?? []),
  ];
  return `${lines.join('\n')}\n`;
}

function namedConf(dir: string, opts: Bind9Options, host: string, port: number): string {
  const listen = host.includes(':')
    ? `listen-on { none; };\n  listen-on-v6 port ${port} { ${host}; };`
    : `listen-on port ${port} { ${host}; };\n  listen-on-v6 { none; };`;
  const keys = (opts.keys ?? []).map((k) => `key "${k.name}" { algorithm ${k.algorithm}; secret "${k.secret}"; };`);
  const zones = opts.zones.map((z) => {
    const policy = z.updatePolicy?.length
      ? `\n  update-policy { ${z.updatePolicy.map((r) => `${r};`).join(' ')} };`
      : '';
    return `zone "${z.name}" {\n  type primary;\n  file "${join(dir, `${z.name}.zone`)}";${policy}\n};`;
  });
  return `options {
  directory "${dir}";
  pid-file "${join(dir, 'named.pid')}";
  session-keyfile "${join(dir, 'session.key')}";
  ${listen}
  ${opts.forwardTo ? `recursion yes;\n  allow-recursion { any; };\n  forwarders { ${opts.forwardTo}; };\n  forward only;` : 'recursion no;'}
  dnssec-validation no;
  allow-query { any; };
  notify no;${opts.querylog ? '\n  querylog yes;' : ''}
};
controls { };
${keys.join('\n')}
${zones.join('\n')}
`;
}

function run(argv: string[]): Promise<DigResult> {
  return new Promise((resolve) => {
    execFile(argv[0] as string, argv.slice(1), { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export async function startBind9(opts: Bind9Options): Promise<Bind9> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? (opts.ns ? 53 : await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'bind9-'));
  for (const z of opts.zones) writeFileSync(join(dir, `${z.name}.zone`), zoneFile(z, host));
  const conf = join(dir, 'named.conf');
  writeFileSync(conf, namedConf(dir, opts, host, port), { mode: 0o600 });
  const inNs = (argv: string[]): string[] => (opts.ns ? ['ip', 'netns', 'exec', opts.ns, ...argv] : argv);
  const argv = killedWithParent(inNs(['/usr/sbin/named', '-g', '-u', 'root', '-c', conf]));
  const child: ChildProcess = killOnExit(
    spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] }),
  );
  let log = '';
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const dig = (args: string[]): Promise<DigResult> => run(inNs(['dig', `@${host}`, '-p', String(port), ...args]));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const server: Bind9 = { address: { host, port }, dir, log: () => log, dig, stop };
  const first = opts.zones[0]?.name ?? '.';
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    const r = await dig(['+norec', '+time=1', '+tries=1', first, 'SOA']);
    if (/status: NOERROR/.test(r.stdout)) return server;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await stop();
  throw new Error(
    `named did not answer an SOA query for ${first} within ${START_TIMEOUT_MS} ms:\n${log.split('\n').slice(-30).join('\n')}`,
  );
}
