/**
 * The ACME order of a pass, from opening the challenge to the issued chain,
 * with the self-check of a token the CA refused: shared by a renewal and a
 * dry run, so that the dry run tests exactly this path.
 */
import { issueCertificate, type IssueResult } from '../acme/client.js';
import type { Account } from '../store/account.js';
import { openSolver, type Challenge, type Solver } from '../challenge/index.js';
import { CaProtocolError, describeError } from '../lib/errors.js';
import { reloadTargets } from '../reload/index.js';
import type { LiveSet } from '../store/sets.js';
import { rootsPem, type TrustBundle } from '../trust/file.js';
import type { PassContext } from './context.js';

export interface OrderRequest {
  trust: TrustBundle;
  live: LiveSet | undefined;
  account: Account;
  /** The new certificate's key; a promise while it is still being generated (first needed at finalize). */
  keyPem: string | Promise<string>;
  /** Go into every ACME event logged (the dry run marks its own). */
  eventFields?: Record<string, unknown>;
}

export async function orderCertificate(
  { config, log, opts }: Pick<PassContext, 'config' | 'log' | 'opts'>,
  { trust, live, account, keyPem, eventFields = {} }: OrderRequest,
): Promise<IssueResult> {
  const solver = await openSolver(config.challenge, {
    ...(opts.selfCheckPort ? { selfCheckPort: opts.selfCheckPort } : {}),
    webServerUser: () => reloadTargets[config.reload.target].webServerUser(config),
    names: config.certificate.domains,
    certificate: config.certificate.name,
    stateDir: config.stateDir,
    commandTimeoutSeconds: config.reload.timeoutSeconds,
    log,
  });
  // What the agent's own fetch of a token the CA refused found wrong: a
  // warning, and the explanation carried by the CA's error.
  const selfCheckFindings: string[] = [];
  const { name: certificate } = config.certificate;
  try {
    const target = reloadTargets[config.reload.target];
    const warning = target.prepareChallenge ? await target.prepareChallenge({ config, live, solver, log }) : undefined;
    if (warning)
      log.warn(
        {
          event: 'challenge_route_not_ready',
          certificate,
          domains: config.certificate.domains,
          target: config.reload.target,
        },
        warning,
      );
    return await issueCertificate({
      directoryUrl: config.ca.directory,
      roots: rootsPem(trust),
      accountKeyPem: account.keyPem,
      ...(account.url ? { accountUrl: account.url } : {}),
      ...(config.account.email ? { email: config.account.email } : {}),
      domains: config.certificate.domains,
      certKeyPem: keyPem,
      solver,
      timeoutMs: config.renewal.orderTimeoutSeconds * 1000,
      onEvent: (event, fields) => log.info({ event, certificate, ...eventFields, ...fields }, event.replace(/_/g, ' ')),
      explainRefusal: async (challenge) => {
        const finding = await selfCheck(solver, challenge);
        if (!finding) return;
        selfCheckFindings.push(finding);
        const identifier = challenge.identifier.value;
        const fields = { event: 'challenge_self_check_failed', certificate, identifier, type: challenge.type, finding };
        log.warn(fields, "the CA refused the challenge; the agent's own check of it says why");
      },
    });
  } catch (err) {
    if (err instanceof CaProtocolError && selfCheckFindings.length) {
      throw new CaProtocolError(`${err.message}; ${selfCheckFindings.join('; ')}`, err.problemType, err.httpStatus);
    }
    throw err;
  } finally {
    await solver.close();
  }
}

/** The solver's own fetch of a challenge; a self-check that breaks is reported, never fatal. */
async function selfCheck(solver: Solver, challenge: Challenge): Promise<string | undefined> {
  if (!solver.selfCheck) return undefined;
  try {
    return await solver.selfCheck(challenge);
  } catch (err) {
    return `self-check could not run: ${describeError(err)}`;
  }
}
