/**
 * The contract between the ACME client and the ways of answering a
 * challenge. A solver gets the whole challenge (its type, the identifier it
 * proves, the token and the key authorization), so a solver that needs the
 * name has it, and the ACME client takes from each authorization the
 * challenge of the type the solver answers. Adding a challenge type is a new
 * solver file plus its entry in index.ts; the ACME client does not change.
 */

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
   * answered and what to change.
   */
  selfCheck?(challenge: Challenge): Promise<string | undefined>;
  /** Releases what the solver holds (a listening socket, files); called once, in `finally`, when the order is done. */
  close(): Promise<void>;
}

export interface SolverOptions {
  /** The configured challenge mode, so advice names what the operator configured. */
  mode: 'standalone' | 'proxy' | 'webroot';
  /** challenge.listen, split. */
  host: string;
  port: number;
  /** challenge.webroot: the document root the web server serves. */
  webroot: string;
  /** Port the self-check fetches tokens on: 80, as the CA does. */
  selfCheckPort: number;
  /** The certificate's names: the only hosts a self-check follows a redirect to (the name validated when absent). */
  names?: string[];
  /** The nginx the agent reloads, if any: its `user` names who must read webroot tokens. */
  nginx?: { binary: string; config?: string };
}

export type OpenSolver = (opts: SolverOptions) => Promise<Solver>;
