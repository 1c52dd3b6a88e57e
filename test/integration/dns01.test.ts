/**
 * dns-01 against the real parts: Debian's bind9 authoritative for
 * dns.internal in a network namespace of its own (port 53), with one TSIG
 * key per container and an update-policy that lets each key change only its
 * own container's `_acme-challenge` names; step-ca 0.30 in another, resolving
 * through bind9 (`--resolver`); two agent "containers" (a, b) in theirs. The
 * names resolve to an address where nothing listens, so http-01 could never
 * prove them: every certificate here is proven by the TXT record alone, the
 * wildcard included. Then what must not work: a key for another container's
 * name, a wrong secret, an unknown key, a key file others can read, a server
 * that does not answer, an authoritative server that never gets the record,
 * a CA whose resolver does not see it — each one line, its exit code, the
 * certificate kept and no record left; and a pass killed after it published
 * its record, whose record the next pass withdraws.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBind9, type Bind9 } from '../harness/bind9.js';
import { createTopology, type Topology } from '../harness/netns.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { parseLog } from '../harness/json-log.js';
import { snapshot } from '../faults/common.js';
import { agentBundle, tempDir } from '../helpers/agent.js';

const SUBNET = '10.213.27';
const ZONE = 'dns.internal';
const DNS = `${SUBNET}.53`;
const RESOLVER = `${SUBNET}.54`;
const CA_NAME = 'ca.dns.internal';
/** Where the names point: an address no host of the topology has. */
const ELSEWHERE = `${SUBNET}.99`;
const A_NAMES = [`app.${ZONE}`, `*.app.${ZONE}`];
const B_NAMES = [`grafana.${ZONE}`];
const RECORD_A = `_acme-challenge.app.${ZONE}`;
const RECORD_B = `_acme-challenge.grafana.${ZONE}`;

let topo: Topology;
let bind: Bind9;
/** The site's resolver: authoritative for outside.test, forwarding everything else to the primary. */
let resolver: Bind9;
let ca: StepCa;
let root: string;
const secrets: Record<string, string> = {};

interface Agent {
  key: 'a' | 'b';
  dir: string;
  config: string;
  certDir: string;
  stateDir: string;
}
const agents: Record<'a' | 'b', Agent> = {} as Record<'a' | 'b', Agent>;

/** `tsig-keygen` as an operator runs it on the DNS server: the key clause, and its secret for bind9's own config. */
function tsigKeygen(name: string, algorithm: string): { clause: string; secret: string } {
  const clause = execFileSync('tsig-keygen', ['-a', algorithm, name], { encoding: 'utf8' });
  const secret = /secret "([^"]+)"/.exec(clause)?.[1];
  if (!secret) throw new Error(`tsig-keygen printed no secret: ${clause}`);
  return { clause, secret };
}

function newAgent(key: 'a' | 'b'): Agent {
  const dir = join(root, key);
  const a = {
    key,
    dir,
    config: join(dir, 'config.yaml'),
    certDir: join(dir, 'tls'),
    stateDir: join(dir, 'state'),
  };
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  return a;
}

interface DnsOverrides {
  names?: string[];
  tsig?: Record<string, unknown>;
  server?: string;
  propagationTimeout?: number;
  command?: string[];
  caUrl?: string;
  stateDir?: string;
  certDir?: string;
}

function writeConfig(agent: Agent, o: DnsOverrides = {}): void {
  const dns = o.command
    ? { server: o.server ?? `${DNS}:53`, command: o.command }
    : { server: o.server ?? `${DNS}:53`, tsig: o.tsig ?? tsigOf(agent.key) };
  const doc = {
    ca: { url: o.caUrl ?? ca.url, fingerprint: ca.rootFingerprint },
    certificate: { domains: o.names ?? (agent.key === 'a' ? A_NAMES : B_NAMES), dir: o.certDir ?? agent.certDir },
    challenge: {
      mode: 'dns',
      dns: { ...dns, ...(o.propagationTimeout ? { propagationTimeout: o.propagationTimeout } : {}) },
    },
    renewal: { method: 'acme' },
    stateDir: o.stateDir ?? agent.stateDir,
  };
  writeFileSync(agent.config, JSON.stringify(doc, null, 2), { mode: 0o600 });
}

function tsigOf(key: 'a' | 'b') {
  return key === 'a'
    ? { name: 'ct-a', algorithm: 'hmac-sha256', secretFile: join(agents.a.dir, 'tsig.secret') }
    : { name: 'ct-b', algorithm: 'hmac-sha512', secretFile: join(agents.b.dir, 'tsig.secret') };
}

const env = () => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: root, CERT_AGENT_LOG_LEVEL: 'info' });

async function agent(a: Agent, args: string[]) {
  const r = await topo.exec(a.key, [process.execPath, agentBundle(), ...args, '--config', a.config], {
    env: env(),
  });
  const lines = r.stderr.split('\n').filter((l) => l && !l.startsWith('{'));
  return { ...r, lines, events: parseLog(r.stderr) };
}

/** The TXT values the primary answers at `name`, asked without recursion. */
async function txt(name: string): Promise<string[]> {
  const r = await bind.dig(['+norec', '+short', name, 'TXT']);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.replace(/"/g, ''));
}

const namesOf = (certDir: string) =>
  (new X509Certificate(readFileSync(join(certDir, 'cert.pem'))).subjectAltName ?? '')
    .split(', ')
    .map((n) => n.replace(/^DNS:/, ''))
    .sort();
const serialOf = (certDir: string) =>
  new X509Certificate(readFileSync(join(certDir, 'cert.pem'))).serialNumber.toLowerCase();

beforeAll(async () => {
  topo = createTopology(
    [
      { key: 'ca', octet: 10, names: [CA_NAME] },
      { key: 'dns', octet: 53 },
      { key: 'a', octet: 11 },
      { key: 'b', octet: 12 },
      { key: 'res', octet: 54 },
    ],
    SUBNET,
  );
  root = tempDir('cert-agent-dns01-');
  agents.a = newAgent('a');
  agents.b = newAgent('b');
  const a = tsigKeygen('ct-a', 'hmac-sha256');
  const b = tsigKeygen('ct-b', 'hmac-sha512');
  const admin = tsigKeygen('test-admin', 'hmac-sha256');
  secrets.admin = admin.secret;
  // a's file is the key clause as tsig-keygen printed it; b's the base64 secret alone.
  writeFileSync(join(agents.a.dir, 'tsig.secret'), a.clause, { mode: 0o600 });
  writeFileSync(join(agents.b.dir, 'tsig.secret'), `${b.secret}\n`, { mode: 0o600 });
  bind = await startBind9({
    ns: topo.host('dns').ns,
    host: DNS,
    port: 53,
    keys: [
      { name: 'ct-a', algorithm: 'hmac-sha256', secret: a.secret },
      { name: 'ct-b', algorithm: 'hmac-sha512', secret: b.secret },
      { name: 'test-admin', algorithm: 'hmac-sha256', secret: admin.secret },
    ],
    zones: [
      {
        name: ZONE,
        records: [`app 60 IN A ${ELSEWHERE}`, `grafana 60 IN A ${ELSEWHERE}`],
        updatePolicy: [
          `grant ct-a name ${RECORD_A}. TXT`,
          `grant ct-b name ${RECORD_B}. TXT`,
          'grant test-admin zonesub ANY',
        ],
      },
    ],
  });
  resolver = await startBind9({
    ns: topo.host('res').ns,
    host: RESOLVER,
    port: 53,
    zones: [{ name: 'outside.test', records: [`ns 60 IN A ${DNS}`] }],
    forwardTo: DNS,
  });
  const host = topo.host('ca');
  ca = await startStepCa({
    netns: { ns: host.ns, address: host.address, port: 443, dnsNames: [CA_NAME] },
    resolver: `${DNS}:53`,
  });
}, 90_000);

afterAll(async () => {
  await ca?.cleanup();
  await bind?.stop();
  await resolver?.stop();
  await topo?.cleanup();
});

/** The test's own change to the zone, signed with its admin key (nsupdate, bind9's client). */
async function nsupdate(lines: string[]): Promise<void> {
  const script = [`server ${DNS} 53`, `zone ${ZONE}`, ...lines, 'send', ''].join('\n');
  const r = await topo.exec('a', ['nsupdate', '-y', `hmac-sha256:test-admin:${secrets.admin}`], { input: script });
  if (r.code !== 0) throw new Error(`nsupdate failed: ${r.stderr}`);
}

describe('dns-01 through bind9 (RFC 2136, TSIG), step-ca resolving through it', () => {
  it('the names resolve elsewhere: nothing of container a answers there', async () => {
    const r = await bind.dig(['+short', `app.${ZONE}`, 'A']);
    expect(r.stdout.trim()).toBe(ELSEWHERE);
    expect(topo.host('a').address).not.toBe(ELSEWHERE);
  });

  it('a gets a certificate for its name and its wildcard, proven by TXT records alone, withdrawn after', async () => {
    writeConfig(agents.a);
    const r = await agent(agents.a, ['renew']);
    if (r.code) console.log(readFileSync(join(ca.dir, 'step-ca.log'), 'utf8').split('\n').slice(-15).join('\n'));
    expect(r.code, r.stderr).toBe(0);
    expect(namesOf(agents.a.certDir)).toEqual([...A_NAMES].sort());
    const published = r.events.filter((e) => e.event === 'dns_record_published');
    expect(published.map((e) => e.record)).toEqual([RECORD_A, RECORD_A]);
    expect(await txt(RECORD_A)).toEqual([]);
    expect(existsSync(join(agents.a.stateDir, 'dns-records.json'))).toBe(false);
    // bind9's own account: two records added and two deleted, each signed with a's key.
    const log = bind.log();
    expect(
      log.match(/ct-a: updating zone 'dns\.internal\/IN': adding an RR at '_acme-challenge\.app\.dns\.internal' TXT/g),
    ).toHaveLength(2);
    expect(
      log.match(/ct-a: updating zone 'dns\.internal\/IN': deleting an RR at _acme-challenge\.app\.dns\.internal TXT/g),
    ).toHaveLength(2);
  });

  it('b gets its certificate with an hmac-sha512 key given as the base64 secret alone', async () => {
    writeConfig(agents.b);
    const r = await agent(agents.b, ['renew']);
    expect(r.code, r.stderr).toBe(0);
    expect(namesOf(agents.b.certDir)).toEqual(B_NAMES);
    expect(await txt(RECORD_B)).toEqual([]);
  });

  it("a's key cannot add a record for b's name: REFUSED, said with the key and the update-policy", async () => {
    const before = snapshot(agents.a.certDir);
    writeConfig(agents.a, { names: B_NAMES, certDir: join(agents.a.dir, 'other-tls') });
    const r = await agent(agents.a, ['renew']);
    expect(r.code).toBe(1);
    const line = r.lines.find((l) => l.includes('REFUSED'));
    expect(line, r.stderr).toMatch(/ct-a/);
    expect(line).toMatch(/update-policy/);
    expect(line).toContain(RECORD_B);
    expect(await txt(RECORD_B)).toEqual([]);
    expect(snapshot(agents.a.certDir)).toEqual(before);
    // Refused, so nothing was added: nothing is noted for a later withdrawal either.
    expect(existsSync(join(agents.a.stateDir, 'dns-records.json'))).toBe(false);
  });

  it('a wrong secret: BADSIG named, the certificate kept, exit 1', async () => {
    const bad = join(agents.a.dir, 'wrong.secret');
    writeFileSync(bad, `${Buffer.alloc(32, 7).toString('base64')}\n`, { mode: 0o600 });
    const before = snapshot(agents.a.certDir);
    writeConfig(agents.a, { tsig: { name: 'ct-a', algorithm: 'hmac-sha256', secretFile: bad } });
    const r = await agent(agents.a, ['renew', '--force']);
    expect(r.code).toBe(1);
    expect(r.lines.join('\n')).toMatch(/BADSIG.*wrong\.secret/);
    expect(r.stderr).not.toContain(Buffer.alloc(32, 7).toString('base64'));
    expect(snapshot(agents.a.certDir)).toEqual(before);
    expect(await txt(RECORD_A)).toEqual([]);
    expect(existsSync(join(agents.a.stateDir, 'dns-records.json'))).toBe(false);
  });

  it('a zone the server does not serve for the key: NOTAUTH, said with what to change', async () => {
    const before = snapshot(agents.a.certDir);
    writeConfig(agents.a);
    const withZone = JSON.parse(readFileSync(agents.a.config, 'utf8')) as {
      challenge: { dns: Record<string, unknown> };
    };
    withZone.challenge.dns.zone = 'other.internal';
    writeFileSync(agents.a.config, JSON.stringify(withZone), { mode: 0o600 });
    const r = await agent(agents.a, ['renew', '--force']);
    expect(r.code).toBe(1);
    expect(r.lines.join('\n')).toMatch(/NOTAUTH.*other\.internal.*challenge\.dns\.zone/);
    expect(snapshot(agents.a.certDir)).toEqual(before);
    expect(existsSync(join(agents.a.stateDir, 'dns-records.json'))).toBe(false);
  });

  it('a key the server does not know: BADKEY', async () => {
    const other = join(agents.a.dir, 'unknown.secret');
    writeFileSync(other, `${Buffer.alloc(32, 9).toString('base64')}\n`, { mode: 0o600 });
    writeConfig(agents.a, { tsig: { name: 'ct-x', algorithm: 'hmac-sha256', secretFile: other } });
    const r = await agent(agents.a, ['renew', '--force']);
    expect(r.code).toBe(1);
    expect(r.lines.join('\n')).toMatch(/BADKEY.*ct-x/);
  });

  it('a key file others can read: refused at load, exit 78, one line, nothing changed', async () => {
    const open = join(agents.a.dir, 'open.secret');
    writeFileSync(open, readFileSync(join(agents.a.dir, 'tsig.secret')));
    chmodSync(open, 0o644);
    const before = snapshot(agents.a.certDir);
    writeConfig(agents.a, { tsig: { name: 'ct-a', algorithm: 'hmac-sha256', secretFile: open } });
    const r = await agent(agents.a, ['renew', '--force']);
    expect(r.code).toBe(78);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatch(/open\.secret.*0644/);
    expect(snapshot(agents.a.certDir)).toEqual(before);
    const d = await agent(agents.a, ['doctor']);
    expect(d.code).toBe(1);
    expect(d.stdout).toMatch(/PROBLEM +config .*open\.secret is readable by group or others \(mode 0644\)/);
  });

  it('a server that does not answer: said in one line within the bound, exit 1', async () => {
    const before = snapshot(agents.a.certDir);
    writeConfig(agents.a, { server: `${SUBNET}.77:53` });
    const started = Date.now();
    const r = await agent(agents.a, ['renew', '--force']);
    expect(r.code).toBe(1);
    expect(r.lines.join('\n')).toMatch(/10\.213\.27\.77:53/);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(snapshot(agents.a.certDir)).toEqual(before);
  });

  it('doctor: the key, a signed query and the authoritative servers', async () => {
    writeConfig(agents.a);
    const r = await agent(agents.a, ['doctor']);
    const out = r.stdout;
    expect(out).toMatch(/ok +dns key .*ct-a \(hmac-sha256\)/);
    expect(out).toMatch(/ok +dns server .*accepts TSIG key ct-a/);
    expect(out).toMatch(/ok +dns authority +zone dns\.internal: ns1\.dns\.internal \(10\.213\.27\.53:53\)/);
    const bad = join(agents.a.dir, 'wrong.secret');
    writeConfig(agents.a, { tsig: { name: 'ct-a', algorithm: 'hmac-sha256', secretFile: bad } });
    const d = await agent(agents.a, ['doctor']);
    expect(d.stdout).toMatch(/PROBLEM +dns server .*BADSIG/);
    expect(d.code).not.toBe(0);
  });
});

describe('the record is withdrawn whatever happens', () => {
  it('an authoritative server that never gets the record: the wait ends naming it, the record withdrawn', async () => {
    await nsupdate([`update add ${ZONE}. 60 IN NS ns2.${ZONE}.`, `update add ns2.${ZONE}. 60 IN A ${SUBNET}.78`]);
    try {
      const before = serialOf(agents.a.certDir);
      writeConfig(agents.a, { propagationTimeout: 5 });
      const r = await agent(agents.a, ['renew', '--force']);
      expect(r.code).toBe(1);
      expect(r.lines.join('\n')).toMatch(
        /did not reach every authoritative server.*ns2\.dns\.internal \(10\.213\.27\.78:53\) did not answer/,
      );
      expect(serialOf(agents.a.certDir)).toBe(before);
      expect(await txt(RECORD_A)).toEqual([]);
    } finally {
      await nsupdate([`update delete ${ZONE}. IN NS ns2.${ZONE}.`, `update delete ns2.${ZONE}. IN A`]);
    }
  });

  it('a pass killed after publishing leaves its record noted; the next pass withdraws it', async () => {
    // A second NS that never answers holds the pass in its wait, after the record is in.
    await nsupdate([`update add ${ZONE}. 60 IN NS ns2.${ZONE}.`, `update add ns2.${ZONE}. 60 IN A ${SUBNET}.78`]);
    writeConfig(agents.a, { propagationTimeout: 120 });
    const child = topo.spawn('a', [process.execPath, agentBundle(), 'renew', '--force', '--config', agents.a.config], {
      env: env(),
      stdio: 'ignore',
    });
    const deadline = Date.now() + 30_000;
    while ((await txt(RECORD_A)).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const left = await txt(RECORD_A);
    expect(left.length).toBeGreaterThan(0);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const noted = JSON.parse(readFileSync(join(agents.a.stateDir, 'dns-records.json'), 'utf8')) as {
      records: { name: string; value: string }[];
    };
    expect(noted.records.map((x) => x.name)).toContain(RECORD_A);
    expect(await txt(RECORD_A)).toEqual(left);
    await nsupdate([`update delete ${ZONE}. IN NS ns2.${ZONE}.`, `update delete ns2.${ZONE}. IN A`]);
    const r = await agent(agents.a, ['renew', '--force']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.events.filter((e) => e.event === 'dns_record_swept').length).toBeGreaterThan(0);
    expect(await txt(RECORD_A)).toEqual([]);
    expect(existsSync(join(agents.a.stateDir, 'dns-records.json'))).toBe(false);
  });

  it('a CA whose resolver does not see the record refuses; the record is withdrawn and the certificate kept', async () => {
    // A second bind9 with its own copy of the zone, never updated, is what this CA resolves through.
    const stale = await startBind9({
      ns: topo.host('dns').ns,
      host: DNS,
      port: 5353,
      zones: [{ name: ZONE, records: [`app 60 IN A ${ELSEWHERE}`] }],
    });
    const host = topo.host('ca');
    const blind = await startStepCa({
      netns: { ns: host.ns, address: host.address, port: 8443, dnsNames: [CA_NAME] },
      resolver: `${DNS}:5353`,
    });
    try {
      const dir = join(agents.a.dir, 'blind');
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const config = join(dir, 'config.yaml');
      const doc = {
        ca: { url: blind.url, fingerprint: blind.rootFingerprint },
        certificate: { domains: [`app.${ZONE}`], dir: join(dir, 'tls') },
        challenge: { mode: 'dns', dns: { server: `${DNS}:53`, tsig: tsigOf('a') } },
        renewal: { method: 'acme' },
        stateDir: join(dir, 'state'),
      };
      writeFileSync(config, JSON.stringify(doc), { mode: 0o600 });
      const r = await topo.exec('a', [process.execPath, agentBundle(), 'renew', '--config', config], { env: env() });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/dns-01 validation of app\.dns\.internal failed/);
      // The agent's own look finds the record on every authoritative server: it names the CA's resolver.
      expect(r.stderr).toMatch(/every authoritative server of dns\.internal .* step-ca's --resolver/);
      expect(await txt(RECORD_A)).toEqual([]);
    } finally {
      await blind.cleanup();
      await stale.stop();
    }
  });
});

describe('the generic hook: challenge.dns.command', () => {
  it('a program called with present|cleanup NAME VALUE publishes the record (here through nsupdate)', async () => {
    const script = join(agents.a.dir, 'dns-hook');
    writeFileSync(
      script,
      [
        '#!/bin/sh',
        'set -eu',
        'action=$1 name=$2 value=$3',
        'case $action in present) op=add ;; cleanup) op=delete ;; *) exit 2 ;; esac',
        `printf 'server ${DNS} 53\\nzone ${ZONE}\\nupdate %s %s. 60 IN TXT "%s"\\nsend\\n' "$op" "$name" "$value" | nsupdate -y hmac-sha256:test-admin:${secrets.admin}`,
        `echo "$action $name" >> ${join(agents.a.dir, 'hook.log')}`,
        '',
      ].join('\n'),
      { mode: 0o700 },
    );
    writeConfig(agents.a, { command: [script] });
    const before = serialOf(agents.a.certDir);
    const r = await agent(agents.a, ['renew', '--force']);
    expect(r.code, r.stderr).toBe(0);
    expect(serialOf(agents.a.certDir)).not.toBe(before);
    const calls = readFileSync(join(agents.a.dir, 'hook.log'), 'utf8').trim().split('\n');
    expect(calls).toEqual([`present ${RECORD_A}`, `present ${RECORD_A}`, `cleanup ${RECORD_A}`, `cleanup ${RECORD_A}`]);
    expect(await txt(RECORD_A)).toEqual([]);
  });
});

describe('authoritative servers named outside the zone, and the system resolver', () => {
  const resolvConf = () => `/etc/netns/${topo.host('a').ns}/resolv.conf`;

  it("an NS named outside the zone gets its address from resolv.conf's resolver, and is waited for", async () => {
    await nsupdate([`update add ${ZONE}. 60 IN NS ns.outside.test.`]);
    try {
      writeFileSync(resolvConf(), `nameserver ${RESOLVER}\n`);
      writeConfig(agents.a);
      const r = await agent(agents.a, ['renew', '--force']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.events.filter((e) => e.event === 'dns_servers_unresolved')).toEqual([]);
      // Without a resolver that knows it, the NS is named, not silently dropped; ns1 still proves the record.
      writeFileSync(resolvConf(), '# no nameserver\n');
      const u = await agent(agents.a, ['renew', '--force']);
      expect(u.code, u.stderr).toBe(0);
      const unresolved = u.events.filter((e) => e.event === 'dns_servers_unresolved');
      expect(unresolved[0]?.servers).toEqual(['ns.outside.test']);
    } finally {
      await nsupdate([`update delete ${ZONE}. IN NS ns.outside.test.`]);
    }
  });

  it('the command hook without challenge.dns.server finds the zone and its servers through the system resolver', async () => {
    writeFileSync(resolvConf(), `nameserver ${RESOLVER}\n`);
    const script = join(agents.a.dir, 'dns-hook');
    writeConfig(agents.a, { command: [script] });
    const doc = JSON.parse(readFileSync(agents.a.config, 'utf8')) as { challenge: { dns: Record<string, unknown> } };
    delete doc.challenge.dns.server;
    writeFileSync(agents.a.config, JSON.stringify(doc), { mode: 0o600 });
    const before = serialOf(agents.a.certDir);
    const r = await agent(agents.a, ['renew', '--force']);
    expect(r.code, r.stderr).toBe(0);
    expect(serialOf(agents.a.certDir)).not.toBe(before);
    expect(await txt(RECORD_A)).toEqual([]);
  });
});
