/**
 * dns-01 as deployed: the Debian package and the template hook with
 * CERT_AGENT_CHALLENGE=dns in a debootstrapped trixie booted with
 * systemd-nspawn (real systemd as PID 1, the host network), the shipped
 * units with their sandbox and IP firewall in force. Debian's bind9 on
 * 127.0.0.1 is authoritative for unit.internal, where web.unit.internal
 * points at an address that is not this host, so http-01 could never prove
 * it; the container's TSIG key (made with tsig-keygen, pushed in as
 * /etc/cert-agent/tsig.secret, 0600) may change only
 * `_acme-challenge.web.unit.internal` TXT. step-ca resolves through bind9.
 * With `renewal.method: acme` every renewal is an ACME order, so each is a
 * dns-01 proof: the first certificate under the daemon's unit, a renewal by
 * the daemon, then one by timer mode's check — each record withdrawn after,
 * each update signed with the container's key.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBind9, type Bind9 } from '../harness/bind9.js';
import { bootContainer, type Container } from '../harness/nspawn.js';
import { buildDeb, removeTree, unpackRootfs } from '../harness/rootfs.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { countEvents, prepareRoot, unitEvents, unitProps, untilUnit } from '../helpers/systemd-unit.js';

const ZONE = 'unit.internal';
const NAME = `web.${ZONE}`;
const NAMES = [`*.${NAME}`, NAME];
/** Both names' record: a wildcard's is its base name's. */
const RECORD = `_acme-challenge.${NAME}`;
/** Where the name points: TEST-NET-1, not an address of this host or the container. */
const ELSEWHERE = '192.0.2.10';
const KEY = 'ct-web';
const ALGORITHM = 'hmac-sha512';
const SECRET_FILE = '/etc/cert-agent/tsig.secret';
const SERVICE = 'cert-agent.service';
const PASS = 'cert-agent-pass.service';

let bind: Bind9;
let ca: StepCa;
let root: string;
let ct: Container;
let debPath: string;
let clause: string;
let secret: string;
const at = (p: string) => join(root, p);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const certOf = () => new X509Certificate(readFileSync(at('etc/cert-agent/tls/cert.pem')));
const namesOf = (cert: X509Certificate) =>
  (cert.subjectAltName ?? '')
    .split(', ')
    .map((n) => n.replace(/^DNS:/, ''))
    .sort();
const show = (unit: string, ...props: string[]) => unitProps(ct, unit, props);
const byEvent = (evs: Record<string, unknown>[], event: string) => evs.filter((e) => e.event === event);

/** The TXT values bind9 answers at `name`, asked without recursion. */
async function txt(name: string): Promise<string[]> {
  const r = await bind.dig(['+norec', '+short', name, 'TXT']);
  if (r.code !== 0) throw new Error(`dig failed: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean);
}

/** bind9's account of the updates in its log (from `from` on): each add and delete, with the key that signed it. */
function updates(from = 0): { adds: string[]; deletes: string[]; all: string[] } {
  const lines = bind
    .log()
    .slice(from)
    .split('\n')
    .filter((l) => /updating zone/.test(l));
  const signedBy = (l: string) => /\/key ([\w.-]+): updating zone/.exec(l)?.[1] ?? 'unsigned';
  const of = (what: RegExp) => lines.filter((l) => what.test(l) && l.includes(RECORD)).map(signedBy);
  return { adds: of(/adding an RR at/), deletes: of(/deleting an RR at/), all: lines.map(signedBy) };
}

const caLog = () => readFileSync(join(ca.dir, 'step-ca.log'), 'utf8');

/** The challenges step-ca answered (from `from` on in its log): the type and status of each, from its responses. */
function caChallenges(from = 0): string[] {
  return caLog()
    .slice(from)
    .split('\n')
    .filter((l) => / path=\/acme\/acme\/challenge\//.test(l))
    .map((l) => {
      const m = /response="\{\\"type\\":\\"([\w-]+)\\",\\"status\\":\\"(\w+)\\"/.exec(l);
      return m ? `${m[1]} ${m[2]}` : l;
    });
}

beforeAll(async () => {
  // As an operator makes it on the DNS server: the key clause, which is also what the container gets.
  clause = execFileSync('tsig-keygen', ['-a', ALGORITHM, KEY], { encoding: 'utf8' });
  secret = /secret "([^"]+)"/.exec(clause)?.[1] ?? '';
  if (!secret) throw new Error(`tsig-keygen printed no secret: ${clause}`);
  bind = await startBind9({
    host: '127.0.0.1',
    keys: [{ name: KEY, algorithm: ALGORITHM, secret }],
    zones: [
      {
        name: ZONE,
        records: [`web 60 IN A ${ELSEWHERE}`],
        updatePolicy: [`grant ${KEY} name ${RECORD}. TXT`],
      },
    ],
  });
  // Ten-minute certificates (eleven with step-ca's backdating): nothing is
  // due while the first one is checked; the renewal tests lower renewal.at.
  ca = await startStepCa({ certDuration: '10m', resolver: `${bind.address.host}:${bind.address.port}` });
  debPath = buildDeb();
  root = unpackRootfs();
  prepareRoot(root, debPath, [SERVICE, PASS]);
  ct = await bootContainer(root);
}, 180_000);

afterAll(async () => {
  try {
    await ct?.shutdown();
  } finally {
    await ca?.cleanup();
    await bind?.stop();
    if (root) removeTree(root);
  }
}, 60_000);

function hookEnv(): Record<string, string> {
  return {
    CERT_AGENT_CA_URL: ca.url,
    CERT_AGENT_FINGERPRINT: ca.rootFingerprint,
    CERT_AGENT_DOMAINS: NAMES.join(','),
    CERT_AGENT_CHALLENGE: 'dns',
    CERT_AGENT_DNS_SERVER: `${bind.address.host}:${bind.address.port}`,
    CERT_AGENT_DNS_ZONE: ZONE,
    CERT_AGENT_TSIG_NAME: KEY,
    CERT_AGENT_TSIG_ALGORITHM: ALGORITHM,
    CERT_AGENT_TSIG_SECRET_FILE: SECRET_FILE,
    CERT_AGENT_RENEWAL_METHOD: 'acme',
    CERT_AGENT_DEB: `/root/${basename(debPath)}`,
    CERT_AGENT_WAIT: '90',
    CERT_AGENT_MODE: 'daemon',
  };
}

/** Lowers renewal.at in the config the hook wrote, so the certificate is due about 6 s after each issuance. */
async function renewSoon(): Promise<void> {
  await ct.sh(`sed -i 's/^renewal:$/renewal:\\n  at: 0.1\\n  jitter: 0/' /etc/cert-agent/config.yaml`);
  expect(await ct.sh('cat /etc/cert-agent/config.yaml')).toMatch(/^renewal:\n {2}at: 0\.1\n {2}jitter: 0\n/m);
}

describe('dns-01 under the shipped units, installed by the template hook (systemd-nspawn, trixie)', () => {
  it('the name resolves elsewhere; the key goes in as tsig.secret, root-only', async () => {
    const a = await bind.dig(['+norec', '+short', NAME, 'A']);
    expect(a.stdout.trim()).toBe(ELSEWHERE);
    // The container shares this host's network: its addresses are these.
    const here = Object.values(networkInterfaces()).flatMap((l) => (l ?? []).map((i) => i.address));
    expect(here).not.toContain(ELSEWHERE);
    // As `pct push CT key.conf /etc/cert-agent/tsig.secret --perms 0600` does.
    await ct.sh('install -d -m 0755 /etc/cert-agent');
    writeFileSync(at(SECRET_FILE), clause, { mode: 0o600 });
    expect(await ct.sh(`stat -c '%U %a' ${SECRET_FILE}`)).toBe('root 600');
  });

  it('the hook installs, enrolls for dns-01 and starts the unit, which gets the first certificate by dns-01', async () => {
    const r = await ct.exec(['sh', '/root/postinstall.sh'], hookEnv(), 150_000);
    const journal = () => ct.sh(`journalctl -u ${SERVICE} -n 40 -o cat --no-pager`);
    expect(r.code, `${r.stdout}${r.stderr}\n${await journal()}`).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('postinstall: started cert-agent.service');
    expect(r.stdout).toContain('cert-agent OK');
    expect(await ct.sh(`systemctl is-active ${SERVICE}`)).toBe('active');
    // 127.0.0.1 is inside the units' allow-list: no drop-in for the DNS server.
    expect(existsSync(at('etc/systemd/system/cert-agent.service.d/dns-server.conf'))).toBe(false);
    const config = readFileSync(at('etc/cert-agent/config.yaml'), 'utf8');
    expect(config).toMatch(/mode: dns/);
    expect(config).toContain(`secretFile: ${SECRET_FILE}`);
    expect(config).toMatch(/method: acme/);
    expect(config).not.toContain(secret);
    expect(statSync(at(SECRET_FILE)).mode & 0o777).toBe(0o600);

    const cert = certOf();
    expect(namesOf(cert)).toEqual(NAMES);
    writeFileSync(at('root/ca-root.pem'), ca.rootPem);
    const file = at('etc/cert-agent/tls/cert.pem');
    const chain = at('etc/cert-agent/tls/chain.pem');
    const verdict = execFileSync('openssl', ['verify', '-CAfile', at('root/ca-root.pem'), '-untrusted', chain, file], {
      encoding: 'utf8',
    });
    expect(verdict.trim()).toBe(`${file}: OK`);

    const evs = await untilUnit(
      ct,
      SERVICE,
      'certificate_installed in the journal',
      () => unitEvents(ct, SERVICE),
      (e) => countEvents(e, 'certificate_installed') > 0,
    );
    expect(byEvent(evs, 'dns_record_published').map((e) => e.record)).toEqual([RECORD, RECORD]);
    expect(byEvent(evs, 'certificate_installed').map((e) => e.method)).toEqual(['acme']);
    expect(await txt(RECORD)).toEqual([]);
    expect(updates()).toEqual({ adds: [KEY, KEY], deletes: [KEY, KEY], all: [KEY, KEY, KEY, KEY] });
    // step-ca validated both names by dns-01 (the base name was offered http-01 too).
    expect(caChallenges()).toEqual(['dns-01 valid', 'dns-01 valid']);
  }, 180_000);

  it('the unit runs sandboxed, its IP firewall attached, and reached the DNS server through it', async () => {
    const p = await show(SERVICE, 'NoNewPrivileges', 'ProtectSystem', 'RestrictAddressFamilies', 'MainPID');
    expect(p.NoNewPrivileges).toBe('yes');
    expect(p.ProtectSystem).toBe('strict');
    expect(p.RestrictAddressFamilies?.split(' ').sort()).toEqual(['AF_INET', 'AF_INET6', 'AF_UNIX']);
    const status = await ct.sh(`cat /proc/${p.MainPID}/status`);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(status).toMatch(/^Seccomp:\s+2$/m);
    const ip = await show(SERVICE, 'IPAddressDeny', 'IPAddressAllow', 'IPEgressPackets', 'IPIngressPackets');
    expect(ip.IPAddressDeny?.split(' ').sort()).toEqual(['0.0.0.0/0', '::/0']);
    expect(ip.IPAddressAllow?.split(' ')).toContain('127.0.0.0/8');
    expect(Number(ip.IPEgressPackets)).toBeGreaterThan(0);
    expect(Number(ip.IPIngressPackets)).toBeGreaterThan(0);
  });

  it('a second run of the hook with the same dns-01 input changes nothing and publishes nothing', async () => {
    const { MainPID } = await show(SERVICE, 'MainPID');
    const files = ['etc/cert-agent/config.yaml', 'etc/cert-agent/tls/cert.pem', SECRET_FILE.slice(1)];
    const contents = files.map((f) => readFileSync(at(f), 'utf8'));
    const mark = bind.log().length;
    const r = await ct.exec(['sh', '/root/postinstall.sh'], hookEnv(), 150_000);
    expect(r.code, `${r.stdout}${r.stderr}`).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('already installed');
    expect(r.stdout).toContain('unchanged');
    expect(r.stdout).toContain('cert-agent OK');
    expect(files.map((f) => readFileSync(at(f), 'utf8'))).toEqual(contents);
    expect((await show(SERVICE, 'MainPID')).MainPID).toBe(MainPID);
    expect(updates(mark).all).toEqual([]);
  }, 180_000);

  it('the daemon renews under its unit by dns-01: a new serial, the record withdrawn', async () => {
    const { MainPID } = await show(SERVICE, 'MainPID');
    const before = certOf().serialNumber;
    const seen = await unitEvents(ct, SERVICE);
    const mark = bind.log().length;
    const caMark = caLog().length;
    await renewSoon();
    // SIGHUP: the same process re-reads its config and finds the certificate due.
    await ct.sh(`systemctl reload ${SERVICE}`);
    const evs = await untilUnit(
      ct,
      SERVICE,
      'a renewal by the daemon',
      () => unitEvents(ct, SERVICE),
      (e) => countEvents(e, 'certificate_installed') > countEvents(seen, 'certificate_installed'),
      60_000,
    );
    // The same process renewed.
    expect((await show(SERVICE, 'MainPID')).MainPID).toBe(MainPID);
    // Due again ~6 s later: stopped before that, so what follows is timer mode's.
    await ct.sh(`systemctl stop ${SERVICE}`);
    const all = (await unitEvents(ct, SERVICE)).slice(seen.length);
    expect(evs.length).toBeGreaterThan(seen.length);
    expect(byEvent(all, 'certificate_installed').map((e) => e.method)).toEqual(['acme']);
    expect(byEvent(all, 'dns_record_published').map((e) => e.record)).toEqual([RECORD, RECORD]);
    const cert = certOf();
    expect(cert.serialNumber).not.toBe(before);
    expect(namesOf(cert)).toEqual(NAMES);
    expect(await txt(RECORD)).toEqual([]);
    expect(updates(mark)).toEqual({ adds: [KEY, KEY], deletes: [KEY, KEY], all: [KEY, KEY, KEY, KEY] });
    expect(caChallenges(caMark)).toEqual(['dns-01 valid', 'dns-01 valid']);
  }, 90_000);

  it("timer mode's check (cert-agent-pass.service) renews by dns-01 under its unit", async () => {
    const cert = certOf();
    const [from, to] = [Date.parse(cert.validFrom), Date.parse(cert.validTo)];
    while (Date.now() < from + 0.1 * (to - from) + 1_000) await sleep(500);
    const mark = bind.log().length;
    const caMark = caLog().length;
    // Type=oneshot: returns once the check has run.
    await ct.sh(`systemctl start ${PASS}`);
    const outcome = ['certificate_installed', 'renewal_not_due', 'renewal_failed', 'check_deferred'];
    const evs = await untilUnit(
      ct,
      PASS,
      'the check logged its outcome',
      () => unitEvents(ct, PASS),
      (e) => e.some((l) => outcome.includes(String(l.event))),
    );
    expect(
      byEvent(evs, 'certificate_installed').map((e) => e.method),
      JSON.stringify(evs),
    ).toEqual(['acme']);
    expect(byEvent(evs, 'dns_record_published').map((e) => e.record)).toEqual([RECORD, RECORD]);
    expect(await show(PASS, 'Result', 'ExecMainStatus')).toEqual({ Result: 'success', ExecMainStatus: '0' });
    const renewed = certOf();
    expect(renewed.serialNumber).not.toBe(cert.serialNumber);
    expect(namesOf(renewed)).toEqual(NAMES);
    const state = JSON.parse(readFileSync(at('var/lib/cert-agent/state.json'), 'utf8')) as {
      lastRenewal?: { method: string };
    };
    expect(state.lastRenewal?.method).toBe('acme');
    expect(await txt(RECORD)).toEqual([]);
    expect(updates(mark)).toEqual({ adds: [KEY, KEY], deletes: [KEY, KEY], all: [KEY, KEY, KEY, KEY] });
    expect(caChallenges(caMark)).toEqual(['dns-01 valid', 'dns-01 valid']);
    // The same firewall on the check's unit, and the updates went through it (systemd's account of the run).
    const ip = await show(PASS, 'IPAddressDeny', 'IPAddressAllow');
    expect(ip.IPAddressDeny?.split(' ').sort()).toEqual(['0.0.0.0/0', '::/0']);
    expect(ip.IPAddressAllow?.split(' ')).toContain('127.0.0.0/8');
    const consumed = (await ct.sh(`journalctl -u ${PASS} -o cat --no-pager`))
      .split('\n')
      .filter((l) => /Consumed/.test(l));
    expect(consumed.pop()).toMatch(
      /Consumed .*, [1-9][\d.]*[KMG]? incoming IP traffic, [1-9][\d.]*[KMG]? outgoing IP traffic/,
    );
  }, 90_000);

  it("every update bind9 took was signed with the container's key; none was refused", () => {
    const all = updates();
    expect(all.adds).toEqual(Array(6).fill(KEY));
    expect(all.deletes).toEqual(Array(6).fill(KEY));
    expect(all.all.every((k) => k === KEY)).toBe(true);
    expect(bind.log()).not.toMatch(/update '[^']*' denied|REFUSED|BADSIG|BADKEY/);
  });
});
