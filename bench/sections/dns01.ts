/**
 * Issuance over dns-01 as whole processes: `cert-agent renew --force` of an
 * agent enrolled with `challenge.mode: dns` and `renewal.method: acme` (so
 * every run orders), against `lego renew` with lego's rfc2136 provider, for
 * one name and its wildcard. Both update the same bind9 (started here on
 * 127.0.0.1 and a free port, one TSIG key per tool, `zonesub TXT`) and get
 * their certificates from the same step-ca, started here to resolve through
 * that bind9. Every timed run must leave a new certificate for both names
 * and no TXT record behind (asked without recursion). Extra runs of the
 * agent at info level split its time at its own log lines, the wait for the
 * record apart from the rest.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBind9, type Bind9 } from '../../test/harness/bind9.js';
import { startStepCa, type StepCa } from '../../test/harness/stepca.js';
import { enroll } from '../lib/agent.js';
import { cleanEnv, lastLines, run, timed, type Timed } from '../lib/proc.js';
import { shuffled } from '../lib/stats.js';
import { DNS01_MARKS, recordTimes, splitAgentRun, type AgentSplit, type RecordTimes } from './dns01-marks.js';

const ZONE = 'dns.internal';
const NAME = `bench.${ZONE}`;
export const DNS01_NAMES = [NAME, `*.${NAME}`];
const RECORD = `_acme-challenge.${NAME}`;

/** One value per successful timed run. */
export interface Dns01Runs {
  wallMs: number[];
  cpuMs: number[];
  rssKb: number[];
}

export type Dns01ToolKey = 'agent' | 'lego-nowait' | 'lego-poll' | 'lego-defaults';

export interface Dns01Tool {
  key: Dns01ToolKey;
  name: string;
  /** its propagation settings, in words */
  how: string;
  runs: Dns01Runs;
  /** Each record of its timed runs as bind9 logged it. */
  records: RecordTimes[];
}

export interface Dns01Result {
  rounds: number;
  names: string[];
  tools: Dns01Tool[];
  /** Extra runs of the agent logging at info level, with marks preloaded. */
  phases: AgentSplit[];
  failures: string[];
}

export interface Dns01Context {
  agentBin: string;
  baseDir: string;
  rounds: number;
  lego: boolean;
  /** Runs of lego with all its rfc2136 defaults (a fixed minute between the two names): 0 for none. */
  legoDefaultRuns: number;
}

interface Job {
  tool: Dns01Tool;
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  certFile: string;
}

interface Setup {
  bind: Bind9;
  ca: StepCa;
  rootFile: string;
  secrets: Record<'agent' | 'lego', string>;
}

export async function dns01Section(ctx: Dns01Context): Promise<Dns01Result> {
  mkdirSync(ctx.baseDir, { recursive: true, mode: 0o755 });
  const keys = { agent: tsigKeygen('bench-agent'), lego: tsigKeygen('bench-lego') };
  const bind = await startBind9({
    querylog: true,
    keys: [
      { name: 'bench-agent', algorithm: 'hmac-sha256', secret: keys.agent.secret },
      { name: 'bench-lego', algorithm: 'hmac-sha256', secret: keys.lego.secret },
    ],
    zones: [
      {
        name: ZONE,
        records: [`bench 60 IN A 192.0.2.1`],
        updatePolicy: ['grant bench-agent zonesub TXT', 'grant bench-lego zonesub TXT'],
      },
    ],
  });
  let ca: StepCa | undefined;
  try {
    ca = await startStepCa({ certDuration: '24h', resolver: `${bind.address.host}:${bind.address.port}` });
    const rootFile = join(ctx.baseDir, 'root.pem');
    writeFileSync(rootFile, ca.rootPem);
    const agentKeyFile = join(ctx.baseDir, 'bench-agent.key');
    writeFileSync(agentKeyFile, keys.agent.clause, { mode: 0o600 });
    const setup: Setup = { bind, ca, rootFile, secrets: { agent: agentKeyFile, lego: keys.lego.secret } };
    return await measure(ctx, setup);
  } finally {
    await ca?.cleanup();
    await bind.stop();
  }
}

async function measure(ctx: Dns01Context, s: Setup): Promise<Dns01Result> {
  const agent = await agentJob(ctx, s);
  const legos = ctx.lego ? await legoJobs(ctx, s) : [];
  const jobs = [agent, ...legos.filter((j) => j.tool.key !== 'lego-defaults')];
  const result: Dns01Result = { rounds: ctx.rounds, names: DNS01_NAMES, tools: [], phases: [], failures: [] };
  result.tools = [...jobs, ...legos.filter((j) => j.tool.key === 'lego-defaults')].map((j) => j.tool);
  // One untimed round first: every set-up is proven before anything is timed.
  for (let round = -1; round < ctx.rounds; round++) {
    for (const job of shuffled(jobs)) {
      const label = round < 0 ? 'warm-up round' : `round ${round + 1}`;
      const logFrom = s.bind.log().length;
      const t = await runJob(s, job, label, result.failures);
      if (t && round >= 0) record(job, t, recordTimes(s.bind.log().slice(logFrom), RECORD));
    }
  }
  const preload = join(ctx.baseDir, 'dns01-marks.cjs');
  writeFileSync(preload, DNS01_MARKS);
  const marked = {
    ...agent,
    argv: [agent.argv[0]!, '--require', preload, ...agent.argv.slice(1)],
    env: cleanEnv({ CERT_AGENT_LOG_LEVEL: 'info' }),
  };
  for (let i = 0; i < Math.max(3, Math.ceil(ctx.rounds / 2)); i++) {
    const spawnedAt = Date.now();
    const t = await runJob(s, marked, `phases run ${i + 1}`, result.failures);
    if (t) result.phases.push(splitAgentRun(t.stderr, spawnedAt, t.wallMs));
  }
  const defaults = legos.find((j) => j.tool.key === 'lego-defaults');
  for (let i = 0; defaults && i < ctx.legoDefaultRuns; i++) {
    const logFrom = s.bind.log().length;
    const t = await runJob(s, defaults, `run ${i + 1}`, result.failures);
    if (t) record(defaults, t, recordTimes(s.bind.log().slice(logFrom), RECORD));
  }
  return result;
}

function record(job: Job, t: Timed, records: RecordTimes[]): void {
  job.tool.runs.wallMs.push(t.wallMs);
  job.tool.runs.cpuMs.push(t.cpuMs);
  job.tool.runs.rssKb.push(t.maxRssKb);
  job.tool.records.push(...records);
}

/** Runs one job and checks what it left; undefined (and a failure noted) when the run does not count. */
async function runJob(s: Setup, job: Job, label: string, failures: string[]): Promise<Timed | undefined> {
  const before = serialOf(job.certFile);
  const t = await timed(job.argv, { env: job.env, cwd: job.cwd, timeoutMs: 300_000 });
  const problem = t.code !== 0 ? `exit ${t.code}: ${lastLines(t)}` : await leftBehind(s, job.certFile, before);
  if (!problem) return t;
  failures.push(`${job.tool.name}, ${label}: ${problem}`);
  return undefined;
}

/** What is wrong with what a run left: an old certificate, other names, a TXT record; undefined when nothing. */
async function leftBehind(s: Setup, certFile: string, before: string | undefined): Promise<string | undefined> {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(readFileSync(certFile));
  } catch {
    return `no certificate at ${certFile}`;
  }
  if (cert.serialNumber === before) return 'the certificate was not replaced';
  const names = (cert.subjectAltName ?? '')
    .split(', ')
    .map((n) => n.replace(/^DNS:/, ''))
    .sort();
  if (names.join(',') !== [...DNS01_NAMES].sort().join(','))
    return `the certificate names ${names.join(', ')}, not ${DNS01_NAMES.join(', ')}`;
  const dig = await s.bind.dig(['+norec', '+short', RECORD, 'TXT']);
  if (dig.code !== 0) return `dig failed: ${dig.stderr.trim()}`;
  if (dig.stdout.trim()) return `TXT records left at ${RECORD}: ${dig.stdout.trim().split('\n').join(' ')}`;
  return undefined;
}

function serialOf(file: string): string | undefined {
  try {
    return new X509Certificate(readFileSync(file)).serialNumber;
  } catch {
    return undefined;
  }
}

const runs = (): Dns01Runs => ({ wallMs: [], cpuMs: [], rssKb: [] });

/** `tsig-keygen` as an operator runs it on the DNS server: the key clause, and its secret. */
function tsigKeygen(name: string): { clause: string; secret: string } {
  const clause = execFileSync('tsig-keygen', ['-a', 'hmac-sha256', name], { encoding: 'utf8' });
  const secret = /secret "([^"]+)"/.exec(clause)?.[1];
  if (!secret) throw new Error(`tsig-keygen printed no secret: ${clause}`);
  return { clause, secret };
}

/** An agent over dns-01 whose first certificate is issued (`renew`), then timed with `renew --force`. */
async function agentJob(ctx: Dns01Context, s: Setup): Promise<Job> {
  const server = `${s.bind.address.host}:${s.bind.address.port}`;
  const a = await enroll(ctx.agentBin, join(ctx.baseDir, 'agent'), {
    caUrl: s.ca.url,
    fingerprint: s.ca.rootFingerprint,
    domain: DNS01_NAMES[0]!,
    moreDomains: DNS01_NAMES.slice(1),
    renewalMethod: 'acme',
    dns: { server, tsigName: 'bench-agent', tsigAlgorithm: 'hmac-sha256', tsigSecretFile: s.secrets.agent },
  });
  const first = await run([process.execPath, ctx.agentBin, 'renew', '--config', a.config], {
    env: cleanEnv(),
    cwd: a.dir,
  });
  if (first.code !== 0)
    throw new Error(`first issuance of the dns-01 agent failed (${first.code}): ${lastLines(first)}`);
  return {
    tool: {
      key: 'agent',
      name: 'cert-agent renew --force',
      how: 'checks every authoritative server at once, then after 100, 250, 500 ms …',
      runs: runs(),
      records: [],
    },
    argv: [process.execPath, ctx.agentBin, 'renew', '--force', '--config', a.config],
    env: cleanEnv(),
    cwd: a.dir,
    certFile: join(a.certDir, 'cert.pem'),
  };
}

/**
 * `lego renew --days 9999` (forced: a new order and a new key, lego's
 * default) with the account and certificate of a first `lego run`, three
 * ways: with no fixed waits, with the provider's default 2 s before each
 * name's first check, and with all its defaults (a minute between names).
 */
async function legoJobs(ctx: Dns01Context, s: Setup): Promise<Job[]> {
  const dir = join(ctx.baseDir, 'lego');
  mkdirSync(dir, { recursive: true });
  const resolver = `${s.bind.address.host}:${s.bind.address.port}`;
  const base = [
    'lego',
    '--server',
    s.ca.directoryUrl,
    '--email',
    'bench@example.org',
    '--accept-tos',
    ...DNS01_NAMES.flatMap((d) => ['--domains', d]),
    '--dns',
    'rfc2136',
    // Zone lookups and the propagation check through this bind9. lego's full
    // check asks each NS name on port 53 through the system resolver, which
    // knows neither the name nor this port: it only asks the resolver here.
    '--dns.resolvers',
    resolver,
    '--dns.disable-cp',
    '--key-type',
    'ec256',
    '--path',
    dir,
  ];
  const env = (extra: Record<string, string>) =>
    cleanEnv({
      LEGO_CA_CERTIFICATES: s.rootFile,
      RFC2136_NAMESERVER: resolver,
      RFC2136_TSIG_KEY: 'bench-lego',
      RFC2136_TSIG_SECRET: s.secrets.lego,
      RFC2136_TSIG_ALGORITHM: 'hmac-sha256.',
      ...extra,
    });
  const noWait = env({ RFC2136_POLLING_INTERVAL: '0', RFC2136_SEQUENCE_INTERVAL: '0' });
  const r = await run([...base, 'run'], { env: noWait, cwd: dir }, 300_000);
  if (r.code !== 0) throw new Error(`lego run (first issuance over dns-01) failed (${r.code}): ${lastLines(r)}`);
  // Without a terminal lego first sleeps up to 8 minutes at random, to spread a fleet's cron jobs.
  const argv = [...base, 'renew', '--days', '9999', '--no-random-sleep'];
  const certFile = join(dir, 'certificates', `${NAME}.crt`);
  const job = (key: Dns01ToolKey, name: string, how: string, e: Record<string, string>): Job => ({
    tool: { key, name, how, runs: runs(), records: [] },
    argv,
    env: e,
    cwd: dir,
    certFile,
  });
  return [
    job('lego-nowait', 'lego renew, no fixed waits', 'RFC2136_POLLING_INTERVAL=0, RFC2136_SEQUENCE_INTERVAL=0', noWait),
    job(
      'lego-poll',
      'lego renew, default polling interval',
      'RFC2136_SEQUENCE_INTERVAL=0; 2 s before each name’s first check (the default)',
      env({ RFC2136_SEQUENCE_INTERVAL: '0' }),
    ),
    job(
      'lego-defaults',
      'lego renew, rfc2136 defaults',
      '2 s before each name’s first check, 60 s between the two names (the defaults)',
      env({}),
    ),
  ];
}
