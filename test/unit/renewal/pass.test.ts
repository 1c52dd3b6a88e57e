/**
 * One pass over two certificates against the in-process fake ACME server:
 * each certificate's failure is its own (an order the CA rejects, a
 * certificate directory no longer safe to write through), each has its own
 * state file (state.json for `default`, state-NAME.json for any other), and
 * a scheduled check leaves a backing-off certificate alone while the other
 * renews.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { validateConfig, type AgentConfig } from '../../../agent/config/config.js';
import { CaProtocolError, StoreError } from '../../../agent/lib/errors.js';
import type { Logger } from '../../../agent/lib/log.js';
import { runPass, type PassOutcome } from '../../../agent/renewal/pass.js';
import { writeState, emptyState } from '../../../agent/store/state.js';
import { FakeAcme, problem } from '../../harness/fake-acme.js';
import { tempDir } from '../../helpers/agent.js';

const asRoot = process.getuid?.() === 0;
let acme: FakeAcme;
let rootFile: string;
let listen: string;
let base: string;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(async () => {
  acme = await FakeAcme.start();
  rootFile = join(tempDir('pass-root-'), 'root.pem');
  writeFileSync(rootFile, acme.ca.root.pem);
  listen = `127.0.0.1:${await freePort()}`;
});
afterAll(() => acme.close());
beforeEach(() => {
  acme.reset();
  base = tempDir('pass-');
  chmodSync(base, 0o755);
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

/** Two certificates, `default` and `b`, under `base`; dirs may be moved. */
function twoCertificates(dirs: { default?: string; b?: string } = {}, b: Record<string, unknown> = {}): AgentConfig {
  return validateConfig({
    ca: { url: acme.origin, directory: acme.directoryUrl, fingerprint: acme.ca.fingerprint, rootFile },
    challenge: { mode: 'standalone', listen },
    stateDir: join(base, 'state'),
    certificates: [
      { name: 'default', domains: ['a.internal'], dir: dirs.default ?? join(base, 'tls') },
      { name: 'b', domains: ['b.internal'], dir: dirs.b ?? join(base, 'b'), ...b },
    ],
  });
}

function captureLog(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const keep = (level: string) => (fields: object, msg?: string) => lines.push({ level, ...fields, msg });
  return {
    lines,
    log: { debug: keep('debug'), info: keep('info'), warn: keep('warn'), error: keep('error'), fatal: keep('fatal') },
  };
}

const stateOf = (config: AgentConfig, file: string) =>
  JSON.parse(readFileSync(join(config.stateDir, file), 'utf8')) as Record<string, any>;
const summary = (outcomes: PassOutcome[]) =>
  outcomes.map((o) =>
    'result' in o ? `${o.name} ${o.result.action}` : 'error' in o ? `${o.name} error` : `${o.name} deferred`,
  );

describe.runIf(asRoot)('a pass over two certificates', () => {
  it('renews both, one account, each in its own directory and state file', async () => {
    const config = twoCertificates();
    const { log, lines } = captureLog();
    const outcomes = await runPass({ config, log });
    expect(summary(outcomes)).toEqual(['default renewed', 'b renewed']);
    expect(acme.accounts.size).toBe(1);
    expect(existsSync(join(base, 'tls', 'fullchain.pem'))).toBe(true);
    expect(existsSync(join(base, 'b', 'fullchain.pem'))).toBe(true);
    const files = readdirSync(config.stateDir).filter((f) => f.startsWith('state'));
    expect(files.sort()).toEqual(['state-b.json', 'state.json']);
    expect(stateOf(config, 'state.json').lastSuccess).toBeDefined();
    expect(stateOf(config, 'state-b.json').lastSuccess).toBeDefined();
    const installed = lines.filter((l) => l.event === 'certificate_installed').map((l) => l.certificate);
    expect(installed).toEqual(['default', 'b']);
    // Every line of a certificate's steps names it; only what they share (the trust) does not.
    const unnamed = lines.filter((l) => l.certificate === undefined).map((l) => l.event);
    expect(unnamed).toEqual(['trust_bootstrapped']);
  });

  it('an order the CA rejects fails that certificate alone; the other renews, each state written', async () => {
    const config = twoCertificates();
    acme.handle('newOrder', (req, next) => {
      const ids = (req.jws?.payload as { identifiers: { value: string }[] }).identifiers.map((i) => i.value);
      return ids.includes('b.internal') ? problem(403, 'rejectedIdentifier', 'b.internal is not allowed') : next();
    });
    const { log, lines } = captureLog();
    const outcomes = await runPass({ config, log });
    expect(summary(outcomes)).toEqual(['default renewed', 'b error']);
    expect((outcomes[1] as { error: unknown }).error).toBeInstanceOf(CaProtocolError);
    expect(stateOf(config, 'state.json')).toMatchObject({ consecutiveFailures: 0 });
    expect(stateOf(config, 'state-b.json')).toMatchObject({ consecutiveFailures: 1 });
    expect(stateOf(config, 'state-b.json').nextAttempt).toBeDefined();
    expect(existsSync(join(base, 'b', 'fullchain.pem'))).toBe(false);
    const failed = lines.filter((l) => l.event === 'renewal_failed');
    expect(failed.map((l) => [l.certificate, l.errorKind])).toEqual([['b', 'ca-protocol']]);
  });

  it('a scheduled check defers the certificate backing off, and renews the other', async () => {
    const config = twoCertificates();
    mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
    const backingOff = { ...emptyState(), consecutiveFailures: 2, nextAttempt: '2099-01-01T00:00:00.000Z' };
    writeState(config.stateDir, 'b', backingOff);
    const before = readFileSync(join(config.stateDir, 'state-b.json'), 'utf8');
    const { log, lines } = captureLog();
    const outcomes = await runPass({ config, log, scheduled: { override: () => false } });
    expect(outcomes).toEqual([
      expect.objectContaining({ name: 'default', result: expect.objectContaining({ action: 'renewed' }) }),
      { name: 'b', deferred: '2099-01-01T00:00:00.000Z' },
    ]);
    expect(readFileSync(join(config.stateDir, 'state-b.json'), 'utf8')).toBe(before);
    expect(existsSync(join(base, 'b'))).toBe(false);
    expect(lines.filter((l) => l.event === 'check_deferred').map((l) => l.certificate)).toEqual(['b']);
    // Asked for by the operator: it runs.
    const asked = await runPass({ config, log, scheduled: { override: (s) => s.consecutiveFailures === 2 } });
    expect(summary(asked)).toEqual(['default not-due', 'b renewed']);
  });

  it('an unsafe certificate directory leaves that certificate untouched, no state written, while the other renews', async () => {
    const parent = join(base, 'p');
    mkdirSync(parent, { mode: 0o755 });
    const config = twoCertificates({ b: join(parent, 'b') });
    // After the configuration was loaded, the directory above b's changes hands.
    chownSync(parent, 65534, 65534);
    const { log, lines } = captureLog();
    const outcomes = await runPass({ config, log });
    expect(summary(outcomes)).toEqual(['default renewed', 'b error']);
    expect((outcomes[1] as { error: unknown }).error).toBeInstanceOf(StoreError);
    expect(readdirSync(parent)).toEqual([]);
    expect(existsSync(join(config.stateDir, 'state-b.json'))).toBe(false);
    expect(stateOf(config, 'state.json').lastSuccess).toBeDefined();
    const refused = lines.filter((l) => l.event === 'renewal_failed');
    expect(refused.map((l) => [l.level, l.certificate])).toEqual([['error', 'b']]);
  });

  it("a placeholder for the certificate the CA refused is logged under that certificate's name", async () => {
    const config = twoCertificates({}, { reload: { target: 'command', command: ['false'] } });
    acme.handle('newOrder', (req, next) => {
      const ids = (req.jws?.payload as { identifiers: { value: string }[] }).identifiers.map((i) => i.value);
      return ids.includes('b.internal') ? problem(403, 'rejectedIdentifier', 'b.internal is not allowed') : next();
    });
    const { log, lines } = captureLog();
    expect(summary(await runPass({ config, log, placeholder: true }))).toEqual(['default renewed', 'b error']);
    expect(existsSync(join(base, 'b', 'fullchain.pem'))).toBe(true);
    expect(stateOf(config, 'state-b.json').placeholder).toBe(true);
    const about = (event: string) => lines.filter((l) => l.event === event).map((l) => l.certificate);
    expect(about('placeholder_installed')).toEqual(['b']);
    // The consumer's reload for the placeholder failed: which certificate's, the line says.
    expect(about('reload_failed')).toEqual(['b']);
  });

  it("a key opened to others is narrowed and logged under its certificate's name", async () => {
    const config = twoCertificates();
    await runPass({ config, log: captureLog().log });
    chmodSync(join(base, 'b', 'key.pem'), 0o644);
    const { log, lines } = captureLog();
    expect(summary(await runPass({ config, log }))).toEqual(['default not-due', 'b not-due']);
    const repaired = lines.filter((l) => l.event === 'permissions_repaired');
    expect(repaired.map((l) => l.certificate)).toEqual(['b']);
  });
});
