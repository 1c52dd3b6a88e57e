/**
 * Metrics in the Prometheus text exposition format (version 0.0.4), derived
 * from the same StatusReport as `status`, so the two never disagree.
 * `cert-agent metrics` prints them; with metrics.textfile set the daemon
 * writes them atomically after every pass for node_exporter's textfile
 * collector (which reads *.prom files and must never see half a file).
 *
 * Naming follows Prometheus conventions: a cert_agent_ prefix, base units
 * (seconds), timestamps as *_timestamp_seconds since the epoch, booleans as
 * 0/1 gauges. Points in time are exported as timestamps rather than only as
 * durations, because a textfile may be read long after it was written; the
 * one duration (seconds to renewal) is as of the time of writing.
 */
import type { AgentConfig, Config } from '../config/config.js';
import { writeFileAtomic } from '../lib/fs.js';
import {
  collectAgentStatus,
  EXIT_FOR,
  type AgentStatusReport,
  type CertificateReport,
  type StatusReport,
} from './status.js';

interface Sample {
  labels?: Record<string, string>;
  value: number;
}

interface Family {
  name: string;
  help: string;
  samples: Sample[];
}

const seconds = (iso: string | null | undefined) => (iso ? Date.parse(iso) / 1000 : undefined);
const bool = (b: boolean) => (b ? 1 : 0);

const STATUS_HELP = 'Overall status as in `cert-agent status`: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.';
const CERT_STATUS_HELP =
  "One certificate's status as in `cert-agent status --name`: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.";
const CONFIG_OK_HELP = 'Whether the config file could be read and is valid (1) or not (0).';

/** What a scraper gets when the config is missing, unreadable or invalid: enough to alert on. */
export function unusableConfigMetrics(): string {
  return renderMetrics([
    { name: 'cert_agent_status', help: STATUS_HELP, samples: [{ value: 3 }] },
    { name: 'cert_agent_config_ok', help: CONFIG_OK_HELP, samples: [{ value: 0 }] },
  ]);
}

/**
 * The metric families of the agent: its overall status and whether its
 * config is usable, unlabelled; every other family once per certificate,
 * with a `certificate` label (its name). A family whose value is unknown for
 * a certificate has no sample for it rather than a faked one.
 */
export function metricFamilies(report: AgentStatusReport, now: Date): Family[] {
  const families = new Map<string, Family>();
  const add: Add = (name, help, value, labels) => {
    if (value === undefined || Number.isNaN(value)) return;
    const family = families.get(name) ?? { name: `cert_agent_${name}`, help, samples: [] };
    families.set(name, family);
    family.samples.push({ value, ...(labels ? { labels } : {}) });
  };
  add('status', STATUS_HELP, EXIT_FOR[report.status]);
  add('config_ok', CONFIG_OK_HELP, 1);
  for (const r of report.certificates) {
    const label = { certificate: r.name };
    certificateReportFamilies(r, now, (name, help, value, labels) => add(name, help, value, { ...label, ...labels }));
  }
  return [...families.values()];
}

function certificateReportFamilies(r: CertificateReport, now: Date, add: Add): void {
  add('certificate_status', CERT_STATUS_HELP, EXIT_FOR[r.status]);
  add(
    'certificate_present',
    'Whether a certificate is installed in certificate.dir (1) or not (0).',
    r.status === 'UNKNOWN' ? undefined : bool(Boolean(r.certificate)),
  );
  certificateFamilies(r, add);
  if (r.renewal) renewalFamilies(r.renewal, now, add);
  if (r.ca)
    add(
      'trust_broken',
      'Whether the CA no longer chains to the pinned root (1): re-enroll if it was recreated on purpose.',
      bool(r.ca.trust === 'broken'),
    );
  if (r.reload) {
    add(
      'reload_last_success',
      'Whether the last reload of the consumer succeeded (1) or failed (0); absent if none yet.',
      r.reload.lastResult ? bool(r.reload.lastResult.ok) : undefined,
    );
    add(
      'served_certificate_match',
      'Whether the consumer was last seen serving the installed certificate (1) or another one (0); absent if never checked.',
      r.reload.servedMatches === null ? undefined : bool(r.reload.servedMatches),
    );
  }
}

/** One family of one sample; left out when the value is unknown. */
type Add = (name: string, help: string, value: number | undefined, labels?: Record<string, string>) => void;

function certificateFamilies(r: Pick<StatusReport, 'certificate'>, add: Add): void {
  const c = r.certificate;
  if (c) {
    add('certificate_info', 'The installed certificate; the value is always 1.', 1, {
      serial: c.serial,
      issuer: c.issuer,
      names: c.names.join(','),
    });
    add(
      'certificate_not_before_timestamp_seconds',
      "Start of the installed certificate's validity, seconds since the epoch.",
      seconds(c.notBefore),
    );
    add(
      'certificate_not_after_timestamp_seconds',
      'Expiry of the installed certificate, seconds since the epoch.',
      seconds(c.notAfter),
    );
    add(
      'certificate_placeholder',
      'Whether the self-signed placeholder is in use (1) because the CA has not answered yet.',
      bool(c.placeholder),
    );
    add('certificate_key_matches', 'Whether key.pem belongs to cert.pem (1) or not (0).', bool(c.keyMatches));
    add(
      'certificate_chain_verifies',
      'Whether the certificate chain verifies to the pinned root now (1) or not (0).',
      bool(c.chainVerifies),
    );
  }
}

function renewalFamilies(renewal: StatusReport['renewal'], now: Date, add: Add): void {
  const next = seconds(renewal.next);
  add(
    'renewal_next_timestamp_seconds',
    'When renewal of the installed certificate becomes due, seconds since the epoch.',
    next,
  );
  add(
    'renewal_remaining_seconds',
    'Seconds from the time of writing until renewal is due; negative once due.',
    next === undefined ? undefined : Math.round(next - now.getTime() / 1000),
  );
  add(
    'last_success_timestamp_seconds',
    'Last time a certificate was issued and installed, seconds since the epoch; 0 if never.',
    seconds(renewal.lastSuccess) ?? 0,
  );
  add(
    'last_attempt_timestamp_seconds',
    'Last renewal check or attempt, seconds since the epoch; 0 if never.',
    seconds(renewal.lastAttempt?.at) ?? 0,
  );
  add('consecutive_failures', 'Failed attempts in a row since the last success.', renewal.consecutiveFailures);
  const last = renewal.lastRenewal;
  add(
    'last_renewal_method',
    'How the last renewal went: method="step" over the CA\'s renewal API, method="acme" an ACME order; the value is always 1, absent before the first.',
    last ? 1 : undefined,
    last ? { method: last.method } : undefined,
  );
  add(
    'last_renewal_fallback',
    "Whether the last renewal fell back to an ACME order because the CA's renewal API could not renew the certificate (1) or not (0); absent before the first.",
    last ? bool(last.fallback !== null) : undefined,
  );
  const al = renewal.caOutageAllowance;
  add(
    'ca_outage_allowance_seconds',
    'How long from the time of writing the CA may stay unreachable before the installed certificate expires.',
    al?.seconds,
  );
  add(
    'ca_outage_allowance_normal_day_seconds',
    'What the renewal schedule leaves on a normal day: expiry minus the renewal time of the installed certificate.',
    al?.normalDaySeconds,
  );
  add(
    'ca_outage_allowance_warning_seconds',
    'The allowance below which status warns (renewal.minAllowance), in seconds for this certificate.',
    al?.warnBelowSeconds,
  );
}

export function renderMetrics(families: Family[]): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# HELP ${f.name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${f.name} gauge`);
    for (const s of f.samples) out.push(`${f.name}${labelText(s.labels)} ${formatValue(s.value)}`);
  }
  return out.join('\n') + '\n';
}

function labelText(labels: Record<string, string> | undefined): string {
  if (!labels) return '';
  const escape = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
  return `{${Object.entries(labels)
    .map(([k, v]) => `${k}="${escape(v)}"`)
    .join(',')}}`;
}

function formatValue(v: number): string {
  if (Number.isInteger(v)) return String(v);
  return String(Math.round(v * 1000) / 1000);
}

export function metricsText(config: AgentConfig | Config, now: Date): string {
  return renderMetrics(metricFamilies(collectAgentStatus(config, now), now));
}

/**
 * Writes metrics.textfile atomically (temp file + rename in the same
 * directory), 0644 since it holds no secret and node_exporter runs as its
 * own user. A no-op when metrics.textfile is unset. Throws StoreError when
 * the file cannot be written; the caller logs it and carries on.
 */
export function writeMetricsTextfile(config: AgentConfig | Config, now: Date): string | undefined {
  const file = config.metrics?.textfile;
  if (!file) return undefined;
  writeFileAtomic(file, metricsText(config, now), 0o644);
  return file;
}
