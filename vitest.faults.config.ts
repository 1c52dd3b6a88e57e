import { defineConfig } from 'vitest/config';
import FaultTableReporter from './test/faults/table-reporter.js';

// `make test-faults`: the fault suite alone, followed by its table. The same
// files also run under vitest.config.ts as part of `make test`.
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 60_000,
    reporters: ['default', new FaultTableReporter()],
  },
});
