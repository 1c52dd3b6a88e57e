/**
 * Typed errors. Every failure the agent reports is one of these: it carries a
 * one-line message written for the operator (what is wrong, what is allowed or
 * what to do) and the exit code the CLI returns for it.
 *
 * Exit codes follow sysexits(3) so that systemd (RestartPreventExitStatus=78)
 * and monitoring can tell a broken configuration from a passing CA outage.
 */
export const ExitCode = {
  ok: 0,
  /** The pass ran and failed (renewal, reload); try again later. */
  failure: 1,
  /** Bad flags or arguments. */
  usage: 64,
  /** The CA presented something that does not chain to the pin. */
  trust: 65,
  /** The CA could not be reached at all. */
  unavailable: 69,
  /** A file or directory could not be written (disk full, permissions). */
  cantCreate: 73,
  /** Another agent process holds the lock; nothing was done. */
  tempFail: 75,
  /** The CA answered, but not with what ACME allows, or it would not renew over its own API. */
  protocol: 76,
  /** The configuration file is missing or invalid. */
  config: 78,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export abstract class AgentError extends Error {
  abstract readonly exitCode: ExitCodeValue;
  /** A short machine-readable kind, stable across releases (used in state.json). */
  abstract readonly kind: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class UsageError extends AgentError {
  readonly exitCode = ExitCode.usage;
  readonly kind = 'usage';
}

export class ConfigError extends AgentError {
  readonly exitCode = ExitCode.config;
  readonly kind = 'config';
  /** Dotted path of the offending field, e.g. "certificate.keyType". */
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(field ? `config: ${field}: ${message}` : `config: ${message}`);
  }
}

export class TrustError extends AgentError {
  readonly exitCode = ExitCode.trust;
  readonly kind = 'trust';
  constructor(
    message: string,
    readonly offeredFingerprints: string[] = [],
  ) {
    super(message);
  }
}

export class CaUnavailableError extends AgentError {
  readonly exitCode = ExitCode.unavailable;
  readonly kind = 'ca-unavailable';
}

export class CaProtocolError extends AgentError {
  readonly exitCode = ExitCode.protocol;
  readonly kind = 'ca-protocol';
  /** RFC 8555 problem type when the CA sent one (e.g. urn:ietf:params:acme:error:accountDoesNotExist). */
  constructor(
    message: string,
    readonly problemType?: string,
    readonly httpStatus?: number,
  ) {
    super(message);
  }
}

export class StoreError extends AgentError {
  readonly exitCode = ExitCode.cantCreate;
  readonly kind = 'store';
}

/** A path that is not the agent's (a planted link, a foreign directory): refused, never followed or touched. */
export class StoreRefusalError extends StoreError {}

/** A certificate set that failed the checks before going live. */
export class InvalidCertificateError extends AgentError {
  readonly exitCode = ExitCode.protocol;
  readonly kind = 'invalid-certificate';
}

/**
 * The CA would not renew a certificate over its own API (it refused, it is
 * not a step-ca, its answer was unusable), or the certificate cannot be
 * renewed that way at all (expired, no clientAuth, not from the pinned CA).
 */
export class RenewalRefusedError extends AgentError {
  readonly exitCode = ExitCode.protocol;
  readonly kind = 'renewal-refused';
}

export class LockedError extends AgentError {
  readonly exitCode = ExitCode.tempFail;
  readonly kind = 'locked';
}

export class ReloadError extends AgentError {
  readonly exitCode = ExitCode.failure;
  readonly kind = 'reload';
  /** The consumer refused the new files (and still runs on the old ones): restore the previous set. */
  readonly rollback: boolean;
  /** Of several certificates reloaded together, the names of those the consumer refused (undefined: all of them). */
  readonly refused: string[] | undefined;
  constructor(message: string, options?: { cause?: unknown; rollback?: boolean; refused?: string[] }) {
    super(message, options);
    this.rollback = options?.rollback ?? false;
    this.refused = options?.refused;
  }
}

/** The challenge could not be offered here (the port is taken, the webroot cannot be written). */
export class ChallengeError extends AgentError {
  readonly exitCode = ExitCode.failure;
  readonly kind = 'challenge';
}

/**
 * What another party said (a CA's message, a reason built from a
 * certificate's subject), as one line of printable ASCII at most `max`
 * characters long: safe for a terminal, the journal and state files.
 */
export function oneLine(text: string, max = 300): string {
  const line = text
    .replace(/[^\x20-\x7e]+/g, ' ')
    .replace(/ {2,}/g, ' ')
    .trim();
  return line.length > max ? `${line.slice(0, max)}...` : line;
}

/** Message of any thrown value, on one line, for logs and state. */
export function describeError(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
