// Builds the single-file agent: bundle/out/cert-agent.mjs, runnable with
// `node` and no node_modules beside it. Writes esbuild's metafile next to it
// so the size per dependency can be reported.
import { build } from 'esbuild';
import { readFileSync, mkdirSync, writeFileSync, chmodSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const outfile = new URL('./out/cert-agent.mjs', import.meta.url).pathname;
mkdirSync(new URL('./out/', import.meta.url), { recursive: true });

// Modules our dependencies require but the agent never uses, replaced by
// small stand-ins so every container does not load them at each start:
// - node-forge: acme-client's legacy crypto API (acme.forge); the agent uses
//   acme.crypto (Node crypto + @peculiar/x509). Touched at load time only to
//   promisify one function, so the stand-in provides that shape and throws if
//   anything ever calls into it.
// - form-data (and mime-db behind it): axios' multipart uploads; ACME posts
//   JSON only. axios falls back to the global FormData when this is null.
const STUBS = {
  'node-forge': "const no = () => { throw new Error('node-forge is not part of the cert-agent bundle'); }; module.exports = { pki: { rsa: { generateKeyPair: no } }, pem: { decode: no } };",
  'form-data': 'module.exports = null;',
};
const stubs = {
  name: 'stubs',
  setup(b) {
    b.onResolve({ filter: new RegExp(`^(${Object.keys(STUBS).join('|')})$`) }, (args) => ({ path: args.path, namespace: 'stub' }));
    b.onLoad({ filter: /.*/, namespace: 'stub' }, (args) => ({ contents: STUBS[args.path], loader: 'js' }));
  },
};

const result = await build({
  plugins: [stubs],
  entryPoints: [new URL('../agent/cli.ts', import.meta.url).pathname],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  legalComments: 'linked',
  metafile: true,
  define: { CERT_AGENT_VERSION: JSON.stringify(pkg.version) },
  // Dependencies written as CommonJS call require() for Node built-ins.
  banner: { js: "#!/usr/bin/env node\nimport { createRequire as __certAgentRequire } from 'node:module';\nconst require = __certAgentRequire(import.meta.url);" },
  logLevel: 'warning',
});
writeFileSync(new URL('./out/meta.json', import.meta.url), JSON.stringify(result.metafile));
chmodSync(outfile, 0o755);
const size = result.metafile.outputs[Object.keys(result.metafile.outputs).find((k) => k.endsWith('cert-agent.mjs'))].bytes;
console.log(`bundle/out/cert-agent.mjs ${(size / 1024).toFixed(0)} KiB`);
