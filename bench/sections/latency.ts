/**
 * Command latency: `cert-agent --version`, `--help`, `status` and `check`
 * (one timer-mode pass with the certificate not due) next to a bare
 * `node -e 0`, in the same hyperfine run (no shell, warm-up runs first),
 * plus peak RSS of each from GNU time.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanEnv, run, timed } from '../lib/proc.js';
import { summarize, type Summary } from '../lib/stats.js';

export interface LatencyRow {
  name: string;
  argv: string[];
  wallMs: Summary;
  rssKb: Summary;
  /** user + system CPU of the process, from GNU time (5 runs, or every run of the own loop) */
  cpuMs: Summary;
  exitCode: number;
}

export interface LatencyResult {
  tool: string;
  rows: LatencyRow[];
}

export async function latencySection(
  agentBin: string,
  config: string,
  runs: number,
  hyperfine: boolean,
): Promise<LatencyResult> {
  const cmds: { name: string; argv: string[] }[] = [
    { name: 'node -e 0', argv: [process.execPath, '-e', '0'] },
    { name: 'cert-agent --version', argv: [process.execPath, agentBin, '--version'] },
    { name: 'cert-agent --help', argv: [process.execPath, agentBin, '--help'] },
    { name: 'cert-agent status', argv: [process.execPath, agentBin, 'status', '--config', config] },
    { name: 'cert-agent status --json', argv: [process.execPath, agentBin, 'status', '--json', '--config', config] },
    { name: 'cert-agent check (timer mode, not due)', argv: [process.execPath, agentBin, 'check', '--config', config] },
  ];
  const walls = new Map<string, number[]>();
  const codes = new Map<string, number>();
  for (const c of cmds) codes.set(c.name, (await run(c.argv, { env: cleanEnv() })).code);
  let tool = 'own loop (interleaved)';
  if (hyperfine) {
    const dir = mkdtempSync(join(tmpdir(), 'cert-agent-bench-hf-'));
    const out = join(dir, 'hf.json');
    // -N: no intermediate shell; -i: status may exit 1/2 (WARNING/CRITICAL) by design.
    const r = await run(
      [
        'hyperfine',
        '-N',
        '-i',
        '--style',
        'none',
        '--warmup',
        '3',
        '--runs',
        String(runs),
        '--export-json',
        out,
        ...cmds.flatMap((c) => ['-n', c.name, c.argv.map(quote).join(' ')]),
      ],
      { env: cleanEnv() },
      600_000,
    );
    if (r.code === 0) {
      const json = JSON.parse(readFileSync(out, 'utf8')) as { results: { command: string; times: number[] }[] };
      for (const res of json.results)
        walls.set(
          res.command,
          res.times.map((s) => s * 1000),
        );
      tool = `hyperfine (-N, 3 warm-up runs, ${runs} runs each)`;
    }
    rmSync(dir, { recursive: true, force: true });
  }
  const rss = new Map<string, number[]>();
  const cpu = new Map<string, number[]>();
  const own = walls.size === 0;
  for (let i = 0; i < (own ? runs : 5); i++) {
    for (const c of cmds) {
      const t = await timed(c.argv);
      rss.set(c.name, [...(rss.get(c.name) ?? []), t.maxRssKb]);
      cpu.set(c.name, [...(cpu.get(c.name) ?? []), t.cpuMs]);
      if (own) walls.set(c.name, [...(walls.get(c.name) ?? []), t.wallMs]);
    }
  }
  return {
    tool,
    rows: cmds.map((c) => ({
      name: c.name,
      argv: c.argv,
      wallMs: summarize(walls.get(c.name) ?? []),
      rssKb: summarize(rss.get(c.name) ?? []),
      cpuMs: summarize(cpu.get(c.name) ?? []),
      exitCode: codes.get(c.name) ?? -1,
    })),
  };
}

function quote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
