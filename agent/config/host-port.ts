/**
 * A validated listen/verify address as host and port. Its own module so that
 * the challenge and reload code, which need only this, do not load the
 * config parser (and YAML with it) in commands that read the parsed-config
 * cache.
 */

/** Splits a validated listen/verify address into host and port. */
export function splitHostPort(value: string, defaultHost = '0.0.0.0'): { host: string; port: number } {
  const idx = value.lastIndexOf(':');
  const host = value.slice(0, idx).replace(/^\[|\]$/g, '') || defaultHost;
  return { host, port: Number(value.slice(idx + 1)) };
}
