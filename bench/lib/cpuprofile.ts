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
  /** bucket → [self ms, of which inside Node built-ins called from it] */
  buckets: Map<string, [number, number]>;
}

/**
 * Each sample goes to the package of the nearest bundle frame on its stack
 * (so Node built-ins a package calls or loads count for that package);
 * samples with no bundle frame are Node's own work, split by what it is.
 */
export function attribute(profilePath: string, bundlePath: string, mapPath: string): Attribution {
  const profile = JSON.parse(readFileSync(profilePath, 'utf8')) as Profile;
  const map = JSON.parse(readFileSync(mapPath, 'utf8')) as { sources: string[]; mappings: string };
  const lines = decodeMappings(map.mappings);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inBundle = (f: CallFrame) => f.url === `file://${bundlePath}` || f.url.endsWith(bundlePath);
  const packageOf = (f: CallFrame) => {
    const src = lookup(lines, f.lineNumber, f.columnNumber);
    const b = src === undefined ? 'bundle glue (esbuild runtime, banner)' : bucketOfSource(map.sources[src] ?? '?');
    return b.startsWith('agent/') ? 'agent (own code)' : b;
  };
  // Package of the nearest bundle frame at or above a node (undefined: none).
  const owners = new Map<number, string | undefined>();
  const owner = (id: number): string | undefined => {
    if (owners.has(id)) return owners.get(id);
    const chain: number[] = [];
    let cur: number | undefined = id;
    let found: string | undefined;
    while (cur !== undefined) {
      if (owners.has(cur)) {
        found = owners.get(cur);
        break;
      }
      chain.push(cur);
      const f = byId.get(cur)!.callFrame;
      if (inBundle(f)) {
        found = packageOf(f);
        break;
      }
      cur = parent.get(cur);
    }
    for (const c of chain) owners.set(c, found);
    return found;
  };
  const GLUE = 'bundle glue (esbuild runtime, banner)';
  // Inclusive sample time per node, to split a module wrapper's own time.
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const inclusive = new Map<number, number>();
  const incl = (id: number): number => {
    const hit = inclusive.get(id);
    if (hit !== undefined) return hit;
    let t = selfUs.get(id) ?? 0;
    for (const c of byId.get(id)!.children ?? []) t += incl(c);
    inclusive.set(id, t);
    return t;
  };
  const hasAncestor = (id: number, re: RegExp): boolean => {
    for (let cur = parent.get(id); cur !== undefined; cur = parent.get(cur))
      if (re.test(byId.get(cur)!.callFrame.functionName)) return true;
    return false;
  };
  /** [bucket, weight, inside a Node built-in] */
  const classify = (id: number): [string, number, boolean][] => {
    const f = byId.get(id)!.callFrame;
    if (inBundle(f)) {
      const pkg = packageOf(f);
      if (pkg !== GLUE) return [[pkg, 1, false]];
      // esbuild's __commonJS/__esm wrappers: their own time is V8 compiling
      // the wrapped module on first require; charge it to the modules called.
      const kids = (byId.get(id)!.children ?? [])
        .filter((c) => inBundle(byId.get(c)!.callFrame))
        .map((c) => [packageOf(byId.get(c)!.callFrame), incl(c)] as const)
        .filter(([k]) => k !== GLUE);
      const sum = kids.reduce((a, [, t]) => a + t, 0);
      if (!kids.length || sum === 0) return [[GLUE, 1, false]];
      return kids.map(([k, t]) => [k, t / sum, false]);
    }
    if (f.functionName.startsWith('(') && !f.url) return [[f.functionName, 1, false]];
    const via = owner(id);
    if (via && via !== GLUE) return [[via, 1, true]];
    if (/compileSourceTextModule|ModuleWrap|compileFunction|wrapSafe/.test(f.functionName))
      return [['Node: parsing and compiling the bundle', 1, false]];
    if (/readFileHandle|allocUnsafeSlow|fs\/promises/.test(`${f.functionName} ${f.url}`))
      return [['Node: reading the bundle file', 1, false]];
    if (f.functionName === 'builtinStrategy' || hasAncestor(id, /^builtinStrategy$/))
      return [['Node: loading the built-ins the bundle imports', 1, false]];
    return [['Node: bootstrap and module loader', 1, false]];
  };
  const buckets = new Map<string, [number, number]>();
  let total = 0;
  const memo = new Map<number, [string, number, boolean][]>();
  profile.samples.forEach((id, i) => {
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    let parts = memo.get(id);
    if (!parts) memo.set(id, (parts = classify(id)));
    for (const [bucket, w, viaBuiltin] of parts) {
      if (bucket === '(idle)') continue;
      const e = buckets.get(bucket) ?? [0, 0];
      e[0] += ms * w;
      if (viaBuiltin) e[1] += ms * w;
      buckets.set(bucket, e);
      total += ms * w;
    }
  });
  return { totalMs: total, buckets };
}
