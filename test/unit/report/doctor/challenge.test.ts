import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { checkChallenge } from '../../../../agent/report/doctor/challenge.js';
import { doctorContext } from './fixture.js';

let dir: string | undefined;
let held: Server | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  held?.close();
  held = undefined;
});

async function busyPort(): Promise<number> {
  held = createServer();
  await new Promise<void>((resolve) => held!.listen(0, '127.0.0.1', resolve));
  return (held.address() as AddressInfo).port;
}

describe('doctor: challenge', () => {
  it('webroot: a document root that does not exist is reported, not created', async () => {
    const ctx = doctorContext({ challenge: { mode: 'webroot', webroot: '/nonexistent/acme' } });
    dir = ctx.dir;
    const [line] = await checkChallenge(ctx);
    expect(line).toMatchObject({ status: 'PROBLEM', reason: 'challenge' });
    expect(line?.message).toMatch(/^webroot \/nonexistent\/acme does not exist: create it/);
  });

  it('standalone: a port another process holds is a problem naming the error', async () => {
    const port = await busyPort();
    const ctx = doctorContext({ challenge: { mode: 'standalone', listen: `127.0.0.1:${port}` } });
    dir = ctx.dir;
    const [line] = await checkChallenge(ctx);
    expect(line?.status).toBe('PROBLEM');
    expect(line?.message).toMatch(new RegExp(`^cannot bind 127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\): another process`));
  });

  it('proxy: a busy listener is skipped (a renewal may hold it)', async () => {
    const port = await busyPort();
    const ctx = doctorContext({ challenge: { mode: 'proxy', listen: `127.0.0.1:${port}` } });
    dir = ctx.dir;
    const [line] = await checkChallenge(ctx);
    expect(line?.status).toBe('skip');
    expect(line?.message).toMatch(/run doctor again when no renewal is in progress$/);
  });

  it('standalone: the probe answered for every name, said once per name', async () => {
    // A port free a moment ago: the agent binds it for the probe.
    const probe = await busyPort();
    held?.close();
    held = undefined;
    const ctx = doctorContext({ challenge: { mode: 'standalone', listen: `127.0.0.1:${probe}` } });
    ctx.selfCheckPort = probe;
    dir = ctx.dir;
    expect(await checkChallenge(ctx)).toEqual([
      {
        status: 'ok',
        reason: 'challenge',
        message:
          `http://localhost/.well-known/acme-challenge/ answers from the agent on 127.0.0.1:${probe} ` +
          '(bound only while the CA validates), checked from this container as the CA fetches it',
      },
    ]);
  });
});
