/**
 * Metrics of an agent with several certificates, parsed with a Prometheus
 * text-format parser (a malformed line fails the parse): the overall status
 * and config_ok unlabelled, every other family once per certificate with a
 * `certificate` label, each family's HELP and TYPE once.
 */
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { beforeAll, describe, expect, it } from 'vitest';
import { metricsText } from '../../../agent/report/metrics.js';
import { collectAgentStatus } from '../../../agent/report/status.js';
import { twoCertificates, type TwoCertificates } from './agent-fixture.js';

interface Parsed {
  name: string;
  help: string;
  type: string;
  metrics: { value: string; labels?: Record<string, string> }[];
}
const parse = (text: string): Parsed[] => parsePrometheusTextFormat(text);
const UNLABELLED = ['cert_agent_status', 'cert_agent_config_ok'];

let agent: TwoCertificates;
beforeAll(async () => {
  agent = await twoCertificates();
});

describe('metrics of several certificates', () => {
  it('cert_agent_status and config_ok unlabelled; every other family labelled with the certificate', () => {
    const text = metricsText(agent.config, agent.now);
    const families = parse(text);
    const byName = Object.fromEntries(families.map((f) => [f.name, f]));
    expect(families.map((f) => f.name)).toEqual([...new Set(families.map((f) => f.name))]);
    expect(text.match(/^# HELP cert_agent_certificate_status /gm)).toHaveLength(1);
    for (const name of UNLABELLED) {
      expect(byName[name]!.metrics).toHaveLength(1);
      expect(byName[name]!.metrics[0]!.labels ?? {}).toEqual({});
    }
    expect(byName.cert_agent_status!.metrics[0]!.value).toBe('2');
    for (const f of families.filter((f) => !UNLABELLED.includes(f.name))) {
      for (const m of f.metrics) expect(['default', 'b'], f.name).toContain(m.labels?.certificate);
    }
    const status = byName.cert_agent_certificate_status!.metrics.map((m) => [m.labels!.certificate, m.value]);
    const report = collectAgentStatus(agent.config, agent.now);
    const levels = { OK: '0', WARNING: '1', CRITICAL: '2', UNKNOWN: '3' } as const;
    expect(status).toEqual(report.certificates.map((c) => [c.name, levels[c.status]]));
    // b has no certificate: present 0, and no sample of a family about an installed certificate.
    const present = byName.cert_agent_certificate_present!.metrics.map((m) => [m.labels!.certificate, m.value]);
    expect(present).toEqual([
      ['default', '1'],
      ['b', '0'],
    ]);
    const info = byName.cert_agent_certificate_info!.metrics;
    expect(info.map((m) => m.labels!.certificate)).toEqual(['default']);
    expect(info[0]!.labels).toMatchObject({ certificate: 'default', names: 'a.internal' });
  });

  it('with one certificate, the same families labelled with its name', () => {
    const families = parse(metricsText(agent.one, agent.now));
    for (const f of families.filter((f) => !UNLABELLED.includes(f.name)))
      expect(f.metrics.map((m) => m.labels?.certificate)).toEqual(f.metrics.map(() => 'default'));
  });
});
