/**
 * What the tests of the package under a real systemd share (a root
 * filesystem from rootfs.ts booted by nspawn.ts): the root made ready for
 * the template hook — the .deb and the hook in /root, libbpf so the unit's
 * IP firewall is in force, IP accounting to prove it is attached — and
 * reading a unit back: its `systemctl show` properties, its JSON log lines
 * from the journal, and polling until something shows, with the unit's last
 * lines when it does not.
 */
import { copyFileSync, existsSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { Container } from '../harness/nspawn.js';

const ROOT = resolve(import.meta.dirname, '../..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The package (as /root/<its name>), the hook (/root/postinstall.sh) and
 * what the unit needs from the host, copied into a fresh root filesystem;
 * `accounting`: the units that get IPAccounting=yes in a drop-in.
 */
export function prepareRoot(dir: string, debPath: string, accounting: string[] = ['cert-agent.service']): void {
  copyFileSync(debPath, join(dir, `root/${basename(debPath)}`));
  copyFileSync(join(ROOT, 'packaging/postinstall.sh'), join(dir, 'root/postinstall.sh'));
  // systemd enforces IPAddressDeny=/IPAddressAllow= only with libbpf, which
  // minbase lacks (standard images have it: iproute2 depends on libbpf1).
  // The host's copy (iproute2 is in `make deps`) stands in, so the firewall
  // is in force when the agent talks to the CA.
  for (const lib of ['libbpf.so.1', 'libelf.so.1']) {
    const host = ['/usr/lib/x86_64-linux-gnu', '/lib/x86_64-linux-gnu'].map((d) => join(d, lib)).find(existsSync);
    if (!host) throw new Error(`${lib} missing on the host: apt-get install libbpf1`);
    copyFileSync(realpathSync(host), join(dir, `usr/lib/x86_64-linux-gnu/${lib}`));
  }
  // IP accounting shares the firewall's cgroup BPF programs: counters prove they are attached.
  for (const unit of accounting) {
    const dropIns = join(dir, `etc/systemd/system/${unit}.d`);
    mkdirSync(dropIns, { recursive: true });
    writeFileSync(join(dropIns, 'test-accounting.conf'), '[Service]\nIPAccounting=yes\n');
  }
}

/** `systemctl show UNIT` properties as an object. */
export async function unitProps(ct: Container, unit: string, props: string[]): Promise<Record<string, string>> {
  const out = await ct.sh(`systemctl show ${unit} -p ${props.join(',')}`);
  return Object.fromEntries(out.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** The unit's JSON log lines from the journal. */
export async function unitEvents(ct: Container, unit: string): Promise<Record<string, unknown>[]> {
  const out = await ct.sh(`journalctl -u ${unit} -o cat --no-pager`);
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Polls probe every 500 ms until ok; then throws with the last value and the unit's last journal lines. */
export async function untilUnit<T>(
  ct: Container,
  unit: string,
  what: string,
  probe: () => Promise<T>,
  ok: (v: T) => boolean,
  ms = 30_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (ok(v)) return v;
    if (Date.now() > deadline)
      throw new Error(
        `${what}: still ${JSON.stringify(v)} after ${ms} ms\n${await ct.sh(`journalctl -u ${unit} -n 30 -o cat --no-pager`)}`,
      );
    await sleep(500);
  }
}

/** How many of the log lines are `event`. */
export const countEvents = (evs: Record<string, unknown>[], event: string) =>
  evs.filter((e) => e.event === event).length;
