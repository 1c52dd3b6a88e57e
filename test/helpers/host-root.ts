/**
 * A CA root for the Proxmox host scripts' tests: made by openssl, with the
 * fingerprint computed the way the scripts compute it (openssl dgst over
 * the DER), so a test compares like with like.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './agent.js';

/** A self-signed root as PEM, and its SHA-256 fingerprint as the host scripts compute it. */
export function hostScriptRoot(label: string): [string, string] {
  const dir = tempDir(`cert-agent-${label}-ca-`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${label} test root`,
    '-days', '2', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'root.pem'),
  ], { stdio: 'ignore' }); // prettier-ignore
  const pem = readFileSync(join(dir, 'root.pem'), 'utf8');
  const der = execFileSync('openssl', ['x509', '-outform', 'DER'], { input: pem });
  rmSync(dir, { recursive: true, force: true });
  return [pem, execFileSync('openssl', ['dgst', '-sha256', '-r'], { input: der }).toString().split(' ')[0]!];
}
