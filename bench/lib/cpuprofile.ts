/**
 * Where start-up time goes: reads a V8 .cpuprofile written by
 * `node --cpu-prof`, maps every sampled frame in the profiling bundle back to
 * its source file through the bundle's source map, and sums self time per
 * dependency (node_modules/<package>), per agent/ file, and for Node's own
 * work (compilation and module loading show up as "(program)" and node:
 * internals).
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  url: string;
  lineNumber: number;
  columnNumber: number;
  functionName: string;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = new Map([...B64].map((c, i) => [c, i]));

/** generated line → sorted [generatedColumn, sourceIndex] pairs */
export function decodeMappings(mappings: string): [number, number][][] {
  const lines: [number, number][][] = [];
  let src = 0;
  let srcLine = 0;
  let srcCol = 0;
  let name = 0;
  for (const line of mappings.split(';')) {
    const segs: [number, number][] = [];
    let genCol = 0;
    if (line) {
      for (const seg of line.split(',')) {
        const vals: number[] = [];
        let shift = 0;
        let value = 0;
        for (const ch of seg) {
          const digit = B64_INDEX.get(ch)!;
          value += (digit & 31) << shift;
          if (digit & 32) {
            shift += 5;
          } else {
            vals.push(value & 1 ? -(value >>> 1) : value >>> 1);
            value = 0;
            shift = 0;
          }
        }
        genCol += vals[0] ?? 0;
        if (vals.length >= 4) {
          src += vals[1]!;
          srcLine += vals[2]!;
          srcCol += vals[3]!;
          if (vals.length >= 5) name += vals[4]!;
          segs.push([genCol, src]);
        }
      }
    }
    lines.push(segs);
  }
  return lines;
}

function lookup(lines: [number, number][][], line: number, col: number): number | undefined {
  const segs = lines[line];
  if (!segs?.length) return undefined;
  let lo = 0;
  let hi = segs.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (segs[mid]![0] <= col) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found >= 0 ? segs[found]![1] : undefined;
}

/** "node_modules/@peculiar/x509/…" → "@peculiar/x509"; "../agent/acme.ts" → "agent/acme.ts" */
export function bucketOfSource(source: string): string {
  const nm = source.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = source.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const agent = source.indexOf('agent/');
  return agent >= 0 ? source.slice(agent) : source;
}

export interface Attribution {
  totalMs: number;
  /** bucket → self ms */
  buckets: Map<string, number>;
}

export function attribute(profilePath: string, bundlePath: string, mapPath: string): Attribution {
  const profile = JSON.parse(readFileSync(profilePath, 'utf8')) as Profile;
  const map = JSON.parse(readFileSync(mapPath, 'utf8')) as { sources: string[]; mappings: string };
  const lines = decodeMappings(map.mappings);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const buckets = new Map<string, number>();
  let total = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    let bucket: string;
    if (frame.url.endsWith(bundlePath) || frame.url === `file://${bundlePath}`) {
      const src = lookup(lines, frame.lineNumber, frame.columnNumber);
      bucket = src === undefined ? 'bundle (unmapped)' : bucketOfSource(map.sources[src] ?? '?');
      if (bucket.startsWith('agent/')) bucket = 'agent (own code)';
    } else if (frame.url.startsWith('node:')) {
      bucket = 'node: built-in modules';
    } else if (!frame.url) {
      bucket = frame.functionName.startsWith('(') ? frame.functionName : 'V8/native';
    } else {
      bucket = frame.url;
    }
    if (bucket === '(idle)') continue;
    buckets.set(bucket, (buckets.get(bucket) ?? 0) + us / 1000);
    total += us / 1000;
  }
  return { totalMs: total, buckets };
}
