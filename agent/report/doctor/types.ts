/**
 * What every `doctor` check gets and returns. A check is a small function
 * of the context giving its lines ({status, reason, message}, the shape the
 * adapters speak too); doctor.ts composes them in one list, in the order
 * they print.
 */
import type { Config } from '../../config/config.js';
import type { Diagnosis } from '../../lib/diagnosis.js';
import type { Ownership } from '../../store/layout.js';

export type { Diagnosis } from '../../lib/diagnosis.js';
export { diagnosis } from '../../lib/diagnosis.js';

export interface DoctorContext {
  configPath: string;
  config: Config;
  /** certificate.owner/group resolved; undefined when they name no user or group here (said by the owner check). */
  owner: Ownership | undefined;
  /** `--fix`: repair what cannot make things worse (modes and owners of the agent's own files). */
  fix: boolean;
  now: Date;
  /** Port the challenge probe is fetched on; 80 unless a test CA validates elsewhere. */
  selfCheckPort?: number;
}

export type DoctorCheck = (ctx: DoctorContext) => Diagnosis[] | Promise<Diagnosis[]>;
