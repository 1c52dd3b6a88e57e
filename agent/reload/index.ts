/** The reload targets: one registry, checked by the compiler against the config's list of targets. */
import type { ReloadTarget as TargetName } from '../config/config.js';
import { commandTarget } from './command.js';
import { nginxTarget } from './nginx.js';
import { noneTarget } from './none.js';
import { traefikTarget } from './traefik.js';
import type { ReloadTarget } from './types.js';

export const reloadTargets = {
  nginx: nginxTarget,
  traefik: traefikTarget,
  command: commandTarget,
  none: noneTarget,
} satisfies Record<TargetName, ReloadTarget>;

export type { ReloadOutcome, ReloadTarget, SetResult, TargetDefaults } from './types.js';
