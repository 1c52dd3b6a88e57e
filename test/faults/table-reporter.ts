/**
 * Prints the fault table (scenario | injected | expected | observed) after
 * the run, from the rows the tests attached to their meta. A failed test
 * shows as FAILED in the observed column, whatever it recorded.
 */
import type { Reporter, TestModule } from 'vitest/node';
import type { FaultRow } from './table.js';

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\s+/g, ' ').trim();

export default class FaultTableReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const rows: string[] = [];
    for (const mod of modules) {
      for (const test of mod.children.allTests()) {
        const row = test.meta().fault as FaultRow | undefined;
        const state = test.result().state;
        if (!row && state !== 'failed') continue;
        const r = row ?? { scenario: test.fullName, injected: '', expected: '', observed: '' };
        const observed =
          state === 'failed' ? `FAILED: ${test.result().errors?.[0]?.message ?? ''}`.slice(0, 300) : r.observed;
        rows.push(`| ${[r.scenario, r.injected, r.expected, observed].map(cell).join(' | ')} |`);
      }
    }
    if (!rows.length) return;
    const out = [
      '',
      '## Fault table',
      '',
      '| scenario | injected | expected | observed |',
      '|---|---|---|---|',
      ...rows,
      '',
    ];
    process.stdout.write(out.join('\n') + '\n');
  }
}
