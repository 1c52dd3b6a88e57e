/**
 * HTTPS connections to the CA that trust the pinned roots only, without the
 * start-up cost of handing those roots to OpenSSL.
 *
 * On Node 20, the first `ca` given to a TLS context makes Node parse every
 * root of its built-in Mozilla bundle (about 140 certificates) merely to
 * compare two store pointers, although none of them is then trusted: 40–50
 * ms of CPU in every process that opens a connection, a fifth of a one-shot
 * renewal (Node 22 and 24 no longer do this). This agent therefore connects
 * with an empty trust store and, before the connection is handed to HTTP,
 * holds the server's chain to the pinned roots itself, with the same rules
 * it applies to every chain it installs (`verifyChain`: signatures, validity,
 * CA flags, pathLen, name constraints, key usages, no unknown critical
 * extension) and Node's own host name check.
 *
 * It only ever accepts: a chain it does not accept is not refused by it but
 * handed to OpenSSL, on a new connection with the pinned roots as the only
 * anchors, exactly as before, so every refusal (and its error code) is
 * OpenSSL's, and a chain OpenSSL accepts but this check does not still works.
 * Nothing is trusted that does not lead to a pinned root either way. TLS
 * sessions are not cached, so a connection is never resumed from one that
 * was not verified. Requests made while a first handshake is still being
 * checked each open a connection of their own (each checked): `maxSockets`
 * counts a connection once HTTP has it.
 */
import { X509Certificate } from 'node:crypto';
import { Agent, type AgentOptions, type RequestOptions } from 'node:https';
import type { Duplex } from 'node:stream';
import {
  checkServerIdentity,
  connect,
  type ConnectionOptions,
  type DetailedPeerCertificate,
  type TLSSocket,
} from 'node:tls';
import { signatureAlgorithm } from '../pki/der-read.js';
import { verifyChain } from '../pki/x509.js';

/** How the connections of one agent were verified; read by tests and the benchmark notes. */
export interface VerificationCounts {
  /** Chains this agent held to a pinned root itself. */
  pinned: number;
  /** Chains handed to OpenSSL (this check did not accept them). */
  openssl: number;
}

export class PinnedAgent extends Agent {
  readonly verified: VerificationCounts = { pinned: 0, openssl: 0 };
  private roots: X509Certificate[] | undefined;

  constructor(
    private readonly rootsPem: string[],
    opts: Omit<AgentOptions, 'ca' | 'rejectUnauthorized' | 'maxCachedSessions'> = {},
  ) {
    super({ ...opts, ca: rootsPem, rejectUnauthorized: true, maxCachedSessions: 0 });
  }

  override createConnection(
    options: RequestOptions,
    done?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    // The options carry this agent's `ca` and rejectUnauthorized: OpenSSL's way, used as the fallback.
    const openssl = () => {
      this.verified.openssl++;
      return connect(options as ConnectionOptions);
    };
    if (!done || this.rootsPem.length === 0) return openssl();
    const socket = connect({ ...(options as ConnectionOptions), ca: [], rejectUnauthorized: false });
    const settle = (err: Error | null, stream: Duplex) => {
      socket.off('secureConnect', onSecure).off('error', onError).off('timeout', onTimeout);
      done(err, stream);
    };
    const onError = (err: Error) => settle(err, socket);
    // Until the chain is checked the socket is not HTTP's, so its idle timeout is handled here.
    const onTimeout = () =>
      socket.destroy(Object.assign(new Error('no TLS handshake within the time limit'), { name: 'TimeoutError' }));
    const onSecure = () => {
      let accepted: boolean;
      try {
        accepted = this.accepts(socket, String(options.servername || options.host || 'localhost'));
      } catch {
        accepted = false; // anything unexpected in the chain: OpenSSL decides
      }
      if (accepted) {
        this.verified.pinned++;
        settle(null, socket);
        return;
      }
      socket.on('error', () => {}).destroy();
      settle(null, openssl());
    };
    socket.once('secureConnect', onSecure).once('error', onError).once('timeout', onTimeout);
    return undefined;
  }

  /**
   * The server's chain leads to a pinned root under verifyChain's rules, and
   * names `host`. Only what this decides exactly as OpenSSL would: the leaf
   * must name hosts in subjectAltName (a name only in the CN is matched and
   * constrained by rules of OpenSSL's own), and every key and signature must
   * be one that OpenSSL accepts at its default security levels.
   */
  private accepts(socket: TLSSocket, host: string): boolean {
    const peer = socket.getPeerCertificate(true);
    const sent: Buffer[] = [];
    for (let c: DetailedPeerCertificate | undefined = peer; c?.raw && sent.length < 10; c = c.issuerCertificate) {
      if (sent.some((d) => d.equals(c!.raw))) break; // a self-signed root points at itself
      sent.push(c.raw);
    }
    const certs = sent.map((der) => new X509Certificate(der));
    const [leaf, ...rest] = certs;
    if (!leaf || !/(^|, )DNS:/.test(leaf.subjectAltName ?? '')) return false;
    this.roots ??= this.rootsPem.map((pem) => new X509Certificate(pem));
    const verdict = verifyChain(leaf, rest, this.roots, new Date());
    return (
      'root' in verdict && [...certs, verdict.root].every(strongEnough) && checkServerIdentity(host, peer) === undefined
    );
  }
}

/** ECDSA P-256/P-384 and ECDSA-with-SHA-2 signatures; RSA from 2048 bits with PKCS#1 SHA-2 signatures. */
const STRONG_SIGNATURES = new Set([
  '1.2.840.10045.4.3.2',
  '1.2.840.10045.4.3.3',
  '1.2.840.10045.4.3.4',
  '1.2.840.113549.1.1.11',
  '1.2.840.113549.1.1.12',
  '1.2.840.113549.1.1.13',
]);

function strongEnough(cert: X509Certificate): boolean {
  const key = cert.publicKey;
  const details = key.asymmetricKeyDetails ?? {};
  const keyOk =
    key.asymmetricKeyType === 'ec'
      ? details.namedCurve === 'prime256v1' || details.namedCurve === 'secp384r1'
      : key.asymmetricKeyType === 'rsa' && (details.modulusLength ?? 0) >= 2048;
  return keyOk && STRONG_SIGNATURES.has(signatureAlgorithm(cert.raw));
}
