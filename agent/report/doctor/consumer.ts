/** `doctor`: whether the consumer uses the agent's files, as the configured reload target sees it. */
import { reloadTargets } from '../../reload/index.js';
import type { Diagnosis, DoctorContext } from './types.js';

export function checkConsumer({ config }: DoctorContext): Promise<Diagnosis[]> {
  return reloadTargets[config.reload.target].diagnose(config);
}
