/**
 * Where the http-01 self-check may follow a redirect, and how it shows text
 * a server chose. The self-check runs as root inside the site's network
 * after the CA refused a challenge, and its finding ends up in `status`: it
 * goes only where the CA would go for this certificate, and it repeats
 * status codes and cleaned-up locations, never what a server sent as body.
 */
import { isIP } from 'node:net';

export function hostForUrl(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

/**
 * Why the CA would not follow a redirect to `url`, or undefined when it
 * would: only http and https, only ports 80 and 443 (and the port a test CA
 * validates on), only names of this certificate.
 */
export function unfollowable(url: URL, names: string[], checkPort: number): string | undefined {
  const https = url.protocol === 'https:';
  const port = Number(url.port) || (https ? 443 : 80);
  if (port !== 80 && port !== 443 && port !== checkPort) return `port ${port} is not 80 or 443`;
  const host = url.hostname.replace(/\.$/, '');
  if (!names.some((n) => canonicalHost(n) === host)) return `${shownText(host, 80)} is not a name of this certificate`;
  return undefined;
}

/** A certificate name as a URL's hostname spells it (lower case, IPv6 in brackets, no trailing dot). */
function canonicalHost(name: string): string | undefined {
  try {
    return new URL(`http://${hostForUrl(name)}/`).hostname.replace(/\.$/, '');
  } catch {
    return undefined;
  }
}

/**
 * Text a server chose, made safe to show: printable ASCII only (control
 * characters, C1 and anything else become `?`), at most `max` characters.
 */
export function shownText(text: string, max = 200): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}...` : clean;
}
