/** Setting up cert-agent instances for the benchmarks: enroll into a private directory, read the daemon's log. */
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { cleanEnv, run } from './proc.js';

export interface AgentDirs {
  dir: string;
  config: string;
  certDir: string;
  stateDir: string;
}

export interface EnrollOptions {
  caUrl: string;
  fingerprint: string;
  domain: string;
  /** More names of the same certificate (`--domain` again), e.g. the domain's wildcard with dns-01. */
  moreDomains?: string[];
  /** http-01's listen address; not with `dns`. */
  listen?: string;
  /** dns-01 through an RFC 2136 server (`--challenge dns`) instead of http-01. */
  dns?: { server: string; zone?: string; tsigName: string; tsigAlgorithm: string; tsigSecretFile: string };
  /** Extra YAML appended to the written config (e.g. a renewal block). */
  extraYaml?: string;
  /** `enroll --name`: adds (or replaces) this entry of the config's certificate list. */
  name?: string;
  /** The certificate's directory (default: `tls` in dir). */
  certDir?: string;
  /** `enroll --renewal-method`: acme where a section times ACME orders (a renewal is otherwise over the CA's API). */
  renewalMethod?: 'auto' | 'acme' | 'step';
}

export async function enroll(bin: string, dir: string, o: EnrollOptions): Promise<AgentDirs & { ms: number }> {
  mkdirSync(dir, { recursive: true });
  const d: AgentDirs = {
    dir,
    config: join(dir, 'config.yaml'),
    certDir: o.certDir ?? join(dir, 'tls'),
    stateDir: join(dir, 'state'),
  };
  const started = Date.now();
  const r = await run(
    [
      process.execPath,
      bin,
      'enroll',
      '--config',
      d.config,
      '--ca-url',
      o.caUrl,
      '--fingerprint',
      o.fingerprint,
      '--domain',
      o.domain,
      '--cert-dir',
      d.certDir,
      '--state-dir',
      d.stateDir,
      ...(o.listen ? ['--listen', o.listen] : []),
      ...(o.moreDomains ?? []).flatMap((d) => ['--domain', d]),
      ...(o.dns ? dnsFlags(o.dns) : []),
      '--reload',
      'none',
      ...(o.name ? ['--name', o.name] : []),
      ...(o.renewalMethod ? ['--renewal-method', o.renewalMethod] : []),
    ],
    { env: cleanEnv(), cwd: dir },
    120_000,
  );
  if (r.code !== 0) throw new Error(`cert-agent enroll failed (${r.code}): ${r.stderr}`);
  if (o.extraYaml) appendFileSync(d.config, o.extraYaml);
  return { ...d, ms: Date.now() - started };
}

function dnsFlags(dns: NonNullable<EnrollOptions['dns']>): string[] {
  return [
    '--challenge',
    'dns',
    '--dns-server',
    dns.server,
    ...(dns.zone ? ['--dns-zone', dns.zone] : []),
    '--tsig-name',
    dns.tsigName,
    '--tsig-algorithm',
    dns.tsigAlgorithm,
    '--tsig-secret-file',
    dns.tsigSecretFile,
  ];
}

export const eventTime = (line: { time: string }) => Date.parse(line.time);
