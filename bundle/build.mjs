// Builds the single-file agent: bundle/out/cert-agent.mjs, runnable with
// `node` and no node_modules beside it. Writes esbuild's metafile next to it
// so the size per dependency can be reported.
import { build } from 'esbuild';
import { nodeEsm, requireBanner } from './esbuild-options.mjs';
import { readFileSync, mkdirSync, writeFileSync, chmodSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const outfile = new URL('./out/cert-agent.mjs', import.meta.url).pathname;
mkdirSync(new URL('./out/', import.meta.url), { recursive: true });

// Node built-ins through require(), not import: an ESM bundle must hoist every
// `import` of a built-in to its top, so `status` would load https, tls and
// child_process at every start. As CommonJS stand-ins they load when the
// module using them first runs, and the agent's modules run only when their
// command needs them (see agent/cli/commands.ts).
const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    b.onResolve({ filter: /^node:/ }, (args) =>
      args.kind === 'import-statement' && args.namespace === 'file' && !args.importer.includes('node_modules')
        ? { path: args.path, namespace: 'lazy-builtin' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
      loader: 'js',
    }));
  },
};

const result = await build({
  plugins: [lazyBuiltins],
  entryPoints: [new URL('../agent/cli/main.ts', import.meta.url).pathname],
  outfile,
  ...nodeEsm,
  minify: true,
  legalComments: 'linked',
  metafile: true,
  define: { CERT_AGENT_VERSION: JSON.stringify(pkg.version) },
  banner: { js: `#!/usr/bin/env node\n${requireBanner}` },
});
writeFileSync(new URL('./out/meta.json', import.meta.url), JSON.stringify(result.metafile));
chmodSync(outfile, 0o755);
const size =
  result.metafile.outputs[Object.keys(result.metafile.outputs).find((k) => k.endsWith('cert-agent.mjs'))].bytes;
console.log(`bundle/out/cert-agent.mjs ${(size / 1024).toFixed(0)} KiB`);
