/**
 * What `human()` (agent/report/status-text.ts) prints for a duration, as a
 * regular expression source: the two largest units, the second padded where
 * it is minutes or seconds (2d4h, 3h12m, 5m07s, 42s). A test asserting a
 * duration that depends on when it runs (time left until expiry, say) must
 * accept every form: 59m59s becomes 1h00m half a second earlier.
 */
const HOUR_OF_DAY = String.raw`(?:1?\d|2[0-3])`;
const HOURS = String.raw`(?:[1-9]|1\d|2[0-3])`;
const MINUTES = String.raw`(?:[1-9]|[1-5]\d)`;
const PADDED = String.raw`[0-5]\d`;
const SECONDS = String.raw`[1-5]?\d`;
export const DURATION = String.raw`(?:[1-9]\d*d${HOUR_OF_DAY}h|${HOURS}h${PADDED}m|${MINUTES}m${PADDED}s|${SECONDS}s)`;
