/**
 * A small reader for untrusted, already-parsed YAML/JSON. Each accessor names
 * the dotted field it reads, so every error can say exactly which field is
 * wrong, what it holds and what is allowed. Unknown keys are errors too: a
 * typo ("renewl:") must not silently fall back to a default.
 */
import { ConfigError } from '../lib/errors.js';

type Obj = Record<string, unknown>;

export function show(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    // YAML anchors can build a structure that contains itself (`a: &x [*x]`).
    text = 'a structure that contains itself (YAML alias)';
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

export class FieldReader {
  private readonly seen = new Set<string>();
  constructor(
    private readonly obj: Obj,
    private readonly path: string,
  ) {}

  static root(value: unknown, what = 'configuration'): FieldReader {
    if (!isPlainObject(value)) throw new ConfigError('', `the ${what} must be a mapping of fields, got ${show(value)}`);
    return new FieldReader(value, '');
  }

  field(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  raw(key: string): unknown {
    this.seen.add(key);
    return this.obj[key];
  }

  /** The same fields under another name in messages (a list entry, once its own name is known). */
  named(path: string): FieldReader {
    const reader = new FieldReader(this.obj, path);
    for (const key of this.seen) reader.seen.add(key);
    return reader;
  }

  /** A list of mappings, each read on its own (`certificates[1].domains`); absent gives an empty list. */
  sections(key: string): FieldReader[] {
    const value = this.raw(key);
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) throw new ConfigError(this.field(key), `must be a list of mappings, got ${show(value)}`);
    return value.map((item, i) => {
      const where = `${this.field(key)}[${i}]`;
      if (!isPlainObject(item)) throw new ConfigError(where, `must be a mapping of fields, got ${show(item)}`);
      return new FieldReader(item, where);
    });
  }

  /** A nested mapping; absent gives an empty one so defaults apply. */
  section(key: string): FieldReader {
    const value = this.raw(key);
    if (value === undefined || value === null) return new FieldReader({}, this.field(key));
    if (!isPlainObject(value))
      throw new ConfigError(this.field(key), `must be a mapping of fields, got ${show(value)}`);
    return new FieldReader(value, this.field(key));
  }

  string(
    key: string,
    opts: { default?: string; allowed?: readonly string[]; check?: (v: string) => string | undefined } = {},
  ): string {
    const value = this.raw(key);
    if (value === undefined || value === null) {
      if (opts.default === undefined) throw new ConfigError(this.field(key), 'is required');
      return opts.default;
    }
    if (typeof value !== 'string' || value.trim() === '')
      throw new ConfigError(this.field(key), `must be a non-empty string, got ${show(value)}`);
    if (opts.allowed && !opts.allowed.includes(value)) {
      throw new ConfigError(this.field(key), `${show(value)} is not allowed; use one of ${opts.allowed.join(', ')}`);
    }
    const problem = opts.check?.(value);
    if (problem) throw new ConfigError(this.field(key), `${show(value)} ${problem}`);
    return value;
  }

  optionalString(key: string, check?: (v: string) => string | undefined): string | undefined {
    if (!this.has(key)) {
      this.raw(key);
      return undefined;
    }
    return this.string(key, { check });
  }

  number(key: string, opts: { default: number; min: number; max: number; integer?: boolean }): number {
    const value = this.raw(key);
    if (value === undefined || value === null) return opts.default;
    const ok = typeof value === 'number' && Number.isFinite(value) && (!opts.integer || Number.isInteger(value));
    if (!ok || (value as number) < opts.min || (value as number) > opts.max) {
      const kind = opts.integer ? 'a whole number' : 'a number';
      throw new ConfigError(this.field(key), `must be ${kind} from ${opts.min} to ${opts.max}, got ${show(value)}`);
    }
    return value as number;
  }

  boolean(key: string, def: boolean): boolean {
    const value = this.raw(key);
    if (value === undefined || value === null) return def;
    if (typeof value !== 'boolean') throw new ConfigError(this.field(key), `must be true or false, got ${show(value)}`);
    return value;
  }

  /** A list of strings; a single string is accepted as a list of one. */
  stringList(
    key: string,
    opts: { required?: boolean; check?: (v: string) => string | undefined; acceptSingle?: boolean } = {},
  ): string[] {
    const value = this.raw(key);
    if (value === undefined || value === null) {
      if (opts.required) throw new ConfigError(this.field(key), 'is required');
      return [];
    }
    const list = typeof value === 'string' && opts.acceptSingle ? [value] : value;
    if (!Array.isArray(list)) throw new ConfigError(this.field(key), `must be a list of strings, got ${show(value)}`);
    if (opts.required && list.length === 0) throw new ConfigError(this.field(key), 'must name at least one entry');
    return list.map((item, i) => {
      const where = `${this.field(key)}[${i}]`;
      if (typeof item !== 'string' || item.trim() === '')
        throw new ConfigError(where, `must be a non-empty string, got ${show(item)}`);
      const problem = opts.check?.(item);
      if (problem) throw new ConfigError(where, `${show(item)} ${problem}`);
      return item;
    });
  }

  /** Call after reading every known key: anything left over is a typo or a field from another version. */
  done(allowed: readonly string[] = []): void {
    for (const key of Object.keys(this.obj)) {
      if (!this.seen.has(key)) {
        const known = [...this.seen, ...allowed].sort().join(', ');
        throw new ConfigError(this.field(key), `unknown field; known fields here: ${known}`);
      }
    }
  }
}

function isPlainObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
