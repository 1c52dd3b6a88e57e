/**
 * Rows of the fault table. Each test attaches what it injected, what was
 * expected and what it actually measured to its task's meta; the table
 * reporter (table-reporter.ts) prints all rows when the run ends. Values are
 * filled in from measurements during the test, so a row can only claim what
 * the test saw.
 */
import type { TaskMeta } from 'vitest';

export interface FaultRow {
  scenario: string;
  injected: string;
  expected: string;
  observed: string;
}

declare module 'vitest' {
  interface TaskMeta {
    fault?: FaultRow;
  }
}

/** Records the row on the running test; call it once the observation is known. */
export function record(task: { meta: TaskMeta }, row: FaultRow): void {
  task.meta.fault = row;
}
