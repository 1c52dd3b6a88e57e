/**
 * The agent's own http-01 listener, used by `standalone` (bound on port 80
 * while an order is validated) and `proxy` (a local port the proxy forwards
 * /.well-known/acme-challenge/ to). It answers exactly the tokens of the
 * current order, GET or HEAD, and nothing else: no directory listing, no
 * other paths, small header limits and short timeouts against slow clients,
 * and a few connections per remote address so that one client cannot take
 * the slots the CA's validation needs.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP, type Socket } from 'node:net';
import { splitHostPort } from '../config/values.js';
import { ipv6Bytes } from '../pki/der.js';
import { diagnosis } from '../lib/diagnosis.js';
import { ChallengeError, describeError } from '../lib/errors.js';
import type { Solver, SolverContext, SolverKind } from './types.js';

/** The listener's own options: where it listens, and the mode it serves (for advice). */
export interface ListenerOptions {
  mode: 'standalone' | 'proxy';
  host: string;
  port: number;
}

const PREFIX = '/.well-known/acme-challenge/';
/** RFC 8555 tokens are base64url, at least 128 bits. */
const TOKEN = /^[A-Za-z0-9_-]{16,256}$/;
/** A CA validates with one connection at a time per name; a client (address, IPv6 /64) holding more is not one. */
export const MAX_PER_ADDRESS = 16;
const MAX_CONNECTIONS = 1024;
/** A connection silent this long is closed (the CA sends its request at once). */
const IDLE_MS = 5_000;

export async function openHttpResponder(listener: ListenerOptions, ctx: SolverContext): Promise<Solver> {
  const { host, port } = listener;
  const tokens = new Map<string, string>();
  // Node checks the two timeouts only every connectionsCheckingInterval
  // (30 s by default): a slowloris client would hold a slot that long.
  const server = createServer(
    {
      maxHeaderSize: 8 * 1024,
      requestTimeout: 10_000,
      headersTimeout: 5_000,
      keepAliveTimeout: 2_000,
      connectionsCheckingInterval: 1_000,
    },
    (req, res) => answer(tokens, req, res),
  );
  // One client must not be able to take every slot and shut out the CA's
  // validation: each remote address gets a few connections, every connection
  // is dropped after a short silence, and the total is bounded for memory.
  const perAddress = new Map<string, number>();
  server.maxConnections = MAX_CONNECTIONS;
  server.on('connection', (socket: Socket) => {
    const address = clientKey(socket.remoteAddress ?? '');
    const count = perAddress.get(address) ?? 0;
    if (count >= MAX_PER_ADDRESS) {
      socket.destroy();
      return;
    }
    perAddress.set(address, count + 1);
    socket.once('close', () => {
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left > 0) perAddress.set(address, left);
      else perAddress.delete(address);
    });
    socket.setTimeout(IDLE_MS, () => socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const why =
        err.code === 'EADDRINUSE'
          ? 'is in use by another program (use challenge.mode webroot or proxy when a proxy owns port 80)'
          : err.code === 'EACCES'
            ? 'needs CAP_NET_BIND_SERVICE or root'
            : describeError(err);
      reject(new ChallengeError(`cannot listen for http-01 on ${host}:${port}: ${why}`));
    });
    server.listen(port, host, () => resolve());
  });
  return {
    type: 'http-01',
    async present({ token, keyAuthorization }) {
      tokens.set(token, keyAuthorization);
    },
    async cleanup({ token }) {
      tokens.delete(token);
    },
    // Loaded only when a refusal needs explaining (DNS, an HTTP client and more that a renewal does not use).
    selfCheck: async (challenge) =>
      (await import('./self-check.js')).selfCheckHttp01(challenge, { ...listener, ...ctx }),
    async close() {
      tokens.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/**
 * Whose connection this is, for the per-client limit: an IPv4 address (also
 * when it arrives IPv4-mapped on a dual-stack socket), or an IPv6 /64, since
 * one host can take any number of addresses inside its own /64.
 */
export function clientKey(address: string): string {
  if (isIP(address) !== 6) return address;
  const bytes = ipv6Bytes(address);
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (mapped) return bytes.subarray(12).join('.');
  return `${bytes.subarray(0, 8).toString('hex')}::/64`;
}

function answer(tokens: Map<string, string>, req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('cache-control', 'no-store');
  res.setHeader('connection', 'close');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  const path = (req.url ?? '').split('?')[0] ?? '';
  const token = path.startsWith(PREFIX) ? path.slice(PREFIX.length) : '';
  const keyAuthorization = TOKEN.test(token) ? tokens.get(token) : undefined;
  if (keyAuthorization === undefined) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end(req.method === 'HEAD' ? undefined : 'not found\n');
    return;
  }
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': Buffer.byteLength(keyAuthorization),
  });
  res.end(req.method === 'HEAD' ? undefined : keyAuthorization);
}

// ---- the two modes that use the listener -------------------------------------

const WELL_KNOWN = (name: string) => `http://${name}/.well-known/acme-challenge/`;
const CHECKED = 'checked from this container as the CA fetches it';

function listenerOf(mode: ListenerOptions['mode'], listen: string): ListenerOptions {
  return { mode, ...splitHostPort(listen) };
}

/** Whether host:port can be bound now; true, or the reason it could not. */
function tryListen(host: string, port: number): Promise<true | string> {
  return new Promise((resolve) => {
    const server = createServer((_req, res) => res.writeHead(404).end());
    server.once('error', (err) => resolve((err as NodeJS.ErrnoException).code ?? describeError(err)));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** challenge.mode standalone: the agent binds challenge.listen (port 80) while the CA validates. */
export const standaloneSolver: SolverKind = {
  open: (settings, ctx) => openHttpResponder(listenerOf('standalone', settings.listen), ctx),
  async openFailure(settings, err) {
    const { host, port } = splitHostPort(settings.listen);
    const bound = await tryListen(host, port);
    const why = bound === true ? describeError(err) : bound;
    return diagnosis(
      'PROBLEM',
      'challenge',
      `cannot bind ${settings.listen} (${why}): another process holds it; stop it, ` +
        'or use challenge.mode webroot or proxy through the server that holds the port',
    );
  },
  answered: (settings, name) =>
    `${WELL_KNOWN(name)} answers from the agent on ${settings.listen} (bound only while the CA validates), ${CHECKED}`,
};

/** challenge.mode proxy: the server on port 80 forwards the challenge path to challenge.listen. */
export const proxySolver: SolverKind = {
  open: (settings, ctx) => openHttpResponder(listenerOf('proxy', settings.listen), ctx),
  // A renewal in progress holds the port: nothing is wrong with the setup.
  openFailure: async (settings, err) =>
    diagnosis(
      'skip',
      'challenge',
      `${settings.listen} is busy (${describeError(err)}); run doctor again when no renewal is in progress`,
    ),
  answered: (_settings, name) => `${WELL_KNOWN(name)} answers from the proxy, ${CHECKED}`,
};
