/**
 * dns-01's records are withdrawn whatever happens (the site:
 * test/helpers/dns-site.ts): an authoritative server that never gets the
 * record, a pass killed after it published (the next pass withdraws it), a
 * CA whose resolver does not see the record; the generic command hook with
 * and without a configured server; NS servers named outside the zone,
 * resolved through resolv.conf's resolver.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBind9 } from '../harness/bind9.js';
import { startStepCa } from '../harness/stepca.js';
import { agentBundle } from '../helpers/agent.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  agent,
  agents,
  DNS,
  ELSEWHERE,
  nsupdate,
  RECORD_A,
  RESOLVER,
  secrets,
  serialOf,
  startDnsSite,
  stopDnsSite,
  SUBNET,
  topo,
  tsigOf,
  env,
  txt,
  writeConfig,
  ZONE,
  CA_NAME,
} from '../helpers/dns-site.js';

beforeAll(startDnsSite, 90_000);
afterAll(stopDnsSite);

describe('the first certificate', () => {
  it('a gets its certificate over dns-01', async () => {
    writeConfig(agents.a);
    const r = await agent(agents.a, ['renew']);
    expect(r.code, r.stderr).toBe(0);
    expect(await txt(RECORD_A)).toEqual([]);
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

  it('a noted record is withdrawn in the zone it was published in, whatever the config says now', async () => {
    // A record a killed pass left in dns.internal, noted so; the config has since named another zone.
    await nsupdate([`update add ${RECORD_A}. 60 IN TXT "left-by-a-killed-pass"`]);
    const note = {
      records: [
        {
          certificate: 'default',
          name: RECORD_A,
          value: 'left-by-a-killed-pass',
          via: 'rfc2136',
          zone: ZONE,
          at: new Date().toISOString(),
        },
      ],
    };
    writeFileSync(join(agents.a.stateDir, 'dns-records.json'), JSON.stringify(note), { mode: 0o600 });
    writeConfig(agents.a);
    const doc = JSON.parse(readFileSync(agents.a.config, 'utf8')) as { challenge: { dns: Record<string, unknown> } };
    doc.challenge.dns.zone = 'other.internal';
    writeFileSync(agents.a.config, JSON.stringify(doc), { mode: 0o600 });
    const r = await agent(agents.a, ['renew', '--force']);
    expect(r.code).toBe(1); // this pass's own record cannot go into other.internal (NOTAUTH)
    expect(r.events.filter((e) => e.event === 'dns_record_swept').map((e) => e.record)).toEqual([RECORD_A]);
    expect(await txt(RECORD_A)).toEqual([]);
    expect(existsSync(join(agents.a.stateDir, 'dns-records.json'))).toBe(false);
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
      expect(r.code).toBe(76); // the CA refused the validation (exit codes: the CA answered, but not with what was asked)
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
