/**
 * Bad configuration: over a hundred generated malformed configurations, each
 * given to `cert-agent renew` (and every fourth to `cert-agent run`) from the
 * bundle. Each must exit 78 with one line on stderr, no stack trace, and
 * leave every file in its sandbox exactly as it was. Then a running daemon
 * gets several of them by SIGHUP and must keep its old configuration.
 */
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { runAgent, tempDir } from '../helpers/agent.js';
import { DaemonProcess } from '../helpers/daemon.js';
import { badCases, validDoc, type BadCase } from './badconfig-cases.js';
import { agentPaths, snapshot, writeConfig, type AgentPaths } from './common.js';
import { record } from './table.js';

function prepare(c: BadCase): { sandbox: string; config: string } {
  const sandbox = tempDir('cert-agent-badcfg-');
  const config = join(sandbox, 'config.yaml');
  let text = c.text;
  if (text === undefined) {
    const doc = validDoc(sandbox);
    c.mutate?.(doc, sandbox);
    text = JSON.stringify(doc, null, 2);
  }
  writeFileSync(config, text, { mode: 0o600 });
  c.setup?.(sandbox, config);
  return { sandbox, config };
}

async function pool<T, R>(items: T[], n: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i]!, i);
      }
    }),
  );
  return results;
}

describe('malformed configurations', () => {
  it('each exits 78 with one line, no stack trace, nothing touched', async ({ task }) => {
    const cases = badCases();
    expect(cases.length).toBeGreaterThanOrEqual(100);
    const outcomes = await pool(cases, 4, async (c, i) => {
      const { sandbox, config } = prepare(c);
      try {
        const before = snapshot(sandbox);
        const command = i % 4 === 3 ? 'run' : 'renew';
        const r = await runAgent([command, '--config', config], { timeoutMs: 20_000 });
        const after = snapshot(sandbox);
        return {
          c,
          command,
          code: r.code,
          stderr: r.stderr,
          stdout: r.stdout,
          touched: before.join('\n') !== after.join('\n'),
        };
      } finally {
        rmSync(sandbox, { recursive: true, force: true });
      }
    });
    const wrong = outcomes.filter(
      (o) =>
        o.code !== 78 ||
        o.touched ||
        o.stdout !== '' ||
        !/^cert-agent: config: [^\n]+\n$/.test(o.stderr) ||
        /\n\s+at /.test(o.stderr),
    );
    expect(
      wrong.map(
        (o) =>
          `${o.c.category} ${o.c.name} (${o.command}): exit ${o.code}, touched ${o.touched}, stderr ${JSON.stringify(o.stderr)}`,
      ),
    ).toEqual([]);
    const byCategory = new Map<string, number>();
    for (const o of outcomes) byCategory.set(o.c.category, (byCategory.get(o.c.category) ?? 0) + 1);
    const sample = outcomes.find((o) => o.c.name.includes('symlink owned by nobody'))!.stderr.trim();
    record(task, {
      scenario: 'bad configuration',
      injected: `${cases.length} generated configs: ${[...byCategory].map(([k, v]) => `${v} ${k}`).join(', ')}; given to renew (3/4) and run (1/4)`,
      expected: 'exit 78, one line, no stack trace, no file touched',
      observed: `${outcomes.length - wrong.length}/${outcomes.length} exit 78 with one "cert-agent: config: …" line and an unchanged sandbox, e.g. "${sample.slice(0, 140)}"`,
    });
  }, 180_000);
});

describe('SIGHUP with a bad configuration', () => {
  let ca: StepCa;
  let p: AgentPaths;
  beforeAll(async () => {
    ca = await startStepCa();
    p = agentPaths();
    writeConfig(p, ca, ca.acmeHttpPort);
  });
  afterAll(async () => {
    await ca?.cleanup();
    if (p) rmSync(p.dir, { recursive: true, force: true });
  });

  it('the daemon keeps the old configuration and keeps working', async ({ task }) => {
    const good = readFileSync(p.config, 'utf8');
    const d = new DaemonProcess(p.config);
    try {
      await d.waitFor('certificate_installed', 1, 60_000);
      // Cases whose fault is made by `setup` (modes, owners, links of files) are left out:
      // only the document changes here.
      const picks = badCases()
        .filter((c) => !c.setup)
        .filter((_, i) => i % 20 === 0);
      for (const [i, c] of picks.entries()) {
        const doc = JSON.parse(good);
        c.mutate?.(doc, p.dir);
        writeFileSync(p.config, c.text ?? JSON.stringify(doc), { mode: 0o600 });
        d.signal('SIGHUP');
        await d.waitFor('config_invalid', i + 1, 10_000);
        // The check SIGHUP asks for runs with the old configuration: not due.
        await d.waitFor('renewal_not_due', i + 1, 20_000);
      }
      // The valid file, made writable by every user.
      writeFileSync(p.config, good);
      chmodSync(p.config, 0o666);
      d.signal('SIGHUP');
      const [unsafe] = (await d.waitFor('config_invalid', picks.length + 1, 10_000)).slice(-1);
      expect(String(unsafe!.error)).toContain('is writable by every user');
      await d.waitFor('renewal_not_due', picks.length + 1, 20_000);
      chmodSync(p.config, 0o600);
      const hups = picks.length + 1;
      expect(d.events('config_reloaded')).toHaveLength(0);
      expect(d.events('internal_error')).toHaveLength(0);
      expect(await d.stop()).toBe(0);
      const errors = d.events('config_invalid').map((e) => String(e.error));
      expect(errors.every((e) => e.startsWith('config: '))).toBe(true);
      record(task, {
        scenario: 'bad configuration (SIGHUP)',
        injected: `${hups} SIGHUPs, each with another malformed config (${picks.map((c) => c.category).join(', ')}, config file mode 0666)`,
        expected: 'daemon keeps the old configuration',
        observed: `${errors.length} config_invalid events, each followed by a check with the old config (renewal_not_due); no reload applied, no crash; SIGTERM exit 0`,
      });
    } finally {
      await d.stop();
    }
  }, 120_000);
});
