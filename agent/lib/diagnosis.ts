/**
 * One finding of `doctor`, in the shape every contributor returns: the
 * report's own checks and the adapters' (a reload target's view of its
 * consumer, a challenge solver's preflight). It lives this low so that the
 * adapters can speak it without knowing the report that prints it.
 */

/** WARN: works now, but leaves little room (it does not change the exit code). */
export type DiagnosisStatus = 'ok' | 'PROBLEM' | 'FIXED' | 'WARN' | 'skip';

export interface Diagnosis {
  status: DiagnosisStatus;
  /** What was checked, the label of the line ("CA", "proxy config"). */
  reason: string;
  /** One line: what was found and, when it is wrong, what to do. */
  message: string;
}

export const diagnosis = (status: DiagnosisStatus, reason: string, message: string): Diagnosis => ({
  status,
  reason,
  message,
});
