/**
 * Where a command's time goes: `node --cpu-prof` on the profiling copy of the
 * bundle (same build options plus a source map), every sample
 * charged to the package of the nearest bundle frame on its stack (so the
 * Node built-ins a package loads or calls count for it), and Node's own
 * work split into reading, compiling the bundle and the rest.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { attribute } from '../lib/cpuprofile.js';
import { cleanEnv, timed } from '../lib/proc.js';
import { median } from '../lib/stats.js';

export interface ProfileRow {
  command: string;
  wallMs: number;
  cpuMs: number;
  /** bucket → median ms over the runs, and the part of it spent inside Node built-ins it called */
  buckets: [string, number, number][];
}

export async function profileSection(
  profBin: string,
  outDir: string,
  commands: { name: string; args: string[] }[],
  runs: number,
): Promise<ProfileRow[]> {
  const rows: ProfileRow[] = [];
  for (const c of commands) {
    const walls: number[] = [];
    const totals: number[] = [];
    const buckets = new Map<string, [number, number][]>();
    for (let i = 0; i < runs; i++) {
      const dir = join(outDir, 'profiles', `${c.name.replace(/\W+/g, '_')}-${i}`);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      const t = await timed([process.execPath, '--cpu-prof', `--cpu-prof-dir=${dir}`, profBin, ...c.args], {
        env: cleanEnv(),
      });
      const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
      if (!file) continue;
      walls.push(t.wallMs);
      const a = attribute(join(dir, file), profBin, `${profBin}.map`);
      totals.push(a.totalMs);
      for (const [k, v] of a.buckets) buckets.set(k, [...(buckets.get(k) ?? []), v]);
    }
    rows.push({
      command: c.name,
      wallMs: median(walls),
      cpuMs: median(totals),
      buckets: [...buckets.entries()]
        .map(([k, v]): [string, number, number] => {
          const pad = new Array<[number, number]>(Math.max(0, walls.length - v.length)).fill([0, 0]);
          const all = [...v, ...pad];
          return [k, median(all.map((x) => x[0])), median(all.map((x) => x[1]))];
        })
        .sort((a, b) => b[1] - a[1]),
    });
  }
  return rows;
}
