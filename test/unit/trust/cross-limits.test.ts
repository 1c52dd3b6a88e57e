/**
 * crossLimitsProblem, the rule by which the trust refresh adopts a root that a
 * trusted root cross-signed: the cross-certificate may limit nothing that the
 * root does not limit at least as much. Certificates minted by openssl with
 * exactly the extensions each case names (the trust-refresh integration test
 * covers pathLen, extended key usage and name constraints against step-ca;
 * these are the edges).
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crossLimitsProblem } from '../../../agent/trust/cross-limits.js';
import { makeCert, type Made } from '../../harness/pki.js';

let dir: string;
let old: Made;
const CA = ['basicConstraints = critical, CA:TRUE', 'keyUsage = critical, keyCertSign, cRLSign'];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cert-agent-cross-limits-'));
  old = await makeCert(dir, 'Old Root', CA);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The verdict for a cross-certificate (signed by the old root) with `cross` against a new root with `root`. */
async function verdict(cross: string[], root: string[] = []): Promise<string | undefined> {
  const override = (lines: string[]) => {
    const keys = new Set(lines.map((l) => l.split('=')[0]!.trim()));
    return [...CA.filter((l) => !keys.has(l.split('=')[0]!.trim())), ...lines];
  };
  const newRoot = await makeCert(dir, 'New Root', override(root));
  const crossCert = await makeCert(dir, 'New Root', override(cross), old);
  return crossLimitsProblem(new X509Certificate(crossCert.pem), new X509Certificate(newRoot.pem), [
    new X509Certificate(old.pem),
  ]);
}

describe('crossLimitsProblem', () => {
  it('accepts a cross-certificate that limits nothing beyond the root', async () => {
    expect(await verdict([])).toBeUndefined();
    expect(await verdict(['extendedKeyUsage = anyExtendedKeyUsage'])).toBeUndefined();
    expect(await verdict(['certificatePolicies = 2.5.29.32.0'])).toBeUndefined();
    expect(await verdict(['subjectAltName = critical, DNS:ca.test'])).toBeUndefined();
  });

  it('compares pathLen: the root’s must be at most the cross-certificate’s', async () => {
    expect(await verdict(['basicConstraints = critical, CA:TRUE, pathlen:1'])).toMatch(/pathLen 1 .*none on the root/);
    expect(
      await verdict(
        ['basicConstraints = critical, CA:TRUE, pathlen:1'],
        ['basicConstraints = critical, CA:TRUE, pathlen:2'],
      ),
    ).toMatch(/pathLen 1 on the cross-certificate, pathLen 2 on the root/);
    expect(
      await verdict(
        ['basicConstraints = critical, CA:TRUE, pathlen:1'],
        ['basicConstraints = critical, CA:TRUE, pathlen:1'],
      ),
    ).toBeUndefined();
  });

  it('compares keyUsage: the root may not allow a use the cross-certificate does not', async () => {
    expect(await verdict(['keyUsage = critical, keyCertSign'])).toMatch(/keyUsage narrower/);
    expect(await verdict(['keyUsage = critical, keyCertSign'], ['keyUsage = critical, keyCertSign'])).toBeUndefined();
    expect(await verdict(['keyUsage = critical, keyCertSign, cRLSign, digitalSignature'])).toBeUndefined();
  });

  it('compares extendedKeyUsage: the root’s purposes must be among the cross-certificate’s, and not "any"', async () => {
    expect(await verdict(['extendedKeyUsage = serverAuth'])).toMatch(/extendedKeyUsage 1\.3\.6\.1\.5\.5\.7\.3\.1 on/);
    expect(
      await verdict(['extendedKeyUsage = serverAuth'], ['extendedKeyUsage = serverAuth, anyExtendedKeyUsage']),
    ).toMatch(/extendedKeyUsage/);
    expect(
      await verdict(['extendedKeyUsage = serverAuth, clientAuth'], ['extendedKeyUsage = serverAuth']),
    ).toBeUndefined();
  });

  it('requires the very same name constraints, policies and Netscape type on the root', async () => {
    const nc = 'nameConstraints = critical, permitted;DNS:.team.test';
    expect(await verdict([nc], [nc])).toBeUndefined();
    expect(
      await verdict([nc], ['nameConstraints = critical, permitted;DNS:.team.test, permitted;DNS:.x.test']),
    ).toMatch(/nameConstraints on the cross-certificate that the root carries differently/);
    expect(await verdict(['certificatePolicies = 1.3.6.1.4.1.99999.1'])).toMatch(
      /certificatePolicies .*does not carry/,
    );
    expect(await verdict(['policyConstraints = critical, requireExplicitPolicy:0'])).toMatch(/policyConstraints/);
    expect(await verdict(['inhibitAnyPolicy = critical, 0'])).toMatch(/inhibitAnyPolicy/);
    expect(await verdict(['nsCertType = objCA'])).toMatch(/Netscape certificate type/);
    expect(await verdict(['nsCertType = objCA'], ['nsCertType = objCA'])).toBeUndefined();
  });

  it('refuses a critical extension on the cross-certificate it cannot compare', async () => {
    expect(await verdict(['1.3.6.1.4.1.99999.7 = critical, ASN1:NULL'])).toMatch(
      /critical extension on the cross-certificate the agent cannot compare \(1\.3\.6\.1\.4\.1\.99999\.7\)/,
    );
    expect(await verdict(['1.3.6.1.4.1.99999.7 = ASN1:NULL'])).toBeUndefined();
  });
});
