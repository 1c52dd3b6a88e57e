/**
 * The daemon's timer between cron checks with several certificates: it
 * fires at the next moment any certificate needs a pass (its retry while it
 * backs off, otherwise its renewal), not at a renewal time already past of
 * one that is backing off. The passes are counted by a stand-in runner.
 */
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../../agent/lib/log.js';
import { Daemon, type PassRequest } from '../../../agent/renewal/daemon.js';
import { emptyState, writeState } from '../../../agent/store/state.js';
import { tempDir } from '../../helpers/agent.js';

const FP = '4a5679c0ffee00112233445566778899aabbccddeeff00112233445566778899';
const H = 3_600_000;
const silent: Logger = { debug() {}, info() {}, warn() {}, error() {}, fatal() {} };

let base: string;
beforeEach(() => {
  base = tempDir('daemon-');
  chmodSync(base, 0o755);
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

/** A config of `names` (no cron check this year) and their state files as given. */
function installation(states: Record<string, Partial<ReturnType<typeof emptyState>>>): string {
  const stateDir = join(base, 'state');
  mkdirSync(stateDir, { mode: 0o700 });
  const certificates = Object.keys(states).map((name) => ({
    name,
    domains: [`${name}.internal`],
    dir: join(base, name),
  }));
  const config = join(base, 'config.yaml');
  const doc = {
    ca: { url: 'https://127.0.0.1:1', fingerprint: FP },
    renewal: { check: '0 0 1 1 *' },
    stateDir,
    certificates,
  };
  writeFileSync(config, JSON.stringify(doc), { mode: 0o600 });
  for (const [name, state] of Object.entries(states)) writeState(stateDir, name, { ...emptyState(), ...state });
  return config;
}

/** Starts a daemon on `configPath` for `ms`, and returns the triggers of the passes it ran. */
async function passesDuring(configPath: string, ms: number): Promise<string[]> {
  const triggers: string[] = [];
  const runPass = (req: PassRequest) => (triggers.push(req.trigger), Promise.resolve('done' as const));
  const daemon = new Daemon({ configPath, log: silent, runPass });
  daemon.start();
  await new Promise((resolve) => setTimeout(resolve, ms));
  await daemon.stop();
  return triggers;
}

describe('the timer between checks', () => {
  it('while one certificate backs off past its renewal time, the other does not set off pass after pass', async () => {
    const now = Date.now();
    const config = installation({
      default: {
        consecutiveFailures: 1,
        backoffStep: 1,
        nextRenewal: new Date(now - H).toISOString(),
        nextAttempt: new Date(now + H).toISOString(),
      },
      b: { nextRenewal: new Date(now + 24 * H).toISOString() },
    });
    expect(await passesDuring(config, 1000)).toEqual(['start']);
  });

  it('fires at the retry of the certificate that backs off once it comes', async () => {
    const now = Date.now();
    const config = installation({
      default: {
        consecutiveFailures: 1,
        backoffStep: 1,
        nextRenewal: new Date(now - H).toISOString(),
        nextAttempt: new Date(now + 400).toISOString(),
      },
      b: { nextRenewal: new Date(now + 24 * H).toISOString() },
    });
    const triggers = await passesDuring(config, 1200);
    // The stand-in writes no state: the retry stays past and is the timer's from then on.
    expect(triggers.slice(0, 2)).toEqual(['start', 'timer']);
  });
});
