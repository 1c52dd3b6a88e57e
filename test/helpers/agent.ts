/**
 * Runs the bundled agent as a separate process, the way a container runs it:
 * the single file copied into a directory with no node_modules anywhere up
 * the tree, so a missing dependency in the bundle fails the test.
 */
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const BUNDLE = join(ROOT, 'bundle/out/cert-agent.mjs');
let isolated: string | undefined;

/** The bundle, copied once per test process to /tmp (outside the repo, so no node_modules resolve). */
export function agentBundle(): string {
  if (isolated && existsSync(isolated)) return isolated;
  if (!existsSync(BUNDLE)) execFileSync(process.execPath, [join(ROOT, 'bundle/build.mjs')], { stdio: 'inherit' });
  const dir = mkdtempSync(join(tmpdir(), 'cert-agent-bin-'));
  isolated = join(dir, 'cert-agent.mjs');
  copyFileSync(BUNDLE, isolated);
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return isolated;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runAgent(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number; node?: string } = {}): Promise<RunResult> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...opts.env };
  return new Promise((resolvePromise) => {
    execFile(opts.node ?? process.execPath, [agentBundle(), ...args], { env, timeout: opts.timeoutMs ?? 60_000, cwd: tmpdir() }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolvePromise({ code, stdout, stderr });
    });
  });
}

export function tempDir(prefix = 'cert-agent-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}
