import type { ChallengeResponder } from '../acme/client.js';

/** A responder that holds a resource (a listening socket, files) until closed. */
export interface OpenedResponder extends ChallengeResponder {
  /** Withdraws every token and releases the resource; safe to call once in `finally`. */
  close(): Promise<void>;
}

export interface ResponderOptions {
  host: string;
  port: number;
  webroot: string;
}

export type OpenResponder = (opts: ResponderOptions) => Promise<OpenedResponder>;
