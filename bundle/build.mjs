// Builds the single-file agent: bundle/out/cert-agent.cjs (CommonJS), runnable with
// `node` and no node_modules beside it: bundle/loader.cjs, with the agent's
// code as a string that the loader compiles with V8's code cache. Writes esbuild's metafile next to it
// so the size per dependency can be reported.
import { build, transform } from 'esbuild';
import { createHash } from 'node:crypto';
import { readFileSync, mkdirSync, writeFileSync, chmodSync } from 'node:fs';
import { Buffer } from 'node:buffer';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const outfile = new URL('./out/cert-agent.cjs', import.meta.url).pathname;
mkdirSync(new URL('./out/', import.meta.url), { recursive: true });

// The agent's code as CommonJS (an ESM bundle cannot be compiled by
// vm.Script), kept as a string inside the file that bundle/loader.cjs starts
// from: the loader compiles it with V8's code cache. Still one file, runnable
// with `node` and nothing beside it. As CommonJS, a Node built-in is
// require()d when the module importing it first runs, and the agent's modules
// run only when their command needs them (see agent/cli/commands.ts), so
// `status` does not load https, tls or child_process. (No stand-in modules
// for built-ins: esbuild would copy every export of each one at every import,
// enough to make V8 optimise that copy loop in the daemon and page in ~3 MiB
// of its optimising compiler.)
const result = await build({
  entryPoints: [new URL('../agent/cli/main.ts', import.meta.url).pathname],
  outfile: `${outfile}.core.cjs`,
  write: false,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  minify: true,
  legalComments: 'linked',
  metafile: true,
  // import.meta.url becomes the bundle's path: createRequire takes a path.
  define: { CERT_AGENT_VERSION: JSON.stringify(pkg.version), 'import.meta.url': '__filename' },
  logLevel: 'warning',
});
const coreFile = result.outputFiles.find((f) => f.path.endsWith('.core.cjs'));
const legal = result.outputFiles.find((f) => f.path.endsWith('.LEGAL.txt'));
// The agent's code starts on the second line of the string, so that a source
// map of it (bench/build.mjs asks for one) needs only one empty line in front.
const core = `(function (require, module, exports, __filename) {\n${coreFile.text}\n})`;
const coreMap = result.outputFiles.find((f) => f.path.endsWith('.core.cjs.map'));
if (coreMap) {
  const map = JSON.parse(coreMap.text);
  writeFileSync(`${outfile}.map`, JSON.stringify({ ...map, file: 'cert-agent.cjs', mappings: `;${map.mappings}` }));
}
// The main help, answered by the loader without compiling the agent.
const helpTs = new URL('../agent/cli/help.ts', import.meta.url).pathname;
const help = await build({ entryPoints: [helpTs], bundle: true, format: 'esm', write: false, logLevel: 'warning' });
const { HELP } = await import(
  `data:text/javascript;base64,${Buffer.from(help.outputFiles[0].text).toString('base64')}`
);
const loaderSource = readFileSync(new URL('./loader.cjs', import.meta.url), 'utf8');
const loader = await transform(loaderSource, { minify: true, format: 'cjs', target: 'node20', legalComments: 'none' });
const buildId = createHash('sha256').update(core).digest('hex').slice(0, 16);
const text = [
  '#!/usr/bin/env node',
  `// cert-agent ${pkg.version}. For license information please see cert-agent.cjs.LEGAL.txt`,
  `const BUILD_ID=${JSON.stringify(buildId)},VERSION=${JSON.stringify(pkg.version)},HELP_MAIN=${JSON.stringify(HELP.main)};`,
  `const CORE=${JSON.stringify(core)};`,
  loader.code,
].join('\n');
writeFileSync(outfile, text);
if (legal) writeFileSync(`${outfile}.LEGAL.txt`, legal.contents);
chmodSync(outfile, 0o755);
// Reports read the size per dependency from the metafile, under the shipped file's name.
const [[, output]] = Object.entries(result.metafile.outputs).filter(([k]) => k.endsWith('.core.cjs'));
result.metafile.outputs = { 'bundle/out/cert-agent.cjs': { ...output, bytes: Buffer.byteLength(text) } };
writeFileSync(new URL('./out/meta.json', import.meta.url), JSON.stringify(result.metafile));
console.log(`bundle/out/cert-agent.cjs ${(Buffer.byteLength(text) / 1024).toFixed(0)} KiB`);
