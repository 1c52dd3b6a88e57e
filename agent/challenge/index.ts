/** The challenge modes: one registry, checked by the compiler against the config's list of modes. */
import type { ChallengeMode } from '../config/config.js';
import { splitHostPort } from '../config/values.js';
import { openHttpResponder } from './http-responder.js';
import { openWebrootResponder } from './webroot.js';
import type { OpenSolver, Solver } from './types.js';

const solvers = {
  standalone: openHttpResponder,
  proxy: openHttpResponder,
  webroot: openWebrootResponder,
} satisfies Record<ChallengeMode, OpenSolver>;

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
  nginx?: { binary: string; config?: string };
  /** certificate.domains: where the self-check may follow a redirect. */
  names?: string[];
}

export function openSolver(
  challenge: { mode: ChallengeMode; listen: string; webroot: string },
  extras: SolverExtras = {},
): Promise<Solver> {
  const { host, port } = splitHostPort(challenge.listen);
  return solvers[challenge.mode]({
    mode: challenge.mode,
    host,
    port,
    webroot: challenge.webroot,
    selfCheckPort: extras.selfCheckPort ?? selfCheckPortFromEnv() ?? 80,
    ...(extras.nginx ? { nginx: extras.nginx } : {}),
    ...(extras.names ? { names: extras.names } : {}),
  });
}

export type { Challenge, Solver } from './types.js';
