/**
 * Bundle size (minified, gzipped) with a per-dependency breakdown from
 * esbuild's metafile, and what each dependency costs at start-up when it is
 * bundled alone with the same options and stand-ins (load time and resident memory over a
 * bare `node -e 0`).
 */
import { build } from 'esbuild';
import { nodeEsm, requireBanner } from '../../bundle/esbuild-options.mjs';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync, brotliCompressSync, constants } from 'node:zlib';
import { bucketOfSource } from '../lib/cpuprofile.js';
import { cleanEnv, timed } from '../lib/proc.js';
import { summarize, type Summary } from '../lib/stats.js';

export interface BundleResult {
  bytes: number;
  gzipBytes: number;
  brotliBytes: number;
  /** package (or "agent (own code)") → bytes in the output */
  byPackage: [string, number][];
  deps: { name: string; bytes: number; wallMs: Summary; rssKb: Summary }[];
  baseline: { wallMs: Summary; rssKb: Summary };
}

interface Meta {
  outputs: Record<string, { bytes: number; inputs: Record<string, { bytesInOutput: number }> }>;
}

export async function bundleSection(root: string, outDir: string, runs: number): Promise<BundleResult> {
  const file = join(root, 'bundle/out/cert-agent.cjs');
  const data = readFileSync(file);
  const meta = JSON.parse(readFileSync(join(root, 'bundle/out/meta.json'), 'utf8')) as Meta;
  const out = Object.entries(meta.outputs).find(([k]) => k.endsWith('cert-agent.cjs'))![1];
  const byPackage = new Map<string, number>();
  for (const [input, { bytesInOutput }] of Object.entries(out.inputs)) {
    let b = bucketOfSource(input);
    if (b.startsWith('agent/')) b = 'agent (own code)';
    byPackage.set(b, (byPackage.get(b) ?? 0) + bytesInOutput);
  }
  // Banner, esbuild's module wrappers and glue are not attributed to an input.
  const attributed = [...byPackage.values()].reduce((a, b) => a + b, 0);
  if (data.length > attributed) byPackage.set('(esbuild runtime, banner, glue)', data.length - attributed);

  // Each runtime dependency alone, bundled like the agent.
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const names = Object.keys(pkg.dependencies).filter((n) => n !== 'reflect-metadata');
  // Modules the agent's build replaces with stand-ins (esbuild namespace "stub"
  // in the metafile) are replaced here too, by a stand-in that only loads.
  const stubbed = Object.keys(out.inputs)
    .filter((k) => k.startsWith('stub:'))
    .map((k) => k.slice('stub:'.length));
  const stubPlugin = {
    name: 'stubs',
    setup(b: import('esbuild').PluginBuild) {
      if (!stubbed.length) return;
      b.onResolve(
        { filter: new RegExp(`^(${stubbed.map((n) => n.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|')})$`) },
        (args) => ({ path: args.path, namespace: 'stub' }),
      );
      b.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({
        contents: 'const s = new Proxy(function () {}, { get: () => s }); module.exports = s;',
        loader: 'js',
      }));
    },
  };
  const depDir = join(outDir, 'deps');
  mkdirSync(depDir, { recursive: true });
  const files: { name: string; file: string; bytes: number }[] = [];
  for (const name of names) {
    const prelude =
      name === '@peculiar/x509' && pkg.dependencies['reflect-metadata'] ? "import 'reflect-metadata';\n" : '';
    const outfile = join(depDir, `${name.replace(/[@/]/g, '_')}.mjs`);
    const r = await build({
      stdin: {
        contents: `${prelude}import * as m from '${name}';\nglobalThis.__keep = m;\n`,
        resolveDir: root,
        loader: 'js',
      },
      outfile,
      plugins: [stubPlugin],
      ...nodeEsm,
      minify: true,
      legalComments: 'none',
      metafile: true,
      logLevel: 'error',
      banner: { js: requireBanner },
    });
    files.push({ name, file: outfile, bytes: Object.values(r.metafile.outputs)[0]!.bytes });
  }
  const samples = new Map<string, { wall: number[]; rss: number[] }>();
  const add = (k: string, wall: number, rss: number) => {
    const s = samples.get(k) ?? { wall: [], rss: [] };
    s.wall.push(wall);
    s.rss.push(rss);
    samples.set(k, s);
  };
  // Interleaved, so machine noise hits every entry alike.
  for (let i = 0; i < runs; i++) {
    const base = await timed([process.execPath, '-e', '0'], { env: cleanEnv() });
    add('(baseline)', base.wallMs, base.maxRssKb);
    for (const f of files) {
      const t = await timed([process.execPath, f.file], { env: cleanEnv(), cwd: depDir });
      if (t.code !== 0) throw new Error(`loading ${f.name} alone failed: ${t.stderr}`);
      add(f.name, t.wallMs, t.maxRssKb);
    }
  }
  const base = samples.get('(baseline)')!;
  return {
    bytes: data.length,
    gzipBytes: gzipSync(data, { level: 9 }).length,
    brotliBytes: brotliCompressSync(data, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
    byPackage: [...byPackage.entries()].sort((a, b) => b[1] - a[1]),
    deps: files
      .map((f) => ({
        name: f.name,
        bytes: f.bytes,
        wallMs: summarize(samples.get(f.name)!.wall),
        rssKb: summarize(samples.get(f.name)!.rss),
      }))
      .sort((a, b) => b.bytes - a.bytes),
    baseline: { wallMs: summarize(base.wall), rssKb: summarize(base.rss) },
  };
}
