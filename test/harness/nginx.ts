/**
 * An nginx "container": Debian's nginx running inside one namespace of a
 * Topology, with its own root directory standing in for the container's /
 * (its own etc/nginx, pid, logs). The configuration is built from the
 * snippets shipped in packaging/nginx, with their absolute paths moved under
 * the container root, so the tests exercise exactly what is shipped.
 * Workers run as www-data, as in a stock Debian container.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Topology } from './netns.js';

const PACKAGING = resolve(import.meta.dirname, '../../packaging/nginx');

export interface NginxSite {
  names: string[];
  challenge: 'webroot' | 'proxy';
  /** challenge.webroot of the agent (absolute, inside the container root). */
  webroot: string;
  /** challenge.listen of the agent in proxy mode. */
  proxyListen: string;
  /** certificate.dir of the agent. */
  certDir: string;
  /** Whether the TLS server (port 443, the agent's files) is enabled. */
  tls: boolean;
  /** Extra text appended inside http {} (e.g. something broken). */
  extra?: string;
}

export class NginxContainer {
  readonly conf: string;
  readonly errorLog: string;
  readonly pidFile: string;
  private readonly snippets: string;
  private proc: ChildProcess | undefined;

  constructor(
    private readonly topo: Topology,
    readonly hostKey: string,
    readonly root: string,
  ) {
    const etc = join(root, 'etc/nginx');
    this.conf = join(etc, 'nginx.conf');
    this.snippets = join(etc, 'snippets');
    this.errorLog = join(root, 'var/log/nginx/error.log');
    this.pidFile = join(root, 'run/nginx.pid');
    for (const d of [this.snippets, join(root, 'var/log/nginx'), join(root, 'run'), join(root, 'var/lib/nginx')])
      mkdirSync(d, { recursive: true });
    // The container root stands in for "/", which www-data may traverse.
    chmodSync(root, 0o755);
  }

  /** Writes nginx.conf and the shipped snippets, rewritten for this container's paths. */
  writeConfig(site: NginxSite): void {
    const webroot = readFileSync(join(PACKAGING, 'cert-agent-challenge-webroot.conf'), 'utf8').replace(
      'root /var/www/acme-challenge;',
      `root ${site.webroot};`,
    );
    const proxy = readFileSync(join(PACKAGING, 'cert-agent-challenge-proxy.conf'), 'utf8').replace(
      'http://127.0.0.1:8402',
      `http://${site.proxyListen}`,
    );
    const ssl = readFileSync(join(PACKAGING, 'cert-agent-ssl.conf'), 'utf8').replaceAll(
      '/etc/cert-agent/tls',
      site.certDir,
    );
    for (const [name, text, original] of [
      ['cert-agent-challenge-webroot.conf', webroot, 'root /var/www/acme-challenge;'],
      ['cert-agent-challenge-proxy.conf', proxy, '127.0.0.1:8402'],
      ['cert-agent-ssl.conf', ssl, '/etc/cert-agent/tls'],
    ] as const) {
      // A shipped snippet that no longer contains the path we rewrite would silently test something else.
      if (!readFileSync(join(PACKAGING, name), 'utf8').includes(original))
        throw new Error(`packaging/nginx/${name} no longer contains ${original}`);
      writeFileSync(join(this.snippets, name), text);
    }
    const tmp = join(this.root, 'var/lib/nginx');
    const names = site.names.join(' ');
    writeFileSync(
      this.conf,
      `user www-data;
worker_processes 1;
pid ${this.pidFile};
error_log ${this.errorLog} info;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${tmp}/body; proxy_temp_path ${tmp}/proxy; fastcgi_temp_path ${tmp}/fastcgi; uwsgi_temp_path ${tmp}/uwsgi; scgi_temp_path ${tmp}/scgi;
  server {
    listen 80;
    server_name ${names};
    include ${this.snippets}/cert-agent-challenge-${site.challenge}.conf;
    location / { return 301 https://$host$request_uri; }
  }
${
  site.tls
    ? `  server {
    listen 443 ssl;
    server_name ${names};
    include ${this.snippets}/cert-agent-ssl.conf;
    location / { return 200 "nginx container\\n"; }
  }
`
    : ''
}${site.extra ?? ''}
}
`,
    );
  }

  async start(opts: { tls: boolean }): Promise<void> {
    this.proc = this.topo.spawn(this.hostKey, ['nginx', '-c', this.conf, '-g', 'daemon off;']);
    await this.topo.waitForPort(this.hostKey, 80).catch((err) => {
      throw new Error(`${(err as Error).message}; nginx error log: ${this.errorLogTail()}`);
    });
    if (opts.tls) await this.topo.waitForPort(this.hostKey, 443);
  }

  /** nginx -s reload as an operator would, then wait for 443 when the TLS server was just enabled. */
  async reload(opts: { tls: boolean }): Promise<void> {
    const r = await this.topo.exec(this.hostKey, ['nginx', '-c', this.conf, '-s', 'reload']);
    if (r.code !== 0) throw new Error(`nginx -s reload failed: ${r.stderr}`);
    if (opts.tls) await this.topo.waitForPort(this.hostKey, 443);
  }

  /** The master's pid: unchanged across reloads, so "no restart" can be checked. */
  masterPid(): number {
    return Number(readFileSync(this.pidFile, 'utf8').trim());
  }

  running(): boolean {
    return Boolean(this.proc && this.proc.exitCode === null && this.proc.signalCode === null);
  }

  errorLogTail(): string {
    return existsSync(this.errorLog)
      ? readFileSync(this.errorLog, 'utf8').split('\n').slice(-20).join('\n')
      : '(no error log)';
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || !this.running()) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGTERM');
    await gone;
  }
}
