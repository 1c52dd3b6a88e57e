/**
 * http-01 as an operator meets it, against a real step-ca and a real nginx
 * whose workers run as www-data: challenge.webroot is the site's document
 * root (a port-80 server with `root <dir>;` and nothing else), and when the
 * CA cannot fetch the token the renewal error says why in the operator's
 * terms — a missing location (404), a directory www-data cannot enter (403),
 * a redirect to https without an exception, nothing listening.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { createLogger, type Logger } from '../../agent/lib/log.js';
import { afterAll, describe, expect, it } from 'vitest';
import { validateConfig, type Config } from '../../agent/config/config.js';
import { renewPass } from '../../agent/renewal/pass.js';
import { collectStatus } from '../../agent/report/status.js';
import { runDoctor } from '../../agent/report/doctor.js';
import type { StepCa } from '../harness/stepca.js';
import { useStepCaSuite } from '../helpers/suite.js';

let ca: StepCa;
let dir: string;
/** Either configured name, as a pattern: the CA validates them in either order. */
const NAME = '(localhost|127\\.0\\.0\\.1)';
useStepCaSuite((c, d) => {
  ca = c;
  dir = d;
});

// Document roots live under /tmp (1777), so www-data can reach them as on a real site.
const sites: string[] = [];
afterAll(() => {
  for (const s of sites) rmSync(s, { recursive: true, force: true });
});

function documentRoot(): string {
  const root = mkdtempSync('/tmp/cert-agent-site-');
  chmodSync(root, 0o755);
  sites.push(root);
  writeFileSync(join(root, 'index.html'), '<h1>the site</h1>\n');
  chmodSync(join(root, 'index.html'), 0o644);
  return root;
}

/** Every path under root with its type and mode: what "untouched" means. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rel of readdirSync(root, { recursive: true }) as string[]) {
    const st = lstatSync(join(root, rel));
    out[rel] = `${st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : 'f'}${(st.mode & 0o7777).toString(8)}`;
  }
  return out;
}

let nginxCount = 0;
/** nginx as Debian runs it (`user www-data;`), with one port-80 server for localhost and 127.0.0.1 holding `server`. */
async function startNginx(server: string): Promise<{ conf: string; accessLog: string; stop(): Promise<void> }> {
  const ndir = join(dir, `nginx-${++nginxCount}`);
  mkdirSync(join(ndir, 'tmp'), { recursive: true });
  const conf = join(ndir, 'nginx.conf');
  const tmp = join(ndir, 'tmp');
  writeFileSync(
    conf,
    `user www-data;
worker_processes 1;
pid ${ndir}/nginx.pid;
error_log ${ndir}/error.log;
events { worker_connections 64; }
http {
  access_log ${ndir}/access.log combined;
  client_body_temp_path ${tmp}; proxy_temp_path ${tmp};
  fastcgi_temp_path ${tmp}; uwsgi_temp_path ${tmp}; scgi_temp_path ${tmp};
  server {
    listen 127.0.0.1:${ca.acmeHttpPort};
    server_name localhost 127.0.0.1;
    ${server}
  }
}
`,
  );
  const proc: ChildProcess = spawn('nginx', ['-c', conf, '-g', 'daemon off;'], { stdio: 'ignore' });
  const deadline = Date.now() + 5000;
  while (!existsSync(join(ndir, 'nginx.pid'))) {
    if (Date.now() > deadline) throw new Error(`nginx did not start: ${readFileSync(join(ndir, 'error.log'), 'utf8')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    conf,
    accessLog: join(ndir, 'access.log'),
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}

let configs = 0;
function configFor(challenge: Record<string, unknown>, extra: Record<string, unknown> = {}): Config {
  const base = join(dir, `agent-${++configs}`);
  return validateConfig({
    ca: { url: ca.url, fingerprint: ca.rootFingerprint },
    certificate: { domains: ['localhost', '127.0.0.1'], dir: join(base, 'tls') },
    challenge,
    stateDir: join(base, 'state'),
    // http-01 through the site is the subject: every renewal is an ACME order.
    renewal: { method: 'acme' },
    ...extra,
  });
}

interface LogLine {
  level: string;
  event?: string;
  [k: string]: unknown;
}

/** A logger that keeps every line, to check what the operator is told. */
function capture(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = createLogger({ level: 'info', sink: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { log, lines };
}

/** One pass with the self-check on the port the test CA validates on; the error it ends with, if any. */
async function pass(config: Config, force = false) {
  const { log, lines } = capture();
  try {
    const result = await renewPass({ config, log, force, selfCheckPort: ca.acmeHttpPort });
    return { result, lines, error: undefined };
  } catch (err) {
    return { result: undefined, lines, error: (err as Error).message };
  }
}

describe('challenge.webroot is the document root (certbot --webroot-path)', () => {
  it('issues through a plain `root` server with www-data workers, and leaves the document root as it was', async () => {
    const root = documentRoot();
    const nginx = await startNginx(`root ${root};`);
    try {
      const config = configFor({ mode: 'webroot', webroot: root });
      const before = snapshot(root);
      const first = await pass(config);
      expect(first.error).toBeUndefined();
      expect(first.result?.action).toBe('renewed');
      expect(first.lines.filter((l) => l.event === 'challenge_self_check_failed')).toEqual([]);
      // The CA fetched each token; the agent did not fetch them too (its own fetch only explains a refusal).
      const fetches = readFileSync(nginx.accessLog, 'utf8')
        .split('\n')
        .filter((l) => l.includes('/.well-known/acme-challenge/'));
      expect(fetches.length).toBeGreaterThanOrEqual(2);
      expect(fetches.filter((l) => l.includes('"cert-agent self-check"'))).toEqual([]);
      expect(snapshot(root)).toEqual(before);

      // A site that already has .well-known (security.txt): kept, with its mode; only the token comes and goes.
      mkdirSync(join(root, '.well-known'), { mode: 0o755 });
      chmodSync(join(root, '.well-known'), 0o755);
      const contact = 'Contact: mailto:security@example.invalid\n';
      writeFileSync(join(root, '.well-known/security.txt'), contact, { mode: 0o644 });
      const withWellKnown = snapshot(root);
      const second = await pass(config, true);
      expect(second.error).toBeUndefined();
      expect(second.result?.action).toBe('renewed');
      expect(snapshot(root)).toEqual(withWellKnown);
    } finally {
      await nginx.stop();
    }
  });
});

describe('a failed http-01, explained', () => {
  /** Runs a pass that must fail; checks the finding is in the error, the warning, state, status and doctor. */
  async function failingPass(config: Config, finding: RegExp) {
    const r = await pass(config);
    expect(r.error).toMatch(/http-01 validation of (localhost|127\.0\.0\.1) failed/);
    expect(r.error).toMatch(finding);
    const warned = r.lines.filter((l) => l.event === 'challenge_self_check_failed');
    expect(warned.length).toBeGreaterThan(0);
    expect(warned[0]?.level).toBe('warn');
    expect(String(warned[0]?.finding)).toMatch(finding);
    const failed = r.lines.find((l) => l.event === 'renewal_failed');
    expect(String(failed?.error)).toMatch(finding);
    // The order went ahead anyway: the CA was asked and said no.
    expect(r.lines.some((l) => l.event === 'account_registered')).toBe(true);
    const status = collectStatus(config, new Date());
    expect(status.renewal.lastAttempt?.error).toMatch(finding);
    return r;
  }

  it('404: the port-80 server has no location for the challenge path', async () => {
    // The site serves another document root; the agent writes into the shipped default one.
    const site = documentRoot();
    const webroot = documentRoot();
    const nginx = await startNginx(`root ${site};`);
    try {
      const config = configFor({ mode: 'webroot', webroot });
      await failingPass(
        config,
        new RegExp(
          `self-check: http://${NAME}:${ca.acmeHttpPort}/\\.well-known/acme-challenge/<token> ` +
            `\\(fetched from 127\\.0\\.0\\.1:${ca.acmeHttpPort}\\) answers 404 Not Found: ` +
            `the port-80 server answering ${NAME} does not serve ${webroot}/\\.well-known/acme-challenge/: ` +
            'it lacks the location .*include snippets/cert-agent-challenge-webroot\\.conf',
        ),
      );
      expect(readdirSync(webroot)).toEqual(['index.html']);
    } finally {
      await nginx.stop();
    }
  });

  it('403: www-data (nginx -T names it) cannot enter the token directory', async () => {
    const root = documentRoot();
    mkdirSync(join(root, '.well-known/acme-challenge'), { recursive: true });
    chmodSync(join(root, '.well-known'), 0o755);
    chmodSync(join(root, '.well-known/acme-challenge'), 0o700);
    const nginx = await startNginx(`root ${root};`);
    try {
      const reload = { target: 'nginx', nginx: { config: nginx.conf } };
      const config = configFor({ mode: 'webroot', webroot: root }, { reload });
      const before = snapshot(root);
      await failingPass(
        config,
        new RegExp(
          "answers 403 Forbidden: www-data \\(nginx's user directive\\) " +
            `cannot enter ${root}/\\.well-known/acme-challenge ` +
            `\\(mode 0700, owner root:root\\): chmod o\\+x ${root}/\\.well-known/acme-challenge`,
        ),
      );
      // Directories that existed stay, with their modes; the token is gone.
      expect(snapshot(root)).toEqual(before);
      // doctor finds the same with its own probe token, and shows the last failure.
      const configPath = join(dir, 'doctor-403.yaml');
      writeFileSync(
        configPath,
        JSON.stringify({
          ca: { url: ca.url, fingerprint: ca.rootFingerprint },
          certificate: { domains: config.certificate.domains, dir: config.certificate.dir },
          challenge: { mode: 'webroot', webroot: root },
          reload: { target: 'nginx', nginx: { config: nginx.conf } },
          stateDir: config.stateDir,
        }),
        { mode: 0o600 },
      );
      const lines = await runDoctor(configPath, { fix: false, now: new Date(), selfCheckPort: ca.acmeHttpPort });
      const challenge = lines.filter((l) => l.reason === 'challenge');
      expect(challenge.map((l) => l.status)).toEqual(['PROBLEM', 'PROBLEM']);
      expect(challenge[0]?.message).toMatch(/www-data \(nginx's user directive\) cannot enter .*challenge \(mode 0700/);
      const last = lines.find((l) => l.reason === 'last renewal');
      expect(last).toMatchObject({ status: 'PROBLEM', message: expect.stringMatching(/cannot enter/) });
      expect(snapshot(root)).toEqual(before);
    } finally {
      await nginx.stop();
    }
  });

  it('a redirect to https without an exception for the challenge path', async () => {
    const root = documentRoot();
    const nginx = await startNginx(`root ${root};\n    location / { return 301 https://$host$request_uri; }`);
    try {
      const config = configFor({ mode: 'webroot', webroot: root });
      await failingPass(
        config,
        new RegExp(
          `redirects to https://${NAME}/\\.well-known/acme-challenge/<token>, which .*; ` +
            'the challenge must be answered on port 80: put an exception for /\\.well-known/acme-challenge/ ' +
            `before the redirect in the port-80 server for ${NAME}`,
        ),
      );
    } finally {
      await nginx.stop();
    }
  });

  it('a redirect to an internal service: reported, not followed, nothing of its answer repeated', async () => {
    // A service on loopback that only this container reaches (port 80/443 are the only ones a CA follows to).
    const secret = 'internal-secret-5e4d3c2b1a';
    const agents: string[] = [];
    const internal = createServer((req, res) => {
      agents.push(String(req.headers['user-agent']));
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`${secret}\n`);
    });
    await new Promise<void>((resolve) => internal.listen(0, '127.0.0.1', resolve));
    const internalPort = (internal.address() as AddressInfo).port;
    const root = documentRoot();
    const nginx = await startNginx(
      `root ${root};\n    location /.well-known/acme-challenge/ { return 302 http://127.0.0.1:${internalPort}/admin; }`,
    );
    try {
      const config = configFor({ mode: 'webroot', webroot: root });
      const r = await failingPass(
        config,
        new RegExp(
          `redirects to http://127\\.0\\.0\\.1:${internalPort}/admin \\(not followed: port ${internalPort} is not 80 or 443\\); ` +
            'the challenge must be answered on port 80',
        ),
      );
      // The CA may have fetched it (step-ca follows any redirect); the agent did not, and repeats none of it.
      expect(agents).not.toContain('cert-agent self-check');
      const findings = r.lines.filter((l) => l.event === 'challenge_self_check_failed').map((l) => String(l.finding));
      for (const f of findings) expect(f).not.toContain(secret);
    } finally {
      await nginx.stop();
      internal.close();
    }
  });

  it('nothing listens on port 80', async () => {
    const root = documentRoot();
    const config = configFor({ mode: 'webroot', webroot: root });
    const before = snapshot(root);
    await failingPass(
      config,
      new RegExp(
        `\\(fetched from 127\\.0\\.0\\.1:${ca.acmeHttpPort}\\) is refused: nothing listens there: ` +
          `start the web server that serves ${root} and have it listen on port 80 for ${NAME}`,
      ),
    );
    expect(snapshot(root)).toEqual(before);
  });

  it('standalone: challenge.listen does not cover the address the name resolves to (pass and doctor)', async () => {
    // The agent listens on another port than the one the CA (and the self-check) fetch on.
    const config = configFor({ mode: 'standalone', listen: '127.0.0.1:1' });
    const finding = new RegExp(
      `\\(fetched from 127\\.0\\.0\\.1:${ca.acmeHttpPort}\\) is refused: nothing listens there: ` +
        `challenge\\.listen 127\\.0\\.0\\.1:1 does not cover 127\\.0\\.0\\.1:${ca.acmeHttpPort}; listen on 0\\.0\\.0\\.0:80`,
    );
    await failingPass(config, finding);
    const configPath = join(dir, 'doctor-standalone.yaml');
    const doc = { ...JSON.parse(JSON.stringify(config)), challenge: { mode: 'standalone', listen: '127.0.0.1:1' } };
    writeFileSync(configPath, JSON.stringify(doctorConfig(doc)), { mode: 0o600 });
    const lines = await runDoctor(configPath, { fix: false, now: new Date(), selfCheckPort: ca.acmeHttpPort });
    const challenge = lines.filter((l) => l.reason === 'challenge');
    expect(challenge.map((l) => l.status)).toEqual(['PROBLEM', 'PROBLEM']);
    expect(challenge[0]?.message).toMatch(finding);
  });

  it('standalone on the port the CA fetches: doctor finds the agent answering', async () => {
    const config = configFor({ mode: 'standalone', listen: `127.0.0.1:${ca.acmeHttpPort}` });
    const configPath = join(dir, 'doctor-standalone-ok.yaml');
    writeFileSync(configPath, JSON.stringify(doctorConfig(config)), { mode: 0o600 });
    const lines = await runDoctor(configPath, { fix: false, now: new Date(), selfCheckPort: ca.acmeHttpPort });
    const challenge = lines.filter((l) => l.reason === 'challenge');
    expect(challenge.map((l) => l.status)).toEqual(['ok', 'ok']);
    expect(challenge[0]?.message).toMatch(
      new RegExp(
        `answers from the agent on 127\\.0\\.0\\.1:${ca.acmeHttpPort} \\(bound only while the CA validates\\)`,
      ),
    );
  });
});

/** The fields of a validated config that a config file needs, for doctor (which loads a file). */
function doctorConfig(config: Config) {
  return {
    ca: { url: config.ca.url, fingerprint: config.ca.fingerprints },
    certificate: { domains: config.certificate.domains, dir: config.certificate.dir },
    challenge: { mode: config.challenge.mode, listen: config.challenge.listen, webroot: config.challenge.webroot },
    stateDir: config.stateDir,
  };
}
