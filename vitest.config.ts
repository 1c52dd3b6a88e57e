import { defineConfig } from 'vitest/config';

// `npx vitest run` runs every tier. Unit tests (test/unit, milliseconds to a
// few seconds each, nothing shared between files) run in parallel first;
// then the integration and fault suites, one file at a time: each starts its
// own step-ca or boots containers, and on a 2-core machine running them one
// after another is faster and far less flaky. `--project unit` picks a tier.
export default defineConfig({
  test: {
    setupFiles: ['test/setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          // Most unit files wait on openssl, a child agent or a loopback
          // server rather than on the CPU, so more workers than cores pay.
          maxWorkers: 4,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          fileParallelism: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'faults',
          include: ['test/faults/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 120_000,
        },
      },
    ],
  },
});
