// Builds the single executable (Node SEA) for containers whose Node.js is too
// old (Debian 12: 18) or absent: bundle/out/cert-agent, a copy of a Node
// binary with the agent injected. SEA runs one CommonJS script, so this first
// bundles the agent as CJS (bundle/out/sea-main.cjs), then follows the
// documented SEA steps: blob from sea-config.json, postject into the copy.
//
// Usage: node bundle/build-sea.mjs [--node PATH]   (or SEA_NODE=PATH)
// The Node binary that is copied must be an official build (it carries the
// SEA fuse); the Makefile passes the pinned Node 24 from the npm registry.
import { build } from 'esbuild';
import { nodeEsm } from './esbuild-options.mjs';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { node: { type: 'string' } } });
const node = values.node ?? process.env.SEA_NODE ?? process.execPath;
const out = (f) => new URL(`./out/${f}`, import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
mkdirSync(out(''), { recursive: true });

// 1. CJS bundle. import.meta.url becomes __filename (in an SEA, the
//    executable): createRequire takes a path.
await build({
  entryPoints: [new URL('../agent/cli/main.ts', import.meta.url).pathname],
  outfile: out('sea-main.cjs'),
  ...nodeEsm,
  format: 'cjs',
  minify: true,
  legalComments: 'none',
  define: { CERT_AGENT_VERSION: JSON.stringify(pkg.version), 'import.meta.url': '__filename' },
});

// 2. The preparation blob, made by the same Node binary it is injected into
//    (the blob format is tied to the Node version).
const seaConfig = out('sea-config.json');
writeFileSync(
  seaConfig,
  JSON.stringify({ main: out('sea-main.cjs'), output: out('sea-prep.blob'), disableExperimentalSEAWarning: true }),
);
quiet(node, ['--experimental-sea-config', seaConfig]);

// 3. Copy the binary and inject the blob (postject, pinned, from npm).
const exe = out('cert-agent');
rmSync(exe, { force: true });
copyFileSync(node, exe);
chmodSync(exe, 0o755);
quiet('npm', [
  'exec',
  '--yes',
  '--package=postject@1.0.0-alpha.6',
  '--',
  'postject',
  exe,
  'NODE_SEA_BLOB',
  out('sea-prep.blob'),
  '--sentinel-fuse',
  'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
]);
rmSync(out('sea-prep.blob'));
rmSync(seaConfig);

/** Runs a build step; its chatter (postject warns about ELF note names) only on failure. */
function quiet(cmd, args) {
  try {
    execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    process.stderr.write(`${err.stdout ?? ''}${err.stderr ?? ''}`);
    throw new Error(`build-sea: ${cmd} ${args[0]} failed (exit ${err.status})`, { cause: err });
  }
}

const version = execFileSync(exe, ['--version'], { encoding: 'utf8' }).trim();
if (version !== `cert-agent ${pkg.version}`)
  throw new Error(
    `the built executable answers ${JSON.stringify(version)} to --version, expected "cert-agent ${pkg.version}"`,
  );
const nodeVersion = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
console.log(`bundle/out/cert-agent ${(statSync(exe).size / 1048576).toFixed(0)} MiB (SEA, node ${nodeVersion})`);
