/**
 * Proxy mode with Traefik: the dynamic file that routes the challenge path
 * to us was just (re)written, and Traefik needs up to a couple of seconds to
 * load it. Asking the CA to validate before that wastes its retries, so we
 * first fetch a probe token of our own through the proxy's port 80 until it
 * comes back (bounded). The probe token is one of "our" tokens for those
 * moments: the responder still answers nothing else.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { Challenge, Solver } from './types.js';

export async function waitForChallengeRoute(
  solver: Solver,
  name: string,
  origin: string,
  timeoutMs = 5000,
): Promise<boolean> {
  const token = randomBytes(24).toString('base64url');
  const expected = `route-probe.${randomBytes(12).toString('base64url')}`;
  const probe: Challenge = {
    type: solver.type,
    identifier: { type: 'dns', value: name },
    token,
    keyAuthorization: expected,
  };
  await solver.present(probe);
  try {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if ((await get(`${origin}/.well-known/acme-challenge/${token}`)) === expected) return true;
      await new Promise((r) => setTimeout(r, 150));
    }
    return false;
  } finally {
    await solver.cleanup(probe);
  }
}

function get(url: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = request(url, { timeout: 1000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body.length < 4096 ? (body += c) : undefined));
      res.on('end', () => resolve(res.statusCode === 200 ? body : undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}
