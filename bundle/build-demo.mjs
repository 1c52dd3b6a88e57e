// Compiles the demo driver (which starts a real step-ca through the test
// harness) into bundle/out/demo.mjs, so `make demo` needs no TypeScript runner.
import { build } from 'esbuild';

await build({
  entryPoints: [new URL('../test/harness/demo.ts', import.meta.url).pathname],
  outfile: new URL('./out/demo.mjs', import.meta.url).pathname,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  logLevel: 'warning',
});
