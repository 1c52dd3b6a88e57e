/**
 * The certificate store's contract: a set goes live in one swap,
 * the previous set is kept for rollback, a set that fails any check changes
 * nothing on disk, and only current + previous survive a prune.
 */
import { X509Certificate } from 'node:crypto';
import {
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CertStore } from '../../../agent/store/sets.js';
import { SET_FILES } from '../../../agent/store/layout.js';
import { InvalidCertificateError, StoreRefusalError } from '../../../agent/lib/errors.js';
import { makeCa, newKey, selfSigned, type Leaf, type TestCa } from '../../helpers/certs.js';
import { tempDir } from '../../helpers/agent.js';

const DOMAINS = ['app.internal', '10.0.0.5'];
let ca: TestCa;
let other: TestCa;
let dir: string;
let store: CertStore;

beforeAll(async () => {
  ca = await makeCa('Store');
  other = await makeCa('Other');
});
beforeEach(() => {
  dir = join(tempDir(), 'tls');
  store = new CertStore(dir);
});
afterEach(() => rmSync(join(dir, '..'), { recursive: true, force: true }));

const roots = () => [new X509Certificate(ca.root.pem)];
const expect_ = (now = new Date()) => ({ domains: DOMAINS, roots: roots(), now });
const install = (leaf: Leaf, opts: { keyPem?: string; placeholder?: boolean } = {}) =>
  store.install(
    {
      keyPem: opts.keyPem ?? leaf.keyPem,
      fullchainPem: leaf.fullchainPem,
      rootsPem: [ca.root.pem],
      placeholder: opts.placeholder,
    },
    expect_(),
  );
const served = (name: string) => readFileSync(join(dir, name), 'utf8');
const snapshot = () => ({
  current: readlinkSync(join(dir, 'current')),
  sets: readdirSync(join(dir, '.sets')).sort(),
  cert: served('cert.pem'),
  key: served('key.pem'),
});

describe('CertStore', () => {
  it('installs a set: fixed names link through current, private modes, the live set reads back', async () => {
    const leaf = await ca.leaf({ domains: DOMAINS });
    const live = install(leaf);
    expect(live.cert.serialNumber.toLowerCase()).toBe(leaf.serial);
    for (const name of SET_FILES) expect(readlinkSync(join(dir, name))).toBe(join('current', name));
    expect(readlinkSync(join(dir, 'current'))).toBe(join('.sets', live.id));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'key.pem')).mode & 0o777).toBe(0o600);
    expect(statSync(live.path).mode & 0o777).toBe(0o700);
    expect(served('key.pem')).toBe(leaf.keyPem);
    expect(served('fullchain.pem')).toBe(served('cert.pem') + served('chain.pem'));
    expect(served('chain.pem')).toBe(ca.intermediate.pem);
    expect(served('ca.pem')).toBe(ca.root.pem);
    expect(existsSync(join(dir, 'previous'))).toBe(false);
    expect(store.live()?.placeholder).toBe(false);
  });

  it('keeps the previous set on the next install and rolls back to it', async () => {
    const first = install(await ca.leaf({ domains: DOMAINS }));
    const secondLeaf = await ca.leaf({ domains: DOMAINS });
    const second = install(secondLeaf);
    expect(store.live()?.id).toBe(second.id);
    expect(store.previous()?.id).toBe(first.id);
    expect(served('key.pem')).toBe(secondLeaf.keyPem);

    expect(store.rollback()).toBe(true);
    expect(store.live()?.id).toBe(first.id);
    expect(store.previous()?.id).toBe(second.id);
    expect(new X509Certificate(served('cert.pem')).serialNumber).toBe(first.cert.serialNumber);
  });

  it('rollback without a previous set reports false and changes nothing', async () => {
    const only = install(await ca.leaf({ domains: DOMAINS }));
    expect(store.rollback()).toBe(false);
    expect(store.live()?.id).toBe(only.id);
  });

  const rejected: [string, (good: Leaf) => Promise<Parameters<typeof install>>, RegExp][] = [
    [
      'a key that does not match the certificate',
      async (good) => [good, { keyPem: (await newKey()).pem }],
      /does not match the private key/,
    ],
    [
      'a certificate without the configured names',
      async () => [await ca.leaf({ domains: ['other.internal'] })],
      /lacks the configured names app\.internal, 10\.0\.0\.5/,
    ],
    [
      'a chain to another root',
      async () => [await other.leaf({ domains: DOMAINS })],
      /does not verify to the pinned root/,
    ],
    [
      'an expired certificate',
      async () => [
        await ca.leaf({
          domains: DOMAINS,
          notBefore: new Date(Date.now() - 48 * 3600e3),
          notAfter: new Date(Date.now() - 3600e3),
        }),
      ],
      /expired/,
    ],
  ];
  for (const [what, make, message] of rejected) {
    it(`rejects ${what} and changes nothing`, async () => {
      const good = await ca.leaf({ domains: DOMAINS });
      install(good);
      const before = snapshot();
      const args = await make(good);
      expect(() => install(...args)).toThrow(InvalidCertificateError);
      expect(() => install(...args)).toThrow(message);
      expect(snapshot()).toEqual(before);
      expect(existsSync(join(dir, 'previous'))).toBe(false);
    });
  }

  it('rejects a set into an empty directory without creating anything', async () => {
    const wrong = await other.leaf({ domains: DOMAINS });
    expect(() => install(wrong)).toThrow(InvalidCertificateError);
    expect(existsSync(dir)).toBe(false);
  });

  it('prune keeps exactly current and previous', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(install(await ca.leaf({ domains: DOMAINS })).id);
    expect(readdirSync(join(dir, '.sets')).sort()).toEqual([ids[2], ids[3]].sort());
    expect(store.previous()?.id).toBe(ids[2]);
    expect(readdirSync(dir).filter((e) => e.endsWith('.tmp'))).toEqual([]);
  });

  it('marks a placeholder set and skips only the chain check for it', async () => {
    const now = new Date();
    const ph = await selfSigned(DOMAINS, new Date(now.getTime() - 60_000), new Date(now.getTime() + 3600e3));
    const live = install(ph, { placeholder: true });
    expect(live.placeholder).toBe(true);
    expect(lstatSync(join(live.path, 'PLACEHOLDER')).isFile()).toBe(true);
    // The same self-signed certificate without the marker must not pass as CA-issued.
    expect(() => install(ph)).toThrow(/does not verify to the pinned root/);
    // And a placeholder with a foreign key is still refused.
    const foreign = (await newKey()).pem;
    expect(() => install(ph, { placeholder: true, keyPem: foreign })).toThrow(/does not match/);
  });
});

describe('a directory with certificate files from before the agent', () => {
  it('keeps them beside as *.before-cert-agent and installs its links', async () => {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, 'key.pem'), 'legacy key\n', { mode: 0o600 });
    writeFileSync(join(dir, 'cert.pem'), 'legacy cert\n');
    const leaf = await ca.leaf({ domains: DOMAINS });
    install(leaf);
    expect(readFileSync(join(dir, 'key.pem.before-cert-agent'), 'utf8')).toBe('legacy key\n');
    expect(readFileSync(join(dir, 'cert.pem.before-cert-agent'), 'utf8')).toBe('legacy cert\n');
    expect(readlinkSync(join(dir, 'key.pem'))).toBe(join('current', 'key.pem'));
    expect(served('key.pem')).toBe(leaf.keyPem);
    // A second install does not overwrite the kept files with links.
    install(await ca.leaf({ domains: DOMAINS }));
    expect(readFileSync(join(dir, 'key.pem.before-cert-agent'), 'utf8')).toBe('legacy key\n');
  });
});

describe("names in the directory that are not the agent's", () => {
  it('refuses a current or previous that points outside .sets or is not a link; touches nothing there', async () => {
    install(await ca.leaf({ domains: DOMAINS }));
    const outside = join(dir, '..', 'outside');
    mkdirSync(join(outside, 'keep'), { recursive: true });
    const swap = (name: string, make: (path: string) => void) => {
      rmSync(join(dir, name), { recursive: true, force: true });
      make(join(dir, name));
    };
    swap('previous', (p) => symlinkSync(outside, p));
    expect(() => store.secure()).toThrow(
      new StoreRefusalError(
        `${join(dir, 'previous')} is a symbolic link to ${outside}, ` +
          'not a link to .sets/<id>: refusing to follow it; remove it and run cert-agent renew --force',
      ),
    );
    swap('previous', (p) => mkdirSync(p));
    expect(() => store.secure()).toThrow(
      /previous is a directory owned by uid \d+ \(mode 0\d+\), not a link to \.sets\/<id>/,
    );
    rmSync(join(dir, 'previous'), { recursive: true });
    const id = store.currentId()!;
    swap('current', (p) => symlinkSync('.sets/../../outside', p));
    expect(() => store.live()).toThrow(/not a link to \.sets\/<id>: refusing to follow it/);
    swap('current', (p) => symlinkSync(`.sets/${id}`, p));
    expect(store.live()?.id).toBe(id);
    expect(readdirSync(outside)).toEqual(['keep']);
  });

  it('takes back an install whose directories belong to the old owner, and gives the group read access', async () => {
    const live = install(await ca.leaf({ domains: DOMAINS }));
    for (const p of [dir, join(dir, '.sets'), live.path, join(live.path, 'key.pem')]) chownSync(p, 65534, 65534);
    const legacy = new CertStore(dir, { group: 65534, legacyUid: 65534 });
    const changes = legacy.secure();
    expect(changes).toContain(`${dir}: 65534:65534 0700 -> 0:65534 0750`);
    const who = (p: string) => `${statSync(p).uid}:${statSync(p).gid} ${(statSync(p).mode & 0o777).toString(8)}`;
    const paths = [dir, join(dir, '.sets'), live.path, join(live.path, 'key.pem'), join(live.path, 'combined.pem')];
    expect(paths.map(who)).toEqual(['0:65534 750', '0:65534 750', '0:65534 750', '0:65534 640', '0:65534 640']);
    expect(legacy.secure()).toEqual([]);
    // Without the old owner configured, such a directory is refused, not taken.
    chownSync(join(dir, '.sets'), 65534, 65534);
    expect(() => store.secure()).toThrow(/\.sets is a directory owned by uid 65534 .*not the agent's/);
  });
});

describe('a certificate directory whose parents do not exist yet', () => {
  it('creates the parents 0755, as `install -d` would, so a consumer reading through the group reaches it', async () => {
    // e.g. /etc/cert-agent/certs/<name>: /etc/cert-agent exists, certs/ does not.
    const parent = join(dir, '..', 'certs');
    const nested = join(parent, 'grafana');
    const leaf = await ca.leaf({ domains: DOMAINS });
    new CertStore(nested, { group: 65534 }).install(
      { keyPem: leaf.keyPem, fullchainPem: leaf.fullchainPem, rootsPem: [ca.root.pem] },
      expect_(),
    );
    const who = (p: string) => `${statSync(p).uid}:${statSync(p).gid} ${(statSync(p).mode & 0o777).toString(8)}`;
    expect(who(parent)).toBe('0:0 755');
    expect(who(nested)).toBe('0:65534 750');
  });
});
