// The test PKI minted with openssl: the root and intermediate that step-ca
// serves from, an unrelated CA for a man in the middle, a CA rotating its
// root, and single certificates with exactly the extensions a test asks for
// (makeCert: the chains TLS servers present and the oracle's cases). openssl
// rather than `step ca init` keeps the only test dependency the step-ca binary
// itself, and makes a "recreated CA" one more openssl run. Certificates made
// in-process in milliseconds, with any validity window: test/helpers/certs.ts.
import { execFile } from 'node:child_process';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export function fingerprintOf(pem: string): string {
  return createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
}

const OPENSSL_CONF = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_intermediate]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, digitalSignature, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
`;

async function openssl(args: string[], cwd: string): Promise<void> {
  const cnf = path.join(cwd, 'openssl.cnf');
  if (!existsSync(cnf)) writeFileSync(cnf, OPENSSL_CONF);
  try {
    // OPENSSL_CONF points at our own file so distro defaults (extra
    // extensions, policies) never leak into the certificates.
    await execFileP('openssl', args, { cwd, env: { ...process.env, OPENSSL_CONF: cnf } });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw Object.assign(new Error(`openssl ${args[0]} failed: ${e.stderr || e.message}`, { cause: err }), {
      stderr: e.stderr,
    });
  }
}

/** openssl in `dir` with the harness's own config (written there on first use). */
export const opensslIn = (dir: string, args: string[]) => openssl(args, dir);

// Positive 127-bit serial: avoids the sign bit and any clash between CAs.
function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return '0x' + b.toString('hex');
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export interface Pki {
  rootCrt: string;
  rootKey: string;
  intCrt: string;
  intKey: string;
  rootPem: string;
}

/** Root + intermediate (both EC P-256, keys unencrypted) written into `dir`. */
export async function makePki(dir: string, label: string): Promise<Pki> {
  await fsp.mkdir(dir, { recursive: true });
  await fsp.writeFile(path.join(dir, 'openssl.cnf'), OPENSSL_CONF);
  const tag = randomBytes(4).toString('hex');
  const p = (f: string) => path.join(dir, f);
  await openssl(
    [
      'req',
      '-x509',
      ...EC_KEY,
      '-keyout',
      'root_ca_key',
      '-out',
      'root_ca.crt',
      '-subj',
      `/O=cert-agent tests/CN=${label} Root CA ${tag}`,
      '-days',
      '3650',
      '-sha256',
      '-set_serial',
      serial(),
      '-extensions',
      'v3_root',
    ],
    dir,
  );
  await openssl(
    [
      'req',
      '-new',
      ...EC_KEY,
      '-keyout',
      'intermediate_ca_key',
      '-out',
      'intermediate_ca.csr',
      '-subj',
      `/O=cert-agent tests/CN=${label} Intermediate CA ${tag}`,
    ],
    dir,
  );
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      'intermediate_ca.csr',
      '-CA',
      'root_ca.crt',
      '-CAkey',
      'root_ca_key',
      '-set_serial',
      serial(),
      '-days',
      '3650',
      '-sha256',
      '-extfile',
      'openssl.cnf',
      '-extensions',
      'v3_intermediate',
      '-out',
      'intermediate_ca.crt',
    ],
    dir,
  );
  return {
    rootCrt: p('root_ca.crt'),
    rootKey: p('root_ca_key'),
    intCrt: p('intermediate_ca.crt'),
    intKey: p('intermediate_ca_key'),
    rootPem: await fsp.readFile(p('root_ca.crt'), 'utf8'),
  };
}

/**
 * An unrelated CA (openssl), e.g. to give a man in the middle a certificate
 * that is valid in every respect except that it does not chain to the real
 * root. issue() returns the leaf, its key and the intermediate (chainPem);
 * `extraExt` adds openssl extension lines to the leaf (e.g. `nsCertType = client`).
 */
export async function makeOtherCa(): Promise<{
  rootPem: string;
  rootFingerprint: string;
  issue(names: string[], extraExt?: string[]): Promise<{ certPem: string; keyPem: string; chainPem: string }>;
}> {
  // Keys are kept in memory and each step works in its own temp dir, so
  // nothing is left on disk for anyone to clean up.
  const ca = await inTempDir('cert-agent-otherca-', async (dir) => {
    const pki = await makePki(dir, 'unrelated');
    return {
      rootPem: pki.rootPem,
      intPem: await fsp.readFile(pki.intCrt, 'utf8'),
      intKeyPem: await fsp.readFile(pki.intKey, 'utf8'),
    };
  });
  const issue = (names: string[], extraExt: string[] = []) =>
    inTempDir('cert-agent-otherleaf-', async (dir) => {
      await fsp.writeFile(path.join(dir, 'ca.crt'), ca.intPem);
      await fsp.writeFile(path.join(dir, 'ca.key'), ca.intKeyPem, { mode: 0o600 });
      const leaf = await signLeaf(dir, 'ca.crt', 'ca.key', names, ['serverAuth, clientAuth', ...extraExt]);
      return { ...leaf, chainPem: ca.intPem };
    });
  return { rootPem: ca.rootPem, rootFingerprint: fingerprintOf(ca.rootPem), issue };
}

/** Extension lines for openssl: `base`, each replaced by the line of `over` for the same extension, then the rest. */
function extensionLines(base: string[], over: string[]): string[] {
  const key = (line: string) => line.split('=')[0]!.trim();
  const replaced = new Set(over.map(key));
  return [...base.filter((l) => !replaced.has(key(l))), ...over];
}

/**
 * A CA rotating its root: a new self-signed root, and the cross-certificate
 * of the new root's subject and key signed by the old root, the two things a
 * CA publishes so that clients trusting the old root can move to the new one.
 * `label` tells apart several new roots in one test. `cross` and `root` add
 * or replace extension lines of either (e.g. `basicConstraints = critical,
 * CA:TRUE, pathlen:0` on the cross only).
 */
export async function makeRotatedRoot(
  old: Pki,
  label = 'rotated',
  ext: { cross?: string[]; root?: string[] } = {},
): Promise<{ rootPem: string; crossPem: string }> {
  return inTempDir('cert-agent-rotate-', async (dir) => {
    const base = ['basicConstraints = critical, CA:TRUE', 'keyUsage = critical, keyCertSign, cRLSign'];
    const cross = [
      '[v3_cross]',
      ...extensionLines(base, ext.cross ?? []),
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid:always',
      '',
      '[v3_new_root]',
      ...extensionLines(base, ext.root ?? []),
      'subjectKeyIdentifier = hash',
      '',
    ];
    await fsp.writeFile(path.join(dir, 'openssl.cnf'), `${OPENSSL_CONF}\n${cross.join('\n')}`);
    const subj = `/O=cert-agent tests/CN=${label} Root CA ${randomBytes(4).toString('hex')}`;
    await openssl(
      [
        'req',
        '-x509',
        ...EC_KEY,
        '-keyout',
        'new.key',
        '-out',
        'new.crt',
        '-subj',
        subj,
        '-days',
        '3650',
        '-sha256',
        '-set_serial',
        serial(),
        '-extensions',
        'v3_new_root',
      ],
      dir,
    );
    await openssl(['req', '-new', '-key', 'new.key', '-out', 'new.csr', '-subj', subj], dir);
    await openssl(
      [
        'x509',
        '-req',
        '-in',
        'new.csr',
        '-CA',
        old.rootCrt,
        '-CAkey',
        old.rootKey,
        '-set_serial',
        serial(),
        '-days',
        '3650',
        '-sha256',
        '-extfile',
        'openssl.cnf',
        '-extensions',
        'v3_cross',
        '-out',
        'cross.crt',
      ],
      dir,
    );
    const read = (f: string) => fsp.readFile(path.join(dir, f), 'utf8');
    return { rootPem: await read('new.crt'), crossPem: await read('cross.crt') };
  });
}

/** A TLS server leaf (CA:FALSE) for `names`, signed by the CA in caCrt/caKey. */
export async function issueLeafUnder(caCrt: string, caKey: string, names: string[]): Promise<string> {
  return (await leafUnder(caCrt, caKey, names)).certPem;
}

/** The same leaf with its key, for a TLS server. */
export function leafUnder(caCrt: string, caKey: string, names: string[]): Promise<{ certPem: string; keyPem: string }> {
  return inTempDir('cert-agent-leaf-', (dir) => signLeaf(dir, caCrt, caKey, names, ['serverAuth']));
}

/** A leaf in `dir` for `names` with a new EC key; `eku` is its extendedKeyUsage value, then extra extension lines. */
async function signLeaf(
  dir: string,
  caCrt: string,
  caKey: string,
  names: string[],
  [eku, ...extraExt]: string[],
): Promise<{ certPem: string; keyPem: string }> {
  if (names.length === 0) throw new Error('a leaf needs at least one name');
  const san = names.map((n) => (net.isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(', ');
  const ext = ['basicConstraints = critical, CA:FALSE', 'keyUsage = critical, digitalSignature'];
  ext.push(`extendedKeyUsage = ${eku}`, 'subjectKeyIdentifier = hash', 'authorityKeyIdentifier = keyid:always');
  await fsp.writeFile(path.join(dir, 'leaf.ext'), [...ext, `subjectAltName = ${san}`, ...extraExt, ''].join('\n'));
  await openssl(['req', '-new', ...EC_KEY, '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', `/CN=${names[0]}`], dir);
  const sign = ['-CA', caCrt, '-CAkey', caKey, '-set_serial', serial(), '-days', '30', '-sha256'];
  await openssl(['x509', '-req', '-in', 'leaf.csr', ...sign, '-extfile', 'leaf.ext', '-out', 'leaf.crt'], dir);
  const read = (f: string) => fsp.readFile(path.join(dir, f), 'utf8');
  return { certPem: await read('leaf.crt'), keyPem: await read('leaf.key') };
}

export interface Made {
  crt: string;
  key: string;
  pem: string;
}

let made = 0;

/**
 * A certificate for `cn` with exactly `ext` (an extfile of its own), EC
 * P-256, valid 30 days, in `dir`; self-signed without an issuer. `subject`
 * replaces the whole subject (openssl's -subj form), `digest` the signature's
 * SHA-256.
 */
export async function makeCert(
  dir: string,
  cn: string,
  ext: string[],
  issuer?: Made,
  opts: { subject?: string; digest?: string } = {},
): Promise<Made> {
  const id = `c${++made}`;
  const key = path.join(dir, `${id}.key`);
  const crt = path.join(dir, `${id}.crt`);
  writeFileSync(path.join(dir, `${id}.ext`), `${ext.join('\n')}\n`);
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key], dir);
  const subject = opts.subject ?? `/O=cert-agent tests/CN=${cn}`;
  await openssl(['req', '-new', '-key', key, '-subj', subject, '-out', `${id}.csr`], dir);
  const signer = issuer ? ['-CA', issuer.crt, '-CAkey', issuer.key] : ['-signkey', key];
  const validity = ['-set_serial', String(1000 + made), '-days', '30', `-${opts.digest ?? 'sha256'}`];
  await openssl(
    ['x509', '-req', '-in', `${id}.csr`, ...signer, ...validity, '-extfile', `${id}.ext`, '-out', crt],
    dir,
  );
  return { crt, key, pem: readFileSync(crt, 'utf8') };
}

async function inTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  try {
    return await fn(dir);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}
