/** The reload section of `status`: the last reload and whether the consumer was seen serving the live serial. */
import type { Config } from '../../config/config.js';
import type { AgentState } from '../../store/state.js';
import type { LiveSet } from '../../store/sets.js';
import type { Problems, StatusReport } from './report.js';

const normSerial = (s: string) => s.toLowerCase().replace(/^0+/, '');

export function reloadSection(
  config: Config,
  state: AgentState,
  live: LiveSet | undefined,
): Problems & { reload: StatusReport['reload'] } {
  const warning: string[] = [];
  const rl = state.reload;
  let servedMatches: boolean | null = null;
  if (rl?.servedSerial && live) servedMatches = normSerial(rl.servedSerial) === normSerial(live.cert.serialNumber);
  if (rl && !rl.ok) warning.push(`last reload of ${rl.target} failed: ${rl.detail ?? 'no detail'}`);
  else if (servedMatches === false)
    warning.push(
      `${config.reload.target} was last seen serving serial ${rl?.servedSerial}, not the installed ${live?.cert.serialNumber.toLowerCase()}`,
    );
  const reload = {
    target: config.reload.target,
    verify: config.reload.verify ?? null,
    lastResult: rl ? { at: rl.at, ok: rl.ok, detail: rl.detail ?? null, servedSerial: rl.servedSerial ?? null } : null,
    servedMatches,
  };
  return { reload, critical: [], warning };
}
