/**
 * The inputs of `cert-agent enroll`: each flag, the CERT_AGENT_* variable a
 * template hook sets instead, and the config field it writes; flags win over
 * variables. A command (--reload-command, --dns-command) is an argv, never a
 * shell line.
 */
import { UsageError, describeError } from '../lib/errors.js';
import { parseFingerprint } from '../pki/fingerprint.js';

/** Each enroll input: flag, environment variable, config path, and whether it is a list, an argv or a number. */
export const ENROLL_FIELDS = [
  { flag: 'ca-url', env: 'CERT_AGENT_CA_URL', path: ['ca', 'url'] },
  { flag: 'fingerprint', env: 'CERT_AGENT_FINGERPRINT', path: ['ca', 'fingerprint'], list: true },
  { flag: 'provisioner', env: 'CERT_AGENT_PROVISIONER', path: ['ca', 'provisioner'] },
  { flag: 'root-file', env: 'CERT_AGENT_ROOT_FILE', path: ['ca', 'rootFile'] },
  { flag: 'domain', env: 'CERT_AGENT_DOMAINS', path: ['certificate', 'domains'], list: true },
  { flag: 'key-type', env: 'CERT_AGENT_KEY_TYPE', path: ['certificate', 'keyType'] },
  { flag: 'cert-dir', env: 'CERT_AGENT_CERT_DIR', path: ['certificate', 'dir'] },
  { flag: 'owner', env: 'CERT_AGENT_OWNER', path: ['certificate', 'owner'] },
  { flag: 'group', env: 'CERT_AGENT_GROUP', path: ['certificate', 'group'] },
  { flag: 'email', env: 'CERT_AGENT_EMAIL', path: ['account', 'email'] },
  { flag: 'challenge', env: 'CERT_AGENT_CHALLENGE', path: ['challenge', 'mode'] },
  { flag: 'listen', env: 'CERT_AGENT_LISTEN', path: ['challenge', 'listen'] },
  { flag: 'webroot', env: 'CERT_AGENT_WEBROOT', path: ['challenge', 'webroot'] },
  { flag: 'reload', env: 'CERT_AGENT_RELOAD', path: ['reload', 'target'] },
  { flag: 'reload-command', env: 'CERT_AGENT_RELOAD_COMMAND', path: ['reload', 'command'], argv: true },
  { flag: 'verify', env: 'CERT_AGENT_VERIFY', path: ['reload', 'verify'] },
  { flag: 'state-dir', env: 'CERT_AGENT_STATE_DIR', path: ['stateDir'] },
  { flag: 'renewal-method', env: 'CERT_AGENT_RENEWAL_METHOD', path: ['renewal', 'method'] },
  { flag: 'dns-server', env: 'CERT_AGENT_DNS_SERVER', path: ['challenge', 'dns', 'server'] },
  { flag: 'dns-zone', env: 'CERT_AGENT_DNS_ZONE', path: ['challenge', 'dns', 'zone'] },
  { flag: 'tsig-name', env: 'CERT_AGENT_TSIG_NAME', path: ['challenge', 'dns', 'tsig', 'name'] },
  { flag: 'tsig-algorithm', env: 'CERT_AGENT_TSIG_ALGORITHM', path: ['challenge', 'dns', 'tsig', 'algorithm'] },
  { flag: 'tsig-secret-file', env: 'CERT_AGENT_TSIG_SECRET_FILE', path: ['challenge', 'dns', 'tsig', 'secretFile'] },
  { flag: 'dns-command', env: 'CERT_AGENT_DNS_COMMAND', path: ['challenge', 'dns', 'command'], argv: true },
  {
    flag: 'dns-propagation-timeout',
    env: 'CERT_AGENT_DNS_PROPAGATION_TIMEOUT',
    path: ['challenge', 'dns', 'propagationTimeout'],
    integer: true,
  },
] as const;

export type EnrollFlag = (typeof ENROLL_FIELDS)[number]['flag'];
export type EnrollInput = Partial<Record<EnrollFlag, string | string[] | number>>;

/** Flags win over environment variables; list variables are comma-separated. */
export function enrollInputFrom(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): EnrollInput {
  const input: EnrollInput = {};
  for (const f of ENROLL_FIELDS) {
    const flag = flags[f.flag];
    const fromFlag = Array.isArray(flag) ? (flag.length ? flag : undefined) : (flag as string | undefined);
    const raw = fromFlag ?? env[f.env];
    if (raw === undefined || raw === '') continue;
    if ('argv' in f && f.argv) {
      input[f.flag] = parseArgvInput(raw, fromFlag ? `--${f.flag}` : f.env, `--${f.flag}`);
      continue;
    }
    if ('integer' in f && f.integer && typeof raw === 'string') {
      // Written as a number; anything else is left as it came, for validation to name.
      input[f.flag] = /^\d{1,9}$/.test(raw.trim()) ? Number(raw.trim()) : raw;
      continue;
    }
    const list = 'list' in f && f.list;
    input[f.flag] = list
      ? (Array.isArray(raw) ? raw : raw.split(','))
          .flatMap((v) => v.split(','))
          .map((v) => v.trim())
          .filter(Boolean)
      : (raw as string);
  }
  // A pin pasted from openssl or sha256sum is written as the plain hex; a bad one is left for validation to name.
  if (input.fingerprint) input.fingerprint = (input.fingerprint as string[]).map((fp) => parseFingerprint(fp) ?? fp);
  return input;
}

/**
 * A command is an argv list, never a shell line. On the command line each
 * --reload-command is one argument (`--reload-command systemctl
 * --reload-command reload --reload-command haproxy`); a single value that
 * starts with "[" is a JSON array of strings, the only form the environment
 * variable takes besides a lone program path. A lone value with spaces would
 * be one program name with spaces in it: refused, since it is surely a shell
 * line.
 */
export function parseArgvInput(raw: string | string[], source: string, flag = '--reload-command'): string[] {
  const values = Array.isArray(raw) ? raw : [raw];
  const example = `e.g. '["systemctl","reload","haproxy"]'`;
  if (values.length === 1 && values[0]!.trim().startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(values[0]!);
    } catch (err) {
      throw new UsageError(`${source}: not a JSON array of strings (${describeError(err)}); ${example}`);
    }
    if (!Array.isArray(parsed) || !parsed.length || !parsed.every((a) => typeof a === 'string' && a !== '')) {
      throw new UsageError(`${source}: must be a non-empty JSON array of non-empty strings, ${example}`);
    }
    return parsed as string[];
  }
  if (values.length === 1 && /\s/.test(values[0]!.trim())) {
    throw new UsageError(
      `${source} ${JSON.stringify(values[0])} is a shell line; commands run without a shell: ` +
        `give one ${flag} per argument or a JSON array, ${example}`,
    );
  }
  if (values.some((v) => v === '')) throw new UsageError(`${source}: an argument is empty`);
  return values.map((v) => (values.length === 1 ? v.trim() : v));
}
