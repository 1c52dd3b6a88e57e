/**
 * The http-01 self-check: before the CA is asked to validate, fetch our own
 * token the way the CA will (`http://<name>/.well-known/acme-challenge/<token>`
 * on port 80, the name resolved as this container resolves it) and, when the
 * answer is wrong, say what answered and what to change, in the operator's
 * terms. A CA answers every failed fetch with the same "could not connect to
 * validation target"; this is where the real reason comes from.
 *
 * Advisory only: the container may resolve its own name differently from
 * the CA (so the address used is always named), and the CA's view decides.
 */
import { lookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { describeError } from '../lib/errors.js';
import { nameOfId } from '../lib/users.js';
import { hostForUrl, shownText, unfollowable } from './redirects.js';
import type { Challenge, SolverContext, WebUser } from './types.js';

const TIMEOUT_MS = 5_000;
const MAX_REDIRECTS = 3;
const BODY_LIMIT = 4096;
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

/** Who answers the challenge on port 80 in each http-01 mode, for advice in the operator's terms. */
export type HttpAnswerer =
  /** The agent's own listener (challenge.listen, split): on port 80, or behind a proxy that forwards to it. */
  | { mode: 'standalone' | 'proxy'; host: string; port: number }
  /** The site's web server, from challenge.webroot; tokenPath is the file holding this token, to explain a 403. */
  | { mode: 'webroot'; webroot: string; tokenPath?: string };

export type SelfCheckOptions = HttpAnswerer & Pick<SolverContext, 'selfCheckPort' | 'names' | 'webServerUser'>;

interface Answer {
  status?: number;
  location?: string;
  body?: string;
  /** The request failed: the errno code (ECONNREFUSED, ETIMEDOUT, …) or a message. */
  error?: string;
}

/** Undefined when the token comes back right; otherwise one line for the operator. */
export async function selfCheckHttp01(challenge: Challenge, opts: SelfCheckOptions): Promise<string | undefined> {
  const name = challenge.identifier.value;
  const port = opts.selfCheckPort;
  const shown = `http://${hostForUrl(name)}${port === 80 ? '' : `:${port}`}/.well-known/acme-challenge/<token>`;
  let addresses: string[];
  try {
    addresses = isIP(name) ? [name] : (await lookup(name, { all: true })).map((a) => a.address);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? describeError(err);
    return (
      `self-check: ${name} does not resolve on this container (${code}); the CA must resolve it to this ` +
      'container: add it to DNS or /etc/hosts'
    );
  }
  const { first, address, tried } = await fetchFirst(challenge, addresses, port);
  const where = `${shown} (fetched from ${tried.join(', then ')})`;
  if (isRight(first, challenge)) return undefined;
  const redirect = await followRedirects(challenge, first, opts);
  if (redirect === 'right') return undefined;
  if (redirect) {
    return (
      `self-check: ${where} redirects to ${redirect}; ` +
      'the challenge must be answered on port 80: put an exception for /.well-known/acme-challenge/ ' +
      `before the redirect in the port-80 server for ${name} (${snippetAdvice(opts)})`
    );
  }
  return `self-check: ${where} ${describeAnswer(first)}: ${await advice(first, name, address, opts)}`;
}

/**
 * Like the CA's resolver and dialer: the addresses in order, the next one
 * when a connection cannot be made. The first answer, from which address,
 * and every address tried.
 */
async function fetchFirst(
  challenge: Challenge,
  addresses: string[],
  port: number,
): Promise<{ first: Answer; address: string; tried: string[] }> {
  const name = challenge.identifier.value;
  let address = addresses[0] as string;
  let first: Answer = { error: 'ENOTFOUND' };
  const tried: string[] = [];
  for (const candidate of addresses) {
    address = candidate;
    tried.push(`${hostForUrl(candidate)}:${port}`);
    first = await get({
      address,
      port,
      host: port === 80 ? hostForUrl(name) : `${hostForUrl(name)}:${port}`,
      path: `/.well-known/acme-challenge/${challenge.token}`,
      https: false,
    });
    if (!first.error || !CONNECT_ERRORS.has(first.error)) break;
  }
  return { first, address, tried };
}

const redirected = (a: Answer) => Boolean(a.status && a.status >= 300 && a.status < 400 && a.location);

/**
 * A CA follows redirects (to http or https, on 80 or 443); so do we, to
 * judge only what it will finally see, and only to names of this
 * certificate: this check runs as root inside the site's network, where a
 * redirect could otherwise point it at any internal service. 'right' when
 * the token came back at the end, undefined when `first` is no redirect,
 * otherwise the hops and what the last one did.
 */
async function followRedirects(
  challenge: Challenge,
  first: Answer,
  opts: SelfCheckOptions,
): Promise<string | 'right' | undefined> {
  const name = challenge.identifier.value;
  const port = opts.selfCheckPort;
  let answer = first;
  let base = `http://${hostForUrl(name)}:${port}/.well-known/acme-challenge/${challenge.token}`;
  const hops: string[] = [];
  let refused: string | undefined;
  for (let hop = 0; redirected(answer) && answer.location && hop < MAX_REDIRECTS; hop++) {
    const target = resolveLocation(answer.location, base);
    hops.push(shownText((target?.href ?? answer.location).replaceAll(challenge.token, '<token>')));
    refused = target ? unfollowable(target, opts.names ?? [name], port) : 'not an http or https URL';
    if (refused || !target) break;
    base = target.href;
    answer = await getUrl(target);
    if (isRight(answer, challenge)) return 'right';
  }
  if (!hops.length) return undefined;
  const which = refused
    ? ` (not followed: ${refused})`
    : redirected(answer)
      ? `, which redirects further (the self-check stops after ${MAX_REDIRECTS})`
      : `, which ${describeAnswer(answer)}`;
  return `${hops.join(' -> ')}${which}`;
}

/** challenge.listen as the advice shows it (webroot mode has no listener, and its advice never names one). */
function listenOf(opts: HttpAnswerer): string {
  return opts.mode === 'webroot' ? '' : `${hostForUrl(opts.host)}:${opts.port}`;
}

function webrootOf(opts: HttpAnswerer): string {
  return opts.mode === 'webroot' ? opts.webroot : '';
}

function isRight(a: Answer, challenge: Challenge): boolean {
  return a.status === 200 && a.body?.trim() === challenge.keyAuthorization;
}

function describeAnswer(a: Answer): string {
  if (a.error === 'ECONNREFUSED') return 'is refused: nothing listens there';
  if (a.error === 'ETIMEDOUT') return `gets no answer within ${TIMEOUT_MS / 1000} s`;
  if (a.error) return `fails (${shownText(a.error, 80)})`;
  // Never the body itself: whatever answered may be an internal service, and this line ends up in `status`.
  if (a.status === 200) return `answers 200 with other content (${Buffer.byteLength(a.body ?? '')} bytes)`;
  if (a.status && a.status >= 300 && a.status < 400) return `answers ${a.status} without a usable Location`;
  return `answers ${a.status} ${STATUS_TEXT[a.status ?? 0] ?? ''}`.trimEnd();
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

function snippetAdvice(opts: SelfCheckOptions): string {
  if (opts.mode === 'webroot') {
    return `serve ${opts.webroot} as its document root, or include snippets/cert-agent-challenge-webroot.conf`;
  }
  if (opts.mode === 'proxy') {
    return `forward the path to ${listenOf(opts)}, e.g. include snippets/cert-agent-challenge-proxy.conf`;
  }
  return 'or let the agent own port 80 (challenge.mode standalone)';
}

/** What to change, for the first answer (no redirect involved). */
async function advice(a: Answer, name: string, address: string, opts: SelfCheckOptions): Promise<string> {
  return a.error ? adviceForError(a.error, name, address, opts) : adviceForStatus(a, name, address, opts);
}

/** The fetch got no HTTP answer: what to change. */
function adviceForError(error: string, name: string, address: string, opts: SelfCheckOptions): string {
  const at = `${hostForUrl(address)}:${opts.selfCheckPort}`;
  const listen = listenOf(opts);
  if (error === 'ECONNREFUSED') {
    if (opts.mode === 'standalone') {
      return (
        `challenge.listen ${listen} does not cover ${at}; listen on 0.0.0.0:80 (or [::]:80), ` +
        `or make ${name} resolve to the address the agent listens on`
      );
    }
    if (opts.mode === 'proxy') {
      return (
        `start the proxy and have it listen on port 80 for ${name}, ` +
        `forwarding /.well-known/acme-challenge/ to ${listen}`
      );
    }
    return `start the web server that serves ${webrootOf(opts)} and have it listen on port 80 for ${name}`;
  }
  if (error === 'ETIMEDOUT' || error === 'EHOSTUNREACH' || error === 'ENETUNREACH') {
    return (
      `${address} does not answer on port ${opts.selfCheckPort}: a firewall drops it, ` +
      `or ${name} resolves to an address that is not this container's`
    );
  }
  return `check that a web server answers on ${at} for ${name}`;
}

/** An HTTP answer other than the token: what to change. */
async function adviceForStatus(a: Answer, name: string, address: string, opts: SelfCheckOptions): Promise<string> {
  const at = `${hostForUrl(address)}:${opts.selfCheckPort}`;
  const listen = listenOf(opts);
  if (a.status === 404) {
    if (opts.mode === 'webroot') {
      return (
        `the port-80 server answering ${name} does not serve ${webrootOf(opts)}/.well-known/acme-challenge/: ` +
        'it lacks the location (its document root is another directory, or it has no such server): ' +
        `${snippetAdvice(opts)} in the port-80 server for ${name}`
      );
    }
    if (opts.mode === 'proxy') {
      return (
        `the port-80 server for ${name} lacks the location that forwards /.well-known/acme-challenge/ ` +
        `to ${listen}: include snippets/cert-agent-challenge-proxy.conf in it`
      );
    }
    return (
      `another server answered on ${at}, not the agent: ` + 'stop it, or use challenge.mode webroot or proxy through it'
    );
  }
  if (a.status === 403) {
    if (opts.mode === 'webroot' && opts.tokenPath)
      return explainForbidden(opts.tokenPath, await opts.webServerUser?.());
    return `the server for ${name} on port 80 refuses the path: allow /.well-known/acme-challenge/ there`;
  }
  if ((a.status === 502 || a.status === 504) && opts.mode === 'webroot') {
    return `a proxy in front of the port-80 server for ${name} could not reach the server that serves ${opts.webroot}`;
  }
  if (a.status === 502 || a.status === 504) {
    return (
      `the proxy answered but could not reach the agent on ${listen}: ` +
      'point its /.well-known/acme-challenge/ route at challenge.listen'
    );
  }
  if (a.status === 200) {
    return (
      `something other than the agent's answer is served at that path on port 80 for ${name}: ` + snippetAdvice(opts)
    );
  }
  return `the server for ${name} on port 80 must answer the path with the token: ${snippetAdvice(opts)}`;
}

// ---- who cannot read what (webroot, 403) ------------------------------------

/** The first component of the token's path the web server's user cannot traverse or read. */
export function explainForbidden(tokenPath: string, user: WebUser | undefined): string {
  const chain: string[] = [];
  for (let p = tokenPath; ; p = dirname(p)) {
    chain.unshift(p);
    if (dirname(p) === p) break;
  }
  for (const p of chain) {
    let st;
    try {
      st = statSync(p);
    } catch {
      continue;
    }
    const isFile = p === tokenPath;
    const need = isFile ? 4 : 1; // read the file, search (x) each directory
    const shift = !user ? 0 : user.uid === st.uid ? 6 : user.gids.includes(st.gid) ? 3 : 0;
    const bits = (st.mode >> shift) & 7;
    if (user?.uid === 0 || bits & need) continue;
    const who = user ? `${user.name} (${user.source})` : "the web server's user (not known here; checked as others)";
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
    const fix = isFile ? `chmod o+r ${p}` : `chmod o+x ${p} (0755 is usual)`;
    const owner = `${nameOfId(st.uid, 'user')}:${nameOfId(st.gid, 'group')}`;
    return `${who} cannot ${isFile ? 'read' : 'enter'} ${p} (mode ${mode}, owner ${owner}): ${fix}`;
  }
  return (
    `the web server refuses ${tokenPath} although the modes along the path let ${user?.name ?? 'others'} ` +
    'read it: check its access rules (deny, auth) for /.well-known/acme-challenge/'
  );
}

// ---- one GET, as the CA does it ---------------------------------------------

function resolveLocation(location: string, base: string): URL | undefined {
  try {
    const url = new URL(location, base);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined;
  } catch {
    return undefined;
  }
}

function getUrl(url: URL): Promise<Answer> {
  const https = url.protocol === 'https:';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port) || (https ? 443 : 80);
  return get({ address: host, port, host: url.host, path: url.pathname + url.search, https });
}

function get(o: { address: string; port: number; host: string; path: string; https: boolean }): Promise<Answer> {
  return new Promise((resolve) => {
    const onResponse = (res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        if (body.length < BODY_LIMIT) body += c;
      });
      const location = res.headers.location;
      const more = typeof location === 'string' ? { location } : {};
      res.on('end', () => resolve({ status: res.statusCode, body, ...more }));
      res.on('error', (err) => resolve({ error: describeError(err) }));
    };
    const headers = { host: o.host, 'user-agent': 'cert-agent self-check', connection: 'close' };
    const common = {
      host: o.address,
      port: o.port,
      path: o.path,
      method: 'GET',
      headers,
      timeout: TIMEOUT_MS,
      agent: false as const,
    };
    // Like the CA: the https leg of a redirect is not verified (http-01 proves control of port 80, not a certificate);
    // the empty `ca` spares Node 20 loading its own roots for nothing.
    const servername = isIP(o.host) ? undefined : o.host.replace(/:\d+$/, '');
    const req = o.https
      ? httpsRequest({ ...common, servername, ca: [], rejectUnauthorized: false }, onResponse)
      : httpRequest(common, onResponse);
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? describeError(err) }));
    req.end();
  });
}
