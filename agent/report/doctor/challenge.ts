/**
 * `doctor`: every mode, a probe token of our own presented by the
 * configured solver and fetched for every name the way the CA will. What is
 * particular to a mode (what must exist first, why it could not open, where
 * a right answer came from) is the solver's own (challenge/types.ts).
 */
import { randomBytes } from 'node:crypto';
import { solverContext, solverKinds, type Challenge, type Solver } from '../../challenge/index.js';
import { describeError } from '../../lib/errors.js';
import { isIP } from 'node:net';
import { reloadTargets } from '../../reload/index.js';
import { diagnosis, type Diagnosis, type DoctorContext } from './types.js';

export async function checkChallenge({ config, selfCheckPort }: DoctorContext): Promise<Diagnosis[]> {
  const settings = config.challenge;
  const kind = solverKinds[settings.mode];
  const missing = kind.precheck?.(settings);
  if (missing) return [missing];
  let solver: Solver;
  try {
    const ctx = solverContext({
      ...(selfCheckPort ? { selfCheckPort } : {}),
      webServerUser: () => reloadTargets[config.reload.target].webServerUser(config),
      names: config.certificate.domains,
      certificate: config.certificate.name,
      stateDir: config.stateDir,
      commandTimeoutSeconds: config.reload.timeoutSeconds,
    });
    if (kind.diagnose) return await kind.diagnose(settings, ctx);
    solver = await kind.open(settings, ctx);
  } catch (err) {
    return [
      kind.openFailure ? await kind.openFailure(settings, err) : diagnosis('PROBLEM', 'challenge', describeError(err)),
    ];
  }
  const lines: Diagnosis[] = [];
  const token = randomBytes(24).toString('base64url');
  try {
    for (const name of config.certificate.domains) {
      const probe: Challenge = {
        type: solver.type,
        identifier: { type: isIP(name) ? 'ip' : 'dns', value: name },
        token,
        keyAuthorization: `${token}.doctor-${randomBytes(8).toString('hex')}`,
      };
      await solver.present(probe);
      try {
        const finding = await solver.selfCheck?.(probe);
        lines.push(
          finding
            ? diagnosis('PROBLEM', 'challenge', finding)
            : diagnosis('ok', 'challenge', kind.answered(settings, name)),
        );
      } finally {
        await solver.cleanup(probe);
      }
    }
  } finally {
    await solver.close();
  }
  return lines;
}
