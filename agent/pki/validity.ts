/**
 * The one rule for "is this certificate valid at this moment", shared by the
 * chain check and the assessment of a set (which used to disagree at the
 * exact second of notAfter). RFC 5280 4.1.2.5: the validity period runs from
 * notBefore through notAfter, both inclusive. OpenSSL 3.0 already counts the
 * second of notAfter itself as expired; one second later every verifier
 * agrees, and renewal happens long before either.
 *
 * The dates come from the DER, not from Node's validFrom/validTo: those are
 * OpenSSL's printout, "Bad time value" when it cannot print a date, and an
 * Invalid Date compares false with everything (valid forever, never due).
 */
import type { X509Certificate } from 'node:crypto';
import { certificateValidity } from './der-read.js';

interface Validity {
  notBefore: Date;
  notAfter: Date;
  /** Why the window cannot be read; then both dates are the epoch: never valid, due now, printable. */
  unreadable?: string;
}

/** The validity window as dates; always real dates. */
/** Read once per certificate object: the decision, the schedule and the report each ask. */
const VALIDITY = new WeakMap<X509Certificate, Validity>();

export function validityOf(cert: X509Certificate): Validity {
  let v = VALIDITY.get(cert);
  if (!v) {
    try {
      v = certificateValidity(cert.raw);
    } catch (err) {
      const unreadable = err instanceof Error ? err.message : String(err);
      v = { notBefore: new Date(0), notAfter: new Date(0), unreadable };
    }
    VALIDITY.set(cert, v);
  }
  // A copy: the caller may not change what the next one reads.
  return { ...v, notBefore: new Date(v.notBefore), notAfter: new Date(v.notAfter) };
}

export type Window = 'not-yet-valid' | 'expired' | 'unreadable' | undefined;

/** Where `now` falls relative to the certificate's validity window; undefined inside it. */
export function windowAt(cert: X509Certificate, now: Date): Window {
  const { notBefore, notAfter, unreadable } = validityOf(cert);
  if (unreadable !== undefined) return 'unreadable';
  if (now.getTime() < notBefore.getTime()) return 'not-yet-valid';
  if (now.getTime() > notAfter.getTime()) return 'expired';
  return undefined;
}

/**
 * The window problem without naming the certificate, e.g. "expired at …".
 * A fresh certificate that is "not yet valid" or "expired" usually means this
 * machine's clock is off, not the CA: it says which clock the verdict used.
 */
export function windowProblem(cert: X509Certificate, now: Date): string | undefined {
  const { notBefore, notAfter, unreadable } = validityOf(cert);
  const clock = `this machine's clock says ${now.toISOString()}`;
  switch (windowAt(cert, now)) {
    case 'not-yet-valid':
      return `not valid before ${notBefore.toISOString()} (${clock}; check it)`;
    case 'expired':
      return `expired at ${notAfter.toISOString()} (${clock})`;
    case 'unreadable':
      return `unusable: its validity cannot be read (${unreadable})`;
    default:
      return undefined;
  }
}
