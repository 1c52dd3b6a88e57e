/**
 * The ACME account on disk: a P-256 key created once in the state directory
 * (0600 from the moment it exists) and the account URL the CA gave us. The
 * protocol (acme/) only gets the key and URL and hands back the URL. Losing
 * the URL is harmless (registering again with the same key finds the
 * account); losing the key only costs a new registration.
 */
import { join } from 'node:path';
import { generateKeyPem } from '../pki/keys.js';
import { readIfExists, writeFileAtomic, writeNewFile } from '../lib/fs.js';
import { PATHS } from './layout.js';

const KEY_FILE = PATHS.accountKey.name;
const ACCOUNT_FILE = PATHS.account.name;
const KEY_MODE = PATHS.accountKey.mode({});
const ACCOUNT_MODE = PATHS.account.mode({});

export interface Account {
  keyPem: string;
  /** The account URL, only when it was registered through this same directory URL. */
  url?: string;
}

/**
 * With `directoryUrl`, an account made through another directory URL gets a
 * new key: step-ca remembers the URL an account was registered under and
 * refuses orders signed for the same key under another one ("kid does not
 * match stored account location"), so after ca.url changes (a new name or
 * port for the same CA) the old key could never order again.
 */
export async function loadOrCreateAccount(stateDir: string, directoryUrl: string): Promise<Account> {
  let keyPem = readIfExists(join(stateDir, KEY_FILE));
  const saved = savedAccount(stateDir);
  if (keyPem && saved.directory && saved.directory !== directoryUrl) {
    keyPem = await generateKeyPem('ec-p256');
    writeFileAtomic(join(stateDir, KEY_FILE), keyPem, KEY_MODE);
    writeFileAtomic(
      join(stateDir, ACCOUNT_FILE),
      `${JSON.stringify({ directory: directoryUrl }, null, 2)}\n`,
      ACCOUNT_MODE,
    );
  }
  if (!keyPem) {
    keyPem = await generateKeyPem('ec-p256');
    writeNewFile(join(stateDir, KEY_FILE), keyPem, KEY_MODE);
  }
  // An account registered through another directory URL is useless here.
  const url = saved.directory === directoryUrl ? saved.url : undefined;
  return { keyPem, ...(url ? { url } : {}) };
}

/**
 * The account as it is, for a dry run that must change nothing: the saved
 * key and URL when they fit this directory, otherwise a key that only lives
 * in memory (the CA registers it; nothing is written here).
 */
export async function accountForDryRun(stateDir: string, directoryUrl: string): Promise<Account> {
  const keyPem = readIfExists(join(stateDir, KEY_FILE));
  const saved = savedAccount(stateDir);
  if (keyPem && (!saved.directory || saved.directory === directoryUrl)) {
    return { keyPem, ...(saved.url && saved.directory === directoryUrl ? { url: saved.url } : {}) };
  }
  return { keyPem: await generateKeyPem('ec-p256') };
}

/** Writes account.json unless it already says exactly this (a renewal with a known account writes nothing). */
export function saveAccountUrl(stateDir: string, url: string, directoryUrl: string): void {
  const saved = savedAccount(stateDir);
  if (saved.url === url && saved.directory === directoryUrl) return;
  writeFileAtomic(
    join(stateDir, ACCOUNT_FILE),
    `${JSON.stringify({ url, directory: directoryUrl }, null, 2)}\n`,
    ACCOUNT_MODE,
  );
}

function savedAccount(stateDir: string): { url?: string; directory?: string } {
  try {
    return JSON.parse(readIfExists(join(stateDir, ACCOUNT_FILE)) ?? '{}') as { url?: string; directory?: string };
  } catch {
    return {};
  }
}
