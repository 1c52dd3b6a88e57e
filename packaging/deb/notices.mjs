// Writes the THIRD-PARTY-NOTICES shipped in the .deb: the name, version,
// license and license text of every package esbuild put into the bundle,
// read from the bundle's metafile, so the notices list what is really shipped.
// Usage: node packaging/deb/notices.mjs bundle/out/meta.json > THIRD-PARTY-NOTICES
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** The node_modules package directories the metafile's inputs come from, relative to the repository. */
export function bundledPackages(metaFile) {
  const meta = JSON.parse(readFileSync(metaFile, 'utf8'));
  const dirs = new Set();
  for (const input of Object.keys(meta.inputs)) {
    const at = input.lastIndexOf('node_modules/');
    if (at < 0) continue;
    const rest = input.slice(at + 'node_modules/'.length).split('/');
    const name = rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
    dirs.add(`${input.slice(0, at)}node_modules/${name}`);
  }
  return [...dirs].sort();
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  const metaFile = process.argv[2];
  const repo = resolve(dirname(metaFile), '../..');
  const out = [
    'cert-agent: third-party software in /usr/lib/cert-agent/cert-agent.cjs',
    '',
    'The bundle contains these packages (and Node.js built-ins only otherwise).',
    '',
  ];
  for (const dir of bundledPackages(metaFile)) {
    const pkg = JSON.parse(readFileSync(join(repo, dir, 'package.json'), 'utf8'));
    const file = readdirSync(join(repo, dir)).find((f) => /^(licen[cs]e|copying)/i.test(f));
    if (!file || !existsSync(join(repo, dir, file))) throw new Error(`${pkg.name}: no license file in ${dir}`);
    out.push('='.repeat(72), `${pkg.name} ${pkg.version} (${pkg.license})`, '='.repeat(72), '');
    out.push(readFileSync(join(repo, dir, file), 'utf8').trim(), '');
  }
  process.stdout.write(`${out.join('\n')}\n`);
}
