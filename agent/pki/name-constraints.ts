/**
 * Name constraints (RFC 5280 4.2.1.10) as OpenSSL 3.0 applies them, so that
 * the agent's verdict is never more lenient: every kind of name is held only
 * to constraints of its own kind (a CA that constrains e-mail addresses does
 * not refuse a leaf with DNS names only); the subject is held to
 * directory-name constraints and its e-mail addresses to e-mail ones; the
 * common name to DNS constraints when the leaf has no DNS name (and, on
 * purpose beyond OpenSSL 3.0, a wildcard is refused when it could stand for an
 * excluded name, and a DNS name with a trailing dot is held to the constraints
 * without the dot as well). The work is bounded by OpenSSL's own limit (names ×
 * constraints ≤ 2^20, refused beyond) and DNS names and IP addresses are looked up in sets, so
 * thousands of constraints cost milliseconds.
 */
import type { CertRules, GeneralName, NameConstraints, Subtree } from './cert-rules.js';
import { readAll, readSingle, oidText, type Tlv } from './der-read.js';
import { dirNameOf, encodeTlv, ipText, stringValue } from './name-text.js';

/** OpenSSL's NAME_CHECK_MAX: names × constraints beyond this are refused unchecked. */
export const NAME_CHECK_MAX = 1 << 20;

export type Finding =
  | { kind: 'violation'; name: string }
  | { kind: 'unsupported'; name: string }
  | { kind: 'too-many'; names: number; constraints: number };

type Verdict = 'ok' | 'violation' | 'unsupported';

const TAG = { otherName: 0xa0, email: 0x81, dns: 0x82, dirName: 0xa4, uri: 0x86, ip: 0x87 };
const OID_CN = '2.5.4.3';
const OID_EMAIL = '1.2.840.113549.1.9.1';
const OID_SMTP_UTF8 = '1.3.6.1.5.5.7.8.9';

interface Group {
  permitted: Subtree[];
  excluded: Subtree[];
  /** Some subtree of the kind has a minimum or maximum. */
  badRange: boolean;
}
interface DnsSide {
  any: boolean;
  bases: Set<string>;
}
/** IP subtrees by mask: each mask's set of masked addresses. */
type IpSide = Map<string, { mask: Buffer; nets: Set<string> }>;
interface Compiled {
  count: number;
  groups: Map<string, Group>;
  dns: { permitted: DnsSide; excluded: DnsSide; excludedParents: Set<string> };
  ip: { permitted: IpSide; excluded: IpSide; malformed: boolean };
}

const compiled = new WeakMap<NameConstraints, Compiled>();

function compile(nc: NameConstraints): Compiled {
  let c = compiled.get(nc);
  if (c) return c;
  const groups = new Map<string, Group>();
  const side = (): DnsSide => ({ any: false, bases: new Set() });
  const dns = { permitted: side(), excluded: side(), excludedParents: new Set<string>() };
  const ip = { permitted: new Map(), excluded: new Map(), malformed: false };
  for (const which of ['permitted', 'excluded'] as const) {
    for (const sub of nc[which]) {
      const key = kindKey(sub.base);
      if (!groups.has(key)) groups.set(key, { permitted: [], excluded: [], badRange: false });
      const group = groups.get(key)!;
      group[which].push(sub);
      group.badRange ||= sub.badRange;
      if (sub.base.tag === TAG.ip) ip.malformed = !addNet(ip[which], sub.base.body) || ip.malformed;
      if (sub.base.tag !== TAG.dns) continue;
      const base = sub.base.body.toString('latin1').toLowerCase();
      if (base === '') dns[which].any = true;
      dns[which].bases.add(base);
      const dot = base.indexOf('.');
      if (which === 'excluded' && !base.startsWith('.')) dns.excludedParents.add(dot < 0 ? '' : base.slice(dot + 1));
    }
  }
  c = { count: nc.permitted.length + nc.excluded.length, groups, dns, ip };
  compiled.set(nc, c);
  return c;
}

function addNet(side: IpSide, base: Buffer): boolean {
  if (base.length !== 8 && base.length !== 32) return false;
  const half = base.length / 2;
  const mask = base.subarray(half);
  const key = mask.toString('latin1');
  if (!side.has(key)) side.set(key, { mask, nets: new Set() });
  side.get(key)!.nets.add(masked(base.subarray(0, half), mask));
  return true;
}

/** The address under the mask, as a string key (one character per byte). */
function masked(addr: Buffer, mask: Buffer): string {
  let key = '';
  for (let k = 0; k < addr.length; k++) key += String.fromCharCode((addr[k] as number) & (mask[k] as number));
  return key;
}

/** otherNames are told apart by their type; every other kind by its tag. */
function kindKey(name: GeneralName): string {
  if (name.tag !== TAG.otherName) return String(name.tag);
  const [typeId] = readAll(name.body);
  return `${name.tag}:${typeId ? oidText(typeId.body) : ''}`;
}

/**
 * The first name of the certificate with `rules` that `nc` forbids or that
 * cannot be checked against it, or undefined when all pass. `leaf`: the
 * certificate at the end of the path (its common name may be a host name).
 */
export function nameConstraintFinding(nc: NameConstraints, rules: CertRules, leaf: boolean): Finding | undefined {
  const c = compile(nc);
  const rdns = rules.parts.subjectRdns;
  const entries = rdns.reduce((n, rdn) => n + readAll(rdn.body).length, 0);
  const names = entries + (rules.altNames?.length ?? 0);
  if (names > 0 && c.count > Math.floor(NAME_CHECK_MAX / names))
    return { kind: 'too-many', names, constraints: c.count };
  if (rdns.length) {
    const v = checkDirName(rdns, c);
    if (v !== 'ok') return { kind: v, name: `the subject ${dirNameOf(rdns)}` };
  }
  for (const email of attributes(rdns, OID_EMAIL)) {
    if (email.tag !== 0x16)
      return { kind: 'unsupported', name: 'an emailAddress in the subject that is not an IA5String' };
    const v = check({ tag: TAG.email, body: email.body }, c);
    if (v !== 'ok') return { kind: v, name: email.body.toString('latin1') };
  }
  for (const name of rules.altNames ?? []) {
    const v = check(name, c);
    if (v !== 'ok') return { kind: v, name: describe(name) };
  }
  if (leaf && !rules.altNames?.some((n) => n.tag === TAG.dns)) return commonNameFinding(rdns, c);
  return undefined;
}

/** A leaf without DNS names: its common names that look like host names are checked as DNS names. */
function commonNameFinding(rdns: Tlv[], c: ReturnType<typeof compile>): Finding | undefined {
  for (const cn of attributes(rdns, OID_CN)) {
    const text = stringValue(cn)?.replace(/\.$/, '');
    if (text === undefined || !HOSTNAME_CN.test(text)) continue;
    const v = check({ tag: TAG.dns, body: Buffer.from(text, 'latin1') }, c);
    if (v !== 'ok') return { kind: v, name: text.toLowerCase() };
  }
  return undefined;
}

// A common name OpenSSL takes for a host name (two labels or more, letters,
// digits, '_' and inner '-'), plus a leading wildcard label.
const LABEL = '[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?';
const HOSTNAME_CN = new RegExp(`^(\\*\\.)?${LABEL}(\\.${LABEL})+$`, 'i');

function attributes(rdns: Tlv[], oid: string): Tlv[] {
  const out: Tlv[] = [];
  for (const rdn of rdns) {
    for (const ava of readAll(rdn.body)) {
      const [type, value] = readAll(ava.body);
      if (type && value && oidText(type.body) === oid) out.push(value);
    }
  }
  return out;
}

function describe(name: GeneralName): string {
  if (name.tag === TAG.ip) return ipText(name.body);
  if (name.tag === TAG.dirName) return `the directory name ${dirNameOf(readAll(readSingle(name.body).body))}`;
  if (name.tag === TAG.otherName) return `an otherName (${kindKey(name).split(':')[1]})`;
  return name.body.toString('latin1');
}

/** One name against the constraints of its kind, as OpenSSL's nc_match. */
function check(name: GeneralName, c: Compiled): Verdict {
  if (name.tag === TAG.dns) return checkDns(name.body.toString('latin1').toLowerCase(), c);
  if (name.tag === TAG.ip) return checkIp(name.body, c);
  let key = kindKey(name);
  // An SmtpUTF8Mailbox is an e-mail address to OpenSSL; it is not compared
  // here but refused under e-mail constraints (stricter, on purpose: rare, and
  // a wrong guess would pass a name the CA may not issue for).
  if (key === `${TAG.otherName}:${OID_SMTP_UTF8}`) key = String(TAG.email);
  const group = c.groups.get(key);
  if (!group) return 'ok';
  if (group.badRange) return 'unsupported';
  if (key !== kindKey(name)) return 'unsupported';
  // Every subtree of the kind is compared: a malformed one refuses the name
  // even after a match, where OpenSSL stops looking (stricter, on purpose).
  if (group.permitted.length) {
    let found = false;
    for (const sub of group.permitted) {
      const m = matches(name, sub.base);
      if (m === 'unsupported') return m;
      if (m === 'match') found = true;
    }
    if (!found) return 'violation';
  }
  for (const sub of group.excluded) {
    const m = matches(name, sub.base);
    if (m === 'unsupported') return m;
    if (m === 'match') return 'violation';
  }
  return 'ok';
}

function checkDirName(rdns: Tlv[], c: Compiled): Verdict {
  const group = c.groups.get(String(TAG.dirName));
  if (!group) return 'ok';
  const name = encodeTlv(0x30, Buffer.concat(rdns.map((rdn) => encodeTlv(rdn.tag, rdn.body))));
  return check({ tag: TAG.dirName, body: name }, c);
}

/**
 * A DNS name with one trailing dot is the same host without it. OpenSSL
 * compares the bytes, so the dot would slip past an excluded subtree: the
 * name must pass in both forms (as written, which is OpenSSL's verdict, too).
 */
function checkDns(name: string, c: Compiled): Verdict {
  const asWritten = checkDnsForm(name, c);
  if (asWritten !== 'ok' || !name.endsWith('.')) return asWritten;
  return checkDnsForm(name.slice(0, -1), c);
}

/** DNS names through the compiled sets: one lookup per label instead of one comparison per constraint. */
function checkDnsForm(name: string, c: Compiled): Verdict {
  const group = c.groups.get(String(TAG.dns));
  if (!group) return 'ok';
  if (group.badRange) return 'unsupported';
  if (group.permitted.length && !dnsWithin(name, c.dns.permitted)) return 'violation';
  if (group.excluded.length && dnsWithin(name, c.dns.excluded)) return 'violation';
  // A wildcard stands for any one label: refuse it when that label can make an excluded name.
  const dot = name.indexOf('.');
  const first = dot < 0 ? name : name.slice(0, dot);
  if (first.includes('*') && c.dns.excludedParents.has(dot < 0 ? '' : name.slice(dot + 1))) return 'violation';
  return 'ok';
}

/** IP addresses through the compiled masks: one lookup per distinct mask (nc_ip for every base at once). */
function checkIp(ip: Buffer, c: Compiled): Verdict {
  const group = c.groups.get(String(TAG.ip));
  if (!group) return 'ok';
  if (group.badRange || c.ip.malformed || (ip.length !== 4 && ip.length !== 16)) return 'unsupported';
  const inside = (side: IpSide) =>
    [...side.values()].some((net) => net.mask.length === ip.length && net.nets.has(masked(ip, net.mask)));
  if (group.permitted.length && !inside(c.ip.permitted)) return 'violation';
  if (group.excluded.length && inside(c.ip.excluded)) return 'violation';
  return 'ok';
}

/** OpenSSL's nc_dns for every base at once: "" covers all, "a.b" itself and below, ".a.b" only below. */
function dnsWithin(name: string, side: DnsSide): boolean {
  if (side.any || side.bases.has(name)) return true;
  for (let i = 0; i < name.length; i++) {
    if (name[i] !== '.') continue;
    if (side.bases.has(name.slice(i + 1))) return true;
    if (i > 0 && side.bases.has(name.slice(i))) return true;
  }
  return false;
}

type Match = 'match' | 'no' | 'unsupported';

function matches(name: GeneralName, base: GeneralName): Match {
  switch (name.tag) {
    case TAG.email:
      return emailMatch(name.body.toString('latin1'), base.body.toString('latin1'));
    case TAG.uri:
      return uriMatch(name.body.toString('latin1'), base.body.toString('latin1'));
    case TAG.dirName:
      return dirNameMatch(name.body, base.body);
    default:
      return 'unsupported';
  }
}

const lower = (s: string) => s.replace(/[A-Z]/g, (ch) => ch.toLowerCase());

/** nc_email: ".host" matches below host; "local@host" exactly (local part case-sensitive); "host" the host. */
function emailMatch(email: string, base: string): Match {
  const at = email.lastIndexOf('@');
  if (at < 0) return 'unsupported';
  const baseAt = base.lastIndexOf('@');
  if (baseAt < 0 && base.startsWith('.')) {
    return email.length > base.length && lower(email.slice(-base.length)) === lower(base) ? 'match' : 'no';
  }
  if (baseAt > 0 && base.slice(0, baseAt) !== email.slice(0, at)) return 'no';
  return lower(base.slice(baseAt + 1)) === lower(email.slice(at + 1)) ? 'match' : 'no';
}

/** nc_uri: the host of scheme://host[:port][/…] against "host" or ".domain". */
function uriMatch(uri: string, base: string): Match {
  const colon = uri.indexOf(':');
  if (colon < 0 || uri.length - colon < 3 || uri[colon + 1] !== '/' || uri[colon + 2] !== '/') return 'unsupported';
  const rest = uri.slice(colon + 3);
  const end = rest.includes(':') ? rest.indexOf(':') : rest.includes('/') ? rest.indexOf('/') : rest.length;
  const host = rest.slice(0, end);
  if (host === '') return 'unsupported';
  if (base.startsWith('.'))
    return host.length > base.length && lower(host.slice(-base.length)) === lower(base) ? 'match' : 'no';
  return lower(host) === lower(base) ? 'match' : 'no';
}

/** nc_dn: the base's RDNs, compared in OpenSSL's canonical form, are a prefix of the name's. */
function dirNameMatch(name: Buffer, base: Buffer): Match {
  const mine = canonicalRdns(readAll(readSingle(name).body));
  const theirs = canonicalRdns(readAll(readSingle(base).body));
  if (theirs.length > mine.length) return 'no';
  return theirs.every((rdn, i) => rdn === mine[i]) ? 'match' : 'no';
}

/**
 * OpenSSL's canonical encoding, as strings: string values decoded, outer
 * white space dropped, inner runs of it made one space, ASCII lower-cased;
 * other values compared as they are.
 */
function canonicalRdns(rdns: Tlv[]): string[] {
  return rdns.map((rdn) =>
    readAll(rdn.body)
      .map((ava) => {
        const [type, value] = readAll(ava.body);
        if (!type || !value) return '';
        const text = stringValue(value);
        const canon =
          text === undefined
            ? `r${value.tag}:${value.body.toString('hex')}`
            : `s:${lower(text.replace(/^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g, '').replace(/[ \t\n\v\f\r]+/g, ' '))}`;
        return `${oidText(type.body)}=${canon}`;
      })
      .join('+'),
  );
}

/** Two Names (as RDN SETs) equal in OpenSSL's canonical form (X509_NAME_cmp). */
export function sameName(a: Tlv[], b: Tlv[]): boolean {
  const x = canonicalRdns(a);
  const y = canonicalRdns(b);
  return x.length === y.length && x.every((rdn, i) => rdn === y[i]);
}
