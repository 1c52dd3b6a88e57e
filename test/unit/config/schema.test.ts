/**
 * One source for the configuration's fields and defaults: the parser
 * (agent/config/schema.ts's DEFAULTS, applied by config.ts). The example file
 * that ships (packaging/config.example.yaml) and `cert-agent help config`
 * are checked against it: every field the parser knows is in both, every
 * value the example sets is the default, and the help names that default,
 * as do the flags of `cert-agent enroll` that write a field.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { validateConfig } from '../../../agent/config/config.js';
import { HELP } from '../../../agent/cli/help.js';
import { DEFAULTS, DEFAULT_CONFIG_PATH } from '../../../agent/config/schema.js';

type Doc = Record<string, unknown>;
const exampleText = readFileSync(join(import.meta.dirname, '../../../packaging/config.example.yaml'), 'utf8');
const REQUIRED = ['ca.url', 'ca.fingerprint', 'certificate.domains'];

/** The example with its commented-out fields ("  # email: ops@example.org") set, and every field's dotted path. */
function exampleWithEverything(): { doc: Doc; fields: string[] } {
  const lines = exampleText.split('\n');
  const stack: { indent: number; key: string }[] = [];
  const fields: string[] = [];
  const text = lines.map((line) => {
    const field = /^(\s*)(# )?([a-zA-Z]+):( |$)/.exec(line);
    if (!field) return line;
    const indent = (field[1] as string).length;
    while (stack.length && (stack.at(-1) as { indent: number }).indent >= indent) stack.pop();
    const path = [...stack.map((s) => s.key), field[3]].join('.');
    fields.push(path);
    // A section header, commented out or not (`# dns:` with its fields commented below, indented).
    if (!field[2] || field[4] === '') stack.push({ indent, key: field[3] as string });
    return field[2] ? line.replace('# ', '') : line;
  });
  return { doc: parse(text.join('\n')) as Doc, fields };
}

function at(doc: Doc, path: string): unknown {
  return path.split('.').reduce<unknown>((v, k) => (v as Doc | undefined)?.[k], doc);
}

/** The fields the parser knows in the section at `path`, from its unknown-field error. */
function knownFields(doc: Doc, path: string): string[] {
  const copy = structuredClone(doc);
  const section = path ? (at(copy, path) as Doc) : copy;
  section.notAField = 1;
  try {
    validateConfig(copy);
  } catch (err) {
    const known = /known fields here: (.*)$/.exec((err as Error).message)?.[1];
    if (known) return known.split(', ').map((k) => (path ? `${path}.${k}` : k));
    throw err;
  }
  throw new Error(`${path}.notAField was accepted`);
}

/**
 * challenge.dns applies to mode dns alone, and its tsig and command exclude
 * each other: the example shows both, so the whole is read as the RFC 2136
 * form (every field is still read, and so known, whichever is given).
 */
function asDns(doc: Doc): Doc {
  const copy = structuredClone(doc);
  const challenge = copy.challenge as Doc;
  challenge.mode = 'dns';
  delete (challenge.dns as Doc).command;
  return copy;
}

const { doc: example, fields } = exampleWithEverything();
const everything = asDns(example);
const leaves = fields.filter((f) => typeof at(example, f) !== 'object' || Array.isArray(at(example, f)));
const sections = ['', ...fields.filter((f) => !leaves.includes(f))];

describe('packaging/config.example.yaml', () => {
  it('sets only defaults: it parses to what the required fields alone parse to', () => {
    const example = parse(exampleText) as Doc;
    const required: Doc = {};
    for (const path of REQUIRED) {
      const [section, key] = path.split('.') as [string, string];
      required[section] = { ...(required[section] as Doc), [key]: at(example, path) };
    }
    expect(validateConfig(example)).toEqual(validateConfig(required));
  });

  it('shows every field the parser knows, set or commented out, and no other', () => {
    expect(() => validateConfig(everything)).not.toThrow();
    const known = sections.flatMap((s) => knownFields(everything, s)).sort();
    // The list form is the second example (below), in place of `certificate`.
    expect([...fields, 'certificates'].sort()).toEqual(known);
  });

  it('shows the defaults in the dns section it keeps commented out', () => {
    expect(validateConfig(everything).challenge.dns).toMatchObject({
      propagationTimeoutSeconds: DEFAULTS.dnsPropagationTimeoutSeconds,
      ttl: DEFAULTS.dnsTtl,
      tsig: { algorithm: DEFAULTS.tsigAlgorithm },
    });
  });

  it('shows the list form, which parses to two certificates with their own overrides', () => {
    const block = /^#certificates:\n(?:#.*\n)+/m.exec(exampleText)?.[0] ?? '';
    const list = parse(block.replace(/^#/gm, '')) as Doc;
    const { certificate: _one, ...shared } = parse(exampleText) as Doc;
    const config = validateConfig({ ...shared, ...list });
    expect(config.certificates.map((c) => [c.certificate.name, c.certificate.dir, c.reload.target])).toEqual([
      ['app', '/etc/cert-agent/certs/app', 'none'],
      ['grafana', '/etc/cert-agent/certs/grafana', 'command'],
    ]);
  });
});

describe('cert-agent help config', () => {
  const help = HELP.config as string;
  const example = parse(exampleText) as Doc;

  it.each(leaves)('names %s and its default', (field) => {
    const line = new RegExp(`^  ${field.replace(/\./g, '\\.')} +(.*(?:\\n {30}.*)*)`, 'm').exec(help)?.[1];
    expect(line, `${field} is not in the help`).toBeDefined();
    const value = at(example, field);
    if (REQUIRED.includes(field)) expect(line).toContain('(required');
    else if (value === undefined) expect(line).toMatch(/\((default|required)/);
    else
      expect(line?.replace(/\s+/g, ' ')).toMatch(
        new RegExp(`\\(default ${String(value).replace(/[*.]/g, '\\$&')}[;,)]`),
      );
  });
});

describe('cert-agent enroll --help', () => {
  it.each([
    ['--provisioner', DEFAULTS.provisioner],
    ['--key-type', `${DEFAULTS.keyType} (default)`],
    ['--cert-dir', `default ${DEFAULTS.certDir}`],
    ['--state-dir', `default ${DEFAULTS.stateDir}`],
    ['--owner', `default ${DEFAULTS.owner}`],
    ['--group', `default ${DEFAULTS.group}`],
    ['--reload', `default ${DEFAULTS.reloadTarget}`],
    ['--listen', `default ${DEFAULTS.standaloneListen}; proxy ${DEFAULTS.proxyListen}`],
    ['--config', `default ${DEFAULT_CONFIG_PATH}`],
    ['--tsig-algorithm', `default ${DEFAULTS.tsigAlgorithm}`],
    ['--dns-propagation-timeout', `default ${DEFAULTS.dnsPropagationTimeoutSeconds}`],
  ])('%s names the default', (flag, wanted) => {
    const entry = new RegExp(`^  (?:-\\w, )?${flag} .*(?:\\n {24}.*)*`, 'm').exec(HELP.enroll as string)?.[0];
    expect(entry?.replace(/\s+/g, ' ')).toContain(wanted);
  });
});
