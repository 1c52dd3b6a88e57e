/**
 * A three-node Proxmox VE cluster as the host scripts (packaging/proxmox/) see
 * it, for the cluster tests: a cluster cannot exist on this machine, so it is
 * a stand-in, a directory laid out as test/harness/cluster/pvesh describes:
 * per node a view of its own containers (test/harness/pct reads that node's
 * directory), `pvesh` answering /cluster/status and /cluster/resources as the
 * real one does, `ssh root@IP` running the command on the node with that
 * address, and one directory, pve/, standing for /etc/pve (pmxcfs): every
 * node's view of it is the same directory, as pmxcfs replicates it. A host
 * script runs "on" a node with that node's environment; without quorum it
 * runs in a mount namespace where pve/ is a read-only bind mount (pmxcfs
 * refuses writes then, for root too).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '../..');
export const FLEET = join(REPO, 'packaging/proxmox/cert-agent-fleet');
export const HOOK = join(REPO, 'packaging/proxmox/cert-agent-ca-hook');

export type NodeName = 'a' | 'b' | 'c';
export const NODES: NodeName[] = ['a', 'b', 'c'];
const IPS: Record<NodeName, string> = { a: '10.0.0.1', b: '10.0.0.2', c: '10.0.0.3' };

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Cluster {
  dir: string;
  /** The stand-in for /etc/pve. */
  pve: string;
  /** This node's own state directory (CERT_AGENT_FLEET_STATE). */
  state(node: NodeName): string;
  /** Places container `id` on `node`: its pct stand-in config lines (name=, pid=, script=). */
  place(node: NodeName, id: number, conf: string): void;
  /** Moves container `id`'s config from one node to another, as a migration does. */
  migrate(id: number, from: NodeName, to: NodeName): void;
  /** Node down (offline to the cluster, ssh fails) or back. */
  down(node: NodeName, isDown: boolean): void;
  /** The cluster's quorum as pvesh reports it (the read-only file system is RunOptions.readOnly). */
  quorum(has: boolean): void;
  /** Runs a host script with dash on `node`; readOnly: /etc/pve read-only (no quorum). */
  on(node: NodeName, script: string, args: string[], opts?: RunOptions): Promise<Run>;
}

interface RunOptions {
  env?: Record<string, string>;
  readOnly?: boolean;
  limitMs?: number;
}

/** Runs argv in a process group of its own, killed whole after limitMs. */
function run(argv: string[], env: Record<string, string>, limitMs: number): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(argv[0]!, argv.slice(1), { detached: true, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('latin1')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('latin1')));
    const kill = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone already */
      }
    };
    const timer = setTimeout(kill, limitMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      kill();
      done({ code, stdout, stderr });
    });
  });
}

export function makeCluster(dir: string, pathBefore: string[] = []): Cluster {
  const pve = join(dir, 'pve');
  mkdirSync(pve, { recursive: true });
  // pmxcfs always has .members (the scripts take a directory without it for an unmounted mountpoint).
  writeFileSync(join(pve, '.members'), '{}\n');
  writeFileSync(join(dir, 'nodes'), NODES.map((n) => `${n} ${IPS[n]}\n`).join(''));
  for (const n of NODES) {
    mkdirSync(join(dir, n, 'pct'), { recursive: true });
    mkdirSync(join(dir, n, 'state'), { recursive: true });
  }
  const state = (n: NodeName) => join(dir, n, 'state');
  return {
    dir,
    pve,
    state,
    place: (n, id, conf) => writeFileSync(join(dir, n, 'pct', `${id}.conf`), conf),
    migrate: (id, from, to) => renameSync(join(dir, from, 'pct', `${id}.conf`), join(dir, to, 'pct', `${id}.conf`)),
    down: (n, isDown) =>
      isDown ? writeFileSync(join(dir, n, 'down'), '') : rmSync(join(dir, n, 'down'), { force: true }),
    quorum: (has) => writeFileSync(join(dir, 'quorate'), has ? '1\n' : '0\n'),
    on: (n, script, args, opts = {}) => {
      const env: Record<string, string> = {
        PATH: [
          ...pathBefore,
          join(REPO, 'test/harness/cluster'),
          join(REPO, 'test/harness'),
          '/usr/sbin:/usr/bin:/sbin:/bin',
        ].join(':'),
        LANG: 'C.UTF-8',
        CLUSTER_SHIM_DIR: dir,
        PVE_SHIM_NODE: n,
        PCT_SHIM_DIR: join(dir, n, 'pct'),
        CERT_AGENT_FLEET_PVE: pve,
        CERT_AGENT_FLEET_STATE: state(n),
        CERT_AGENT_FLEET_CONF: join(dir, n, 'conf'),
        CERT_AGENT_FLEET_LOG: join(dir, n, 'fleet.log'),
        CERT_AGENT_FLEET_SYSLOG: '0',
        CERT_AGENT_FLEET: FLEET,
        ...opts.env,
      };
      const argv = ['dash', script, ...args];
      // pmxcfs without quorum: read-only for everyone; a read-only bind mount in a namespace of its own.
      const ro = ['unshare', '-m', '--propagation', 'private', 'sh', '-c'];
      const mount = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"';
      return run(opts.readOnly ? [...ro, mount, 'sh', pve, ...argv] : argv, env, opts.limitMs ?? 120_000);
    },
  };
}
