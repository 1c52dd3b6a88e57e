/**
 * `cert-agent status`: the truth about this container's certificate, read
 * from disk and state.json only (no network, no daemon needed), in one look
 * for a person and as a stable JSON document for monitoring
 * (docs/status.schema.json). Exit codes follow the monitoring-plugin
 * convention: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
 *
 * The document is built field by field from state.json rather than copying
 * its records, so a new field in state.json never changes the published
 * schema by accident.
 *
 * Each section of the document is built by its own function (status/*.ts)
 * from what was read once here; each says what it found wrong, and the
 * verdict lists every critical problem before every warning.
 */
import { X509Certificate } from 'node:crypto';
import { certificatesOf, type AgentConfig, type Config } from '../config/config.js';
import { describeError } from '../lib/errors.js';
import { ownershipForReading } from '../store/ownership.js';
import { readState } from '../store/state.js';
import { loadTrust } from '../trust/file.js';
import { caSection } from './status/ca.js';
import { certificateSection } from './status/certificate.js';
import { reloadSection } from './status/reload.js';
import { renewalSection } from './status/renewal.js';
import {
  STATUS_SCHEMA_ID,
  worstOf,
  type AgentStatusReport,
  type CertificateReport,
  type Level,
  type Problems,
  type StatusReport,
} from './status/report.js';

export { EXIT_FOR, type AgentStatusReport, type CertificateReport, type StatusReport } from './status/report.js';

/**
 * The agent's report over the certificates asked for (all, or `names`'s
 * one): each certificate's own, and the worst verdict over them.
 */
export function collectAgentStatus(config: AgentConfig | Config, now: Date, certs?: Config[]): AgentStatusReport {
  const reports: CertificateReport[] = (certs ?? certificatesOf(config) ?? []).map((c) => {
    const r = collectStatus(c, now);
    return { name: c.certificate.name, ...sectionsOf(r) };
  });
  const several = reports.length > 1;
  const problems = reports.flatMap((r) => r.problems.map((p) => (several ? `${r.name}: ${p}` : p)));
  const only = !several && reports[0] ? sectionsOf(reports[0]) : {};
  const { status: _s, problems: _p, ...sections } = only as Partial<CertificateReport>;
  return {
    schema: STATUS_SCHEMA_ID,
    status: worstOf(reports.map((r) => r.status)),
    problems,
    checkedAt: now.toISOString(),
    ...sections,
    certificates: reports,
  };
}

/** A certificate's verdict and sections, without the document's own fields. */
function sectionsOf(r: Partial<StatusReport>): Omit<CertificateReport, 'name'> {
  const { status = 'UNKNOWN', problems = [], certificate = null, renewal, ca, reload } = r as StatusReport;
  return { status, problems, certificate, renewal, ca, reload };
}

/** A report for when there is nothing to inspect (no usable config); only these fields are promised then. */
export function unknownReport(
  problem: string,
  now: Date,
): Pick<StatusReport, 'schema' | 'status' | 'problems' | 'checkedAt'> {
  return { schema: STATUS_SCHEMA_ID, status: 'UNKNOWN', problems: [problem], checkedAt: now.toISOString() };
}

export function collectStatus(config: Config, now: Date): StatusReport {
  try {
    return inspect(config, now);
  } catch (err) {
    // An unreadable directory or file must still give monitoring an answer, and say what to do.
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === 'EACCES' || code === 'EPERM' ? '; run as root (sudo cert-agent status)' : '';
    return unknownReport(`cannot inspect the installation: ${describeError(err)}${hint}`, now) as StatusReport;
  }
}

function inspect(config: Config, now: Date): StatusReport {
  const state = readState(config.stateDir, config.certificate.name);
  const trust = loadTrust(config.stateDir);
  const roots = (trust?.roots ?? []).map((r) => new X509Certificate(r.pem));
  // Reading needs no ownership, and an unknown owner must not hide the status.
  const cert = certificateSection(config, ownershipForReading(config), roots, now, state);
  const ca = caSection(config, state, trust, roots);
  const renewal = renewalSection(state, cert.next, cert.allowance, now, config.renewal.method);
  const reload = reloadSection(config, state, cert.live);
  // In this order within each severity: the certificate, the CA, the last attempt, the reload.
  const sections: Problems[] = [cert, ca, renewal, reload];
  const critical = sections.flatMap((p) => p.critical);
  const warning = sections.flatMap((p) => p.warning);
  const status: Level = critical.length ? 'CRITICAL' : warning.length ? 'WARNING' : 'OK';
  return {
    schema: STATUS_SCHEMA_ID,
    status,
    problems: [...critical, ...warning],
    checkedAt: now.toISOString(),
    certificate: cert.certificate,
    renewal: renewal.renewal,
    ca: ca.ca,
    reload: reload.reload,
  };
}
