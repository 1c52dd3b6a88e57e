/**
 * The store's upkeep in a pass, all under the pass's lock and none of it
 * failing the pass: the certificate directory taken back from what an older
 * install gave away, leftovers of a killed install pruned, permissions
 * audited, the names consumers read put back, daemon.pid recorded; and after
 * a failure, the placeholder when nothing usable is live.
 */
import { join } from 'node:path';
import { RenewalRefusedError, describeError } from '../lib/errors.js';
import { readIfExists, writeFileAtomic } from '../lib/fs.js';
import { validityOf } from '../pki/x509.js';
import { DAEMON_PID_FILE, PATHS } from '../store/layout.js';
import { auditPermissions } from '../store/permissions.js';
import { publishedProblems } from '../store/published.js';
import type { CertStore, LiveSet } from '../store/sets.js';
import type { PassContext } from './context.js';
import { installPlaceholder } from './install-placeholder.js';

/** Everything before the decision; returns the published names it put back and the live set as it read it. */
export function upkeepStore(ctx: PassContext): {
  repaired: string[];
  live: LiveSet | undefined;
  /** The published names' problems as found, when nothing was put back (what the decision reads). */
  problems?: ReturnType<typeof publishedProblems>;
} {
  const { config, store, log } = ctx;
  // Takes back what an older install gave the consumer and refuses what is not ours, before anything is read.
  for (const change of store.secure()) {
    log.warn(
      { event: 'store_secured', certificate: config.certificate.name, change },
      `certificate directory: ${change}`,
    );
  }
  pruneLeftovers(store, ctx);
  const live = store.live();
  auditPermissions(config, live, log);
  if (!live) return { repaired: [], live };
  const problems = publishedProblems(store.dir);
  const repaired = repairPublishedNames(ctx, problems);
  return repaired.length ? { repaired, live } : { repaired, live, problems };
}

/** The live set, or undefined when there is none or it cannot be read (after a failure). */
export function liveIfReadable(store: CertStore): LiveSet | undefined {
  try {
    return store.live();
  } catch {
    return undefined;
  }
}

/** daemon.pid names the running daemon for `enroll`, which signals it after rewriting the config. */
export function recordDaemon(stateDir: string, pid: number): void {
  const path = join(stateDir, DAEMON_PID_FILE);
  if (readIfExists(path)?.trim() !== String(pid)) writeFileAtomic(path, `${pid}\n`, PATHS.daemonPid.mode({}));
}

/** Sets left by an install that was killed before its own prune; never fails the pass. */
function pruneLeftovers(store: CertStore, { log, config }: PassContext): void {
  try {
    store.prune();
  } catch (err) {
    const fields = { event: 'prune_failed', certificate: config.certificate.name, error: describeError(err) };
    log.warn(fields, 'could not clean up leftovers');
  }
}

/**
 * The names consumers read must be links into the live set: one that is
 * missing, a regular file copied over it, or pointing elsewhere is put back
 * (a copied file kept beside), logged like permission drift. Never fails the
 * pass. A name whose file the live set lacks is left to a renewal (decide.ts).
 */
function repairPublishedNames(
  { store, now, log, config }: PassContext,
  problems: ReturnType<typeof publishedProblems>,
): string[] {
  const certificate = config.certificate.name;
  const broken = problems.filter((p) => p.state !== 'dangling');
  if (!broken.length) return [];
  try {
    const done = store.relink(
      broken.map((p) => p.name),
      now(),
    );
    for (const p of broken) {
      const keptAs = done.find((d) => d.name === p.name)?.keptAs;
      const kept = keptAs ? `; the file found there is kept as ${keptAs}` : '';
      const fields = { event: 'published_name_repaired', certificate, name: p.name, path: p.path, was: p.state };
      Object.assign(fields, keptAs ? { keptAs } : {});
      log.warn(fields, `${p.detail}; restored the link to current/${p.name}${kept}`);
    }
    return broken.map((p) => p.name);
  } catch (err) {
    const names = broken.map((p) => p.name);
    const fields = { event: 'published_name_repair_failed', certificate, names, error: describeError(err) };
    log.error(fields, 'cannot restore the names consumers read');
    return [];
  }
}

/**
 * The pass failed and nothing usable is live (first start with the CA
 * unreachable, or a certificate that expired during an outage): install the
 * self-signed placeholder so the proxy can start now instead of waiting for
 * the CA. A live certificate that is still valid is never replaced by it.
 * Returns whether the placeholder is now live.
 */
export async function placeholderIfUnusable(ctx: PassContext, cause: unknown): Promise<boolean> {
  const { config, store, log } = ctx;
  const now = ctx.now();
  const live = liveIfReadable(store);
  if (live && now < validityOf(live.cert).notAfter) return false;
  // The CA answered and renewal.method step refused: what is live stays, as that setting promises.
  if (live && cause instanceof RenewalRefusedError) return false;
  try {
    const placed = await installPlaceholder(config, store, now, log);
    log.warn(
      {
        event: 'placeholder_installed',
        certificate: config.certificate.name,
        domains: config.certificate.domains,
        serial: placed.cert.serialNumber.toLowerCase(),
        notAfter: validityOf(placed.cert).notAfter.toISOString(),
        error: describeError(cause),
      },
      'CA not reached: serving a self-signed placeholder until it answers',
    );
    return true;
  } catch (err) {
    log.error(
      { event: 'placeholder_failed', certificate: config.certificate.name, error: describeError(err) },
      'could not install a placeholder certificate',
    );
    return false;
  }
}
