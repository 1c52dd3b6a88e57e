/**
 * An ACME server (RFC 8555) in the test process, over HTTPS on loopback with
 * a test CA the agent pins, so that the protocol's edge cases — a badNonce,
 * an account the CA lost, Retry-After, an order that turns invalid, a
 * problem document, an answer too large — take milliseconds rather than a
 * relay in front of a real step-ca. Every POST is checked as a CA would:
 * flattened JWS, ES256 signature against the account's key (the JWK for
 * newAccount, the account URL's key otherwise), a nonce it issued and has
 * not seen again, `url` equal to the URL posted to.
 *
 * Each route has a default handler that keeps a coherent state (accounts,
 * orders, authorizations); a test overrides a route with `handle(route, fn)`,
 * where `fn` gets the verified request and `next()`, the default answer, to
 * return as it is, change, or replace.
 *
 * Besides ACME, step-ca's own renewal API (`/1.0/rekey`, `/1.0/renew`, see
 * fake-stepca-api.ts): the server asks every client for a certificate (as
 * step-ca does, without requiring one) and the handler of those routes gets
 * it in `peer`, with the raw request body.
 */
import { createHash, createPublicKey, randomBytes, verify, type JsonWebKey } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import * as x509 from '@peculiar/x509';
import { makeCa, type TestCa } from '../helpers/certs.js';
import { defaultRenewal, type Peer } from './fake-stepca-api.js';

export type Route =
  | 'directory'
  | 'newNonce'
  | 'newAccount'
  | 'account'
  | 'newOrder'
  | 'order'
  | 'authz'
  | 'challenge'
  | 'finalize'
  | 'certificate'
  | 'rekey'
  | 'renew';

export interface FakeRequest {
  route: Route;
  method: string;
  url: string;
  /** The id in the path (order, authz, challenge, certificate, account). */
  id: string;
  /** The verified JWS of a POST: its protected header and payload (undefined for POST-as-GET). */
  jws?: { header: { alg: string; nonce: string; url: string; kid?: string; jwk?: JsonWebKey }; payload: unknown };
  /** The account URL the request was signed for (kid, or the known account of a JWK). */
  account?: string;
  /** rekey and renew: the client certificate of the connection, if one was sent. */
  peer?: Peer;
  /** rekey and renew: the request body as sent. */
  body?: string;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  /** An object is sent as JSON, a string or Buffer as it is. */
  body?: unknown;
  /** The Replay-Nonce sent with this reply is one the CA will refuse (as after a restart). */
  staleNonce?: boolean;
}

export type Handler = (req: FakeRequest, next: () => Promise<Reply>) => Reply | Promise<Reply>;

export interface OrderState {
  status: string;
  identifiers: { type: string; value: string }[];
  authorizations: string[];
  finalize: string;
  certificate?: string;
  error?: { type: string; detail: string };
}
export interface AuthzState {
  status: string;
  identifier: { type: string; value: string };
  challenges: { type: string; url: string; token: string; status: string; error?: unknown }[];
}

const PREFIX = 'urn:ietf:params:acme:error:';

/** A problem document reply (RFC 7807), `type` without the ACME prefix. */
export function problem(status: number, type: string, detail: string): Reply {
  return { status, headers: { 'content-type': 'application/problem+json' }, body: { type: PREFIX + type, detail } };
}

const b64uJson = (s: string): unknown => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
const thumbprintOf = ({ crv, kty, x, y }: JsonWebKey) =>
  createHash('sha256').update(JSON.stringify({ crv, kty, x, y })).digest('base64url');

export class FakeAcme {
  /** Every request to a known route, in order, with the status it got (failed JWS checks included). */
  readonly log: { route: Route; status: number; at: number }[] = [];
  readonly accounts = new Map<string, JsonWebKey>();
  readonly orders = new Map<string, OrderState>();
  readonly authzs = new Map<string, AuthzState>();
  /** What a request signed for an account the CA does not know gets (step-ca before 0.2x answered 500). */
  unknownAccount: () => Reply = () => problem(400, 'accountDoesNotExist', 'account not found');
  /** Decides a challenge: the default accepts it; `keyAuthorization` is what a client must serve. */
  validate: (authz: AuthzState, token: string, keyAuthorization: string) => boolean | Promise<boolean> = () => true;
  private readonly nonces = new Set<string>();
  private readonly handlers = new Map<Route, Handler>();
  private readonly certs = new Map<string, string>();
  private seq = 0;

  private constructor(
    private readonly server: Server,
    readonly ca: TestCa,
    readonly origin: string,
    /** Leaves from finalize carry clientAuth too, as step-ca's do (then the agent may renew them over /1.0/rekey). */
    readonly clientAuth: boolean,
  ) {}

  /**
   * Listening on 127.0.0.1 with a leaf of `ca` (a fresh test CA by default);
   * pin `ca.root.pem`. With `clientAuth`, finalize issues leaves with
   * serverAuth and clientAuth as step-ca does; by default serverAuth only.
   */
  static async start(ca?: TestCa, opts: { clientAuth?: boolean } = {}): Promise<FakeAcme> {
    const testCa = ca ?? (await makeCa('Fake ACME'));
    const tls = await testCa.leaf({ domains: ['127.0.0.1'] });
    // As step-ca: ask for a client certificate, verify it against the CA, require none.
    const clientCas = [testCa.root.pem, testCa.intermediate.pem];
    const server = createServer({
      key: tls.keyPem,
      cert: tls.fullchainPem,
      requestCert: true,
      rejectUnauthorized: false,
      ca: clientCas,
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const fake = new FakeAcme(server, testCa, origin, opts.clientAuth ?? false);
    server.on('request', (req, res) => void fake.serve(req, res));
    return fake;
  }

  get directoryUrl(): string {
    return `${this.origin}/directory`;
  }
  get roots(): string[] {
    return [this.ca.root.pem];
  }

  /** Replaces `route`'s handler; `next()` in it gives the default answer. */
  handle(route: Route, handler: Handler): this {
    this.handlers.set(route, handler);
    return this;
  }

  /** Back to the defaults between tests: no overrides, no accounts, an empty log. */
  reset(): void {
    this.handlers.clear();
    this.accounts.clear();
    this.log.length = 0;
    this.unknownAccount = () => problem(400, 'accountDoesNotExist', 'account not found');
    this.validate = () => true;
  }

  /** How many requests went to `route`. */
  count(route: Route): number {
    return this.log.filter((l) => l.route === route).length;
  }

  /** The key authorization a client must present for `token` (RFC 8555 8.1). */
  keyAuthorization(token: string, account: string): string {
    return `${token}.${thumbprintOf(this.accounts.get(account)!)}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = `${this.origin}${req.url ?? '/'}`;
    const [, name = '', id = ''] = (req.url ?? '/').split('/');
    const route = name === '1.0' ? API_ROUTES[id] : ROUTES[name];
    let reply: Reply;
    if (!route) reply = { status: 404, body: 'not found' };
    else {
      const base: FakeRequest = { route, method: req.method ?? 'GET', url, id };
      const text = Buffer.concat(chunks).toString('utf8');
      const checked =
        route === 'rekey' || route === 'renew'
          ? { ...base, body: text, ...peerOf(req.socket as TLSSocket) }
          : req.method === 'POST'
            ? this.verifyJws(base, text)
            : base;
      if ('status' in checked) reply = checked;
      else {
        const next = () => Promise.resolve(this.defaults(checked));
        const handler = this.handlers.get(route);
        reply = await (handler ? handler(checked, next) : next());
      }
    }
    if (route) this.log.push({ route, status: reply.status, at: Date.now() });
    this.send(res, reply);
  }

  private send(res: ServerResponse, reply: Reply): void {
    const nonce = this.newNonce();
    if (reply.staleNonce) this.nonces.delete(nonce);
    const headers: Record<string, string> = { 'replay-nonce': nonce, 'cache-control': 'no-store', ...reply.headers };
    let body: Buffer;
    if (reply.body === undefined) body = Buffer.alloc(0);
    else if (Buffer.isBuffer(reply.body)) body = reply.body;
    else if (typeof reply.body === 'string') body = Buffer.from(reply.body);
    else {
      body = Buffer.from(JSON.stringify(reply.body));
      headers['content-type'] ??= 'application/json';
    }
    res.writeHead(reply.status, { ...headers, 'content-length': String(body.length) });
    res.end(body);
  }

  private newNonce(): string {
    const nonce = randomBytes(16).toString('base64url');
    this.nonces.add(nonce);
    return nonce;
  }

  /** The checks a CA makes on every POST, in RFC 8555 6.2-6.5's order; a Reply when one fails. */
  private verifyJws(req: FakeRequest, text: string): FakeRequest | Reply {
    let jws: { protected: string; payload: string; signature: string };
    let header: NonNullable<FakeRequest['jws']>['header'];
    try {
      jws = JSON.parse(text) as typeof jws;
      header = b64uJson(jws.protected) as typeof header;
    } catch {
      return problem(400, 'malformed', 'the body is not a flattened JWS');
    }
    if (header.alg !== 'ES256') return problem(400, 'badSignatureAlgorithm', `${header.alg} is not supported`);
    if (!this.nonces.delete(header.nonce)) return problem(400, 'badNonce', 'nonce unknown or already used');
    if (header.url !== req.url) return problem(401, 'unauthorized', `url ${header.url} is not ${req.url}`);
    if (Boolean(header.jwk) === Boolean(header.kid)) return problem(400, 'malformed', 'exactly one of jwk and kid');
    if (header.jwk && req.route !== 'newAccount') return problem(400, 'malformed', 'jwk only for newAccount');
    const jwk = header.jwk ?? this.accounts.get(header.kid!);
    if (!jwk) return this.unknownAccount();
    const signed = Buffer.from(`${jws.protected}.${jws.payload}`);
    const key = createPublicKey({ key: jwk, format: 'jwk' });
    if (!verify('sha256', signed, { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(jws.signature, 'base64url')))
      return problem(403, 'unauthorized', 'the JWS signature does not verify');
    const account = header.kid ?? [...this.accounts].find(([, k]) => thumbprintOf(k) === thumbprintOf(jwk))?.[0];
    const payload = jws.payload === '' ? undefined : b64uJson(jws.payload);
    return { ...req, jws: { header, payload }, ...(account ? { account } : {}) };
  }

  private defaults(req: FakeRequest): Reply | Promise<Reply> {
    switch (req.route) {
      case 'directory':
        return { status: 200, body: this.directory() };
      case 'newNonce':
        return { status: req.method === 'HEAD' ? 200 : 204 };
      case 'newAccount':
        return this.newAccount(req);
      case 'account':
        return { status: 200, body: { status: 'valid' } };
      case 'newOrder':
        return this.newOrder(req);
      case 'order':
        return this.orderReply(req.id, 200);
      case 'authz':
        return this.authzReply(req.id);
      case 'challenge':
        return this.challenge(req);
      case 'finalize':
        return this.finalize(req);
      case 'certificate':
        return this.certificate(req.id);
      case 'rekey':
      case 'renew':
        return defaultRenewal(this.ca, req.route, req.peer, req.body ?? '');
    }
  }

  private directory() {
    const u = (path: string) => `${this.origin}/${path}`;
    return { newNonce: u('new-nonce'), newAccount: u('new-account'), newOrder: u('new-order') };
  }

  private newAccount(req: FakeRequest): Reply {
    const payload = (req.jws?.payload ?? {}) as { onlyReturnExisting?: boolean };
    if (req.account) return { status: 200, headers: { location: req.account }, body: { status: 'valid' } };
    if (payload.onlyReturnExisting) return problem(400, 'accountDoesNotExist', 'no account for this key');
    const url = `${this.origin}/acct/${++this.seq}`;
    this.accounts.set(url, req.jws!.header.jwk!);
    return { status: 201, headers: { location: url }, body: { status: 'valid' } };
  }

  private newOrder(req: FakeRequest): Reply {
    const { identifiers } = req.jws!.payload as { identifiers: OrderState['identifiers'] };
    const id = String(++this.seq);
    const authorizations = identifiers.map((identifier, i) => {
      const authzId = `${id}-${i}`;
      const token = randomBytes(16).toString('base64url');
      const challenges = ['http-01', 'dns-01'].map((type) => ({
        type,
        url: `${this.origin}/chall/${authzId}-${type}`,
        token,
        status: 'pending',
      }));
      this.authzs.set(authzId, { status: 'pending', identifier, challenges });
      return `${this.origin}/authz/${authzId}`;
    });
    this.orders.set(id, { status: 'pending', identifiers, authorizations, finalize: `${this.origin}/finalize/${id}` });
    return this.orderReply(id, 201);
  }

  private orderReply(id: string, status: number): Reply {
    const order = this.orders.get(id);
    if (!order) return problem(404, 'malformed', `no order ${id}`);
    return { status, headers: { location: `${this.origin}/order/${id}` }, body: { ...order } };
  }

  private authzReply(id: string): Reply {
    const authz = this.authzs.get(id);
    if (!authz) return problem(404, 'malformed', `no authorization ${id}`);
    return { status: 200, body: structuredClone(authz) };
  }

  private async challenge(req: FakeRequest): Promise<Reply> {
    const authzId = req.id.replace(/-[a-z0-9]+-01$/, '');
    const authz = this.authzs.get(authzId);
    const chall = authz?.challenges.find((c) => c.url === req.url);
    if (!authz || !chall) return problem(404, 'malformed', `no challenge ${req.id}`);
    const ok = await this.validate(authz, chall.token, this.keyAuthorization(chall.token, req.account!));
    chall.status = authz.status = ok ? 'valid' : 'invalid';
    if (!ok) chall.error = { type: `${PREFIX}unauthorized`, detail: 'the key authorization did not match' };
    const order = [...this.orders.values()].find((o) => o.authorizations.includes(`${this.origin}/authz/${authzId}`));
    if (order && order.authorizations.every((u) => this.authzs.get(u.split('/').pop()!)?.status === 'valid'))
      order.status = 'ready';
    if (order && !ok) order.status = 'invalid';
    return { status: 200, headers: { link: `<${this.origin}/authz/${authzId}>;rel="up"` }, body: { ...chall } };
  }

  /** Issues a leaf from the test CA for the CSR's public key, after checking its signature and names. */
  private async finalize(req: FakeRequest): Promise<Reply> {
    const order = this.orders.get(req.id);
    if (!order) return problem(404, 'malformed', `no order ${req.id}`);
    if (order.status !== 'ready') return problem(403, 'orderNotReady', `order is ${order.status}`);
    const { csr: b64 } = req.jws!.payload as { csr: string };
    const csr = new x509.Pkcs10CertificateRequest(Buffer.from(b64, 'base64url'));
    if (!(await csr.verify())) return problem(400, 'badCSR', 'the CSR signature does not verify');
    const ext = csr.getExtension('2.5.29.17'); // subjectAltName
    const san = ext ? new x509.SubjectAlternativeNameExtension(ext.rawData) : undefined;
    const names = (san?.names.items ?? []).map((n) => n.value);
    const wanted = order.identifiers.map((i) => i.value);
    if (JSON.stringify([...names].sort()) !== JSON.stringify([...wanted].sort()))
      return problem(400, 'badCSR', `CSR names ${names.join(',')} are not the order's ${wanted.join(',')}`);
    const publicKey = await csr.publicKey.export();
    const leaf = await this.ca.leaf({
      domains: wanted,
      publicKey,
      usages: this.clientAuth ? 'server+client' : 'server',
    });
    this.certs.set(req.id, leaf.fullchainPem);
    order.status = 'valid';
    order.certificate = `${this.origin}/cert/${req.id}`;
    return this.orderReply(req.id, 200);
  }

  private certificate(id: string): Reply {
    const pem = this.certs.get(id);
    if (!pem) return problem(404, 'malformed', `no certificate ${id}`);
    return { status: 200, headers: { 'content-type': 'application/pem-certificate-chain' }, body: pem };
  }
}

/** The client certificate chain of a TLS connection, with OpenSSL's verdict; nothing when none was sent. */
function peerOf(socket: TLSSocket): { peer?: Peer } {
  const chain: x509.X509Certificate[] = [];
  const seen = new Set<string>();
  for (let c = socket.getPeerCertificate(true); c?.raw && !seen.has(c.fingerprint256); c = c.issuerCertificate) {
    seen.add(c.fingerprint256);
    chain.push(new x509.X509Certificate(new Uint8Array(c.raw)));
  }
  if (chain.length === 0) return {};
  const error = socket.authorizationError;
  return { peer: { chain, authorized: socket.authorized, ...(error ? { authorizationError: String(error) } : {}) } };
}

const API_ROUTES: Record<string, Route> = { rekey: 'rekey', renew: 'renew' };

const ROUTES: Record<string, Route> = {
  directory: 'directory',
  'new-nonce': 'newNonce',
  'new-account': 'newAccount',
  acct: 'account',
  'new-order': 'newOrder',
  order: 'order',
  authz: 'authz',
  chall: 'challenge',
  finalize: 'finalize',
  cert: 'certificate',
};
