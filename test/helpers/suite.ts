/** One real step-ca and one scratch directory per test file, removed even when a test fails. */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll } from 'vitest';
import { startStepCa, type StepCa, type StepCaOptions } from '../harness/stepca.js';
import { tempDir } from './agent.js';

export function useStepCaSuite(ready: (ca: StepCa, dir: string) => void, opts?: StepCaOptions): void {
  let ca: StepCa | undefined;
  let dir: string | undefined;
  beforeAll(async () => {
    ca = await startStepCa(opts);
    dir = tempDir();
    ready(ca, dir);
  });
  afterAll(async () => {
    await ca?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
}
