/**
 * The contract between the ACME client and the ways of answering a
 * challenge. A solver gets the whole challenge (its type, the identifier it
 * proves, the token and the key authorization), so a solver that needs the
 * name has it, and the ACME client takes from each authorization the
 * challenge of the type the solver answers. Adding a challenge type is a new
 * solver file plus its entry in index.ts; the ACME client does not change.
 *
 * A solver reads its own settings from challenge.* (a webroot, a listener,
 * a DNS server) and gets the rest through SolverContext, which says nothing
 * of http: a dns-01 solver is a file exporting a SolverKind.
 */
import type { Config } from '../config/config.js';
import type { Diagnosis } from '../lib/diagnosis.js';
import type { Logger } from '../lib/log.js';

/** One challenge the CA asked for, whole. */
export interface Challenge {
  /** The ACME challenge type, e.g. "http-01". */
  type: string;
  identifier: { type: 'dns' | 'ip'; value: string };
  token: string;
  /**
   * `token.thumbprint-of-the-account-key`, the same for every challenge type;
   * each solver derives what it publishes from it (http-01 serves it as is).
   */
  keyAuthorization: string;
}

export interface Solver {
  /** The ACME challenge type this solver answers. */
  readonly type: string;
  /** Makes the challenge answerable; resolves once it is. */
  present(challenge: Challenge): Promise<void>;
  /** Withdraws one challenge; called in `finally` for every challenge presented, after success or failure. */
  cleanup(challenge: Challenge): Promise<void>;
  /**
   * Fetches a presented challenge the way the CA does, after the CA refused
   * it (the challenge still presented), to explain the refusal. Resolves to
   * undefined when the answer is right, otherwise to one line saying what
   * answered and what to change. A solver whose own check cannot see what
   * the CA sees may explain a right answer too (dns-01: every authoritative
   * server has the record, so the CA resolves through another server).
   */
  selfCheck?(challenge: Challenge): Promise<string | undefined>;
  /** Releases what the solver holds (a listening socket, files); called once, in `finally`, when the order is done. */
  close(): Promise<void>;
}

/** Who a web server runs as, with the groups that decide what it may read. */
export interface WebUser {
  name: string;
  uid: number;
  gids: number[];
  /** Where the name came from, for the message. */
  source: string;
}

/** challenge.* as configured: each solver reads only its own fields (its own options type below). */
export type ChallengeSettings = Config['challenge'];

/** What every solver gets besides its own settings. */
export interface SolverContext {
  /** Port the self-check fetches tokens on: 80, as the CA does (a test CA may move it). */
  selfCheckPort: number;
  /** The certificate's names: the only hosts a self-check follows a redirect to. */
  names: string[];
  /**
   * Who the consumer's web server runs as, asked only when a refusal needs
   * explaining; the reload target knows (nginx: its `user` directive).
   */
  webServerUser?: () => Promise<WebUser | undefined>;
  /** The certificate being ordered (dns-01 notes each record it publishes under it). */
  certificate: string;
  /** The state directory: where dns-01 notes the records it has not withdrawn yet. */
  stateDir: string;
  /** How long a program the solver runs may take (challenge.dns.command): reload.timeout's. */
  commandTimeoutSeconds: number;
  /** Where a solver reports what does not fail the order (a record it could not withdraw). */
  log?: Logger;
}

export type OpenSolver = (settings: ChallengeSettings, ctx: SolverContext) => Promise<Solver>;

/**
 * One challenge mode: how to open its solver, and what `doctor` needs to
 * know about it. `doctor` presents a probe token through the solver and
 * asks its self-check; the mode says what must exist first, why it could
 * not open, and where a right answer came from.
 */
export interface SolverKind {
  open: OpenSolver;
  /** Before opening: what must already exist (nothing is created for the operator's site). */
  precheck?(settings: ChallengeSettings): Diagnosis | undefined;
  /** The solver could not be opened: what that means for this mode. */
  openFailure?(settings: ChallengeSettings, err: unknown): Promise<Diagnosis>;
  /** The self-check found the probe for `name` right: the line saying where it was answered. */
  answered(settings: ChallengeSettings, name: string): string;
  /**
   * `doctor`'s checks of this mode in place of the probe, for a mode whose
   * probe would change something outside this container (dns-01 would
   * publish a record in the site's DNS): harmless checks of its own.
   */
  diagnose?(settings: ChallengeSettings, ctx: SolverContext): Promise<Diagnosis[]>;
}
