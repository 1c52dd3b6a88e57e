/**
 * The dns-01 site of the integration tests (test/integration/dns01*.test.ts):
 * Debian's bind9 authoritative for dns.internal in a network namespace of its
 * own (port 53), with one TSIG key per container made by `tsig-keygen` and an
 * update-policy that lets each key change only its own container's
 * `_acme-challenge` name; a second bind9 as the site's resolver (authoritative
 * for outside.test, forwarding the rest to the primary); step-ca 0.30 in
 * another namespace resolving through the primary (`--resolver`); two agent
 * "containers" (a, b). The names resolve to an address nobody has, so http-01
 * could never prove them. One site per test file (files run one at a time).
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBind9, type Bind9 } from '../harness/bind9.js';
import { createTopology, type Topology } from '../harness/netns.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { parseLog } from '../harness/json-log.js';
import { agentBundle, tempDir } from './agent.js';

export const SUBNET = '10.213.27';
export const ZONE = 'dns.internal';
export const DNS = `${SUBNET}.53`;
export const RESOLVER = `${SUBNET}.54`;
export const CA_NAME = 'ca.dns.internal';
/** Where the names point: an address no host of the topology has. */
export const ELSEWHERE = `${SUBNET}.99`;
export const A_NAMES = [`app.${ZONE}`, `*.app.${ZONE}`];
export const B_NAMES = [`grafana.${ZONE}`];
export const RECORD_A = `_acme-challenge.app.${ZONE}`;
export const RECORD_B = `_acme-challenge.grafana.${ZONE}`;

export let topo: Topology;
export let bind: Bind9;
/** The site's resolver: authoritative for outside.test, forwarding everything else to the primary. */
let resolver: Bind9;
export let ca: StepCa;
export let root: string;
export const secrets: Record<string, string> = {};

export interface Agent {
  key: 'a' | 'b';
  dir: string;
  config: string;
  certDir: string;
  stateDir: string;
}
export const agents: Record<'a' | 'b', Agent> = {} as Record<'a' | 'b', Agent>;

/** `tsig-keygen` as an operator runs it on the DNS server: the key clause, and its secret for bind9's own config. */
function tsigKeygen(name: string, algorithm: string): { clause: string; secret: string } {
  const clause = execFileSync('tsig-keygen', ['-a', algorithm, name], { encoding: 'utf8' });
  const secret = /secret "([^"]+)"/.exec(clause)?.[1];
  if (!secret) throw new Error(`tsig-keygen printed no secret: ${clause}`);
  return { clause, secret };
}

function newAgent(key: 'a' | 'b'): Agent {
  const dir = join(root, key);
  const a = {
    key,
    dir,
    config: join(dir, 'config.yaml'),
    certDir: join(dir, 'tls'),
    stateDir: join(dir, 'state'),
  };
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  return a;
}

interface DnsOverrides {
  names?: string[];
  tsig?: Record<string, unknown>;
  server?: string;
  propagationTimeout?: number;
  command?: string[];
  caUrl?: string;
  stateDir?: string;
  certDir?: string;
}

export function writeConfig(agent: Agent, o: DnsOverrides = {}): void {
  const dns = o.command
    ? { server: o.server ?? `${DNS}:53`, command: o.command }
    : { server: o.server ?? `${DNS}:53`, tsig: o.tsig ?? tsigOf(agent.key) };
  const doc = {
    ca: { url: o.caUrl ?? ca.url, fingerprint: ca.rootFingerprint },
    certificate: { domains: o.names ?? (agent.key === 'a' ? A_NAMES : B_NAMES), dir: o.certDir ?? agent.certDir },
    challenge: {
      mode: 'dns',
      dns: { ...dns, ...(o.propagationTimeout ? { propagationTimeout: o.propagationTimeout } : {}) },
    },
    renewal: { method: 'acme' },
    stateDir: o.stateDir ?? agent.stateDir,
  };
  writeFileSync(agent.config, JSON.stringify(doc, null, 2), { mode: 0o600 });
}

export function tsigOf(key: 'a' | 'b') {
  return key === 'a'
    ? { name: 'ct-a', algorithm: 'hmac-sha256', secretFile: join(agents.a.dir, 'tsig.secret') }
    : { name: 'ct-b', algorithm: 'hmac-sha512', secretFile: join(agents.b.dir, 'tsig.secret') };
}

export const env = () => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: root, CERT_AGENT_LOG_LEVEL: 'info' });

export async function agent(a: Agent, args: string[]) {
  const r = await topo.exec(a.key, [process.execPath, agentBundle(), ...args, '--config', a.config], {
    env: env(),
  });
  const lines = r.stderr.split('\n').filter((l) => l && !l.startsWith('{'));
  return { ...r, lines, events: parseLog(r.stderr) };
}

/** The TXT values the primary answers at `name`, asked without recursion. */
export async function txt(name: string): Promise<string[]> {
  const r = await bind.dig(['+norec', '+short', name, 'TXT']);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.replace(/"/g, ''));
}

export const namesOf = (certDir: string) =>
  (new X509Certificate(readFileSync(join(certDir, 'cert.pem'))).subjectAltName ?? '')
    .split(', ')
    .map((n) => n.replace(/^DNS:/, ''))
    .sort();
export const serialOf = (certDir: string) =>
  new X509Certificate(readFileSync(join(certDir, 'cert.pem'))).serialNumber.toLowerCase();

/** The site: topology, bind9 (primary and resolver), step-ca, the agents' directories and keys. */
export async function startDnsSite(): Promise<void> {
  topo = createTopology(
    [
      { key: 'ca', octet: 10, names: [CA_NAME] },
      { key: 'dns', octet: 53 },
      { key: 'a', octet: 11 },
      { key: 'b', octet: 12 },
      { key: 'res', octet: 54 },
    ],
    SUBNET,
  );
  root = tempDir('cert-agent-dns01-');
  agents.a = newAgent('a');
  agents.b = newAgent('b');
  const a = tsigKeygen('ct-a', 'hmac-sha256');
  const b = tsigKeygen('ct-b', 'hmac-sha512');
  const admin = tsigKeygen('test-admin', 'hmac-sha256');
  secrets.admin = admin.secret;
  // a's file is the key clause as tsig-keygen printed it; b's the base64 secret alone.
  writeFileSync(join(agents.a.dir, 'tsig.secret'), a.clause, { mode: 0o600 });
  writeFileSync(join(agents.b.dir, 'tsig.secret'), `${b.secret}\n`, { mode: 0o600 });
  bind = await startBind9({
    ns: topo.host('dns').ns,
    host: DNS,
    port: 53,
    keys: [
      { name: 'ct-a', algorithm: 'hmac-sha256', secret: a.secret },
      { name: 'ct-b', algorithm: 'hmac-sha512', secret: b.secret },
      { name: 'test-admin', algorithm: 'hmac-sha256', secret: admin.secret },
    ],
    zones: [
      {
        name: ZONE,
        records: [`app 60 IN A ${ELSEWHERE}`, `grafana 60 IN A ${ELSEWHERE}`],
        updatePolicy: [
          `grant ct-a name ${RECORD_A}. TXT`,
          `grant ct-b name ${RECORD_B}. TXT`,
          'grant test-admin zonesub ANY',
        ],
      },
    ],
  });
  resolver = await startBind9({
    ns: topo.host('res').ns,
    host: RESOLVER,
    port: 53,
    zones: [{ name: 'outside.test', records: [`ns 60 IN A ${DNS}`] }],
    forwardTo: DNS,
  });
  const host = topo.host('ca');
  ca = await startStepCa({
    netns: { ns: host.ns, address: host.address, port: 443, dnsNames: [CA_NAME] },
    resolver: `${DNS}:53`,
  });
}

export async function stopDnsSite(): Promise<void> {
  await ca?.cleanup();
  await bind?.stop();
  await resolver?.stop();
  await topo?.cleanup();
}

/** The test's own change to the zone, signed with its admin key (nsupdate, bind9's client). */
export async function nsupdate(lines: string[]): Promise<void> {
  const script = [`server ${DNS} 53`, `zone ${ZONE}`, ...lines, 'send', ''].join('\n');
  const r = await topo.exec('a', ['nsupdate', '-y', `hmac-sha256:test-admin:${secrets.admin}`], { input: script });
  if (r.code !== 0) throw new Error(`nsupdate failed: ${r.stderr}`);
}
