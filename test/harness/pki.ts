// PKI for the integration tests, minted with openssl: the root and
// intermediate that step-ca serves from, and an unrelated CA for a man in the
// middle. openssl rather than `step ca init` keeps the only test dependency
// the step-ca binary itself, and makes a "recreated CA" one more openssl run.
import { execFile } from 'node:child_process';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
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
  try {
    // OPENSSL_CONF points at our own file so distro defaults (extra
    // extensions, policies) never leak into the certificates.
    await execFileP('openssl', args, { cwd, env: { ...process.env, OPENSSL_CONF: path.join(cwd, 'openssl.cnf') } });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr || e.message}`, { cause: err });
  }
}

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
      if (names.length === 0) throw new Error('issue() needs at least one name');
      const san = names.map((n) => (net.isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(', ');
      await fsp.writeFile(path.join(dir, 'openssl.cnf'), OPENSSL_CONF);
      await fsp.writeFile(path.join(dir, 'ca.crt'), ca.intPem);
      await fsp.writeFile(path.join(dir, 'ca.key'), ca.intKeyPem, { mode: 0o600 });
      await fsp.writeFile(
        path.join(dir, 'leaf.ext'),
        [
          'basicConstraints = critical, CA:FALSE',
          'keyUsage = critical, digitalSignature',
          'extendedKeyUsage = serverAuth, clientAuth',
          'subjectKeyIdentifier = hash',
          'authorityKeyIdentifier = keyid:always',
          `subjectAltName = ${san}`,
          ...extraExt,
          '',
        ].join('\n'),
      );
      await openssl(
        ['req', '-new', ...EC_KEY, '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', `/CN=${names[0]}`],
        dir,
      );
      await openssl(
        [
          'x509',
          '-req',
          '-in',
          'leaf.csr',
          '-CA',
          'ca.crt',
          '-CAkey',
          'ca.key',
          '-set_serial',
          serial(),
          '-days',
          '30',
          '-sha256',
          '-extfile',
          'leaf.ext',
          '-out',
          'leaf.crt',
        ],
        dir,
      );
      return {
        certPem: await fsp.readFile(path.join(dir, 'leaf.crt'), 'utf8'),
        keyPem: await fsp.readFile(path.join(dir, 'leaf.key'), 'utf8'),
        chainPem: ca.intPem,
      };
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
  return inTempDir('cert-agent-leaf-', async (dir) => {
    const san = names.map((n) => (net.isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(', ');
    await fsp.writeFile(path.join(dir, 'openssl.cnf'), OPENSSL_CONF);
    await fsp.writeFile(
      path.join(dir, 'leaf.ext'),
      [
        'basicConstraints = critical, CA:FALSE',
        'keyUsage = critical, digitalSignature',
        'extendedKeyUsage = serverAuth',
        'subjectKeyIdentifier = hash',
        'authorityKeyIdentifier = keyid:always',
        `subjectAltName = ${san}`,
        '',
      ].join('\n'),
    );
    const subj = `/CN=${names[0]}`;
    await openssl(['req', '-new', ...EC_KEY, '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', subj], dir);
    await openssl(
      [
        'x509',
        '-req',
        '-in',
        'leaf.csr',
        '-CA',
        caCrt,
        '-CAkey',
        caKey,
        '-set_serial',
        serial(),
        '-days',
        '30',
        '-sha256',
        '-extfile',
        'leaf.ext',
        '-out',
        'leaf.crt',
      ],
      dir,
    );
    return fsp.readFile(path.join(dir, 'leaf.crt'), 'utf8');
  });
}

async function inTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  try {
    return await fn(dir);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}
