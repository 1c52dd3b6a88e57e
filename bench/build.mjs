// Compiles the benchmark driver (bench/main.ts, which uses the test harness to
// start real step-ca instances) into bench/out/main.mjs, and builds a second
// copy of the agent bundle with a source map so CPU profiles can be
// attributed to source files and dependencies. That copy is made by running
// bundle/build.mjs itself — patched only to emit a source map, from a mirror
// directory whose out/ is bench/out/prof/ — so it always has exactly the
// shipped bundle's options and plugins. The benchmarks themselves always run
// bundle/out/cert-agent.cjs.
import { build } from 'esbuild';
import { nodeEsm } from '../bundle/esbuild-options.mjs';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';

const here = (p) => new URL(p, import.meta.url).pathname;
mkdirSync(here('./out/'), { recursive: true });

await build({
  entryPoints: [here('./main.ts'), here('./lib/caproxy.ts'), here('./lib/fleet-worker.ts')],
  outdir: here('./out/'),
  outExtension: { '.js': '.mjs' },
  ...nodeEsm,
  packages: 'external',
});

// Mirror: bench/out/profbuild/{package.json, agent -> repo}, bundle/build.mjs patched.
const mirror = here('./out/profbuild/');
rmSync(mirror, { recursive: true, force: true });
mkdirSync(`${mirror}bundle`, { recursive: true });
symlinkSync(here('../package.json'), `${mirror}package.json`);
symlinkSync(here('../agent'), `${mirror}agent`);
symlinkSync(here('../node_modules'), `${mirror}node_modules`);
symlinkSync(here('../bundle/esbuild-options.mjs'), `${mirror}bundle/esbuild-options.mjs`);
symlinkSync(here('../bundle/loader.cjs'), `${mirror}bundle/loader.cjs`);
const source = readFileSync(here('../bundle/build.mjs'), 'utf8');
const patched = source.replace(/minify: true,/, "minify: true, sourcemap: 'external', sourcesContent: false,");
if (patched === source)
  throw new Error('bench/build.mjs: could not add a source map to bundle/build.mjs (no `minify: true,` in it)');
writeFileSync(`${mirror}bundle/build.mjs`, patched);
execFileSync(process.execPath, [`${mirror}bundle/build.mjs`], { stdio: ['ignore', 'ignore', 'inherit'] });
mkdirSync(here('./out/prof/'), { recursive: true });
for (const f of ['cert-agent.cjs', 'cert-agent.cjs.map']) {
  writeFileSync(here(`./out/prof/${f}`), readFileSync(`${mirror}bundle/out/${f}`));
}
