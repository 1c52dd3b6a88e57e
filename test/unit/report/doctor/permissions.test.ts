import { chmodSync, mkdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkPermissions } from '../../../../agent/report/doctor/permissions.js';
import { SETS_DIR } from '../../../../agent/store/layout.js';
import { doctorContext } from './fixture.js';

let dir: string | undefined;
afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

const asRoot = process.getuid?.() === 0;

describe.runIf(asRoot)('doctor: permissions', () => {
  it('counts private paths, reports a readable account key, and --fix narrows it', async () => {
    const ctx = doctorContext();
    dir = ctx.dir;
    const key = join(ctx.config.stateDir, 'account.key');
    writeFileSync(key, 'k', { mode: 0o600 });
    expect(await checkPermissions(ctx)).toEqual([
      { status: 'ok', reason: 'permissions', message: '2 path(s) private and owned as configured' },
    ]);
    chmodSync(key, 0o644);
    expect(await checkPermissions(ctx)).toEqual([
      {
        status: 'PROBLEM',
        reason: 'ACME account key',
        message: `${key} is readable by group and others (mode 0644, want 0600): run cert-agent doctor --fix`,
      },
      { status: 'ok', reason: 'permissions', message: '1 path(s) private and owned as configured' },
    ]);
    const fixed = await checkPermissions({ ...ctx, fix: true });
    expect(fixed[0]).toEqual({ status: 'FIXED', reason: 'ACME account key', message: `${key}: mode 0644 -> 0600` });
    expect(statSync(key).mode & 0o777).toBe(0o600);
  });

  it('never follows a link where the agent keeps a directory', async () => {
    const ctx = doctorContext();
    dir = ctx.dir;
    mkdirSync(ctx.config.certificate.dir, { mode: 0o700 });
    mkdirSync(join(ctx.dir, 'elsewhere'), { mode: 0o755 });
    symlinkSync(join(ctx.dir, 'elsewhere'), join(ctx.config.certificate.dir, SETS_DIR));
    const lines = await checkPermissions({ ...ctx, fix: true });
    expect(lines[0]).toMatchObject({ status: 'PROBLEM', reason: 'certificate sets directory' });
    expect(lines[0]?.message).toMatch(/not the agent's: not followed, not changed/);
    expect(statSync(join(ctx.dir, 'elsewhere')).mode & 0o777).toBe(0o755);
  });
});
