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
          // Projects run at the same time unless their group orders differ:
          // unit first, then integration, then faults, never two at once.
          sequence: { groupOrder: 0 },
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
          sequence: { groupOrder: 1 },
          fileParallelism: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'faults',
          include: ['test/faults/**/*.test.ts'],
          sequence: { groupOrder: 2 },
          fileParallelism: false,
          testTimeout: 120_000,
        },
      },
    ],
  },
});
