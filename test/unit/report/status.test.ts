/**
 * The agent's status over its certificates: the worst verdict, every
 * certificate's problems (prefixed with its name only when there are
 * several), the 0.1.0 sections at the top only with one certificate, and a
 * document that docs/status.schema.json accepts in both cases.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { beforeAll, describe, expect, it } from 'vitest';
import { collectAgentStatus, collectStatus } from '../../../agent/report/status.js';
import schema from '../../../docs/status.schema.json' with { type: 'json' };
import { twoCertificates, type TwoCertificates } from './agent-fixture.js';

let agent: TwoCertificates;
beforeAll(async () => {
  agent = await twoCertificates();
});

function validates(doc: unknown): void {
  const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
  (addFormatsModule as unknown as (a: Ajv2020) => void)(ajv);
  const json: unknown = JSON.parse(JSON.stringify(doc));
  expect(ajv.validate(schema, json), JSON.stringify(ajv.errors)).toBe(true);
}

describe('collectAgentStatus', () => {
  it('several: the worst verdict, each problem prefixed with its name, no sections at the top', () => {
    const report = collectAgentStatus(agent.config, agent.now);
    const [a, b] = report.certificates;
    expect(report.certificates.map((c) => c.name)).toEqual(['default', 'b']);
    expect(a!.status).not.toBe('CRITICAL');
    expect(b!.status).toBe('CRITICAL');
    expect(b!.certificate).toBeNull();
    expect(report.status).toBe('CRITICAL');
    const expected = [...a!.problems.map((p) => `default: ${p}`), ...b!.problems.map((p) => `b: ${p}`)];
    expect(report.problems).toEqual(expected);
    expect(b!.problems.length).toBeGreaterThan(0);
    for (const key of ['certificate', 'renewal', 'ca', 'reload']) expect(report).not.toHaveProperty(key);
  });

  it('each certificate report is what status of that certificate alone says', () => {
    const report = collectAgentStatus(agent.config, agent.now);
    agent.config.certificates.forEach((c, i) => {
      const { schema: _s, checkedAt: _c, ...alone } = collectStatus(c, agent.now);
      expect(report.certificates[i]).toEqual({ name: c.certificate.name, ...alone });
    });
  });

  it('one: the problems unprefixed and the sections at the top, as 0.1.0 had them', () => {
    for (const report of [
      collectAgentStatus(agent.one, agent.now),
      collectAgentStatus(agent.config, agent.now, [agent.config.certificates[1]!]),
    ]) {
      const [only] = report.certificates;
      expect(report.certificates).toHaveLength(1);
      expect(report.status).toBe(only!.status);
      expect(report.problems).toEqual(only!.problems);
      expect(report.problems.every((p) => !/^(default|b): /.test(p))).toBe(true);
      expect(report.certificate).toEqual(only!.certificate);
      expect(report.renewal).toEqual(only!.renewal);
      expect(report.ca).toEqual(only!.ca);
      expect(report.reload).toEqual(only!.reload);
    }
  });

  it('the document validates against docs/status.schema.json, for one certificate and for two', () => {
    validates(collectAgentStatus(agent.one, agent.now));
    validates(collectAgentStatus(agent.config, agent.now));
  });
});

describe('worstOf', () => {
  it('ranks as monitoring does: OK < WARNING < UNKNOWN < CRITICAL', async () => {
    const { worstOf } = await import('../../../agent/report/status/report.js');
    expect(worstOf([])).toBe('OK');
    expect(worstOf(['OK', 'WARNING'])).toBe('WARNING');
    expect(worstOf(['WARNING', 'UNKNOWN'])).toBe('UNKNOWN');
    // A certificate known to be expired is not hidden by one that could not be read.
    expect(worstOf(['UNKNOWN', 'CRITICAL', 'OK'])).toBe('CRITICAL');
  });
});
