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
  listen: string;
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
      '--listen',
      o.listen,
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

export const eventTime = (line: { time: string }) => Date.parse(line.time);
