/**
 * The names consumers read, against a real step-ca and a real nginx that
 * serves certificate.dir/fullchain.pem and key.pem: a name deleted, a
 * regular file copied over a link, a link pointed elsewhere, or a file the
 * live set lacks is CRITICAL in status (text and --json, valid against the
 * schema) and a PROBLEM in doctor, each naming the file; the next `renew`,
 * although the certificate is not due, puts it back (logged
 * published_name_repaired), keeps a copied file beside, and nginx reloads
 * onto the live set.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { freePort, startStepCa, type StepCa } from '../harness/stepca.js';
import { runAgent, tempDir } from '../helpers/agent.js';
import schema from '../../docs/status.schema.json' with { type: 'json' };

const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
(addFormatsModule as unknown as (a: Ajv2020) => void)(ajv);
const validate = ajv.compile(schema);

let ca: StepCa;
let dir: string;
let nginx: ChildProcess | undefined;
let tlsPort: number;
const cfg = () => join(dir, 'config.yaml');
const certDir = () => join(dir, 'tls');
const nginxConf = () => join(dir, 'nginx', 'nginx.conf');

beforeAll(async () => {
  ca = await startStepCa();
  dir = tempDir('cert-agent-published-');
  tlsPort = await freePort();
  writeFileSync(
    cfg(),
    JSON.stringify({
      ca: { url: ca.url, fingerprint: ca.rootFingerprint },
      certificate: { domains: ['localhost'], dir: certDir() },
      challenge: { mode: 'standalone', listen: `127.0.0.1:${ca.acmeHttpPort}` },
      reload: { target: 'nginx', nginx: { config: nginxConf() }, verify: `127.0.0.1:${tlsPort}` },
      stateDir: join(dir, 'state'),
    }),
    { mode: 0o600 },
  );
  // The first certificate, before nginx exists (as in a new container); the reload fails then, the files stay.
  await runAgent(['renew', '--config', cfg()]);
  expect(existsSync(join(certDir(), 'fullchain.pem'))).toBe(true);
  const ndir = join(dir, 'nginx');
  mkdirSync(join(ndir, 'tmp'), { recursive: true });
  writeFileSync(
    nginxConf(),
    `user www-data; worker_processes 1; pid ${ndir}/nginx.pid; error_log ${ndir}/error.log;
events { worker_connections 64; }
http {
  access_log off; client_body_temp_path ${ndir}/tmp; proxy_temp_path ${ndir}/tmp;
  fastcgi_temp_path ${ndir}/tmp; uwsgi_temp_path ${ndir}/tmp; scgi_temp_path ${ndir}/tmp;
  server {
    listen 127.0.0.1:${tlsPort} ssl;
    server_name localhost;
    ssl_certificate ${certDir()}/fullchain.pem;
    ssl_certificate_key ${certDir()}/key.pem;
    location / { return 200 "site\\n"; }
  }
}
`,
  );
  nginx = spawn('nginx', ['-c', nginxConf(), '-g', 'daemon off;'], { stdio: 'ignore' });
  const deadline = Date.now() + 5000;
  while (!existsSync(join(ndir, 'nginx.pid'))) {
    if (Date.now() > deadline) throw new Error(`nginx did not start: ${readFileSync(join(ndir, 'error.log'), 'utf8')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  // Now the consumer takes it: the reload left over from the first pass is retried.
  expect((await runAgent(['renew', '--config', cfg()])).code).toBe(0);
});
afterAll(async () => {
  if (nginx && nginx.exitCode === null) {
    const gone = new Promise((r) => nginx?.once('exit', r));
    nginx.kill('SIGTERM');
    await gone;
  }
  await ca?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const liveSerial = () =>
  new X509Certificate(readFileSync(join(certDir(), 'current', 'cert.pem'))).serialNumber.toLowerCase();
const linkOf = (name: string) => {
  const path = join(certDir(), name);
  return lstatSync(path).isSymbolicLink() ? readlinkSync(path) : 'not a link';
};
/** A problem line matching `re`. */
const line = (re: RegExp | string) => expect.stringMatching(re);

async function status() {
  const text = await runAgent(['status', '--config', cfg()]);
  const json = await runAgent(['status', '--json', '--config', cfg()]);
  const doc = JSON.parse(json.stdout);
  expect(validate(doc)).toBe(true);
  expect(validate.errors ?? []).toEqual([]);
  expect(json.code).toBe(text.code);
  return { code: text.code, text: text.stdout, doc };
}

async function doctorProblems(): Promise<string[]> {
  const r = await runAgent(['doctor', '--config', cfg()]);
  return r.stdout.split('\n').filter((l) => l.startsWith('PROBLEM'));
}

/** renew through the bundle; its log lines (stderr, JSON) by event. */
async function renew() {
  const r = await runAgent(['renew', '--config', cfg()]);
  const lines = r.stderr
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { ...r, lines, events: (e: string) => lines.filter((l) => l.event === e) };
}

describe('the names consumers read', () => {
  it('starts clean: every name a link into the live set, status OK', async () => {
    const s = await status();
    expect(s.code).toBe(0);
    const states = s.doc.certificate.publishedNames.map((p: { name: string; state: string }) => `${p.name}:${p.state}`);
    expect(states).toEqual([
      'key.pem:ok',
      'cert.pem:ok',
      'chain.pem:ok',
      'fullchain.pem:ok',
      'ca.pem:ok',
      'combined.pem:ok',
    ]);
    expect(s.text).toMatch(
      /published +key\.pem, cert\.pem, chain\.pem, fullchain\.pem, ca\.pem, combined\.pem link to/,
    );
  });

  it('cert.pem and fullchain.pem deleted: CRITICAL naming them, doctor PROBLEM, renew (not due) restores', async () => {
    const serial = liveSerial();
    rmSync(join(certDir(), 'cert.pem'));
    rmSync(join(certDir(), 'fullchain.pem'));
    // What the issue saw: nginx cannot load its configuration any more.
    const test = await new Promise<number | null>((r) =>
      spawn('nginx', ['-c', nginxConf(), '-t'], { stdio: 'ignore' }).once('exit', r),
    );
    expect(test).not.toBe(0);

    const s = await status();
    expect(s.code).toBe(2);
    expect(s.doc.status).toBe('CRITICAL');
    const missing = new RegExp(`^${certDir()}/cert\\.pem is missing: consumers reading cert\\.pem fail`);
    expect(s.doc.problems).toContainEqual(line(missing));
    expect(s.doc.problems).toContainEqual(line(new RegExp(`^${certDir()}/fullchain\\.pem is missing`)));
    expect(s.text.split('\n')[0]).toMatch(/^cert-agent CRITICAL - .*cert\.pem is missing/);
    expect(s.text).toMatch(/published +cert\.pem missing, fullchain\.pem missing/);
    const problems = await doctorProblems();
    expect(problems).toContainEqual(
      line(/^PROBLEM published name +.*\/cert\.pem is missing: run cert-agent renew \(it restores/),
    );
    expect(problems).toContainEqual(expect.stringMatching(/^PROBLEM published name +.*\/fullchain\.pem is missing/));

    const r = await renew();
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^not due: serial /);
    expect(r.stdout).toMatch(/restored cert\.pem, fullchain\.pem \(links into the live set\); nginx serves serial /);
    const repaired = r.events('published_name_repaired').map((l) => [l.name, l.was, l.level]);
    expect(repaired).toEqual([
      ['cert.pem', 'missing', 'warn'],
      ['fullchain.pem', 'missing', 'warn'],
    ]);
    expect(linkOf('cert.pem')).toBe('current/cert.pem');
    expect(linkOf('fullchain.pem')).toBe('current/fullchain.pem');
    expect(liveSerial()).toBe(serial);
    expect((await status()).code).toBe(0);
    expect(await doctorProblems()).toEqual([]);
  });

  it('a file copied over fullchain.pem: CRITICAL, relinked, the copy kept beside, nginx on the live set', async () => {
    const copy = readFileSync(join(certDir(), 'fullchain.pem'), 'utf8');
    rmSync(join(certDir(), 'fullchain.pem'));
    writeFileSync(join(certDir(), 'fullchain.pem'), copy, { mode: 0o644 });
    const s = await status();
    expect(s.code).toBe(2);
    const fullchain = s.doc.certificate.publishedNames.find((p: { name: string }) => p.name === 'fullchain.pem');
    expect(fullchain).toMatchObject({ state: 'regular-file' });
    expect(s.doc.problems).toContainEqual(
      line(/fullchain\.pem is a regular file \(copied over the link\?\), not the link/),
    );
    expect(await doctorProblems()).toContainEqual(
      line(
        /^PROBLEM published name +.*fullchain\.pem is a regular file.*keeps the file as fullchain\.pem\.before-cert/,
      ),
    );

    const r = await renew();
    expect(r.code).toBe(0);
    const keptAs = `${certDir()}/fullchain.pem.before-cert-agent`;
    expect(r.events('published_name_repaired')).toMatchObject([{ name: 'fullchain.pem', was: 'regular-file', keptAs }]);
    expect(linkOf('fullchain.pem')).toBe('current/fullchain.pem');
    expect(readFileSync(join(certDir(), 'fullchain.pem.before-cert-agent'), 'utf8')).toBe(copy);
    expect(r.stdout).toMatch(new RegExp(`; nginx serves serial ${liveSerial()} on 127\\.0\\.0\\.1:${tlsPort}`));
    expect((await status()).code).toBe(0);
  });

  it('a link pointing outside the sets: CRITICAL, then put back without touching what it pointed to', async () => {
    const outside = join(dir, 'elsewhere');
    mkdirSync(outside, { recursive: true });
    writeFileSync(join(outside, 'cert.pem'), 'not ours\n');
    rmSync(join(certDir(), 'cert.pem'));
    symlinkSync(join(outside, 'cert.pem'), join(certDir(), 'cert.pem'));
    const s = await status();
    expect(s.code).toBe(2);
    const elsewhere = new RegExp(`cert\\.pem points to ${outside}/cert\\.pem, outside the agent's live set`);
    expect(s.doc.problems).toContainEqual(line(elsewhere));
    const r = await renew();
    expect(r.code).toBe(0);
    // Logged as a repaired name (or, where the store itself replaces foreign links first, as such).
    const logged = [...r.events('published_name_repaired'), ...r.events('store_secured')].map((l) => JSON.stringify(l));
    expect(logged.join('\n')).toMatch(/cert\.pem/);
    expect(linkOf('cert.pem')).toBe('current/cert.pem');
    expect(readFileSync(join(outside, 'cert.pem'), 'utf8')).toBe('not ours\n');
    expect((await status()).code).toBe(0);
  });

  it('a file the live set lacks (dangling chain.pem): CRITICAL; the next renew installs a complete set', async () => {
    const before = liveSerial();
    rmSync(join(certDir(), 'current', 'chain.pem'));
    const s = await status();
    expect(s.code).toBe(2);
    expect(s.doc.problems).toContainEqual(
      line(
        /chain\.pem -> current\/chain\.pem is dangling: the live set has no chain\.pem.*the next check installs a complete/,
      ),
    );
    const r = await renew();
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^renewed \(the live set lacks chain\.pem\)/);
    expect(liveSerial()).not.toBe(before);
    expect(existsSync(join(certDir(), 'chain.pem'))).toBe(true);
    expect((await status()).code).toBe(0);
  });
});
