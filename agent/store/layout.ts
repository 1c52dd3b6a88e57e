/**
 * The names of the agent's own files, in one place: what lives in the state
 * directory and how the certificate directory is laid out. Every module that
 * reads or writes one of them takes the name from here.
 */

/** In the state directory (0700). */
export const STATE_FILE = 'state.json';
export const TRUST_FILE = 'trust.json';
export const LOCK_FILE = 'lock';
export const ACCOUNT_KEY_FILE = 'account.key';
export const ACCOUNT_FILE = 'account.json';
export const DAEMON_PID_FILE = 'daemon.pid';

/** In the certificate directory: one directory per issued set, and the two links that choose among them. */
export const SETS_DIR = '.sets';
export const CURRENT_LINK = 'current';
export const PREVIOUS_LINK = 'previous';
/** Marks a set holding the self-signed stand-in. */
export const PLACEHOLDER_MARKER = 'PLACEHOLDER';

/**
 * The names consumers read, each a symlink through `current`. combined.pem
 * (0600) is the key followed by the full chain in one file, for consumers
 * that take both from one path (HAProxy, some Java and Go servers): one
 * open(2), so even a reader that opens it at the moment of a swap gets a
 * matching pair.
 */
export const SET_FILES = ['key.pem', 'cert.pem', 'chain.pem', 'fullchain.pem', 'ca.pem', 'combined.pem'] as const;
export type SetFile = (typeof SET_FILES)[number];
