/**
 * `doctor`: whether renewal.at and jitter leave the CA room for an outage,
 * for the lifetime the CA actually issues.
 */
import { leastNormalDayAllowanceMs } from '../../renewal/schedule.js';
import { human } from '../status-text.js';
import { liveSetQuietly } from './certificate.js';
import { diagnosis, type Diagnosis, type DoctorContext } from './types.js';

/** Less than this between the renewal time and expiry leaves no time to notice and fix a CA outage. */
const MIN_NORMAL_DAY_ALLOWANCE_MS = 60 * 60_000;

export function checkOutageAllowance({ config }: DoctorContext): Diagnosis[] {
  const live = liveSetQuietly(config);
  if (!live || live.placeholder) return [];
  const lifetimeMs = new Date(live.cert.validTo).getTime() - new Date(live.cert.validFrom).getTime();
  const least = leastNormalDayAllowanceMs(lifetimeMs, config.renewal);
  const most = leastNormalDayAllowanceMs(lifetimeMs, { at: config.renewal.at - config.renewal.jitter, jitter: 0 });
  const policy = `renewal.at ${config.renewal.at} and jitter ${config.renewal.jitter}`;
  const range = `${human(least / 1000)} to ${human(most / 1000)}`;
  if (least < MIN_NORMAL_DAY_ALLOWANCE_MS) {
    const certs = `the CA's ${human(lifetimeMs / 1000)} certificates`;
    return [
      diagnosis(
        'WARN',
        'outage allowance',
        `with ${policy}, ${certs} leave only ${range} between renewal and expiry ` +
          'for a CA outage (less than 1h): lower renewal.at, or have the CA issue longer certificates',
      ),
    ];
  }
  return [
    diagnosis(
      'ok',
      'outage allowance',
      `with ${policy}, the CA's ${human(lifetimeMs / 1000)} certificates leave ${range} ` +
        'between renewal and expiry for a CA outage',
    ),
  ];
}
