/**
 * What each command does, as functions returning their output and exit code.
 * main.ts parses flags and prints; nothing here writes to the terminal.
 */
// Each command loads the modules it needs when it runs (dynamic import, kept
// lazy inside the single-file bundle): `status` and `--version` must not pay
// for the ACME client, the HTTP stack or the logger.
import { certificatesOf, type AgentConfig, type Config } from '../config/schema.js';
import type { DryRunResult } from '../renewal/dry-run.js';
import type { PassResult } from '../renewal/pass.js';
import { AgentError, ConfigError, ExitCode, UsageError, describeError } from '../lib/errors.js';
import { fingerprintProblem, parseFingerprint } from '../pki/fingerprint.js';
import { validityOf } from '../pki/validity.js';

/** The config of `ctx`, read and validated; `command` names the command in the hint when it is not readable. */
const loadConfigFor = async (ctx: CommandContext, command: string): Promise<AgentConfig> =>
  (await import('../config/config.js')).loadConfig(ctx.configPath, command);
import { readFileSync } from 'node:fs';
import { checkPathSafety } from '../config/path-safety.js';
import { writeFileAtomic } from '../lib/fs.js';
import type { Logger } from '../lib/log.js';

export interface CommandResult {
  stdout: string;
  /** A one-line note for stderr next to a result that is still printed (e.g. metrics without a config). */
  stderr?: string;
  exitCode: number;
}

export interface CommandContext {
  configPath: string;
  flags: Record<string, unknown>;
  env: NodeJS.ProcessEnv;
  /** The command's logger, created on first use (JSON lines; stdout for `run`, stderr otherwise). */
  logger: () => Promise<Logger>;
  now: () => Date;
  isTty: boolean;
}

export async function enrollCommand(ctx: CommandContext): Promise<CommandResult> {
  const { enroll, enrollInputFrom } = await import('./enroll.js');
  const allowUnreachable = Boolean(ctx.flags['allow-unreachable']) || ctx.env.CERT_AGENT_ALLOW_UNREACHABLE === '1';
  const vouchedBy = ctx.flags['vouched-by'] as string | undefined;
  const name = (ctx.flags.name as string | undefined) ?? (ctx.env.CERT_AGENT_NAME || undefined);
  const result = await enroll(ctx.configPath, enrollInputFrom(ctx.flags, ctx.env), ctx.now(), {
    allowUnreachable,
    vouchedBy,
    ...(name !== undefined ? { name } : {}),
  });
  const c = result.config;
  const command = c.reload.command ? ` ${JSON.stringify(c.reload.command)}` : '';
  const verify = c.reload.verify ? ` (checked on ${c.reload.verify})` : '';
  const where = challengeWhere(c.challenge);
  const lines = [
    `${result.configChanged ? 'wrote' : 'unchanged:'} ${result.configPath}`,
    result.trust
      ? `pinned CA root ${result.trust.roots.map((r) => r.fingerprint).join(', ')} from ${c.ca.url} (TLS chain verified)`
      : `CA ${c.ca.url} not reachable now: the root will be pinned (${c.ca.fingerprints.join(', ')}) when it answers; until then a placeholder certificate is served`,
    `certificate ${c.certificate.name} for ${c.certificate.domains.join(', ')} will be written to ${c.certificate.dir}; ` +
      `reload: ${c.reload.target}${command}${verify}; challenge: ${c.challenge.mode} on ${where}`,
    'next: systemctl enable --now cert-agent.timer   (the daemon: cert-agent.service; or once: cert-agent renew)',
  ];
  return { stdout: lines.join('\n') + '\n', exitCode: ExitCode.ok };
}

/** Where the challenge is answered: the listener, the document root, or the DNS server or command. */
function challengeWhere(challenge: Config['challenge']): string {
  const dns = challenge.dns;
  if (challenge.mode === 'webroot') return challenge.webroot;
  if (!dns) return challenge.listen;
  const server = dns.server
    ? `${dns.server.host.includes(':') ? `[${dns.server.host}]` : dns.server.host}:${dns.server.port}`
    : '';
  return dns.tsig ? `${server} (TSIG key ${dns.tsig.name})` : `command ${JSON.stringify(dns.command)}`;
}

export async function bootstrapCommand(ctx: CommandContext): Promise<CommandResult> {
  const url = (ctx.flags['ca-url'] as string | undefined) ?? ctx.env.CERT_AGENT_CA_URL;
  const fps = (ctx.flags.fingerprint as string[] | undefined)?.length
    ? (ctx.flags.fingerprint as string[])
    : (ctx.env.CERT_AGENT_FINGERPRINT ?? '').split(',').filter(Boolean);
  const missing = [
    url ? '' : '--ca-url URL (CERT_AGENT_CA_URL)',
    fps.length ? '' : '--fingerprint HEX (CERT_AGENT_FINGERPRINT)',
  ].filter(Boolean);
  if (!url || !fps.length) {
    throw new UsageError(`bootstrap needs ${missing.join(', ')} (see cert-agent bootstrap --help)`);
  }
  const pins = fps.map((fp) => {
    const parsed = parseFingerprint(fp);
    if (!parsed) throw new UsageError(`--fingerprint ${JSON.stringify(fp)} ${fingerprintProblem(fp)}`);
    return parsed;
  });
  let parsedUrl: URL;
  try {
    parsedUrl = new URL(url);
  } catch {
    throw new UsageError(`--ca-url ${JSON.stringify(url)} is not a URL; expected e.g. https://ca.internal:9000`);
  }
  if (parsedUrl.protocol !== 'https:') throw new UsageError(`--ca-url ${JSON.stringify(url)} must use https://`);
  const { bootstrapTrust } = await import('../trust/pin.js');
  const bundle = await bootstrapTrust(url.replace(/\/+$/, ''), pins, ctx.now());
  const pem = bundle.roots.map((r) => r.pem).join('');
  const out = ctx.flags.out as string | undefined;
  if (out) {
    writeFileAtomic(out, pem, 0o644);
    return {
      stdout: `wrote root ${bundle.roots.map((r) => r.fingerprint).join(', ')} to ${out}\n`,
      exitCode: ExitCode.ok,
    };
  }
  return { stdout: pem, exitCode: ExitCode.ok };
}

export async function renewCommand(ctx: CommandContext): Promise<CommandResult> {
  // The logger first: a bad CERT_AGENT_LOG_LEVEL is refused before anything is read or written.
  const log = await ctx.logger();
  const config = await loadConfigFor(ctx, 'renew');
  const certs = namedCertificates(config, ctx);
  if (ctx.flags['dry-run']) return dryRun(certs, ctx, log);
  const { runPass } = await import('../renewal/pass.js');
  const name = ctx.flags.name as string | undefined;
  const outcomes = await runPass({
    config,
    log,
    force: Boolean(ctx.flags.force),
    now: ctx.now,
    ...(name ? { name } : {}),
  });
  const [only] = outcomes;
  // One certificate: its error is the command's, as it always was.
  if (outcomes.length === 1 && only && 'error' in only) throw only.error;
  const several = outcomes.length > 1;
  const stdout = outcomes.map((o) => ('result' in o ? renewText(o.result, several ? o.name : undefined) : '')).join('');
  const failed = outcomes.flatMap((o) => ('error' in o ? [{ name: o.name, error: o.error }] : []));
  if (!failed.length) return { stdout, exitCode: ExitCode.ok };
  const stderr = failed.map((f) => `cert-agent: certificate ${f.name}: ${describeError(f.error)}\n`).join('');
  const first = failed[0]?.error;
  return { stdout, stderr, exitCode: first instanceof AgentError ? first.exitCode : ExitCode.failure };
}

/** What `renew` says of one certificate; `name` heads it when there are several. */
function renewText(result: PassResult, name: string | undefined): string {
  const serial = result.live.cert.serialNumber.toLowerCase();
  const notAfter = validityOf(result.live.cert).notAfter.toISOString();
  const text =
    result.action === 'renewed'
      ? `renewed (${result.reason}) ${byWay(result)}: serial ${serial}, valid until ${notAfter}; ${result.reload?.detail ?? ''}\nnext renewal ${result.nextRenewal.toISOString()}\n`
      : `not due: serial ${serial} valid until ${notAfter}; next renewal ${result.nextRenewal.toISOString()}\n` +
        (result.repaired?.length
          ? `restored ${result.repaired.join(', ')} (links into the live set)` +
            `${result.reload ? `; ${result.reload.detail}` : ''}\n`
          : '');
  return name === undefined ? text : text.replace(/^(?=.)/gm, `${name}: `);
}

/** Which way a renewal went, in words. */
function byWay(result: PassResult): string {
  if (result.method === 'step') return "over the CA's renewal API";
  return result.fallback ? `by an ACME order (not the CA's renewal API: ${result.fallback})` : 'by an ACME order';
}

/** The certificates a command acts on: --name's, or every one; an unknown name is a usage error naming the known ones. */
function namedCertificates(config: AgentConfig, ctx: CommandContext): Config[] {
  const name = ctx.flags.name as string | undefined;
  const certs = certificatesOf(config, name);
  if (certs) return certs;
  const names = config.certificates.map((c) => c.certificate.name).join(', ');
  throw new UsageError(`--name ${JSON.stringify(name)}: no such certificate in ${ctx.configPath} (it has: ${names})`);
}

async function dryRun(certs: Config[], ctx: CommandContext, log: Logger): Promise<CommandResult> {
  const { dryRunPass } = await import('../renewal/dry-run.js');
  const parts: string[] = [];
  for (const config of certs) {
    const r = await dryRunPass({ config, log, now: ctx.now });
    parts.push(dryRunText(config, r, certs.length > 1));
  }
  return { stdout: parts.join(''), exitCode: ExitCode.ok };
}

function dryRunText(config: Config, r: DryRunResult, several: boolean): string {
  const reload = config.reload.target === 'none' ? 'no reload' : `reload ${config.reload.target}`;
  const verify = config.reload.verify ? ` and check the served serial on ${config.reload.verify}` : '';
  const would =
    r.wouldRenew !== undefined
      ? `renew now (${r.wouldRenew}): install a new set in ${config.certificate.dir}, ${reload}${verify}`
      : `nothing: serial ${r.live?.cert.serialNumber.toLowerCase()} is not due until ${r.nextRenewal?.toISOString()}`;
  const lines = [
    `dry run${several ? ` of ${config.certificate.name}` : ''}: the whole renewal path, nothing kept`,
    `  order     the CA issued serial ${r.issued.serial} for ${r.issued.names.join(', ')}, ` +
      `valid until ${r.issued.notAfter.toISOString()}`,
    '  checks    it passes the checks an install makes (names, key, chain to the pinned root)',
    '  kept      nothing: the live set, state.json, trust and account files are unchanged; no reload',
    `  a real renew would do: ${would}`,
  ];
  return lines.join('\n') + '\n';
}

export async function statusCommand(ctx: CommandContext): Promise<CommandResult> {
  if (ctx.flags.json && ctx.flags.line)
    throw new UsageError('status: --json and --line are two formats of the same report; give one of them');
  let config: AgentConfig;
  try {
    config = await loadConfigFor(ctx, 'status');
  } catch (err) {
    return unknownStatus(ctx, err instanceof Error ? err.message : String(err));
  }
  const certs = namedCertificates(config, ctx);
  const { collectAgentStatus, EXIT_FOR } = await import('../report/status.js');
  const { renderAgentStatus, renderStatusLines } = await import('../report/status-text.js');
  const report = collectAgentStatus(config, ctx.now(), certs);
  const stdout = ctx.flags.json
    ? JSON.stringify(report, null, 2) + '\n'
    : ctx.flags.line
      ? renderStatusLines(report, ctx.now())
      : renderAgentStatus(report, { color: ctx.isTty && !ctx.env.NO_COLOR, now: ctx.now() });
  return { stdout, exitCode: EXIT_FOR[report.status] };
}

/** Without a usable configuration: UNKNOWN, in the format asked for. */
async function unknownStatus(ctx: CommandContext, message: string): Promise<CommandResult> {
  const { unknownReport, EXIT_FOR } = await import('../report/status.js');
  const exitCode = EXIT_FOR.UNKNOWN;
  if (ctx.flags.json) return { stdout: JSON.stringify(unknownReport(message, ctx.now()), null, 2) + '\n', exitCode };
  if (ctx.flags.line) {
    const { renderStatusLine } = await import('../report/status-text.js');
    return { stdout: renderStatusLine(unknownReport(message, ctx.now()), ctx.now()), exitCode };
  }
  return { stdout: `cert-agent UNKNOWN - ${message}\n`, exitCode };
}

/**
 * Timer mode: exactly one check of the daemon, then exit (started by
 * cert-agent.timer through cert-agent-pass.service). Before the next attempt
 * recorded after a failure it does nothing at all; a config file changed
 * since the last pass (its SHA-256 differs from the one recorded in
 * state.json: `enroll` with a new fingerprint) is checked at once, as the
 * daemon does on SIGHUP. Exits 0 whatever the pass did, like a daemon that
 * carries on: the outcome is in state.json, `status` and the log.
 */
export async function checkCommand(ctx: CommandContext): Promise<CommandResult> {
  // The logger first: a bad CERT_AGENT_LOG_LEVEL is refused before anything is read or written.
  const log = await ctx.logger();
  // Hashed before the file is loaded: a change in between is seen by the next run, not lost.
  const { configSha256 } = await import('../renewal/config-change.js');
  const digest = configSha256(ctx.configPath);
  const config = await loadConfigFor(ctx, 'check');
  const { scheduledPass } = await import('../renewal/check.js');
  const { checkDecisionOf } = await import('../renewal/backoff.js');
  const { readState } = await import('../store/state.js');
  const states = config.certificates.map((c) => readState(c.stateDir, c.certificate.name));
  // A certificate whose last pass ran with another config file is checked at once, backoff or not.
  const changed = (s: { configSha256?: string }) => s.configSha256 !== undefined && s.configSha256 !== digest;
  const decision = checkDecisionOf(states, ctx.now(), changed);
  if (!decision.run) {
    const attempt = Math.min(...states.map((s) => s.consecutiveFailures));
    const fields = { trigger: 'timer-mode', nextAttempt: decision.nextAttempt, attempt };
    log.info({ event: 'check_deferred', ...fields }, 'backing off; next attempt at nextAttempt');
    return { stdout: '', exitCode: ExitCode.ok };
  }
  const trigger = states.some((s) => changed(s) && s.nextAttempt) ? 'config file changed' : 'timer-mode';
  const { writeMetricsTextfile: afterPass } = await import('../report/metrics.js');
  const pass = { config, log, trigger, now: ctx.now, afterPass, override: changed };
  await scheduledPass({ ...pass, ...(digest ? { configSha256: digest } : {}) });
  return { stdout: '', exitCode: ExitCode.ok };
}

/**
 * `cert-agent __pass` (internal): one pass of the daemon, in a child process
 * the daemon started (pass-process.ts). The daemon has decided, backoff
 * included; it sends the configuration it runs with on stdin and names
 * itself with --daemon-pid, honoured only when it is this process's parent
 * (it goes into daemon.pid, which `enroll` signals). Exits 75 when another
 * cert-agent holds the lock, so the daemon can wait for it.
 */
export async function daemonPassCommand(ctx: CommandContext): Promise<CommandResult> {
  const log = await ctx.logger();
  const daemonPid = Number(ctx.flags['daemon-pid']);
  if (!Number.isInteger(daemonPid) || daemonPid < 1 || daemonPid !== process.ppid)
    throw new UsageError('__pass: internal to the daemon (cert-agent run); --daemon-pid must name the parent process');
  const config = daemonConfig();
  const { scheduledPass } = await import('../renewal/check.js');
  const trigger = (ctx.flags.trigger as string | undefined) || 'daemon';
  const { writeMetricsTextfile: afterPass } = await import('../report/metrics.js');
  const outcome = await scheduledPass({ config, log, trigger, now: ctx.now, daemonPid, afterPass });
  return { stdout: '', exitCode: outcome === 'locked' ? ExitCode.tempFail : ExitCode.ok };
}

/**
 * The daemon's configuration from stdin (JSON, validated by the daemon when it
 * read the file, which may have changed since: a reload that found it invalid
 * keeps the previous one). The paths it names are checked again here.
 */
function daemonConfig(): AgentConfig {
  let config: AgentConfig;
  try {
    config = JSON.parse(readFileSync(0, 'utf8')) as AgentConfig;
  } catch (err) {
    throw new ConfigError('', `no configuration from the daemon on stdin: ${describeError(err)}`);
  }
  const seen = new Set<string>();
  for (const c of certificatesOf(config) ?? []) checkPathSafety(undefined, c, seen);
  return config;
}

export async function runCommand(ctx: CommandContext): Promise<CommandResult> {
  // Handlers before anything else, even before the daemon's modules load:
  // systemd counts the unit as started as soon as the process exists, and a
  // SIGTERM or SIGHUP arriving in the first moments would otherwise kill it
  // (a SIGHUP then even means a restart). A SIGHUP before start is a no-op:
  // the daemon reads the config and checks at start anyway.
  const started: { daemon?: { reload(): void } } = {};
  process.on('SIGHUP', () => started.daemon?.reload());
  const signal = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  const { Daemon } = await import('../renewal/daemon.js');
  const { childProcessPasses } = await import('../renewal/pass-process.js');
  const log = await ctx.logger();
  const runPass = childProcessPasses(log);
  const running = new Daemon({ configPath: ctx.configPath, log, now: ctx.now, runPass });
  started.daemon = running;
  running.start();
  await running.stop(await signal);
  return { stdout: '', exitCode: ExitCode.ok };
}

export async function doctorCommand(ctx: CommandContext): Promise<CommandResult> {
  const { runDoctor, renderDoctor, doctorFailed } = await import('../report/doctor.js');
  const name = ctx.flags.name as string | undefined;
  const lines = await runDoctor(ctx.configPath, {
    fix: Boolean(ctx.flags.fix),
    now: ctx.now(),
    ...(name ? { name } : {}),
  });
  return {
    stdout: renderDoctor(lines),
    exitCode: doctorFailed(lines) ? ExitCode.failure : ExitCode.ok,
  };
}

/**
 * Without a usable config the metrics still say so (cert_agent_status 3,
 * cert_agent_config_ok 0) and the command exits 0, so a scraper or a
 * textfile job has something to alert on; the reason goes to stderr.
 */
export async function metricsCommand(ctx: CommandContext): Promise<CommandResult> {
  const { metricsText, unusableConfigMetrics } = await import('../report/metrics.js');
  let config: Config;
  try {
    config = await loadConfigFor(ctx, 'metrics');
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return { stdout: unusableConfigMetrics(), stderr: `cert-agent: ${err.message}\n`, exitCode: ExitCode.ok };
  }
  return { stdout: metricsText(config, ctx.now()), exitCode: ExitCode.ok };
}
