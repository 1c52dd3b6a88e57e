/**
 * Runs the bundled agent as a separate process, the way a container runs it:
 * the single file copied into a directory with no node_modules anywhere up
 * the tree, so a missing dependency in the bundle fails the test.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const BUNDLE = join(ROOT, 'bundle/out/cert-agent.cjs');
let isolated: string | undefined;

/**
 * The bundle, copied to /tmp (outside the repo, so no node_modules resolve)
 * under a name derived from its content: every test process reuses the same
 * copy, and nothing accumulates however the worker exits.
 */
export function agentBundle(): string {
  if (isolated && existsSync(isolated)) return isolated;
  if (!existsSync(BUNDLE)) execFileSync(process.execPath, [join(ROOT, 'bundle/build.mjs')], { stdio: 'inherit' });
  const content = readFileSync(BUNDLE);
  const dir = join(tmpdir(), `cert-agent-bin-${createHash('sha256').update(content).digest('hex').slice(0, 16)}`);
  mkdirSync(dir, { recursive: true });
  const target = join(dir, 'cert-agent.cjs');
  if (!existsSync(target)) {
    const tmp = `${target}.${process.pid}.tmp`;
    writeFileSync(tmp, content);
    renameSync(tmp, target);
  }
  isolated = target;
  return isolated;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runAgent(
  args: string[],
  opts: {
    env?: Record<string, string>;
    timeoutMs?: number;
    node?: string;
    uid?: number;
    gid?: number;
    /** Written to the agent's stdin, which is then closed. */
    input?: string;
    /** Another build of the agent to run instead of agentBundle(). */
    program?: string;
  } = {},
): Promise<RunResult> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    ...selfCheckEnv(),
    ...opts.env,
  };
  return new Promise((resolvePromise) => {
    const child = execFile(
      opts.node ?? process.execPath,
      [opts.program ?? agentBundle(), ...args],
      { env, timeout: opts.timeoutMs ?? 60_000, cwd: tmpdir(), uid: opts.uid, gid: opts.gid },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : -1
          : 0;
        resolvePromise({ code, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Where the test CA validates http-01 (set by the step-ca harness), so the agent's self-check looks there too. */
export function selfCheckEnv(): Record<string, string> {
  const port = process.env.CERT_AGENT_SELF_CHECK_PORT;
  return port ? { CERT_AGENT_SELF_CHECK_PORT: port } : {};
}

/**
 * Where tests put their files. As root that is /run/cert-agent-test, not
 * /tmp: the agent refuses a configuration below a directory that others can
 * write (sticky or not), and every test writes its config there.
 */
export function testBase(): string {
  if (process.getuid?.() !== 0) return tmpdir();
  const base = '/run/cert-agent-test';
  mkdirSync(base, { recursive: true, mode: 0o755 });
  chmodSync(base, 0o755); // past the umask, and whatever an earlier run left
  return base;
}

export function tempDir(prefix = 'cert-agent-test-'): string {
  return mkdtempSync(join(testBase(), prefix));
}

export function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}
