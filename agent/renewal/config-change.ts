/**
 * How the daemon and timer mode tell that the config file changed (`enroll`
 * rewrote it, e.g. with a new fingerprint after the CA was recreated): the
 * SHA-256 of its bytes, against the one the daemon loaded (in memory) or the
 * one the last timer-mode pass recorded in state.json. The content, not the
 * modification time: a clock that jumps (the agent's or the file system's)
 * or a rewrite with the same bytes changes nothing, and a change within the
 * same timestamp tick is still seen.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** The SHA-256 of the file in hex; '' when it cannot be read. */
export function configSha256(path: string): string {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch {
    return '';
  }
}
