/** A doctor context on a temporary directory, for the checks' unit tests. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { validateConfig } from '../../../../agent/config/config.js';
import type { DoctorContext } from '../../../../agent/report/doctor/types.js';
import { tempDir } from '../../../helpers/agent.js';

export function doctorContext(extra: Record<string, unknown> = {}, fix = false): DoctorContext & { dir: string } {
  const dir = tempDir('cert-agent-doctor-check-');
  mkdirSync(join(dir, 'state'), { mode: 0o700 });
  const config = validateConfig({
    ca: { url: 'https://127.0.0.1:9', fingerprint: 'a'.repeat(64) },
    certificate: { domains: ['localhost'], dir: join(dir, 'tls') },
    stateDir: join(dir, 'state'),
    ...extra,
  });
  return { dir, configPath: join(dir, 'config.yaml'), config, owner: {}, fix, now: new Date() };
}
