/**
 * dns-01's publishers, their edge cases in the test process: the operator's
 * line for every answer a server can give an RFC 2136 update (made from the
 * DnsError the client throws, and end to end from a UDP server of this test
 * answering the update with an rcode), never with the key's secret in it; the
 * TSIG key file read and checked against the config; and the command
 * publisher running real shell scripts (argv, exit codes, the time limit,
 * the output's tail, the minimal environment).
 */
import { createSocket } from 'node:dgram';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  commandPublisher,
  explainUpdate,
  readTsigKey,
  rfc2136Publisher,
} from '../../../agent/challenge/dns-publish.js';
import { DnsError, type DnsServer } from '../../../agent/dns/client.js';
import { decodeMessage, encodeMessage } from '../../../agent/dns/wire.js';
import { ChallengeError, ConfigError, ExitCode } from '../../../agent/lib/errors.js';
import { tempDir } from '../../helpers/agent.js';

const SECRET = Buffer.from('3q2+7wABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGho=', 'base64');
const SECRET_B64 = SECRET.toString('base64');
const KEY = { name: 'ct-a', algorithm: 'hmac-sha256' as const, secret: SECRET };
const ZONE = 'dns.internal';
const NAME = `_acme-challenge.app.${ZONE}`;
const SERVER: DnsServer = { host: '192.0.2.53', port: 5353 };

let dir: string;
beforeAll(() => {
  dir = tempDir('cert-agent-dns-publish-');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function noSecret(text: string): void {
  expect(text).not.toContain(SECRET_B64);
  expect(text).not.toContain(SECRET_B64.replace(/=+$/, ''));
  expect(text).not.toContain(SECRET.toString('hex'));
  expect(text).not.toContain('\n');
}

describe('explainUpdate', () => {
  const keyFile = '/etc/cert-agent/tsig.key';
  const explain = (reason: DnsError['reason'], rcode?: string) =>
    explainUpdate(new DnsError(SERVER, reason, `DNS server said ${rcode ?? reason}`, rcode ? { rcode } : {}), {
      key: KEY,
      keyFile,
      zone: ZONE,
      name: NAME,
    });
  const cases: [string, DnsError['reason'], string | undefined, RegExp[]][] = [
    ['BADSIG', 'tsig', 'BADSIG', [/BADSIG/, /\/etc\/cert-agent\/tsig\.key/, /TSIG key ct-a \(hmac-sha256\)/]],
    ['BADKEY', 'tsig', 'BADKEY', [/BADKEY/, /knows no TSIG key ct-a \(hmac-sha256\)/, /challenge\.dns\.tsig\.name/]],
    ['BADTIME', 'tsig', 'BADTIME', [/BADTIME/, /clock/]],
    ['REFUSED', 'rcode', 'REFUSED', [/REFUSED/, /zone dns\.internal/, /TSIG key ct-a/, /update-policy/]],
    ['NOTAUTH', 'rcode', 'NOTAUTH', [/NOTAUTH/, /zone dns\.internal/, /challenge\.dns\.server/]],
    ['NOTZONE', 'rcode', 'NOTZONE', [/NOTZONE/, /not inside zone dns\.internal/, /challenge\.dns\.zone/]],
    ['timeout', 'timeout', undefined, [/did not answer/, /was not made/, /challenge\.dns\.server/]],
    ['unreachable', 'unreachable', undefined, [/unreachable \(nothing listens there\)/, /challenge\.dns\.server/]],
    ['another rcode', 'rcode', 'SERVFAIL', [/zone dns\.internal failed: DNS server said SERVFAIL/]],
  ];
  for (const [what, reason, rcode, said] of cases) {
    it(`${what}: the server and the record named, what to change, no secret`, () => {
      const text = explain(reason, rcode);
      expect(text.startsWith('DNS server 192.0.2.53:5353')).toBe(true);
      if (what !== 'NOTAUTH') expect(text).toContain(NAME);
      for (const re of said) expect(text).toMatch(re);
      noSecret(text);
    });
  }
});

/** A UDP server that answers every message (an update) with `rcode`, unsigned; its port. */
async function answeringUpdates(rcode: number): Promise<{ port: number; close: () => void; got: number[] }> {
  const sock = createSocket('udp4');
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  const got: number[] = [];
  sock.on('message', (buf, from) => {
    const m = decodeMessage(buf);
    got.push(m.flags.opcode);
    const answer = encodeMessage({
      ...m,
      flags: { ...m.flags, qr: true, rcode },
      answers: [],
      authority: [],
      additional: [],
    });
    sock.send(answer, from.port, from.address);
  });
  return { port: sock.address().port, close: () => sock.close(), got };
}

describe('rfc2136Publisher against a server answering with an rcode', () => {
  const settings = (port: number, zone = ZONE) => {
    const secretFile = join(dir, 'rfc2136.key');
    writeFileSync(secretFile, `key "ct-a" {\n\talgorithm hmac-sha256;\n\tsecret "${SECRET_B64}";\n};\n`, {
      mode: 0o600,
    });
    return {
      server: { host: '127.0.0.1', port },
      zone,
      tsig: { name: 'ct-a', algorithm: 'hmac-sha256' as const, secretFile },
      propagationTimeoutSeconds: 5,
      ttl: 60,
    };
  };

  for (const [rcode, name, said] of [
    [5, 'REFUSED', /answered REFUSED to the update of .* in zone dns\.internal: its policy does not let TSIG key ct-a/],
    [9, 'NOTAUTH', /answered NOTAUTH to the update of zone dns\.internal/],
    [10, 'NOTZONE', /answered NOTZONE: _acme-challenge\.app\.dns\.internal is not inside zone dns\.internal/],
  ] as const) {
    it(`${name}: a ChallengeError saying it, with the cause kept`, async () => {
      const server = await answeringUpdates(rcode);
      try {
        const publisher = rfc2136Publisher(settings(server.port));
        const err = await publisher.present(NAME, 'value').catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ChallengeError);
        expect((err as Error).message).toMatch(said);
        expect((err as Error).cause).toBeInstanceOf(DnsError);
        expect(server.got).toEqual([5]);
        noSecret((err as Error).message);
      } finally {
        server.close();
      }
    });
  }

  it('nothing listens at the server: unreachable, said in one line', async () => {
    const server = await answeringUpdates(0);
    const port = server.port;
    server.close();
    const err = await rfc2136Publisher(settings(port))
      .cleanup(NAME, 'value')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChallengeError);
    expect((err as Error).message).toMatch(
      /^DNS server 127\.0\.0\.1:\d+ is unreachable \(nothing listens there\): the update of/,
    );
    noSecret((err as Error).message);
  });
});

describe('readTsigKey', () => {
  const tsig = (
    secretFile: string,
    over: Partial<{ name: string; algorithm: 'hmac-sha256' | 'hmac-sha512' }> = {},
  ) => ({
    name: 'ct-a',
    algorithm: 'hmac-sha256' as const,
    secretFile,
    ...over,
  });
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text, { mode: 0o600 });
    return path;
  };
  const refusal = (f: () => unknown): ConfigError => {
    let err: unknown;
    try {
      f();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).exitCode).toBe(ExitCode.config);
    noSecret((err as Error).message);
    return err as ConfigError;
  };

  it("tsig-keygen's clause (any case, a trailing dot) and the bare secret both give the key", () => {
    const clause = file('clause.key', `key "CT-A." {\n\talgorithm HMAC-SHA256.;\n\tsecret "${SECRET_B64}";\n};\n`);
    expect(readTsigKey(tsig(clause))).toEqual(KEY);
    expect(readTsigKey(tsig(file('bare.key', `${SECRET_B64}\n`)))).toEqual(KEY);
  });

  it('a file naming another key: refused naming both names, field challenge.dns.tsig.name', () => {
    const path = file('other.key', `key "ct-b" { algorithm hmac-sha256; secret "${SECRET_B64}"; };\n`);
    const err = refusal(() => readTsigKey(tsig(path)));
    expect(err.field).toBe('challenge.dns.tsig.name');
    expect(err.message).toBe(
      `config: challenge.dns.tsig.name: is ct-a, but ${path} holds the key "ct-b": give the name the server knows the key by`,
    );
  });

  it('a file of another algorithm: refused, field challenge.dns.tsig.algorithm', () => {
    const path = file('algo.key', `key "ct-a" { algorithm hmac-sha512; secret "${SECRET_B64}"; };\n`);
    const err = refusal(() => readTsigKey(tsig(path)));
    expect(err.field).toBe('challenge.dns.tsig.algorithm');
    expect(err.message).toMatch(/is hmac-sha256, but .* says hmac-sha512: they must agree$/);
  });

  it('a file that is missing, or a directory: 78 naming the file', () => {
    const missing = join(dir, 'missing.key');
    expect(refusal(() => readTsigKey(tsig(missing))).message).toMatch(
      new RegExp(`^config: challenge\\.dns\\.tsig\\.secretFile: ${missing} cannot be read: .*ENOENT`),
    );
    const sub = join(dir, 'a-directory');
    mkdirSync(sub, { recursive: true });
    expect(refusal(() => readTsigKey(tsig(sub))).message).toMatch(/cannot be read: .*EISDIR/);
  });

  it('garbage: 78, one line, none of the content echoed', () => {
    const content = 'password=hunter2-Sup3rS3cret\nkey "ct-a" { secret "not base64 at all!"; };\n';
    const err = refusal(() => readTsigKey(tsig(file('garbage.key', content))));
    expect(err.field).toBe('challenge.dns.tsig.secretFile');
    for (const piece of ['hunter2', 'Sup3rS3cret', 'not base64 at all']) expect(err.message).not.toContain(piece);
  });
});

/** A process's state letter (Z: dead, waiting for its parent to reap it), or "gone". */
function stateOf(pid: number): string {
  try {
    return /^\d+ \(.*\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1] ?? 'gone';
  } catch {
    return 'gone';
  }
}

describe('commandPublisher with a real script', () => {
  const script = (name: string, body: string) => {
    const path = join(dir, name);
    writeFileSync(path, `#!/bin/sh\n${body}\n`);
    chmodSync(path, 0o755);
    return path;
  };

  it('called as `command... present|cleanup NAME VALUE`, argv kept whole, exit 0 is done', async () => {
    const log = join(dir, 'argv.log');
    const hook = script('argv.sh', `for a in "$@"; do printf '[%s]' "$a" >> ${log}; done; echo >> ${log}`);
    const publisher = commandPublisher([hook, 'first arg', '$HOME;`x`'], 5);
    expect(publisher.via).toBe('command');
    expect(await publisher.zoneOf(NAME)).toBeUndefined();
    await publisher.present(NAME, 'v a l');
    await publisher.cleanup(NAME, 'v a l');
    expect(readFileSync(log, 'utf8')).toBe(
      `[first arg][$HOME;\`x\`][present][${NAME}][v a l]\n[first arg][$HOME;\`x\`][cleanup][${NAME}][v a l]\n`,
    );
  });

  it('a non-zero exit: the code, the action and the tail of the output in one line', async () => {
    const hook = script(
      'fail.sh',
      `i=0; while [ $i -lt 200 ]; do echo "line $i"; i=$((i+1)); done; echo "provider said no" >&2; exit 3`,
    );
    const err = await commandPublisher([hook], 5)
      .present(NAME, 'v')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChallengeError);
    const message = (err as Error).message;
    expect(message).toMatch(
      new RegExp(
        `^challenge\\.dns\\.command \\["${hook}"\\] present ${NAME.replace(/\./g, '\\.')} exited 3; output: \\.\\.\\.`,
      ),
    );
    expect(message).toMatch(/provider said no$/);
    expect(message).not.toContain('line 0 ');
    expect(message).not.toContain('\n');
    expect(message.length).toBeLessThan(700);
  });

  it('killed by a signal, and a program that cannot start: said so', async () => {
    const killed = await commandPublisher([script('kill.sh', 'kill -9 $$')], 5)
      .cleanup(NAME, 'v')
      .catch((e: unknown) => e);
    expect((killed as Error).message).toMatch(
      / cleanup _acme-challenge\.app\.dns\.internal was killed by SIGKILL; output: \(none\)$/,
    );
    const missing = await commandPublisher([join(dir, 'no-such-program')], 5)
      .present(NAME, 'v')
      .catch((e: unknown) => e);
    expect((missing as Error).message).toMatch(
      / present _acme-challenge\.app\.dns\.internal could not start; output: ENOENT/,
    );
  });

  it('past its time: killed with what it started, said with the limit', async () => {
    const pidFile = join(dir, 'child.pid');
    const hook = script('slow.sh', `echo started; sleep 30 & echo $! > ${pidFile}; wait`);
    const started = Date.now();
    const err = await commandPublisher([hook], 0.5)
      .present(NAME, 'v')
      .catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(2500);
    expect((err as Error).message).toMatch(
      /did not finish within 0\.5s and was killed with everything it started; output: started$/,
    );
    const child = Number(readFileSync(pidFile, 'utf8'));
    expect(child).toBeGreaterThan(1);
    await expect.poll(() => stateOf(child), { timeout: 1000 }).toMatch(/^(gone|Z)$/);
  });

  it('a minimal environment: a variable of the agent is not seen, PATH is', async () => {
    const out = join(dir, 'env.out');
    process.env.CERT_AGENT_TEST_TOKEN = 'must-not-leak';
    try {
      await commandPublisher([script('env.sh', `env > ${out}`)], 5).present(NAME, 'v');
    } finally {
      delete process.env.CERT_AGENT_TEST_TOKEN;
    }
    expect(existsSync(out)).toBe(true);
    const seen = readFileSync(out, 'utf8');
    expect(seen).toMatch(/^PATH=/m);
    expect(seen).not.toContain('CERT_AGENT_TEST_TOKEN');
    expect(seen).not.toContain('must-not-leak');
  });
});
