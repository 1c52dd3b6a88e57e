/**
 * After a reload, ask the consumer itself: a TLS handshake to reload.verify
 * with SNI = the first name, comparing the served serial with the live one.
 * This is the only trustworthy signal — `nginx -s reload` exits 0 even when
 * the master rejects the new configuration. Workers switch over
 * asynchronously, so a mismatch is retried for a few seconds.
 */
import { connect } from 'node:tls';
import { isIP } from 'node:net';
import { splitHostPort } from '../config/values.js';
import { ReloadError, describeError } from '../lib/errors.js';
import type { ReloadSet, SetResult } from './types.js';

/** Where the proxies serve TLS, to confirm after a reload that they took the new certificate. */
export const PROXY_VERIFY = '127.0.0.1:443';

export async function servedSerial(address: string, servername: string, timeoutMs = 3000): Promise<string> {
  const { host, port } = splitHostPort(address, '127.0.0.1');
  return new Promise((resolve, reject) => {
    // Only the serial is read; trust is not the question here, identity is.
    // An empty `ca`: nothing is verified, and Node 20 then skips loading its
    // own ~140 roots (40-50 ms of CPU in every renewal that verifies).
    const socket = connect(
      {
        host,
        port,
        servername: isIP(servername) ? undefined : servername,
        ca: [],
        rejectUnauthorized: false,
        timeout: timeoutMs,
      },
      () => {
        const serial = socket.getPeerCertificate()?.serialNumber;
        socket.end();
        if (serial) resolve(serial.toLowerCase());
        else reject(new Error(`${address} presented no certificate`));
      },
    );
    socket.once('timeout', () => socket.destroy(new Error(`no TLS answer from ${address} within ${timeoutMs}ms`)));
    socket.once('error', (err) => reject(err));
  });
}

/** Waits until `address` serves `serial`; returns what was last seen and whether it matched. */
export async function waitForSerial(
  address: string,
  servername: string,
  serial: string,
  totalMs = 10_000,
): Promise<{ ok: boolean; seen?: string; error?: string }> {
  const want = serial.toLowerCase().replace(/^0+/, '');
  const deadline = Date.now() + totalMs;
  let last: { ok: boolean; seen?: string; error?: string };
  for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
    try {
      const seen = await servedSerial(address, servername);
      last = { ok: seen.replace(/^0+/, '') === want, seen };
    } catch (err) {
      last = { ok: false, error: describeError(err) };
    }
    if (last.ok || Date.now() + delay > deadline) return last;
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** Shared by the proxy targets: without reload.verify there is nothing to confirm against. */
export async function verifyServed(
  verify: string | undefined,
  servername: string,
  serial: string,
  what: string,
  action: string,
  hint?: string,
) {
  if (!verify) return { detail: `${action} (not verified: set reload.verify to confirm the served serial)` };
  const seen = await waitForSerial(verify, servername, serial);
  if (!seen.ok) {
    throw new ReloadError(
      `${action} but ${verify} still serves ${seen.seen ? `serial ${seen.seen}` : `nothing (${seen.error})`}, not the new serial ${serial.toLowerCase()}${hint ? ` (${hint})` : ''}`,
    );
  }
  return { detail: `${what} serves serial ${seen.seen} on ${verify}`, servedSerial: seen.seen };
}

/**
 * The name a verifying handshake sends as SNI: the first configured name
 * that is not a wildcard, else a name the first wildcard covers (SNI cannot
 * carry `*`, and the server picks its certificate by the name it is sent).
 */
export function verifyName(domains: string[]): string {
  const plain = domains.find((d) => !d.startsWith('*.'));
  if (plain) return plain;
  return `cert-agent-verify${(domains[0] as string).slice(1)}`;
}

/**
 * After one reload for several certificates: each checked on its own
 * reload.verify with verifyName() of its names as SNI, all at once. A set the
 * consumer does not serve gets its ReloadError; the others their outcome.
 */
export async function verifyEach(sets: ReloadSet[], what: string, action: string, hint?: string): Promise<SetResult[]> {
  return Promise.all(
    sets.map(({ config, live }) =>
      verifyServed(
        config.reload.verify,
        verifyName(config.certificate.domains),
        live.cert.serialNumber,
        what,
        action,
        hint,
      ).catch((err: unknown) => {
        if (err instanceof ReloadError) return err;
        throw err;
      }),
    ),
  );
}
