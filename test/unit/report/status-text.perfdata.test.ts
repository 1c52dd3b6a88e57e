/**
 * status's first line follows the monitoring-plugin convention: "cert-agent
 * STATE - text | expiry=Ns;warn;crit;min;max allowance=Ns;warn;crit;min;max",
 * so an NRPE check graphs the seconds to expiry and the CA-outage allowance
 * with the same thresholds as status's own verdict.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { perfdata, renderStatus } from '../../../agent/report/status-text.js';
import type { StatusReport } from '../../../agent/report/status.js';
import { parsePluginLine } from '../../helpers/plugin.js';
import { runAgent, tempDir } from '../../helpers/agent.js';

const now = new Date('2026-03-01T12:00:00Z');
const certificate = {
  configuredNames: ['a.internal'],
  names: ['a.internal'],
  missingNames: [],
  serial: '1a2b',
  subject: 'CN=a.internal',
  issuer: 'CN=Int',
  notBefore: '2026-03-01T00:00:00.000Z',
  notAfter: '2026-03-02T00:00:00.000Z',
  lifetimeUsed: 0.5,
  secondsToExpiry: 43200,
  expired: false,
  placeholder: false,
  keyMatches: true,
  chainVerifies: true,
  chainProblem: null,
  directory: '/etc/cert-agent/tls',
  set: 's1',
  publishedNames: [],
};
const report: StatusReport = {
  schema: 'cert-agent.status/v2',
  status: 'OK',
  problems: [],
  checkedAt: now.toISOString(),
  certificate,
  renewal: {
    next: '2026-03-01T16:00:00.000Z',
    due: false,
    nextAttempt: null,
    lastAttempt: null,
    lastSuccess: null,
    consecutiveFailures: 0,
    caOutageAllowance: null,
  },
  ca: {
    url: 'https://ca:9000',
    directory: 'https://ca:9000/acme/acme/directory',
    pinnedFingerprints: ['ab'.repeat(32)],
    trustedFingerprints: ['ab'.repeat(32)],
    trust: 'ok',
    trustDetail: null,
    offeredFingerprints: [],
  },
  reload: { target: 'none', verify: null, lastResult: null, servedMatches: null },
};
const firstLine = (r: StatusReport) => renderStatus(r, { color: false, now }).split('\n')[0]!;

describe('perfdata on the first line', () => {
  it('OK: "cert-agent OK | expiry=..." with warn where status warns, crit at expiry, max the lifetime', () => {
    const line = firstLine(report);
    expect(line).toBe('cert-agent OK | expiry=43200s;28200:;0:;;86400');
    const { text, perf } = parsePluginLine(line);
    expect(text).toBe('cert-agent OK');
    // Renewal at 16:00, 10 minutes of grace: status warns from 16:10, 7h50m = 28200 s before expiry.
    expect(perf).toEqual([
      { label: 'expiry', value: 43200, uom: 's', warn: '28200:', crit: '0:', min: '', max: '86400' },
    ]);
  });

  it('with a problem: the text before the bar, perfdata after it', () => {
    const line = firstLine({ ...report, status: 'WARNING', problems: ['last attempt at x failed: y'] });
    const { text, perf } = parsePluginLine(line);
    expect(text).toBe('cert-agent WARNING - last attempt at x failed: y');
    expect(perf.map((p) => p.label)).toEqual(['expiry']);
  });

  it('an expired certificate: a negative value below the critical range', () => {
    const expired = { ...certificate, secondsToExpiry: -60, expired: true };
    const { perf } = parsePluginLine(
      firstLine({ ...report, status: 'CRITICAL', problems: ['expired'], certificate: expired }),
    );
    expect(perf[0]!.value).toBe(-60);
  });

  it('no certificate: no perfdata', () => {
    const line = firstLine({
      ...report,
      status: 'CRITICAL',
      problems: ['no certificate installed'],
      certificate: null,
    });
    expect(line).toBe('cert-agent CRITICAL - no certificate installed');
  });

  it('the placeholder: expiry without a warning threshold (status warns about the placeholder itself)', () => {
    expect(perfdata({ certificate: { ...certificate, placeholder: true }, renewal: report.renewal })).toBe(
      'expiry=43200s;;0:;;86400',
    );
  });

  it('the CA-outage allowance: warn below renewal.minAllowance, crit at 0, max what a normal day leaves', () => {
    const renewal = {
      ...report.renewal,
      caOutageAllowance: { seconds: 28000, normalDaySeconds: 28800, warnBelowSeconds: 7200 },
    };
    const line = firstLine({ ...report, renewal });
    expect(line).toBe('cert-agent OK | expiry=43200s;28200:;0:;;86400 allowance=28000s;7200:;0:;;28800');
    const { perf } = parsePluginLine(line);
    expect(perf[1]).toEqual({
      label: 'allowance',
      value: 28000,
      uom: 's',
      warn: '7200:',
      crit: '0:',
      min: '',
      max: '28800',
    });
  });
});

describe('the monitoring kit in packaging/monitoring', () => {
  const kit = (name: string) => readFileSync(join(import.meta.dirname, '../../../packaging/monitoring', name), 'utf8');

  it('the NRPE command runs exactly what the sudoers line allows', () => {
    const command = /^command\[check_cert_agent\]=(.+)$/m.exec(kit('nrpe-cert-agent.cfg'))?.[1];
    expect(command).toBe('/usr/bin/sudo -n /usr/bin/cert-agent status');
    const rule = kit('sudoers-cert-agent')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    expect(rule).toEqual(['nagios ALL=(root) NOPASSWD: /usr/bin/cert-agent status']);
    expect(command!.replace('/usr/bin/sudo -n ', '')).toBe(rule[0]!.split('NOPASSWD: ')[1]);
  });

  it('the drop-in opens the textfile directory to the unit, and no more', () => {
    const lines = kit('metrics-textfile.conf')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    expect(lines).toEqual(['[Service]', 'ReadWritePaths=-/var/lib/prometheus/node-exporter']);
  });

  it('the alert rules use only metrics that cert-agent writes', () => {
    const doc = parse(kit('cert-agent.rules.yml'));
    const exprs: string[] = doc.groups.flatMap((g: { rules: { expr: string }[] }) => g.rules.map((r) => r.expr));
    const used = new Set(exprs.flatMap((e) => e.match(/cert_agent_\w+/g) ?? []));
    const written = new Set(
      [
        ...readFileSync(join(import.meta.dirname, '../../../agent/report/metrics.ts'), 'utf8').matchAll(
          /add\(\s*'(\w+)'/g,
        ),
      ].map((m) => `cert_agent_${m[1]}`),
    );
    expect(used.size).toBeGreaterThan(0);
    for (const name of used) expect(written, name).toContain(name);
  });
});

describe('through the bundle: the NRPE command without sudoers', () => {
  it('as the nagios-like user, UNKNOWN (3) with a plugin first line that says what to do', async () => {
    const dir = tempDir();
    const config = join(dir, 'config.yaml');
    writeFileSync(config, 'ca: {}\n', { mode: 0o600 });
    const r = await runAgent(['status', '--config', config], { uid: 65534, gid: 65534 });
    expect(r.code).toBe(3);
    const { text, perf } = parsePluginLine(r.stdout.split('\n')[0]!);
    expect(text).toMatch(/^cert-agent UNKNOWN - .*permission denied; run as root \(sudo cert-agent status\)/);
    expect(perf).toEqual([]);
  });
});
