// Compiles the demo driver (which starts a real step-ca through the test
// harness) into bundle/out/demo.mjs, so `make demo` needs no TypeScript runner.
import { build } from 'esbuild';
import { nodeEsm } from './esbuild-options.mjs';

await build({
  entryPoints: [new URL('../test/harness/demo.ts', import.meta.url).pathname],
  outfile: new URL('./out/demo.mjs', import.meta.url).pathname,
  ...nodeEsm,
  packages: 'external',
});
