/**
 * The host scripts (packaging/proxmox/) against containers that answer as a
 * hostile one would: JSON fragments, terminal escapes, 100 MB of output, no
 * answer at all. Run with dash, as on a Proxmox host, against the stand-in
 * for `pct` (test/harness/pct, not Proxmox's): each container here is a
 * "scripted container" of the stand-in, a shell script on the host that gets
 * the argv pct would run inside, so no container is booted. The real fleet
 * (booted with systemd-nspawn, real agents) is test/integration/fleet.test.ts.
 */
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/agent.js';
import { hostScriptRoot } from '../helpers/host-root.js';

const REPO = resolve(import.meta.dirname, '../..');
const FLEET = join(REPO, 'packaging/proxmox/cert-agent-fleet');
const HOOK = join(REPO, 'packaging/proxmox/cert-agent-ca-hook');
const FP_OLD = 'a'.repeat(64);
const FP_OTHER = 'b'.repeat(64);
/** Anything a terminal would act on: C0 but newline, DEL, and every byte above 0x7e. */
const UNPRINTABLE = /[^\n\x20-\x7e]/;

let work: string;
let rootPem: string;
let rootFp: string;
/** A second root: what a CA container serves after it was recreated once more. */
let root2Pem: string;
let root2Fp: string;

beforeAll(() => {
  [rootPem, rootFp] = hostScriptRoot('hostile');
  [root2Pem, root2Fp] = hostScriptRoot('hostile');
});

afterEach(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/**
 * What a scripted container answers, as shell snippets: `line` for `cert-agent
 * status --line`, `json` for `status --json`, `enroll` for `cert-agent enroll`.
 * Every command it gets is appended to calls.log.
 */
interface Answers {
  line?: string;
  json?: string;
  enroll?: string;
  /** The template hook `install` runs. */
  hook?: string;
  /** The CA's root at /etc/step-ca/certs/root_ca.crt (true), or at this path (the other candidates absent). */
  root?: boolean | string;
  /** A shell snippet run before each root read (e.g. to swap the root between two reads). */
  onRoot?: string;
  /** `cert-agent` on the container's PATH: there (default when `line` is set), absent, or unable to run. */
  agent?: 'absent' | 'broken';
}

const okLine = (names = 'web.example') => `printf 'v1\\tOK\\t${names}\\t86400\\t43200\\t${FP_OLD}\\t-\\n'`;
/** One `v2` line of `status --line` (a v1 line and the certificate's name), as printf's format. */
const v2 = (cert: string, state = 'OK', names = 'web.example', fp = FP_OLD, error = '-') =>
  `v2\\t${state}\\t${names}\\t86400\\t43200\\t${fp}\\t${error}\\t${cert}\\n`;

function fleetDir(cts: Record<number, Answers>): void {
  work = tempDir('cert-agent-fleet-hostile-');
  for (const d of ['pct', 'conf', 'state']) mkdirSync(join(work, d));
  for (const [id, a] of Object.entries(cts)) {
    const script = join(work, `ct${id}.sh`);
    const rootAt = a.root === true ? '/etc/step-ca/certs/root_ca.crt' : a.root || '/nonexistent';
    // The container's PATH: the two fixed `sh -c` scripts that look for cert-agent run for real in it.
    const bin = join(work, `bin${id}`);
    mkdirSync(bin);
    if (a.agent === 'broken') writeFileSync(join(bin, 'cert-agent'), '#!/nonexistent/node\n', { mode: 0o755 });
    else if (a.agent !== 'absent' && a.line !== undefined) {
      writeFileSync(join(bin, 'cert-agent'), `#!/bin/sh\nPATH=/usr/bin:/bin\n${a.line}\n`, { mode: 0o755 });
    }
    writeFileSync(
      script,
      `#!/bin/sh
# Scripted container ${id} of the pct stand-in (hostile on purpose).
printf '%s\\n' "$*" >> '${work}/calls.${id}.log'
while [ $# -gt 0 ]; do case "$1" in env|-i|*=*) shift ;; *) break ;; esac; done
case "$*" in
  'sh -c command -v cert-agent'*) PATH='${bin}' exec /bin/sh -c "$3" ;;
  *'status --line'*) ${a.line ?? 'exit 127'} ;;
  'cert-agent status --json') ${a.json ?? 'exit 3'} ;;
  'cert-agent enroll'*) ${a.enroll ?? 'exit 0'} ;;
  'sh /root/cert-agent-postinstall.sh') ${a.hook ?? 'exit 0'} ;;
  'cat ${rootAt}') ${a.onRoot ?? ':'}; cat '${work}/root.pem' ;;
  'cat '*) exit 1 ;;
  'sh -c cat'*) cat > /dev/null ;;
  *) exit 0 ;;
esac
`,
    );
    chmodSync(script, 0o755);
    writeFileSync(join(work, 'pct', `${id}.conf`), `name=ct${id}\npid=${process.pid}\nscript=${script}\n`);
  }
  writeFileSync(join(work, 'root.pem'), rootPem);
}

const calls = (id: number) =>
  existsSync(join(work, `calls.${id}.log`)) ? readFileSync(join(work, `calls.${id}.log`), 'utf8') : '';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a host script with dash in a process group of its own, killed whole after `limitMs`. */
function host(
  script: string,
  args: string[],
  env: Record<string, string> = {},
  limitMs = 30_000,
  cwd?: string,
): Promise<Run> {
  const start = Date.now();
  return new Promise((done) => {
    const child = spawn('dash', [script, ...args], {
      detached: true,
      cwd,
      env: {
        PATH: `${join(REPO, 'test/harness')}:/usr/sbin:/usr/bin:/sbin:/bin`,
        PCT_SHIM_DIR: join(work, 'pct'),
        CERT_AGENT_FLEET_CONF: join(work, 'conf'),
        CERT_AGENT_FLEET_STATE: join(work, 'state'),
        CERT_AGENT_FLEET_LOG: join(work, 'fleet.log'),
        CERT_AGENT_FLEET_SYSLOG: '0',
        CERT_AGENT_FLEET: FLEET,
        CERT_AGENT_FLEET_CA_WAIT: '0',
        CERT_AGENT_FLEET_ROOT_WAIT: '0',
        ...env,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('latin1')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('latin1')));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone already */
      }
    }, limitMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* nothing left of the group */
      }
      done({ code, stdout, stderr, ms: Date.now() - start });
    });
  });
}

describe('cert-agent-fleet status: a container cannot rewrite the report (N2)', () => {
  it('a JSON fragment in a number field is UNKNOWN "unparseable answer"; the other containers stay', async () => {
    fleetDir({
      101: { line: `printf 'v1\\tOK\\tweb.example\\t0}],"worst":"OK","containers":[{"id":1\\t5\\t-\\t-\\n'` },
      102: { line: `printf 'v1\\tCRITICAL\\tdb.example\\t-100\\t-200\\t${FP_OLD}\\tcertificate expired\\n'; exit 2` },
    });
    const r = await host(FLEET, ['status', '--json']);
    const doc = JSON.parse(r.stdout) as { worst: string; containers: Record<string, unknown>[] };
    expect(doc.worst).toBe('UNKNOWN');
    expect(doc.containers.map((c) => [c.id, c.state])).toEqual([
      [101, 'UNKNOWN'],
      [102, 'CRITICAL'],
    ]);
    expect(doc.containers[0]?.lastError).toMatch(/^unparseable answer/);
    expect(doc.containers[1]).toMatchObject({ expiresIn: -100, nextRenewalIn: -200, pinnedRoots: [FP_OLD] });
    expect(r.code).toBe(3);
  });

  it('a quote, a backslash or a leading zero in any field is refused, never copied', async () => {
    fleetDir({
      101: { line: `printf 'v1\\tOK\\tweb"x\\t1\\t1\\t-\\t-\\n'` },
      102: { line: `printf 'v1\\tOK\\tdb.example\\t007\\t1\\t-\\t-\\n'` },
      103: { line: `printf 'v1\\tWARNING\\tok.example\\t1\\t1\\t-\\tsaid "hi" \\\\\\\\ there\\n'` },
    });
    const doc = JSON.parse((await host(FLEET, ['status', '--json'])).stdout) as {
      containers: Record<string, unknown>[];
    };
    expect(doc.containers.map((c) => c.state)).toEqual(['UNKNOWN', 'UNKNOWN', 'WARNING']);
    expect(doc.containers[2]?.lastError).toBe('said "hi" \\\\ there');
  });
});

describe('cert-agent-fleet and the hook: nothing a container said reaches a terminal or a log raw (N4)', () => {
  const evil = String.raw`\033]0;owned\007\033[2J\302\233 31m\233\177 tail`;
  it('escape sequences, C1 bytes and DEL in the last error become "?" in the table and the JSON', async () => {
    fleetDir({ 101: { line: `printf 'v1\\tWARNING\\tweb.example\\t1\\t1\\t-\\t${evil}\\n'` } });
    const text = await host(FLEET, ['status']);
    expect(text.stdout).not.toMatch(UNPRINTABLE);
    expect(text.stdout).toContain('?]0;owned??[2J?? 31m?? tail');
    const json = await host(FLEET, ['status', '--json']);
    expect(json.stdout).not.toMatch(UNPRINTABLE);
    expect(JSON.parse(json.stdout).containers[0].state).toBe('WARNING');
    // An escape in a field with a pattern makes the answer unparseable.
    fleetDir({ 101: { line: `printf 'v1\\tOK\\tweb.example\\033[2J\\t1\\t1\\t-\\t-\\n'` } });
    expect((await host(FLEET, ['status'])).stdout).toMatch(/^101 +ct101 +- +UNKNOWN .*unparseable answer/m);
  });

  it('an enroll error with escapes: clean in repin output, the hook log and the audit', async () => {
    fleetDir({ 101: { line: okLine(), enroll: `printf 'refused ${evil}\\n' >&2; exit 65` }, 103: { root: true } });
    writeFileSync(join(work, 'state/ca-103.fingerprint'), `${FP_OLD}\n`);
    const r = await host(HOOK, ['103', 'post-start']);
    expect(r.stdout).toMatch(/101 ct101: FAILED \(cert-agent enroll exit 65\): refused \?\]0;owned/);
    expect(r.stdout).not.toMatch(UNPRINTABLE);
    expect(readFileSync(join(work, 'fleet.log'), 'latin1')).not.toMatch(UNPRINTABLE);
    expect(readFileSync(join(work, 'state/repin.log'), 'latin1')).not.toMatch(UNPRINTABLE);
    expect(r.code).toBe(1);
  });
});

describe('every pct call is bounded in time and bytes (N3)', () => {
  it('100 MB of output after a valid line: that container UNKNOWN (too long), the others answered', async () => {
    fleetDir({
      101: { line: `${okLine()}; head -c 100000000 /dev/zero | tr '\\0' A` },
      102: { line: okLine('db.example') },
    });
    const r = await host(FLEET, ['status']);
    expect(r.stdout).toMatch(/^101 +ct101 +- +UNKNOWN .*answer longer than 65536 bytes$/m);
    expect(r.stdout).toMatch(/^102 +ct102 +default +OK +db\.example /m);
    expect(r.code).toBe(3);
  });

  it('a container that never answers: UNKNOWN after the timeout, the others answered', async () => {
    fleetDir({ 101: { line: 'sleep 120' }, 102: { line: okLine('db.example') } });
    const r = await host(FLEET, ['status'], { CERT_AGENT_FLEET_TIMEOUT: '2' }, 20_000);
    expect(r.stdout).toMatch(/^101 +ct101 +- +UNKNOWN .*no answer within 2s$/m);
    expect(r.stdout).toMatch(/^102 +ct102 +default +OK /m);
    expect(r.ms).toBeLessThan(15_000);
  });

  it("a process left behind holding the answer's pipe does not hold status past its limits", async () => {
    fleetDir({ 101: { line: `(setsid sleep 60 &); ${okLine()}` }, 102: { line: okLine('db.example') } });
    const r = await host(FLEET, ['status'], { CERT_AGENT_FLEET_TIMEOUT: '2' }, 25_000);
    expect(r.stdout).toMatch(/^101 +ct101 +default +OK /m);
    expect(r.stdout).toMatch(/^102 +ct102 +default +OK /m);
    expect(r.ms).toBeLessThan(15_000);
  });

  it("the limits are the host's: a container's own processes may write large files (install)", async () => {
    // 2 MB into a file beside the script (the container's own disk, in a real one).
    fleetDir({ 101: { hook: 'head -c 2000000 /dev/zero > "$(dirname "$0")/big" && [ -s "$(dirname "$0")/big" ]' } });
    const deb = join(work, 'cert-agent_1.0.0_all.deb');
    writeFileSync(deb, 'x');
    const r = await host(FLEET, ['install', '101', '--deb', deb, '--hook', deb]);
    expect(r.stdout).toMatch(/^101 ct101: ok$/m);
    expect(r.code).toBe(0);
  });

  it('repin: one enroll that hangs fails alone, the others are re-pinned, each with an audit line', async () => {
    fleetDir({
      101: { line: okLine(), enroll: 'sleep 120' },
      102: { line: okLine('db.example') },
      104: { line: okLine('app.example'), enroll: 'head -c 100000000 /dev/zero' },
    });
    const r = await host(FLEET, ['repin', '--fingerprint', FP_OTHER, '--vouched-by', 'admin alice'], {
      CERT_AGENT_FLEET_ENROLL_TIMEOUT: '2',
    });
    expect(r.stdout).toMatch(/^101 ct101: FAILED \(cert-agent enroll no answer within 2s\)/m);
    expect(r.stdout).toMatch(new RegExp(`^102 ct102: ok \\(pinned ${FP_OTHER}\\)$`, 'm'));
    expect(r.stdout).toMatch(/^104 ct104: FAILED \(cert-agent enroll answer longer than 65536 bytes\)/m);
    expect(r.code).toBe(1);
    expect(r.ms).toBeLessThan(15_000);
    expect(calls(102)).toContain(`cert-agent enroll --fingerprint ${FP_OTHER} --vouched-by admin alice`);
    const audit = readFileSync(join(work, 'state/repin.log'), 'utf8');
    expect(audit).toMatch(new RegExp(`CT 102 root ${FP_OLD} -> ${FP_OTHER} vouched by "admin alice": ok$`, 'm'));
    expect(audit).toMatch(/CT 101 root a{64} -> b{64} vouched by "admin alice": FAILED/);
  });

  it('the hook ends within its own limit however long the consumers take', async () => {
    fleetDir({ 101: { line: okLine(), enroll: 'sleep 120' }, 103: { root: true } });
    writeFileSync(join(work, 'state/ca-103.fingerprint'), `${FP_OLD}\n`);
    const r = await host(HOOK, ['103', 'post-start'], { CERT_AGENT_FLEET_HOOK_TIMEOUT: '4' }, 25_000);
    expect(r.stdout).toContain('did not finish within 4s');
    expect(r.code).toBe(1);
    expect(r.ms).toBeLessThan(15_000);
    expect(readFileSync(join(work, 'state/ca-103.fingerprint'), 'utf8').trim()).toBe(FP_OLD);
  });
});

describe('cert-agent-ca-hook: automatic re-pinning can be off, is audited, and skips cross-signed roots (N9)', () => {
  it('auto-repin=no in ca-hook.conf: the hook only alerts, no consumer is touched', async () => {
    fleetDir({ 101: { line: okLine() }, 103: { root: true } });
    writeFileSync(join(work, 'state/ca-103.fingerprint'), `${FP_OLD}\n`);
    writeFileSync(join(work, 'conf/ca-hook.conf'), '# the admin vouches by hand\nauto-repin=no\n');
    const r = await host(HOOK, ['103', 'post-start']);
    expect(r.stdout).toContain(`ALERT: CA root changed: ${FP_OLD} -> ${rootFp}; automatic re-pinning is off`);
    expect(readFileSync(join(work, 'fleet.log'), 'utf8')).toContain('automatic re-pinning is off');
    expect(calls(101)).not.toContain('enroll');
    expect(r.code).toBe(1);
    // A value that is neither yes nor no is taken as no, and said.
    writeFileSync(join(work, 'conf/ca-hook.conf'), 'auto-repin = maybe\n');
    const unclear = await host(HOOK, ['103', 'post-start']);
    expect(unclear.stdout).toContain('auto-repin "maybe" (in');
    expect(unclear.stdout).toContain('automatic re-pinning is off');
    expect(calls(101)).not.toContain('enroll');
    // The admin vouches: the record follows, so the next start is quiet.
    const by = await host(FLEET, ['repin', '--from-ca', '103', '--vouched-by', 'admin bob']);
    expect(by.code).toBe(0);
    expect((await host(HOOK, ['103', 'post-start'])).stdout).toContain(`CA root unchanged (${rootFp})`);
  });

  it('a re-pin by the hook is an audit line (old, new, the host that vouched) that status shows', async () => {
    fleetDir({ 101: { line: okLine() }, 103: { root: true } });
    writeFileSync(join(work, 'state/ca-103.fingerprint'), `${FP_OLD}\n`);
    const r = await host(HOOK, ['103', 'post-start']);
    expect(r.stdout).toMatch(new RegExp(`101 ct101: ok \\(pinned ${rootFp}\\)`));
    expect(r.code).toBe(0);
    expect(calls(101)).toMatch(/cert-agent enroll --fingerprint [0-9a-f]{64} --vouched-by host \S+ ca-hook 103/);
    const line = new RegExp(`CT 101 root ${FP_OLD} -> ${rootFp} vouched by "host \\S+ ca-hook 103": ok`);
    expect((await host(FLEET, ['status'])).stdout).toMatch(new RegExp(`^last re-pin: .*${line.source}$`, 'm'));
    const doc = JSON.parse((await host(FLEET, ['status', '--json'])).stdout) as { lastRepin: string };
    expect(doc.lastRepin).toMatch(line);
  });

  it('a consumer whose own trust refresh already adopted the new root is not re-pinned', async () => {
    // As `cert-agent status --json` prints it (indented), abridged.
    const trusted = `[\\n      "${FP_OLD}",\\n      "${rootFp}"\\n    ]`;
    fleetDir({
      101: { line: okLine(), json: `printf '{\\n  "ca": {\\n    "trustedFingerprints": ${trusted}\\n  }\\n}\\n'` },
      103: { root: true },
    });
    writeFileSync(join(work, 'state/ca-103.fingerprint'), `${FP_OLD}\n`);
    const r = await host(HOOK, ['103', 'post-start']);
    expect(r.stdout).toContain(`101 ct101: ok (already trusts ${rootFp}: adopted by its own trust refresh`);
    expect(r.stdout).toContain(`no re-pin needed: every consumer already trusts ${rootFp}`);
    expect(calls(101)).not.toContain('enroll');
    expect(r.code).toBe(0);
  });
});

describe('cert-agent-fleet install: which package', () => {
  it('the explicit --deb, else the one next to the script, never one in the current directory', async () => {
    fleetDir({ 101: {} });
    const shipped = join(work, 'shipped');
    mkdirSync(shipped);
    copyFileSync(FLEET, join(shipped, 'cert-agent-fleet'));
    copyFileSync(join(dirname(FLEET), 'cert-agent-cluster.sh'), join(shipped, 'cert-agent-cluster.sh'));
    writeFileSync(join(shipped, 'cert-agent_1.0.0_all.deb'), 'shipped');
    writeFileSync(join(shipped, 'postinstall.sh'), '#!/bin/sh\n');
    const cwd = join(work, 'cwd');
    mkdirSync(cwd);
    writeFileSync(join(cwd, 'cert-agent_9.9.9_all.deb'), 'planted');
    const inCwd = (args: string[]) => host(join(shipped, 'cert-agent-fleet'), args, {}, 30_000, cwd);
    const r = await inCwd(['install', '101']);
    expect(r.stdout).toMatch(/^101 ct101: ok$/m);
    expect(calls(101)).toContain('/root/cert-agent_1.0.0_all.deb');
    expect(calls(101)).not.toContain('9.9.9');
    await inCwd(['install', '101', '--deb', join(cwd, 'cert-agent_9.9.9_all.deb')]);
    expect(calls(101)).toContain('/root/cert-agent_9.9.9_all.deb');
  });
});

describe('cert-agent-ca-hook: automatic re-pinning is off unless plainly on', () => {
  it('"auto-repin: no", any case, "_", an empty variable, a line not understood, an unreadable file: off', async () => {
    fleetDir({ 101: { line: okLine() }, 103: { root: true } });
    writeFileSync(join(work, 'state/ca-103.fingerprint'), `${FP_OLD}\n`);
    const conf = join(work, 'conf/ca-hook.conf');
    const cases: [string, string | null, Record<string, string>, string?][] = [
      ['colon', 'auto-repin: no\n', {}],
      ['underscore', 'auto_repin=no\n', {}],
      ['upper case', 'AUTO-REPIN = NO\n', {}],
      ['empty variable', '# by hand\nauto-repin=no\n', { CERT_AGENT_FLEET_AUTO_REPIN: '' }],
      ['not understood', 'auto-repin=yes\nautorepin no\n', {}, 'line 2 is not understood'],
      ['unreadable', null, {}, 'cannot be read'],
    ];
    for (const [label, text, env, said] of cases) {
      rmSync(conf, { recursive: true, force: true });
      if (text === null) mkdirSync(conf);
      else writeFileSync(conf, text);
      const r = await host(HOOK, ['103', 'post-start'], env);
      expect(r.stdout, label).toContain('automatic re-pinning is off');
      if (said) expect(r.stdout, label).toContain(said);
      expect(r.code, label).toBe(1);
      expect(calls(101), label).not.toContain('enroll');
    }
    // Plainly on, in any case: the hook re-pins.
    rmSync(conf, { recursive: true, force: true });
    writeFileSync(conf, 'Auto-Repin: YES\n');
    const on = await host(HOOK, ['103', 'post-start']);
    expect(on.stdout).toContain(`101 ct101: ok (pinned ${rootFp})`);
    expect(on.code).toBe(0);
  });
});

describe('cert-agent-fleet: exits and names say what happened', () => {
  it('status: an agent that cannot run (its interpreter missing) is UNKNOWN, not "no-agent"', async () => {
    fleetDir({ 101: { agent: 'broken' }, 102: { agent: 'absent' }, 103: { line: okLine() } });
    const r = await host(FLEET, ['status']);
    expect(r.stdout).toMatch(/^101 +ct101 +- +UNKNOWN .*cert-agent cannot run \(exit 127\)$/m);
    expect(r.stdout).toMatch(/^102 +ct102 +- +no-agent /m);
    expect(r.stdout).toMatch(/^103 +ct103 +default +OK /m);
    expect(r.code).toBe(3);
  });

  it('repin: the retries while the CA does not answer end within enroll timeout + CA wait', async () => {
    // Each enroll answers "CA unavailable" (69) just before its own timeout.
    fleetDir({ 101: { line: okLine(), enroll: 'sleep 2.8; exit 69' } });
    const r = await host(FLEET, ['repin', '--fingerprint', FP_OTHER, '101'], {
      CERT_AGENT_FLEET_ENROLL_TIMEOUT: '3',
      CERT_AGENT_FLEET_CA_WAIT: '10',
    });
    expect(r.stdout).toMatch(/^101 ct101: FAILED \(cert-agent enroll exit 69\)/m);
    expect(r.code).toBe(1);
    expect(r.ms).toBeLessThan(15_000); // 3 + 10 + 1 s of granularity, and some slack for load
    // A CA that refuses at once: retried for the CA wait (5 s here), not the enroll timeout too.
    fleetDir({ 101: { line: okLine(), enroll: 'exit 69' } });
    const fast = await host(FLEET, ['repin', '--fingerprint', FP_OTHER, '101'], {
      CERT_AGENT_FLEET_ENROLL_TIMEOUT: '30',
      CERT_AGENT_FLEET_CA_WAIT: '5',
    });
    expect(fast.stdout).toMatch(/^101 ct101: FAILED \(cert-agent enroll exit 69\)/m);
    expect(calls(101).match(/cert-agent enroll/g)?.length).toBeGreaterThanOrEqual(2);
    expect(fast.ms).toBeLessThan(15_000);
  });

  it('the hook pins the root it decided on: a CA root that changes between two reads is refused', async () => {
    const swap = 'd=$(dirname "$0"); [ ! -e "$d/read1" ] || cp "$d/root2.pem" "$d/root.pem"; touch "$d/read1"';
    fleetDir({ 101: { line: okLine() }, 103: { root: true, onRoot: swap } });
    writeFileSync(join(work, 'root2.pem'), root2Pem);
    writeFileSync(join(work, 'state/ca-103.fingerprint'), `${FP_OLD}\n`);
    const r = await host(HOOK, ['103', 'post-start']);
    expect(r.stdout).toContain(`CA root changed: ${FP_OLD} -> ${rootFp}`);
    expect(r.stdout).toContain(`the root in container 103 is ${root2Fp}, not ${rootFp}`);
    expect(calls(101)).not.toContain('enroll');
    expect(readFileSync(join(work, 'state/ca-103.fingerprint'), 'utf8').trim()).toBe(FP_OLD);
    expect(r.code).toBe(1);
    // The next start reads the root now served, once more, and pins and records that one.
    const next = await host(HOOK, ['103', 'post-start']);
    expect(next.stdout).toContain(`101 ct101: ok (pinned ${root2Fp})`);
    expect(calls(101)).toContain(`cert-agent enroll --fingerprint ${root2Fp}`);
    expect(readFileSync(join(work, 'state/ca-103.fingerprint'), 'utf8').trim()).toBe(root2Fp);
  });

  it('repin --print-root names the file the root was read from', async () => {
    fleetDir({ 103: { root: '/root/.step/certs/root_ca.crt' } });
    const r = await host(FLEET, ['repin', '--from-ca', '103', '--print-root']);
    expect(r.stdout).toBe(`${rootFp} /root/.step/certs/root_ca.crt\n`);
    expect(r.code).toBe(0);
  });

  it('a container ID with a leading zero is refused (64, one line), not reported as another container', async () => {
    fleetDir({ 101: { line: okLine() } });
    for (const args of [
      ['status', '--json', '0101'],
      ['repin', '--fingerprint', FP_OTHER, '0101'],
    ]) {
      const r = await host(FLEET, args);
      expect(r.code, args.join(' ')).toBe(64);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^cert-agent-fleet: \w+: "0101" is not a container ID [^\n]*\n$/);
    }
    expect(calls(101)).toBe('');
    expect((await host(HOOK, ['0103', 'post-start'])).code).toBe(64);
  });
});

describe('cert-agent-fleet status: one row per certificate of each agent (v2 lines)', () => {
  interface Row {
    id: number;
    name: string;
    certificate: string | null;
    state: string;
    names: string[];
    lastError: string | null;
  }
  const rowsOf = (stdout: string) => (JSON.parse(stdout) as { worst: string; containers: Row[] }).containers;

  it('two certificates, a 0.1.0 agent (v1: "default"), no agent and a stopped container', async () => {
    fleetDir({
      101: {
        line: `printf '${v2('app', 'OK', 'app.internal')}${v2('grafana', 'WARNING', 'grafana.internal', FP_OLD, 'renewal failed')}'; exit 1`,
      },
      102: { line: okLine('db.example') },
      103: { agent: 'absent' },
      105: {},
    });
    writeFileSync(join(work, 'pct/105.conf'), 'name=ct105\npid=\n');
    const r = await host(FLEET, ['status']);
    const rows = r.stdout.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^ID +NAME +CERT +STATE +NAMES +EXPIRES +NEXT-RENEWAL +ROOT +LAST-ERROR$/);
    expect(rows.slice(1)).toEqual([
      expect.stringMatching(/^101 +ct101 +app +OK +app\.internal +1d0h +in 12h00m +a{12}\.\.\. +-$/),
      expect.stringMatching(
        /^101 +ct101 +grafana +WARNING +grafana\.internal +1d0h +in 12h00m +a{12}\.\.\. +renewal failed$/,
      ),
      expect.stringMatching(/^102 +ct102 +default +OK +db\.example /),
      expect.stringMatching(/^103 +ct103 +- +no-agent +- /),
      expect.stringMatching(/^105 +ct105 +- +stopped +- /),
    ]);
    expect(r.code).toBe(1);
    const json = await host(FLEET, ['status', '--json']);
    expect(JSON.parse(json.stdout).worst).toBe('WARNING');
    expect(rowsOf(json.stdout).map((c) => [c.id, c.name, c.certificate, c.state, c.names])).toEqual([
      [101, 'ct101', 'app', 'OK', ['app.internal']],
      [101, 'ct101', 'grafana', 'WARNING', ['grafana.internal']],
      [102, 'ct102', 'default', 'OK', ['db.example']],
      [103, 'ct103', null, 'no-agent', []],
      [105, 'ct105', null, 'stopped', []],
    ]);
    expect(json.code).toBe(1);
  });

  it('one bad field in line 2, a repeated name, v1 and v2 mixed: one UNKNOWN row, nothing of the answer shown', async () => {
    const answers: [string, string][] = [
      [
        'bad field in line 2',
        `${v2('app', 'OK', 'leak-one.example')}${v2('grafana', 'OK', 'leak-two.example').replace('86400', '1e5')}`,
      ],
      ['a name twice', `${v2('app', 'OK', 'leak-one.example')}${v2('app', 'OK', 'leak-two.example')}`],
      ['v2 then v1', `${v2('app', 'OK', 'leak-one.example')}v1\\tOK\\tleak-two.example\\t1\\t1\\t-\\t-\\n`],
      ['v1 then v2', `v1\\tOK\\tleak-one.example\\t1\\t1\\t-\\t-\\n${v2('app', 'OK', 'leak-two.example')}`],
      ['v1 twice', `v1\\tOK\\tleak-one.example\\t1\\t1\\t-\\t-\\nv1\\tOK\\tleak-two.example\\t1\\t1\\t-\\t-\\n`],
      ['v2 with seven fields', `v2\\tOK\\tleak-one.example\\t1\\t1\\t-\\t-\\n`],
    ];
    fleetDir(Object.fromEntries(answers.map(([, a], i) => [101 + i, { line: `printf '${a}'` }])));
    const text = await host(FLEET, ['status']);
    const json = await host(FLEET, ['status', '--json']);
    answers.forEach(([label], i) => {
      expect(text.stdout, label).toMatch(new RegExp(`^${101 + i} +ct${101 + i} +- +UNKNOWN .*unparseable answer`, 'm'));
      expect(
        rowsOf(json.stdout).filter((c) => c.id === 101 + i),
        label,
      ).toEqual([expect.objectContaining({ certificate: null, state: 'UNKNOWN', names: [] })]);
    });
    expect(text.stdout + json.stdout).not.toContain('leak');
    expect(text.code).toBe(3);
  });

  it('a certificate name with a control character, a path, upper case or too long: unparseable', async () => {
    const names = ['we\\033[2Jb', '../etc', 'a/b', 'App', '-x', '', 'a'.repeat(64), 'caf\\303\\251'];
    fleetDir(Object.fromEntries(names.map((n, i) => [101 + i, { line: `printf '${v2('ok')}${v2(n)}'` }])));
    const r = await host(FLEET, ['status', '--json']);
    expect(r.stdout).not.toMatch(UNPRINTABLE);
    const rows = rowsOf(r.stdout);
    expect(rows.map((c) => [c.id, c.state, c.lastError])).toEqual(
      names.map((_, i) => [101 + i, 'UNKNOWN', 'unparseable answer to cert-agent status --line']),
    );
    // The longest name allowed (63) is shown whole.
    fleetDir({ 101: { line: `printf '${v2('a'.repeat(63))}'` } });
    expect(rowsOf((await host(FLEET, ['status', '--json'])).stdout)[0]?.certificate).toBe('a'.repeat(63));
  });

  it('more certificates than the bound: UNKNOWN with the count; at the bound, every row', async () => {
    const lines = (n: number) => `i=0; while [ $i -lt ${n} ]; do printf '${v2('c%s')}' "$i"; i=$((i + 1)); done`;
    fleetDir({ 101: { line: lines(65) }, 102: { line: lines(64) } });
    const r = await host(FLEET, ['status']);
    expect(r.stdout).toMatch(
      /^101 +ct101 +- +UNKNOWN .* 65 certificates in the answer to cert-agent status --line, more than 64$/m,
    );
    expect(r.stdout.match(/^102 +ct102 +c\d+ +OK /gm)).toHaveLength(64);
    expect(r.stdout).toMatch(/^102 +ct102 +c63 +OK /m);
    const small = await host(FLEET, ['status', '102'], { CERT_AGENT_FLEET_MAX_CERTS: '3' });
    expect(small.stdout).toMatch(/^102 +ct102 +- +UNKNOWN .* 64 certificates .* more than 3$/m);
    expect((await host(FLEET, ['status'], { CERT_AGENT_FLEET_MAX_CERTS: '0' })).code).toBe(64);
  });
});

describe('cert-agent-fleet repin: one re-pin per container covers all its certificates', () => {
  const trust = (...lists: string[][]) =>
    `printf '{"status":"OK","certificates":[${lists
      .map((l, i) => `{"name":"c${i}","ca":{"trustedFingerprints":[${l.map((f) => `"${f}"`).join(',')}]}}`)
      .join(',')}]}\\n'`;

  it("already trusts: only when every certificate's trust holds the root; one enroll per container", async () => {
    fleetDir({
      101: { line: `printf '${v2('app')}${v2('grafana')}'`, json: trust([FP_OLD, FP_OTHER], [FP_OTHER]) },
      102: { line: `printf '${v2('app')}${v2('grafana')}'`, json: trust([FP_OLD, FP_OTHER], [FP_OLD]) },
      104: { line: `printf '${v2('app')}${v2('grafana', 'OK', 'web.example', FP_OTHER)}'`, json: trust([]) },
    });
    const r = await host(FLEET, ['repin', '--fingerprint', FP_OTHER, '--unless-trusted', '--vouched-by', 'admin']);
    expect(r.stdout).toContain(`101 ct101: ok (already trusts ${FP_OTHER}`);
    expect(r.stdout).toContain(`102 ct102: ok (pinned ${FP_OTHER})`);
    expect(r.stdout).toContain(`104 ct104: ok (pinned ${FP_OTHER})`);
    expect(calls(101)).not.toContain('enroll');
    expect(calls(102).match(/cert-agent enroll/g)).toHaveLength(1);
    expect(r.code).toBe(0);
    // One audit line per container; its old root is the one every certificate's line shows, else "mixed".
    const audit = readFileSync(join(work, 'state/repin.log'), 'utf8').trimEnd().split('\n');
    expect(audit).toHaveLength(2);
    expect(audit).toContainEqual(expect.stringMatching(new RegExp(`CT 102 root ${FP_OLD} -> ${FP_OTHER} `)));
    expect(audit).toContainEqual(expect.stringMatching(new RegExp(`CT 104 root mixed -> ${FP_OTHER} `)));
  });
});
