/**
 * The hand-written ACME client against a reference one: acme-client and the
 * agent each issue a certificate from the same real step-ca, and step-ca's
 * own request log (method, path, status, user agent of every request) shows
 * what each of them did. Both must walk the same RFC 8555 steps — directory,
 * nonce, account, order, authorization, challenge, finalize, certificate —
 * with the same methods and answers, and end with equivalent certificates.
 */
import * as acme from 'acme-client';
import { X509Certificate } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentPaths, writeConfig } from '../faults/common.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { runAgent } from '../helpers/agent.js';

let ca: StepCa;
const cleanups: (() => unknown)[] = [];
beforeAll(async () => {
  ca = await startStepCa();
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await ca?.cleanup();
});

interface Request {
  method: string;
  path: string;
  status: number;
  agent: string;
}

/** step-ca's text log: one `key=value key="quoted value"` line per request. */
function requestsIn(log: string): Request[] {
  const out: Request[] = [];
  for (const line of log.split('\n')) {
    const f: Record<string, string> = {};
    for (const m of line.matchAll(/([\w-]+)=("((?:[^"\\]|\\.)*)"|\S*)/g)) f[m[1]!] = m[3] ?? m[2]!;
    if (f.method && f.path && f.status) {
      out.push({ method: f.method, path: f.path, status: Number(f.status), agent: f['user-agent'] ?? '' });
    }
  }
  return out;
}

/** The ACME resource a path names: directory, new-nonce, new-account, new-order, authz, challenge, finalize, order, certificate. */
function resource(path: string): string | undefined {
  const m = /^\/acme\/[^/]+\/([a-z-]+)(?:\/[^/]+(?:\/([a-z-]+))?)?/.exec(path.split('?')[0]!);
  if (!m) return undefined;
  return m[2] === 'finalize' ? 'finalize' : m[1];
}

/**
 * The ACME steps of one client in order, as "METHOD resource status"; a
 * request repeated right after itself (polling an authorization or order
 * until it is valid) counts once, since how often a client polls depends on
 * timing, not on the protocol.
 */
function steps(requests: Request[]): string[] {
  const out: string[] = [];
  for (const r of requests) {
    const res = resource(r.path);
    if (!res) continue;
    const step = `${r.method} ${res} ${r.status}`;
    if (out[out.length - 1] !== step) out.push(step);
  }
  return out;
}

const logOf = () => readFileSync(join(ca.dir, 'step-ca.log'), 'utf8');

describe('acme-client and the agent against the same step-ca', () => {
  it('take the same ACME steps and get equivalent certificates', async () => {
    // The agent, first issuance with a new account.
    const p = agentPaths('cert-agent-oracle-');
    cleanups.push(() => rmSync(p.dir, { recursive: true, force: true }));
    writeConfig(p, ca, ca.acmeHttpPort, { certificate: { domains: ['localhost'], keyType: 'ec-p256' } });
    const before = requestsIn(logOf()).length;
    const r = await runAgent(['renew', '--config', p.config]);
    expect(r.code, r.stderr).toBe(0);
    const agentRequests = requestsIn(logOf()).slice(before);
    const agentCert = new X509Certificate(readFileSync(join(p.certDir, 'cert.pem')));

    // acme-client, the same names and key type, answering http-01 on the port step-ca dials.
    acme.axios.defaults.httpsAgent = new https.Agent({ ca: ca.rootPem });
    acme.axios.defaults.proxy = false;
    const tokens = new Map<string, string>();
    const server = http.createServer((req, res) => {
      const token = /^\/\.well-known\/acme-challenge\/([\w-]+)$/.exec(req.url ?? '')?.[1];
      const body = token && tokens.get(token);
      res.writeHead(body ? 200 : 404, { 'content-type': 'text/plain' }).end(body || '');
    });
    await new Promise<void>((resolve) => server.listen(ca.acmeHttpPort, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    const client = new acme.Client({
      directoryUrl: ca.directoryUrl,
      accountKey: await acme.crypto.createPrivateEcdsaKey('P-256'),
    });
    const [, csr] = await acme.crypto.createCsr(
      { commonName: 'localhost', altNames: ['localhost'] },
      await acme.crypto.createPrivateEcdsaKey('P-256'),
    );
    const mark = requestsIn(logOf()).length;
    const pem = await client.auto({
      csr,
      termsOfServiceAgreed: true,
      challengePriority: ['http-01'],
      // Its own pre-check dials port 80 of the name; step-ca's check is the one that counts.
      skipChallengeVerification: true,
      challengeCreateFn: async (_authz, challenge, keyAuthorization) =>
        void tokens.set(challenge.token, keyAuthorization),
      challengeRemoveFn: async (_authz, challenge) => void tokens.delete(challenge.token),
    });
    const referenceRequests = requestsIn(logOf()).slice(mark);
    const referenceCert = new X509Certificate(pem);

    // Each request came from the client it is attributed to; outside ACME the
    // agent only fetched the CA's roots (to check them against its pin).
    const acmeOnly = (qs: Request[]) => qs.filter((q) => resource(q.path));
    expect(new Set(acmeOnly(agentRequests).map((q) => q.agent))).toEqual(new Set(['cert-agent']));
    const outside = agentRequests.filter((q) => !resource(q.path)).map((q) => `${q.method} ${q.path}`);
    expect(new Set(outside)).toEqual(new Set(['GET /roots']));
    expect(new Set(referenceRequests.map((q) => q.agent))).toEqual(new Set(['node-acme-client/5.4.0']));

    // Step by step. How a client gets its nonces is its own choice (acme-client
    // asks new-nonce with HEAD before every request; the agent asks once with
    // GET, which keeps step-ca's connection open, then reuses Replay-Nonce), so
    // nonce fetches are compared apart from the protocol steps.
    const ours = steps(agentRequests);
    const theirs = steps(referenceRequests);
    const protocol = (seq: string[]) =>
      seq.filter((x) => !/^(HEAD|GET) new-nonce/.test(x)).filter((x, i, all) => x !== all[i - 1]);
    const both = `agent:\n${ours.join('\n')}\nacme-client:\n${theirs.join('\n')}`;
    expect(protocol(theirs), both).toEqual([
      'GET directory 200',
      'POST new-account 201',
      'POST new-order 201',
      'POST authz 200',
      'POST challenge 200',
      'POST finalize 200',
      'POST certificate 200',
    ]);
    expect(protocol(ours), both).toEqual(protocol(theirs));
    expect(theirs[1], both).toBe('HEAD new-nonce 200');
    expect(ours[1], both).toBe('GET new-nonce 204');
    expect(
      ours.filter((x) => x.includes('new-nonce')),
      both,
    ).toEqual(['GET new-nonce 204']);
    expect(agentRequests.filter((q) => q.status >= 400)).toEqual([]);
    expect(acmeOnly(agentRequests).length).toBeLessThanOrEqual(acmeOnly(referenceRequests).length);

    // Equivalent certificates: names, key type, issuer, lifetime.
    const intermediate = new X509Certificate(readFileSync(join(p.certDir, 'chain.pem')));
    for (const cert of [agentCert, referenceCert]) {
      expect(cert.subjectAltName).toBe('DNS:localhost');
      expect(cert.publicKey.asymmetricKeyType).toBe('ec');
      expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
      expect(cert.issuer).toBe(intermediate.subject);
      expect(cert.verify(intermediate.publicKey)).toBe(true);
    }
    expect(agentCert.keyUsage).toEqual(referenceCert.keyUsage);
    const lifetime = (c: X509Certificate) => Date.parse(c.validTo) - Date.parse(c.validFrom);
    expect(lifetime(agentCert)).toBe(lifetime(referenceCert));
    expect(agentCert.serialNumber).not.toBe(referenceCert.serialNumber);
  }, 120_000);
});
