// A man in the middle for a step-ca under test: an HTTPS server whose TLS
// certificate (localhost, 127.0.0.1) comes from an unrelated CA, so it is
// perfectly valid except that it does not chain to the real root.
//
// GET /roots is answered locally with the REAL CA's root, exactly as step-ca
// would (201, {"crts":[pem]}), so an agent that trusts "whatever /roots
// says" over TLS it has not verified is fooled. By default every other
// request is relayed to the real CA with the Host header kept, so ACME links
// point back at the MITM: an agent that fails to pin would get all the way
// to a certificate, which makes "the agent refused" a meaningful assertion.
import type * as http from 'node:http';
import * as https from 'node:https';
import type * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { makeOtherCa, type StepCa } from './stepca.js';

export interface MitmOptions {
  /** Relay non-/roots requests to the real CA (default true); false answers 404. */
  proxy?: boolean;
}

export interface Mitm {
  url: string;
  port: number;
  /** Root of the unrelated CA that issued the MITM's TLS certificate. */
  rootPem: string;
  /** Requests seen, as "METHOD /path", so tests can assert what got through. */
  requests: string[];
  close(): Promise<void>;
}

export async function startMitm(target: StepCa, opts: MitmOptions = {}): Promise<Mitm> {
  const other = await makeOtherCa();
  const leaf = await other.issue(['localhost', '127.0.0.1']);
  const requests: string[] = [];
  const proxy = opts.proxy ?? true;

  const server = https.createServer({ key: leaf.keyPem, cert: leaf.certPem + leaf.chainPem }, (req, res) => {
    const url = req.url ?? '/';
    requests.push(`${req.method} ${url}`);
    const pathOnly = url.split('?')[0]!.replace(/^\/1\.0(?=\/)/, '');
    if (req.method === 'GET' && pathOnly === '/roots') {
      // Read at request time: after target.recreate() the MITM serves the new root.
      const body = JSON.stringify({ crts: [target.rootPem] });
      res.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    if (!proxy) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"status":404,"message":"Not Found"}');
      return;
    }
    relay(req, res, target);
  });

  // Without this, keep-alive sockets from clients under test would make
  // close() hang until they time out.
  const sockets = new Set<Duplex>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  // A client that rejects our certificate aborts the handshake; that is the
  // expected outcome here, not something to crash on.
  server.on('tlsClientError', () => undefined);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  let closed = false;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    rootPem: other.rootPem,
    requests,
    close: async () => {
      if (closed) return;
      closed = true;
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await done;
    },
  };
}

function relay(req: http.IncomingMessage, res: http.ServerResponse, target: StepCa): void {
  const upstream = https.request(
    {
      host: '127.0.0.1',
      port: target.port,
      method: req.method,
      path: req.url,
      // Keep the client's Host so step-ca builds ACME links that lead back here.
      headers: req.headers,
      // The relay itself trusts the real root; only the client side is forged.
      ca: target.rootPem,
      // No pooling: a pooled socket to a CA that was restarted since is dead.
      agent: false,
    },
    (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    },
  );
  upstream.on('error', (err) => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`mitm relay error: ${err.message}`);
  });
  req.pipe(upstream);
}
