/**
 * reload.target: traefik. Traefik's file provider re-reads certificates only
 * when its dynamic configuration changes, so the agent owns one dynamic file
 * and rewrites it atomically after every install, pointing at the new set's
 * own directory: the content changes each time (Traefik notices) and the
 * paths name one consistent set (a key never paired with another
 * certificate). The previous set stays on disk until the next install, so
 * Traefik always has readable files while it switches.
 *
 * Traefik owns port 80 and serves no files, so the challenge reaches the
 * agent through a router in that same dynamic file (proxy mode).
 *
 * Several certificates: each has a dynamic file of its own in the watched
 * directory (cert-agent-NAME.yml), with a router of its own; Traefik picks
 * the certificate by SNI, and only the first certificate names the default
 * one (a TLS store defined twice would be a conflict Traefik drops).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { stringify } from 'yaml';
import type { Config } from '../config/config.js';
import { diagnosis, type Diagnosis } from '../lib/diagnosis.js';
import { ensureDir, writeFileAtomic } from '../lib/fs.js';
import type { LiveSet } from '../store/sets.js';
import { PATHS } from '../store/layout.js';
import type { ChallengeContext, ReloadContext, ReloadTarget, SetResult } from './types.js';
import { PROXY_VERIFY, verifyEach } from './verify.js';
import { runningServerUser } from './web-user.js';
import { waitForChallengeRoute } from '../challenge/route-probe.js';

export const ACME_ROUTER = 'cert-agent-acme';

/** The challenge router of one certificate: the short form's keeps 0.1.0's name. */
function routerOf(config: Config): string {
  const name = config.certificate.name;
  return name === 'default' ? ACME_ROUTER : `${ACME_ROUTER}-${name}`;
}

export function traefikDynamicConfig(config: Config, live: LiveSet | undefined): string {
  const doc: Record<string, unknown> = {};
  if (live) {
    const entry = { certFile: `${live.path}/${PATHS.fullchain.name}`, keyFile: `${live.path}/${PATHS.key.name}` };
    const store =
      config.reload.traefik.defaultCertificate === false ? {} : { stores: { default: { defaultCertificate: entry } } };
    doc.tls = { certificates: [entry], ...store };
  }
  if (config.challenge.mode === 'proxy') {
    doc.http = {
      routers: {
        [routerOf(config)]: {
          rule: 'PathPrefix(`/.well-known/acme-challenge/`)',
          entryPoints: [config.reload.traefik.entryPoint],
          // Above any router an operator writes, so the challenge always reaches the agent.
          priority: 2147483000,
          service: routerOf(config),
        },
      },
      services: { [routerOf(config)]: { loadBalancer: { servers: [{ url: `http://${config.challenge.listen}` }] } } },
    };
  }
  const header = `# Managed by cert-agent: rewritten after every certificate install. Do not edit.\n# serial: ${live?.cert.serialNumber.toLowerCase() ?? 'none yet'}\n`;
  return header + stringify(doc);
}

export function writeTraefikDynamic(config: Config, live: LiveSet | undefined): void {
  const file = config.reload.traefik.dynamicFile;
  // No secret inside (only paths), and Traefik may run as another user:
  // 0755/0644 exactly, whatever the umask.
  ensureDir(dirname(file), 0o755);
  writeFileAtomic(file, traefikDynamicConfig(config, live), 0o644);
}

async function reloadTraefik({ sets }: ReloadContext): Promise<SetResult[]> {
  for (const { config, live } of sets) writeTraefikDynamic(config, live);
  const files = sets.map((s) => s.config.reload.traefik.dynamicFile);
  const watched = [...new Set(files.map((f) => dirname(f)))].join(', ');
  return verifyEach(
    sets,
    'traefik',
    `traefik dynamic file ${files.join(', ')} rewritten`,
    `Traefik ignores a dynamic file it cannot parse or whose files it cannot read: see its log, and check that its file provider watches ${watched}`,
  );
}

/**
 * Proxy mode: Traefik must route the challenge path to the agent before the
 * CA asks for it. The dynamic file carries that router; Traefik needs a
 * moment to load it, so a probe token is fetched through port 80 first.
 */
async function prepareChallenge({ config, live, solver }: ChallengeContext): Promise<string | undefined> {
  if (config.challenge.mode !== 'proxy') return undefined;
  writeTraefikDynamic(config, live);
  const routed = await waitForChallengeRoute(solver, config.certificate.domains[0] as string, 'http://127.0.0.1:80');
  return routed ? undefined : 'Traefik does not route the challenge path to the agent yet; asking the CA anyway';
}

/** `doctor`: the dynamic file must exist and name the agent's files; Traefik must watch its directory. */
async function diagnoseTraefik(config: Config): Promise<Diagnosis[]> {
  const dir = config.certificate.dir;
  const file = config.reload.traefik.dynamicFile;
  const watch = dirname(file);
  if (!existsSync(file)) {
    const todo = `run cert-agent renew (it writes it), and have Traefik's file provider watch ${watch}`;
    return [diagnosis('PROBLEM', 'proxy config', `${file} does not exist: ${todo}`)];
  }
  if (!readFileSync(file, 'utf8').includes(`${dir}/`))
    return [
      diagnosis('PROBLEM', 'proxy config', `${file} does not name files in ${dir}: run cert-agent renew to rewrite it`),
    ];
  const load = `(Traefik must load it: providers.file.directory ${watch})`;
  return [diagnosis('ok', 'proxy config', `${file} names the certificate files in ${dir} ${load}`)];
}

export const traefikTarget: ReloadTarget = {
  defaults: { challengeMode: 'proxy', verify: PROXY_VERIFY },
  reload: reloadTraefik,
  prepareChallenge,
  diagnose: diagnoseTraefik,
  // Traefik reads no webroot: whichever web server serves one is the user that matters.
  webServerUser: async () => runningServerUser(),
};
