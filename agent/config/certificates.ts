/**
 * The certificates of one agent: the `certificates:` list, or the short form
 * `certificate:` of 0.1.0 (a list of one, named `default`), each entry with
 * its own challenge and reload overrides, and the rules that keep them
 * apart (names, directories and Traefik files of their own). Every error
 * names the entry (`certificates[1] (grafana).dir`).
 */
import { isIP } from 'node:net';
import { posix } from 'node:path';
import { ConfigError } from '../lib/errors.js';
import { KEY_TYPES } from '../pki/keys.js';
import { readChallenge, readReloadOverride } from './sections.js';
import { CERTIFICATE_NAME, DEFAULTS, DEFAULT_NAME, defaultCertDir, type Config } from './schema.js';
import { type FieldReader, show } from './validate.js';
import { absolutePathProblem, accountNameProblem, identifierProblem, isWildcard } from './values.js';

type Entry = Pick<Config, 'certificate' | 'challenge' | 'reload'>;
type Shared = Pick<Config, 'challenge' | 'reload'>;

/** Every certificate of the file, in its order, with the shared challenge and reload applied. */
export function readCertificates(root: FieldReader, shared: Shared): Entry[] {
  const short = root.has('certificate');
  const list = root.has('certificates');
  if (short && list)
    throw new ConfigError(
      'certificates',
      'give either certificate (one certificate, the short form) or certificates (a list), not both',
    );
  if (short) {
    const section = root.section('certificate');
    const name = section.string('name', { default: DEFAULT_NAME, check: nameProblem });
    const certificate = readCertificate(section, name);
    wildcardCheck(section, certificate, shared.challenge);
    section.done();
    root.raw('certificates');
    return [{ certificate, ...shared }];
  }
  root.raw('certificate');
  const entries = root.sections('certificates');
  if (!entries.length)
    throw new ConfigError(
      'certificates',
      'is required: a list of certificates (name, domains, ...), or certificate: for just one',
    );
  return entries.map((raw) => readEntry(raw, shared));
}

function readEntry(raw: FieldReader, shared: Shared): Entry {
  const name = raw.string('name', { check: nameProblem });
  const entry = raw.named(`${raw.field('').replace(/\.$/, '')} (${name})`);
  const certificate = readCertificate(entry, name);
  // Absent or empty (`challenge:` alone), the shared section's fields are the defaults.
  const challenge = readChallenge(entry.section('challenge'), shared.challenge);
  const reload = readReloadOverride(entry.section('reload'), shared.reload, name);
  wildcardCheck(entry, certificate, challenge);
  entry.done();
  return { certificate, challenge, reload };
}

/** One certificate's own fields; `name` is read by the caller. */
function readCertificate(cert: FieldReader, name: string): Config['certificate'] {
  const domains = cert.stringList('domains', { required: true, check: identifierProblem }).map((d) => d.toLowerCase());
  const duplicate = domains.find((d, i) => domains.indexOf(d) !== i);
  if (duplicate) throw new ConfigError(cert.field('domains'), `${JSON.stringify(duplicate)} is listed twice`);
  const keyType = cert.string('keyType', {
    default: DEFAULTS.keyType,
    allowed: KEY_TYPES,
  }) as Config['certificate']['keyType'];
  const dir = cert.string('dir', { default: defaultCertDir(name), check: absolutePathProblem });
  const owner = cert.string('owner', { default: DEFAULTS.owner, check: accountNameProblem });
  const group = cert.string('group', { default: DEFAULTS.group, check: accountNameProblem });
  return { name, domains, keyType, dir, owner, group };
}

/** A wildcard is proven only by a TXT record: the certificate's own challenge must be dns-01. */
function wildcardCheck(cert: FieldReader, certificate: Config['certificate'], challenge: Config['challenge']): void {
  const wildcard = certificate.domains.find(isWildcard);
  if (wildcard && challenge.mode !== 'dns')
    throw new ConfigError(
      cert.field('domains'),
      `${wildcard} is a wildcard, and a wildcard can only be proven over dns-01: set challenge.mode: dns`,
    );
  const address = certificate.domains.find((d) => isIP(d));
  if (address && challenge.mode === 'dns')
    throw new ConfigError(
      cert.field('domains'),
      `${address} is an IP address, which dns-01 cannot prove: give it a certificate of its own over http-01 (a certificates: entry)`,
    );
}

function nameProblem(v: string): string | undefined {
  return CERTIFICATE_NAME.test(v)
    ? undefined
    : 'is not a certificate name: lower-case letters, digits, - and _ (up to 63, starting with a letter or digit)';
}

/**
 * Each certificate needs a name, a directory and a Traefik file of its own;
 * none may sit inside another's directory or the state directory. Paths are
 * compared as the kernel resolves them (`/srv//tls/./a` is `/srv/tls/a`).
 * `short`: the file has the short form, whose one entry is `certificate`.
 */
export function checkDistinct(certs: Config[], short = false): void {
  const label = (i: number) =>
    short ? 'certificate' : `certificates[${i}] (${(certs[i] as Config).certificate.name})`;
  certs.forEach((c, i) => {
    const { name, dir } = c.certificate;
    const stateDir = c.stateDir;
    if (overlaps(dir, stateDir))
      throw new ConfigError(
        `${label(i)}.dir`,
        `${show(dir)} overlaps stateDir ${show(stateDir)}: give it a directory of its own`,
      );
    for (let j = 0; j < i; j++) {
      const other = certs[j] as Config;
      if (other.certificate.name === name)
        throw new ConfigError(
          `${label(i)}.name`,
          `${show(name)} is already the name of certificates[${j}]; names must be unique`,
        );
      if (overlaps(dir, other.certificate.dir))
        throw new ConfigError(
          `${label(i)}.dir`,
          `${show(dir)} overlaps the directory of ${label(j)} (${other.certificate.dir}): each certificate needs a directory of its own`,
        );
      const traefik = c.reload.target === 'traefik' && other.reload.target === 'traefik';
      if (traefik && resolved(c.reload.traefik.dynamicFile) === resolved(other.reload.traefik.dynamicFile))
        throw new ConfigError(
          `${label(i)}.reload.traefik.dynamicFile`,
          `${show(c.reload.traefik.dynamicFile)} is also the dynamic file of ${label(j)}: each certificate needs one of its own`,
        );
      // Traefik's challenge routers all match the same path: one listener behind them, or a token could reach the wrong one.
      const proxied = traefik && c.challenge.mode === 'proxy' && other.challenge.mode === 'proxy';
      if (proxied && c.challenge.listen !== other.challenge.listen)
        throw new ConfigError(
          `${label(i)}.challenge.listen`,
          `${show(c.challenge.listen)} differs from ${label(j)}'s ${show(other.challenge.listen)}: certificates whose challenge Traefik forwards (proxy mode) share one listener`,
        );
    }
  });
}

/** The same directory, or one inside the other. */
function overlaps(a: string, b: string): boolean {
  const x = resolved(a).replace(/\/$/, '') + '/';
  const y = resolved(b).replace(/\/$/, '') + '/';
  return x.startsWith(y) || y.startsWith(x);
}

/** An absolute path without `.`, `..`, repeated or trailing slashes. */
const resolved = (path: string) => posix.resolve(path);
