// dns-packet ships no types; this is the part the tests use as an oracle of DNS messages.
declare module 'dns-packet' {
  export const AUTHORITATIVE_ANSWER: number;
  export const RECURSION_DESIRED: number;
  interface Question {
    name: string;
    type: string;
    class?: string;
  }
  interface Answer {
    name: string;
    type: string;
    class?: string;
    ttl?: number;
    data?: unknown;
  }
  interface Packet {
    id?: number;
    type?: 'query' | 'response';
    flags?: number;
    opcode?: string;
    rcode?: string;
    flag_qr?: boolean;
    flag_aa?: boolean;
    flag_tc?: boolean;
    flag_rd?: boolean;
    flag_ra?: boolean;
    flag_ad?: boolean;
    flag_cd?: boolean;
    questions?: Question[];
    answers?: Answer[];
    authorities?: Answer[];
    additionals?: Answer[];
  }
  export function encode(packet: Packet): Buffer;
  export function decode(buf: Buffer): Packet;
}
