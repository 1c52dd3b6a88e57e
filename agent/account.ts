/**
 * The ACME account: a P-256 key created once in the state directory (0600
 * from the moment it exists) and the account URL the CA gave us. Losing the
 * URL is harmless (registering again with the same key finds the account);
 * losing the key only costs a new registration.
 */
import { join } from 'node:path';
import { generateKeyPem } from './keys.js';
import { readIfExists, writeFileAtomic, writeNewFile } from './fsutil.js';

const KEY_FILE = 'account.key';
const ACCOUNT_FILE = 'account.json';

export interface Account {
  keyPem: string;
  url?: string;
}

export async function loadOrCreateAccount(stateDir: string): Promise<Account> {
  let keyPem = readIfExists(join(stateDir, KEY_FILE));
  if (!keyPem) {
    keyPem = await generateKeyPem('ec-p256');
    writeNewFile(join(stateDir, KEY_FILE), keyPem, 0o600);
  }
  let url: string | undefined;
  try {
    url = (JSON.parse(readIfExists(join(stateDir, ACCOUNT_FILE)) ?? '{}') as { url?: string }).url;
  } catch {
    url = undefined;
  }
  return { keyPem, ...(url ? { url } : {}) };
}

export function saveAccountUrl(stateDir: string, url: string, directoryUrl: string): void {
  writeFileAtomic(join(stateDir, ACCOUNT_FILE), `${JSON.stringify({ url, directory: directoryUrl }, null, 2)}\n`, 0o600);
}

/** The saved URL belongs to this directory; an account on another CA is useless here. */
export function accountUrlFor(stateDir: string, directoryUrl: string): string | undefined {
  try {
    const saved = JSON.parse(readIfExists(join(stateDir, ACCOUNT_FILE)) ?? '{}') as { url?: string; directory?: string };
    return saved.directory === directoryUrl ? saved.url : undefined;
  } catch {
    return undefined;
  }
}
