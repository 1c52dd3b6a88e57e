/**
 * A tiny authoritative DNS server in the test process, over UDP on loopback:
 * it answers SOA, NS and A for one zone the way an authoritative server does
 * (so that findZone and authoritativeServers find it) and hands each TXT
 * query to the test, which says what this server answers: the value,
 * another value, NXDOMAIN, REFUSED, an answer without authority, or nothing.
 * Messages are built with the agent's own wire.ts.
 */
import { createSocket, type Socket } from 'node:dgram';
import {
  CLASS,
  decodeMessage,
  encodeMessage,
  sameName,
  TYPE,
  type Message,
  type ResourceRecord,
} from '../../agent/dns/wire.js';

/** What one server answers to one TXT query; `silent` sends nothing. */
export interface TxtReply {
  rcode?: number;
  aa?: boolean;
  /** Each value one TXT record, split into these character-strings. */
  texts?: string[][];
  /** The owner name of the TXT records (default: the question's). */
  owner?: string;
  silent?: boolean;
}

export const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;

export interface FakeZone {
  zone: string;
  /** NS name → its address (glue). */
  /** NS name → its address, or several (all given as glue). */
  ns: Record<string, string | string[]>;
}

export interface FakeDns {
  host: string;
  port: number;
  /** Every TXT name asked, in order. */
  txtQueries: string[];
  /** What the next TXT queries get; `n` is the query's index in txtQueries (empty it to count from 0 again). */
  onTxt: (name: string, n: number) => TxtReply;
  /**
   * A recursive resolver (unbound's `access-control: allow`): a query without
   * RD is REFUSED, one with RD answered without authority. TXT queries are the
   * test's still.
   */
  recursive: boolean;
  /** Called after each TXT query was handled (answered or not). */
  afterTxt?: () => void;
  close(): Promise<void>;
}

const soa = (zone: string): ResourceRecord => ({
  name: zone,
  type: TYPE.SOA,
  class: CLASS.IN,
  ttl: 60,
  data: {
    mname: `ns1.${zone}`,
    rname: `hostmaster.${zone}`,
    serial: 1,
    refresh: 60,
    retry: 60,
    expire: 600,
    minimum: 5,
  },
});

function under(name: string, zone: string): boolean {
  return sameName(name, zone) || name.toLowerCase().endsWith(`.${zone}`);
}

/** The answer to a non-TXT question: the zone's SOA, NS (with glue) and the NS addresses. */
function zoneAnswer(q: Message, z: FakeZone): Partial<Message> {
  const question = q.questions[0];
  if (!question || !under(question.name, z.zone)) return { flags: { ...q.flags, qr: true, rcode: RCODE.REFUSED } };
  const apex = sameName(question.name, z.zone);
  const glue = Object.entries(z.ns).flatMap(([name, addresses]) =>
    [addresses]
      .flat()
      .map((address): ResourceRecord => ({ name, type: TYPE.A, class: CLASS.IN, ttl: 60, data: address })),
  );
  if (apex && question.type === TYPE.SOA) return { answers: [soa(z.zone)] };
  if (apex && question.type === TYPE.NS) {
    const ns = Object.keys(z.ns).map((name): ResourceRecord => ({
      name: z.zone,
      type: TYPE.NS,
      class: CLASS.IN,
      ttl: 60,
      data: name,
    }));
    return { answers: ns, additional: glue };
  }
  if (question.type === TYPE.A) {
    const own = glue.filter((rr) => sameName(rr.name, question.name));
    if (own.length) return { answers: own };
  }
  return { authority: [soa(z.zone)] };
}

function txtAnswer(q: Message, reply: TxtReply): Partial<Message> {
  const name = reply.owner ?? q.questions[0]?.name ?? '';
  const answers = (reply.texts ?? []).map((strings): ResourceRecord => ({
    name,
    type: TYPE.TXT,
    class: CLASS.IN,
    ttl: 60,
    data: strings.map((s) => Buffer.from(s)),
  }));
  return { answers, flags: { ...q.flags, qr: true, aa: reply.aa ?? true, rcode: reply.rcode ?? RCODE.NOERROR } };
}

/** Starts one server on `host` (port 0: any free one); `zone` is what it serves. */
export async function startFakeDns(zone: FakeZone, host = '127.0.0.1', port = 0): Promise<FakeDns> {
  const sock: Socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(port, host, () => {
      sock.off('error', reject);
      resolve();
    });
  });
  const fake: FakeDns = {
    host,
    port: sock.address().port,
    txtQueries: [],
    recursive: false,
    onTxt: () => ({ rcode: RCODE.NXDOMAIN }),
    close: () => new Promise((resolve) => sock.close(() => resolve())),
  };
  sock.on('message', (buf, from) => {
    const q = decodeMessage(buf);
    const question = q.questions[0];
    let patch: Partial<Message>;
    if (question?.type === TYPE.TXT) {
      fake.txtQueries.push(question.name);
      const reply = fake.onTxt(question.name, fake.txtQueries.length - 1);
      fake.afterTxt?.();
      if (reply.silent) return;
      patch = txtAnswer(q, reply);
    } else if (fake.recursive && !q.flags.rd) {
      patch = { flags: { ...q.flags, qr: true, rcode: RCODE.REFUSED } };
    } else {
      patch = zoneAnswer(q, zone);
    }
    const answer: Message = {
      ...q,
      flags: { ...q.flags, qr: true, aa: !fake.recursive, ra: fake.recursive, rcode: RCODE.NOERROR },
      answers: [],
      authority: [],
      additional: [],
      ...patch,
    };
    sock.send(encodeMessage(answer), from.port, from.address);
  });
  return fake;
}
