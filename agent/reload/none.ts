/**
 * reload.target: none — the consumer picks the files up by itself (or
 * nothing serves them yet). Nothing to reload and nothing to inspect.
 */
import { diagnosis } from '../lib/diagnosis.js';
import type { ReloadTarget } from './types.js';
import { runningServerUser } from './web-user.js';

export const noneTarget: ReloadTarget = {
  defaults: { challengeMode: 'standalone' },
  reload: async ({ sets }) => sets.map(() => ({ detail: 'no reload configured' })),
  diagnose: async () => [diagnosis('skip', 'proxy config', 'reload.target is none')],
  webServerUser: async () => runningServerUser(),
};
