// The esbuild settings every Node build in the repository shares — the agent
// bundle and its single executable, the demo, the benchmark driver and its
// per-dependency size probes, the fault suite's fixtures — so the code the
// tests and benchmarks run is built the way the shipped bundle is.

/** ESM for the oldest supported Node, one file, warnings and errors only. */
export const nodeEsm = { bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning' };

/**
 * Dependencies written as CommonJS call require() for Node built-ins; an ESM
 * bundle has no require of its own, so this banner makes one.
 */
export const requireBanner =
  "import { createRequire as __certAgentRequire } from 'node:module';\n" +
  'const require = __certAgentRequire(import.meta.url);';
