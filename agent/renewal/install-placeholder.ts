/**
 * First start with the CA unreachable: install the placeholder set and tell
 * the consumer, so the proxy can start now instead of waiting for the CA
 * container: no start order between containers. A reload failure here is only
 * logged: the proxy may not be running yet, which is the point.
 */
import { X509Certificate } from 'node:crypto';
import type { Config } from '../config/config.js';
import { describeError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { makePlaceholder } from '../pki/placeholder.js';
import { reloadTargets } from '../reload/index.js';
import type { CertStore, LiveSet } from '../store/sets.js';
import { loadTrust } from '../trust/file.js';

export async function installPlaceholder(config: Config, store: CertStore, now: Date, log: Logger): Promise<LiveSet> {
  const { keyPem, certPem } = await makePlaceholder(config.certificate.domains, now);
  const roots = loadTrust(config.stateDir)?.roots.map((r) => r.pem) ?? [];
  const live = store.install(
    { keyPem, fullchainPem: certPem, rootsPem: roots, placeholder: true },
    { domains: config.certificate.domains, roots: roots.map((p) => new X509Certificate(p)), now },
  );
  try {
    const [result] = await reloadTargets[config.reload.target].reload({ config, sets: [{ config, live }], log });
    if (result instanceof Error) throw result;
  } catch (err) {
    log.warn(
      {
        event: 'reload_failed',
        certificate: config.certificate.name,
        target: config.reload.target,
        serial: live.cert.serialNumber.toLowerCase(),
        error: describeError(err),
      },
      'placeholder installed; the consumer could not be reloaded yet',
    );
  }
  return live;
}
