/**
 * Upgrade in place, and back. A Debian 13 container booted with systemd
 * (nspawn.ts, host network, the real step-ca of the harness) gets release
 * 0.1.0 — its .deb and template hook as its own `make deb` built them from
 * the release commit (release.ts) — enrolled with the short-form
 * `certificate:` config 0.1.0 writes, in timer mode, the package's default.
 * Then `apt-get install` of the package built from this tree over it, back
 * to 0.1.0 with `--allow-downgrades`, and up again with the daemon enabled.
 * Throughout, `cert-agent status` says OK (sampled back to back while apt
 * and dpkg run); the certificate, its key, the config (byte for byte) and
 * state.json stay; systemd runs each version's units, and the next check
 * (or the restarted daemon) runs that version's code, shown by the V8 code
 * cache the process leaves under the bundle's build ID when it exits.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { buildDeb, removeTree, unpackRootfs } from '../harness/rootfs.js';
import { bootContainer, type Container } from '../harness/nspawn.js';
import { RELEASE_0_1_0, releaseDeb, type Release } from '../harness/release.js';

const NEW_VERSION = (
  JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as {
    version: string;
  }
).version;
const CODE_CACHE = '/var/lib/cert-agent/code-cache';
const UNITS = ['cert-agent.timer', 'cert-agent-pass.service', 'cert-agent.service'];

let ca: StepCa;
let root: string;
let ct: Container;
let old: Release;
let newDeb: string;
const at = (p: string) => join(root, p);

beforeAll(async () => {
  ca = await startStepCa();
  old = releaseDeb(RELEASE_0_1_0);
  newDeb = buildDeb();
  root = unpackRootfs();
  copyFileSync(old.deb, at(`root/${basename(old.deb)}`));
  copyFileSync(old.hook, at('root/postinstall-0.1.0.sh'));
  copyFileSync(newDeb, at(`root/${basename(newDeb)}`));
  ct = await bootContainer(root);
}, 180_000);

afterAll(async () => {
  try {
    await ct?.shutdown();
  } finally {
    await ca?.cleanup();
    if (root) removeTree(root);
  }
}, 60_000);

/** `systemctl show` of one unit, as an object. */
async function show(unit: string, ...props: string[]): Promise<Record<string, string>> {
  const out = await ct.sh(`systemctl show ${unit} -p ${props.join(',')}`);
  return Object.fromEntries(out.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

const sha256 = (p: string) =>
  createHash('sha256')
    .update(readFileSync(at(p)))
    .digest('hex');

/** What must survive an upgrade or a downgrade. */
async function snapshot() {
  const cert = at('etc/cert-agent/tls/cert.pem');
  const state = JSON.parse(readFileSync(at('var/lib/cert-agent/state.json'), 'utf8')) as Record<string, unknown>;
  return {
    serial: execFileSync('openssl', ['x509', '-noout', '-serial', '-in', cert], { encoding: 'utf8' }).trim(),
    cert: sha256('etc/cert-agent/tls/cert.pem'),
    key: sha256('etc/cert-agent/tls/key.pem'),
    accountKey: sha256('var/lib/cert-agent/account.key'),
    config: readFileSync(at('etc/cert-agent/config.yaml')),
    // Every pass rewrites lastAttempt; what it decided from stays.
    state: {
      lastSuccess: state.lastSuccess,
      nextRenewal: state.nextRenewal,
      placeholder: state.placeholder,
      consecutiveFailures: state.consecutiveFailures,
    },
    installedVersion: await ct.sh("dpkg-query -W -f='${Version}' cert-agent"),
  };
}

/** The build ID the installed bundle keys its code cache by (bundle/build.mjs). */
async function buildId(): Promise<string> {
  const line = await ct.sh('sed -n 3p /usr/lib/cert-agent/cert-agent.cjs');
  const id = /BUILD_ID="([0-9a-f]{16})"/.exec(line)?.[1];
  if (!id) throw new Error(`no BUILD_ID in the installed bundle: ${line.slice(0, 200)}`);
  return id;
}

/**
 * Build IDs of the code caches a command left, written when its process
 * exits: `check` (timer mode's unit) or `run` (the daemon); only that command
 * writes its file.
 */
async function caches(command: 'check' | 'run'): Promise<string[]> {
  const names = (await ct.sh(`ls -A ${CODE_CACHE} 2>/dev/null || true`)).split('\n');
  const re = new RegExp(`^v8-([0-9a-f]{16})-.*-${command}\\.bin$`);
  return names.map((n) => re.exec(n)?.[1]).filter((id) => id !== undefined);
}

/** `status --json` against the schema the installed package ships; returns the report. */
async function statusJson(): Promise<Record<string, unknown>> {
  const r = await ct.exec(['cert-agent', 'status', '--json']);
  expect(r.code, r.stderr).toBe(0);
  const report = JSON.parse(r.stdout) as Record<string, unknown>;
  const schema = JSON.parse(await ct.sh('cat /usr/share/cert-agent/status.schema.json')) as object;
  const ajv = new Ajv2020({ strict: true, strictRequired: false });
  (addFormatsModule as unknown as (a: Ajv2020) => void)(ajv);
  const validate = ajv.compile(schema);
  expect(validate(report), JSON.stringify(validate.errors)).toBe(true);
  return report;
}

interface Sample {
  version: string;
  package: string;
  status: number;
}

/** One `cert-agent status` run, with the version answering and dpkg's state of the package at that moment. */
async function sample(): Promise<Sample> {
  const script =
    'cert-agent --version; dpkg-query -W -f=\'${Status} ${Version}\\n\' cert-agent; cert-agent status >/dev/null 2>&1; echo "$?"';
  const r = await ct.exec(['sh', '-c', script], {}, 30_000);
  const [version = '', pkg = '', status = ''] = r.stdout.trim().split('\n');
  return { version, package: pkg, status: Number(status) };
}

/** apt-get install of a .deb in the container, `cert-agent status` sampled back to back until apt exits. */
async function installSampling(deb: string, extra: string[] = []) {
  let running = true;
  const install = ct
    .exec(
      ['apt-get', 'install', '-y', '-q', '--no-install-recommends', ...extra, `/root/${basename(deb)}`],
      { DEBIAN_FRONTEND: 'noninteractive' },
      120_000,
    )
    .finally(() => (running = false));
  const during: Sample[] = [];
  while (running) during.push(await sample());
  return { apt: await install, during };
}

/** One check by the unit the timer starts, as the timer's next elapse would; its result and its log. */
async function nextCheck() {
  await ct.sh('systemctl start cert-agent-pass.service');
  const p = await show('cert-agent-pass.service', 'Result', 'ExecMainStatus', 'InvocationID');
  const log = await ct.sh(`journalctl _SYSTEMD_INVOCATION_ID=${p.InvocationID} -o cat --no-pager`);
  const events = log
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => (JSON.parse(l) as { event?: string }).event);
  return { result: p.Result, status: p.ExecMainStatus, events, log };
}

/** Timer mode as the package left it: timer enabled and waiting, the daemon off, systemd on the new unit files. */
async function expectTimerMode(): Promise<void> {
  const timer = await show('cert-agent.timer', 'UnitFileState', 'ActiveState', 'NextElapseUSecRealtime');
  expect(timer.UnitFileState).toBe('enabled');
  expect(timer.ActiveState).toBe('active');
  expect(timer.NextElapseUSecRealtime).toMatch(/\d/);
  expect(await show('cert-agent.service', 'UnitFileState', 'ActiveState')).toEqual({
    UnitFileState: 'disabled',
    ActiveState: 'inactive',
  });
  for (const unit of UNITS) expect((await show(unit, 'NeedDaemonReload')).NeedDaemonReload, unit).toBe('no');
}

/** The daemon's MainPID once the process it names has logged daemon_started (bounded wait). */
async function daemonStarted(notPid = ''): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const { MainPID = '0', ActiveState } = await show('cert-agent.service', 'MainPID', 'ActiveState');
    if (ActiveState === 'active' && MainPID !== '0' && MainPID !== notPid) {
      const log = await ct.sh(`journalctl -u cert-agent.service _PID=${MainPID} -o cat --no-pager`);
      if (log.includes('"event":"daemon_started"')) return MainPID;
    }
    if (Date.now() > deadline)
      throw new Error(`no daemon_started: ${await ct.sh('journalctl -u cert-agent.service -n 20 -o cat --no-pager')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

let before: Awaited<ReturnType<typeof snapshot>>;
let oldId: string;

describe(`upgrade 0.1.0 → ${NEW_VERSION} in place, and the downgrade back to 0.1.0 works (systemd-nspawn, trixie)`, () => {
  it('0.1.0, installed and enrolled by its own template hook, runs in timer mode with its certificate', async () => {
    expect(old.version).toBe('0.1.0');
    const r = await ct.exec(
      ['sh', '/root/postinstall-0.1.0.sh'],
      {
        CERT_AGENT_CA_URL: ca.url,
        CERT_AGENT_FINGERPRINT: ca.rootFingerprint,
        CERT_AGENT_DOMAINS: 'localhost',
        // step-ca validates http-01 on this port instead of 80 (test CA only).
        CERT_AGENT_LISTEN: `127.0.0.1:${ca.acmeHttpPort}`,
        CERT_AGENT_DEB: `/root/${basename(old.deb)}`,
        CERT_AGENT_WAIT: '90',
      },
      150_000,
    );
    expect(r.code, `${r.stdout}${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('postinstall: cert-agent 0.1.0');
    expect(r.stdout).toContain('started cert-agent.timer');
    expect(await ct.sh('cert-agent --version')).toBe('cert-agent 0.1.0');
    // The short form, as 0.1.0 writes it: one `certificate:` section.
    const config = readFileSync(at('etc/cert-agent/config.yaml'), 'utf8');
    expect(config).toMatch(/^certificate:$/m);
    expect(config).not.toMatch(/^certificates:/m);
    await expectTimerMode();
    expect((await statusJson()).status).toBe('OK');
    // The hook's first check ran under the unit, on 0.1.0's bundle.
    oldId = await buildId();
    expect(await caches('check')).toEqual([oldId]);
    before = await snapshot();
    expect(before.installedVersion).toBe('0.1.0');
    expect(before.state.placeholder).toBe(false);
  }, 180_000);

  it(`apt-get installs ${NEW_VERSION} over it: status OK before, during and after; certificate, key, config and state kept`, async () => {
    expect((await sample()).status).toBe(0);
    const { apt, during } = await installSampling(newDeb);
    expect(apt.code, `${apt.stdout}${apt.stderr}`).toBe(0);
    expect(during.length).toBeGreaterThan(0);
    expect(
      during.filter((s) => s.status !== 0),
      JSON.stringify(during),
    ).toEqual([]);
    expect(await ct.sh('cert-agent --version')).toBe(`cert-agent ${NEW_VERSION}`);
    expect(await snapshot()).toEqual({ ...before, installedVersion: NEW_VERSION });
    await expectTimerMode();
    // Nothing ran the new bundle's check yet (its status runs cleared the old caches).
    const newId = await buildId();
    expect(newId).not.toBe(oldId);
    expect(await caches('check')).not.toContain(newId);
    expect((await sample()).status).toBe(0);
  }, 150_000);

  it(`the next check runs ${NEW_VERSION}'s code under the unit; nothing renewed, status OK`, async () => {
    const check = await nextCheck();
    expect(check, check.log).toMatchObject({ result: 'success', status: '0' });
    expect(check.events).toContain('renewal_not_due');
    expect(check.events).not.toContain('certificate_installed');
    // Written when that check exited, by the bundle with this build ID (and the old one's cleared).
    expect(await caches('check')).toEqual([await buildId()]);
    expect((await statusJson()).status).toBe('OK');
    expect(await snapshot()).toEqual({ ...before, installedVersion: NEW_VERSION });
    await expectTimerMode();
  }, 60_000);

  it('the downgrade: apt-get install --allow-downgrades of 0.1.0 works, status OK throughout, 0.1.0 checks on', async () => {
    const { apt, during } = await installSampling(old.deb, ['--allow-downgrades']);
    expect(apt.code, `${apt.stdout}${apt.stderr}`).toBe(0);
    expect(during.length).toBeGreaterThan(0);
    expect(
      during.filter((s) => s.status !== 0),
      JSON.stringify(during),
    ).toEqual([]);
    expect(await ct.sh('cert-agent --version')).toBe('cert-agent 0.1.0');
    expect(await buildId()).toBe(oldId);
    await expectTimerMode();
    const check = await nextCheck();
    expect(check, check.log).toMatchObject({ result: 'success', status: '0' });
    expect(check.events).toContain('renewal_not_due');
    expect(check.events).not.toContain('certificate_installed');
    expect(await caches('check')).toEqual([oldId]);
    // 0.1.0 reads the state the newer agent wrote and reports against its own schema.
    expect((await statusJson()).status).toBe('OK');
    expect(await snapshot()).toEqual(before);
  }, 150_000);

  it(`in daemon mode, the upgrade restarts the daemon on ${NEW_VERSION} (new MainPID), status OK throughout`, async () => {
    // The admin switches 0.1.0 to the daemon; an upgrade keeps that choice.
    await ct.sh('systemctl disable --now cert-agent.timer && systemctl enable --now cert-agent.service');
    const oldPid = await daemonStarted();
    const { apt, during } = await installSampling(newDeb);
    expect(apt.code, `${apt.stdout}${apt.stderr}`).toBe(0);
    expect(during.length).toBeGreaterThan(0);
    expect(
      during.filter((s) => s.status !== 0),
      JSON.stringify(during),
    ).toEqual([]);
    // postinst's try-restart: a new process, started after the new bundle was unpacked.
    const newPid = await daemonStarted(oldPid);
    expect(newPid).not.toBe(oldPid);
    expect(await show('cert-agent.service', 'UnitFileState', 'NRestarts', 'NeedDaemonReload')).toEqual({
      UnitFileState: 'enabled',
      NRestarts: '0',
      NeedDaemonReload: 'no',
    });
    expect((await show('cert-agent.timer', 'UnitFileState')).UnitFileState).toBe('disabled');
    expect((await statusJson()).status).toBe('OK');
    expect(await snapshot()).toEqual({ ...before, installedVersion: NEW_VERSION });
    // The daemon writes its code cache when it exits: the one it ran is this build's.
    await ct.sh('systemctl stop cert-agent.service');
    expect(await caches('run')).toEqual([await buildId()]);
  }, 150_000);
});
