/**
 * A certificate directory with one installed set, for the store's unit
 * tests: the real CertStore writes it, so the modes are the table's.
 */
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { CertStore, type LiveSet } from '../../../agent/store/sets.js';
import type { Ownership } from '../../../agent/store/layout.js';
import { makeCa, type TestCa } from '../../helpers/certs.js';
import { tempDir } from '../../helpers/agent.js';

const DOMAINS = ['app.internal'];
let ca: TestCa | undefined;

export async function installedSet(owner: Ownership = {}): Promise<{ base: string; dir: string; live: LiveSet }> {
  ca ??= await makeCa('Store');
  const base = tempDir('store-');
  const dir = join(base, 'tls');
  const leaf = await ca.leaf({ domains: DOMAINS });
  const store = new CertStore(dir, owner);
  const live = store.install(
    { keyPem: leaf.keyPem, fullchainPem: leaf.fullchainPem, rootsPem: [ca.root.pem] },
    { domains: DOMAINS, roots: [new X509Certificate(ca.root.pem)], now: new Date() },
  );
  return { base, dir, live };
}
