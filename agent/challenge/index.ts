/** The challenge modes of spec §7, one registry checked by the compiler. */
import type { ChallengeMode } from '../config/config.js';
import { splitHostPort } from '../config/config.js';
import { openHttpResponder } from './http-responder.js';
import { openWebrootResponder } from './webroot.js';
import type { OpenResponder, OpenedResponder } from './types.js';

const responders = {
  standalone: openHttpResponder,
  proxy: openHttpResponder,
  webroot: openWebrootResponder,
} satisfies Record<ChallengeMode, OpenResponder>;

export function openResponder(challenge: { mode: ChallengeMode; listen: string; webroot: string }): Promise<OpenedResponder> {
  const { host, port } = splitHostPort(challenge.listen);
  return responders[challenge.mode]({ host, port, webroot: challenge.webroot });
}

export type { OpenedResponder };
