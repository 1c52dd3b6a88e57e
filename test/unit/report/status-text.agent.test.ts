/**
 * The renderings of the agent's status over several certificates:
 * `status --line` gives one v2 line per certificate (the seven v1 fields,
 * then the certificate's name), and the human text heads several screens
 * with a line of the worst verdict and each certificate's.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { collectAgentStatus, collectStatus } from '../../../agent/report/status.js';
import { renderAgentStatus, renderStatus, renderStatusLines } from '../../../agent/report/status-text.js';
import { twoCertificates, type TwoCertificates } from './agent-fixture.js';

let agent: TwoCertificates;
beforeAll(async () => {
  agent = await twoCertificates();
});

describe('renderStatusLines', () => {
  it('one v2 line per certificate: eight tab-separated fields, the name last, "-" for what is absent', () => {
    const report = collectAgentStatus(agent.config, agent.now);
    const text = renderStatusLines(report, agent.now);
    expect(text.endsWith('\n')).toBe(true);
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    const [a, b] = lines.map((l) => l.split('\t'));
    for (const fields of [a!, b!]) {
      expect(fields).toHaveLength(8);
      expect(fields[0]).toBe('v2');
      expect(fields.every((f) => f !== '' && !/[\u0000-\u001f\u007f-\u009f]/.test(f))).toBe(true);
    }
    expect(a![1]).toBe(report.certificates[0]!.status);
    expect(a![2]).toBe('a.internal');
    expect(Number(a![3])).toBeGreaterThan(21 * 3600);
    expect(a![7]).toBe('default');
    expect(b!.slice(1, 5)).toEqual(['CRITICAL', '-', '-', '-']);
    // The problem is b's own, without the name prefix of the agent's list.
    expect(b![6]).toBe(report.certificates[1]!.problems[0]);
    expect(b![7]).toBe('b');
  });

  it('with one certificate, one v2 line named after it', () => {
    const lines = renderStatusLines(collectAgentStatus(agent.one, agent.now), agent.now).trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.split('\t')).toHaveLength(8);
    expect(lines[0]!.split('\t')[7]).toBe('default');
  });
});

describe('renderAgentStatus', () => {
  const opts = () => ({ color: false, now: agent.now });

  it('one certificate: the screen of 0.1.0, nothing added', () => {
    const alone = collectStatus(agent.one.certificates[0]!, agent.now);
    expect(renderAgentStatus(collectAgentStatus(agent.one, agent.now), opts())).toBe(renderStatus(alone, opts()));
  });

  it('several: a header line with the worst verdict and each one, then each screen headed by its name', () => {
    const report = collectAgentStatus(agent.config, agent.now);
    const text = renderAgentStatus(report, opts());
    const first = report.certificates[0]!.status;
    expect(text.split('\n')[0]).toBe(`cert-agent CRITICAL - 2 certificates: default ${first}, b CRITICAL`);
    const blocks = text.split('\n').filter((l) => /^\S/.test(l));
    expect(blocks.slice(1).map((l) => l.replace(/ [-|] .*/, ''))).toEqual([`default: ${first}`, 'b: CRITICAL']);
    expect(text).not.toMatch(/\u001b/);
  });
});
