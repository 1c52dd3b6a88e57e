/**
 * The template hook checks its input before it installs anything, with the
 * same idea of a fingerprint as the agent: as step, openssl -fingerprint
 * -sha256 and sha256sum print it. Each run stops at a later input check
 * (CERT_AGENT_WAIT) so that nothing is ever installed here.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const HOOK = join(import.meta.dirname, '../../../packaging/postinstall.sh');
const HEX = '4a5679c0ffee00112233445566778899aabbccddeeff00112233445566778899';
const COLONS = HEX.toUpperCase().match(/../g)!.join(':');

function hook(fingerprint: string): Promise<{ code: number; stderr: string }> {
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    CERT_AGENT_CA_URL: 'https://ca.internal:9000',
    CERT_AGENT_FINGERPRINT: fingerprint,
    CERT_AGENT_DOMAINS: 'app.internal',
    CERT_AGENT_WAIT: 'soon', // refused after the fingerprint: the hook stops before installing
  };
  return new Promise((resolve) => {
    execFile('/bin/sh', [HOOK], { env }, (err, _stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code) : 0, stderr });
    });
  });
}

describe.runIf(process.getuid?.() === 0)('the hook takes a fingerprint as the tools print it', () => {
  it.each([
    ['step certificate fingerprint', HEX],
    ['openssl 3 -fingerprint -sha256', `sha256 Fingerprint=${COLONS}`],
    ['openssl 1.1 -fingerprint -sha256', `SHA256 Fingerprint=${COLONS}`],
    ['sha256sum of stdin', `${HEX}  -`],
    ['two pins, comma-separated', `${HEX},sha256 Fingerprint=${COLONS}`],
  ])('accepts %s', async (_what, fingerprint) => {
    const r = await hook(fingerprint);
    expect(r.code).toBe(64);
    expect(r.stderr).toBe('postinstall: CERT_AGENT_WAIT=soon: must be a number of seconds\n');
  });

  it.each([
    ['too short', HEX.slice(2)],
    ['sha256sum of a file (the PEM, not the DER)', `${HEX}  root_ca.crt`],
  ])('refuses %s (64), naming it', async (_what, fingerprint) => {
    const r = await hook(fingerprint);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('CERT_AGENT_FINGERPRINT: "');
    expect(r.stderr).toContain('is not a SHA-256 fingerprint');
  });
});
