/**
 * openssl as the oracle of verifyChain: certificates minted by the openssl
 * CLI with exactly the extensions (and key encoding, and subject) a case asks
 * for, and both verdicts on one chain — `openssl verify -x509_strict -purpose
 * sslserver` and verifyChain's — so each test states where they agree and,
 * where the agent is stricter on purpose, that it is.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyChain } from '../../agent/pki/x509.js';
import { opensslIn as openssl, type Made } from '../harness/pki.js';

export const ROOT = [
  'basicConstraints = critical, CA:TRUE',
  'keyUsage = critical, keyCertSign, cRLSign',
  'subjectKeyIdentifier = hash',
];
export const INT = [...ROOT, 'authorityKeyIdentifier = keyid:always'];
export const LEAF = [
  'basicConstraints = critical, CA:FALSE',
  'keyUsage = critical, digitalSignature',
  'extendedKeyUsage = serverAuth',
  'subjectKeyIdentifier = hash',
  'authorityKeyIdentifier = keyid:always',
];
export const leafExt = (san: string, extra: string[] = []) => [...LEAF, `subjectAltName = ${san}`, ...extra];

let n = 0;

export interface MintOptions {
  /** openssl's -subj form; '/' makes an empty subject. */
  subject?: string;
  /** Extra `-pkeyopt` values for the key, e.g. `ec_param_enc:explicit`. */
  keyOpts?: string[];
  /** Days of validity (30 unless given). */
  days?: number;
  /** An existing key file to reuse (cross-certificates). */
  key?: string;
}

/** A certificate with exactly `ext`, self-signed without an issuer. */
export async function mint(
  dir: string,
  cn: string,
  ext: string[],
  issuer?: Made,
  opts: MintOptions = {},
): Promise<Made> {
  const id = `m${++n}`;
  const key = opts.key ?? join(dir, `${id}.key`);
  const crt = join(dir, `${id}.crt`);
  writeFileSync(join(dir, `${id}.ext`), `${ext.join('\n')}\n`);
  if (!opts.key) {
    const keyOpts = (opts.keyOpts ?? []).flatMap((o) => ['-pkeyopt', o]);
    await openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', ...keyOpts, '-out', key]);
  }
  await openssl(dir, ['req', '-new', '-key', key, '-subj', `/CN=${cn}`, '-out', `${id}.csr`]);
  const signer = issuer ? ['-CA', issuer.crt, '-CAkey', issuer.key] : ['-signkey', key];
  const subject = opts.subject ?? `/O=cert-agent tests/CN=${cn}`;
  await openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${id}.csr`,
    ...signer,
    '-subj',
    subject,
    '-set_serial',
    String(5000 + n),
    '-days',
    String(opts.days ?? 30),
    '-sha256',
    '-extfile',
    `${id}.ext`,
    '-out',
    crt,
  ]);
  return { crt, key, pem: readFileSync(crt, 'utf8') };
}

export interface Verdicts {
  openssl: boolean;
  agent: boolean;
  problem?: string;
  /** openssl's error line when it refused. */
  why?: string;
}

/** openssl's verdict and verifyChain's on leaf + untrusted chain (in this order) to root. */
export async function verdicts(
  dir: string,
  root: Made,
  chain: Made[],
  leaf: Made,
  opts: { attime?: Date; purpose?: boolean } = {},
): Promise<Verdicts> {
  const untrusted = join(dir, `chain${++n}.pem`);
  writeFileSync(untrusted, chain.map((c) => c.pem).join(''));
  let opensslOk = true;
  let why: string | undefined;
  const at = opts.attime ? ['-attime', String(Math.floor(opts.attime.getTime() / 1000))] : [];
  try {
    await openssl(dir, [
      'verify',
      '-x509_strict',
      ...(opts.purpose === false ? [] : ['-purpose', 'sslserver']),
      ...at,
      '-CAfile',
      root.crt,
      ...(chain.length ? ['-untrusted', untrusted] : []),
      leaf.crt,
    ]);
  } catch (err) {
    opensslOk = false;
    why = /error \d+ at \d+ depth lookup: [^\n]*/.exec(String((err as { stderr?: string }).stderr ?? err))?.[0];
  }
  const v = verifyChain(
    new X509Certificate(leaf.pem),
    chain.map((c) => new X509Certificate(c.pem)),
    [new X509Certificate(root.pem)],
    opts.attime ?? new Date(),
  );
  return {
    openssl: opensslOk,
    agent: 'root' in v,
    ...('problem' in v ? { problem: v.problem } : {}),
    ...(why ? { why } : {}),
  };
}
