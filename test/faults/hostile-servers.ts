/**
 * Small hostile or broken servers for the CA fault tests:
 *  - startHostileCa: an HTTPS "CA" whose TLS certificate chains to a root the
 *    agent pins (so the agent talks to it), answering /roots and ACME with
 *    garbage, huge or slow bodies, or HTTP 500s; or with a TLS leaf that
 *    OpenSSL refuses for a server (`nsCertType = client`);
 *  - startTcpRelay: a byte relay in front of a real step-ca (TLS passes
 *    through untouched) that, after a number of bytes from the client, stops
 *    forwarding (a hung CA) or drops every connection and stops listening
 *    (a CA that died) — mid-order;
 *  - startCountingProxy: a TLS-terminating relay in front of Pebble that
 *    counts the badNonce rejections it passes back;
 *  - startAcmeRelay: a relay in front of a real step-ca, trusted through its
 *    own root, that rewrites chosen ACME answers or holds them back.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as https from 'node:https';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { makeOtherCa } from '../harness/stepca.js';

export type Behaviour = 'garbage' | 'huge' | 'silent' | 'drip' | 'http500' | 'clientLeaf';

export interface HostileCa {
  url: string;
  rootPem: string;
  rootFingerprint: string;
  requests: string[];
  /** Bytes of body sent by 'huge' before the client hung up. */
  hugeSent: number;
  close(): Promise<void>;
}

const PROBLEM_500 = JSON.stringify({
  type: 'urn:ietf:params:acme:error:serverInternal',
  detail: 'the database is on fire',
  status: 500,
});

export async function startHostileCa(behaviour: Behaviour): Promise<HostileCa> {
  const ca = await makeOtherCa();
  const leaf = await ca.issue(['localhost', '127.0.0.1'], behaviour === 'clientLeaf' ? ['nsCertType = client'] : []);
  const sockets = new Set<net.Socket>();
  const state: HostileCa = {
    url: '',
    rootPem: ca.rootPem,
    rootFingerprint: ca.rootFingerprint,
    requests: [],
    hugeSent: 0,
    close: async () => undefined,
  };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    state.requests.push(`${req.method} ${req.url}`);
    const roots = req.url === '/roots' || req.url === '/1.0/roots';
    if ((behaviour === 'http500' || behaviour === 'clientLeaf') && roots)
      return void res
        .writeHead(201, { 'content-type': 'application/json' })
        .end(JSON.stringify({ crts: [ca.rootPem] }));
    if (behaviour === 'http500' || behaviour === 'clientLeaf')
      return void res.writeHead(500, { 'content-type': 'application/problem+json' }).end(PROBLEM_500);
    if (behaviour === 'garbage')
      return void res.writeHead(201, { 'content-type': 'application/json' }).end('<html>\x00\xff{"crts": [not json');
    if (behaviour === 'silent') return; // never answers
    if (behaviour === 'drip') {
      res.writeHead(201, { 'content-type': 'application/json' });
      const t = setInterval(() => res.write(' '), 1_000);
      res.once('close', () => clearInterval(t));
      return;
    }
    // huge: an endless JSON string, 64 KiB at a time, until the client hangs up (at most 256 MiB).
    res.writeHead(201, { 'content-type': 'application/json' });
    res.write('{"crts": ["');
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    const pump = () => {
      while (state.hugeSent < 256 * 2 ** 20 && !res.destroyed) {
        state.hugeSent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  };
  const server = https.createServer({ key: leaf.keyPem, cert: leaf.certPem + leaf.chainPem }, handler);
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  state.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return state;
}

export interface TcpRelay {
  port: number;
  /** Bytes the client has sent through the relay so far. */
  readonly bytesUp: number;
  /** From `afterBytes` bytes on: 'hang' stops forwarding, 'die' drops every connection and stops listening. */
  trip(afterBytes: number, how: 'hang' | 'die'): void;
  /** When the trip happened (ms epoch), if it did. */
  readonly trippedAt: number | undefined;
  close(): Promise<void>;
}

export async function startTcpRelay(targetPort: number): Promise<TcpRelay> {
  let bytesUp = 0;
  let trip: { at: number; how: 'hang' | 'die' } | undefined;
  let trippedAt: number | undefined;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    const tripped = () => trip !== undefined && bytesUp >= trip.at;
    client.on('data', (d: Buffer) => {
      bytesUp += d.length;
      if (tripped()) return fire();
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (!tripped()) client.write(d);
    });
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => {
      if (!tripped()) client.destroy();
    });
  });
  const fire = () => {
    if (trippedAt) return;
    trippedAt = Date.now();
    if (trip?.how === 'die') {
      server.close();
      for (const s of sockets) s.destroy();
    }
    // 'hang': sockets stay open, nothing more is forwarded; new connections are accepted and ignored.
  };
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    get bytesUp() {
      return bytesUp;
    },
    get trippedAt() {
      return trippedAt;
    },
    trip(afterBytes, how) {
      trip = { at: afterBytes, how };
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export interface CountingProxy {
  url: string;
  rootPem: string;
  badNonces: number;
  requests: number;
  close(): Promise<void>;
}

/** TLS-terminating relay to https://127.0.0.1:targetPort (trusting its self-signed cert), Host kept. */
export async function startCountingProxy(targetPort: number, targetCertPem: string): Promise<CountingProxy> {
  const ca = await makeOtherCa();
  const leaf = await ca.issue(['localhost', '127.0.0.1']);
  const stats: CountingProxy = {
    url: '',
    rootPem: ca.rootPem,
    badNonces: 0,
    requests: 0,
    close: async () => undefined,
  };
  const server = https.createServer({ key: leaf.keyPem, cert: leaf.certPem + leaf.chainPem }, (req, res) => {
    stats.requests++;
    const up = https.request(
      {
        host: '127.0.0.1',
        port: targetPort,
        method: req.method,
        path: req.url,
        headers: req.headers,
        ca: targetCertPem,
        agent: false,
        servername: 'localhost',
      },
      (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => {
          const body = Buffer.concat(chunks);
          if (r.statusCode === 400 && body.includes('badNonce')) stats.badNonces++;
          res.writeHead(r.statusCode ?? 502, r.headers).end(body);
        });
      },
    );
    up.on('error', (e) => res.writeHead(502).end(e.message));
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  stats.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  stats.close = () => new Promise<void>((r) => server.close(() => r()));
  return stats;
}

export interface AcmeRelay {
  url: string;
  /** Every request as "METHOD /path", with the time it arrived. */
  log: { at: number; line: string }[];
  close(): Promise<void>;
}

/** What an intercept may do to one exchange: leave it (undefined) or answer this instead. */
export interface Exchange {
  status: number;
  headers: Record<string, string>;
  body: string;
}
type Answer = { status: number; headers?: Record<string, string>; body: string } | undefined;
/** May answer later (a promise): the agent then waits that long for this answer, as for a slow CA. */
export type Intercept = (req: { method: string; path: string }, upstream: Exchange) => Answer | Promise<Answer>;

/**
 * A TLS-terminating relay in front of a real step-ca, with a certificate
 * from that CA's own intermediate (so the agent's pin still holds and what
 * it gets issued still chains), that can rewrite chosen answers: a 500
 * where the CA said something else, a status the CA has not reached yet, a
 * Retry-After. step-ca builds its ACME URLs from the Host header, so the
 * whole order goes through the relay.
 */
export async function startAcmeRelay(
  ca: { port: number; dir: string; rootPem: string },
  intercept: Intercept,
): Promise<AcmeRelay> {
  const leaf = await issueFromStepCaIntermediate(ca.dir, ['127.0.0.1', 'localhost']);
  const relay: AcmeRelay = { url: '', log: [], close: async () => undefined };
  const server = https.createServer({ key: leaf.keyPem, cert: leaf.certPem + leaf.chainPem }, (req, res) => {
    relay.log.push({ at: Date.now(), line: `${req.method} ${req.url}` });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const target = { host: '127.0.0.1', port: ca.port, method: req.method, path: req.url, headers: req.headers };
      const up = https.request({ ...target, ca: ca.rootPem, agent: false }, (r) => {
        const body: Buffer[] = [];
        r.on('data', (c: Buffer) => body.push(c));
        r.on('end', () => {
          const single = Object.entries(r.headers).filter(([, v]) => typeof v === 'string');
          const headers = Object.fromEntries(single) as Record<string, string>;
          const upstream = { status: r.statusCode ?? 502, headers, body: Buffer.concat(body).toString('utf8') };
          void Promise.resolve(intercept({ method: req.method ?? '', path: req.url ?? '' }, upstream)).then(
            (changed) => {
              if (res.destroyed) return;
              if (!changed) return void res.writeHead(upstream.status, r.headers).end(Buffer.concat(body));
              const out = { ...headers, ...changed.headers };
              delete out['content-length'];
              res.writeHead(changed.status, out).end(changed.body);
            },
          );
        });
      });
      up.on('error', (e) => res.writeHead(502).end(e.message));
      up.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  relay.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  relay.close = () =>
    new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
  return relay;
}

/** A TLS server certificate signed by the step-ca's own intermediate (pki/ of its directory). */
async function issueFromStepCaIntermediate(
  caDir: string,
  names: string[],
): Promise<{ certPem: string; keyPem: string; chainPem: string }> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'cert-agent-relayleaf-'));
  try {
    const san = names.map((n) => (net.isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(', ');
    const ext = [
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature',
      'extendedKeyUsage = serverAuth',
      `subjectAltName = ${san}`,
      '',
    ];
    await fsp.writeFile(path.join(dir, 'leaf.ext'), ext.join('\n'));
    const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    run([
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'leaf.key',
      '-out',
      'leaf.csr',
      '-subj',
      `/CN=${names[0]}`,
    ]);
    run([
      'x509',
      '-req',
      '-in',
      'leaf.csr',
      '-CA',
      path.join(caDir, 'pki/intermediate_ca.crt'),
      '-CAkey',
      path.join(caDir, 'pki/intermediate_ca_key'),
      '-set_serial',
      `0x${randomBytes(12).toString('hex')}`,
      '-days',
      '2',
      '-sha256',
      '-extfile',
      'leaf.ext',
      '-out',
      'leaf.crt',
    ]);
    return {
      certPem: await fsp.readFile(path.join(dir, 'leaf.crt'), 'utf8'),
      keyPem: await fsp.readFile(path.join(dir, 'leaf.key'), 'utf8'),
      chainPem: await fsp.readFile(path.join(caDir, 'pki/intermediate_ca.crt'), 'utf8'),
    };
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}
