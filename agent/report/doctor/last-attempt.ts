/** `doctor`: when the last pass failed, its error (with the self-check's finding, if any) is what to fix first. */
import { readState } from '../../store/state.js';
import { diagnosis, type Diagnosis, type DoctorContext } from './types.js';

export function checkLastAttempt({ config }: DoctorContext): Diagnosis[] {
  const last = readState(config.stateDir, config.certificate.name).lastAttempt;
  if (last?.result === 'failed')
    return [diagnosis('PROBLEM', 'last renewal', `the attempt at ${last.at} failed: ${last.error ?? 'no detail'}`)];
  return last ? [diagnosis('ok', 'last renewal', `the attempt at ${last.at}: ${last.result}`)] : [];
}
