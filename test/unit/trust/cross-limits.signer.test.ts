/**
 * A root adopted through a cross-certificate must carry the limits of the
 * trusted root that signed the cross-certificate too, not only those of the
 * cross-certificate: otherwise an old root with name constraints that
 * cross-signs an unconstrained new root would lift its own constraints.
 * Certificates made by openssl; openssl verify is the oracle that the limit
 * is real (refused through the old root, accepted with the new one as anchor).
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crossLimitsProblem } from '../../../agent/trust/cross-limits.js';
import { loadTrust } from '../../../agent/trust/file.js';
import {
  fingerprintOf,
  makeCert,
  makeRotatedRoot,
  opensslIn as openssl,
  type Made,
  type Pki,
} from '../../harness/pki.js';

const execFileP = promisify(execFile);
const CA = ['basicConstraints = critical, CA:TRUE', 'keyUsage = critical, keyCertSign, cRLSign'];
const LEAF = [
  'basicConstraints = critical, CA:FALSE',
  'keyUsage = critical, digitalSignature',
  'extendedKeyUsage = serverAuth',
];
let dir: string;
let n = 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cert-agent-anchor-limits-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Rotation {
  old: Made;
  root: Made;
  cross: Made;
}

/** An old root with `old` extensions, and a new root (`root`) cross-signed by it (`cross`), sharing one key. */
async function rotation(old: string[], root: string[] = CA, cross: string[] = CA): Promise<Rotation> {
  const id = `r${++n}`;
  const oldRoot = await makeCert(dir, `Old Root ${id}`, old);
  const file = (suffix: string) => join(dir, `${id}.${suffix}`);
  writeFileSync(file('root.ext'), `${root.join('\n')}\n`);
  writeFileSync(file('cross.ext'), `${cross.join('\n')}\n`);
  await openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file('key')]);
  const subj = `/O=cert-agent tests/CN=New Root ${id}`;
  await openssl(dir, ['req', '-new', '-key', file('key'), '-subj', subj, '-out', file('csr')]);
  const common = ['x509', '-req', '-in', file('csr'), '-days', '30', '-sha256'];
  await openssl(dir, [...common, '-signkey', file('key'), '-extfile', file('root.ext'), '-out', file('crt')]);
  await openssl(dir, [
    ...common,
    ...['-CA', oldRoot.crt, '-CAkey', oldRoot.key, '-set_serial', String(5000 + n)],
    ...['-extfile', file('cross.ext'), '-out', file('cross.crt')],
  ]);
  const read = (f: string) => readFileSync(f, 'utf8');
  return {
    old: oldRoot,
    root: { crt: file('crt'), key: file('key'), pem: read(file('crt')) },
    cross: { crt: file('cross.crt'), key: file('key'), pem: read(file('cross.crt')) },
  };
}

const x = (m: { pem: string }) => new X509Certificate(m.pem);
const verdict = (r: Rotation) => crossLimitsProblem(x(r.cross), x(r.root), [x(r.old)]);

/** openssl verify -purpose sslserver of `leaf`, trusting only `anchor`, with `untrusted` offered. */
async function opensslAccepts(anchor: Made, leaf: Made, untrusted?: Made): Promise<boolean> {
  const args = ['verify', '-purpose', 'sslserver', '-CAfile', anchor.crt];
  if (untrusted) args.push('-untrusted', untrusted.crt);
  try {
    await execFileP('openssl', [...args, leaf.crt]);
    return true;
  } catch {
    return false;
  }
}

describe('the limits of the trusted root that signed the cross-certificate', () => {
  it('nameConstraints: an unconstrained new root is refused; openssl shows what adopting it would lift', async () => {
    const r = await rotation([...CA, 'nameConstraints = critical, permitted;DNS:good.example']);
    const evil = await makeCert(dir, 'evil.example', [...LEAF, 'subjectAltName = DNS:evil.example'], r.root);
    expect(await opensslAccepts(r.old, evil, r.cross)).toBe(false);
    expect(await opensslAccepts(r.root, evil)).toBe(true);
    expect(verdict(r)).toMatch(/nameConstraints on the trusted root that signed it that the root does not carry/);
  });

  it('nameConstraints the new root carries the same: adopted', async () => {
    const nc = 'nameConstraints = critical, permitted;DNS:good.example';
    expect(verdict(await rotation([...CA, nc], [...CA, nc]))).toBeUndefined();
  });

  it('pathLen: one less below a cross-certificate that is not self-issued', async () => {
    const old = ['basicConstraints = critical, CA:TRUE, pathlen:1', CA[1]!];
    const withLen = (len: number) => [`basicConstraints = critical, CA:TRUE, pathlen:${len}`, CA[1]!];
    expect(verdict(await rotation(old))).toMatch(
      /pathLen 1 on the trusted root that signed it \(0 below .*none on the root/,
    );
    expect(verdict(await rotation(old, withLen(1)))).toMatch(/pathLen 1 on the root/);
    expect(verdict(await rotation(old, withLen(0)))).toBeUndefined();
  });

  it('extendedKeyUsage and certificatePolicies', async () => {
    expect(verdict(await rotation([...CA, 'extendedKeyUsage = serverAuth']))).toMatch(
      /extendedKeyUsage 1\.3\.6\.1\.5\.5\.7\.3\.1 on the trusted root that signed it, none on the root/,
    );
    expect(
      verdict(await rotation([...CA, 'extendedKeyUsage = serverAuth'], [...CA, 'extendedKeyUsage = serverAuth'])),
    ).toBeUndefined();
    expect(verdict(await rotation([...CA, 'certificatePolicies = 1.2.3.4']))).toMatch(
      /certificatePolicies on the trusted root that signed it/,
    );
  });

  it('an unconstrained old root still vouches for an unconstrained new root (makeRotatedRoot)', async () => {
    const old = await makeCert(dir, 'Plain Old Root', CA);
    const rotated = await makeRotatedRoot({ rootCrt: old.crt, rootKey: old.key } as Pki, 'plain');
    expect(
      crossLimitsProblem(new X509Certificate(rotated.crossPem), new X509Certificate(rotated.rootPem), [x(old)]),
    ).toBeUndefined();
  });

  it('trust.json read again drops a root adopted below a constrained root', async () => {
    const r = await rotation([...CA, 'nameConstraints = critical, permitted;DNS:good.example']);
    const stateDir = join(dir, `state-${++n}`);
    mkdirSync(stateDir, { mode: 0o700 });
    const pinned = fingerprintOf(r.old.pem);
    const adopted = fingerprintOf(r.root.pem);
    writeFileSync(
      join(stateDir, 'trust.json'),
      JSON.stringify({
        pins: [pinned],
        roots: [
          { fingerprint: pinned, pem: r.old.pem },
          { fingerprint: adopted, pem: r.root.pem, crossPem: r.cross.pem },
        ],
        bootstrappedAt: new Date().toISOString(),
      }),
    );
    const bundle = loadTrust(stateDir);
    expect(bundle?.roots.map((root) => root.fingerprint)).toEqual([pinned]);
    expect(bundle?.refused?.map((root) => root.fingerprint)).toEqual([adopted]);
  });
});
