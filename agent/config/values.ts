/**
 * The formats of single configuration values, each a check that returns what
 * is wrong (or undefined) for the field reader to report: URLs, identifiers,
 * paths, account names, listen addresses (and splitting a valid one), and
 * durations such as "6h".
 */
import { isIP } from 'node:net';
import { isAbsolute } from 'node:path';
import { ipv6Bytes } from '../pki/der.js';

export function httpsUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not a URL; expected e.g. https://ca.internal:9000';
  }
  if (url.protocol !== 'https:') return 'must use https:// (step-ca only speaks TLS)';
  if (url.username || url.password) return 'must not contain credentials';
  if (url.search || url.hash) return 'must not contain a query or fragment';
  return undefined;
}

const DNS_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;

/**
 * A DNS name or IP address step-ca can validate, or a wildcard (`*.` and a
 * name of at least two labels), which only dns-01 proves: whether the
 * certificate's challenge allows it is the caller's question (isWildcard).
 */
export function identifierProblem(value: string): string | undefined {
  if (isIP(value) === 6) {
    const b = ipv6Bytes(value);
    if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
      // step-ca (Go) takes it for the IPv4 address and issues for that; the names would never match.
      const v4 = b.subarray(12).join('.');
      return `is an IPv4-mapped IPv6 address; clients connect over IPv4, so list the IPv4 form ${v4}`;
    }
  }
  if (isIP(value)) return undefined;
  if (value.length > 253) return 'is longer than 253 characters';
  const labels = value.replace(/\.$/, '').split('.');
  if (isWildcard(value)) {
    if (labels.length < 3) return 'is a wildcard over a top-level name; a wildcard needs *. and at least two labels';
    if (isIP(value.slice(2))) return 'is a wildcard over an IP address; a wildcard needs *. and a DNS name';
    labels.shift();
  }
  if (!labels.every((l) => DNS_LABEL.test(l)))
    return 'is not a valid DNS name, wildcard (*.app.internal) or IP address';
  return undefined;
}

/** `*.` followed by a name: the one wildcard form a certificate may carry. */
export function isWildcard(value: string): boolean {
  return value.startsWith('*.');
}

/** A DNS name such as a zone: labels of letters, digits and -, a trailing dot allowed. */
export function dnsNameProblem(value: string): string | undefined {
  const name = value.replace(/\.$/, '');
  if (name.length > 253) return 'is longer than 253 characters';
  if (isIP(name) || !name.split('.').every((l) => DNS_LABEL.test(l))) return 'is not a DNS name (e.g. app.internal)';
  return undefined;
}

/** A TSIG key's name as bind9 writes it (`key "cert-agent" { ... }`): a DNS name, underscores allowed. */
export function tsigKeyNameProblem(value: string): string | undefined {
  const name = value.replace(/\.$/, '');
  if (name.length > 253 || !/^[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*$/i.test(name))
    return 'is not a TSIG key name: a DNS name of letters, digits, - and _ (e.g. cert-agent or acme-update.app.internal)';
  return undefined;
}

const DNS_SERVER = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/;

/** IP, IP:PORT, [IPv6] or [IPv6]:PORT (a bare IPv6 address too): the server is reached directly, never looked up. */
export function dnsServerProblem(value: string): string | undefined {
  const allowed = 'must be an IP address with an optional port (IP:PORT or [IPv6]:PORT, default port 53)';
  if (isIP(value) === 6) return undefined;
  const m = DNS_SERVER.exec(value);
  const host = m?.[1] ?? m?.[2] ?? '';
  const port = Number(m?.[3] ?? 53);
  if (!m || port < 1 || port > 65535) return allowed;
  if (m[1] !== undefined ? isIP(host) !== 6 : isIP(host) !== 4)
    return `${allowed}, not a host name: the updates and lookups go to it without resolving a name first`;
  return undefined;
}

/** A valid dns server value to host and port. */
export function parseDnsServer(value: string): { host: string; port: number } {
  if (isIP(value) === 6) return { host: value, port: 53 };
  const m = DNS_SERVER.exec(value) as RegExpExecArray;
  return { host: (m[1] ?? m[2]) as string, port: Number(m[3] ?? 53) };
}

export function absolutePathProblem(value: string): string | undefined {
  if (!isAbsolute(value)) return 'must be an absolute path';
  if (value.includes('\0')) return 'must not contain NUL';
  return undefined;
}

export function accountNameProblem(value: string): string | undefined {
  return /^([a-z_][a-z0-9_.-]*\$?|\d+)$/i.test(value) ? undefined : 'is not a user or group name or numeric id';
}

/** host:port, [v6]:port or :port. */
export function listenProblem(value: string): string | undefined {
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:\s[\]]*)):(\d{1,5})$/i.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535)
    return 'must be host:port with a port from 1 to 65535 (e.g. 0.0.0.0:80 or [::]:80)';
  if (m[1] && isIP(m[1]) !== 6) return 'has an invalid IPv6 address in brackets';
  return undefined;
}

/** Splits a validated listen/verify address into host and port. */
export function splitHostPort(value: string, defaultHost = '0.0.0.0'): { host: string; port: number } {
  const idx = value.lastIndexOf(':');
  const host = value.slice(0, idx).replace(/^\[|\]$/g, '') || defaultHost;
  return { host, port: Number(value.slice(idx + 1)) };
}

/** "6h", "90m", "1h30m", "2d", "45s" to seconds; undefined when it is not such a duration. */
export function parseDurationSeconds(text: string): number | undefined {
  const m = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text.trim());
  if (!m || text.trim() === '') return undefined;
  const [d, h, min, s] = m.slice(1).map((v) => Number(v ?? 0)) as [number, number, number, number];
  const total = d * 86400 + h * 3600 + min * 60 + s;
  return total > 0 ? total : undefined;
}
