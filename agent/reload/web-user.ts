/**
 * Who a consumer's web server runs as, for the self-check's explanation of
 * a refused webroot token: a user named in its configuration (nginx) or the
 * owner of a running process. Each reload target says which applies to it.
 */
import { readFileSync } from 'node:fs';
import type { WebUser } from '../challenge/types.js';
import { findUser, groupIdsOf } from '../lib/users.js';
import { listOrNone } from '../lib/fs.js';

/** The web servers that may serve a webroot when the reload target does not say which. */
export const WEB_SERVERS = /^(nginx|apache2|httpd|lighttpd|caddy)$/;

/** A user by name or numeric id, with its groups; undefined when the system does not know it. */
export function userNamed(nameOrId: string, source: string): WebUser | undefined {
  const user = findUser(nameOrId);
  return user ? { name: user.name, uid: user.uid, gids: groupIdsOf(user), source } : undefined;
}

/** The owner of the first running process whose name matches, other than root (a master's workers are not root). */
export function runningServerUser(names: RegExp = WEB_SERVERS): WebUser | undefined {
  for (const pid of listOrNone('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      if (!names.test(comm)) continue;
      const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
      if (uid === 0 || !Number.isInteger(uid)) continue;
      const user = userNamed(String(uid), `the user running ${comm}`);
      if (user) return user;
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}
