/**
 * The certificate and state directories at the moment a pass writes. The
 * configuration was checked when it was loaded (config/path-safety.ts), but
 * a daemon keeps it for months, and a directory above them may have been
 * given to another user since, who could then swap the directory for a link
 * and have root re-own and re-mode whatever it points to. So each pass
 * checks the same rule again before it writes anything (the lock and
 * state.json included) and refuses with a StoreError (exit 73); and the
 * store changes the certificate directory's owner and mode only through a
 * descriptor of the directory it has just checked (openCheckedDir).
 */
import { statSync, type Stats } from 'node:fs';
import type { Config } from '../config/config.js';
import { storeDirectories, storeDirectoryProblem, type StoreDirectory } from '../config/path-safety.js';
import { StoreError, StoreRefusalError, describeError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { closeQuietly, lstatMaybe, openNoFollow } from '../lib/safefs.js';

const FIELD: Record<StoreDirectory, string> = { certificate: 'certificate.dir', state: 'stateDir' };

/** The refusal for a directory that no longer keeps the rule it was loaded under. */
function changedError(which: StoreDirectory, path: string, problem: string): StoreError {
  return new StoreError(
    `${FIELD[which]} ${JSON.stringify(path)} is no longer safe to write through since the configuration was loaded: ` +
      `it ${problem}; nothing was written`,
  );
}

/**
 * Before a pass writes anything: both directories still keep the rule.
 * A refusal is logged here (the pass has not started, so it records
 * nothing in state.json, which lives in one of them) and thrown.
 */
export function checkStoreDirectories(
  config: Config,
  log: Logger,
  event = 'renewal_failed',
  only?: StoreDirectory,
): void {
  for (const { path, which } of storeDirectories(config)) {
    if (only && which !== only) continue;
    const problem = storeDirectoryProblem(path, which);
    if (!problem) continue;
    const err = changedError(which, path, problem);
    const fields = {
      event,
      certificate: config.certificate.name,
      domains: config.certificate.domains,
      errorKind: err.kind,
    };
    log.error({ ...fields, error: err.message }, 'refused before writing anything; the current certificate stays');
    throw err;
  }
}

/**
 * Opens the certificate directory for a change of owner or mode: checks the
 * rule again (every directory above it only root's, so nobody else can
 * rename anything on the way from here), stats what the path names, opens
 * it without following a link below the configured path (the configured
 * path itself may be a link root made), and compares the descriptor with
 * what was stat'ed and with `expect` (the directory this pass opened
 * first). Any difference is a StoreError: the directory changed under us.
 */
export function openCheckedDir(path: string, expect?: { dev: number; ino: number }): { fd: number; st: Stats } {
  const problem = storeDirectoryProblem(path, 'certificate');
  if (problem) throw changedError('certificate', path, problem);
  let named: Stats;
  try {
    named = statSync(path);
  } catch (err) {
    throw new StoreError(`cannot inspect ${path}: ${describeError(err)}`, { cause: err });
  }
  const opened = openNoFollow(lstatMaybe(path)?.isSymbolicLink() ? `${path}/.` : path, 'directory');
  const same = (a: { dev: number; ino: number }) => a.dev === opened.st.dev && a.ino === opened.st.ino;
  if (!same(named) || (expect && !same(expect))) {
    closeQuietly(opened.fd);
    throw new StoreRefusalError(
      `${path} changed while the agent was working in it (it is not the directory this pass checked): ` +
        'refusing to touch it; nothing was changed there',
    );
  }
  return opened;
}
