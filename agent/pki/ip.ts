/**
 * net.isIP without its cost where it matters: the first call compiles Node's
 * IPv6 expression, a noticeable part of `status`, which only ever sees DNS
 * names and dotted IPv4 addresses. Names without a colon cannot be IPv6 and
 * are answered here with Node's own IPv4 rule; the rest go to net.isIP.
 */
import { createRequire } from 'node:module';

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]\\d|\\d)';
const IPV4 = new RegExp(`^(?:${OCTET}\\.){3}${OCTET}$`);
let netIsIP: ((input: string) => number) | undefined;

/** 4, 6 or 0, exactly as net.isIP. */
export function isIP(input: string): number {
  if (!input.includes(':')) return IPV4.test(input) ? 4 : 0;
  netIsIP ??= (createRequire(import.meta.url)('node:net') as typeof import('node:net')).isIP;
  return netIsIP(input);
}
