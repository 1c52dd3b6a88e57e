/**
 * The host scripts (packaging/proxmox/) across a Proxmox VE cluster, fast: the
 * cluster is a stand-in (test/harness/cluster.ts: `pvesh`, `ssh` between the
 * nodes, /etc/pve as one directory all three nodes see) and every container a
 * "scripted container" of the pct stand-in, a shell script on the host that
 * answers the argv pct would run in it, so nothing is booted. What only real
 * containers show (agents renewing from a recreated CA across nodes) is
 * test/integration/fleet-cluster.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FLEET, HOOK, makeCluster, type Cluster, type NodeName } from '../../harness/cluster.js';
import { tempDir } from '../../helpers/agent.js';

const SSH = resolve(import.meta.dirname, '../../harness/cluster/ssh');
const FP_OLD = 'a'.repeat(64);
const UNPRINTABLE = /[^\n\x20-\x7e]/;
let work: string;
let cl: Cluster;
let rootPem: string;
let rootFp: string;

beforeAll(() => {
  const dir = tempDir('cert-agent-cluster-ca-');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=cluster test root',
    '-days', '2', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'root.pem'),
  ], { stdio: 'ignore' }); // prettier-ignore
  rootPem = readFileSync(join(dir, 'root.pem'), 'utf8');
  const der = execFileSync('openssl', ['x509', '-outform', 'DER'], { input: rootPem });
  rootFp = execFileSync('openssl', ['dgst', '-sha256', '-r'], { input: der }).toString().split(' ')[0]!;
  rmSync(dir, { recursive: true, force: true });
});

/**
 * A scripted container: `cert-agent status --line` answers one v2 line with the
 * root it is pinned to (pin.ID, FP_OLD at first), `cert-agent enroll
 * --fingerprint X` pins X, the CA's root file is root.pem, a push lands in
 * pushed.ID/; every command is appended to calls.ID.log.
 */
function scripted(node: NodeName, id: number, name: string): void {
  const script = join(work, `ct${id}.sh`);
  writeFileSync(join(work, `pin.${id}`), FP_OLD);
  writeFileSync(
    script,
    `#!/bin/sh
# Scripted container ${id} of the pct stand-in.
printf '%s\\n' "$*" >> '${work}/calls.${id}.log'
while [ $# -gt 0 ]; do case "$1" in env|-i|*=*) shift ;; *) break ;; esac; done
case "$*" in
  *'status --line'*) printf 'v2\\tOK\\t${name}.internal\\t86400\\t43200\\t%s\\t-\\tdefault\\n' "$(cat '${work}/pin.${id}')" ;;
  'sh -c command -v cert-agent'*) echo /usr/bin/cert-agent ;;
  'cert-agent status --json') exit 3 ;;
  'cert-agent enroll --fingerprint '*) printf '%s' "$4" > '${work}/pin.${id}' ;;
  'cat /etc/step-ca/certs/root_ca.crt') cat '${work}/root.pem' ;;
  'cat '*) exit 1 ;;
  'sh -c cat > "$1"'*) mkdir -p '${work}/pushed.${id}'; cat > "${work}/pushed.${id}/$(basename "$4")" ;;
  'sh /root/cert-agent-postinstall.sh') echo "postinstall: installing on ${name}" ;;
  *) exit 0 ;;
esac
`,
  );
  chmodSync(script, 0o755);
  cl.place(node, id, `name=${name}\npid=${process.pid}\nscript=${script}\n`);
}
const calls = (id: number) =>
  existsSync(join(work, `calls.${id}.log`)) ? readFileSync(join(work, `calls.${id}.log`), 'utf8') : '';
const pin = (id: number) => readFileSync(join(work, `pin.${id}`), 'utf8');
const sshLog = () => (existsSync(join(cl.dir, 'ssh.log')) ? readFileSync(join(cl.dir, 'ssh.log'), 'utf8') : '');

beforeEach(() => {
  work = tempDir('cert-agent-cluster-');
  cl = makeCluster(join(work, 'cluster'), [join(work, 'bin')]);
  mkdirSync(join(work, 'bin'));
  writeFileSync(join(work, 'root.pem'), rootPem);
  // The CA on node a, nginx's consumer on b, Traefik's on c.
  scripted('a', 103, 'ca');
  scripted('b', 101, 'web');
  scripted('c', 102, 'proxy');
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

describe('cert-agent-fleet status over the cluster', () => {
  it('shows the same rows, with each container node, from every node; remote ones over BatchMode ssh', async () => {
    mkdirSync(join(cl.pve, 'nodes/b'), { recursive: true });
    writeFileSync(join(cl.pve, 'nodes/b/ssh_known_hosts'), '');
    const seen = [];
    for (const n of ['a', 'b', 'c'] as const) {
      const r = await cl.on(n, FLEET, ['status']);
      expect(r.code, r.stderr).toBe(0);
      seen.push(r.stdout);
    }
    expect(seen[1]).toBe(seen[0]);
    expect(seen[2]).toBe(seen[0]);
    const rows = seen[0]!.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^ID +NAME +NODE +CERT +STATE /);
    expect(rows.slice(1).map((l) => l.split(/ +/).slice(0, 5).join(' '))).toEqual([
      '101 web b default OK',
      '102 proxy c default OK',
      '103 ca a default OK',
    ]);
    const json = JSON.parse((await cl.on('b', FLEET, ['status', '--json'])).stdout) as {
      containers: { id: number; node: string }[];
      quorate: boolean;
    };
    expect(json.containers.map((c) => `${c.id}@${c.node}`)).toEqual(['101@b', '102@c', '103@a']);
    expect(json.quorate).toBe(true);
    // As Proxmox's own migration calls ssh; the node's known_hosts in /etc/pve when it has one.
    for (const line of sshLog().trimEnd().split('\n')) {
      expect(line).toMatch(/^-e none -o BatchMode=yes -o HostKeyAlias=([abc]) -o ConnectTimeout=10 /);
      expect(line.includes('HostKeyAlias=b'), line).toBe(line.includes(`UserKnownHostsFile=${cl.pve}/nodes/b/ssh_known_hosts`));
    }
    expect(sshLog()).toMatch(/root@10\.0\.0\.2 'pct' 'exec' '101' '--' 'env' '-i' /);
  });

  it('--node limits to one node; a node name that is not one is exit 64', async () => {
    const r = await cl.on('a', FLEET, ['status', '--node', 'c']);
    expect(r.stdout.trimEnd().split('\n').slice(1).map((l) => l.split(/ +/)[0])).toEqual(['102']);
    expect(calls(101)).toBe('');
    const bad = await cl.on('a', FLEET, ['status', '--node', 'c;reboot']);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toMatch(/^cert-agent-fleet: status: --node "c;reboot" is not a node name/);
  });

  it('a node that is offline or does not answer ssh: one UNKNOWN row per container, counted in the exit code', async () => {
    scripted('c', 104, 'grafana');
    cl.down('c', true);
    const r = await cl.on('a', FLEET, ['status']);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^102 +- +c +- +UNKNOWN .* node c unreachable: offline in the cluster's status$/m);
    expect(r.stdout).toMatch(/^104 +- +c +- +UNKNOWN .* node c unreachable/m);
    expect(r.stdout).toMatch(/^101 +web +b +default +OK /m);
    cl.down('c', false);
    writeFileSync(join(cl.dir, 'b', 'nossh'), '');
    const s = await cl.on('a', FLEET, ['status']);
    expect(s.code).toBe(3);
    expect(s.stdout).toMatch(/^101 +web +b +- +UNKNOWN .* node b unreachable: ssh exit 255: ssh: connect to host 10\.0\.0\.2 port 22: No route to host$/m);
  });

  it('hostile ssh or pvesh output is bounded, checked and printed only as printable ASCII', async () => {
    // An ssh that answers escapes and never ends for node b, a pvesh whose /cluster/resources is no JSON.
    writeFileSync(
      join(work, 'bin', 'ssh'),
      `#!/bin/sh\ncase "$*" in *HostKeyAlias=b*) printf '\\033]0;pwned\\007\\033[2J'; exec sleep 60 ;; esac\nexec '${SSH}' "$@"\n`,
      { mode: 0o755 },
    );
    const r = await cl.on('a', FLEET, ['status'], { env: { CERT_AGENT_FLEET_TIMEOUT: '1' } });
    expect(r.code).toBe(3);
    expect(r.stdout).not.toMatch(UNPRINTABLE);
    expect(r.stdout).toMatch(/^101 +web +b +- +UNKNOWN .* node b unreachable: ssh no answer within 1s: \?\]0;pwned\?\?\[2J$/m);
    expect(r.stdout).toMatch(/^103 +ca +a +default +OK /m);
  });
});
