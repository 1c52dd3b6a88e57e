import 'reflect-metadata';
/**
 * Test PKI made in-process with @peculiar/x509: a root, an intermediate and
 * leaves with any names and validity window, so unit and status tests can
 * put certificates of every age and shape on disk in milliseconds. Keys are
 * ECDSA P-256, the agent's default.
 */
import { webcrypto } from 'node:crypto';
import { chmodSync, mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { fingerprintOfDer } from '../../agent/pki/fingerprint.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const HOUR = 3_600_000;

export interface KeyPair {
  keys: CryptoKeyPair;
  pem: string;
}

export interface Issued {
  cert: x509.X509Certificate;
  pem: string;
  key: KeyPair;
  serial: string;
}

export interface TestCa {
  root: Issued;
  intermediate: Issued;
  /** Lowercase hex SHA-256 over the root's DER, what the agent pins. */
  fingerprint: string;
  leaf(opts: LeafOptions): Promise<Leaf>;
}

export interface LeafOptions {
  domains: string[];
  notBefore?: Date;
  notAfter?: Date;
  /** Reuse a key (e.g. to build a cert that does not match another key). */
  key?: KeyPair;
  /** Certify this public key instead (a CSR's); the leaf's keyPem is then not its key. */
  publicKey?: CryptoKey;
  /** extendedKeyUsage: serverAuth alone (default), with clientAuth (step-ca's default leaf), or none at all. */
  usages?: 'server' | 'server+client' | 'none';
}

export interface Leaf extends Issued {
  keyPem: string;
  /** Leaf followed by the intermediate, as the CA sends it. */
  fullchainPem: string;
  rootPem: string;
}

export async function newKey(): Promise<KeyPair> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return { keys, pem: pemBlock('PRIVATE KEY', der) };
}

function pemBlock(label: string, der: Buffer): string {
  const b64 = der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = ((bytes[0] as number) & 0x7f) | 0x10;
  return Buffer.from(bytes).toString('hex');
}

function issued(cert: x509.X509Certificate, key: KeyPair): Issued {
  return { cert, pem: cert.toString('pem') + '\n', key, serial: cert.serialNumber.toLowerCase() };
}

async function caCert(
  name: string,
  key: KeyPair,
  signer: Issued | undefined,
  notBefore: Date,
  notAfter: Date,
): Promise<Issued> {
  const extensions = [
    new x509.BasicConstraintsExtension(true, signer ? 0 : undefined, true),
    new x509.KeyUsagesExtension(
      x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
      true,
    ),
    await x509.SubjectKeyIdentifierExtension.create(key.keys.publicKey),
  ];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${name}`,
    issuer: signer ? signer.cert.subject : `CN=${name}`,
    notBefore,
    notAfter,
    publicKey: key.keys.publicKey,
    signingKey: (signer?.key ?? key).keys.privateKey,
    signingAlgorithm: ALG,
    extensions,
  });
  return issued(cert, key);
}

/** A root and an intermediate, valid from a year ago for ten years. */
export async function makeCa(name = 'Test'): Promise<TestCa> {
  const from = new Date(Date.now() - 365 * 24 * HOUR);
  const to = new Date(Date.now() + 10 * 365 * 24 * HOUR);
  const root = await caCert(`${name} Root CA`, await newKey(), undefined, from, to);
  const intermediate = await caCert(`${name} Intermediate CA`, await newKey(), root, from, to);
  const fingerprint = fingerprintOfDer(new Uint8Array(root.cert.rawData));
  return {
    root,
    intermediate,
    fingerprint,
    async leaf(opts) {
      const key = opts.key ?? (await newKey());
      const notBefore = opts.notBefore ?? new Date(Date.now() - 60_000);
      const notAfter = opts.notAfter ?? new Date(notBefore.getTime() + 24 * HOUR);
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber: randomSerial(),
        subject: `CN=${opts.domains[0]}`,
        issuer: intermediate.cert.subject,
        notBefore,
        notAfter,
        publicKey: opts.publicKey ?? key.keys.publicKey,
        signingKey: intermediate.key.keys.privateKey,
        signingAlgorithm: ALG,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          ...extendedKeyUsages(opts.usages ?? 'server'),
          new x509.SubjectAlternativeNameExtension(
            opts.domains.map((d) => (isIP(d) ? { type: 'ip' as const, value: d } : { type: 'dns' as const, value: d })),
          ),
        ],
      });
      const leaf = issued(cert, key);
      return { ...leaf, keyPem: key.pem, fullchainPem: leaf.pem + intermediate.pem, rootPem: root.pem };
    },
  };
}

function extendedKeyUsages(usages: NonNullable<LeafOptions['usages']>): x509.Extension[] {
  if (usages === 'none') return [];
  const { serverAuth, clientAuth } = x509.ExtendedKeyUsage;
  return [new x509.ExtendedKeyUsageExtension(usages === 'server' ? [serverAuth] : [serverAuth, clientAuth])];
}

/** A self-signed leaf, shaped like the agent's placeholder. */
export async function selfSigned(domains: string[], notBefore: Date, notAfter: Date): Promise<Leaf> {
  const key = await newKey();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${domains[0]}, O=cert-agent placeholder`,
    notBefore,
    notAfter,
    keys: key.keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.SubjectAlternativeNameExtension(
        domains.map((d) => (isIP(d) ? { type: 'ip' as const, value: d } : { type: 'dns' as const, value: d })),
      ),
    ],
  });
  const leaf = issued(cert, key);
  return { ...leaf, keyPem: key.pem, fullchainPem: leaf.pem, rootPem: '' };
}

/**
 * Lays out a certificate directory by hand in the store's format
 * (.sets/<id>/…, `current` link, name links), without the store's checks,
 * so tests can put broken sets (wrong key, expired) on disk the way a
 * damaged installation would have them.
 */
export function writeSetByHand(
  certDir: string,
  id: string,
  files: { keyPem: string; fullchainPem: string; rootPem: string; placeholder?: boolean },
): string {
  const set = join(certDir, '.sets', id);
  mkdirSync(set, { recursive: true, mode: 0o700 });
  chmodSync(certDir, 0o700);
  writeFileSync(join(set, 'key.pem'), files.keyPem, { mode: 0o600 });
  const [leaf, ...rest] =
    files.fullchainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
  writeFileSync(join(set, 'cert.pem'), leaf ?? '', { mode: 0o644 });
  writeFileSync(join(set, 'chain.pem'), rest.join(''), { mode: 0o644 });
  writeFileSync(join(set, 'fullchain.pem'), files.fullchainPem, { mode: 0o644 });
  writeFileSync(join(set, 'ca.pem'), files.rootPem, { mode: 0o644 });
  writeFileSync(join(set, 'combined.pem'), files.keyPem.trimEnd() + '\n' + files.fullchainPem, { mode: 0o600 });
  if (files.placeholder) writeFileSync(join(set, 'PLACEHOLDER'), 'self-signed stand-in\n');
  const tmp = join(certDir, `current.${id}.tmp`);
  symlinkSync(join('.sets', id), tmp);
  renameSync(tmp, join(certDir, 'current'));
  for (const name of ['key.pem', 'cert.pem', 'chain.pem', 'fullchain.pem', 'ca.pem', 'combined.pem']) {
    try {
      symlinkSync(join('current', name), join(certDir, name));
    } catch {
      // already linked from an earlier set
    }
  }
  return set;
}
