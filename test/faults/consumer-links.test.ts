/**
 * A consumer account must not get to root through the certificate directory.
 * The agent runs as root (the bundle, against a real step-ca) with
 * certificate.owner: nobody; the attacks run as the real `nobody` user
 * (setpriv). Under the file model nobody can replace nothing there at all.
 * An install left over from the old model (directories owned by the
 * consumer) is the consumer's to tamper with until the agent takes it back:
 * links planted there to root's files outside must be refused and reported
 * by renew, the permission audit, status and doctor --fix, and nothing
 * outside may be chowned, chmodded or deleted.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { runAgent } from '../helpers/agent.js';
import { agentPaths, writeConfig, type AgentPaths } from './common.js';
import { record } from './table.js';

const NOBODY = 65534;
let ca: StepCa;
const made: AgentPaths[] = [];

beforeAll(async () => {
  ca = await startStepCa();
});
afterAll(async () => {
  await ca?.cleanup();
  for (const p of made) rmSync(p.dir, { recursive: true, force: true });
});

/** A fresh install with certificate.owner: nobody; the temp dir is opened so nobody can reach it. */
async function install(): Promise<AgentPaths> {
  const p = agentPaths('cert-agent-consumer-');
  made.push(p);
  chmodSync(p.dir, 0o755);
  writeConfig(p, ca, ca.acmeHttpPort, { certificate: { owner: 'nobody' } });
  const r = await runAgent(['renew', '--config', p.config]);
  expect(r.code, r.stderr).toBe(0);
  return p;
}

/** Runs one file operation as nobody:nogroup with no other groups; "ok" or the errno code. */
function asNobody(op: 'plant' | 'rename' | 'unlink' | 'read', a: string, b = ''): string {
  const script = `const fs = require('fs'); const [op, a, b] = JSON.parse(process.argv[1]);
try {
  if (op === 'plant') { const t = b + '.evil'; fs.symlinkSync(a, t); fs.renameSync(t, b); }
  if (op === 'rename') fs.renameSync(a, b);
  if (op === 'unlink') fs.rmSync(a, { recursive: true });
  if (op === 'read') fs.readFileSync(a);
  console.log('ok');
} catch (e) { console.log(e.code); }`;
  const argv = ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, '-e', script];
  argv.push(JSON.stringify([op, a, b]));
  return execFileSync('setpriv', argv, { encoding: 'utf8' }).trim();
}

/** A root-owned file (and its directory) outside the certificate directory, and how to see they are untouched. */
function outside(p: AgentPaths) {
  const dir = join(p.dir, 'outside');
  mkdirSync(dir, { mode: 0o755 });
  const file = join(dir, 'root-secret');
  writeFileSync(file, 'root only\n', { mode: 0o644 });
  chmodSync(file, 0o644);
  const look = () =>
    [dir, file].map((f) => {
      let st;
      try {
        st = lstatSync(f);
      } catch {
        return `${f} is gone`;
      }
      const content = st.isFile() ? readFileSync(f, 'utf8').trim() : readdirSync(f).join(',');
      return `${f} ${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)} ${content}`;
    });
  return { dir, file, before: look(), look };
}

/** Directories under (and including) the certificate directory that `uid` owns; links are not followed. */
function dirsOwnedBy(certDir: string, uid: number): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    const st = lstatSync(d);
    if (!st.isDirectory()) return;
    if (st.uid === uid) out.push(d);
    for (const e of readdirSync(d)) walk(join(d, e));
  };
  walk(certDir);
  return out;
}

/** Turns an install into what the old model left: every directory and set file owned by the consumer. */
function makeLegacy(certDir: string): void {
  const walk = (d: string) => {
    const st = lstatSync(d);
    if (st.isSymbolicLink()) return;
    chownSync(d, NOBODY, NOBODY);
    if (st.isDirectory()) {
      chmodSync(d, 0o700);
      for (const e of readdirSync(d)) walk(join(d, e));
    }
  };
  walk(certDir);
}

const both = (r: { stdout: string; stderr: string }) => `${r.stdout}\n${r.stderr}`;

describe('consumer (certificate.owner: nobody) against the certificate directory', () => {
  it('new install: root:nogroup, consumer reads, nobody replaces .sets/current/previous/key.pem', async ({ task }) => {
    const p = await install();
    expect((await runAgent(['renew', '--force', '--config', p.config])).code).toBe(0);
    const out = outside(p);
    const cur = join(p.certDir, readlinkSync(join(p.certDir, 'current')));
    const key = join(cur, 'key.pem');
    const who = (f: string) => {
      const st = statSync(f);
      return `${st.uid}:${st.gid} ${(st.mode & 0o777).toString(8)}`;
    };
    expect([p.certDir, join(p.certDir, '.sets'), cur].map(who)).toEqual(['0:65534 750', '0:65534 750', '0:65534 750']);
    expect([key, join(cur, 'combined.pem'), join(cur, 'cert.pem')].map(who)).toEqual([
      '0:65534 640',
      '0:65534 640',
      '0:65534 644',
    ]);
    // status and doctor take 0750/0640 with the consumer group as the model, not as drift.
    const status = await runAgent(['status', '--json', '--config', p.config]);
    expect([status.code, JSON.parse(status.stdout).problems]).toEqual([0, []]);
    const doctor = await runAgent(['doctor', '--config', p.config]);
    expect(doctor.stdout).toMatch(/^ok +permissions +\d+ path\(s\) private and owned as configured$/m);
    expect(doctor.stdout).not.toMatch(/^PROBLEM +(certificate|private key|permissions)/m);
    // The consumer reads what it needs ...
    expect(asNobody('read', join(p.certDir, 'key.pem'))).toBe('ok');
    // ... and changes nothing.
    const tried: Record<string, string[]> = {};
    for (const name of ['.sets', 'current', 'previous', 'key.pem']) {
      const path = join(p.certDir, name);
      tried[name] = [
        asNobody('plant', out.dir, path),
        asNobody('rename', path, `${path}.moved`),
        asNobody('unlink', path),
      ];
    }
    tried['set key.pem'] = [asNobody('plant', out.file, key), asNobody('unlink', key)];
    for (const [name, codes] of Object.entries(tried)) expect([name, codes]).toEqual([name, codes.map(() => 'EACCES')]);
    expect(dirsOwnedBy(p.certDir, NOBODY)).toEqual([]);
    expect(out.look()).toEqual(out.before);
    const codes = Object.values(tried).flat();
    record(task, {
      scenario: 'consumer vs. certificate dir (new install)',
      injected: 'as nobody: symlink over, rename and delete .sets, current, previous, key.pem and the set key',
      expected: 'EACCES for every one; consumer still reads key.pem',
      observed:
        `${codes.length} attempts, all ${[...new Set(codes)].join('/')}; ` +
        'dirs 0750 root:nogroup, key 0640 root:nogroup',
    });
  });

  it('old-model install: planted key.pem links refused; doctor --fix, audit, renew leave outside', async ({ task }) => {
    const p = await install();
    makeLegacy(p.certDir);
    const out = outside(p);
    const setKey = join(p.certDir, readlinkSync(join(p.certDir, 'current')), 'key.pem');
    // As the consumer that owns the directories: the fixed key.pem and the live set's key point to root's file.
    expect(asNobody('plant', out.file, join(p.certDir, 'key.pem'))).toBe('ok');
    expect(asNobody('plant', out.file, setKey)).toBe('ok');

    const doctor = await runAgent(['doctor', '--fix', '--config', p.config]);
    expect(out.look()).toEqual(out.before);
    const named = join(p.certDir, 'key.pem');
    const link = `is a symbolic link to ${out.file}`;
    expect(doctor.stdout).toContain(`${named} ${link}, not the agent's link current/key.pem: not followed`);
    expect(doctor.stdout).toContain(`${setKey} ${link}, not the agent's: not followed, not changed`);
    expect(doctor.code).toBe(1);

    const audit = await runAgent(['renew', '--config', p.config]);
    expect(out.look()).toEqual(out.before);
    expect(audit.code).toBe(73);
    const refusal = `${setKey} is a symbolic link to ${out.file}, not a file the agent made: refusing to follow it`;
    expect(audit.stderr).toContain(`cert-agent: ${refusal}`);

    const forced = await runAgent(['renew', '--force', '--config', p.config]);
    expect(out.look()).toEqual(out.before);
    expect(forced.code).toBe(73);
    const status = await runAgent(['status', '--json', '--config', p.config]);
    expect(JSON.parse(status.stdout).problems.join(' | ')).toContain(`${setKey} is a symbolic link to ${out.file}`);
    // The consumer no longer owns any directory, and the fixed name is the agent's link again.
    expect(dirsOwnedBy(p.certDir, NOBODY)).toEqual([]);
    expect(readlinkSync(join(p.certDir, 'key.pem'))).toBe('current/key.pem');
    expect(asNobody('plant', out.file, join(p.certDir, 'cert.pem'))).toBe('EACCES');
    record(task, {
      scenario: 'consumer links in an old-model install (key.pem)',
      injected:
        'dirs chowned to nobody; as nobody: key.pem and the live set key.pem -> a root file outside; ' +
        'doctor --fix, renew, renew --force',
      expected: 'refused and reported; outside file unchanged; dirs back to root',
      observed:
        `doctor exit ${doctor.code}, renew exit ${audit.code}, renew --force exit ${forced.code}; ` +
        `outside ${out.look()[1]}; nobody-owned dirs: ${dirsOwnedBy(p.certDir, NOBODY).length}`,
    });
  });

  it('old-model install: .sets -> a root directory is refused; nothing there re-owned or deleted', async ({ task }) => {
    const p = await install();
    makeLegacy(p.certDir);
    const out = outside(p);
    const stash = join(p.dir, 'nobody-stash');
    mkdirSync(stash, { mode: 0o700 });
    chownSync(stash, NOBODY, NOBODY);
    // As the consumer: the real .sets goes away, .sets now names root's directory.
    expect(asNobody('rename', join(p.certDir, '.sets'), join(stash, 'sets'))).toBe('ok');
    expect(asNobody('plant', out.dir, join(p.certDir, '.sets'))).toBe('ok');
    const sets = join(p.certDir, '.sets');
    const refusal = `${sets} is a symbolic link to ${out.dir}, not a directory the agent made: refusing to follow it`;

    const forced = await runAgent(['renew', '--force', '--config', p.config]);
    expect(out.look()).toEqual(out.before);
    expect(forced.code).toBe(73);
    expect(both(forced)).toContain(refusal);
    const audit = await runAgent(['renew', '--config', p.config]);
    expect(out.look()).toEqual(out.before);
    expect(both(audit)).toContain(refusal);
    const doctor = await runAgent(['doctor', '--fix', '--config', p.config]);
    expect(out.look()).toEqual(out.before);
    expect(doctor.stdout).toContain(`${sets} is a symbolic link to ${out.dir}, not the agent's: not followed`);
    expect(doctor.stdout).toContain(refusal);
    const status = await runAgent(['status', '--json', '--config', p.config]);
    expect(status.code).toBe(2);
    expect(JSON.parse(status.stdout).problems).toContain(`${refusal}; remove it`);
    expect(dirsOwnedBy(p.certDir, NOBODY)).toEqual([]);
    expect(lstatSync(join(p.certDir, '.sets')).isSymbolicLink()).toBe(true);
    record(task, {
      scenario: 'consumer links in an old-model install (.sets)',
      injected:
        'dirs chowned to nobody; as nobody: .sets moved away and replaced by a link to a root directory ' +
        'with a root file; renew --force, renew, doctor --fix, status',
      expected: 'refused and reported everywhere; the directory and its file keep owner, mode and existence',
      observed:
        `renew --force exit ${forced.code}, doctor exit ${doctor.code}, status exit ${status.code}; ` +
        `outside ${out.look().join('; ')}`,
    });
  });
});
