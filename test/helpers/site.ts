/**
 * A site of network namespaces as the site tests build it: step-ca in a
 * namespace of its own (port 443, validating http-01 on port 80 of each
 * name), one consumer "container" with its own root directory (its "/",
 * holding /etc/cert-agent), and a client namespace with a directory of its
 * own; all of it removed by cleanup(), which is safe after a failed start.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createTopology, type Topology } from '../harness/netns.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { tempDir } from './agent.js';

export interface Site {
  topo: Topology;
  ca: StepCa;
  /** The consumer container's root directory. */
  root: string;
  /** The client's directory (e.g. its copy of the pinned root). */
  clientDir: string;
  cleanup(): Promise<void>;
}

export async function startSite(o: {
  /** The topology's /24, e.g. '10.213.23'. */
  subnet: string;
  /** The CA's name, which is also its URL's host. */
  caName: string;
  consumer: { key: string; octet: number; names: string[] };
  /** Part of the temporary directories' names. */
  label: string;
}): Promise<Site> {
  const topo = createTopology(
    [{ key: 'ca', octet: 10, names: [o.caName] }, o.consumer, { key: 'client', octet: 20 }],
    o.subnet,
  );
  let ca: StepCa | undefined;
  const dirs: string[] = [];
  const cleanup = async () => {
    await ca?.cleanup();
    await topo.cleanup();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  };
  try {
    const host = topo.host('ca');
    ca = await startStepCa({ netns: { ns: host.ns, address: host.address, port: 443, dnsNames: [o.caName] } });
    const root = tempDir(`cert-agent-${o.label}-${o.consumer.key}-`);
    dirs.push(root);
    const clientDir = tempDir(`cert-agent-${o.label}-client-`);
    dirs.push(clientDir);
    mkdirSync(join(root, 'etc/cert-agent'), { recursive: true, mode: 0o755 });
    return { topo, ca, root, clientDir, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
