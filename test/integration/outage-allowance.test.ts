/**
 * The CA-outage allowance against a real step-ca issuing 1-hour
 * certificates, through the bundle: status (text and --json, valid against
 * the schema) and metrics show how long the CA may stay unreachable and what
 * a normal day leaves; status warns under renewal.minAllowance; doctor warns
 * when renewal.at leaves less than an hour for certificates this short.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { runAgent, tempDir } from '../helpers/agent.js';
import { enrolledWithCertificate } from '../helpers/enrolled.js';
import { DURATION } from '../helpers/duration.js';
import schema from '../../docs/status.schema.json' with { type: 'json' };

const ajv = new Ajv2020({ strict: true, strictRequired: false });
(addFormatsModule as unknown as (a: Ajv2020) => void)(ajv);
const validate = ajv.compile(schema);

let ca: StepCa;
let dir: string;
const cfg = () => join(dir, 'config.yaml');

beforeAll(async () => {
  ca = await startStepCa({ certDuration: '1h' });
  dir = tempDir();
  await enrolledWithCertificate(ca, dir);
});
afterAll(async () => {
  await ca?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function statusJson(config = cfg()) {
  const r = await runAgent(['status', '--json', '--config', config]);
  const doc = JSON.parse(r.stdout);
  expect(validate.errors ?? []).toEqual([]);
  expect(validate(doc)).toBe(true);
  return { code: r.code, doc };
}

/** The same installation with one more line in its configuration. */
function variant(name: string, line: string): string {
  const path = join(dir, `${name}.yaml`);
  const text = readFileSync(cfg(), 'utf8');
  const changed = /^renewal:/m.test(text) ? text.replace(/^renewal:.*$/m, line) : `${text.trimEnd()}\n${line}\n`;
  writeFileSync(path, changed, { mode: 0o600 });
  return path;
}

describe('CA-outage allowance of a 1-hour certificate', () => {
  it('status --json and metrics: until expiry from now, and what the schedule leaves on a normal day', async () => {
    const { code, doc } = await statusJson();
    expect(code).toBe(0);
    const notAfter = Date.parse(doc.certificate.notAfter);
    const checked = Date.parse(doc.checkedAt);
    const a = doc.renewal.caOutageAllowance;
    expect(Math.abs(a.seconds - (notAfter - checked) / 1000)).toBeLessThanOrEqual(1);
    expect(Math.abs(a.normalDaySeconds - (notAfter - Date.parse(doc.renewal.next)) / 1000)).toBeLessThanOrEqual(1);
    // Defaults: renewal.at 0.66, jitter 0.05 → 0.34 to 0.39 of the lifetime (an hour, and
    // the minute step-ca backdates); warn below a quarter of it.
    expect(a.normalDaySeconds).toBeGreaterThanOrEqual(0.34 * 3600 - 1);
    expect(a.normalDaySeconds).toBeLessThanOrEqual(0.39 * 3660 + 1);
    const lifetime = (notAfter - Date.parse(doc.certificate.notBefore)) / 1000;
    expect(Math.abs(a.warnBelowSeconds - 0.25 * lifetime)).toBeLessThanOrEqual(1);

    const text = await runAgent(['status', '--config', cfg()]);
    // How long until expiry depends on the second this runs in (59m59s, or 1h00m right after issuance).
    expect(text.stdout).toMatch(
      new RegExp(`CA may be down +${DURATION} from now; a normal day leaves ${DURATION} \\(warn below 15m\\d\\ds\\)`),
    );

    const metrics = await runAgent(['metrics', '--config', cfg()]);
    expect(metrics.code).toBe(0);
    const parsed = parsePrometheusTextFormat(metrics.stdout);
    const families = Object.fromEntries(parsed.map((f) => [f.name, Number((f.metrics[0] as { value: string }).value)]));
    expect(Math.abs((families.cert_agent_ca_outage_allowance_seconds ?? NaN) - a.seconds)).toBeLessThanOrEqual(2);
    expect(families.cert_agent_ca_outage_allowance_normal_day_seconds).toBe(a.normalDaySeconds);
    expect(families.cert_agent_ca_outage_allowance_warning_seconds).toBe(a.warnBelowSeconds);
  });

  it('status warns (exit 1) when the allowance is under renewal.minAllowance, naming both', async () => {
    const config = variant('min-2h', 'renewal: { minAllowance: 2h }');
    const { code, doc } = await statusJson(config);
    expect(code).toBe(1);
    expect(doc.status).toBe('WARNING');
    expect(doc.renewal.caOutageAllowance.warnBelowSeconds).toBe(7200);
    expect(doc.problems).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^the CA may stay unreachable for only ${DURATION} more before the certificate expires at \\S+ ` +
            `\\(renewal\\.minAllowance: 2h00m; a normal day leaves ${DURATION}\\)`,
        ),
      ),
    );
    const text = await runAgent(['status', '--config', config]);
    expect(text.stdout.split('\n')[0]).toMatch(/^cert-agent WARNING - the CA may stay unreachable for only/);
  });

  it('a minAllowance the schedule never leaves is refused with the field and what is allowed (exit 78)', async () => {
    const r = await runAgent(['status', '--config', variant('min-bad', 'renewal: { minAllowance: 0.5 }')]);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/renewal\.minAllowance: 0\.5 is not allowed; use a share of the lifetime above 0 /);
    expect(r.stdout).toMatch(/below 1 - renewal\.at \(0\.34\)/);
    const renew = await runAgent(['renew', '--config', join(dir, 'min-bad.yaml')]);
    expect(renew.code).toBe(78);
  });

  it('doctor warns that renewal.at leaves less than an hour for 1-hour certificates, without failing', async () => {
    const r = await runAgent(['doctor', '--config', cfg()]);
    const line = r.stdout.split('\n').find((l) => l.startsWith('WARN ') && l.includes('outage allowance'));
    expect(line).toMatch(
      new RegExp(
        "with renewal\\.at 0\\.66 and jitter 0\\.05, the CA's 1h0[01]m certificates " +
          'leave only 2\\dm\\d\\ds to 2\\dm\\d\\ds between renewal and expiry for a CA outage \\(less than 1h\\): ' +
          'lower renewal\\.at, or have the CA issue longer certificates',
      ),
    );
    expect(r.stdout).not.toMatch(/^PROBLEM/m);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('doctor: all good (1 warning(s))');
  });
});
