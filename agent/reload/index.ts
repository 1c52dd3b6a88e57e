/** The reload targets of spec §9, one registry checked by the compiler. */
import type { ReloadTarget } from '../config/config.js';
import { reloadCommand } from './command.js';
import { reloadNginx } from './nginx.js';
import { reloadTraefik } from './traefik.js';
import type { Reloader } from './types.js';

const none: Reloader = async () => ({ detail: 'no reload configured' });

export const reloaders = {
  nginx: reloadNginx,
  traefik: reloadTraefik,
  command: reloadCommand,
  none,
} satisfies Record<ReloadTarget, Reloader>;

export type { ReloadContext, ReloadOutcome, Reloader } from './types.js';
