/**
 * Who a consumer's web server runs as, for the self-check's explanation of
 * a refused webroot token: a user named in its configuration (nginx) or the
 * owner of a running process. Each reload target says which applies to it.
 */
import { readFileSync, readdirSync } from 'node:fs';
import type { WebUser } from '../challenge/types.js';

/** The web servers that may serve a webroot when the reload target does not say which. */
export const WEB_SERVERS = /^(nginx|apache2|httpd|lighttpd|caddy)$/;

/** A user by name or numeric id, with its groups; undefined when the system does not know it. */
export function userNamed(nameOrId: string, source: string): WebUser | undefined {
  const passwd = readLines('/etc/passwd').map((l) => l.split(':'));
  const entry = passwd.find((f) => f[0] === nameOrId) ?? passwd.find((f) => f[2] === nameOrId);
  if (!entry || entry[2] === undefined || entry[3] === undefined) return undefined;
  const name = entry[0] as string;
  const gids = [Number(entry[3])];
  for (const g of readLines('/etc/group').map((l) => l.split(':'))) {
    if ((g[3] ?? '').split(',').includes(name) && g[2] !== undefined) gids.push(Number(g[2]));
  }
  return { name, uid: Number(entry[2]), gids, source };
}

/** The owner of the first running process whose name matches, other than root (a master's workers are not root). */
export function runningServerUser(names: RegExp = WEB_SERVERS): WebUser | undefined {
  for (const pid of safeList('/proc').filter((p) => /^\d+$/.test(p))) {
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

function readLines(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n');
  } catch {
    return [];
  }
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
