import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { accountForDryRun, loadOrCreateAccount, saveAccountUrl } from '../../../agent/store/account.js';

const DIR_A = 'https://ca.internal/acme/acme/directory';
const DIR_B = 'https://ca.internal:9443/acme/acme/directory';
let stateDir: string;
beforeEach(() => {
  stateDir = mkdtempSync(join(tmpdir(), 'account-'));
});
afterEach(() => rmSync(stateDir, { recursive: true, force: true }));

const keyFile = () => join(stateDir, 'account.key');
const accountJson = () => JSON.parse(readFileSync(join(stateDir, 'account.json'), 'utf8')) as unknown;

describe('account persistence', () => {
  it('creates the key once, 0600, and keeps it', async () => {
    const first = await loadOrCreateAccount(stateDir, DIR_A);
    expect(first.keyPem).toMatch(/BEGIN PRIVATE KEY/);
    expect(first.url).toBeUndefined();
    expect(statSync(keyFile()).mode & 0o777).toBe(0o600);
    const again = await loadOrCreateAccount(stateDir, DIR_A);
    expect(again.keyPem).toBe(first.keyPem);
  });

  it('saves the URL with its directory and returns it only for that directory', async () => {
    const { keyPem } = await loadOrCreateAccount(stateDir, DIR_A);
    saveAccountUrl(stateDir, 'https://ca.internal/acme/acme/account/1', DIR_A);
    expect(accountJson()).toEqual({ url: 'https://ca.internal/acme/acme/account/1', directory: DIR_A });
    expect(statSync(join(stateDir, 'account.json')).mode & 0o777).toBe(0o600);
    expect(await loadOrCreateAccount(stateDir, DIR_A)).toEqual({
      keyPem,
      url: 'https://ca.internal/acme/acme/account/1',
    });
  });

  it('an unchanged URL writes nothing', async () => {
    await loadOrCreateAccount(stateDir, DIR_A);
    saveAccountUrl(stateDir, 'u1', DIR_A);
    const before = statSync(join(stateDir, 'account.json'));
    saveAccountUrl(stateDir, 'u1', DIR_A);
    expect(statSync(join(stateDir, 'account.json')).ino).toBe(before.ino);
  });

  it('another directory URL gets a new key and forgets the old URL', async () => {
    const { keyPem } = await loadOrCreateAccount(stateDir, DIR_A);
    saveAccountUrl(stateDir, 'u1', DIR_A);
    const moved = await loadOrCreateAccount(stateDir, DIR_B);
    expect(moved.keyPem).not.toBe(keyPem);
    expect(moved.url).toBeUndefined();
    expect(readFileSync(keyFile(), 'utf8')).toBe(moved.keyPem);
    expect(accountJson()).toEqual({ directory: DIR_B });
  });

  it('a damaged account.json reads as no URL', async () => {
    await loadOrCreateAccount(stateDir, DIR_A);
    writeFileSync(join(stateDir, 'account.json'), '{not json');
    expect((await loadOrCreateAccount(stateDir, DIR_A)).url).toBeUndefined();
  });

  it('a dry run writes nothing: the saved account when it fits, else a key in memory', async () => {
    const fresh = await accountForDryRun(stateDir, DIR_A);
    expect(fresh.keyPem).toMatch(/BEGIN PRIVATE KEY/);
    expect(() => statSync(keyFile())).toThrow();
    const { keyPem } = await loadOrCreateAccount(stateDir, DIR_A);
    saveAccountUrl(stateDir, 'u1', DIR_A);
    expect(await accountForDryRun(stateDir, DIR_A)).toEqual({ keyPem, url: 'u1' });
    const other = await accountForDryRun(stateDir, DIR_B);
    expect(other.keyPem).not.toBe(keyPem);
    expect(accountJson()).toEqual({ url: 'u1', directory: DIR_A });
  });
});
