/** The challenge modes: one registry, checked by the compiler against the config's list of modes. */
import type { ChallengeMode } from '../config/config.js';
import { proxySolver, standaloneSolver } from './http-responder.js';
import { dnsSolver } from './dns.js';
import { webrootSolver } from './webroot.js';
import type { ChallengeSettings, Solver, SolverContext, SolverKind } from './types.js';

export const solverKinds = {
  standalone: standaloneSolver,
  proxy: proxySolver,
  webroot: webrootSolver,
  dns: dnsSolver,
} satisfies Record<ChallengeMode, SolverKind>;

/**
 * CAs validate http-01 on port 80. A test CA that validates on another port
 * (step-ca --acme-http-port) names it in CERT_AGENT_SELF_CHECK_PORT so the
 * self-check fetches where that CA does; nothing else reads it.
 */
function selfCheckPortFromEnv(): number | undefined {
  const port = Number(process.env.CERT_AGENT_SELF_CHECK_PORT);
  return Number.isInteger(port) && port > 0 && port < 65536 ? port : undefined;
}

export interface SolverExtras {
  /** Port the self-check fetches on; 80 (the CA's) unless a test moves the CA's. */
  selfCheckPort?: number;
  /** Who the consumer's web server runs as (the reload target's knowledge), asked only to explain a refusal. */
  webServerUser?: SolverContext['webServerUser'];
  /** certificate.domains: where the self-check may follow a redirect. */
  names: string[];
  certificate: string;
  stateDir: string;
  commandTimeoutSeconds: number;
  log?: SolverContext['log'];
}

/** The context every solver gets, from what the caller knows. */
export function solverContext(extras: SolverExtras): SolverContext {
  return {
    selfCheckPort: extras.selfCheckPort ?? selfCheckPortFromEnv() ?? 80,
    names: extras.names,
    certificate: extras.certificate,
    stateDir: extras.stateDir,
    commandTimeoutSeconds: extras.commandTimeoutSeconds,
    ...(extras.log ? { log: extras.log } : {}),
    ...(extras.webServerUser ? { webServerUser: extras.webServerUser } : {}),
  };
}

export function openSolver(settings: ChallengeSettings, extras: SolverExtras): Promise<Solver> {
  return solverKinds[settings.mode].open(settings, solverContext(extras));
}

export type { Challenge, ChallengeSettings, Solver, SolverKind } from './types.js';
