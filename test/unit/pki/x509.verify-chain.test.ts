/**
 * verifyChain against openssl as the oracle: chains minted with openssl that
 * break one rule a TLS client enforces (pathLen, name constraints, extended
 * key usage, unknown critical extensions, an issuer that is not a CA) and
 * well-formed ones, each checked by
 * `openssl verify -x509_strict -purpose sslserver -CAfile root -untrusted chain leaf`
 * and by verifyChain, which must reach the same verdict. -partial_chain is
 * not used: the agent's anchors are always self-signed roots. Apart from the
 * rule a case breaks, every certificate is what -x509_strict asks for (key
 * identifiers, critical basicConstraints, keyUsage on CAs), so a verdict of
 * openssl is about that rule.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../../../agent/pki/x509.js';
import { makeCert, opensslIn as openssl, type Made } from '../../harness/pki.js';

let dir: string;
let n = 0;

const ROOT = [
  'basicConstraints = critical, CA:TRUE',
  'keyUsage = critical, keyCertSign, cRLSign',
  'subjectKeyIdentifier = hash',
];
const INT = [...ROOT, 'authorityKeyIdentifier = keyid:always'];
const LEAF = [
  'basicConstraints = critical, CA:FALSE',
  'keyUsage = critical, digitalSignature',
  'extendedKeyUsage = serverAuth',
  'subjectKeyIdentifier = hash',
  'authorityKeyIdentifier = keyid:always',
];
/** INT with `line` in place of the line for the same extension. */
const intWith = (line: string) => [...INT.filter((l) => !l.startsWith(line.split(' ')[0]!)), line];
const leafWith = (line: string) => LEAF.map((l) => (l.startsWith(line.split(' ')[0]!) ? line : l));

const make = (cn: string, ext: string[], issuer?: Made) => makeCert(dir, cn, ext, issuer);

/** openssl's verdict and verifyChain's on leaf + chain to root. */
interface Verdicts {
  openssl: boolean;
  agent: boolean;
  problem?: string;
}

async function verdicts(root: Made, chain: Made[], leaf: Made): Promise<Verdicts> {
  const untrusted = join(dir, `chain${++n}.pem`);
  writeFileSync(untrusted, chain.map((c) => c.pem).join(''));
  let opensslOk = true;
  try {
    await openssl(dir, [
      'verify',
      '-x509_strict',
      '-purpose',
      'sslserver',
      '-CAfile',
      root.crt,
      ...(chain.length ? ['-untrusted', untrusted] : []),
      leaf.crt,
    ]);
  } catch {
    opensslOk = false;
  }
  const v = verifyChain(
    new X509Certificate(leaf.pem),
    chain.map((c) => new X509Certificate(c.pem)),
    [new X509Certificate(root.pem)],
    new Date(),
  );
  return { openssl: opensslOk, agent: 'root' in v, ...('problem' in v ? { problem: v.problem } : {}) };
}

const leafExt = (san: string, extra: string[] = [], base = LEAF) => [...base, `subjectAltName = ${san}`, ...extra];

let root: Made;
let int: Made;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cert-agent-verify-'));
  root = await make('Root', ROOT);
  int = await make('Intermediate', intWith('basicConstraints = critical, CA:TRUE, pathlen:0'), root);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('verifyChain agrees with openssl verify -x509_strict -purpose sslserver', () => {
  it('accepts a well-formed chain, and one without extendedKeyUsage', async () => {
    const leaf = await make('www.example.test', leafExt('DNS:www.example.test'), int);
    expect(await verdicts(root, [int], leaf)).toEqual({ openssl: true, agent: true });
    const noEkuExt = LEAF.filter((l) => !l.startsWith('extendedKeyUsage'));
    const noEku = await make('www.example.test', leafExt('DNS:www.example.test', [], noEkuExt), int);
    expect(await verdicts(root, [int], noEku)).toEqual({ openssl: true, agent: true });
  });

  it('honours pathLen: two intermediates under pathlen 1 pass, a sub-intermediate under pathlen 0 fails', async () => {
    const top = await make('Top Intermediate', intWith('basicConstraints = critical, CA:TRUE, pathlen:1'), root);
    const sub = await make('Sub Intermediate', intWith('basicConstraints = critical, CA:TRUE, pathlen:0'), top);
    const ok = await make('ok.example.test', leafExt('DNS:ok.example.test'), sub);
    expect(await verdicts(root, [sub, top], ok)).toEqual({ openssl: true, agent: true });

    const under0 = await make('Under pathlen 0', INT, int);
    const leaf = await make('deep.example.test', leafExt('DNS:deep.example.test'), under0);
    const v = await verdicts(root, [under0, int], leaf);
    expect(v).toMatchObject({ openssl: false, agent: false });
    expect(v.problem).toMatch(/pathLen 0/);
  });

  it('honours name constraints on DNS names and IP addresses, permitted and excluded', async () => {
    const constraints = 'permitted;DNS:example.test, permitted;IP:10.0.0.0/255.0.0.0, excluded;DNS:bad.example.test';
    const nc = await make('Constrained', [...INT, `nameConstraints = critical, ${constraints}`], root);
    const cases: [string, boolean][] = [
      ['DNS:a.example.test', true],
      ['DNS:a.example.test, IP:10.1.2.3', true],
      ['DNS:www.other.test', false],
      ['DNS:x.bad.example.test', false],
      ['DNS:a.example.test, IP:192.168.1.1', false],
    ];
    for (const [san, expected] of cases) {
      const leaf = await make(san.split(', ')[0]!.slice(4), leafExt(san), nc);
      const v = await verdicts(root, [nc], leaf);
      expect({ san, openssl: v.openssl, agent: v.agent }).toEqual({ san, openssl: expected, agent: expected });
      if (!expected) expect(v.problem).toMatch(/name constraints/);
    }
  });

  it('refuses a leaf whose extendedKeyUsage is clientAuth only, and an intermediate limited to it', async () => {
    const clientExt = leafWith('extendedKeyUsage = clientAuth');
    const client = await make('client.example.test', leafExt('DNS:client.example.test', [], clientExt), int);
    const v = await verdicts(root, [int], client);
    expect(v).toMatchObject({ openssl: false, agent: false });
    expect(v.problem).toMatch(/lacks serverAuth/);
    const clientCa = await make('Client-only CA', [...INT, 'extendedKeyUsage = clientAuth'], root);
    const leaf = await make('www.example.test', leafExt('DNS:www.example.test'), clientCa);
    expect(await verdicts(root, [clientCa], leaf)).toMatchObject({ openssl: false, agent: false });
  });

  it('refuses an unknown critical extension on the leaf and on the intermediate, not a non-critical one', async () => {
    const odd = '1.3.6.1.4.1.55555.1 = critical, ASN1:UTF8String:unknown';
    const leaf = await make('odd.example.test', leafExt('DNS:odd.example.test', [odd]), int);
    const v = await verdicts(root, [int], leaf);
    expect(v).toMatchObject({ openssl: false, agent: false });
    expect(v.problem).toMatch(/critical extension .*1\.3\.6\.1\.4\.1\.55555\.1/);
    const oddInt = await make('Odd Intermediate', [...INT, odd], root);
    const under = await make('www.example.test', leafExt('DNS:www.example.test'), oddInt);
    expect(await verdicts(root, [oddInt], under)).toMatchObject({ openssl: false, agent: false });
    const mildExt = ['1.3.6.1.4.1.55555.1 = ASN1:UTF8String:unknown'];
    const mild = await make('mild.example.test', leafExt('DNS:mild.example.test', mildExt), int);
    expect(await verdicts(root, [int], mild)).toEqual({ openssl: true, agent: true });
  });

  it('refuses an intermediate that is not a CA or may not sign certificates', async () => {
    const notCa = await make('Not a CA', intWith('basicConstraints = critical, CA:FALSE'), root);
    const leaf = await make('www.example.test', leafExt('DNS:www.example.test'), notCa);
    const v = await verdicts(root, [notCa], leaf);
    expect(v).toMatchObject({ openssl: false, agent: false });
    expect(v.problem).toMatch(/is not a CA/);
    const noSign = await make('No keyCertSign', intWith('keyUsage = critical, digitalSignature, cRLSign'), root);
    const leaf2 = await make('www.example.test', leafExt('DNS:www.example.test'), noSign);
    const v2 = await verdicts(root, [noSign], leaf2);
    expect(v2).toMatchObject({ openssl: false, agent: false });
    expect(v2.problem).toMatch(/keyCertSign/);
  });

  it('refuses a root without the CA flag', async () => {
    // CA:FALSE, and no basicConstraints at all.
    const variants = [
      ['basicConstraints = critical, CA:FALSE', 'subjectKeyIdentifier = hash'],
      ['subjectKeyIdentifier = hash'],
    ];
    for (const ext of variants) {
      const plainRoot = await make('Plain Root', ext);
      const leaf = await make('www.example.test', leafExt('DNS:www.example.test'), plainRoot);
      const v = await verdicts(plainRoot, [], leaf);
      expect({ ext, ...v }).toMatchObject({ ext, openssl: false, agent: false });
      expect(v.problem).toMatch(/the root .* is not a CA/);
    }
  });
});
