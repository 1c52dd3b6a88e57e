/**
 * Metrics: `cert-agent metrics` through the bundle, parsed with a Prometheus
 * text-format parser (a library, so a malformed line fails the parse), and
 * the textfile written atomically for node_exporter.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { loadConfig } from '../../agent/config/config.js';
import { writeMetricsTextfile } from '../../agent/report/metrics.js';
import { makeCa, selfSigned, writeSetByHand, type TestCa } from '../helpers/certs.js';
import { runAgent, tempDir } from '../helpers/agent.js';

interface Parsed {
  name: string;
  help: string;
  type: string;
  metrics: { value: string; labels?: Record<string, string> }[];
}
const parse = (text: string): Parsed[] => parsePrometheusTextFormat(text);

const H = 3_600_000;
let ca: TestCa;
let root: string;
beforeAll(async () => {
  ca = await makeCa('Metrics');
  root = tempDir('cert-agent-metrics-');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
function installation(extraConfig = ''): { config: string; certDir: string; stateDir: string } {
  const dir = join(root, `case-${++n}`);
  const certDir = join(dir, 'tls');
  const stateDir = join(dir, 'state');
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    `ca: { url: "https://127.0.0.1:9", fingerprint: "${ca.fingerprint}" }\ncertificate: { domains: [app.internal] , dir: "${certDir}" }\nreload: { target: nginx, verify: "127.0.0.1:8443" }\nstateDir: "${stateDir}"\n${extraConfig}`,
  );
  writeFileSync(
    join(stateDir, 'trust.json'),
    JSON.stringify({
      pins: [ca.fingerprint],
      roots: [{ fingerprint: ca.fingerprint, pem: ca.root.pem }],
      bootstrappedAt: new Date().toISOString(),
    }),
  );
  return { config, certDir, stateDir };
}

function byName(families: Parsed[]): Record<string, Parsed> {
  return Object.fromEntries(families.map((f) => [f.name, f]));
}
const value = (m: Record<string, Parsed>, name: string) => Number(m[name]?.metrics[0]?.value);

describe('cert-agent metrics', () => {
  it('prints every metric in the Prometheus text format, with the values of the installation', async () => {
    const i = installation();
    const notBefore = new Date(Date.now() - 2 * H);
    const notAfter = new Date(Date.now() + 22 * H);
    const leaf = await ca.leaf({ domains: ['app.internal'], notBefore, notAfter });
    writeSetByHand(i.certDir, 's1', { keyPem: leaf.keyPem, fullchainPem: leaf.fullchainPem, rootPem: ca.root.pem });
    const lastSuccess = new Date(Date.now() - 2 * H);
    writeFileSync(
      join(i.stateDir, 'state.json'),
      JSON.stringify({
        consecutiveFailures: 2,
        backoffStep: 2,
        placeholder: false,
        lastSuccess: lastSuccess.toISOString(),
        lastAttempt: {
          at: new Date().toISOString(),
          result: 'failed',
          error: 'cannot reach "ca"\nsecond line',
          errorKind: 'ca-unavailable',
        },
        reload: { target: 'nginx', at: lastSuccess.toISOString(), ok: true, servedSerial: 'ff00' },
      }),
    );
    const r = await runAgent(['metrics', '--config', i.config]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const m = byName(parse(r.stdout));
    for (const f of Object.values(m)) {
      expect(f.name).toMatch(/^cert_agent_[a-z_]+$/);
      expect(f.type).toBe('GAUGE');
      expect(f.help.length).toBeGreaterThan(10);
    }
    expect(value(m, 'cert_agent_certificate_not_after_timestamp_seconds')).toBe(Math.floor(notAfter.getTime() / 1000));
    expect(value(m, 'cert_agent_certificate_not_before_timestamp_seconds')).toBe(
      Math.floor(notBefore.getTime() / 1000),
    );
    expect(value(m, 'cert_agent_last_success_timestamp_seconds')).toBe(lastSuccess.getTime() / 1000);
    expect(value(m, 'cert_agent_consecutive_failures')).toBe(2);
    expect(value(m, 'cert_agent_certificate_placeholder')).toBe(0);
    expect(value(m, 'cert_agent_trust_broken')).toBe(0);
    expect(value(m, 'cert_agent_served_certificate_match')).toBe(0);
    expect(value(m, 'cert_agent_status')).toBe(1);
    expect(value(m, 'cert_agent_certificate_status')).toBe(1);
    expect(value(m, 'cert_agent_certificate_present')).toBe(1);
    // The agent's own families have no label; every per-certificate one names the certificate.
    expect(m.cert_agent_status?.metrics[0]?.labels ?? {}).toEqual({});
    for (const f of Object.values(m).filter((f) => !['cert_agent_status', 'cert_agent_config_ok'].includes(f.name)))
      for (const sample of f.metrics) expect(sample.labels?.certificate, f.name).toBe('default');
    const remaining = value(m, 'cert_agent_renewal_remaining_seconds');
    const next = value(m, 'cert_agent_renewal_next_timestamp_seconds');
    expect(Math.abs(next - Date.now() / 1000 - remaining)).toBeLessThan(30);
    expect(remaining).toBeGreaterThan(12 * 3600);
    expect(remaining).toBeLessThan(14 * 3600);
    expect(m.cert_agent_certificate_info?.metrics[0]?.labels).toEqual({
      certificate: 'default',
      serial: leaf.serial,
      issuer: 'CN=Metrics Intermediate CA',
      names: 'app.internal',
    });
  });

  it('reports a placeholder, broken trust and no served check with the right values and no made-up ones', async () => {
    const i = installation();
    const ph = await selfSigned(['app.internal'], new Date(Date.now() - 60_000), new Date(Date.now() + H));
    writeSetByHand(i.certDir, 'p1', {
      keyPem: ph.keyPem,
      fullchainPem: ph.fullchainPem,
      rootPem: '',
      placeholder: true,
    });
    writeFileSync(
      join(i.stateDir, 'state.json'),
      JSON.stringify({
        consecutiveFailures: 0,
        backoffStep: 0,
        placeholder: true,
        trust: { ok: false, detail: 'x', checkedAt: new Date().toISOString() },
      }),
    );
    const m = byName(parse((await runAgent(['metrics', '--config', i.config])).stdout));
    expect(value(m, 'cert_agent_certificate_placeholder')).toBe(1);
    expect(value(m, 'cert_agent_trust_broken')).toBe(1);
    expect(value(m, 'cert_agent_status')).toBe(2);
    expect(value(m, 'cert_agent_last_success_timestamp_seconds')).toBe(0);
    expect(m.cert_agent_served_certificate_match).toBeUndefined();
    expect(m.cert_agent_reload_last_success).toBeUndefined();
  });

  it('without a certificate: present 0, no certificate timestamps', async () => {
    const i = installation();
    const m = byName(parse((await runAgent(['metrics', '--config', i.config])).stdout));
    expect(value(m, 'cert_agent_certificate_present')).toBe(0);
    expect(value(m, 'cert_agent_status')).toBe(2);
    expect(m.cert_agent_certificate_not_after_timestamp_seconds).toBeUndefined();
  });

  it('a bad config: a one-line error on stderr, and metrics a scraper can alert on (exit 0)', async () => {
    const bad = join(root, 'bad.yaml');
    writeFileSync(bad, 'metrics: { textfile: relative.prom }\n');
    const r = await runAgent(['metrics', '--config', bad]);
    expect(r.code).toBe(0);
    const m = byName(parse(r.stdout));
    expect(value(m, 'cert_agent_status')).toBe(3);
    expect(value(m, 'cert_agent_config_ok')).toBe(0);
    expect(Object.keys(m).sort()).toEqual(['cert_agent_config_ok', 'cert_agent_status']);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^cert-agent: config: /);
  });
});

describe('writeMetricsTextfile', () => {
  it('writes the file atomically, 0644, with the same content the command prints', async () => {
    const textDir = join(root, 'textfile');
    mkdirSync(textDir);
    const file = join(textDir, 'cert-agent.prom');
    const i = installation(`metrics: { textfile: "${file}" }\n`);
    const leaf = await ca.leaf({ domains: ['app.internal'] });
    writeSetByHand(i.certDir, 's1', { keyPem: leaf.keyPem, fullchainPem: leaf.fullchainPem, rootPem: ca.root.pem });
    const config = loadConfig(i.config);
    writeFileSync(file, 'old content\n');
    const inode = statSync(file).ino;
    expect(writeMetricsTextfile(config, new Date())).toBe(file);
    // Replaced by rename, not rewritten in place: a reader never sees half a file.
    expect(statSync(file).ino).not.toBe(inode);
    expect(statSync(file).mode & 0o777).toBe(0o644);
    expect(readdirSync(textDir)).toEqual(['cert-agent.prom']);
    const parsed = byName(parse(readFileSync(file, 'utf8')));
    expect(value(parsed, 'cert_agent_status')).toBe(0);
    expect(value(parsed, 'cert_agent_config_ok')).toBe(1);
    const printed = byName(parse((await runAgent(['metrics', '--config', i.config])).stdout));
    expect(Object.keys(parsed).sort()).toEqual(Object.keys(printed).sort());
  });

  it('does nothing when metrics.textfile is unset', () => {
    const i = installation();
    expect(writeMetricsTextfile(loadConfig(i.config), new Date())).toBeUndefined();
  });
});
