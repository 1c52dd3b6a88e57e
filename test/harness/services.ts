/**
 * The site's services, put into a container's root filesystem (rootfs.ts)
 * before it boots with its own systemd (nspawn.ts): step-ca as user `step`,
 * laid out as `step ca init` leaves it, and Traefik on the package's static
 * configuration, each as an enabled systemd unit. The fleet test and the
 * docs test boot such containers; what each adds is in the test.
 */
import { chmodSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Pki } from './pki.js';
import { inChroot } from './rootfs.js';
import { stepCaBinary } from './stepca.js';
import { traefikBinary } from './traefik.js';

const REPO = resolve(import.meta.dirname, '../..');

/** Writes root/p (parents created) with the given mode. */
export function putFile(root: string, p: string, content: string | Buffer, mode = 0o644): void {
  const file = join(root, p);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content);
  chmodSync(file, mode);
}

/** Runs a shell script in the root filesystem (not booted); throws with the output unless it exits 0. */
export async function chrootSh(root: string, script: string): Promise<void> {
  const r = await inChroot(root, ['sh', '-c', script]);
  if (r.code !== 0) throw new Error(`in ${root}: ${script}: exit ${r.code}\n${r.stdout}${r.stderr}`);
}

/** A container's /etc/hosts: itself as hostname, then every host of the site with its names and hostname. */
export function hostsFile(self: string, site: { address: string; names: string[]; hostname: string }[]): string {
  const lines = ['127.0.0.1 localhost', `127.0.1.1 ${self}`, '::1 localhost'];
  for (const h of site) lines.push(`${h.address} ${[...h.names, h.hostname].join(' ')}`);
  return lines.join('\n') + '\n';
}

/** Enables a unit file written to /etc/systemd/system, as `systemctl enable` would for WantedBy=multi-user.target. */
function enable(root: string, unit: string): void {
  symlinkSync(`/etc/systemd/system/${unit}`, join(root, 'etc/systemd/system/multi-user.target.wants', unit));
}

/** Takes nginx out of the boot (the rootfs variant carries it for the web container; elsewhere it would take port 80). */
export function disableNginx(root: string): void {
  rmSync(join(root, 'etc/systemd/system/multi-user.target.wants/nginx.service'), { force: true });
}

export interface StepCaSetup {
  /** Names (and addresses) in step-ca's TLS certificate; it listens on :9000. */
  dnsNames: string[];
  /** defaultTLSCertDuration of the ACME provisioner (default 24h). */
  certDuration?: string;
}

const STEP_CA_UNIT = `[Unit]
Description=step-ca, the site's ACME CA
After=network.target

[Service]
User=step
Group=step
Environment=STEPPATH=/etc/step-ca
ExecStart=/usr/local/bin/step-ca /etc/step-ca/config/ca.json
Restart=on-failure
StateDirectory=step-ca

[Install]
WantedBy=multi-user.target
`;

/** The CA's PKI where `step ca init` puts it (STEPPATH /etc/step-ca), an empty database; made with openssl on the host. */
export function installCaPki(root: string, pki: Pki): void {
  rmSync(join(root, 'etc/step-ca/certs'), { recursive: true, force: true });
  rmSync(join(root, 'etc/step-ca/secrets'), { recursive: true, force: true });
  rmSync(join(root, 'var/lib/step-ca/db'), { recursive: true, force: true });
  putFile(root, 'etc/step-ca/certs/root_ca.crt', readFileSync(pki.rootCrt));
  putFile(root, 'etc/step-ca/certs/intermediate_ca.crt', readFileSync(pki.intCrt));
  putFile(root, 'etc/step-ca/secrets/intermediate_ca_key', readFileSync(pki.intKey), 0o600);
  mkdirSync(join(root, 'var/lib/step-ca'), { recursive: true });
}

/** step-ca with one ACME provisioner, run by an enabled unit as user step on :9000. */
export async function addStepCa(root: string, pki: Pki, opts: StepCaSetup): Promise<void> {
  putFile(root, 'usr/local/bin/step-ca', readFileSync(stepCaBinary()), 0o755);
  const caJson = {
    root: '/etc/step-ca/certs/root_ca.crt',
    crt: '/etc/step-ca/certs/intermediate_ca.crt',
    key: '/etc/step-ca/secrets/intermediate_ca_key',
    address: ':9000',
    dnsNames: opts.dnsNames,
    logger: { format: 'text' },
    db: { type: 'badgerv2', dataSource: '/var/lib/step-ca/db' },
    authority: {
      provisioners: [
        {
          type: 'ACME',
          name: 'acme',
          claims: {
            minTLSCertDuration: '1m',
            defaultTLSCertDuration: opts.certDuration ?? '24h',
            maxTLSCertDuration: '24h',
          },
        },
      ],
    },
  };
  putFile(root, 'etc/step-ca/config/ca.json', JSON.stringify(caJson, null, 2));
  installCaPki(root, pki);
  putFile(root, 'etc/systemd/system/step-ca.service', STEP_CA_UNIT);
  enable(root, 'step-ca.service');
  await chrootSh(
    root,
    'useradd --system --user-group --home-dir /etc/step-ca --shell /usr/sbin/nologin step && chown -R step:step /etc/step-ca /var/lib/step-ca',
  );
}

/**
 * Traefik from packaging/traefik/traefik.yml (web :80, websecure :443, file
 * provider on /etc/traefik/dynamic, which exists), run by an enabled unit as
 * `runAs`. The system user traefik exists either way.
 */
export async function addTraefik(root: string, runAs: 'root' | 'traefik'): Promise<void> {
  putFile(root, 'usr/local/bin/traefik', readFileSync(traefikBinary()), 0o755);
  putFile(root, 'etc/traefik/traefik.yml', readFileSync(join(REPO, 'packaging/traefik/traefik.yml')));
  mkdirSync(join(root, 'etc/traefik/dynamic'), { recursive: true });
  const user = runAs === 'traefik' ? 'User=traefik\nGroup=traefik\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n' : '';
  putFile(
    root,
    'etc/systemd/system/traefik.service',
    `[Unit]
Description=Traefik
After=network.target

[Service]
${user}ExecStart=/usr/local/bin/traefik --configFile=/etc/traefik/traefik.yml
Restart=on-failure

[Install]
WantedBy=multi-user.target
`,
  );
  enable(root, 'traefik.service');
  await chrootSh(root, 'useradd --system --user-group --home-dir /etc/traefik --shell /usr/sbin/nologin traefik');
}
