/**
 * An agent enrolled with a suite's step-ca, as an operator's first steps
 * leave it: `enroll` (pin, config, state) through the bundle, and with
 * `renew` its first real certificate. The layout is the same in every test
 * that uses it: `config.yaml`, `tls/` and `state/` under one directory; the
 * challenge listener on the port step-ca validates http-01 at.
 */
import { join } from 'node:path';
import { expect } from 'vitest';
import type { StepCa } from '../harness/stepca.js';
import { runAgent, type RunResult } from './agent.js';

export interface AgentFiles {
  dir: string;
  config: string;
  certDir: string;
  stateDir: string;
}

export interface EnrollOptions {
  /** Names to certify; `localhost` unless given. */
  domains?: string[];
  /** More enroll flags (e.g. `--allow-unreachable`). */
  extra?: string[];
  /** Replace the CA's URL or the pinned fingerprint (a wrong pin, a man in the middle). */
  caUrl?: string;
  fingerprint?: string;
}

type Ca = Pick<StepCa, 'url' | 'rootFingerprint' | 'acmeHttpPort'>;

export function agentFiles(dir: string): AgentFiles {
  return { dir, config: join(dir, 'config.yaml'), certDir: join(dir, 'tls'), stateDir: join(dir, 'state') };
}

/** The argv of `enroll` for the files under `dir`, against `ca`. */
export function enrollArgs(ca: Ca, dir: string, opts: EnrollOptions = {}): string[] {
  const f = agentFiles(dir);
  return [
    'enroll',
    '--config',
    f.config,
    '--ca-url',
    opts.caUrl ?? ca.url,
    '--fingerprint',
    opts.fingerprint ?? ca.rootFingerprint,
    ...(opts.domains ?? ['localhost']).flatMap((d) => ['--domain', d]),
    '--cert-dir',
    f.certDir,
    '--state-dir',
    f.stateDir,
    '--listen',
    `127.0.0.1:${ca.acmeHttpPort}`,
    ...(opts.extra ?? []),
  ];
}

/** Enrolls the agent under `dir`; fails the test unless enroll exits 0, silent on stderr when the CA is to be reached. */
export async function enrollAgent(ca: Ca, dir: string, opts: EnrollOptions = {}): Promise<AgentFiles> {
  const r = await runAgent(enrollArgs(ca, dir, opts));
  expect(r.code, r.stderr).toBe(0);
  if (!opts.extra?.includes('--allow-unreachable')) expect(r.stderr).toBe('');
  return agentFiles(dir);
}

/** Enrolls, then `renew` for the first certificate; fails the test unless both exit 0 saying nothing on stderr. */
export async function enrolledWithCertificate(
  ca: Ca,
  dir: string,
  opts: EnrollOptions = {},
): Promise<AgentFiles & { renew: RunResult }> {
  const f = await enrollAgent(ca, dir, opts);
  const renew = await runAgent(['renew', '--config', f.config]);
  expect(renew.stderr).toBe('');
  expect(renew.code).toBe(0);
  return { ...f, renew };
}
