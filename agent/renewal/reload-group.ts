/**
 * The consumers' reloads of one pass: every certificate whose consumer must
 * take its live set (a new set, or one a failed reload left untaken) is
 * grouped with the others of the same consumer (same target and settings),
 * and each group is reloaded once, after all of its certificates are
 * installed. A consumer that refuses some of the new files gets those
 * certificates' previous sets back and is reloaded once more with the rest;
 * each certificate is then checked on its own (its served serial, by SNI).
 */
import { ReloadError, describeError } from '../lib/errors.js';
import { reloadTargets, type ReloadOutcome, type SetResult } from '../reload/index.js';
import type { CertRun } from './context.js';

/** Reloads every group that needs it; a certificate whose consumer did not take it ends with its ReloadError. */
export async function reloadConsumers(runs: CertRun[]): Promise<void> {
  const groups = new Map<string, CertRun[]>();
  for (const run of runs) {
    if (!run.acted?.reload) continue;
    const key = consumerKey(run);
    groups.set(key, [...(groups.get(key) ?? []), run]);
  }
  for (const group of groups.values()) await reloadGroup(group);
}

/** Certificates reloaded together: the same target with the same settings (a command, an nginx binary and file). */
function consumerKey({ ctx }: CertRun): string {
  const { target, command, nginx, timeoutSeconds } = ctx.config.reload;
  return JSON.stringify([target, command ?? null, nginx, timeoutSeconds]);
}

/**
 * A refusal of some sets leaves the others to try once more, without the
 * refused ones, until the consumer takes what is left. Each round settles
 * every member or takes at least one out, so every certificate ends either
 * taken or failed, never installed but left unreloaded.
 */
async function reloadGroup(group: CertRun[]): Promise<void> {
  let members = group;
  while (members.length) {
    const first = members[0] as CertRun;
    const target = reloadTargets[first.ctx.config.reload.target];
    const sets = members.map(({ ctx, acted }) => ({ config: ctx.config, live: acted!.result.live }));
    try {
      const results = await target.reload({ config: first.ctx.config, sets, log: first.ctx.log });
      members.forEach((m, i) => settle(m, results[i] as SetResult));
      return;
    } catch (err) {
      const refusal = err instanceof ReloadError && err.rollback;
      const named = refusal && err.refused ? members.filter((m) => err.refused!.includes(name(m))) : [];
      // A refusal that names none of these cannot tell which: all of them.
      const refused = named.length ? named : members;
      for (const m of refused) fail(m, err, refusal);
      members = refusal ? members.filter((m) => !refused.includes(m)) : [];
    }
  }
}

const name = (run: CertRun) => run.ctx.config.certificate.name;

/** One certificate's share of the reload: taken (recorded) or not (its failure). */
function settle(run: CertRun, result: SetResult): void {
  if (result instanceof ReloadError) return fail(run, result, false);
  const { ctx, acted } = run;
  const target = ctx.config.reload.target;
  const served = result.servedSerial ? { servedSerial: result.servedSerial } : {};
  const serial = acted!.result.live.cert.serialNumber.toLowerCase();
  ctx.reloaded = { target, at: ctx.now().toISOString(), ok: true, detail: result.detail, serial, ...served };
  const fields = { event: 'reload_done', certificate: name(run), target, serial, detail: result.detail };
  ctx.log.info(fields, 'consumer reloaded');
  const outcome: ReloadOutcome = { detail: result.detail, ...served };
  const r = acted!.result;
  const reason = r.action === 'not-due' ? `${r.reason}; consumer reloaded` : r.reason;
  run.acted = { ...acted!, result: { ...r, reason, reload: outcome } };
}

/** The consumer did not take this certificate; a refused set is replaced by the previous one when asked. */
function fail(run: CertRun, err: unknown, rollback: boolean): void {
  const { ctx, acted } = run;
  const target = ctx.config.reload.target;
  let detail = describeError(err);
  if (rollback && ctx.store.rollback()) detail += '; the previous certificate set was restored';
  const serial = acted?.result.live.cert.serialNumber.toLowerCase();
  ctx.reloaded = { target, at: ctx.now().toISOString(), ok: false, detail, ...(serial ? { serial } : {}) };
  ctx.log.error({ event: 'reload_failed', certificate: name(run), target, serial, error: detail }, 'reload failed');
  run.error = err instanceof ReloadError ? new ReloadError(detail) : err;
  delete run.acted;
}
