/**
 * Renewal over step-ca's own API against ACME renewal, as whole processes
 * against one local step-ca. Each round runs, in a random order:
 * `cert-agent renew --force` of an agent with `renewal.method: auto` (its
 * certificate first issued over ACME, so it renews by `POST /1.0/rekey`),
 * the same of an agent with `renewal.method: acme`, `lego renew` with its
 * account and certificate already there, and `step ca renew` / `step ca
 * rekey` of a certificate step got over ACME. Every run must leave a new
 * certificate (a new key, but for `step ca renew`); every run of the rekey
 * agent must have gone by the API — its state file, its log and step-ca's
 * own request log say so — or the section fails. Extra runs of that agent
 * at info level give its phases from its own log lines.
 */
import { X509Certificate } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { StepCa } from '../../test/harness/stepca.js';
import { parseLog } from '../../test/harness/json-log.js';
import { enroll, type AgentDirs } from '../lib/agent.js';
import { cleanEnv, lastLines, run, sleep, timed, type Timed } from '../lib/proc.js';
import { shuffled } from '../lib/stats.js';
import { legoRun, type OneShotContext } from './oneshot.js';

/** One value per successful timed run. */
export interface RekeyRuns {
  wallMs: number[];
  cpuMs: number[];
  rssKb: number[];
}

export type RekeyToolKey = 'agent-step' | 'agent-acme' | 'lego' | 'step-renew' | 'step-rekey';

export interface RekeyTool {
  key: RekeyToolKey;
  name: string;
  /** how it renews: the protocol and whether the key is new */
  how: string;
  runs: RekeyRuns;
}

/** One extra run of the rekey agent at info level: its log events against the parent's clock. */
export interface RekeyMarks {
  /** [event, ms since spawn], first occurrence of each, in log order */
  marks: [string, number][];
  /** spawn → exit, ms */
  exitMs: number;
  /** step-ca's own time on `/1.0/rekey` in this run (the duration its request log gives), ms */
  caMs: number;
}

export interface RekeyResult {
  rounds: number;
  tools: RekeyTool[];
  phases: RekeyMarks[];
  /**
   * Node's TLS context for the request, timed apart in a bare `node` (clean
   * environment, as the agent runs) with the agent's files, ms per run: with
   * the pinned root as `ca` and the client certificate, with the client
   * certificate only, and empty.
   */
  tlsContextMs?: Record<TlsContextKind, number[]>;
  failures: string[];
}

export type TlsContextKind = 'caAndCert' | 'cert' | 'empty';

export interface RekeyContext extends OneShotContext {
  lego: boolean;
}

interface Job {
  tool: RekeyTool;
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  certFile: string;
  /** A good run leaves a certificate for a new key (every tool but `step ca renew`). */
  newKey: boolean;
  /** What the files cannot show (how the agent renewed); a problem in words, or undefined. */
  verify?(t: Timed, spawnedAt: number, caOffset: number): Promise<string | undefined>;
  /** A failed run fails the section: the agent that must renew by the API. */
  strict: boolean;
}

export async function rekeySection(ctx: RekeyContext): Promise<RekeyResult> {
  const jobs = await prepare(ctx);
  const result: RekeyResult = {
    rounds: ctx.rounds,
    tools: jobs.map((j) => j.tool),
    phases: [],
    tlsContextMs: { caAndCert: [], cert: [], empty: [] },
    failures: [],
  };
  // One untimed round first: every set-up is proven before anything is timed.
  for (let round = -1; round < ctx.rounds; round++) {
    for (const job of shuffled(jobs)) {
      const label = round < 0 ? 'warm-up round' : `round ${round + 1}`;
      const t = (await runJob(ctx, job, label, result.failures))?.t;
      if (t && round >= 0) {
        job.tool.runs.wallMs.push(t.wallMs);
        job.tool.runs.cpuMs.push(t.cpuMs);
        job.tool.runs.rssKb.push(t.maxRssKb);
      }
    }
  }
  const agent = jobs.find((j) => j.tool.key === 'agent-step')!;
  const env = cleanEnv({ CERT_AGENT_LOG_LEVEL: 'info' });
  const preload = join(ctx.baseDir, 'rekey-marks.cjs');
  writeFileSync(preload, REKEY_MARKS);
  const argv = [agent.argv[0]!, '--require', preload, ...agent.argv.slice(1)];
  for (let i = 0; i < Math.max(3, ctx.rounds); i++) {
    const done = await runJob(ctx, { ...agent, argv, env }, `phases run ${i + 1}`, result.failures);
    if (!done) continue;
    const { t, spawnedAt, offset } = done;
    const marks = new Map<string, number>();
    for (const l of parseLog(t.stderr)) {
      if (l.event && l.event !== 'unparsed' && !marks.has(l.event)) marks.set(l.event, Date.parse(l.time) - spawnedAt);
    }
    const caMs = caRequests(ctx.ca, offset)
      .filter((x) => REKEY_PATH.test(x.path))
      .reduce((sum, x) => sum + x.ms, 0);
    result.phases.push({ marks: [...marks], exitMs: t.wallMs, caMs });
  }
  await tlsContexts(ctx, dirname(agent.certFile), result);
  return result;
}

/**
 * Preloaded (`node --require`) in the extra runs only: two more marks in the
 * agent's log shape from Node's own HTTP client diagnostics channels, when
 * the rekey request is sent (Node 20 publishes it once the request is ended:
 * its TLS context built, the connection begun) and when the answer's headers
 * arrive, so the exchange can be told from the checks and install.
 */
const REKEY_MARKS = `const dc = require('node:diagnostics_channel');
for (const [name, event] of [['http.client.request.start', 'rekey_request'], ['http.client.response.finish', 'rekey_answer']])
  dc.subscribe(name, ({ request }) => {
    if (/\\/rekey$/.test(request.path))
      process.stderr.write(JSON.stringify({ time: new Date().toISOString(), event, path: request.path }) + '\\n');
  });
`;

/** Times `tls.createSecureContext` in a bare Node with the rekey agent's root, certificate chain and key. */
async function tlsContexts(ctx: RekeyContext, certDir: string, result: RekeyResult): Promise<void> {
  const script = join(ctx.baseDir, 'tls-context.cjs');
  writeFileSync(script, TLS_CONTEXT);
  const files = [ctx.rootFile, join(certDir, 'fullchain.pem'), join(certDir, 'key.pem')];
  for (let i = 0; i < Math.max(3, ctx.rounds); i++) {
    for (const kind of ['caAndCert', 'cert', 'empty'] as const) {
      const r = await run([process.execPath, script, kind, ...files], { env: cleanEnv() });
      if (r.code === 0) result.tlsContextMs![kind].push(Number(r.stdout));
      else result.failures.push(`TLS context, run ${i + 1}: exit ${r.code}: ${lastLines(r)}`);
    }
  }
}

const TLS_CONTEXT = `const { readFileSync } = require('node:fs');
const tls = require('node:tls');
const [kind, ca, cert, key] = process.argv.slice(2);
const opts = kind === 'empty' ? {} : { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
if (kind === 'caAndCert') opts.ca = [readFileSync(ca, 'utf8')];
const started = performance.now();
tls.createSecureContext(opts);
process.stdout.write(String(performance.now() - started));
`;

/** Runs one job and checks what it left; undefined (and a failure noted) when the run does not count. */
async function runJob(
  ctx: RekeyContext,
  job: Job,
  label: string,
  failures: string[],
): Promise<{ t: Timed; spawnedAt: number; offset: number } | undefined> {
  const before = certOf(job.certFile);
  const offset = caLogSize(ctx.ca);
  const spawnedAt = Date.now();
  const t = await timed(job.argv, { env: job.env, cwd: job.cwd });
  let problem: string | undefined;
  if (t.code !== 0) problem = `exit ${t.code}: ${lastLines(t)}`;
  else {
    const after = certOf(job.certFile);
    if (!after) problem = `no certificate at ${job.certFile}`;
    else if (before && after.serialNumber === before.serialNumber) problem = 'the certificate was not replaced';
    else if (before && job.newKey && after.publicKey.equals(before.publicKey))
      problem = 'the new certificate kept the key';
    else if (before && !job.newKey && !after.publicKey.equals(before.publicKey)) problem = 'the key changed';
    else problem = await job.verify?.(t, spawnedAt, offset);
  }
  if (!problem) return { t, spawnedAt, offset };
  const line = `${job.tool.name}, ${label}: ${problem}`;
  if (job.strict) throw new Error(`${line} — every timed run of this agent must renew by the step-ca API`);
  failures.push(line);
  return undefined;
}

async function prepare(ctx: RekeyContext): Promise<Job[]> {
  const jobs: Job[] = [await agentJob(ctx, 'auto'), await agentJob(ctx, 'acme')];
  if (ctx.lego) jobs.push(await legoJob(ctx));
  if (ctx.stepBin) jobs.push(await stepJob(ctx, ctx.stepBin, 'renew'), await stepJob(ctx, ctx.stepBin, 'rekey'));
  return jobs;
}

const runs = (): RekeyRuns => ({ wallMs: [], cpuMs: [], rssKb: [] });

/** An agent whose certificate is first issued over ACME (`renew`), then timed with `renew --force`. */
async function agentJob(ctx: RekeyContext, method: 'auto' | 'acme'): Promise<Job> {
  const a = await enroll(ctx.agentBin, join(ctx.baseDir, `agent-${method}`), {
    caUrl: ctx.ca.url,
    fingerprint: ctx.ca.rootFingerprint,
    domain: 'localhost',
    listen: `127.0.0.1:${ctx.ca.acmeHttpPort}`,
    extraYaml: `renewal:\n  method: ${method}\n`,
  });
  const first = await run([process.execPath, ctx.agentBin, 'renew', '--config', a.config], {
    env: cleanEnv(),
    cwd: a.dir,
  });
  if (first.code !== 0)
    throw new Error(`first issuance of the ${method} agent failed (${first.code}): ${lastLines(first)}`);
  const step = method === 'auto';
  return {
    tool: {
      key: step ? 'agent-step' : 'agent-acme',
      name: `cert-agent renew --force, method ${method}`,
      how: step ? 'step-ca API: POST /1.0/rekey over mTLS, new key' : 'ACME http-01, new key',
      runs: runs(),
    },
    argv: [process.execPath, ctx.agentBin, 'renew', '--force', '--config', a.config],
    env: cleanEnv(),
    cwd: a.dir,
    certFile: join(a.certDir, 'cert.pem'),
    newKey: true,
    strict: step,
    verify: (t, spawnedAt, offset) => agentWent(ctx.ca, a, step ? 'step' : 'acme', t, spawnedAt, offset),
  };
}

/**
 * How the agent renewed, from three witnesses: its state file (`lastRenewal`
 * of this run, no fallback), its log (no `renewal_fallback`; at info level,
 * `certificate_installed` with that method) and step-ca's
 * request log (a `/1.0/rekey` answered and no ACME order, or the other way
 * round).
 */
async function agentWent(
  ca: StepCa,
  a: AgentDirs,
  method: 'step' | 'acme',
  t: Timed,
  spawnedAt: number,
  offset: number,
): Promise<string | undefined> {
  const lines = parseLog(t.stderr);
  const fallback = lines.find((l) => l.event === 'renewal_fallback');
  if (fallback) return `fell back to ACME: ${JSON.stringify(fallback.reason ?? fallback)}`;
  // At info level (the extra runs) the log also says how the set it installed came.
  const installed = lines.find((l) => l.event === 'certificate_installed');
  if (installed && installed.method !== method) return `its log says it installed by ${String(installed.method)}`;
  const state = readJson(join(a.stateDir, 'state.json')) as {
    lastRenewal?: { method?: string; at?: string; fallback?: string };
  };
  const last = state?.lastRenewal;
  if (!last) return 'its state file has no lastRenewal';
  if (last.method !== method) return `its state file says it renewed by ${String(last.method)}, not ${method}`;
  if (last.fallback) return `its state file records a fallback: ${last.fallback}`;
  if (!(Date.parse(last.at ?? '') >= spawnedAt - 1000))
    return `its state file's lastRenewal (${String(last.at)}) is older than this run`;
  // step-ca writes a request's log line as it answers; the client may exit first.
  for (let tries = 0; ; tries++) {
    const reqs = caRequests(ca, offset);
    const rekeys = reqs.filter((x) => REKEY_PATH.test(x.path) && x.status < 300).length;
    const orders = reqs.filter((x) => x.path.endsWith('/new-order')).length;
    const ok = method === 'step' ? rekeys >= 1 && orders === 0 : rekeys === 0 && orders >= 1;
    if (ok) return undefined;
    if (tries >= 3)
      return `step-ca's request log shows ${rekeys} answered /1.0/rekey and ${orders} ACME new-order in this run`;
    await sleep(100);
  }
}

/** `lego renew` (a new key, lego's default) with the account and certificate of a first `lego run`. */
async function legoJob(ctx: RekeyContext): Promise<Job> {
  const dir = join(ctx.baseDir, 'lego');
  mkdirSync(dir, { recursive: true });
  const first = legoRun(ctx.ca, ctx.rootFile, dir);
  const r = await run(first.argv, { env: first.env, cwd: dir });
  if (r.code !== 0) throw new Error(`lego run (first issuance) failed (${r.code}): ${lastLines(r)}`);
  return {
    tool: { key: 'lego', name: 'lego renew', how: 'ACME http-01, new key', runs: runs() },
    // lego renews a certificate with fewer than --days (default 30) left: every 24-hour certificate.
    // Without a terminal it first sleeps up to 8 minutes at random, to spread a fleet's cron jobs.
    argv: [...first.argv.slice(0, -1), 'renew', '--days', '30', '--no-random-sleep'],
    env: first.env,
    cwd: dir,
    certFile: first.certFile,
    newKey: true,
    strict: false,
  };
}

/** `step ca renew` (same key) or `step ca rekey` (new key) of a certificate step got over ACME. */
async function stepJob(ctx: RekeyContext, stepBin: string, how: 'renew' | 'rekey'): Promise<Job> {
  const dir = join(ctx.baseDir, `step-${how}`);
  mkdirSync(dir, { recursive: true });
  const env = cleanEnv({ STEPPATH: join(dir, 'step') });
  const [crt, key] = [join(dir, 'c.crt'), join(dir, 'c.key')];
  const ca = ['--ca-url', ctx.ca.url, '--root', ctx.rootFile];
  const http = `127.0.0.1:${ctx.ca.acmeHttpPort}`;
  const issue = [stepBin, 'ca', 'certificate', 'localhost', crt, key, '--provisioner', 'acme', ...ca];
  const r = await run([...issue, '--http-listen', http, '--kty', 'EC', '--curve', 'P-256', '-f'], { env, cwd: dir });
  if (r.code !== 0) throw new Error(`step ca certificate (for step ca ${how}) failed (${r.code}): ${lastLines(r)}`);
  return {
    tool: {
      key: how === 'renew' ? 'step-renew' : 'step-rekey',
      name: `step ca ${how} --force`,
      how:
        how === 'renew'
          ? 'step-ca API: POST /1.0/renew over mTLS, same key'
          : 'step-ca API: POST /1.0/rekey over mTLS, new key',
      runs: runs(),
    },
    // --force: overwrite the files without asking; nothing else prompts.
    argv: [stepBin, 'ca', how, crt, key, ...ca, '--force'],
    env,
    cwd: dir,
    certFile: crt,
    newKey: how === 'rekey',
    strict: false,
  };
}

function certOf(file: string): X509Certificate | undefined {
  try {
    return new X509Certificate(readFileSync(file));
  } catch {
    return undefined;
  }
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

// ---- step-ca's request log (text format: one line per answered request) ----

const caLogFile = (ca: StepCa) => join(ca.dir, 'step-ca.log');
/** step-ca serves its API at / and at /1.0/ alike (the step CLI asks /rekey). */
const REKEY_PATH = /^(\/1\.0)?\/rekey$/;

function caLogSize(ca: StepCa): number {
  try {
    return statSync(caLogFile(ca)).size;
  } catch {
    return 0;
  }
}

/** The requests step-ca answered since offset: path, status, its own duration. */
function caRequests(ca: StepCa, offset: number): { path: string; status: number; ms: number }[] {
  const size = caLogSize(ca);
  if (size <= offset) return [];
  const buf = Buffer.alloc(size - offset);
  const fd = openSync(caLogFile(ca), 'r');
  try {
    readSync(fd, buf, 0, buf.length, offset);
  } finally {
    closeSync(fd);
  }
  const out: { path: string; status: number; ms: number }[] = [];
  for (const line of buf.toString('utf8').split('\n')) {
    const path = / path=("?)([^\s"]+)\1/.exec(line)?.[2];
    const status = / status=(\d+)/.exec(line)?.[1];
    if (!path || !status) continue;
    const ns = / duration-ns=(\d+)/.exec(line)?.[1];
    out.push({ path, status: Number(status), ms: ns ? Number(ns) / 1e6 : NaN });
  }
  return out;
}
