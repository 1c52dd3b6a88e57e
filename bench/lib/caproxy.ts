/**
 * A counting HTTPS proxy in front of step-ca, for the fleet benchmark. It
 * terminates TLS with a certificate issued by the CA's own intermediate (so
 * agents pinned to the CA's root accept it), forwards every request
 * unchanged — Host header included, so step-ca's ACME links and JWS URLs
 * keep pointing at the proxy — and counts how many requests are in flight at
 * the CA at once. Runs as its own process (forked with IPC) so that its work
 * is visible apart from the driver's.
 *
 * IPC: sends {type:'ready', port}; answers {type:'report'} with the
 * statistics of the current phase and starts a new phase.
 */
import { readFileSync } from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';

interface ProxyConfig {
  upstreamPort: number;
  keyFile: string;
  certFile: string;
}

export interface PhaseReport {
  requests: number;
  peakInFlight: number;
  peakConnections: number;
  /** ms the CA took per request (proxy → CA → proxy, body included) */
  upstreamMs: number[];
  /** requests per path kind, e.g. new-order */
  byKind: Record<string, number>;
  byStatus: Record<string, number>;
  errors: number;
  /** requests sent again after the CA closed a pooled connection under them (keep-alive race) */
  retried: number;
  errorMessages: string[];
  /** [second since phase start, requests started in that second, peak in flight in that second] */
  perSecond: [number, number, number][];
  durationMs: number;
}

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

function kindOf(url: string): string {
  const m = /^\/acme\/[^/]+\/([a-z-]+)/.exec(url);
  if (m) return m[1]!;
  return url.split('?')[0]!.split('/')[1] || '/';
}

function main(): void {
  const cfg = JSON.parse(process.env.CAPROXY_CONFIG ?? '{}') as ProxyConfig;
  const upstream = new https.Agent({ keepAlive: true, maxSockets: Infinity });
  let phaseStart = Date.now();
  let inFlight = 0;
  let connections = 0;
  let stats = fresh();
  function fresh() {
    return {
      requests: 0,
      peakInFlight: inFlight,
      peakConnections: connections,
      upstreamMs: [] as number[],
      byKind: {} as Record<string, number>,
      byStatus: {} as Record<string, number>,
      errors: 0,
      retried: 0,
      errorMessages: [] as string[],
      seconds: new Map<number, [number, number]>(),
    };
  }
  const second = () => {
    const s = Math.floor((Date.now() - phaseStart) / 1000);
    let e = stats.seconds.get(s);
    if (!e) stats.seconds.set(s, (e = [0, inFlight]));
    return e;
  };

  const server = https.createServer(
    { key: readFileSync(cfg.keyFile), cert: readFileSync(cfg.certFile), keepAliveTimeout: 5_000 },
    (req, res) => {
      const started = Date.now();
      inFlight++;
      stats.requests++;
      stats.peakInFlight = Math.max(stats.peakInFlight, inFlight);
      const sec = second();
      sec[0]++;
      sec[1] = Math.max(sec[1], inFlight);
      const kind = kindOf(req.url ?? '/');
      stats.byKind[kind] = (stats.byKind[kind] ?? 0) + 1;
      let done = false;
      const finish = (status: string) => {
        if (done) return;
        done = true;
        inFlight--;
        stats.byStatus[status] = (stats.byStatus[status] ?? 0) + 1;
        stats.upstreamMs.push(Date.now() - started);
      };
      const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => !HOP.has(k)));
      // ACME bodies are small: buffer them, so that a request sent on a pooled
      // connection the CA had just closed can be sent again (Node's advice for
      // keep-alive races: retry when request.reusedSocket is set).
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const send = (attempt: number) => {
          const up = https.request(
            {
              host: '127.0.0.1',
              port: cfg.upstreamPort,
              method: req.method,
              path: req.url,
              headers,
              agent: upstream,
              rejectUnauthorized: false,
            },
            (upRes) => {
              const out = Object.fromEntries(Object.entries(upRes.headers).filter(([k]) => !HOP.has(k)));
              res.writeHead(upRes.statusCode ?? 502, out);
              upRes.pipe(res);
              upRes.on('end', () => finish(String(upRes.statusCode)));
              upRes.on('error', () => finish('error'));
            },
          );
          up.on('error', (err: NodeJS.ErrnoException) => {
            if (up.reusedSocket && attempt === 0 && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
              stats.retried++;
              send(1);
              return;
            }
            stats.errors++;
            if (stats.errorMessages.length < 5)
              stats.errorMessages.push(`${req.method} ${kind}: ${err.code ?? err.message}`);
            finish('error');
            if (!res.headersSent) res.writeHead(502).end();
            else res.destroy();
          });
          up.end(body);
        };
        send(0);
      });
    },
  );
  server.on('connection', (sock) => {
    connections++;
    stats.peakConnections = Math.max(stats.peakConnections, connections);
    sock.on('close', () => connections--);
  });
  server.listen(0, '127.0.0.1', () => {
    process.send?.({ type: 'ready', port: (server.address() as AddressInfo).port });
  });
  process.on('message', (msg: { type?: string }) => {
    if (msg?.type !== 'report') return;
    const report: PhaseReport = {
      requests: stats.requests,
      peakInFlight: stats.peakInFlight,
      peakConnections: stats.peakConnections,
      upstreamMs: stats.upstreamMs,
      byKind: stats.byKind,
      byStatus: stats.byStatus,
      errors: stats.errors,
      retried: stats.retried,
      errorMessages: stats.errorMessages,
      perSecond: [...stats.seconds.entries()].sort((a, b) => a[0] - b[0]).map(([s, [n, p]]) => [s, n, p]),
      durationMs: Date.now() - phaseStart,
    };
    phaseStart = Date.now();
    stats = fresh();
    process.send?.({ type: 'report', report });
  });
  process.on('disconnect', () => process.exit(0));
}

main();
