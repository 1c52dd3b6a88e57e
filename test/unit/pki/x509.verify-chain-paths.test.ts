/**
 * Path building and the validity window in verifyChain, with openssl as the
 * oracle: the verdict does not depend on the order of the bundle when one
 * order leads to the pinned root (openssl takes the first fitting issuer and
 * is itself order-dependent), the search is bounded, and the last second of
 * a certificate is judged by one rule (RFC 5280: valid through notAfter) in
 * verifyChain and in assessSet alike.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assessSet } from '../../../agent/pki/assess.js';
import { verifyChain } from '../../../agent/pki/x509.js';
import { INT, ROOT, leafExt, mint, verdicts } from '../../helpers/chain-oracle.js';
import type { Made } from '../../harness/pki.js';

let dir: string;
let root: Made;
let int: Made;
const make = (cn: string, ext: string[], issuer?: Made, opts = {}) => mint(dir, cn, ext, issuer, opts);
const x509 = (m: Made) => new X509Certificate(m.pem);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cert-agent-paths-'));
  // The CAs outlive every leaf, so a leaf's last second is the chain's.
  root = await make('Root', ROOT, undefined, { days: 60 });
  int = await make('Intermediate', INT, root, { days: 60 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('path building', () => {
  it('finds the path to the pinned root in either order of the bundle', async () => {
    // The same intermediate (subject and key) certified by the pinned root and by an unknown one.
    const stranger = await make('Stranger Root', ROOT);
    const shared = { key: int.key, subject: '/O=cert-agent tests/CN=Intermediate' };
    const dead = await make('Intermediate', INT, stranger, shared);
    const leaf = await make('www.example.test', leafExt('DNS:www.example.test'), int);
    const good = await verdicts(dir, root, [int, dead], leaf);
    expect(good).toEqual({ openssl: true, agent: true });
    const reversed = await verdicts(dir, root, [dead, int], leaf);
    expect(reversed.agent).toBe(true);
  });

  it('tries the other issuer when the first one breaks a rule on the way', async () => {
    const shared = { key: int.key, subject: '/O=cert-agent tests/CN=Intermediate' };
    const clientOnly = await make('Intermediate', [...INT, 'extendedKeyUsage = clientAuth'], root, shared);
    const leaf = await make('www.example.test', leafExt('DNS:www.example.test'), int);
    expect((await verdicts(dir, root, [int, clientOnly], leaf)).agent).toBe(true);
    expect((await verdicts(dir, root, [clientOnly, int], leaf)).agent).toBe(true);
    const only = await verdicts(dir, root, [clientOnly], leaf);
    expect(only).toMatchObject({ openssl: false, agent: false });
    expect(only.problem).toMatch(/lacks serverAuth/);
  });

  it('matches an issuer name as openssl does, with case and spaces folded', async () => {
    const folded = await make('Intermediate', INT, root, {
      key: int.key,
      subject: '/O=Cert-Agent  Tests/CN=INTERMEDIATE',
    });
    const leaf = await make('www.example.test', leafExt('DNS:www.example.test'), int);
    expect(await verdicts(dir, root, [folded], leaf)).toEqual({ openssl: true, agent: true });
  });

  it('stays bounded among many candidate issuers that lead nowhere', async () => {
    const shared = { key: int.key, subject: '/O=cert-agent tests/CN=Intermediate' };
    const strangers: Made[] = [];
    for (let i = 0; i < 12; i++) strangers.push(await make('Intermediate', INT, await make(`S${i}`, ROOT), shared));
    const leaf = await make('www.example.test', leafExt('DNS:www.example.test'), int);
    const t = Date.now();
    const v = verifyChain(x509(leaf), [...strangers, int].map(x509), [x509(root)], new Date());
    expect(v).toHaveProperty('root');
    expect(Date.now() - t).toBeLessThan(2000);
    const none = verifyChain(x509(leaf), strangers.map(x509), [x509(root)], new Date());
    expect('problem' in none && none.problem).toMatch(/no issuer found/);
  });
});

describe('path building among certificates that all issue each other', () => {
  it('gives up within a bounded number of steps', async () => {
    // Twelve self-signed certificates with one subject and one key: each verifies as the issuer of every other.
    const opts = { key: int.key, subject: '/O=cert-agent tests/CN=Intermediate' };
    const loop: Made[] = [];
    for (let i = 0; i < 12; i++) loop.push(await make('Intermediate', ROOT, undefined, opts));
    const leaf = await make('www.example.test', leafExt('DNS:www.example.test'), int);
    const stranger = await make('Stranger Root', ROOT);
    const t = Date.now();
    const v = verifyChain(x509(leaf), loop.map(x509), [x509(stranger)], new Date());
    expect(Date.now() - t).toBeLessThan(2000);
    expect(v).toHaveProperty('problem');
    expect(verifyChain(x509(leaf), [...loop, int].map(x509), [x509(root)], new Date())).toHaveProperty('root');
  });
});

describe('the last second of a certificate', () => {
  it('is valid through notAfter in verifyChain and assessSet alike, expired one second later', async () => {
    const leaf = await make('www.example.test', leafExt('DNS:www.example.test'), int);
    const cert = x509(leaf);
    const notAfter = new Date(cert.validTo);
    const before = new Date(notAfter.getTime() - 1000);
    const after = new Date(notAfter.getTime() + 1000);
    // openssl agrees on both sides of the edge (at the edge itself it already says expired).
    expect(await verdicts(dir, root, [int], leaf, { attime: before })).toEqual({ openssl: true, agent: true });
    expect(await verdicts(dir, root, [int], leaf, { attime: after })).toMatchObject({ openssl: false, agent: false });
    const set = { keyPem: readFileSync(leaf.key, 'utf8'), cert, intermediates: [x509(int)], placeholder: false };
    const at = (now: Date) => assessSet(set, { domains: ['www.example.test'], roots: [x509(root)], now });
    expect(verifyChain(cert, [x509(int)], [x509(root)], notAfter)).toHaveProperty('root');
    expect(at(notAfter).findings).toEqual([]);
    expect(at(after).findings.map((f) => f.code)).toEqual(['expired']);
    expect(verifyChain(cert, [x509(int)], [x509(root)], after)).toHaveProperty('problem');
  });
});
