/**
 * step-ca's own renewal API for the in-process fake CA (fake-acme.ts):
 * `POST /1.0/rekey` (a CSR for a new key in `{"csr": PEM}`) and
 * `POST /1.0/renew` (no body, the same key), over mutual TLS. The default
 * answers are step-ca 0.30.2's (see stepca-config.ts for what was read and
 * checked): 201 with `{crt, ca, certChain, tlsOptions}`, the new certificate
 * carrying the client certificate's names and the CSR's key, serverAuth and
 * clientAuth; errors as `{"status": N, "message": "…"}`.
 *
 * One difference the fake cannot avoid: step-ca (Go) ends the TLS handshake
 * with an alert when the client certificate does not verify for clientAuth
 * (expired, another CA, no clientAuth); Node's TLS server cannot send that
 * alert for a certificate it was given, so the fake answers 401 then;
 * startAlertingApi() below gives a real alert, from openssl.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { makeCa, type TestCa } from '../helpers/certs.js';
import { killOnExit, killedWithParent } from './children.js';
import { freePort } from './stepca.js';

/** The client certificate of the TLS connection, as the handler sees it. */
export interface Peer {
  /** Leaf first, then what the client sent or OpenSSL found above it. */
  chain: x509.X509Certificate[];
  /** OpenSSL's verdict against the fake's CA (its root and intermediate), for clientAuth use. */
  authorized: boolean;
  authorizationError?: string;
}

export interface ApiReply {
  status: number;
  body: unknown;
}

const MESSAGES: Record<number, string> = {
  400: 'The request could not be completed',
  401: 'The request lacked necessary authorization to be completed. Please see the certificate authority logs for more info.',
  403: 'The request was forbidden by the certificate authority. Please see the certificate authority logs for more info.',
  404: 'The requested resource could not be found. Please see the certificate authority logs for more info.',
  500: 'The certificate authority encountered an Internal Server Error. Please see the certificate authority logs for more info.',
};

/** An error as step-ca renders it (errs/error.go): its status and message, the message step-ca's default for the status unless given. */
export function stepCaError(status: number, message?: string): ApiReply {
  return { status, body: { status, message: message ?? MESSAGES[status] ?? `HTTP ${status}` } };
}

/** The names of a certificate's subjectAltName, as values (DNS names and IPs alike). */
export function namesOf(cert: x509.X509Certificate): string[] {
  const ext = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return (ext?.names.items ?? []).map((n) => n.value);
}

/** step-ca's success answer for a chain of PEM certificates, leaf first. */
export function signResponse(chain: string[]): ApiReply {
  return {
    status: 201,
    body: {
      crt: chain[0],
      ca: chain[1] ?? '',
      certChain: chain,
      tlsOptions: { cipherSuites: [], minVersion: 1.2, maxVersion: 1.3, renegotiation: false },
    },
  };
}

/**
 * What step-ca answers to `route` from a client with `peer` and `body`:
 * the checks of api/rekey.go and authorizeRenew in their order, then a new
 * certificate from `ca` for the same names.
 */
export async function defaultRenewal(
  ca: TestCa,
  route: 'rekey' | 'renew',
  peer: Peer | undefined,
  body: string,
): Promise<ApiReply> {
  const leaf = peer?.chain[0];
  if (!peer || !leaf) return stepCaError(400, 'The request could not be completed: missing client certificate.');
  if (!peer.authorized) return stepCaError(401);
  let publicKey: CryptoKey;
  if (route === 'rekey') {
    let csr: x509.Pkcs10CertificateRequest;
    try {
      const { csr: pem } = JSON.parse(body) as { csr?: unknown };
      if (typeof pem !== 'string') return stepCaError(400, 'The request could not be completed: missing csr.');
      csr = new x509.Pkcs10CertificateRequest(pem);
    } catch {
      return stepCaError(400, 'The request could not be completed: error decoding json.');
    }
    if (!(await csr.verify())) return stepCaError(400, 'The request could not be completed: invalid csr.');
    publicKey = await csr.publicKey.export();
  } else {
    publicKey = await leaf.publicKey.export();
  }
  const issued = await ca.leaf({ domains: namesOf(leaf), publicKey, usages: 'server+client' });
  return signResponse([issued.pem, ca.intermediate.pem]);
}

/**
 * A TLS server that refuses any client certificate with a real TLS alert,
 * the way step-ca's Go server refuses one it cannot verify for clientAuth:
 * `openssl s_server` asking for a certificate (not requiring one) and
 * aborting the handshake when the one sent does not verify (-verify_return_error,
 * against a root no client chains to: alert `unknown_ca`). Its own
 * certificate comes from `ca`, so the pinned root still verifies the server.
 * Point the agent's `ca.url` here and its `ca.directory` at the fake.
 */
export async function startAlertingApi(ca: TestCa): Promise<{ url: string; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'cert-agent-alert-'));
  const server = await ca.leaf({ domains: ['127.0.0.1'] });
  const unrelated = await makeCa('Unrelated client CA');
  writeFileSync(join(dir, 'cert.pem'), server.pem);
  writeFileSync(join(dir, 'key.pem'), server.keyPem);
  writeFileSync(join(dir, 'chain.pem'), ca.intermediate.pem);
  writeFileSync(join(dir, 'clients.pem'), unrelated.root.pem);
  const port = await freePort();
  const args = ['s_server', '-quiet', '-www', '-accept', `127.0.0.1:${port}`, '-cert', 'cert.pem', '-key', 'key.pem'];
  args.push('-cert_chain', 'chain.pem', '-verify', '1', '-verify_return_error', '-CAfile', 'clients.pem');
  const [cmd, ...rest] = killedWithParent(['openssl', ...args]);
  const child = spawn(cmd!, rest, { cwd: dir, stdio: 'ignore' });
  killOnExit(child);
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; !(await listening(port)); i++) {
    if (i >= 100 || child.exitCode !== null) {
      await close();
      throw new Error('openssl s_server did not start');
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url: `https://127.0.0.1:${port}`, close };
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}
