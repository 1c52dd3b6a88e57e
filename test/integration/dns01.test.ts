/**
 * dns-01 against the real parts (the site: test/helpers/dns-site.ts): a name
 * that resolves elsewhere and its wildcard proven by TXT records alone, with
 * an hmac-sha256 key in tsig-keygen's form and an hmac-sha512 one as a bare
 * secret; then what must not work — a key for another container's name, a
 * wrong secret, an unknown key, a zone the server does not serve, a key file
 * others can read, a server that does not answer — each one line, its exit
 * code, the certificate kept and nothing left in the zone; and doctor.
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { snapshot } from '../faults/common.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  A_NAMES,
  agent,
  agents,
  B_NAMES,
  bind,
  ca,
  ELSEWHERE,
  namesOf,
  RECORD_A,
  RECORD_B,
  startDnsSite,
  stopDnsSite,
  SUBNET,
  topo,
  txt,
  writeConfig,
  ZONE,
} from '../helpers/dns-site.js';

beforeAll(startDnsSite, 90_000);
afterAll(stopDnsSite);

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
    expect(d.code).toBe(1);
  });
});
