/**
 * Generated malformed configurations for the bad-configuration fault test:
 * each case starts from a valid document and breaks one thing (a type, an
 * unknown or missing field, a URL, a fingerprint, a cron expression, a path
 * that is world-writable or a symlink another user owns, a certificate or
 * state directory below one another user could change, a config file that
 * another user owns or could change), or is broken YAML.
 */
import { chmodSync, chownSync, lchownSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface BadCase {
  category: string;
  name: string;
  /** Changes the valid document; `sandbox` is the case's own directory. */
  mutate?: (doc: Doc, sandbox: string) => void;
  /** Raw file content instead of the document. */
  text?: string;
  /** Runs after the config file is written (modes, symlinks). */
  setup?: (sandbox: string, configPath: string) => void;
}

type Doc = Record<string, any>;

/** Another user's uid (nobody), for symlinks the agent must not follow. */
const NOBODY = 65534;

export function validDoc(sandbox: string): Doc {
  return {
    ca: { url: 'https://127.0.0.1:9', fingerprint: 'a'.repeat(64) },
    certificate: { domains: ['localhost'], dir: join(sandbox, 'tls'), keyType: 'ec-p256' },
    renewal: { at: 0.66, jitter: 0.05, check: '*/5 * * * *' },
    challenge: { mode: 'standalone', listen: '127.0.0.1:18080' },
    reload: { target: 'none' },
    stateDir: join(sandbox, 'state'),
  };
}

function set(doc: Doc, path: string, value: unknown): void {
  const keys = path.split('.');
  let o = doc;
  for (const k of keys.slice(0, -1)) o = o[k] ??= {};
  o[keys[keys.length - 1]!] = value;
}

function del(doc: Doc, path: string): void {
  const keys = path.split('.');
  let o = doc;
  for (const k of keys.slice(0, -1)) o = o[k] ?? {};
  delete o[keys[keys.length - 1]!];
}

const values: [string, string, unknown[]][] = [
  ['wrong type', 'ca.url', [42, true, ['https://x:9000'], { a: 1 }]],
  ['wrong type', 'ca.fingerprint', [42, true, { a: 1 }, [42]]],
  ['wrong type', 'ca.provisioner', [7, 'a b', '../x']],
  ['wrong type', 'certificate.domains', ['localhost', 42, [42], [], [''], { a: 1 }]],
  ['wrong type', 'certificate.keyType', [256, 'ec-p521', 'rsa-1024']],
  ['wrong type', 'certificate.dir', [42, 'relative/tls', '']],
  ['wrong type', 'certificate.owner', ['bad name!', 42]],
  ['wrong type', 'renewal.at', ['0.66', 0, 1, -0.5, 0.96, true]],
  ['wrong type', 'renewal.jitter', [0.5, -0.1, 'x', 0.7]],
  ['wrong type', 'challenge.mode', ['dns-01', 5, 'tls-alpn']],
  ['wrong type', 'challenge.listen', ['80', 'host:99999', '[zz]:80', ':0', 5]],
  ['wrong type', 'reload.target', ['apache', 1]],
  ['wrong type', 'reload.timeout', [0, 601, 1.5, '30']],
  ['wrong type', 'reload.verify', ['nohost', 443]],
  ['wrong type', 'trust.installSystem', ['yes', 1]],
  ['wrong type', 'metrics.textfile', ['rel.prom', '/x/metrics.txt']],
  ['wrong type', 'stateDir', ['state', 5, '']],
  ['wrong type', 'account.email', ['not-an-email', 5]],
  ['wrong type', 'ca.rootFile', ['root.pem']],
  [
    'bad URL',
    'ca.url',
    [
      'http://127.0.0.1:9000',
      'ftp://x',
      'https://u:p@x:9000',
      'https://x:9000/?a=1',
      'https://x:9000/#f',
      'not a url',
      '',
      '://x',
      'https://',
    ],
  ],
  ['bad URL', 'ca.directory', ['http://x/acme/acme/directory', 5]],
  [
    'bad fingerprint',
    'ca.fingerprint',
    [
      'abc',
      'g'.repeat(64),
      'a'.repeat(63),
      'a'.repeat(65),
      'b'.repeat(40),
      'aa:bb',
      `sha1:${'a'.repeat(64)}`,
      ['a'.repeat(64), 'xyz'],
    ],
  ],
  [
    'bad cron',
    'renewal.check',
    [5, '* * *', '61 * * * *', 'every minute', '*/0 * * * *', '* * * * 8', '* * * * * * *', ''],
  ],
  [
    'bad name',
    'certificate.domains',
    [
      ['*.example.org'],
      ['-bad.example'],
      ['a..b'],
      ['localhost', 'LOCALHOST'],
      ['x'.repeat(254)],
      ['exa mple.org'],
      ['under_score.example'],
      ['::ffff:10.1.2.3'],
    ],
  ],
  [
    'bad reload command',
    'reload',
    [
      { target: 'command' },
      { target: 'command', command: 'systemctl reload nginx' },
      { target: 'command', command: [1] },
      { target: 'command', command: [] },
    ],
  ],
  ['wrong section type', 'ca', ['x']],
  ['wrong section type', 'certificate', [[]]],
  ['wrong section type', 'renewal', [5]],
];

const unknown = [
  'renewl',
  'bogus',
  'ca.urll',
  'certificate.domain',
  'renewal.every',
  'challenge.port',
  'reload.cmd',
  'trust.system',
  'metrics.file',
  'account.mail',
  'reload.traefik.file',
  'reload.nginx.bin',
];
const missing = ['ca.url', 'ca.fingerprint', 'certificate.domains', 'certificate', 'ca'];
const yaml = [
  'ca: [',
  '{',
  ': :',
  'ca:\n\turl: x\n',
  'ca: {}\nca: {}\n',
  '42',
  '- a\n- b\n',
  '',
  '"just a string"',
  '\u0000\u0001\u0002',
  'ca: &a [*a]\n',
  'certificate: {domains: &d [*d]}\n',
];

export function badCases(): BadCase[] {
  const cases: BadCase[] = [];
  for (const [category, path, vals] of values) {
    for (const v of vals)
      cases.push({ category, name: `${path} = ${JSON.stringify(v).slice(0, 40)}`, mutate: (d) => set(d, path, v) });
  }
  for (const path of unknown) cases.push({ category: 'unknown field', name: path, mutate: (d) => set(d, path, 1) });
  for (const path of missing) cases.push({ category: 'missing field', name: path, mutate: (d) => del(d, path) });
  for (const text of yaml)
    cases.push({ category: 'not YAML/JSON or not a mapping', name: JSON.stringify(text).slice(0, 30), text });
  cases.push(
    { category: 'unsafe path', name: 'config file mode 0666', setup: (_s, c) => chmodSync(c, 0o666) },
    { category: 'unsafe path', name: 'config file mode 0620 (group-writable)', setup: (_s, c) => chmodSync(c, 0o620) },
    { category: 'unsafe path', name: 'config file owned by nobody', setup: (_s, c) => chownSync(c, NOBODY, NOBODY) },
    { category: 'unsafe path', name: "config file's directory mode 0775", setup: (s) => chmodSync(s, 0o775) },
    {
      category: 'unsafe path',
      name: "config file's directory owned by nobody",
      setup: (s) => chownSync(s, NOBODY, NOBODY),
    },
    {
      category: 'unsafe path',
      name: "config file's directory mode 1777 (like /tmp)",
      setup: (s) => chmodSync(s, 0o1777),
    },
    {
      category: 'unsafe path',
      name: 'config file is a symlink owned by nobody',
      setup: (s, c) => linkOwnedByNobody(c, join(s, 'real.yaml')),
    },
    {
      category: 'unsafe path',
      name: 'certificate.dir exists with mode 0777',
      setup: (s) => mkdirMode(join(s, 'tls'), 0o777),
    },
    {
      category: 'unsafe path',
      name: 'certificate.dir is a symlink owned by nobody',
      mutate: (d, s) => set(d, 'certificate.dir', join(s, 'link')),
      setup: (s) => {
        mkdirMode(join(s, 'real'), 0o700);
        linkOwnedByNobody(join(s, 'link'), join(s, 'real'), false);
      },
    },
    {
      category: 'unsafe path',
      name: 'certificate.dir under a 0777 directory without sticky bit',
      mutate: (d, s) => set(d, 'certificate.dir', join(s, 'open', 'tls')),
      setup: (s) => mkdirMode(join(s, 'open'), 0o777),
    },
    {
      category: 'unsafe path',
      name: 'stateDir exists with mode 0777',
      setup: (s) => mkdirMode(join(s, 'state'), 0o777),
    },
    {
      category: 'unsafe path',
      name: 'stateDir under a symlink owned by nobody',
      mutate: (d, s) => set(d, 'stateDir', join(s, 'link', 'state')),
      setup: (s) => {
        mkdirMode(join(s, 'real'), 0o700);
        linkOwnedByNobody(join(s, 'link'), join(s, 'real'), false);
      },
    },
    {
      category: 'unsafe path',
      name: 'certificate.dir under a directory owned by nobody',
      mutate: (d, s) => set(d, 'certificate.dir', join(s, 'theirs', 'tls')),
      setup: (s) => mkdirMode(join(s, 'theirs'), 0o755, NOBODY),
    },
    {
      category: 'unsafe path',
      name: 'certificate.dir under a 1777 directory (like /tmp, refused as sshd does)',
      mutate: (d, s) => set(d, 'certificate.dir', join(s, 'tmp', 'tls')),
      setup: (s) => mkdirMode(join(s, 'tmp'), 0o1777),
    },
    {
      category: 'unsafe path',
      name: 'certificate.dir a root link into a directory owned by nobody',
      mutate: (d, s) => set(d, 'certificate.dir', join(s, 'link')),
      setup: (s) => {
        mkdirMode(join(s, 'theirs', 'real'), 0o700);
        chownSync(join(s, 'theirs'), NOBODY, NOBODY);
        symlinkSync(join(s, 'theirs', 'real'), join(s, 'link'));
      },
    },
    {
      category: 'unsafe path',
      name: 'stateDir under a group-writable (0775) directory',
      mutate: (d, s) => set(d, 'stateDir', join(s, 'shared', 'state')),
      setup: (s) => mkdirMode(join(s, 'shared'), 0o775),
    },
    {
      category: 'unsafe path',
      name: 'stateDir exists owned by nobody',
      setup: (s) => mkdirMode(join(s, 'state'), 0o700, NOBODY),
    },
    {
      category: 'unsafe path',
      name: 'webroot exists with mode 0777',
      mutate: (d, s) => set(d, 'challenge', { mode: 'webroot', webroot: join(s, 'www') }),
      setup: (s) => mkdirMode(join(s, 'www'), 0o777),
    },
  );
  return cases;
}

function mkdirMode(path: string, mode: number, uid = 0): void {
  mkdirSync(path, { recursive: true });
  chmodSync(path, mode); // past the umask
  chownSync(path, uid, uid);
}

/** Moves `link`'s content to `target` (when `moveFile`) and makes `link` a symlink to it owned by nobody. */
function linkOwnedByNobody(link: string, target: string, moveFile = true): void {
  if (moveFile) {
    writeFileSync(target, readFileSync(link), { mode: 0o600 });
    rmSync(link);
  }
  symlinkSync(target, link);
  lchownSync(link, NOBODY, NOBODY);
}
