/**
 * A real Debian root filesystem for the packaging tests: debootstrap once
 * (minbase + Debian's own nodejs and systemd, as in a container template),
 * cached as a tar in /var/cache/cert-agent-test, unpacked per suite.
 *
 * Commands run in it through `unshare --mount` + `chroot`: /proc and /dev are
 * mounted inside a private mount namespace that dies with the command, so no
 * mount is ever left behind on the host, whatever happens to the test. The
 * chroot shares the host's network, so the agent in it reaches the step-ca
 * the harness started on 127.0.0.1.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tempDir } from '../helpers/agent.js';
import { nodeBinary } from './node-versions.js';

const ROOT = resolve(import.meta.dirname, '../..');
export const ROOTFS_CACHE = process.env.CERT_AGENT_ROOTFS_CACHE || '/var/cache/cert-agent-test';
/** Debian 13: its nodejs is 20, the oldest Node the agent supports. */
export const SUITE = 'trixie';
const INCLUDE = ['nodejs', 'systemd'];
/**
 * The fleet's variant, also the docs test's: the same base plus Debian's
 * nginx (the web container), openssl (the CA container's fingerprint for the
 * host scripts), curl, iproute2 (which brings libbpf, so systemd enforces the
 * unit's IP allow-list, as in a standard image) and ca-certificates (the
 * package recommends it, and `apt-get install` of the .deb, as the README has
 * it, would otherwise fetch it from a mirror these containers cannot reach).
 * Cached under its own key.
 */
export const FLEET_PACKAGES = ['nginx', 'openssl', 'curl', 'iproute2', 'ca-certificates'];

/** Builds the .deb from the current bundle (fast) and returns its path. */
export function buildDeb(): string {
  execFileSync(process.execPath, [join(ROOT, 'bundle/build.mjs')], { stdio: 'ignore' });
  return execFileSync('bash', [join(ROOT, 'packaging/deb/build.sh')], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .pop() as string;
}

/** bundle/out/cert-agent (`make sea`), rebuilt on the pinned Node 24 when missing or older than agent/. */
export function seaExecutable(): string {
  const sea = join(ROOT, 'bundle/out/cert-agent');
  const newest = Math.max(
    ...readdirSync(join(ROOT, 'agent'), { recursive: true, withFileTypes: true })
      .filter((d) => d.isFile())
      .map((d) => statSync(join(d.parentPath, d.name)).mtimeMs),
  );
  if (!existsSync(sea) || statSync(sea).mtimeMs < newest) {
    execFileSync(process.execPath, [join(ROOT, 'bundle/build-sea.mjs'), '--node', nodeBinary(24)], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }
  return sea;
}

/** The Debian mirror apt on this machine uses (deb.debian.org unless configured otherwise). */
export function debianMirror(): string {
  if (process.env.CERT_AGENT_DEBIAN_MIRROR) return process.env.CERT_AGENT_DEBIAN_MIRROR;
  for (const f of ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list']) {
    if (!existsSync(f)) continue;
    const text = readFileSync(f, 'utf8');
    const m = /^URIs:\s*(\S+\/debian)\/?\s*$/m.exec(text) ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\/?\s/m.exec(text);
    if (m) return m[1] as string;
  }
  return 'http://deb.debian.org/debian';
}

/**
 * Path of the cached rootfs tar, debootstrapping it first when missing (about
 * a minute). `extra`: more Debian packages (e.g. nginx), cached as a rootfs
 * of its own, so the plain one stays what a minimal template has.
 */
export function ensureRootfs(extra: string[] = []): string {
  const include = [...INCLUDE, ...extra];
  const key = createHash('sha256')
    .update(`${SUITE} minbase ${include.join(',')}`)
    .digest('hex')
    .slice(0, 8);
  const tar = join(ROOTFS_CACHE, `rootfs-${SUITE}-${key}.tar`);
  if (existsSync(tar)) return tar;
  mkdirSync(ROOTFS_CACHE, { recursive: true });
  const build = tempDir('cert-agent-debootstrap-');
  try {
    const argv = ['--variant=minbase', `--include=${include.join(',')}`, SUITE, join(build, 'root'), debianMirror()];
    execFileSync('debootstrap', argv, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 600_000 });
    execFileSync('tar', ['-C', join(build, 'root'), '-cf', `${tar}.part`, '.']);
    renameSync(`${tar}.part`, tar);
  } finally {
    rmSync(`${tar}.part`, { force: true });
    removeTree(join(build, 'root'));
    rmSync(build, { recursive: true, force: true });
  }
  return tar;
}

/** A fresh root filesystem from the cached tar (see ensureRootfs for `extra`); remove it with removeTree(). */
export function unpackRootfs(extra: string[] = []): string {
  const tar = ensureRootfs(extra);
  const dir = tempDir('cert-agent-rootfs-');
  execFileSync('tar', ['-C', dir, '-xf', tar]);
  return dir;
}

/** Refuses to delete a tree that still has something mounted inside (it would reach the host's /dev). */
export function removeTree(dir: string): void {
  if (!existsSync(dir)) return;
  const mounted = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p) => p && (p === dir || p.startsWith(`${dir}/`)));
  if (mounted.length) throw new Error(`not removing ${dir}: still mounted: ${mounted.join(', ')}`);
  rmSync(dir, { recursive: true, force: true });
}

export interface ChrootResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs argv inside the root filesystem (private mount namespace, host network), with a clean environment plus env. */
export function inChroot(
  root: string,
  argv: string[],
  env: Record<string, string> = {},
  timeoutMs = 120_000,
): Promise<ChrootResult> {
  const setup =
    'set -e; mount -t proc proc "$R/proc"; mount --rbind /dev "$R/dev"; exec chroot "$R" /usr/bin/env -i "$@"';
  // The test CA validates http-01 on its own port: the agent's self-check looks there too.
  const selfCheck = process.env.CERT_AGENT_SELF_CHECK_PORT
    ? { CERT_AGENT_SELF_CHECK_PORT: process.env.CERT_AGENT_SELF_CHECK_PORT }
    : {};
  const vars = Object.entries({
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: '/root',
    LANG: 'C.UTF-8',
    ...selfCheck,
    ...env,
  }).map(([k, v]) => `${k}=${v}`);
  return new Promise((resolvePromise) => {
    const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', setup, 'sh', ...vars, ...argv], {
      env: { R: root, PATH: process.env.PATH ?? '/usr/bin:/bin' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code: code ?? (signal ? 128 : -1), stdout, stderr });
    });
  });
}
