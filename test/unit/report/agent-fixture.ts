/**
 * An agent of two certificates on disk, for the reports over several:
 * `default` with a set installed from a test CA (its state, the pinned
 * trust), and `b` with nothing installed yet (CRITICAL). The same
 * installation read with one certificate gives the 0.1.0 layout.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateConfig, type AgentConfig } from '../../../agent/config/config.js';
import { makeCa, writeSetByHand, type TestCa } from '../../helpers/certs.js';
import { tempDir } from '../../helpers/agent.js';

const H = 3_600_000;
let ca: TestCa | undefined;

export interface TwoCertificates {
  config: AgentConfig;
  /** The same installation configured with `default` alone (the short form). */
  one: AgentConfig;
  now: Date;
}

export async function twoCertificates(): Promise<TwoCertificates> {
  ca ??= await makeCa('Agent report');
  const base = tempDir('report-agent-');
  const stateDir = join(base, 'state');
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const now = new Date();
  const leaf = await ca.leaf({
    domains: ['a.internal'],
    notBefore: new Date(now.getTime() - 2 * H),
    notAfter: new Date(now.getTime() + 22 * H),
  });
  writeSetByHand(join(base, 'tls'), 's1', {
    keyPem: leaf.keyPem,
    fullchainPem: leaf.fullchainPem,
    rootPem: ca.root.pem,
  });
  const state = {
    consecutiveFailures: 0,
    backoffStep: 0,
    placeholder: false,
    lastSuccess: new Date(now.getTime() - 2 * H).toISOString(),
    lastAttempt: { at: new Date(now.getTime() - 2 * H).toISOString(), result: 'renewed' },
  };
  writeFileSync(join(stateDir, 'state.json'), JSON.stringify(state));
  const trust = { pins: [ca.fingerprint], roots: [{ fingerprint: ca.fingerprint, pem: ca.root.pem }] };
  writeFileSync(join(stateDir, 'trust.json'), JSON.stringify({ ...trust, bootstrappedAt: now.toISOString() }));
  const shared = { ca: { url: 'https://ca.internal:9000', fingerprint: ca.fingerprint }, stateDir };
  const a = { domains: ['a.internal'], dir: join(base, 'tls') };
  const config = validateConfig({
    ...shared,
    certificates: [
      { name: 'default', ...a },
      { name: 'b', domains: ['b.internal'], dir: join(base, 'b') },
    ],
  });
  return { config, one: validateConfig({ ...shared, certificate: a }), now };
}
