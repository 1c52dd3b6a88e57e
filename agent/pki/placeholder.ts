/**
 * The stand-in certificate for a first start while the CA is unreachable:
 * self-signed, for the configured names, with its own key, valid
 * for a short time and marked in its subject and by the PLACEHOLDER file in
 * its set, so no one mistakes it for the real thing. It exists only so the
 * proxy can start; the daemon replaces it as soon as the CA answers.
 */
import { createSelfSigned } from './der.js';
import { generateKeyPem } from './keys.js';

/** Long enough to cover a CA outage at boot, short enough to never pass for a real certificate. */
export const PLACEHOLDER_LIFETIME_MS = 24 * 60 * 60_000;

export async function makePlaceholder(domains: string[], now: Date): Promise<{ keyPem: string; certPem: string }> {
  const keyPem = await generateKeyPem('ec-p256');
  const certPem = createSelfSigned({
    keyPem,
    names: domains,
    subject: [
      ['CN', 'cert-agent placeholder (CA not reached yet)'],
      ['O', 'cert-agent placeholder'],
    ],
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + PLACEHOLDER_LIFETIME_MS),
  });
  return { keyPem, certPem };
}
