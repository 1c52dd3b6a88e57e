import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { checkConsumer } from '../../../../agent/report/doctor/consumer.js';
import { doctorContext } from './fixture.js';

let dir: string | undefined;
afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

describe('doctor: proxy config', () => {
  it("is the reload target's own diagnosis", async () => {
    const ctx = doctorContext({ reload: { target: 'none' } });
    dir = ctx.dir;
    expect(await checkConsumer(ctx)).toEqual([
      { status: 'skip', reason: 'proxy config', message: 'reload.target is none' },
    ]);
  });
});
