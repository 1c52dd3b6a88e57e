/**
 * One-shot issuance: every tool gets one ECDSA P-256 certificate for
 * `localhost` over http-01 from the same local step-ca, as a whole process.
 * Each round gives every tool a fresh directory and runs it twice: "first"
 * (registers an ACME account, then issues) and "repeat" (account already
 * there, as for a renewal). Rounds interleave the tools so that machine
 * noise falls on all of them alike.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StepCa } from '../../test/harness/stepca.js';
import { enroll } from '../lib/agent.js';
import { cleanEnv, timed, type Timed } from '../lib/proc.js';
import { parseLog } from '../../test/harness/json-log.js';

export interface ToolRuns {
  tool: string;
  protocol: string;
  first: Timed[];
  repeat: Timed[];
  failures: string[];
}

interface Tool {
  name: string;
  protocol: string;
  available: boolean;
  /** Prepares a fresh directory; returns the command line and where the certificate lands. */
  prepare(dir: string): Promise<Prepared>;
  /** Only the repeat run exists (e.g. renewal of a certificate the tool did not issue). */
  repeatOnly?: { after: string };
}

/** Where a `cert-agent renew --force` process spends its wall time, from its own log (extra runs, info level). */
export interface AgentPhases {
  /** spawn → renewal_started: Node start, bundle load, config, trust, decision */
  startupMs: number[];
  /** renewal_started → certificate_installed: key, ACME order, http-01, finalize, download, checks, install */
  issueMs: number[];
  /** certificate_installed → process exit: reload (none), state, exit */
  exitMs: number[];
}

export interface Prepared {
  argv: string[];
  env: Record<string, string>;
  certFile: string;
}

/**
 * `lego run` as this section times it: one ECDSA P-256 certificate for
 * `localhost` over http-01 on the CA's validation port, the ACME account kept
 * in dir (so a second run in the same dir is a repeat).
 */
export function legoRun(ca: StepCa, rootFile: string, dir: string): Prepared {
  return {
    argv: [
      'lego',
      '--server',
      ca.directoryUrl,
      '--email',
      'bench@example.org',
      '--accept-tos',
      '--domains',
      'localhost',
      '--http',
      '--http.port',
      `127.0.0.1:${ca.acmeHttpPort}`,
      '--key-type',
      'ec256',
      '--path',
      dir,
      'run',
    ],
    env: cleanEnv({ LEGO_CA_CERTIFICATES: rootFile }),
    certFile: join(dir, 'certificates', 'localhost.crt'),
  };
}

export interface OneShotContext {
  ca: StepCa;
  rootFile: string;
  agentBin: string;
  stepBin?: string;
  baseDir: string;
  rounds: number;
}

export async function oneShotSection(
  ctx: OneShotContext,
  available: { lego: boolean; certbot: boolean },
): Promise<{ tools: ToolRuns[]; agentPhases: AgentPhases }> {
  const { ca, rootFile } = ctx;
  const http = `127.0.0.1:${ca.acmeHttpPort}`;
  const all: Tool[] = [
    {
      name: 'cert-agent renew --force',
      protocol: 'ACME http-01',
      available: true,
      async prepare(dir) {
        const a = await enroll(ctx.agentBin, dir, {
          caUrl: ca.url,
          fingerprint: ca.rootFingerprint,
          domain: 'localhost',
          listen: http,
          renewalMethod: 'acme',
        });
        return {
          argv: [process.execPath, ctx.agentBin, 'renew', '--force', '--config', a.config],
          env: cleanEnv(),
          certFile: join(a.certDir, 'cert.pem'),
        };
      },
    },
    {
      name: 'lego run',
      protocol: 'ACME http-01',
      available: available.lego,
      async prepare(dir) {
        return legoRun(ca, rootFile, dir);
      },
    },
    {
      name: 'certbot certonly',
      protocol: 'ACME http-01',
      available: available.certbot,
      async prepare(dir) {
        return {
          argv: [
            'certbot',
            'certonly',
            '--standalone',
            '--http-01-port',
            String(ca.acmeHttpPort),
            '--http-01-address',
            '127.0.0.1',
            '--server',
            ca.directoryUrl,
            '-d',
            'localhost',
            '--key-type',
            'ecdsa',
            '--elliptic-curve',
            'secp256r1',
            '--register-unsafely-without-email',
            '--agree-tos',
            '--non-interactive',
            '--force-renewal',
            '--config-dir',
            join(dir, 'config'),
            '--work-dir',
            join(dir, 'work'),
            '--logs-dir',
            join(dir, 'logs'),
          ],
          env: cleanEnv({ REQUESTS_CA_BUNDLE: rootFile }),
          certFile: join(dir, 'config', 'live', 'localhost', 'cert.pem'),
        };
      },
    },
    {
      name: 'step ca certificate',
      protocol: 'ACME http-01',
      available: Boolean(ctx.stepBin),
      async prepare(dir) {
        return {
          argv: [
            ctx.stepBin!,
            'ca',
            'certificate',
            'localhost',
            join(dir, 'c.crt'),
            join(dir, 'c.key'),
            '--provisioner',
            'acme',
            '--ca-url',
            ca.url,
            '--root',
            rootFile,
            '--http-listen',
            http,
            '--kty',
            'EC',
            '--curve',
            'P-256',
            '-f',
          ],
          env: cleanEnv({ STEPPATH: join(dir, 'step') }),
          certFile: join(dir, 'c.crt'),
        };
      },
    },
    {
      name: 'step ca renew --force',
      protocol: 'step /renew (mTLS, not ACME)',
      available: Boolean(ctx.stepBin),
      repeatOnly: { after: 'step ca certificate' },
      async prepare(dir) {
        return {
          argv: [
            ctx.stepBin!,
            'ca',
            'renew',
            join(dir, 'c.crt'),
            join(dir, 'c.key'),
            '--ca-url',
            ca.url,
            '--root',
            rootFile,
            '--force',
          ],
          env: cleanEnv({ STEPPATH: join(dir, 'step') }),
          certFile: join(dir, 'c.crt'),
        };
      },
    },
  ];
  const tools = all.filter((t) => t.available);

  const results = new Map<string, ToolRuns>(
    tools.map((t) => [t.name, { tool: t.name, protocol: t.protocol, first: [], repeat: [], failures: [] }]),
  );
  const check = (t: Tool, r: Timed, certFile: string, label: string): boolean => {
    const res = results.get(t.name)!;
    if (r.code !== 0) {
      res.failures.push(`${label}: exit ${r.code}: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' / ')}`);
      return false;
    }
    if (!existsSync(certFile)) {
      res.failures.push(`${label}: no certificate at ${certFile}`);
      return false;
    }
    const cert = new X509Certificate(readFileSync(certFile));
    if (cert.publicKey.asymmetricKeyType !== 'ec') {
      res.failures.push(`${label}: certificate key is ${cert.publicKey.asymmetricKeyType}, not ECDSA`);
      return false;
    }
    return true;
  };

  for (let round = 0; round < ctx.rounds; round++) {
    const dirs = new Map<string, string>();
    for (const t of tools) {
      const res = results.get(t.name)!;
      const dir = t.repeatOnly ? dirs.get(t.repeatOnly.after)! : join(ctx.baseDir, `${t.name.split(' ')[0]}-${round}`);
      if (!dir) continue;
      mkdirSync(dir, { recursive: true });
      dirs.set(t.name, dir);
      const p = await t.prepare(dir);
      if (!t.repeatOnly) {
        const first = await timed(p.argv, { env: p.env, cwd: dir });
        if (check(t, first, p.certFile, `round ${round} first`)) res.first.push(first);
      }
      const repeat = await timed(p.argv, { env: p.env, cwd: dir });
      if (check(t, repeat, p.certFile, `round ${round} repeat`)) res.repeat.push(repeat);
    }
  }
  // The agent's phases, from extra runs that log at info level to stderr.
  const phases: AgentPhases = { startupMs: [], issueMs: [], exitMs: [] };
  const a = await enroll(ctx.agentBin, join(ctx.baseDir, 'phases'), {
    caUrl: ca.url,
    fingerprint: ca.rootFingerprint,
    domain: 'localhost',
    listen: http,
    renewalMethod: 'acme',
  });
  for (let i = 0; i < Math.max(3, ctx.rounds); i++) {
    const spawned = Date.now();
    const r = await timed([process.execPath, ctx.agentBin, 'renew', '--force', '--config', a.config], {
      env: cleanEnv({ CERT_AGENT_LOG_LEVEL: 'info' }),
      cwd: a.dir,
    });
    const exited = spawned + r.wallMs;
    const times = new Map<string, number>();
    for (const l of parseLog(r.stderr)) {
      if (l.event && l.time && l.event !== 'unparsed' && !times.has(l.event)) times.set(l.event, Date.parse(l.time));
    }
    const started = times.get('renewal_started');
    const installed = times.get('certificate_installed');
    if (r.code !== 0 || started === undefined || installed === undefined) continue;
    phases.startupMs.push(started - spawned);
    phases.issueMs.push(installed - started);
    phases.exitMs.push(exited - installed);
  }
  return { tools: [...results.values()], agentPhases: phases };
}
