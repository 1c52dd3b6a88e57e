/**
 * status after a real first issuance from step-ca (the "fresh" state): OK,
 * the certificate the CA issued, the pinned root as trust, the next renewal
 * about two thirds into the lifetime — and still the same answer with the CA
 * stopped, because status reads only disk.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { runAgent, tempDir } from '../helpers/agent.js';
import { enrolledWithCertificate } from '../helpers/enrolled.js';
import schema from '../../docs/status.schema.json' with { type: 'json' };

const ajv = new Ajv2020({ strict: true, strictRequired: false });
(addFormatsModule as unknown as (a: Ajv2020) => void)(ajv);
const validate = ajv.compile(schema);

let ca: StepCa;
let dir: string;
const cfg = () => join(dir, 'config.yaml');

beforeAll(async () => {
  ca = await startStepCa();
  dir = tempDir();
  await enrolledWithCertificate(ca, dir);
});
afterAll(async () => {
  await ca?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('status of a freshly issued certificate', () => {
  it('is OK (0) with the issued serial, the step-ca issuer, the pin and a renewal in the future', async () => {
    const cert = new X509Certificate(readFileSync(join(dir, 'tls', 'cert.pem')));
    const serial = cert.serialNumber.toLowerCase();
    const text = await runAgent(['status', '--config', cfg()]);
    expect(text.code).toBe(0);
    expect(text.stdout.split('\n')[0]).toMatch(
      /^cert-agent OK \| expiry=\d+s;\d+:;0:;;\d+ allowance=\d+s;\d+:;0:;;\d+$/,
    );
    expect(text.stdout).toContain(serial);
    expect(text.stdout).toContain(ca.url);
    expect(text.stdout).toContain(ca.rootFingerprint);
    expect(text.stdout).toMatch(/last attempt +\S+ \(\d+s ago\) renewed/);
    expect(text.stdout).toMatch(/next renewal +\S+ \(in 1[45]h\d\dm\)/);

    const json = await runAgent(['status', '--json', '--config', cfg()]);
    const doc = JSON.parse(json.stdout);
    expect(validate(doc)).toBe(true);
    expect(doc).toMatchObject({
      status: 'OK',
      problems: [],
      certificate: { serial, names: ['localhost'], keyMatches: true, chainVerifies: true, placeholder: false },
      ca: { trust: 'ok', trustedFingerprints: [ca.rootFingerprint] },
      renewal: { due: false, consecutiveFailures: 0, lastAttempt: { result: 'renewed' } },
    });
    expect(doc.certificate.issuer).toBe(cert.issuer.replace(/\n/g, ', '));
    const lifetime = Date.parse(doc.certificate.notAfter) - Date.parse(doc.certificate.notBefore);
    const at = (Date.parse(doc.renewal.next) - Date.parse(doc.certificate.notBefore)) / lifetime;
    expect(at).toBeGreaterThanOrEqual(0.61 - 0.001);
    expect(at).toBeLessThanOrEqual(0.66 + 0.001);
  });

  it('answers the same with the CA stopped (no network needed)', async () => {
    const before = JSON.parse((await runAgent(['status', '--json', '--config', cfg()])).stdout);
    await ca.stop();
    const after = await runAgent(['status', '--json', '--config', cfg()]);
    expect(after.code).toBe(0);
    const doc = JSON.parse(after.stdout);
    // What depends on the moment of asking is left out: the rest comes from disk alone.
    const timeless = (d: typeof doc) => ({
      ...d,
      checkedAt: 0,
      certificate: { ...d.certificate, lifetimeUsed: 0, secondsToExpiry: 0 },
      renewal: { ...d.renewal, caOutageAllowance: { ...d.renewal.caOutageAllowance, seconds: 0 } },
    });
    expect(timeless(doc)).toEqual(timeless(before));
  });
});
