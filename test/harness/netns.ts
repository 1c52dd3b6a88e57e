/**
 * Several "containers" on one machine: one network namespace per host, all
 * plugged into a bridge that lives in its own namespace (nothing is added to
 * the machine's own network), each host with its own address, its own port
 * 80/443 and its own name resolution (/etc/netns/NAME/hosts, which
 * `ip netns exec` mounts over /etc/hosts). Every process started here is
 * killed, and every namespace and /etc/netns entry removed, on cleanup() and
 * on a normal exit; a run killed before its hooks ran leaves namespaces named
 * after its dead pid, which the next run removes first.
 */
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';

export interface HostSpec {
  /** Short key, e.g. "ca", "nginx"; also the namespace suffix. */
  key: string;
  /** Last octet inside the topology's /24. */
  octet: number;
  /** Names that resolve to this host in every namespace of the topology. */
  names?: string[];
}

export interface Host {
  key: string;
  ns: string;
  address: string;
  names: string[];
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Namespaces are named PREFIX-<pid>-<key> so a later run can tell stale ones (dead pid) from live ones. */
const PREFIX = 'certagent';
/** Default /24 of a topology; a suite that may run beside another picks its own (createTopology's subnet). */
const SUBNET = '10.213.4';
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

const all = new Set<Topology>();
let exitHook = false;

export class Topology {
  readonly hosts: Record<string, Host> = {};
  readonly switchNs: string;
  private readonly children = new Set<ChildProcess>();
  private readonly namespaces: string[] = [];
  private cleaned = false;

  constructor(
    readonly id: string,
    readonly subnet = SUBNET,
  ) {
    this.switchNs = `${PREFIX}-${id}-sw`;
  }

  host(key: string): Host {
    const h = this.hosts[key];
    if (!h) throw new Error(`no host ${key} in the topology; hosts: ${Object.keys(this.hosts).join(', ')}`);
    return h;
  }

  /** Runs argv inside the host's namespace and waits for it. */
  exec(
    key: string,
    argv: string[],
    opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; input?: string } = {},
  ): Promise<ExecResult> {
    const { ns } = this.host(key);
    return new Promise((resolve) => {
      const child = execFile(
        'ip',
        ['netns', 'exec', ns, ...argv],
        {
          timeout: opts.timeoutMs ?? 60_000,
          killSignal: 'SIGKILL',
          env: opts.env ?? process.env,
          maxBuffer: 16 * 1024 * 1024,
        },
        (err, stdout, stderr) => {
          const code = err
            ? typeof (err as { code?: unknown }).code === 'number'
              ? (err as { code: number }).code
              : -1
            : 0;
          resolve({ code, stdout, stderr });
        },
      );
      if (opts.input !== undefined) child.stdin?.end(opts.input);
    });
  }

  /**
   * Starts a long-running process inside the host's namespace. `ip netns
   * exec` execs the command in place, and setpriv's parent-death signal
   * kills it if the test process dies without running its exit hooks.
   */
  spawn(key: string, argv: string[], opts: SpawnOptions = {}): ChildProcess {
    const { ns } = this.host(key);
    const inner = SETPRIV ? [SETPRIV, '--pdeathsig', 'KILL', '--', ...argv] : argv;
    const child = spawn('ip', ['netns', 'exec', ns, ...inner], { stdio: 'ignore', ...opts });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Resolves when something accepts TCP connections on host:port, seen from inside `key`'s namespace. */
  async waitForPort(key: string, port: number, address = '127.0.0.1', timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.exec(key, ['bash', '-c', `exec 3<>/dev/tcp/${address}/${port}`], { timeoutMs: 2_000 });
      if (r.code === 0) return;
      if (Date.now() > deadline)
        throw new Error(`nothing listens on ${address}:${port} in ${key} after ${timeoutMs} ms`);
      await new Promise((r2) => setTimeout(r2, 100));
    }
  }

  /** Kills what this topology started (and anything left in its namespaces), then removes them. Safe to call twice. */
  async cleanup(): Promise<void> {
    if (this.cleaned) return;
    const gone = [...this.children].map(
      (c) =>
        new Promise<void>((resolve) =>
          c.exitCode !== null || c.signalCode !== null ? resolve() : c.once('exit', () => resolve()),
        ),
    );
    for (const c of this.children) c.kill('SIGTERM');
    const timer = setTimeout(() => {
      for (const c of this.children) c.kill('SIGKILL');
    }, 3_000);
    await Promise.all(gone);
    clearTimeout(timer);
    this.cleanupSync();
  }

  /** The synchronous part, also run from the process exit hook. */
  cleanupSync(): void {
    if (this.cleaned) return;
    this.cleaned = true;
    all.delete(this);
    for (const c of this.children) c.kill('SIGKILL');
    for (const ns of [...this.namespaces].reverse()) removeNamespace(ns);
  }

  /** Creates the namespaces, the bridge and the veth pairs; used by createTopology. */
  build(specs: HostSpec[]): void {
    this.addNamespace(this.switchNs);
    ip(['-n', this.switchNs, 'link', 'add', 'br0', 'type', 'bridge']);
    ip(['-n', this.switchNs, 'link', 'set', 'br0', 'up']);
    for (const spec of specs) {
      const ns = `${PREFIX}-${this.id}-${spec.key}`;
      this.addNamespace(ns);
      // The veth pair is created inside the switch namespace with its peer
      // moved straight into the host: no interface ever appears on the machine.
      const port = `p-${spec.key}`.slice(0, 15);
      ip(['-n', this.switchNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      ip(['-n', this.switchNs, 'link', 'set', port, 'master', 'br0', 'up']);
      const address = `${this.subnet}.${spec.octet}`;
      ip(['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
      ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      this.hosts[spec.key] = { key: spec.key, ns, address, names: spec.names ?? [] };
    }
    const hostsFile =
      [
        '127.0.0.1 localhost',
        '::1 localhost',
        ...Object.values(this.hosts)
          .filter((h) => h.names.length)
          .map((h) => `${h.address} ${h.names.join(' ')}`),
      ].join('\n') + '\n';
    for (const h of Object.values(this.hosts)) {
      mkdirSync(`/etc/netns/${h.ns}`, { recursive: true });
      writeFileSync(`/etc/netns/${h.ns}/hosts`, hostsFile);
    }
  }

  private addNamespace(ns: string): void {
    ip(['netns', 'add', ns]);
    this.namespaces.push(ns);
  }
}

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function namespacePids(ns: string): number[] {
  try {
    return execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Kills by id whatever still runs in one of our namespaces (e.g. nginx workers), then deletes it. */
function removeNamespace(ns: string): void {
  for (const pid of namespacePids(ns)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  } catch {
    // not there (or already deleted)
  }
  rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
}

/** Namespaces of an earlier run of this harness whose process is gone (killed before its hooks ran). */
function removeStale(): void {
  let names: string[];
  try {
    names = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '');
  } catch {
    return;
  }
  for (const name of names) {
    const m = new RegExp(`^${PREFIX}-(\\d+)-`).exec(name);
    if (!m || Number(m[1]) === process.pid) continue;
    let alive = true;
    try {
      process.kill(Number(m[1]), 0);
    } catch {
      alive = false;
    }
    if (!alive) removeNamespace(name);
  }
}

let counter = 0;

/** `subnet`: the first three octets of the topology's /24 (default 10.213.4). */
export function createTopology(specs: HostSpec[], subnet = SUBNET): Topology {
  if (process.getuid?.() !== 0) throw new Error('the network topology needs root (ip netns)');
  removeStale();
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => {
      for (const t of [...all]) t.cleanupSync();
    });
  }
  counter += 1;
  const topo = new Topology(counter === 1 ? `${process.pid}` : `${process.pid}-t${counter}`, subnet);
  all.add(topo);
  try {
    topo.build(specs);
  } catch (err) {
    topo.cleanupSync();
    throw err;
  }
  return topo;
}
