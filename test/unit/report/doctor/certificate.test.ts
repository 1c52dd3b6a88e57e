import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { checkCertificate } from '../../../../agent/report/doctor/certificate.js';
import { checkOutageAllowance } from '../../../../agent/report/doctor/outage-allowance.js';
import { checkServed } from '../../../../agent/report/doctor/served.js';
import { doctorContext } from './fixture.js';

let dir: string | undefined;
afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

describe('doctor: without an installed certificate', () => {
  it('the certificate line says to renew; the allowance and served checks have nothing to judge', async () => {
    const ctx = doctorContext({ reload: { target: 'none', verify: '127.0.0.1:1' } });
    dir = ctx.dir;
    expect(checkCertificate(ctx)).toEqual([
      {
        status: 'PROBLEM',
        reason: 'certificate',
        message: `no certificate installed in ${ctx.config.certificate.dir}: run cert-agent renew`,
      },
    ]);
    expect(checkOutageAllowance(ctx)).toEqual([]);
    expect(await checkServed(ctx)).toEqual([]);
  });
});
