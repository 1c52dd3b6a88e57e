/**
 * agent/dns against a real bind9: updates signed with TSIG add and delete TXT
 * records that dig (the oracle) then sees or no longer sees, signed answers
 * verify, and every way bind9 refuses (wrong secret, unknown key, a name the
 * key may not update, a zone it does not serve, no signature) surfaces as the
 * rcode bind9 really sends. nsupdate writes a record our query reads.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  authoritativeServers,
  DnsError,
  findZone,
  query,
  updateTxt,
  type DnsServer,
  type TsigKey,
} from '../../agent/dns/client.js';
import { signMessage, verifyResponse } from '../../agent/dns/tsig.js';
import { exchange, randomId } from '../../agent/dns/transport.js';
import { CLASS, encodeMessage, TYPE } from '../../agent/dns/wire.js';
import { startBind9, type Bind9, type Bind9Key } from '../harness/bind9.js';

const ZONE = 'example.test';

function key(name: string, algorithm: TsigKey['algorithm'] = 'hmac-sha256'): Bind9Key {
  return { name, algorithm, secret: randomBytes(32).toString('base64') };
}
function tsig(k: Bind9Key): TsigKey {
  return { name: k.name, algorithm: k.algorithm, secret: Buffer.from(k.secret, 'base64') };
}

const good = key('acme-good');
const big = key('acme-512', 'hmac-sha512');
const limited = key('acme-limited');
const bigTxt = Array.from({ length: 12 }, (_, i) => `big 60 IN TXT "${String(i).padStart(3, '0')}${'x'.repeat(97)}"`);

let bind: Bind9;
let server: DnsServer;

beforeAll(async () => {
  bind = await startBind9({
    keys: [good, big, limited],
    zones: [
      {
        name: ZONE,
        records: ['www 60 IN A 192.0.2.10', 'ns2 60 IN A 192.0.2.53', ...bigTxt],
        updatePolicy: [
          `grant ${good.name} zonesub TXT`,
          `grant ${big.name} zonesub TXT`,
          `grant ${limited.name} name _acme-challenge.allowed.${ZONE}. TXT`,
        ],
      },
      { name: `child.${ZONE}`, ns: `ns2.${ZONE}`, updatePolicy: [`grant ${good.name} zonesub TXT`] },
    ],
  });
  server = bind.address;
});
afterAll(async () => {
  await bind?.stop();
});

async function digTxt(name: string): Promise<string[]> {
  const r = await bind.dig(['+norec', '+short', name, 'TXT']);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.replace(/^"|"$/g, ''));
}

function txtOf(a: Awaited<ReturnType<typeof query>>): string[] {
  return a.answers.filter((rr) => rr.type === 'TXT').map((rr) => (rr.data as string[]).join(''));
}

async function failure(p: Promise<unknown>): Promise<DnsError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DnsError);
  return err as DnsError;
}

describe('TXT updates signed with TSIG, seen by dig and by query', () => {
  it.each([
    ['hmac-sha256', good],
    ['hmac-sha512', big],
  ])('%s: add, then delete exactly that record', async (_alg, k) => {
    const name = `_acme-challenge.${k.algorithm}.${ZONE}`;
    const value = randomBytes(32).toString('base64url');
    await updateTxt(server, ZONE, { action: 'add', name, value, ttl: 60 }, tsig(k));
    await updateTxt(server, ZONE, { action: 'add', name, value: 'another', ttl: 60 }, tsig(k));
    expect((await digTxt(name)).sort()).toEqual([value, 'another'].sort());
    const signed = await query(server, name, 'TXT', { tsig: tsig(k) });
    expect(signed.rcode).toBe('NOERROR');
    expect(signed.aa).toBe(true);
    expect(txtOf(signed).sort()).toEqual([value, 'another'].sort());

    await updateTxt(server, ZONE, { action: 'delete', name, value, ttl: 60 }, tsig(k));
    expect(await digTxt(name)).toEqual(['another']);
    expect(txtOf(await query(server, name, 'TXT'))).toEqual(['another']);
    await updateTxt(server, ZONE, { action: 'delete', name, value: 'another', ttl: 60 }, tsig(k));
    expect(await digTxt(name)).toEqual([]);
    const gone = await query(server, name, 'TXT');
    expect(gone.rcode).toBe('NXDOMAIN');
    expect(gone.authority.map((rr) => rr.type)).toEqual(['SOA']);
  });

  it('reads what nsupdate -k wrote', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nsupdate-'));
    try {
      writeFileSync(
        join(dir, 'key'),
        `key "${good.name}" { algorithm ${good.algorithm}; secret "${good.secret}"; };\n`,
      );
      const name = `_acme-challenge.nsupdate.${ZONE}`;
      const script = `server ${server.host} ${server.port}\nzone ${ZONE}\nupdate add ${name} 60 TXT "from-nsupdate"\nsend\n`;
      await new Promise<void>((resolve, reject) => {
        const p = execFile('nsupdate', ['-k', join(dir, 'key')], (err, _o, stderr) =>
          err ? reject(new Error(stderr)) : resolve(),
        );
        p.stdin?.end(script);
      });
      expect(txtOf(await query(server, name, 'TXT', { tsig: tsig(good) }))).toEqual(['from-nsupdate']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('asks again over TCP when the UDP answer is truncated', async () => {
    const udp = await bind.dig(['+norec', '+ignore', '+noedns', `big.${ZONE}`, 'TXT']);
    expect(udp.stdout).toMatch(/flags: qr aa tc[ ;]/);
    const a = await query(server, `big.${ZONE}`, 'TXT', { tsig: tsig(good) });
    expect(txtOf(a).length).toBe(bigTxt.length);
    expect(bind.log()).not.toMatch(/FORMERR/);
  });
});

describe('what bind9 refuses, as DnsError', () => {
  const name = `_acme-challenge.refused.${ZONE}`;
  const change = { action: 'add' as const, name, value: 'v', ttl: 60 };

  it('a wrong secret: BADSIG, nothing written', async () => {
    const err = await failure(updateTxt(server, ZONE, change, { ...tsig(good), secret: randomBytes(32) }));
    expect(err).toMatchObject({ reason: 'tsig', rcode: 'BADSIG', server: `${server.host}:${server.port}` });
    expect(err.message).toMatch(/answered BADSIG to the update of _acme-challenge\.refused\.example\.test TXT/);
    expect(err.message).not.toContain(good.secret);
    expect(await digTxt(name)).toEqual([]);
    const q = await failure(query(server, ZONE, 'SOA', { tsig: { ...tsig(good), secret: randomBytes(32) } }));
    expect(q).toMatchObject({ reason: 'tsig', rcode: 'BADSIG' });
  });

  it('an unknown key name: BADKEY', async () => {
    const err = await failure(updateTxt(server, ZONE, change, { ...tsig(good), name: 'nobody-knows' }));
    expect(err).toMatchObject({ reason: 'tsig', rcode: 'BADKEY' });
  });

  it('a request signed 1000 s ago: BADTIME', async () => {
    const msg = encodeMessage({
      id: randomId(),
      flags: { qr: false, opcode: 0, aa: false, tc: false, rd: false, ra: false, rcode: 0 },
      questions: [{ name: ZONE, type: TYPE.SOA, class: CLASS.IN }],
      answers: [],
      authority: [],
      additional: [],
    });
    const now = Math.floor(Date.now() / 1000);
    const signed = signMessage(msg, tsig(good), { timeSigned: now - 1000 });
    const resp = await exchange(server, signed.signed);
    expect(verifyResponse(resp, signed.mac, tsig(good), now)).toMatchObject({ ok: false, tsigError: 'BADTIME' });
  });

  it('a name the key may not update: REFUSED; the name it may: done', async () => {
    const err = await failure(updateTxt(server, ZONE, change, tsig(limited)));
    expect(err).toMatchObject({ reason: 'rcode', rcode: 'REFUSED' });
    expect(err.message).toBe(
      `DNS server ${server.host}:${server.port} answered REFUSED to the update of ${name} TXT in zone ${ZONE}`,
    );
    const allowed = `_acme-challenge.allowed.${ZONE}`;
    await updateTxt(server, ZONE, { ...change, name: allowed }, tsig(limited));
    expect(await digTxt(allowed)).toEqual(['v']);
  });

  it('an unsigned update: REFUSED', async () => {
    expect(await failure(updateTxt(server, ZONE, change))).toMatchObject({ reason: 'rcode', rcode: 'REFUSED' });
  });

  it('a zone the server does not serve: NOTAUTH', async () => {
    const err = await failure(
      updateTxt(server, 'elsewhere.test', { ...change, name: '_acme-challenge.elsewhere.test' }, tsig(good)),
    );
    expect(err).toMatchObject({ reason: 'rcode', rcode: 'NOTAUTH' });
  });

  it('a name outside the zone given: NOTZONE', async () => {
    const err = await failure(
      updateTxt(server, ZONE, { ...change, name: '_acme-challenge.elsewhere.test' }, tsig(good)),
    );
    expect(err).toMatchObject({ reason: 'rcode', rcode: 'NOTZONE' });
  });
});

describe('a server that does not answer', () => {
  let swallow: Socket;
  beforeAll(async () => {
    swallow = createSocket('udp4');
    await new Promise<void>((resolve) => swallow.bind(0, '127.0.0.1', resolve));
  });
  afterAll(() => swallow.close());

  it('times out after 2 tries within the bound', async () => {
    const port = swallow.address().port;
    let got = 0;
    swallow.on('message', () => (got += 1));
    const start = Date.now();
    const err = await failure(query({ host: '127.0.0.1', port }, ZONE, 'SOA', { timeoutMs: 300 }));
    const took = Date.now() - start;
    expect(err).toMatchObject({ reason: 'timeout', server: `127.0.0.1:${port}` });
    expect(err.message).toBe(
      `DNS server 127.0.0.1:${port} did not answer the query of ${ZONE} SOA within 0.3 s (UDP, 2 tries)`,
    );
    expect(got).toBe(2);
    expect(took).toBeGreaterThanOrEqual(590);
    expect(took).toBeLessThan(5000); // two tries of 0.3 s, with room for a busy machine
  });

  it('a port nobody listens on: unreachable at once', async () => {
    const port = swallow.address().port;
    const closed = createSocket('udp4');
    await new Promise<void>((resolve) => closed.bind(0, '127.0.0.1', resolve));
    const deadPort = closed.address().port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    expect(deadPort).not.toBe(port);
    const err = await failure(query({ host: '127.0.0.1', port: deadPort }, ZONE, 'SOA', { timeoutMs: 2000 }));
    // Linux answers with ICMP port unreachable, which the connected socket reports.
    expect(err.reason).toBe('unreachable');
    expect(err.message).toBe(
      `DNS server 127.0.0.1:${deadPort} could not be reached for the query of ${ZONE} SOA over UDP (nothing listens there)`,
    );
  });
});

describe('zones and their servers', () => {
  it('findZone: the zone of a deep name, and of a name in a zone below', async () => {
    expect(await findZone(server, `_acme-challenge.a.b.c.${ZONE}`)).toBe(ZONE);
    expect(await findZone(server, `www.${ZONE}`)).toBe(ZONE);
    expect(await findZone(server, `_acme-challenge.x.child.${ZONE}`)).toBe(`child.${ZONE}`);
    expect(await findZone(server, `child.${ZONE}`)).toBe(`child.${ZONE}`);
    const err = await failure(findZone(server, 'a.elsewhere.test'));
    expect(err.message).toMatch(/serves no zone that holds a\.elsewhere\.test/);
  });

  it('authoritativeServers: the NS with its glue keeps the port asked; another NS gets port 53', async () => {
    expect(await authoritativeServers(server, ZONE)).toEqual([
      { name: `ns1.${ZONE}`, host: '127.0.0.1', port: server.port },
    ]);
    expect(await authoritativeServers(server, `child.${ZONE}`)).toEqual([
      { name: `ns2.${ZONE}`, host: '192.0.2.53', port: 53 },
    ]);
    expect(await failure(authoritativeServers(server, 'elsewhere.test'))).toMatchObject({ rcode: 'REFUSED' });
  });
});

describe('over IPv6, and inside a network namespace', () => {
  it('updates and reads a server on ::1', async () => {
    const k = key('acme-v6');
    const v6 = await startBind9({
      host: '::1',
      keys: [k],
      zones: [{ name: ZONE, updatePolicy: [`grant ${k.name} zonesub TXT`] }],
    });
    try {
      const name = `_acme-challenge.v6.${ZONE}`;
      await updateTxt(v6.address, ZONE, { action: 'add', name, value: 'six', ttl: 60 }, tsig(k));
      expect(txtOf(await query(v6.address, name, 'TXT', { tsig: tsig(k) }))).toEqual(['six']);
      expect(await authoritativeServers(v6.address, ZONE)).toEqual([
        { name: `ns1.${ZONE}`, host: '::1', port: v6.address.port },
      ]);
      const err = await failure(updateTxt(v6.address, ZONE, { action: 'add', name, value: 'x', ttl: 60 }));
      expect(err.server).toBe(`[::1]:${v6.address.port}`);
    } finally {
      await v6.stop();
    }
  });

  it('runs in a namespace on port 53 of the address the test gives', async () => {
    const ns = `certagent-${process.pid}-dns`;
    const sh = (...argv: string[]): Promise<void> =>
      new Promise((resolve, reject) =>
        execFile(argv[0] as string, argv.slice(1), (err) => (err ? reject(err) : resolve())),
      );
    await sh('ip', 'netns', 'add', ns);
    try {
      await sh('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
      await sh('ip', 'netns', 'exec', ns, 'ip', 'addr', 'add', '10.213.99.53/32', 'dev', 'lo');
      const inNs = await startBind9({ ns, host: '10.213.99.53', zones: [{ name: ZONE }] });
      try {
        expect(inNs.address).toEqual({ host: '10.213.99.53', port: 53 });
        const r = await inNs.dig(['+norec', '+short', ZONE, 'SOA']);
        expect(r.stdout).toMatch(/^ns1\.example\.test\. hostmaster\.example\.test\. 1 /);
      } finally {
        await inNs.stop();
      }
    } finally {
      await sh('ip', 'netns', 'delete', ns);
    }
  });
});
