/**
 * Name constraints in verifyChain against `openssl verify -x509_strict
 * -purpose sslserver`: kinds of constraint the leaf has no names of cannot
 * refuse it; directory-name and e-mail constraints apply to the names that
 * carry them (the subject, e-mail addresses); a wildcard that could stand
 * for an excluded name is refused (stricter than openssl 3.0, on purpose);
 * and the work is bounded: openssl's limit on names × constraints, and a
 * CA with thousands of constraints costs no more than a few milliseconds.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../../../agent/pki/x509.js';
import { INT, ROOT, leafExt, mint, verdicts } from '../../helpers/chain-oracle.js';
import type { Made } from '../../harness/pki.js';

let dir: string;
let root: Made;
const make = (cn: string, ext: string[], issuer?: Made, opts = {}) => mint(dir, cn, ext, issuer, opts);
const both = (ok: boolean) => ({ openssl: ok, agent: ok });
/** An intermediate under root with these nameConstraints (and extra config sections). */
const constrained = (nc: string, sections: string[] = []) =>
  make('Constrained', [...INT, `nameConstraints = critical, ${nc}`, ...sections], root);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cert-agent-nc-'));
  root = await make('Root', ROOT);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a wildcard under an excluded DNS name', () => {
  it('is refused where it could stand for the excluded name (openssl 3.0 accepts it)', async () => {
    const nc = await constrained('permitted;DNS:example.com, excluded;DNS:bar.example.com');
    const wild = await make('*.example.com', leafExt('DNS:*.example.com'), nc);
    const v = await verdicts(dir, root, [nc], wild);
    expect(v).toMatchObject({ openssl: true, agent: false });
    expect(v.problem).toMatch(/\*\.example\.com .*name constraints/);
    // Wildcards that cannot stand for bar.example.com stay accepted.
    for (const san of ['DNS:*.foo.example.com', 'DNS:www.example.com']) {
      const ok = await make('ok', leafExt(san), nc);
      expect({ san, ...(await verdicts(dir, root, [nc], ok)) }).toEqual({ san, ...both(true) });
    }
    const dotted = await constrained('excluded;DNS:.example.com');
    const wild2 = await make('*.example.com', leafExt('DNS:*.example.com'), dotted);
    expect(await verdicts(dir, root, [dotted], wild2)).toMatchObject(both(false));
  });
});

describe('constraints on kinds of names the leaf does not carry', () => {
  it('do not refuse a leaf with DNS names only', async () => {
    const kinds = [
      'permitted;email:.example.com',
      'excluded;email:bad@example.com',
      'permitted;URI:.example.com',
      'permitted;otherName:1.3.6.1.4.1.55555.2;UTF8:x',
      'permitted;DNS:example.test, permitted;email:example.test, excluded;URI:bad.example.test',
    ];
    for (const nc of kinds) {
      const ca = await constrained(nc);
      const leaf = await make('www.example.test', leafExt('DNS:www.example.test'), ca);
      expect({ nc, ...(await verdicts(dir, root, [ca], leaf)) }).toEqual({ nc, ...both(true) });
    }
  });

  it('apply where the leaf carries such names: e-mail addresses, in the SAN and in the subject', async () => {
    const ca = await constrained('permitted;email:.example.test');
    const inSan = await make('a.example.test', leafExt('DNS:a.example.test, email:someone@other.test'), ca);
    expect(await verdicts(dir, root, [ca], inSan)).toMatchObject(both(false));
    const good = await make('a.example.test', leafExt('DNS:a.example.test, email:someone@mail.example.test'), ca);
    expect(await verdicts(dir, root, [ca], good)).toEqual(both(true));
    const subject = '/emailAddress=someone@other.test/CN=a.example.test';
    const inSubject = await make('a.example.test', leafExt('DNS:a.example.test'), ca, { subject });
    expect(await verdicts(dir, root, [ca], inSubject)).toMatchObject(both(false));
  });

  it('directory-name constraints apply to the subject of every certificate below', async () => {
    const ca = await constrained('permitted;dirName:dir_sect', ['[dir_sect]', 'O = cert-agent tests']);
    const inside = await make('a.example.test', leafExt('DNS:a.example.test'), ca);
    expect(await verdicts(dir, root, [ca], inside)).toEqual(both(true));
    const caseAndSpace = '/O=Cert-Agent   Tests /CN=b.example.test';
    const folded = await make('b.example.test', leafExt('DNS:b.example.test'), ca, { subject: caseAndSpace });
    expect(await verdicts(dir, root, [ca], folded)).toEqual(both(true));
    const outside = await make('c.example.test', leafExt('DNS:c.example.test'), ca, { subject: '/O=Other/CN=c' });
    const v = await verdicts(dir, root, [ca], outside);
    expect(v).toMatchObject(both(false));
    expect(v.problem).toMatch(/name constraints/);
    const excl = await constrained('excluded;dirName:dir_sect', ['[dir_sect]', 'O = cert-agent tests']);
    const below = await make('d.example.test', leafExt('DNS:d.example.test'), excl, {
      subject: '/O=cert-agent TESTS/OU=x/CN=d',
    });
    expect(await verdicts(dir, root, [excl], below)).toMatchObject(both(false));
  });
});

describe('the work name constraints cost is bounded', () => {
  it('refuses more than 2^20 names × constraints, as openssl does', async () => {
    const many = Array.from({ length: 1100 }, (_, i) => `permitted;DNS:n${i}.example.test`).join(', ');
    const ca = await constrained(many);
    const names = Array.from({ length: 1000 }, (_, i) => `DNS:h${i}.n${i}.example.test`).join(', ');
    const leaf = await make('h0.n0.example.test', leafExt(names), ca);
    const v = await verdicts(dir, root, [ca], leaf);
    expect(v).toMatchObject(both(false));
    expect(v.problem).toMatch(/too many/);
  });

  it('checks a leaf below 2,048 DNS and 2,048 IP constraints in a few milliseconds of CPU (100 names of each)', async () => {
    const dns = Array.from({ length: 2048 }, (_, i) => `${i % 2 ? 'excluded' : 'permitted'};DNS:n${i}.example.test`);
    const ip = Array.from({ length: 2048 }, (_, i) => `permitted;IP:10.${i >> 8}.${i & 255}.0/255.255.255.0`);
    const ca = await constrained([...dns, ...ip].join(', '));
    const dnsNames = Array.from({ length: 100 }, (_, i) => `DNS:h${i}.n${i * 2}.example.test`);
    const names = [...dnsNames, ...Array.from({ length: 100 }, (_, i) => `IP:10.7.${i * 2}.1`)].join(', ');
    const leaf = await make('h0.n0.example.test', leafExt(names), ca);
    const runs: number[] = [];
    // The first runs warm the JIT up; the median of the nine after them counts.
    for (let i = 0; i < 14; i++) {
      // Fresh objects each time, as each check reads the files anew: reading the constraints counts too.
      const [l, c, r] = [leaf, ca, root].map((m) => new X509Certificate(m.pem)) as [
        X509Certificate,
        X509Certificate,
        X509Certificate,
      ];
      // CPU time, not wall time: other processes on a busy machine do not count.
      const t = process.cpuUsage();
      expect(verifyChain(l, [c], [r], new Date())).toHaveProperty('root');
      const used = process.cpuUsage(t);
      if (i >= 5) runs.push((used.user + used.system) / 1000);
    }
    const median = runs.sort((a, b) => a - b)[4]!;
    console.log(`median of 9 checks below 4,096 constraints: ${median.toFixed(2)} ms of CPU`);
    expect(median).toBeLessThan(30);
  });
});
