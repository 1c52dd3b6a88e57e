/**
 * `cert-agent status` in every state an operator meets, through the bundle
 * as a separate process. Each state is laid out on disk the way the agent
 * (or a damaged installation) leaves it: certificate sets from an in-process
 * test CA, trust.json and state.json. The CA URL points at a closed port:
 * status must never need the network.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { makeCa, newKey, selfSigned, writeSetByHand, type Leaf, type TestCa } from '../helpers/certs.js';
import { runAgent, tempDir } from '../helpers/agent.js';
import { parsePluginLine } from '../helpers/plugin.js';
import schema from '../../docs/status.schema.json' with { type: 'json' };

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;
const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
addFormats(ajv);
const validate = ajv.compile(schema);

const H = 3_600_000;
const DOMAINS = ['app.internal', '127.0.0.1'];
let ca: TestCa;
let other: TestCa;
let root: string;

beforeAll(async () => {
  ca = await makeCa('Status');
  other = await makeCa('Recreated');
  root = tempDir('cert-agent-status-');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Setup {
  leaf?: Leaf;
  keyPem?: string;
  placeholder?: boolean;
  state?: Record<string, unknown>;
  trust?: boolean;
}

let n = 0;
/** Writes config, trust.json, state.json and a certificate set; returns the config path. */
function installation(s: Setup): string {
  const dir = join(root, `case-${++n}`);
  const certDir = join(dir, 'tls');
  const stateDir = join(dir, 'state');
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    [
      `ca: { url: "https://127.0.0.1:9", fingerprint: "${ca.fingerprint}" }`,
      `certificate: { domains: [${DOMAINS.join(', ')}], dir: "${certDir}" }`,
      `reload: { target: nginx, verify: "127.0.0.1:8443" }`,
      `stateDir: "${stateDir}"`,
    ].join('\n'),
  );
  if (s.trust !== false) {
    writeFileSync(
      join(stateDir, 'trust.json'),
      JSON.stringify({
        pins: [ca.fingerprint],
        roots: [{ fingerprint: ca.fingerprint, pem: ca.root.pem }],
        bootstrappedAt: new Date(Date.now() - 48 * H).toISOString(),
      }),
    );
  }
  writeFileSync(
    join(stateDir, 'state.json'),
    JSON.stringify({ consecutiveFailures: 0, backoffStep: 0, placeholder: false, ...s.state }),
  );
  if (s.leaf)
    writeSetByHand(certDir, `set-${n}`, {
      keyPem: s.keyPem ?? s.leaf.keyPem,
      fullchainPem: s.leaf.fullchainPem,
      rootPem: ca.root.pem,
      placeholder: s.placeholder,
    });
  return config;
}

async function status(config: string) {
  const text = await runAgent(['status', '--config', config]);
  const json = await runAgent(['status', '--json', '--config', config]);
  expect(text.stderr).toBe('');
  expect(json.code).toBe(text.code);
  const doc = JSON.parse(json.stdout);
  const valid = validate(doc);
  expect(validate.errors ?? []).toEqual([]);
  expect(valid).toBe(true);
  // Not a terminal: no escape sequences, an ASCII bar.
  expect(text.stdout).not.toMatch(/\u001b\[/);
  expect(text.stdout).toMatch(/^[\x00-\x7f]*$/);
  // The first line follows the monitoring-plugin convention, with the seconds to expiry as perfdata.
  const plugin = parsePluginLine(text.stdout.split('\n')[0]!);
  expect(plugin.text).toMatch(new RegExp(`^cert-agent ${doc.status}( - |$)`));
  if (doc.certificate) {
    expect(plugin.perf[0]).toMatchObject({ label: 'expiry', uom: 's', crit: '0:' });
    // Two runs, a second or so apart.
    expect(Math.abs(plugin.perf[0]!.value - doc.certificate.secondsToExpiry)).toBeLessThanOrEqual(5);
  } else expect(plugin.perf).toEqual([]);
  // --line: the same report in eight tab-separated fields (v2: the certificate's name last), none empty.
  const line = await runAgent(['status', '--line', '--config', config]);
  expect(line.code).toBe(text.code);
  expect(line.stdout.endsWith('\n') && line.stdout.split('\n').length === 2).toBe(true);
  const f = line.stdout.trimEnd().split('\t');
  // Without a usable config there is no certificate to name: v1's seven fields.
  const named = doc.certificates !== undefined;
  expect(f).toHaveLength(named ? 8 : 7);
  if (named) expect(f[7]).toBe('default');
  for (const field of f) expect(field).toMatch(/^\S(.*\S)?$/);
  const secondsTo = (iso: string | null | undefined) => (iso ? (Date.parse(iso) - Date.now()) / 1000 : undefined);
  expect(f.slice(0, 3)).toEqual([named ? 'v2' : 'v1', doc.status, doc.certificate?.names.join(',') || '-']);
  for (const [field, want] of [
    [f[3], doc.certificate?.secondsToExpiry],
    [f[4], secondsTo(doc.renewal?.next)],
  ] as const) {
    if (want === undefined) expect(field).toBe('-');
    else expect(Math.abs(Number(field) - want)).toBeLessThan(5);
  }
  expect(f[5]).toBe(doc.ca?.pinnedFingerprints.join(',') || '-');
  // The two runs read the clock a moment apart; problems may name it.
  const clockless = (s: string) => s.replace(/clock says [^)]*\)/g, 'clock says ...)');
  expect(clockless(f[6] ?? '')).toBe(clockless(doc.problems[0] ?? doc.renewal?.lastAttempt?.error ?? '-'));
  return { code: text.code, text: text.stdout, doc, line: f };
}

const fresh = () =>
  ca.leaf({ domains: DOMAINS, notBefore: new Date(Date.now() - 2 * H), notAfter: new Date(Date.now() + 22 * H) });
const okAttempt = () => ({ at: new Date(Date.now() - 2 * H).toISOString(), result: 'renewed' });

describe('status in each state', () => {
  it('healthy: OK (0), every section shown', async () => {
    const leaf = await fresh();
    const r = await status(
      installation({
        leaf,
        state: {
          lastAttempt: okAttempt(),
          lastSuccess: okAttempt().at,
          reload: {
            target: 'nginx',
            at: okAttempt().at,
            ok: true,
            detail: 'nginx serves serial',
            servedSerial: leaf.serial,
          },
        },
      }),
    );
    expect(r.code).toBe(0);
    expect(r.text.split('\n')[0]).toMatch(/^cert-agent OK \| expiry=\d+s;\d+:;0:;;\d+ allowance=\d+s;\d+:;0:;;\d+$/);
    for (const want of [
      'app.internal, 127.0.0.1',
      leaf.serial,
      'CN=Status Intermediate CA',
      'https://127.0.0.1:9',
      ca.fingerprint,
      'ok (the CA chains to the pinned root)',
      'placeholder    no',
      'matches the installed certificate',
    ])
      expect(r.text).toContain(want);
    expect(r.text).toMatch(/lifetime +\[##\.{18}\] 8% used/);
    expect(r.text).toMatch(/next renewal +\S+ \(in 1[23]h\d\dm\)/);
    expect(r.doc).toMatchObject({
      status: 'OK',
      problems: [],
      certificate: { serial: leaf.serial, placeholder: false, keyMatches: true, chainVerifies: true, expired: false },
      renewal: { due: false, consecutiveFailures: 0 },
      ca: { trust: 'ok', pinnedFingerprints: [ca.fingerprint] },
      reload: { target: 'nginx', servedMatches: true },
    });
    expect(r.line).toEqual([
      'v2',
      'OK',
      'app.internal,127.0.0.1',
      expect.stringMatching(/^79\d\d\d$/),
      expect.stringMatching(/^4\d\d\d\d$/),
      ca.fingerprint,
      '-',
      'default',
    ]);
  });

  it('renewal due and overdue: WARNING (1)', async () => {
    const leaf = await ca.leaf({
      domains: DOMAINS,
      notBefore: new Date(Date.now() - 20 * H),
      notAfter: new Date(Date.now() + 4 * H),
    });
    const r = await status(
      installation({
        leaf,
        state: { lastAttempt: { at: new Date(Date.now() - 9 * H).toISOString(), result: 'not-due' } },
      }),
    );
    expect(r.code).toBe(1);
    expect(r.text).toMatch(/^cert-agent WARNING - renewal overdue since /);
    expect(r.text).toMatch(/next renewal +\S+ \(due since \d+h\d\dm\)/);
    expect(r.doc.renewal.due).toBe(true);
    expect(r.doc.certificate.lifetimeUsed).toBeGreaterThan(0.8);
  });

  it('last attempt failed: WARNING (1) with the error, the retry time and the failure count', async () => {
    const error = 'cannot reach https://127.0.0.1:9: ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9';
    const nextAttempt = new Date(Date.now() + 4 * 60_000).toISOString();
    const r = await status(
      installation({
        leaf: await fresh(),
        state: {
          lastAttempt: { at: new Date().toISOString(), result: 'failed', error, errorKind: 'ca-unavailable' },
          consecutiveFailures: 3,
          nextAttempt,
        },
      }),
    );
    expect(r.code).toBe(1);
    expect(r.text).toContain(`last attempt at`);
    expect(r.text).toMatch(
      new RegExp(`last attempt +\\S+ \\(\\d+s ago\\) FAILED: ${error.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
    );
    expect(r.text).toMatch(/next retry +\S+ \(in [34]m\d\ds\)/);
    expect(r.text).toContain('3 in a row');
    expect(r.doc.renewal).toMatchObject({
      lastAttempt: { result: 'failed', error, errorKind: 'ca-unavailable' },
      consecutiveFailures: 3,
      nextAttempt,
    });
  });

  it('placeholder in use: WARNING (1)', async () => {
    const leaf = await selfSigned(DOMAINS, new Date(Date.now() - 60_000), new Date(Date.now() + 24 * H));
    const r = await status(installation({ leaf, placeholder: true, state: { placeholder: true } }));
    expect(r.code).toBe(1);
    expect(r.text).toMatch(/^cert-agent WARNING - the self-signed placeholder is in use/);
    expect(r.text).toContain('placeholder    YES');
    expect(r.text).toContain('self-signed placeholder');
    expect(r.doc.certificate).toMatchObject({ placeholder: true, chainVerifies: false, keyMatches: true });
  });

  it('expired: CRITICAL (2)', async () => {
    const leaf = await ca.leaf({
      domains: DOMAINS,
      notBefore: new Date(Date.now() - 30 * H),
      notAfter: new Date(Date.now() - 6 * H),
    });
    const r = await status(installation({ leaf }));
    expect(r.code).toBe(2);
    expect(r.text).toMatch(/^cert-agent CRITICAL - certificate [0-9a-f]+ expired at /);
    expect(r.text).toMatch(/valid until +\S+ \(expired 6h00m ago\)/);
    expect(r.text).toMatch(/\[#{20}\] 125% used/);
    expect(r.doc.certificate).toMatchObject({ expired: true });
    expect(r.doc.certificate.secondsToExpiry).toBeLessThan(-6 * 3600 + 60);
  });

  it('key and certificate do not match: CRITICAL (2)', async () => {
    const r = await status(installation({ leaf: await fresh(), keyPem: (await newKey()).pem }));
    expect(r.code).toBe(2);
    expect(r.text).toMatch(/certificate [0-9a-f]+ does not match the private key \(run: cert-agent renew --force\)/);
    expect(r.text).toContain('DOES NOT MATCH the certificate');
    expect(r.doc.certificate.keyMatches).toBe(false);
  });

  it('trust broken (CA recreated): CRITICAL (2), offered root and the fix spelled out', async () => {
    const detail =
      'TLS certificate of https://127.0.0.1:9 does not verify against the pinned CA root (SELF_SIGNED_CERT_IN_CHAIN)';
    const r = await status(
      installation({
        leaf: await fresh(),
        state: {
          trust: { ok: false, detail, offeredFingerprints: [other.fingerprint], checkedAt: new Date().toISOString() },
          lastAttempt: { at: new Date().toISOString(), result: 'failed', error: detail, errorKind: 'trust' },
          consecutiveFailures: 1,
        },
      }),
    );
    expect(r.code).toBe(2);
    expect(r.text).toMatch(/^cert-agent CRITICAL - trust broken: /);
    expect(r.text).toContain(`The CA now offers root ${other.fingerprint}`);
    expect(r.text).toContain('run: cert-agent enroll --fingerprint <new fingerprint>');
    expect(r.text).toMatch(/trust +BROKEN: TLS certificate/);
    expect(r.doc.ca).toMatchObject({
      trust: 'broken',
      trustDetail: detail,
      offeredFingerprints: [other.fingerprint],
      trustedFingerprints: [ca.fingerprint],
    });
    // The certificate itself is still the good one, and says so.
    expect(r.doc.certificate).toMatchObject({ chainVerifies: true, keyMatches: true });
  });

  it('served certificate stale: WARNING (1) naming both serials', async () => {
    const leaf = await fresh();
    const stale = '3a0c1d2e3f4a5b6c';
    const r = await status(
      installation({
        leaf,
        state: {
          reload: {
            target: 'nginx',
            at: new Date().toISOString(),
            ok: true,
            detail: 'nginx reloaded',
            servedSerial: stale,
          },
        },
      }),
    );
    expect(r.code).toBe(1);
    expect(r.text).toContain(`nginx was last seen serving serial ${stale}, not the installed ${leaf.serial}`);
    expect(r.text).toContain(`STALE: serial ${stale} was served, not ${leaf.serial}`);
    expect(r.doc.reload).toMatchObject({ servedMatches: false, lastResult: { servedSerial: stale } });
  });

  it('a failed reload: WARNING (1) with its detail', async () => {
    const r = await status(
      installation({
        leaf: await fresh(),
        state: {
          reload: {
            target: 'nginx',
            at: new Date().toISOString(),
            ok: false,
            detail: 'nginx -t failed (exit 1): bad directive',
          },
        },
      }),
    );
    expect(r.code).toBe(1);
    expect(r.text).toContain('last reload of nginx failed: nginx -t failed (exit 1): bad directive');
    expect(r.doc.reload.lastResult).toMatchObject({ ok: false });
  });

  it('a certificate from another CA: CRITICAL (2), the chain problem named', async () => {
    const r = await status(installation({ leaf: await other.leaf({ domains: DOMAINS }) }));
    expect(r.code).toBe(2);
    expect(r.text).toMatch(/certificate [0-9a-f]+ does not verify to the pinned root: no issuer found/);
    expect(r.doc.certificate.chainVerifies).toBe(false);
  });

  it('no certificate: CRITICAL (2), and nothing is created', async () => {
    const r = await status(installation({}));
    expect(r.code).toBe(2);
    expect(r.text).toContain('no certificate installed in');
    expect(r.doc.certificate).toBeNull();
    expect(r.doc.renewal.next).toBeNull();
  });

  it('no usable config: UNKNOWN (3), in text and JSON', async () => {
    const bad = join(root, 'bad.yaml');
    writeFileSync(bad, 'ca: { url: "http://nope" }\n');
    const r = await status(bad);
    expect(r.code).toBe(3);
    expect(r.text).toMatch(/^cert-agent UNKNOWN/);
    expect(r.doc).toMatchObject({ schema: 'cert-agent.status/v2', status: 'UNKNOWN' });
    expect(r.doc.problems[0]).toContain('ca.url');
  });

  it('--line and --json together: bad usage (64), nothing printed on stdout', async () => {
    const r = await runAgent(['status', '--line', '--json', '--config', join(root, 'bad.yaml')]);
    expect(r.code).toBe(64);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^cert-agent: status: --json and --line .*give one of them\n$/);
  });

  it('the schema is strict: an undocumented field fails validation', () => {
    expect(validate({ schema: 'cert-agent.status/v1', status: 'UNKNOWN', problems: [], surprise: 1 })).toBe(false);
    expect(validate({ schema: 'cert-agent.status/v1', status: 'OK', problems: [] })).toBe(false);
  });
});
