/**
 * Fleet benchmark, "isolated instances" mode: runs several agents' daemons
 * (agent/renewal/daemon.ts, the same class `cert-agent run` uses) inside one
 * process, each with its own configuration, state and certificate
 * directories, ACME account, keys and logger. Forked by the fleet section
 * with IPC; config paths come in CERT_AGENT_FLEET_CONFIGS (JSON array) and
 * CERT_AGENT_FLEET_BASE (index of the first one). Every log line goes to the
 * parent as {agent, line}; {type:'stop'} stops all daemons and exits.
 *
 * Shared between instances of one process, unlike separate containers: the
 * loaded code, and acme-client's module-wide HTTP client (all instances
 * trust the same root here, so its TLS settings are the same for all).
 */
import { createLogger } from '../../agent/lib/log.js';
import { inProcessPasses } from '../../agent/renewal/check.js';
import { writeMetricsTextfile } from '../../agent/report/metrics.js';
import { Daemon } from '../../agent/renewal/daemon.js';

const configs = JSON.parse(process.env.CERT_AGENT_FLEET_CONFIGS ?? '[]') as string[];
const base = Number(process.env.CERT_AGENT_FLEET_BASE ?? 0);

function loggerFor(agent: number) {
  return createLogger({
    level: 'info',
    sink: (line: string) => {
      try {
        process.send?.({ type: 'log', agent, line: JSON.parse(line) });
      } catch {
        // not JSON
      }
    },
  });
}

const daemons = configs.map((configPath, i) => {
  const log = loggerFor(base + i);
  return new Daemon({ configPath, log, runPass: inProcessPasses(log, writeMetricsTextfile) });
});
process.on('message', (msg: { type?: string }) => {
  if (msg?.type === 'start') for (const d of daemons) d.start();
  if (msg?.type === 'stop') {
    void Promise.all(daemons.map((d) => d.stop())).finally(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'ready' });
