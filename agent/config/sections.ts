/**
 * The challenge and reload sections: read once at the top of the file (what
 * every certificate shares) and again inside a `certificates:` entry, where
 * each field given overrides the shared one for that certificate alone.
 */
import { dirname } from 'node:path';
import { ConfigError } from '../lib/errors.js';
import type { FieldReader } from './validate.js';
import { CHALLENGE_MODES, DEFAULTS, DEFAULT_NAME, RELOAD_TARGETS, type Config } from './schema.js';
import { absolutePathProblem, listenProblem } from './values.js';

/** `base`: the shared section an entry's fields override (its listen address kept only for the same mode). */
export function readChallenge(challenge: FieldReader, base?: Config['challenge']): Config['challenge'] {
  const mode = challenge.string('mode', {
    default: base?.mode ?? DEFAULTS.challengeMode,
    allowed: CHALLENGE_MODES,
  }) as Config['challenge']['mode'];
  const listen = challenge.string('listen', {
    default:
      base && base.mode === mode ? base.listen : mode === 'proxy' ? DEFAULTS.proxyListen : DEFAULTS.standaloneListen,
    check: listenProblem,
  });
  const webroot = challenge.string('webroot', {
    default: base?.webroot ?? DEFAULTS.webroot,
    check: absolutePathProblem,
  });
  challenge.done();
  return { mode, listen, webroot };
}

export function readReload(reload: FieldReader): Config['reload'] {
  const target = reload.string('target', {
    default: DEFAULTS.reloadTarget,
    allowed: RELOAD_TARGETS,
  }) as Config['reload']['target'];
  const command = readCommand(reload, target);
  const timeoutSeconds = reload.number('timeout', {
    default: DEFAULTS.reloadTimeoutSeconds,
    min: 1,
    max: 600,
    integer: true,
  });
  const traefikSection = reload.section('traefik');
  const dynamicFile = traefikSection.string('dynamicFile', {
    default: DEFAULTS.traefikDynamicFile,
    check: absolutePathProblem,
  });
  const entryPoint = traefikSection.string('entryPoint', {
    default: DEFAULTS.traefikEntryPoint,
    check: (v) => (/^[\w-]+$/.test(v) ? undefined : 'is not a Traefik entry point name'),
  });
  traefikSection.done();
  const nginxSection = reload.section('nginx');
  const nginxBinary = nginxSection.string('binary', { default: DEFAULTS.nginxBinary });
  const nginxConfig = nginxSection.optionalString('config', absolutePathProblem);
  nginxSection.done();
  const verify = reload.optionalString('verify', listenProblem);
  reload.done();
  return {
    target,
    ...(command ? { command } : {}),
    timeoutSeconds,
    traefik: { dynamicFile, entryPoint },
    nginx: { binary: nginxBinary, ...(nginxConfig ? { config: nginxConfig } : {}) },
    ...(verify ? { verify } : {}),
  };
}

/**
 * An entry's `reload:`: its own target, command, verify address and Traefik
 * dynamic file; the rest (timeout, nginx, entry point) stays shared. A
 * certificate other than `default` gets a dynamic file of its own beside the
 * shared one (cert-agent-NAME.yml), so Traefik's file provider loads both.
 */
export function readReloadOverride(reload: FieldReader, base: Config['reload'], name: string): Config['reload'] {
  const target = reload.string('target', {
    default: base.target,
    allowed: RELOAD_TARGETS,
  }) as Config['reload']['target'];
  const own = readCommand(reload, 'none');
  const command = own ?? (reload.has('target') ? undefined : base.command);
  if (target === 'command' && !command) throw commandRequired(reload);
  const traefikSection = reload.section('traefik');
  const ownFile =
    name === DEFAULT_NAME ? base.traefik.dynamicFile : `${dirname(base.traefik.dynamicFile)}/cert-agent-${name}.yml`;
  const dynamicFile = traefikSection.string('dynamicFile', { default: ownFile, check: absolutePathProblem });
  traefikSection.done();
  const verify = reload.optionalString('verify', listenProblem) ?? (reload.has('target') ? undefined : base.verify);
  reload.done();
  const { command: _c, verify: _v, ...shared } = base;
  return {
    ...shared,
    target,
    ...(command ? { command } : {}),
    traefik: { ...base.traefik, dynamicFile },
    ...(verify ? { verify } : {}),
  };
}

function readCommand(reload: FieldReader, target: string): string[] | undefined {
  const command = reload.has('command')
    ? reload.stringList('command', { required: true })
    : (reload.raw('command'), undefined);
  if (target === 'command' && !command) throw commandRequired(reload);
  return command;
}

function commandRequired(reload: FieldReader): ConfigError {
  const argv = 'an argv list, e.g. [systemctl, reload, haproxy]';
  return new ConfigError(reload.field('command'), `is required when reload.target is command (${argv})`);
}
