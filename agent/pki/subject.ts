/**
 * How a certificate is named in every message: its subject on one line, or
 * its subjectAltName when the subject is empty.
 */
import type { X509Certificate } from 'node:crypto';

/**
 * The subject on one line. A certificate whose first name is too long for a
 * CN has an empty subject (Node then gives undefined): it is named by its
 * subjectAltName instead.
 */
export function subjectText(cert: X509Certificate): string {
  const subject = (cert.subject ?? '').replace(/\n/g, ', ');
  return subject || `(no subject; ${cert.subjectAltName ?? 'no names'})`;
}
