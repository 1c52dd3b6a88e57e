/**
 * Reads the agent's JSON log — one object a line, as it writes to stdout or
 * stderr — for the tests and the benchmark alike: from a live stream (a
 * daemon) or from captured text (a one-shot run). A line that is not JSON is
 * kept as an `unparsed` entry with its text, not dropped.
 */
import type { Readable } from 'node:stream';

export interface LogLine {
  event?: string;
  time: string;
  level?: string;
  [key: string]: unknown;
}

export function parseLogLine(text: string): LogLine {
  try {
    return JSON.parse(text) as LogLine;
  } catch {
    return { event: 'unparsed', time: new Date().toISOString(), text };
  }
}

/** Every non-empty line of captured output, parsed. */
export function parseLog(text: string): LogLine[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map(parseLogLine);
}

/** Calls `each` with every complete line the stream delivers, in order, as it arrives. */
export function followLog(stream: Readable, each: (line: LogLine) => void): void {
  let buf = '';
  stream.on('data', (chunk: Buffer) => {
    buf += chunk.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const text = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      each(parseLogLine(text));
    }
  });
}
