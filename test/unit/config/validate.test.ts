/**
 * The field reader every configuration and enrollment document goes through:
 * each accessor accepts what is allowed, applies defaults, and otherwise
 * fails with the dotted field, what it holds and what is allowed.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../agent/lib/errors.js';
import { FieldReader, show } from '../../../agent/config/validate.js';

/** The ConfigError `fn` throws (the test fails if it throws anything else or nothing). */
function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

const reader = (doc: Record<string, unknown>) => FieldReader.root(doc);

describe('FieldReader.root', () => {
  it.each([[[]], [null], ['text'], [42]])('refuses %j as a document', (value) => {
    const err = errorOf(() => FieldReader.root(value));
    expect(err.field).toBe('');
    expect(err.message).toBe(`config: the configuration must be a mapping of fields, got ${show(value)}`);
  });

  it('names what is being read', () => {
    expect(errorOf(() => FieldReader.root([], 'enrollment file')).message).toMatch(/the enrollment file must be/);
  });
});

describe('string', () => {
  it('returns the value, or the default when absent or null', () => {
    const r = reader({ a: 'x', n: null });
    expect(r.string('a')).toBe('x');
    expect(r.string('b', { default: 'd' })).toBe('d');
    expect(r.string('n', { default: 'd' })).toBe('d');
  });

  it('requires a field without a default', () => {
    const err = errorOf(() => reader({}).string('url'));
    expect([err.field, err.message]).toEqual(['url', 'config: url: is required']);
  });

  it.each([[''], ['   '], [5], [true], [['a']], [{ a: 1 }]])('refuses %j as a string', (value) => {
    const err = errorOf(() => reader({ s: value }).string('s', { default: 'd' }));
    expect(err.message).toBe(`config: s: must be a non-empty string, got ${show(value)}`);
  });

  it('lists the allowed values when the value is not one of them', () => {
    const err = errorOf(() => reader({ k: 'rsa-1024' }).string('k', { allowed: ['ec-p256', 'rsa-2048'] }));
    expect(err.message).toBe('config: k: "rsa-1024" is not allowed; use one of ec-p256, rsa-2048');
    expect(reader({ k: 'rsa-2048' }).string('k', { allowed: ['ec-p256', 'rsa-2048'] })).toBe('rsa-2048');
  });

  it("reports the check's problem after the value", () => {
    const check = (v: string) => (v.startsWith('https://') ? undefined : 'must start with https://');
    expect(errorOf(() => reader({ u: 'http://x' }).string('u', { check })).message).toBe(
      'config: u: "http://x" must start with https://',
    );
    expect(reader({ u: 'https://x' }).string('u', { check })).toBe('https://x');
  });

  it('nests field names through sections', () => {
    const r = reader({ ca: { tls: { name: 7 } } });
    const err = errorOf(() => r.section('ca').section('tls').string('name'));
    expect(err.field).toBe('ca.tls.name');
  });
});

describe('optionalString', () => {
  it('is undefined when absent or null, checked when present', () => {
    const r = reader({ n: null, v: 'x' });
    expect(r.optionalString('missing')).toBeUndefined();
    expect(r.optionalString('n')).toBeUndefined();
    expect(r.optionalString('v')).toBe('x');
    expect(errorOf(() => reader({ v: '' }).optionalString('v')).field).toBe('v');
    r.done();
  });
});

describe('number', () => {
  const opts = { default: 0.66, min: 0.1, max: 0.95 };

  it('accepts the bounds themselves and applies the default', () => {
    expect(reader({ a: 0.1 }).number('a', opts)).toBe(0.1);
    expect(reader({ a: 0.95 }).number('a', opts)).toBe(0.95);
    expect(reader({}).number('a', opts)).toBe(0.66);
  });

  it.each([[0.09], [0.951], ['0.5'], [Number.NaN], [Number.POSITIVE_INFINITY], [true]])('refuses %j', (value) => {
    expect(errorOf(() => reader({ a: value }).number('a', opts)).message).toBe(
      `config: a: must be a number from 0.1 to 0.95, got ${show(value)}`,
    );
  });

  it('refuses fractions where a whole number is asked for', () => {
    const whole = { default: 80, min: 1, max: 65535, integer: true };
    expect(reader({ p: 443 }).number('p', whole)).toBe(443);
    expect(errorOf(() => reader({ p: 443.5 }).number('p', whole)).message).toBe(
      'config: p: must be a whole number from 1 to 65535, got 443.5',
    );
  });
});

describe('boolean', () => {
  it('takes true and false only, with the default when absent', () => {
    expect(reader({ b: false }).boolean('b', true)).toBe(false);
    expect(reader({}).boolean('b', true)).toBe(true);
    for (const value of ['yes', 'true', 1, 0]) {
      expect(errorOf(() => reader({ b: value }).boolean('b', false)).message).toBe(
        `config: b: must be true or false, got ${show(value)}`,
      );
    }
  });
});

describe('stringList', () => {
  it('returns the list, and an empty one when absent and optional', () => {
    expect(reader({ l: ['a', 'b'] }).stringList('l')).toEqual(['a', 'b']);
    expect(reader({}).stringList('l')).toEqual([]);
  });

  it('accepts a single string only where allowed', () => {
    expect(reader({ l: 'a' }).stringList('l', { acceptSingle: true })).toEqual(['a']);
    expect(errorOf(() => reader({ l: 'a' }).stringList('l')).message).toBe(
      'config: l: must be a list of strings, got "a"',
    );
  });

  it('requires entries when required', () => {
    expect(errorOf(() => reader({}).stringList('l', { required: true })).message).toBe('config: l: is required');
    expect(errorOf(() => reader({ l: [] }).stringList('l', { required: true })).message).toBe(
      'config: l: must name at least one entry',
    );
  });

  it('names the bad entry by its index', () => {
    const err = errorOf(() =>
      reader({ d: { l: ['ok', '', 'x'] } })
        .section('d')
        .stringList('l'),
    );
    expect([err.field, err.message]).toEqual(['d.l[1]', 'config: d.l[1]: must be a non-empty string, got ""']);
    const check = (v: string) => (v.includes('_') ? 'must not contain "_"' : undefined);
    const bad = errorOf(() => reader({ l: ['a', 'b', 'c_d'] }).stringList('l', { check }));
    expect(bad.message).toBe('config: l[2]: "c_d" must not contain "_"');
  });
});

describe('section and done', () => {
  it('gives an empty section for an absent one, so defaults apply', () => {
    const s = reader({}).section('renewal');
    expect(s.number('at', { default: 0.66, min: 0.1, max: 0.95 })).toBe(0.66);
    s.done();
  });

  it('refuses a section that is not a mapping', () => {
    expect(errorOf(() => reader({ renewal: ['x'] }).section('renewal')).message).toBe(
      'config: renewal: must be a mapping of fields, got ["x"]',
    );
  });

  it('names an unknown field and lists the known ones, sorted, including allowed extras', () => {
    const r = reader({ url: 'https://x', fingerprnt: 'ab' });
    r.string('url');
    r.optionalString('fingerprint');
    const err = errorOf(() => r.done(['roots']));
    expect(err.field).toBe('fingerprnt');
    expect(err.message).toBe('config: fingerprnt: unknown field; known fields here: fingerprint, roots, url');
  });

  it('counts a field as known once read, even if it was absent', () => {
    const r = reader({ a: 1 });
    r.number('a', { default: 0, min: 0, max: 2 });
    r.boolean('b', false);
    expect(() => r.done()).not.toThrow();
  });

  it('still refuses a key that was not read, even when it is named among the known fields', () => {
    const err = errorOf(() => reader({ legacy: 1 }).done(['legacy']));
    expect(err.message).toBe('config: legacy: unknown field; known fields here: legacy');
  });
});

describe('show', () => {
  it('prints JSON, cut to 60 characters', () => {
    expect(show('abc')).toBe('"abc"');
    expect(show(undefined)).toBe('undefined');
    const long = show('x'.repeat(100));
    expect(long).toHaveLength(60);
    expect(long.endsWith('...')).toBe(true);
  });

  it('describes a structure that contains itself instead of throwing', () => {
    const a: unknown[] = [];
    a.push(a);
    expect(show(a)).toBe('a structure that contains itself (YAML alias)');
  });
});
