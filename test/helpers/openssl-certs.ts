/**
 * Certificates minted by the openssl CLI with exactly the extensions a test
 * asks for (an extfile per certificate), EC P-256, SHA-256, valid 30 days:
 * for tests that need chains openssl itself made, as the oracle or as what a
 * TLS server presents.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface Made {
  crt: string;
  key: string;
  pem: string;
}

/** openssl with a minimal config of its own in `dir` (written on first use). */
export async function openssl(dir: string, args: string[]): Promise<void> {
  const cnf = join(dir, 'openssl.cnf');
  if (!existsSync(cnf)) writeFileSync(cnf, '[req]\ndistinguished_name = dn\n[dn]\n');
  await execFileP('openssl', args, { cwd: dir, env: { ...process.env, OPENSSL_CONF: cnf } });
}

let n = 0;

/**
 * A certificate for `cn` with exactly `ext`, in `dir`; self-signed without an
 * issuer. `subject` replaces the whole subject (openssl's -subj form),
 * `digest` the signature's SHA-256.
 */
export async function makeCert(
  dir: string,
  cn: string,
  ext: string[],
  issuer?: Made,
  opts: { subject?: string; digest?: string } = {},
): Promise<Made> {
  const id = `c${++n}`;
  const key = join(dir, `${id}.key`);
  const crt = join(dir, `${id}.crt`);
  writeFileSync(join(dir, `${id}.ext`), `${ext.join('\n')}\n`);
  await openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
  const subject = opts.subject ?? `/O=cert-agent tests/CN=${cn}`;
  await openssl(dir, ['req', '-new', '-key', key, '-subj', subject, '-out', `${id}.csr`]);
  const signer = issuer ? ['-CA', issuer.crt, '-CAkey', issuer.key] : ['-signkey', key];
  await openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${id}.csr`,
    ...signer,
    '-set_serial',
    String(1000 + n),
    '-days',
    '30',
    `-${opts.digest ?? 'sha256'}`,
    '-extfile',
    `${id}.ext`,
    '-out',
    crt,
  ]);
  return { crt, key, pem: readFileSync(crt, 'utf8') };
}
