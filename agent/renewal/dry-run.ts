/**
 * `renew --dry-run`: the whole path of a renewal (trust, account, challenge,
 * order, the checks an install makes) under the lock, whether or not the
 * certificate is due, and nothing kept: the issued set is checked and
 * dropped, the live set, state.json, trust.json, the account files and the
 * consumer stay as they were, and no reload is done. What is only read
 * stays read: a missing trust.json is bootstrapped in memory, a missing
 * account key is generated in memory. The challenge itself still answers as
 * configured (a listener, a token in the webroot, Traefik's challenge route).
 * What a real renew would do is the pass's own decision (decide.ts).
 */
import { accountForDryRun } from '../store/account.js';
import { AgentError, describeError } from '../lib/errors.js';
import { generateKeyPem } from '../pki/keys.js';
import { validityOf } from '../pki/x509.js';
import { checkStoreDirectories } from '../store/directories.js';
import { acquireLock } from '../store/lock.js';
import { storeFor } from '../store/ownership.js';
import { checkSet, type LiveSet } from '../store/sets.js';
import { readState } from '../store/state.js';
import { bootstrapTrust, trustFromRootFile } from '../trust/pin.js';
import { rootsPem, trustForPins } from '../trust/file.js';
import { observe, rootCertificates } from './act.js';
import type { PassOptions } from './context.js';
import { decide, renewReason } from './decide.js';
import { orderCertificate } from './order.js';

export interface DryRunResult {
  /** What a real `renew` would do now: the reason to renew, or undefined when it is not due. */
  wouldRenew: string | undefined;
  /** The live set, untouched; undefined when none is installed. */
  live: LiveSet | undefined;
  nextRenewal: Date | undefined;
  /** The certificate the CA issued for the test, checked like an install but never installed. */
  issued: { serial: string; notAfter: Date; names: string[] };
}

export async function dryRunPass(opts: PassOptions): Promise<DryRunResult> {
  const { config, log } = opts;
  const now = opts.now ?? (() => new Date());
  checkStoreDirectories(config, log, 'dry_run_failed');
  const release = acquireLock(config.stateDir);
  try {
    const saved = trustForPins(config.stateDir, config.ca.fingerprints);
    const trust =
      saved ??
      (config.ca.rootFile
        ? trustFromRootFile(config.ca.rootFile, config.ca.fingerprints, now())
        : await bootstrapTrust(config.ca.url, config.ca.fingerprints, now()));
    const roots = rootCertificates(trust);
    const { domains } = config.certificate;
    // A certificate directory a real renew would refuse (a foreign link, another owner) fails the dry run too.
    const view = observe(storeFor(config), { domains, roots, now: now() });
    const decision = decide({
      ...view,
      state: readState(config.stateDir, config.certificate.name),
      config,
      now: now(),
    });
    const wouldRenew = renewReason(decision);
    log.info(
      { event: 'dry_run_started', domains, wouldRenew: wouldRenew ?? null },
      'dry run: test order, nothing is installed',
    );
    const account = await accountForDryRun(config.stateDir, config.ca.directory);
    const keyPem = await generateKeyPem(config.certificate.keyType);
    const order = { trust, live: view.live, account, keyPem, eventFields: { dryRun: true } };
    const issued = await orderCertificate({ config, log, opts }, order);
    const set = { keyPem, fullchainPem: issued.fullchainPem, rootsPem: rootsPem(trust) };
    const { leaf } = checkSet(set, { domains, roots, now: now() });
    const result = {
      wouldRenew,
      live: view.live,
      nextRenewal: decision.next,
      issued: { serial: leaf.serialNumber.toLowerCase(), notAfter: validityOf(leaf).notAfter, names: domains },
    };
    log.info(
      { event: 'dry_run_done', serial: result.issued.serial, notAfter: result.issued.notAfter.toISOString() },
      'dry run: the CA issued a certificate that passes the checks; not installed',
    );
    return result;
  } catch (err) {
    const errorKind = err instanceof AgentError ? err.kind : 'internal';
    const fields = {
      event: 'dry_run_failed',
      domains: config.certificate.domains,
      error: describeError(err),
      errorKind,
    };
    log.warn(fields, 'dry run failed; nothing was changed');
    throw err;
  } finally {
    release();
  }
}
