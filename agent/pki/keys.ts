/** Private keys, generated locally; the certificate key never leaves the container. */
import { generateKeyPair } from 'node:crypto';

/** The key types the agent generates (`certificate.keyType`). */
export const KEY_TYPES = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

/** PKCS#8 PEM for the given key type (generation runs off the event loop; RSA 4096 takes a while). */
export function generateKeyPem(type: KeyType): Promise<string> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, _pub: string, priv: string) => (err ? reject(err) : resolve(priv));
    const encoding = {
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    } as const;
    if (type === 'ec-p256' || type === 'ec-p384') {
      generateKeyPair('ec', { namedCurve: type === 'ec-p256' ? 'P-256' : 'P-384', ...encoding }, done);
    } else {
      generateKeyPair('rsa', { modulusLength: Number(type.slice(4)), ...encoding }, done);
    }
  });
}
