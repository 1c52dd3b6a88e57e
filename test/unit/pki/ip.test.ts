/** pki/ip.ts answers exactly as net.isIP, on the cases that tell IPv4, IPv6 and names apart. */
import { isIP as nodeIsIP } from 'node:net';
import { describe, expect, it } from 'vitest';
import { isIP } from '../../../agent/pki/ip.js';

const CASES = [
  '127.0.0.1',
  '0.0.0.0',
  '255.255.255.255',
  '256.1.1.1',
  '01.2.3.4',
  '1.2.3',
  '1.2.3.4.',
  '1.2.3.4 ',
  ' 1.2.3.4',
  'localhost',
  'app.internal',
  '::1',
  '::',
  'fe80::1%eth0',
  '2001:db8::1',
  '::ffff:1.2.3.4',
  '1:2:3:4:5:6:7:8:9',
  'a:b',
  '',
  '1.2.3.04',
  '١.٢.٣.٤',
];

describe('isIP', () => {
  it.each(CASES)('%j as net.isIP', (s) => {
    expect(isIP(s)).toBe(nodeIsIP(s));
  });
});
