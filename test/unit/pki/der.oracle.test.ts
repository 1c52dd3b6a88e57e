/**
 * The hand-written CSR encoder against two independent parsers, over
 * thousands of generated name sets: every request must parse with
 * @peculiar/x509, carry exactly the names asked for (DNS names as written, IP
 * addresses as the same 4 or 16 bytes), the key's public key and a signature
 * that verifies; a sample of them must also pass `openssl req -verify`.
 * The generator is a seeded PRNG, so a failure names a seed that reproduces it.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { execFileSync } from 'node:child_process';
import { createPublicKey, webcrypto } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identifierProblem } from '../../../agent/config/values.js';
import type { KeyType } from '../../../agent/pki/keys.js';
import { createCsr } from '../../../agent/pki/der.js';
import { generateKeyPem } from '../../../agent/pki/keys.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const SEED = Number(process.env.CERT_AGENT_PROPERTY_SEED ?? 0x5eed);
const SETS = Number(process.env.CERT_AGENT_PROPERTY_SETS ?? 2000);
const OPENSSL_SAMPLE = 60;
/** Keys per type: RSA keys are slow to make, so few of them are reused across many sets. */
const KEY_POOL: Record<KeyType, number> = { 'ec-p256': 8, 'ec-p384': 4, 'rsa-2048': 2, 'rsa-3072': 1, 'rsa-4096': 1 };
/** How often each key type signs a set: RSA is slow to sign, so it gets a smaller share. */
const KEY_SHARE: [KeyType, number][] = [
  ['ec-p256', 0.6],
  ['ec-p384', 0.25],
  ['rsa-2048', 0.08],
  ['rsa-3072', 0.04],
  ['rsa-4096', 0.03],
];

const dir = mkdtempSync(join(tmpdir(), 'cert-agent-der-oracle-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** sfc32: small, seedable, good enough to spread test cases. */
function prng(seed: number): () => number {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed >>> 0;
  const next = () => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 15; i++) next();
  return next;
}

class Gen {
  constructor(readonly rnd: () => number) {}
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.rnd() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(0, xs.length - 1)] as T;
  }
  chance(p: number): boolean {
    return this.rnd() < p;
  }

  label(len: number): string {
    const inner = 'abcdefghijklmnopqrstuvwxyz0123456789-';
    const edge = 'abcdefghijklmnopqrstuvwxyz0123456789';
    let s = '';
    for (let i = 0; i < len; i++) s += this.pick([...(i === 0 || i === len - 1 ? edge : inner)]);
    return s;
  }

  /** A DNS name: short ones, 63-character labels, names close to 253 characters. */
  dns(maxLength = 253): string {
    const shape = this.int(0, 3);
    const labels: string[] = [];
    if (shape === 0) for (let i = this.int(1, 4); i > 0; i--) labels.push(this.label(this.int(1, 12)));
    else if (shape === 1) for (let i = this.int(1, 3); i > 0; i--) labels.push(this.label(this.pick([62, 63])));
    else {
      // Fill towards the length limit with labels of any size.
      const target = this.int(Math.min(64, maxLength), maxLength);
      while (true) {
        const len = Math.min(63, this.int(1, 63), target - labels.join('.').length - (labels.length ? 1 : 0));
        if (len < 1) break;
        labels.push(this.label(len));
      }
    }
    const name = labels.join('.');
    return name.length > maxLength ? name.slice(0, maxLength).replace(/[.-]+$/, '') || 'a' : name;
  }

  ipv4(): string {
    return [this.int(0, 255), this.int(0, 255), this.int(0, 255), this.int(0, 255)].join('.');
  }

  /** IPv6 in every textual form: full, leading zeros, upper case, any `::` compression. */
  ipv6(): string {
    const groups = Array.from({ length: 8 }, () => (this.chance(0.35) ? 0 : this.int(0, 0xffff)));
    if (this.chance(0.3)) {
      const start = this.int(0, 7);
      const end = this.int(start, 7);
      for (let i = start; i <= end; i++) groups[i] = 0;
    }
    const padded = this.chance(0.2);
    const upper = this.chance(0.3);
    const hex = groups.map((g) => {
      const h = g.toString(16);
      return padded ? h.padStart(4, '0') : h;
    });
    let text = hex.join(':');
    if (this.chance(0.7)) {
      // Compress one run of zero groups (any run, not only the longest: all are valid input).
      const runs: [number, number][] = [];
      for (let i = 0; i < 8; i++) {
        if (groups[i] !== 0) continue;
        let j = i;
        while (j + 1 < 8 && groups[j + 1] === 0) j++;
        runs.push([i, j]);
        i = j;
      }
      if (runs.length) {
        const [s, e] = this.pick(runs);
        text = `${hex.slice(0, s).join(':')}::${hex.slice(e + 1).join(':')}`;
      }
    }
    return upper ? text.toUpperCase() : text;
  }

  /** 1 to 100 distinct names; the first one (the CN) at most 64 characters. */
  names(): string[] {
    const count = this.chance(0.04) ? this.int(50, 100) : this.int(1, 8);
    const out = new Set<string>();
    while (out.size < count) {
      const kind = this.int(0, 9);
      const first = out.size === 0;
      out.add(kind < 6 ? this.dns(first ? 64 : 253) : kind < 8 ? this.ipv4() : this.ipv6());
    }
    return [...out];
  }
}

/** One canonical text per address (WHATWG URL host serialisation), whatever form it was written in. */
function canonicalIp(ip: string): string {
  return isIP(ip) === 6 ? new URL(`http://[${ip}]/`).hostname : new URL(`http://${ip}/`).hostname;
}

function expectedSans(names: string[]): string[] {
  return names.map((n) => (isIP(n) ? `ip:${canonicalIp(n)}` : `dns:${n}`));
}

/** The request's subjectAltName entries, read through the library's own decoder. */
function sanItems(csr: x509.Pkcs10CertificateRequest): readonly x509.GeneralName[] {
  const raw = csr.getExtension('2.5.29.17');
  return raw ? new x509.SubjectAlternativeNameExtension(raw.rawData).names.items : [];
}

function sansOf(csr: x509.Pkcs10CertificateRequest): string[] {
  return sanItems(csr).map((n) => (n.type === 'ip' ? `ip:${canonicalIp(n.value)}` : `${n.type}:${n.value}`));
}

function pickKey(g: Gen): Key {
  let r = g.rnd();
  const [type] = KEY_SHARE.find(([, share]) => (r -= share) < 0) ?? KEY_SHARE[0]!;
  return g.pick(keys.filter((k) => k.type === type));
}

interface Key {
  type: KeyType;
  pem: string;
  spki: Buffer;
}
const keys: Key[] = [];

beforeAll(async () => {
  for (const [type, n] of Object.entries(KEY_POOL) as [KeyType, number][]) {
    const pems = await Promise.all(Array.from({ length: n }, () => generateKeyPem(type)));
    for (const pem of pems)
      keys.push({ type, pem, spki: createPublicKey(pem).export({ type: 'spki', format: 'der' }) });
  }
}, 120_000);

describe('createCsr against @peculiar/x509 and openssl (generated name sets)', () => {
  it(`${SETS} name sets over every key type: parse, names, public key, signature (seed ${SEED})`, async () => {
    const g = new Gen(prng(SEED));
    const perType = new Map<KeyType, number>();
    const sample: { file: string; names: string[] }[] = [];
    let ipv6Count = 0;
    let longLabels = 0;
    let maxSans = 0;
    for (let i = 0; i < SETS; i++) {
      const names = g.names();
      for (const n of names) expect(identifierProblem(n), `generator made an invalid name ${n}`).toBeUndefined();
      const key = pickKey(g);
      perType.set(key.type, (perType.get(key.type) ?? 0) + 1);
      ipv6Count += names.filter((n) => isIP(n) === 6).length;
      longLabels += names.filter((n) => n.split('.').some((l) => l.length === 63)).length;
      maxSans = Math.max(maxSans, names.length);
      const der = createCsr(names, key.pem);
      const where = `set ${i} (seed ${SEED}, ${key.type}): ${JSON.stringify(names).slice(0, 300)}`;
      const csr = new x509.Pkcs10CertificateRequest(new Uint8Array(der));
      const sans = sansOf(csr);
      const want = expectedSans(names);
      // expect() only on a mismatch: thousands of deep comparisons through it cost seconds.
      if (sans.join('\n') !== want.join('\n')) expect(sans, where).toEqual(want);
      if (csr.subject !== `CN=${names[0]}`) expect(csr.subject, where).toBe(`CN=${names[0]}`);
      if (!Buffer.from(csr.publicKey.rawData).equals(key.spki)) expect.fail(`${where}: public key differs`);
      if (!(await csr.verify())) expect.fail(`${where}: signature does not verify`);
      if (
        sample.length < OPENSSL_SAMPLE &&
        (i % Math.max(1, Math.floor(SETS / OPENSSL_SAMPLE)) === 0 || key.type.startsWith('rsa'))
      ) {
        const file = join(dir, `${i}.csr`);
        writeFileSync(file, der);
        sample.push({ file, names });
      }
    }
    // The generator really covered what it claims to.
    for (const type of Object.keys(KEY_POOL)) expect(perType.get(type as KeyType), type).toBeGreaterThan(0);
    expect(ipv6Count).toBeGreaterThan(SETS / 4);
    expect(longLabels).toBeGreaterThan(SETS / 10);
    if (SETS >= 1000) expect(maxSans).toBeGreaterThanOrEqual(90);
    expect(sample.length).toBe(Math.min(OPENSSL_SAMPLE, SETS));

    for (const { file, names } of sample) {
      const text = execFileSync('openssl', ['req', '-inform', 'der', '-in', file, '-noout', '-verify', '-text'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const san = /X509v3 Subject Alternative Name:\s*\n\s*(.*)\n/.exec(text)?.[1] ?? '';
      const listed = san.split(', ').map((e) => {
        const [kind, value = ''] = e.split(/:(.*)/s) as [string, string?];
        return kind === 'IP Address' ? `ip:${canonicalIp(value)}` : `dns:${value}`;
      });
      expect(listed, file).toEqual(expectedSans(names));
    }
  }, 180_000);

  it('omits the CN when the first name is longer than 64 characters (the DN limit) and keeps every SAN', async () => {
    const key = keys.find((k) => k.type === 'ec-p256')!;
    const long = `${'a'.repeat(63)}.${'b'.repeat(20)}.example`;
    const names = [long, 'short.example'];
    const csr = new x509.Pkcs10CertificateRequest(new Uint8Array(createCsr(names, key.pem)));
    expect(sansOf(csr)).toEqual(expectedSans(names));
    expect(await csr.verify()).toBe(true);
    expect(csr.subject).not.toContain(long);
    expect(csr.subject).not.toMatch(/CN=/);
  });

  it('refuses an IPv4-mapped IPv6 address at validation, or encodes it as its 16 bytes', async () => {
    const key = keys.find((k) => k.type === 'ec-p256')!;
    for (const mapped of ['::ffff:1.2.3.4', '::ffff:10.0.0.5', '64:ff9b::192.0.2.33']) {
      if (identifierProblem(mapped) !== undefined) continue;
      const csr = new x509.Pkcs10CertificateRequest(new Uint8Array(createCsr(['app.example', mapped], key.pem)));
      const ip = sanItems(csr).find((n) => n.type === 'ip');
      expect(ip && canonicalIp(ip.value), mapped).toBe(canonicalIp(mapped));
      expect(await csr.verify()).toBe(true);
    }
  });
});
