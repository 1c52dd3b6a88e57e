/**
 * The challenge and reload sections: read once at the top of the file (what
 * every certificate shares) and again inside a `certificates:` entry, where
 * each field given overrides the shared one for that certificate alone (an
 * entry's `challenge.dns`, given, replaces the shared one whole).
 */
import { dirname } from 'node:path';
import { ConfigError } from '../lib/errors.js';
import type { FieldReader } from './validate.js';
import {
  CHALLENGE_MODES,
  DEFAULTS,
  DEFAULT_NAME,
  RELOAD_TARGETS,
  TSIG_ALGORITHMS,
  type Config,
  type DnsChallengeSettings,
  type TsigAlgorithm,
} from './schema.js';
import {
  absolutePathProblem,
  dnsNameProblem,
  dnsServerProblem,
  listenProblem,
  parseDnsServer,
  tsigKeyNameProblem,
} from './values.js';

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
  const dns = readDnsFor(challenge, mode, base);
  challenge.done();
  return { mode, listen, webroot, ...(dns ? { dns } : {}) };
}

/** challenge.dns: only with mode dns, where it is required (an entry's own, or the shared one). */
function readDnsFor(
  challenge: FieldReader,
  mode: string,
  base?: Config['challenge'],
): DnsChallengeSettings | undefined {
  const given = challenge.has('dns');
  const section = challenge.section('dns');
  if (given && mode !== 'dns')
    throw new ConfigError(
      challenge.field('dns'),
      `applies only to challenge.mode: dns (the mode here is ${mode}); set mode: dns or remove the dns section`,
    );
  if (mode !== 'dns') return undefined;
  if (!given && base?.dns) return base.dns;
  return readDns(section);
}

/**
 * The dns-01 settings: an RFC 2136 server with a TSIG key, or a command for
 * any other provider (then the server, if given, only answers lookups).
 */
export function readDns(dns: FieldReader): DnsChallengeSettings {
  const serverText = dns.optionalString('server', dnsServerProblem);
  const zone = dns.optionalString('zone', dnsNameProblem);
  const tsig = dns.has('tsig') ? readTsig(dns.section('tsig')) : (dns.raw('tsig'), undefined);
  const command = dns.has('command') ? dns.stringList('command', { required: true }) : (dns.raw('command'), undefined);
  const propagationTimeoutSeconds = dns.number('propagationTimeout', {
    default: DEFAULTS.dnsPropagationTimeoutSeconds,
    min: 5,
    max: 3600,
    integer: true,
  });
  const ttl = dns.number('ttl', { default: DEFAULTS.dnsTtl, min: 1, max: 86400, integer: true });
  dns.done();
  if (tsig && command)
    throw new ConfigError(
      dns.field('command'),
      'cannot be given together with tsig: publish the record either by an RFC 2136 update (server and tsig) or by the command',
    );
  if (tsig && !serverText)
    throw new ConfigError(
      dns.field('server'),
      'is required with tsig: the IP address of the RFC 2136 server (IP:PORT)',
    );
  if (!tsig && !command)
    throw new ConfigError(
      dns.field('').replace(/\.$/, ''),
      'mode dns needs server and tsig (an RFC 2136 update signed with a TSIG key) or command (an argv list for any other DNS provider)',
    );
  return {
    ...(serverText ? { server: parseDnsServer(serverText) } : {}),
    ...(zone ? { zone: zone.toLowerCase().replace(/\.$/, '') } : {}),
    ...(tsig ? { tsig } : {}),
    ...(command ? { command } : {}),
    propagationTimeoutSeconds,
    ttl,
  };
}

function readTsig(tsig: FieldReader): NonNullable<DnsChallengeSettings['tsig']> {
  const name = tsig.string('name', { check: tsigKeyNameProblem }).toLowerCase().replace(/\.$/, '');
  const algorithm = tsig.string('algorithm', {
    default: DEFAULTS.tsigAlgorithm,
    allowed: TSIG_ALGORITHMS,
  }) as TsigAlgorithm;
  const secretFile = tsig.string('secretFile', { check: absolutePathProblem });
  tsig.done();
  return { name, algorithm, secretFile };
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
