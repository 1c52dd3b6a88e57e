/**
 * Every path the agent owns, in one table: where it lives, what it is
 * called, whether it is a directory, a file or a link, whether it is a
 * secret, who owns it and its mode as a function of the ownership. Install
 * and settle (sets.ts), drift detection (permissions.ts), `doctor` and
 * `status` (through audit.ts) all read it; no other module spells a name.
 *
 *   stateDir/        0700 agent   trust.json, lock, account.key, account.json, daemon.pid (shared),
 *                                 state.json / state-NAME.json (one per certificate)
 *   certificate.dir/ 0750 agent:G (0700 with no consumer group)
 *     key.pem …      -> current/key.pem (the published names, one per set file)
 *     current        -> .sets/<id>
 *     previous       -> .sets/<id>
 *     .sets/<id>/    0750 agent:G: key.pem and combined.pem 0640 (0600 with no group), the rest 0644
 */

/**
 * Who reads the certificate files besides the agent (ownership.ts
 * ownershipOf): `group` gets read access (dirs 0750, keys 0640); without it
 * everything is private. `legacyUid` is the certificate.owner of an install
 * from before this model, which owned the directories: accepted only to
 * take them back.
 */
export interface Ownership {
  group?: number;
  legacyUid?: number;
}

export interface OwnedPath {
  /** The directory it lives in: the state directory, the certificate directory, or one set under .sets. */
  in: 'state' | 'certificate' | 'set';
  /** Its name there; '.' is that directory itself. */
  name: string;
  /** What the operator reads in a message. */
  what: string;
  kind: 'directory' | 'file' | 'link';
  secret: boolean;
  /** `agent`: the agent's uid, its group left alone; `consumers`: the agent's uid and the consumer group. */
  owner: 'agent' | 'consumers';
  /** The mode it is created with and audited against; links have none. */
  mode: (o: Ownership) => number;
}

const fixed = (mode: number) => () => mode;
/** The consumer group may list and enter the certificate directories. */
const sharedDir = (o: Ownership) => (o.group === undefined ? 0o700 : 0o750);
/** The consumer group may read the key. */
const sharedSecret = (o: Ownership) => (o.group === undefined ? 0o600 : 0o640);

const state = <N extends string>(name: N, what: string, mode: number, secret = false): OwnedPath & { name: N } => ({
  in: 'state',
  name,
  what,
  kind: 'file',
  secret,
  owner: 'agent',
  mode: fixed(mode),
});
const inSet = <N extends string>(name: N, what: string, secret = false): OwnedPath & { name: N } => ({
  in: 'set',
  name,
  what,
  kind: 'file',
  secret,
  owner: 'consumers',
  mode: secret ? sharedSecret : fixed(0o644),
});
const dir = <N extends string>(where: OwnedPath['in'], name: N, what: string): OwnedPath & { name: N } => ({
  in: where,
  name,
  what,
  kind: 'directory',
  secret: false,
  owner: where === 'state' ? 'agent' : 'consumers',
  mode: where === 'state' ? fixed(0o700) : sharedDir,
});
const link = <N extends string>(name: N, what: string): OwnedPath & { name: N } => ({
  in: 'certificate',
  name,
  what,
  kind: 'link',
  secret: false,
  owner: 'agent',
  mode: fixed(0o777),
});

export const PATHS = {
  stateDir: dir('state', '.', 'state directory'),
  state: state('state.json', 'state file', 0o600),
  trust: state('trust.json', 'trusted roots', 0o644),
  lock: state('lock', 'lock', 0o600),
  accountKey: state('account.key', 'ACME account key', 0o600, true),
  account: state('account.json', 'ACME account', 0o600),
  daemonPid: state('daemon.pid', 'daemon pid file', 0o644),
  dnsRecords: state('dns-records.json', 'dns-01 records not yet withdrawn', 0o600),
  certDir: dir('certificate', '.', 'certificate directory'),
  sets: dir('certificate', '.sets', 'certificate sets directory'),
  current: link('current', 'live set link'),
  previous: link('previous', 'previous set link'),
  set: dir('set', '.', 'certificate set'),
  key: inSet('key.pem', 'private key', true),
  cert: inSet('cert.pem', 'certificate'),
  chain: inSet('chain.pem', 'intermediates'),
  fullchain: inSet('fullchain.pem', 'full chain'),
  ca: inSet('ca.pem', 'trusted roots'),
  // The key followed by the full chain in one file, for consumers that take
  // both from one path (HAProxy, some Java and Go servers): one open(2), so
  // even a reader that opens it at the moment of a swap gets a matching pair.
  combined: inSet('combined.pem', 'private key (combined.pem)', true),
  /** Marks a set holding the self-signed stand-in. */
  placeholder: inSet('PLACEHOLDER', 'placeholder marker'),
} as const satisfies Record<string, OwnedPath>;

/**
 * Each certificate's state file: the certificate named `default` (the short
 * form's) keeps 0.1.0's state.json, so an upgrade and a downgrade keep its
 * backoff and history; any other has state-NAME.json beside it.
 */
export function stateFileOf(name: string): string {
  return name === 'default' ? PATHS.state.name : `state-${name}.json`;
}

/** In the state directory. */
export const LOCK_FILE = PATHS.lock.name;
export const DAEMON_PID_FILE = PATHS.daemonPid.name;

/** In the certificate directory: one directory per issued set, and the two links that choose among them. */
export const SETS_DIR = PATHS.sets.name;
export const CURRENT_LINK = PATHS.current.name;
export const PREVIOUS_LINK = PATHS.previous.name;

/** The names consumers read, each a symlink through `current` to the file of that name in the live set. */
export const SET_FILES = [
  PATHS.key.name,
  PATHS.cert.name,
  PATHS.chain.name,
  PATHS.fullchain.name,
  PATHS.ca.name,
  PATHS.combined.name,
] as const;
export type SetFile = (typeof SET_FILES)[number];

/** Mode of a file in a set (by name) under this ownership. */
export function setFileMode(name: string, o: Ownership): number {
  return (Object.values(PATHS).find((p) => p.in === 'set' && p.name === name) ?? PATHS.cert).mode(o);
}

/** What a published name links to: the file of that name in the live set. */
export function publishedTarget(name: SetFile): string {
  return `${CURRENT_LINK}/${name}`;
}
