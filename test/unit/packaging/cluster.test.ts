/**
 * The host scripts (packaging/proxmox/) across a Proxmox VE cluster, fast: the
 * cluster is a stand-in (test/harness/cluster.ts: `pvesh`, `ssh` between the
 * nodes, /etc/pve as one directory all three nodes see) and every container a
 * "scripted container" of the pct stand-in, a shell script on the host that
 * answers the argv pct would run in it, so nothing is booted. What only real
 * containers show (agents renewing from a recreated CA across nodes) is
 * test/integration/fleet-cluster.test.ts.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FLEET, HOOK, makeCluster, type Cluster, type NodeName } from '../../harness/cluster.js';
import { tempDir } from '../../helpers/agent.js';
import { hostScriptRoot } from '../../helpers/host-root.js';

const SSH = resolve(import.meta.dirname, '../../harness/cluster/ssh');
const FP_OLD = 'a'.repeat(64);
const UNPRINTABLE = /[^\n\x20-\x7e]/;
let work: string;
let cl: Cluster;

/** The root the CA container serves now, and the one it serves once recreated. */
let roots: [string, string][];
beforeAll(() => {
  roots = [hostScriptRoot('cluster'), hostScriptRoot('cluster')];
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
  'sh -c cat > "$1"'*) mkdir -p '${work}/pushed.${id}'; cat > "${work}/pushed.${id}/$(basename "$5")" ;;
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
  writeFileSync(join(work, 'root.pem'), roots[0]![0]);
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
    // As Proxmox's own migration calls ssh, strict, nothing forwarded; the node's known_hosts in
    // /etc/pve when it has one, else the cluster-wide /etc/pve/priv/known_hosts, never root's own.
    for (const line of sshLog().trimEnd().split('\n')) {
      const [, node, known] = /^-T -e none -o BatchMode=yes -o StrictHostKeyChecking=yes -o HostKeyAlias=([abc]) -o UserKnownHostsFile=(\S+) -o GlobalKnownHostsFile=none -o ConnectTimeout=10 -o ForwardAgent=no -o ForwardX11=no -o ClearAllForwardings=yes root@/.exec(line) ?? [];
      expect(known, line).toBe(node === 'b' ? `${cl.pve}/nodes/b/ssh_known_hosts` : `${cl.pve}/priv/known_hosts`);
    }
    expect(sshLog()).toMatch(/root@10\.0\.0\.2 'timeout' '-k' '3' '30' 'pct' 'exec' '101' '--' 'env' '-i' /);
  });

  it("a remote command is bounded on its node: it ends there when the limit is reached, not only the local ssh", async () => {
    // 106 on node b never answers; the ssh stand-in runs it in a session of its own, as on another machine.
    const script = join(work, 'ct106.sh');
    writeFileSync(script, `#!/bin/sh\necho $$ > '${work}/hang.pid'\nexec sleep 60\n`, { mode: 0o755 });
    cl.place('b', 106, `name=hang\npid=${process.pid}\nscript=${script}\n`);
    const r = await cl.on('a', FLEET, ['status', '106'], { env: { CERT_AGENT_FLEET_TIMEOUT: '1' } });
    expect(r.stdout).toMatch(/^106 +hang +b +- +UNKNOWN .* no answer within 1s$/m);
    const pid = Number(readFileSync(join(work, 'hang.pid'), 'utf8'));
    let alive = true;
    try {
      process.kill(pid, 0);
      process.kill(pid, 'SIGKILL');
    } catch {
      alive = false;
    }
    expect(alive, 'the command still runs on node b').toBe(false);
    expect(sshLog()).toMatch(/root@10\.0\.0\.2 'timeout' '-k' '3' '1' 'pct' 'exec' '106' /);
  });

  it('without cert-agent-cluster.sh next to it the script says so, exit 69', async () => {
    mkdirSync(join(work, 'alone'));
    copyFileSync(FLEET, join(work, 'alone', 'cert-agent-fleet'));
    const r = await cl.on('a', join(work, 'alone', 'cert-agent-fleet'), ['status']);
    expect([r.code, r.stderr]).toEqual([69, `cert-agent-fleet: ${work}/alone/cert-agent-cluster.sh is missing: copy it next to this script\n`]);
  });

  it('--node limits to one node; a node name that is not one is exit 64', async () => {
    const r = await cl.on('a', FLEET, ['status', '--node', 'c']);
    expect(r.stdout.trimEnd().split('\n').slice(1).map((l) => l.split(/ +/)[0])).toEqual(['102']);
    expect(calls(101)).toBe('');
    const bad = await cl.on('a', FLEET, ['status', '--node', 'c;reboot']);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toMatch(/^cert-agent-fleet: status: --node "c;reboot" is not a node name/);
    const none = await cl.on('a', FLEET, ['status', '--node', 'd']);
    expect([none.code, none.stderr]).toEqual([64, 'cert-agent-fleet: --node d: not a node of this cluster (nodes: a b c)\n']);
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

describe('pvesh answers are checked field by field', () => {
  /** A pvesh that prints `status` for /cluster/status and `resources` for /cluster/resources. */
  function pvesh(status: string, resources: string): void {
    writeFileSync(join(work, 'status.json'), status);
    writeFileSync(join(work, 'resources.json'), resources);
    writeFileSync(
      join(work, 'bin', 'pvesh'),
      `#!/bin/sh\ncase "$*" in *status*) cat '${work}/status.json' ;; *) cat '${work}/resources.json' ;; esac\n`,
      { mode: 0o755 },
    );
  }
  const node = (n: string, ip: string, local = 0) =>
    `{"id":"node/${n}","ip":"${ip}","local":${local},"name":"${n}","nodeid":1,"online":1,"type":"node"}`;
  const lxc = (id: string, n: string) => `{"id":"lxc/${id}","name":"x","node":"${n}","status":"running","type":"lxc","vmid":${id}}`;

  it('pretty-printed JSON as well as compact; qemu guests are no containers', async () => {
    writeFileSync(join(cl.dir, 'b', 'qemu'), '200\n');
    cl.place('b', 105, `name=tmpl\npid=\ntemplate=1\n`);
    cl.migrate(101, 'b', 'a');
    const r = await cl.on('a', FLEET, ['status']);
    expect(r.stdout.trimEnd().split('\n').slice(1).map((l) => l.split(/ +/).slice(0, 3).join(' '))).toEqual([
      '101 web a',
      '102 proxy c',
      '103 ca a',
      '105 tmpl b',
    ]);
    pvesh(`[\n  ${node('a', '10.0.0.1', 1)},\n  {\n "quorate" : 1, "type" : "cluster" }\n]\n`, `[\n ${lxc('101', 'a')}\n]\n`);
    const p = await cl.on('a', FLEET, ['status', '--json']);
    expect(p.code, p.stderr).toBe(0);
    expect(JSON.parse(p.stdout)).toMatchObject({ quorate: true, containers: [{ id: 101, node: 'a' }, { id: 103 }] });
  });

  it('an answer that is not an array of flat objects: this node alone, said, exit 3', async () => {
    for (const [status, why] of [
      ['not json', 'bad'],
      [`[${node('a', '10.0.0.1', 1)},{"type":"node","x":{"nested":1}}]`, 'bad'],
      [`[${node('a', '10.0.0.1', 1)}] trailing`, 'bad'],
      [`[{"type":"node","type":"cluster"}]`, 'bad'],
    ]) {
      pvesh(status!, `[${lxc('101', 'b')}]`);
      const r = await cl.on('a', FLEET, ['status']);
      expect(r.code, status).toBe(3);
      expect(r.stderr).toContain(`cert-agent-fleet: pvesh gave no usable answer (${why}): only this node's containers`);
      expect(r.stdout).toMatch(/^103 +ca +default +OK /m);
      expect(r.stdout).not.toMatch(/^101 /m);
    }
  });

  it('a node or guest with a field out of its pattern is left out; nothing of it reaches ssh or the output', async () => {
    pvesh(
      `[${node('a', '10.0.0.1', 1)},${node('b', '10.0.0.2;reboot')},${node('c;x', '10.0.0.3')},${node('c', '10.0.0.3')}]`,
      `[${lxc('101', 'b')},${lxc('0102', 'c')},{"id":"lxc/9","name":"\\u001b[2J","node":"c","status":"running","type":"lxc","vmid":9}]`,
    );
    const r = await cl.on('a', FLEET, ['status']);
    expect(r.stderr).toContain('pvesh /cluster/status: an entry with a field out of its pattern, left out');
    expect(sshLog()).not.toContain('10.0.0.2');
    expect(sshLog()).not.toContain('reboot');
    expect(r.stdout).not.toMatch(UNPRINTABLE);
    // c answers for itself (its own pct list); b is not a node any more, so 101 is nowhere.
    expect(r.stdout.trimEnd().split('\n').slice(1).map((l) => l.split(/ +/).slice(0, 3).join(' '))).toEqual([
      '102 proxy c',
      '103 ca a',
    ]);
    // A node left out makes the list incomplete: status counts it, repin refuses.
    expect(r.code).toBe(3);
    const repin = await cl.on('a', FLEET, ['repin', '--fingerprint', FP_OLD.replace(/a/g, 'c'), '--vouched-by', 't']);
    expect(repin.code).toBe(69);
    expect(calls(102)).not.toContain('enroll');
  });

  it("pvesh's stderr (a locale warning) is not its answer: every node's containers, exit 0", async () => {
    const real = resolve(import.meta.dirname, '../../harness/cluster/pvesh');
    writeFileSync(join(work, 'bin', 'pvesh'), `#!/bin/sh\necho 'perl: warning: Setting locale failed.' >&2\nexec '${real}' "$@"\n`, {
      mode: 0o755,
    });
    const r = await cl.on('a', FLEET, ['status']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trimEnd().split('\n').slice(1).map((l) => l.split(/ +/).slice(0, 3).join(' '))).toEqual([
      '101 web b',
      '102 proxy c',
      '103 ca a',
    ]);
  });

  it('a pvesh that does not answer in time or answers too much is no answer', async () => {
    writeFileSync(join(work, 'bin', 'pvesh'), '#!/bin/sh\nexec sleep 60\n', { mode: 0o755 });
    const slow = await cl.on('a', FLEET, ['status'], { env: { CERT_AGENT_FLEET_TIMEOUT: '1' } });
    expect(slow.code).toBe(3);
    expect(slow.stderr).toContain('pvesh gave no usable answer (exit no answer within 1s)');
    writeFileSync(join(work, 'bin', 'pvesh'), '#!/bin/sh\nprintf "[" ; exec yes "{},"\n', { mode: 0o755 });
    const big = await cl.on('a', FLEET, ['status']);
    expect(big.code).toBe(3);
    expect(big.stderr).toContain('pvesh gave no usable answer (exit answer longer than 8388608 bytes)');
  });
});

describe('re-pins across the nodes, the records in /etc/pve', () => {
  const env = { CERT_AGENT_FLEET_CA_WAIT: '0', CERT_AGENT_FLEET_ROOT_WAIT: '0' };
  const shared = (f: string) => join(cl.pve, 'cert-agent', f);
  const recreateCa = () => writeFileSync(join(work, 'root.pem'), roots[1]![0]);

  it('repin --from-ca on any node finds the CA on its node; the CA migrated keeps its recorded root', async () => {
    const r = await cl.on('c', FLEET, ['repin', '--from-ca', '103', '--vouched-by', 'test'], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^CA 103: root ${roots[0]![1]} \\(/etc/step-ca/certs/root_ca.crt, node a\\)$`, 'm'));
    expect(r.stdout).toMatch(/^101 web: ok \(pinned /m);
    expect(r.stdout).toMatch(/^102 proxy: ok \(pinned /m);
    expect([pin(101), pin(102), pin(103)]).toEqual([roots[0]![1], roots[0]![1], FP_OLD]);
    expect(readFileSync(shared('ca-103.fingerprint'), 'utf8').trim()).toBe(roots[0]![1]);
    expect(readFileSync(shared('repin.log'), 'utf8')).toMatch(/ CT 101 root a{64} -> [0-9a-f]{64} vouched by "test": ok\n/);
    cl.migrate(103, 'a', 'b');
    const hook = await cl.on('b', HOOK, ['103', 'post-start'], { env });
    expect(hook.stdout).toContain(`CA root unchanged (${roots[0]![1]})`);
    expect(hook.code).toBe(0);
    recreateCa();
    const again = await cl.on('b', HOOK, ['103', 'post-start'], { env });
    expect(again.code, again.stdout).toBe(0);
    expect(again.stdout).toContain(`CA root changed: ${roots[0]![1]} -> ${roots[1]![1]}`);
    expect([pin(101), pin(102)]).toEqual([roots[1]![1], roots[1]![1]]);
    expect(readFileSync(shared('ca-103.fingerprint'), 'utf8').trim()).toBe(roots[1]![1]);
  });

  it('a consumer on a node that is down is pending, shown, and re-pinned by repin --pending once it is back', async () => {
    expect((await cl.on('a', HOOK, ['103', 'post-start'], { env })).stdout).toContain('first run');
    recreateCa();
    cl.down('c', true);
    const hook = await cl.on('a', HOOK, ['103', 'post-start'], { env });
    expect(hook.code, hook.stdout).toBe(75);
    expect(hook.stdout).toMatch(/102 -: PENDING \(node c unreachable: offline in the cluster's status; recorded in .*\/pve\/cert-agent\/pending\/102\)/);
    expect(hook.stdout).toContain(`re-pinned every reachable consumer to ${roots[1]![1]}; pending (node unreachable): 102;`);
    expect([pin(101), pin(102)]).toEqual([roots[1]![1], FP_OLD]);
    expect(readFileSync(shared('ca-103.fingerprint'), 'utf8').trim()).toBe(roots[1]![1]);
    const st = await cl.on('b', FLEET, ['status', '--json']);
    expect(JSON.parse(st.stdout).pendingRepins).toMatchObject([{ id: 102, fingerprint: roots[1]![1], ca: 103, local: false }]);
    expect((await cl.on('b', FLEET, ['repin', '--pending'], { env })).code).toBe(75);
    cl.down('c', false);
    const done = await cl.on('b', FLEET, ['repin', '--pending'], { env });
    expect(done.code, done.stdout + done.stderr).toBe(0);
    expect(done.stdout).toMatch(/^102 proxy: ok \(pinned [0-9a-f]{64}\) \(pending since \S+, cluster\)$/m);
    expect(pin(102)).toBe(roots[1]![1]);
    expect(existsSync(shared('pending/102'))).toBe(false);
    expect((await cl.on('b', FLEET, ['repin', '--pending'], { env })).stdout).toBe('no re-pin pending\n');
  });

  it('pvesh with no usable answer: every repin mode refuses (exit 69), nothing re-pinned, recorded or dropped', async () => {
    mkdirSync(shared('pending'), { recursive: true });
    writeFileSync(shared('pending/102'), `${roots[1]![1]} 103 2026-01-01T00:00:00Z admin\n`);
    writeFileSync(join(work, 'bin', 'pvesh'), '#!/bin/sh\necho "ipcc_send_rec failed" >&2\nexit 255\n', { mode: 0o755 });
    const refusal = "cert-agent-fleet: repin: the cluster's list of containers is incomplete (pvesh, see above): nothing re-pinned, recorded or dropped\n";
    for (const args of [
      ['--pending'],
      ['--from-ca', '103', '--vouched-by', 't'],
      ['--from-ca', '103', '--print-root'],
      ['--fingerprint', roots[1]![1], '101'],
    ]) {
      const r = await cl.on('a', FLEET, ['repin', ...args], { env });
      expect(r.code, args.join(' ')).toBe(69);
      expect(r.stderr.endsWith(refusal), r.stderr).toBe(true);
      expect(r.stdout).toBe('');
    }
    expect(readFileSync(shared('pending/102'), 'utf8')).toContain(roots[1]![1]);
    expect(existsSync(shared('ca-103.fingerprint'))).toBe(false);
    expect(existsSync(shared('repin.log'))).toBe(false);
    expect([pin(101), pin(102), calls(101) + calls(102)]).toEqual([FP_OLD, FP_OLD, '']);
    // status shows what it can (this node's, the pending record), the exit code counting the rest.
    const st = await cl.on('a', FLEET, ['status']);
    expect(st.code).toBe(3);
    expect(st.stdout).toMatch(/^103 +ca +default +OK /m);
    expect(st.stdout).toMatch(/^pending re-pin: CT 102 /m);
    // The hook decides nothing then: no record, exit 1, the reason in its log.
    const hook = await cl.on('a', HOOK, ['103', 'post-start'], { env });
    expect(hook.code, hook.stdout).toBe(1);
    expect(hook.stdout).toContain("cannot read the cluster's containers now; nothing done");
    expect(existsSync(shared('ca-103.fingerprint'))).toBe(false);
  });

  it('an ID that is no container of the cluster: "no such container", exit 64, nothing run or re-pinned', async () => {
    for (const [args, what] of [
      [['--fingerprint', roots[1]![1], '101', '999'], '999'],
      [['--from-ca', '998'], '--from-ca 998'],
    ] as const) {
      const r = await cl.on('a', FLEET, ['repin', ...args, '--vouched-by', 't'], { env });
      expect([r.code, r.stderr]).toEqual([64, `cert-agent-fleet: repin: ${what}: no such container in the cluster; nothing re-pinned\n`]);
    }
    expect(sshLog()).not.toContain('HostKeyAlias= ');
    expect(calls(101)).not.toContain('enroll');
    expect(existsSync(shared('repin.log'))).toBe(false);
  });

  it('a /etc/pve without .members is no cluster file system (pmxcfs not mounted): records stay on the node', async () => {
    rmSync(join(cl.pve, '.members'));
    const r = await cl.on('a', FLEET, ['repin', '--fingerprint', roots[1]![1], '101', '--vouched-by', 't'], { env });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(join(cl.state('a'), 'repin.log'), 'utf8')).toMatch(/ CT 101 .*: ok\n$/);
    expect(existsSync(join(cl.pve, 'cert-agent'))).toBe(false);
  });

  it('a recorded fingerprint that cannot be read is an error, not a first run: the hook does nothing, exit 1', async () => {
    mkdirSync(shared('ca-103.fingerprint'), { recursive: true });
    const hook = await cl.on('a', HOOK, ['103', 'post-start'], { env });
    expect(hook.code, hook.stdout).toBe(1);
    expect(hook.stdout).toContain(`cannot read the recorded fingerprint ${shared('ca-103.fingerprint')}; nothing done`);
    expect(hook.stdout).not.toContain('first run');
    expect(existsSync(join(cl.state('a'), 'ca-103.fingerprint'))).toBe(false);
  });

  it('an audit past its limit is cut once, and every parallel re-pin keeps its line', async () => {
    for (const [i, n] of [104, 105, 106, 107, 108, 109].entries()) scripted((['a', 'b', 'c'] as const)[i % 3]!, n, `c${n}`);
    mkdirSync(shared(''), { recursive: true });
    const old = `${'2026-01-01T00:00:00Z CT 1 root - -> - vouched by "x": ok '.padEnd(99, '.')}\n`;
    writeFileSync(shared('repin.log'), old.repeat(8000));
    const r = await cl.on('a', FLEET, ['repin', '--fingerprint', roots[1]![1], '--vouched-by', 't'], {
      env: { ...env, CERT_AGENT_FLEET_PARALLEL: '8' },
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const audit = readFileSync(shared('repin.log'), 'utf8');
    const ours = audit.split('\n').filter((l) => / vouched by "t": ok$/.test(l));
    expect(ours.map((l) => l.split(' ')[2]).sort()).toEqual(['101', '102', '103', '104', '105', '106', '107', '108', '109']);
    expect(audit.length).toBeLessThanOrEqual(262144 + 2000);
    expect(audit.startsWith('2026-01-01T00:00:00Z CT 1 ')).toBe(true);
  });

  it("a node's copy kept without quorum and a different one in the cluster: the newer wins, and the output says so", async () => {
    const local = join(cl.state('a'), 'pending/102');
    const [fpL, fpC] = ['c'.repeat(64), 'd'.repeat(64)];
    mkdirSync(join(cl.state('a'), 'pending'), { recursive: true });
    mkdirSync(shared('pending'), { recursive: true });
    writeFileSync(local, `${fpL} 103 2026-01-01T00:00:00Z local\n`);
    writeFileSync(shared('pending/102'), `${fpC} 103 2026-01-02T00:00:00Z cluster\n`);
    utimesSync(local, 1_000_000, 1_000_000); // written long before the cluster's
    const older = await cl.on('a', FLEET, ['status', '--json']);
    expect(JSON.parse(older.stdout).pendingRepins).toMatchObject([{ id: 102, fingerprint: fpC, local: false }]);
    expect(older.stderr).toContain("pending/102: this node's copy differs from the cluster's and is older: the cluster's wins\n");
    utimesSync(local, 4_000_000_000, 4_000_000_000); // written after it
    const newer = await cl.on('a', FLEET, ['status', '--json']);
    expect(JSON.parse(newer.stdout).pendingRepins).toMatchObject([{ id: 102, fingerprint: fpL, local: true }]);
    expect(newer.stderr).toContain("pending/102: this node's copy differs from the cluster's and is newer: this node's wins\n");
    // The hook's recorded root: an older copy on this node does not undo the cluster's.
    rmSync(local);
    rmSync(shared('pending/102'));
    writeFileSync(shared('ca-103.fingerprint'), `${roots[0]![1]}\n`);
    writeFileSync(join(cl.state('a'), 'ca-103.fingerprint'), `${FP_OLD}\n`);
    utimesSync(join(cl.state('a'), 'ca-103.fingerprint'), 1_000_000, 1_000_000);
    const hook = await cl.on('a', HOOK, ['103', 'post-start'], { env });
    expect(hook.code, hook.stdout).toBe(0);
    expect(hook.stdout).toContain(`differs from the cluster's (${roots[0]![1]}) and is older: the cluster's wins, this node's removed`);
    expect(hook.stdout).toContain(`CA root unchanged (${roots[0]![1]})`);
    expect(existsSync(join(cl.state('a'), 'ca-103.fingerprint'))).toBe(false);
    expect(calls(101)).not.toContain('enroll');
  });

  it("the hook reads only fleet's stdout: a warning on its stderr is no answer", async () => {
    writeFileSync(join(work, 'fleet'), `#!/bin/sh\necho 'cert-agent-fleet: a warning' >&2\nexec dash '${FLEET}' "$@"\n`, { mode: 0o755 });
    const hook = await cl.on('a', HOOK, ['103', 'post-start'], { env: { ...env, CERT_AGENT_FLEET: join(work, 'fleet') } });
    expect(hook.code, hook.stdout).toBe(0);
    expect(hook.stdout).toContain(`recorded CA root ${roots[0]![1]} (first run`);
    expect(readFileSync(shared('ca-103.fingerprint'), 'utf8').trim()).toBe(roots[0]![1]);
  });

  it('a pending record that is not one is left out and said; repin --pending does not act on it', async () => {
    mkdirSync(shared('pending'), { recursive: true });
    writeFileSync(shared('pending/101'), `${'b'.repeat(64)} 103 2026-01-01T00:00:00Z \x1b[2J; reboot\n`);
    writeFileSync(shared('pending/0101'), `${'b'.repeat(64)} 103 2026-01-01T00:00:00Z admin\n`);
    const st = await cl.on('a', FLEET, ['status', '--json']);
    expect(st.stderr).toContain(`${shared('pending/101')}: not a pending re-pin (FINGERPRINT CA TIME VOUCHED-BY), left out`);
    expect(st.stderr).not.toMatch(UNPRINTABLE);
    expect(JSON.parse(st.stdout).pendingRepins).toEqual([]);
    const r = await cl.on('a', FLEET, ['repin', '--pending'], { env });
    expect([r.code, r.stdout]).toEqual([0, 'no re-pin pending\n']);
    expect(pin(101)).toBe(FP_OLD);
  });

  it('repin --fingerprint with a node down: pending without a CA, finished the same way', async () => {
    cl.down('c', true);
    const r = await cl.on('a', FLEET, ['repin', '--fingerprint', roots[1]![1], '--vouched-by', 'admin'], { env });
    expect(r.code, r.stdout + r.stderr).toBe(75);
    const st = await cl.on('a', FLEET, ['status', '--json']);
    expect(JSON.parse(st.stdout).pendingRepins).toMatchObject([{ id: 102, fingerprint: roots[1]![1], ca: null }]);
    expect((await cl.on('a', FLEET, ['status'])).stdout).toMatch(/^pending re-pin: CT 102 to [0-9a-f]{64} \(CA -, since /m);
    cl.down('c', false);
    const done = await cl.on('b', FLEET, ['repin', '--pending'], { env });
    expect(done.code, done.stdout + done.stderr).toBe(0);
    expect(pin(102)).toBe(roots[1]![1]);
    expect(readFileSync(shared('repin.log'), 'utf8')).toMatch(/CT 102 root a{64} -> [0-9a-f]{64} vouched by "admin": ok\n$/);
  });

  it('/etc/pve read-only (no quorum): the hook says so, keeps record, audit and pending on its node, and moves them up later', async () => {
    await cl.on('a', HOOK, ['103', 'post-start'], { env });
    recreateCa();
    cl.down('c', true);
    cl.quorum(false);
    const hook = await cl.on('a', HOOK, ['103', 'post-start'], { env, readOnly: true });
    expect(hook.code, hook.stdout).toBe(75);
    expect(hook.stdout).toContain(`this node only: the cluster file system is read-only`);
    expect(hook.stdout).toMatch(/cannot write .*\/pve\/cert-agent\/ca-103\.fingerprint \(the cluster file system is read-only: no quorum\?\)/);
    expect(hook.stdout).toContain('the audit went to');
    expect(readFileSync(shared('ca-103.fingerprint'), 'utf8').trim()).toBe(roots[0]![1]);
    expect(readFileSync(join(cl.state('a'), 'ca-103.fingerprint'), 'utf8').trim()).toBe(roots[1]![1]);
    expect(readFileSync(join(cl.state('a'), 'repin.log'), 'utf8')).toMatch(/CT 101 .*: ok\n/);
    const st = await cl.on('a', FLEET, ['status'], { readOnly: true });
    expect(st.stdout).toMatch(/^pending re-pin: CT 102 to [0-9a-f]{64} \(CA 103, since \S+; recorded on this node only\)/m);
    expect(st.stdout).toContain('the cluster has no quorum: /etc/pve is read-only');
    // Quorum and node c back: the next start of the CA moves the record up and finishes the re-pin.
    cl.quorum(true);
    cl.down('c', false);
    const later = await cl.on('a', HOOK, ['103', 'post-start'], { env });
    expect(later.code, later.stdout).toBe(0);
    expect(later.stdout).toContain(`CA root unchanged (${roots[1]![1]})`);
    expect(later.stdout).not.toMatch(/cannot|read-only/);
    expect(later.stdout).toMatch(/102 proxy: ok \(pinned [0-9a-f]{64}\) \(pending since \S+, cluster\)/);
    expect(readFileSync(shared('ca-103.fingerprint'), 'utf8').trim()).toBe(roots[1]![1]);
    expect(existsSync(join(cl.state('a'), 'ca-103.fingerprint'))).toBe(false);
    expect(existsSync(join(cl.state('a'), 'pending/102'))).toBe(false);
    expect(pin(102)).toBe(roots[1]![1]);
  });

  it('auto-repin=no in /etc/pve/cert-agent/ca-hook.conf holds on every node, whatever a node says', async () => {
    await cl.on('a', HOOK, ['103', 'post-start'], { env });
    writeFileSync(shared('ca-hook.conf'), 'auto-repin=no\n');
    mkdirSync(join(cl.dir, 'b', 'conf'));
    writeFileSync(join(cl.dir, 'b', 'conf', 'ca-hook.conf'), 'auto-repin=yes\n');
    cl.migrate(103, 'a', 'b');
    recreateCa();
    const hook = await cl.on('b', HOOK, ['103', 'post-start'], { env });
    expect(hook.code).toBe(1);
    expect(hook.stdout).toContain(`automatic re-pinning is off (auto-repin in ${shared('ca-hook.conf')})`);
    expect([pin(101), pin(102)]).toEqual([FP_OLD, FP_OLD]);
  });

  it('install reaches another node over ssh, with ID.env from the cluster file system', async () => {
    mkdirSync(join(cl.pve, 'cert-agent'), { recursive: true });
    writeFileSync(shared('102.env'), "CERT_AGENT_DOMAINS=proxy.internal\nCERT_AGENT_RELOAD=it's traefik\n");
    writeFileSync(join(work, 'cert-agent_9.9.9_all.deb'), 'package');
    writeFileSync(join(work, 'hook.sh'), 'hook');
    const r = await cl.on('a', FLEET, ['install', '102', '--deb', join(work, 'cert-agent_9.9.9_all.deb'), '--hook', join(work, 'hook.sh')]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('102: postinstall: installing on proxy');
    expect(readFileSync(join(work, 'pushed.102', 'cert-agent_9.9.9_all.deb'), 'utf8')).toBe('package');
    expect(readFileSync(join(work, 'pushed.102', 'cert-agent-postinstall.sh'), 'utf8')).toBe('hook');
    expect(calls(102)).toContain("CERT_AGENT_DOMAINS=proxy.internal CERT_AGENT_RELOAD=it's traefik CERT_AGENT_DEB=/root/cert-agent_9.9.9_all.deb sh /root/cert-agent-postinstall.sh");
  });
});
