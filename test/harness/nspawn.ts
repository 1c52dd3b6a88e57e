/**
 * Boots a root filesystem (see rootfs.ts) with systemd-nspawn, so that the
 * Debian package, the template hook and the hardened unit run under a real
 * systemd as PID 1, as in an LXC container.
 *
 * - Host network by default (no --private-network): the container reaches
 *   the step-ca on 127.0.0.1 and the CA reaches the agent's listener on
 *   127.0.0.1. With `netnsPath` it joins a network namespace instead (one
 *   host of a netns.ts topology).
 * - No machined or D-Bus on the host: --register=no --keep-unit, and commands
 *   enter the container's namespaces with nsenter (the target is the
 *   container's systemd, the child of the systemd-nspawn process).
 * - The container gets a pure cgroup v2 hierarchy (as LXC on Proxmox VE 7
 *   and newer), whatever the host mounts.
 * - nspawn runs in a cgroup of its own (created next to this process's), so
 *   two containers never share nspawn's payload/supervisor cgroups and
 *   shutdown() can kill whatever is left. Nothing is mounted on the host:
 *   nspawn's mounts live in the container's mount namespace.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChrootResult } from './rootfs.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

export interface Container {
  root: string;
  machine: string;
  /** PID (host view) of the container's systemd. */
  leader: number;
  /** Runs argv inside the container as root, with a clean environment plus env. */
  exec(argv: string[], env?: Record<string, string>, timeoutMs?: number): Promise<ChrootResult>;
  /** `sh -c script` inside; throws with the output unless it exits 0; returns trimmed stdout. */
  sh(script: string): Promise<string>;
  /** Last lines of the console (boot messages). */
  console(lines?: number): string;
  /** Powers the container off (SIGTERM to nspawn), kills what is left, removes its cgroups. */
  shutdown(): Promise<void>;
}

/** Hierarchies to give nspawn a cgroup of its own in: [cgroupfs mount, path of this process]. */
function cgroupParents(): [string, string][] {
  const own = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  const path = (prefix: string) => own.find((l) => l.startsWith(prefix))?.slice(prefix.length);
  const v2 = path('0::');
  if (v2 === undefined) throw new Error('no cgroup v2 hierarchy on this host; systemd-nspawn needs one');
  const out: [string, string][] = [];
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) out.push(['/sys/fs/cgroup', v2]);
  else if (existsSync('/sys/fs/cgroup/unified/cgroup.controllers')) out.push(['/sys/fs/cgroup/unified', v2]);
  const named = own.map((l) => /^\d+:name=systemd:(.*)$/.exec(l)?.[1]).find((p) => p !== undefined);
  if (named !== undefined && existsSync('/sys/fs/cgroup/systemd/cgroup.procs'))
    out.push(['/sys/fs/cgroup/systemd', named]);
  return out;
}

function removeCgroup(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroup(join(dir, e.name));
  rmdirSync(dir);
}

export interface BootOptions {
  /** Machine name (default ca-test-<random>); also the container's hostname unless `hostname` is given. */
  machine?: string;
  hostname?: string;
  /** Join this network namespace (e.g. /run/netns/NAME) instead of sharing the host's network. */
  netnsPath?: string;
}

/** Boots root with systemd and resolves once `systemctl is-system-running` says running or degraded. */
export async function bootContainer(root: string, timeoutMs = 60_000, opts: BootOptions = {}): Promise<Container> {
  const machine = opts.machine ?? `ca-test-${randomBytes(4).toString('hex')}`;
  const cgroups = cgroupParents().map(([mnt, path]) => join(mnt, path, `cert-agent-nspawn-${machine}`));
  for (const c of cgroups) mkdirSync(c);
  // --system-call-filter=bpf: nspawn's default filter denies bpf(2), and
  // without it the container's systemd silently drops IPAddressDeny= and
  // IPAccounting= (as in an unprivileged LXC container); a privileged
  // container, like this one, can load cgroup BPF programs.
  const nspawn = [
    'systemd-nspawn',
    '--quiet',
    '--directory',
    root,
    '--machine',
    machine,
    '--boot',
    '--register=no',
    '--keep-unit',
    '--console=read-only',
    '--link-journal=no',
    '--timezone=off',
    '--resolv-conf=off',
    '--system-call-filter=bpf',
    ...(opts.hostname ? [`--hostname=${opts.hostname}`] : []),
    ...(opts.netnsPath ? [`--network-namespace-path=${opts.netnsPath}`] : []),
  ];
  // Parent death: nspawn powers the container off when the test worker dies.
  const argv = [...(SETPRIV ? [SETPRIV, '--pdeathsig', 'TERM', '--'] : []), ...nspawn];
  const env = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: '1',
    CGROUPS: cgroups.map((c) => join(c, 'cgroup.procs')).join(' '),
  };
  const child: ChildProcess = spawn(
    'sh',
    ['-c', 'for f in $CGROUPS; do echo $$ > "$f"; done; exec "$@"', 'sh', ...argv],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let consoleText = '';
  child.stdout?.on('data', (d) => (consoleText += d));
  child.stderr?.on('data', (d) => (consoleText += d));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const tail = (n = 40) =>
    consoleText
      .replace(/\x1b\[[0-9;?!]*[A-Za-z]/g, '')
      .split(/\r?\n/)
      .slice(-n)
      .join('\n');

  let stopped = false;
  const shutdown = async () => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    }
    // Whatever survived (an nsenter'd command, a container killed hard).
    const v2 = cgroups.find((c) => existsSync(join(c, 'cgroup.kill')));
    if (v2) writeFileSync(join(v2, 'cgroup.kill'), '1');
    for (let i = 0; ; i++) {
      try {
        for (const c of cgroups) removeCgroup(c);
        return;
      } catch (err) {
        if (i >= 50) throw err;
        await sleep(100);
      }
    }
  };

  const exec = (cmd: string[], vars: Record<string, string> = {}, ms = 120_000): Promise<ChrootResult> => {
    const clean = Object.entries({
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin',
      HOME: '/root',
      LANG: 'C.UTF-8',
      ...vars,
    }).map(([k, v]) => `${k}=${v}`);
    return new Promise((resolve) => {
      const p = spawn('nsenter', ['--target', String(leader), '--all', '--', '/usr/bin/env', '-i', ...clean, ...cmd], {
        cwd: '/',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => p.kill('SIGKILL'), ms);
      p.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr });
      });
    });
  };

  let leader = 0;
  try {
    const deadline = Date.now() + timeoutMs;
    // The container's init: nspawn's child once it has exec'd systemd.
    while (!leader) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`systemd-nspawn exited (${child.exitCode ?? child.signalCode}):\n${tail()}`);
      if (Date.now() > deadline) throw new Error(`no systemd in the container after ${timeoutMs} ms:\n${tail()}`);
      for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
        try {
          const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
          const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
          if (ppid === child.pid && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'systemd')
            leader = Number(pid);
        } catch {
          /* gone meanwhile */
        }
      }
      if (!leader) await sleep(100);
    }
    let state = '';
    while (!['running', 'degraded'].includes(state)) {
      if (Date.now() > deadline)
        throw new Error(`container not up after ${timeoutMs} ms (is-system-running: ${state}):\n${tail()}`);
      await sleep(300);
      state = (await exec(['systemctl', 'is-system-running'], {}, 10_000)).stdout.trim();
    }
  } catch (err) {
    await shutdown();
    throw err;
  }
  return {
    root,
    machine,
    leader,
    exec,
    async sh(script: string) {
      const r = await exec(['sh', '-c', script]);
      if (r.code !== 0) throw new Error(`in ${machine}: \`${script}\` exited ${r.code}\n${r.stdout}${r.stderr}`);
      return r.stdout.trim();
    },
    console: tail,
    shutdown,
  };
}

/** Mount points at or under dir in this process's mount namespace (there should be none). */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
}
