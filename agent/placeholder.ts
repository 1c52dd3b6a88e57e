/**
 * The stand-in certificate for a first start while the CA is unreachable
 * (spec §7): self-signed, for the configured names, with its own key, valid
 * for a short time and marked in its subject and by the PLACEHOLDER file in
 * its set, so no one mistakes it for the real thing. It exists only so the
 * proxy can start; the daemon replaces it as soon as the CA answers.
 */
import 'reflect-metadata';
import { webcrypto, createPrivateKey, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

/** Long enough to cover a CA outage at boot, short enough to never pass for a real certificate. */
export const PLACEHOLDER_LIFETIME_MS = 24 * 60 * 60_000;
export const PLACEHOLDER_SUBJECT = 'CN=cert-agent placeholder (CA not reached yet), O=cert-agent placeholder';

export async function makePlaceholder(domains: string[], now: Date): Promise<{ keyPem: string; certPem: string }> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: `01${randomBytes(15).toString('hex')}`,
    name: PLACEHOLDER_SUBJECT,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + PLACEHOLDER_LIFETIME_MS),
    signingAlgorithm: alg,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(domains.map((d) => (isIP(d) ? { type: 'ip' as const, value: d } : { type: 'dns' as const, value: d }))),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }).toString();
  return { keyPem, certPem: cert.toString('pem') + '\n' };
}
