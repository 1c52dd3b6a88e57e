/**
 * The trust step of a pass: the saved roots for the configured pins, or the
 * first contact's bootstrap; a move of the CA to another pinned root; what
 * the CA offers after a trust failure (for the operator only); and the
 * refresh of the roots after a renewal.
 */
import type { Config } from '../config/config.js';
import { CaUnavailableError, TrustError } from '../lib/errors.js';
import { ensurePrivateDir } from '../lib/fs.js';
import type { Logger } from '../lib/log.js';
import { certFingerprint } from '../pki/x509.js';
import { installSystemTrust } from '../trust/system-store.js';
import { bootstrapTrust, fetchRoots, trustFromRootFile } from '../trust/pin.js';
import { droppedOnLoad, saveTrust, trustForPins, type TrustBundle } from '../trust/file.js';
import type { PassContext } from './context.js';

/** The saved trust for the configured pins, or a fresh bootstrap when there is none (or the pins changed). */
export async function ensureTrust(config: Config, now: Date, log: Logger): Promise<TrustBundle> {
  const saved = trustForPins(config.stateDir, config.ca.fingerprints);
  if (saved) {
    const dropped = droppedOnLoad(saved);
    if (dropped.length) {
      // Heal the file too: what loading dropped must not stay on disk as if trusted.
      saveTrust(config.stateDir, { ...saved, refused: (saved.refused ?? []).filter((r) => !dropped.includes(r)) });
      for (const r of dropped) {
        log.warn(
          { event: 'trust_root_dropped', fingerprint: r.fingerprint, subject: r.subject },
          'trust.json held a root that matches no pin and no cross-signature by a trusted root; no longer trusted',
        );
      }
    }
    await installSystemTrust(config, saved, log);
    return saved;
  }
  const bundle = config.ca.rootFile
    ? trustFromRootFile(config.ca.rootFile, config.ca.fingerprints, now)
    : await bootstrapTrust(config.ca.url, config.ca.fingerprints, now);
  ensurePrivateDir(config.stateDir);
  saveTrust(config.stateDir, bundle);
  log.info(
    { event: 'trust_bootstrapped', caUrl: config.ca.url, fingerprints: bundle.roots.map((r) => r.fingerprint) },
    'pinned CA root saved',
  );
  await installSystemTrust(config, bundle, log);
  return bundle;
}

/**
 * Runs `step` with the trusted roots; when it fails on trust and the CA has
 * moved to another pinned root (see rotateToPinnedRoot), runs it once more.
 */
export async function withTrust<T>(ctx: PassContext, step: (trust: TrustBundle) => Promise<T>): Promise<T> {
  const { config, shared } = ctx;
  // A CA found unreachable for another certificate of this pass is not asked again for the first pin.
  if (shared.unreachable && !trustForPins(config.stateDir, config.ca.fingerprints)) throw shared.unreachable;
  // Loaded once per pass: the certificates after the first take the same roots.
  const trust = async () =>
    (shared.trust ??= await ensureTrust(ctx.config, ctx.now(), ctx.log).catch((err: unknown) => {
      if (err instanceof CaUnavailableError) shared.unreachable = err;
      throw err;
    }));
  const attempt = async () => step(await trust());
  return attempt().catch(async (err) => {
    if (!(err instanceof TrustError) || !(await rotateToPinnedRoot(ctx.config, ctx.now(), ctx.log))) throw err;
    delete shared.trust;
    return attempt();
  });
}

/**
 * The CA no longer chains to the roots we trust. If it now serves a root that
 * is among the configured pins (a planned rotation: both fingerprints were
 * pinned), bootstrap again, with the same proof as at first contact, and
 * keep the old roots too. Anything else stays a trust failure for the operator.
 */
async function rotateToPinnedRoot(config: Config, now: Date, log: Logger): Promise<boolean> {
  if (config.ca.rootFile || config.ca.fingerprints.length < 2) return false;
  try {
    const fresh = await bootstrapTrust(config.ca.url, config.ca.fingerprints, now);
    const old = trustForPins(config.stateDir, config.ca.fingerprints);
    const known = new Set(fresh.roots.map((r) => r.fingerprint));
    fresh.roots.push(...(old?.roots ?? []).filter((r) => !known.has(r.fingerprint)));
    saveTrust(config.stateDir, fresh);
    log.warn(
      { event: 'trust_rotated', fingerprints: fresh.roots.map((r) => r.fingerprint) },
      'the CA moved to another pinned root; trusting it',
    );
    return true;
  } catch {
    return false;
  }
}

/** What the CA offers now, for the operator's information only: never trusted. */
export async function offeredFingerprints(config: Config): Promise<string[]> {
  try {
    return (await fetchRoots(config.ca.url, { insecureFirstContact: true })).map(certFingerprint);
  } catch {
    return [];
  }
}
