/**
 * `make demo`: a local step-ca made for the demo, then the bundled agent
 * exactly as an operator would use it — enroll, renew, status — with its
 * files in a temporary directory (nothing under /etc is touched).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startStepCa } from './stepca.js';

const bundle = resolve(process.argv[2] ?? 'bundle/out/cert-agent.cjs');
// Not /tmp: as root the agent refuses a configuration below a directory others can write.
const base = process.getuid?.() === 0 ? '/run/cert-agent-demo' : tmpdir();
mkdirSync(base, { recursive: true, mode: 0o755 });
const dir = mkdtempSync(join(base, 'cert-agent-demo-'));
const config = join(dir, 'config.yaml');

function agent(args: string[], allowFail = false): void {
  console.log(`\n$ cert-agent ${args.join(' ')}`);
  try {
    process.stdout.write(
      execFileSync(process.execPath, [bundle, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }),
    );
  } catch (err) {
    process.stdout.write(String((err as { stdout?: string }).stdout ?? ''));
    if (!allowFail) throw err;
  }
}

const ca = await startStepCa();
try {
  console.log(`step-ca ${ca.url} is up; root fingerprint ${ca.rootFingerprint}`);
  agent([
    'enroll',
    '--config',
    config,
    '--ca-url',
    ca.url,
    '--fingerprint',
    ca.rootFingerprint,
    '--domain',
    'localhost',
    '--domain',
    '127.0.0.1',
    '--cert-dir',
    join(dir, 'tls'),
    '--state-dir',
    join(dir, 'state'),
    '--listen',
    `127.0.0.1:${ca.acmeHttpPort}`,
  ]);
  agent(['renew', '--config', config]);
  agent(['status', '--config', config], true);
  console.log(`\nfiles kept in ${dir} (the demo CA has been stopped)`);
} finally {
  await ca.cleanup();
}
