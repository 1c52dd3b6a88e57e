/**
 * A pass of several certificates against a CA that does not answer: the
 * first certificate that needs the CA finds it unreachable, and the others
 * fail with that same error at once instead of each waiting out a timeout
 * of its own; each certificate records its failure in its own state file.
 */
import { rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../agent/config/config.js';
import { CaUnavailableError } from '../../../agent/lib/errors.js';
import { createLogger } from '../../../agent/lib/log.js';
import { runPass } from '../../../agent/renewal/pass.js';
import { readState } from '../../../agent/store/state.js';
import { makeCa } from '../../helpers/certs.js';
import { tempDir } from '../../helpers/agent.js';

const dir = tempDir('cert-agent-unreachable-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A port nothing listens on: taken and released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('runPass: several certificates, the CA unreachable', () => {
  it('asks the CA once: the others fail with the same error, each recorded in its own state file', async () => {
    const ca = await makeCa('Unreachable');
    const stateDir = join(dir, 'state');
    mkdirSync(stateDir, { mode: 0o700 });
    const trust = { pins: [ca.fingerprint], roots: [{ fingerprint: ca.fingerprint, pem: ca.root.pem }] };
    writeFileSync(join(stateDir, 'trust.json'), JSON.stringify({ ...trust, bootstrappedAt: new Date().toISOString() }));
    const url = `https://127.0.0.1:${await closedPort()}`;
    const config = parseConfig(
      JSON.stringify({
        ca: { url, fingerprint: ca.fingerprint },
        certificates: ['a', 'b', 'c'].map((name) => ({ name, domains: [`${name}.internal`], dir: join(dir, name) })),
        stateDir,
      }),
    );
    const lines: Record<string, unknown>[] = [];
    const log = createLogger({ level: 'debug', sink: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
    const outcomes = await runPass({ config, log });
    expect(outcomes.map((o) => o.name)).toEqual(['a', 'b', 'c']);
    const errors = outcomes.map((o) => ('error' in o ? o.error : undefined));
    expect(errors[0]).toBeInstanceOf(CaUnavailableError);
    expect(errors[1]).toBe(errors[0]);
    expect(errors[2]).toBe(errors[0]);
    // One order was started; the others never reached the CA.
    expect(lines.filter((l) => l.event === 'renewal_started').map((l) => l.certificate)).toEqual(['a', 'b', 'c']);
    for (const name of ['a', 'b', 'c']) {
      const state = readState(stateDir, name);
      expect(state.consecutiveFailures).toBe(1);
      expect(state.lastAttempt?.errorKind).toBe('ca-unavailable');
    }
    expect(existsSync(join(stateDir, 'state-b.json'))).toBe(true);
    expect(existsSync(join(stateDir, 'state.json'))).toBe(false);
  });
});
