/**
 * Who owns and who reads the certificate directory, from the configuration,
 * and the store opened with it. Shared by the renew pass and by
 * `status`/`doctor`, which must stay free of the ACME and network code.
 */
import type { Config } from '../config/config.js';
import { ConfigError, describeError } from '../lib/errors.js';
import { AGENT_UID } from '../lib/safefs.js';
import { findUser, resolveId } from '../lib/users.js';
import type { Ownership } from './layout.js';
import { CertStore } from './sets.js';

/**
 * Who reads the certificate files besides the agent. Directories and files
 * always belong to the agent's own uid; consumers read through the group:
 * certificate.group when it is not root, else the primary group of
 * certificate.owner when that is not root; with both root, nobody else reads.
 * An install from before this model gave directories to certificate.owner:
 * that uid is accepted once more, to be taken back.
 */
export function ownershipOf(config: Config): Ownership {
  const { owner, group } = config.certificate;
  let user: { uid: number; gid?: number };
  try {
    user = resolveUser(owner);
  } catch (err) {
    throw new ConfigError('certificate.owner', describeError(err));
  }
  let gid: number;
  try {
    gid = resolveId(group, 'group');
  } catch (err) {
    throw new ConfigError('certificate.group', describeError(err));
  }
  if (gid === 0 && user.uid !== 0) {
    if (user.gid === undefined) {
      const why = 'has no entry in /etc/passwd to take a group from: set certificate.group';
      throw new ConfigError('certificate.owner', `user ${JSON.stringify(owner)} ${why}`);
    }
    gid = user.gid;
  }
  return { group: gid === 0 ? undefined : gid, ...(user.uid !== AGENT_UID ? { legacyUid: user.uid } : {}) };
}

/** For reading only (status, doctor): an unknown owner must not hide the certificate. */
export function ownershipForReading(config: Config): Ownership {
  try {
    return ownershipOf(config);
  } catch {
    return {};
  }
}

/** uid and primary gid of a user name or numeric uid (a uid without a passwd entry has no group). */
function resolveUser(name: string): { uid: number; gid?: number } {
  const user = findUser(name);
  if (user) return { uid: user.uid, gid: user.gid };
  return { uid: resolveId(name, 'user') };
}

export function storeFor(config: Config): CertStore {
  return new CertStore(config.certificate.dir, ownershipOf(config));
}
