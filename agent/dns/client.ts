/**
 * The DNS client the dns-01 solver uses: a query (signed or not) whose answer
 * is handed back whatever its rcode, a TXT add or delete by dynamic update
 * (RFC 2136) signed with TSIG, and the look-ups that find which zone holds a
 * name and which servers are authoritative for it. Every failure of the
 * server is a DnsError saying which server and what it did.
 */
import { DnsError, serverText, type DnsServer } from './errors.js';
import { signMessage, verifyResponse, type TsigKey } from './tsig.js';
import { exchange, randomId } from './transport.js';
import {
  CLASS,
  decodeMessage,
  DnsWireError,
  encodeMessage,
  OPCODE,
  sameName,
  TYPE,
  type DecodedMessage,
  type Message,
  type RData,
  type ResourceRecord,
  type Soa,
} from './wire.js';

export { DnsError, type DnsServer } from './errors.js';
export type { TsigKey } from './tsig.js';

export type RecordType = 'A' | 'AAAA' | 'NS' | 'CNAME' | 'SOA' | 'TXT';

export interface DnsRecord {
  name: string;
  /** 'A', 'TXT'…, or 'TYPE123' for a type this client does not know. */
  type: string;
  ttl: number;
  /** A/AAAA/NS/CNAME: text; TXT: the character-strings as UTF-8; SOA: its fields; others: raw bytes. */
  data: string | string[] | Soa | Buffer;
}

export interface DnsAnswer {
  rcode: string;
  aa: boolean;
  answers: DnsRecord[];
  authority: DnsRecord[];
  additional: DnsRecord[];
}

export interface QueryOptions {
  tsig?: TsigKey;
  /** Ask the server to recurse (RD); default false, for an authoritative server. */
  recursion?: boolean;
  /** Per try (2 UDP tries); default 3000. */
  timeoutMs?: number;
}

const RCODES = [
  'NOERROR',
  'FORMERR',
  'SERVFAIL',
  'NXDOMAIN',
  'NOTIMP',
  'REFUSED',
  'YXDOMAIN',
  'YXRRSET',
  'NXRRSET',
  'NOTAUTH',
  'NOTZONE',
];

export function rcodeName(rcode: number): string {
  return RCODES[rcode] ?? `RCODE${rcode}`;
}

const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(TYPE).map(([k, v]) => [v, k]));

function toRecord(rr: ResourceRecord): DnsRecord {
  const type = TYPE_NAMES[rr.type] ?? `TYPE${rr.type}`;
  const data: DnsRecord['data'] =
    rr.type === TYPE.TXT ? (rr.data as Buffer[]).map((s) => s.toString('utf8')) : (rr.data as string | Soa | Buffer);
  return { name: rr.name, type, ttl: rr.ttl, data };
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * Sends `m` (its id set here), signed when `tsig`, and returns the decoded
 * answer: verified when signed. DnsError for no answer, a broken answer, or a
 * signature that fails (the rcode then carries the TSIG error's name).
 */
async function send(server: DnsServer, m: Message, what: string, opts: QueryOptions): Promise<DecodedMessage> {
  const plain = encodeMessage({ ...m, id: randomId() });
  const signed = opts.tsig ? signMessage(plain, opts.tsig, { timeSigned: nowSeconds() }) : undefined;
  const resp = await exchange(server, signed?.signed ?? plain, { timeoutMs: opts.timeoutMs, what });
  const where = `DNS server ${serverText(server)}`;
  let decoded: DecodedMessage;
  try {
    decoded = decodeMessage(resp);
  } catch (err) {
    if (!(err instanceof DnsWireError)) throw err;
    throw new DnsError(server, 'malformed', `${where} answered ${what} with a broken message: ${err.message}`, {
      cause: err,
    });
  }
  if (opts.tsig && signed) {
    const v = verifyResponse(resp, signed.mac, opts.tsig, nowSeconds());
    if (!v.ok) {
      const rcode = v.tsigError ?? (decoded.flags.rcode !== 0 ? rcodeName(decoded.flags.rcode) : undefined);
      const message = v.tsigError
        ? `${where} answered ${v.tsigError} to ${what} signed with TSIG key "${opts.tsig.name}": ${tsigAdvice(v.tsigError)}`
        : `${where} answered ${what} with a TSIG signature that does not verify: ${v.reason}`;
      throw new DnsError(server, 'tsig', message, { rcode });
    }
  }
  return decoded;
}

function tsigAdvice(error: string): string {
  if (error === 'BADKEY') return 'the server does not know a key of that name and algorithm';
  if (error === 'BADSIG') return "the secret differs from the server's";
  if (error === 'BADTIME') return "this machine's clock and the server's differ by more than the fudge (300 s)";
  return 'the server could not verify the request';
}

export async function query(
  server: DnsServer,
  name: string,
  type: RecordType,
  opts: QueryOptions = {},
): Promise<DnsAnswer> {
  const m = await send(
    server,
    {
      id: 0,
      flags: {
        qr: false,
        opcode: OPCODE.QUERY,
        aa: false,
        tc: false,
        rd: opts.recursion ?? false,
        ra: false,
        rcode: 0,
      },
      questions: [{ name, type: TYPE[type], class: CLASS.IN }],
      answers: [],
      authority: [],
      additional: [],
    },
    `the query of ${name} ${type}`,
    opts,
  );
  const plain = (rrs: ResourceRecord[]): DnsRecord[] => rrs.filter((rr) => rr.type !== TYPE.TSIG).map(toRecord);
  return {
    rcode: rcodeName(m.flags.rcode),
    aa: m.flags.aa,
    answers: plain(m.answers),
    authority: plain(m.authority),
    additional: plain(m.additional),
  };
}

export interface TxtChange {
  action: 'add' | 'delete';
  name: string;
  value: string;
  ttl: number;
}

function txtStrings(value: string): Buffer[] {
  const bytes = Buffer.from(value, 'utf8');
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 255) out.push(bytes.subarray(i, i + 255));
  return out.length > 0 ? out : [Buffer.alloc(0)];
}

/** Adds or deletes one TXT record by dynamic update (RFC 2136); DnsError unless the server answers NOERROR. */
export async function updateTxt(
  server: DnsServer,
  zone: string,
  change: TxtChange,
  tsig?: TsigKey,
  opts: { timeoutMs?: number } = {},
): Promise<void> {
  const add = change.action === 'add';
  const rr: ResourceRecord = {
    name: change.name,
    type: TYPE.TXT,
    class: add ? CLASS.IN : CLASS.NONE,
    ttl: add ? change.ttl : 0,
    data: txtStrings(change.value) satisfies RData,
  };
  const what = `the update of ${change.name.toLowerCase()} TXT`;
  const m = await send(
    server,
    {
      id: 0,
      flags: { qr: false, opcode: OPCODE.UPDATE, aa: false, tc: false, rd: false, ra: false, rcode: 0 },
      questions: [{ name: zone, type: TYPE.SOA, class: CLASS.IN }],
      answers: [],
      authority: [rr],
      additional: [],
    },
    what,
    { tsig, timeoutMs: opts.timeoutMs },
  );
  if (m.flags.rcode !== 0) {
    const rcode = rcodeName(m.flags.rcode);
    throw new DnsError(
      server,
      'rcode',
      `DNS server ${serverText(server)} answered ${rcode} to ${what} in zone ${zone}`,
      { rcode },
    );
  }
}

function parents(name: string): string[] {
  const labels = name.toLowerCase().replace(/\.$/, '').split('.');
  return labels.map((_, i) => labels.slice(i).join('.'));
}

function isUnder(name: string, zone: string): boolean {
  return sameName(name, zone) || name.toLowerCase().replace(/\.$/, '').endsWith(`.${zone}`);
}

/** The zone that holds `name`, as `server` sees it: the owner of the SOA it answers for name or a parent. */
export async function findZone(server: DnsServer, name: string, opts: QueryOptions = {}): Promise<string> {
  for (const candidate of parents(name)) {
    const a = await query(server, candidate, 'SOA', opts);
    const own = a.answers.find((rr) => rr.type === 'SOA' && sameName(rr.name, candidate));
    if (a.rcode === 'NOERROR' && own) return own.name;
    if (a.rcode === 'NOERROR' || a.rcode === 'NXDOMAIN') {
      const soa = a.authority.find((rr) => rr.type === 'SOA' && isUnder(name, rr.name) && rr.name !== '');
      if (soa) return soa.name;
    }
  }
  throw new DnsError(
    server,
    'rcode',
    `DNS server ${serverText(server)} serves no zone that holds ${name} (no SOA for it or a parent)`,
  );
}

export interface AuthoritativeServer {
  name: string;
  host: string;
  port: number;
}

async function addressesOf(server: DnsServer, ns: string, glue: DnsRecord[], opts: QueryOptions): Promise<string[]> {
  const fromGlue = glue.filter((rr) => (rr.type === 'A' || rr.type === 'AAAA') && sameName(rr.name, ns));
  if (fromGlue.length > 0) return fromGlue.map((rr) => rr.data as string);
  const out: string[] = [];
  for (const type of ['A', 'AAAA'] as const) {
    const a = await query(server, ns, type, opts);
    out.push(...a.answers.filter((rr) => rr.type === type && sameName(rr.name, ns)).map((rr) => rr.data as string));
  }
  return out;
}

/** The zone's NS names and their addresses, as `server` knows them; `server`'s own address keeps its port. */
export async function authoritativeServers(
  server: DnsServer,
  zone: string,
  opts: QueryOptions = {},
): Promise<AuthoritativeServer[]> {
  const a = await query(server, zone, 'NS', opts);
  const names = a.answers.filter((rr) => rr.type === 'NS' && sameName(rr.name, zone)).map((rr) => rr.data as string);
  const out: AuthoritativeServer[] = [];
  for (const ns of names) {
    for (const host of await addressesOf(server, ns, a.additional, opts)) {
      out.push({ name: ns, host, port: host === server.host ? server.port : 53 });
    }
  }
  if (out.length === 0) {
    throw new DnsError(
      server,
      'rcode',
      `DNS server ${serverText(server)} names no authoritative server with an address for zone ${zone} (answer ${a.rcode})`,
      { rcode: a.rcode },
    );
  }
  return out;
}
