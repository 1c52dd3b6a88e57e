/**
 * The layering of docs/architecture.md as `make lint` enforces it: fixture
 * files written into agent/ for the duration of a test and linted with the
 * project's own eslint.config.js. A bottom-layer file that imports the renewal
 * layer fails; two files that import each other fail; a downward import passes.
 */
import { ESLint } from 'eslint';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../../..');
const written: string[] = [];

function fixture(path: string, text: string): string {
  const file = join(root, path);
  writeFileSync(file, `/** A lint fixture, removed after the test. */\n${text}`);
  written.push(file);
  return file;
}

async function problems(...files: string[]): Promise<string[]> {
  const results = await new ESLint({ cwd: root }).lintFiles(files);
  return results.flatMap((r) => r.messages.map((m) => `${m.ruleId}: ${m.message}`));
}

afterEach(() => {
  for (const file of written.splice(0)) rmSync(file, { force: true });
});

describe('layers', () => {
  it('fails a bottom-layer file that imports the renewal layer, statically or by import()', async () => {
    const tag = process.pid;
    const file = fixture(
      `agent/lib/lint-fixture-${tag}.ts`,
      "import { renewPass } from '../renewal/pass.js';\n" +
        "export const later = () => import('../renewal/pass.js');\n" +
        'export const now = renewPass;\n',
    );
    const found = await problems(file);
    expect(found).toContainEqual(expect.stringMatching(/^no-restricted-imports: .*agent\/lib is below .*renewal/));
    expect(found).toContainEqual(expect.stringMatching(/^no-restricted-syntax: .*agent\/lib is below .*renewal/));
  });

  it('fails an import cycle inside one folder, type-only imports included', async () => {
    const tag = process.pid;
    const a = fixture(
      `agent/lib/lint-cycle-a-${tag}.ts`,
      `import type { B } from './lint-cycle-b-${tag}.js';\nexport type A = B[];\n`,
    );
    const b = fixture(
      `agent/lib/lint-cycle-b-${tag}.ts`,
      `import type { A } from './lint-cycle-a-${tag}.js';\nexport type B = A | 1;\n`,
    );
    const found = await problems(a, b);
    expect(found).toContainEqual(
      `local/no-import-cycle: import cycle: agent/lib/lint-cycle-a-${tag}.ts → agent/lib/lint-cycle-b-${tag}.ts → agent/lib/lint-cycle-a-${tag}.ts`,
    );
    expect(found.filter((p) => p.startsWith('local/no-import-cycle'))).toHaveLength(2);
  });

  it('passes an import that runs downwards', async () => {
    const file = fixture(
      `agent/pki/lint-fixture-${process.pid}.ts`,
      "import { ConfigError } from '../lib/errors.js';\nexport const error = new ConfigError('x', 'y');\n",
    );
    expect(await problems(file)).toEqual([]);
  });
});
