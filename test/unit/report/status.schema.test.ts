/**
 * The document `status --json` prints against docs/status.schema.json, for
 * one certificate and for several: with several, the certificate, renewal,
 * ca and reload sections are only in each entry of `certificates`, never at
 * the top, and the schema must accept that.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { validateConfig } from '../../../agent/config/config.js';
import { collectAgentStatus } from '../../../agent/report/status.js';
import { tempDir } from '../../helpers/agent.js';
import schema from '../../../docs/status.schema.json' with { type: 'json' };

const ajv = new Ajv2020({ strict: true, strictRequired: false });
(addFormatsModule as unknown as (a: Ajv2020) => void)(ajv);
const validate = ajv.compile(schema);

const base = tempDir('status-schema-');
afterAll(() => rmSync(base, { recursive: true, force: true }));

const ca = { url: 'https://ca.internal:9000', fingerprint: 'a'.repeat(64) };
const entry = (name: string) => ({ name, domains: [`${name}.internal`], dir: join(base, 'certs', name) });
/** The document as `status --json` prints it (JSON.stringify of the report). */
const printed = (doc: unknown) => JSON.parse(JSON.stringify(doc)) as Record<string, unknown>;

describe('status --json against docs/status.schema.json', () => {
  it('one certificate: its sections at the top too, as in v1', () => {
    const config = validateConfig({ ca, certificates: [entry('app')], stateDir: join(base, 'one') });
    const doc = printed(collectAgentStatus(config, new Date()));
    expect(doc.status).toBe('CRITICAL');
    expect(doc).toHaveProperty('renewal');
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
  });

  it('two certificates: the sections only in each entry, and the document is valid', () => {
    const config = validateConfig({ ca, certificates: [entry('app'), entry('grafana')], stateDir: join(base, 'two') });
    const doc = printed(collectAgentStatus(config, new Date()));
    expect(doc.status).toBe('CRITICAL');
    expect(doc).not.toHaveProperty('renewal');
    expect((doc.certificates as { name: string }[]).map((c) => c.name)).toEqual(['app', 'grafana']);
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
  });

  it('still refuses a one-certificate document of a known status without its top sections', () => {
    const config = validateConfig({ ca, certificates: [entry('app')], stateDir: join(base, 'one') });
    const { renewal: _r, ...doc } = printed(collectAgentStatus(config, new Date()));
    expect(validate(doc)).toBe(false);
  });
});
