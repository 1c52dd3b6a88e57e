/**
 * Cron expressions as `renewal.check` takes them (five fields, or six with
 * seconds first): checked when the configuration is read, and the next
 * moment one matches, in the machine's local time, for the daemon's checks. Every field must match (as node-cron matches, so
 * a schedule written for it keeps its meaning); the day fields take numbers,
 * ranges, steps and lists, names for months and weekdays, 0 or 7 for Sunday.
 *
 * Our own rather than a scheduler library's: the one the agent used formatted
 * the time of every tick with Intl to support time zones, which mapped ~7 MiB
 * of ICU data into an otherwise idle daemon for a schedule that only needs
 * local time. This is a pure function of the expression and a date.
 */

export interface CronSchedule {
  /** The first matching moment strictly after `after` (whole seconds). */
  next(after: Date): Date;
  /** Whether `date` (to the second) matches. */
  matches(date: Date): boolean;
}

interface Field {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
}

const FIELDS: readonly Field[] = [
  { name: 'second', min: 0, max: 59 },
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  {
    name: 'month',
    min: 1,
    max: 12,
    names: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'],
  },
  { name: 'day of week', min: 0, max: 7, names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] },
];

/** A search never needs more steps than this (one per month, day, hour, minute, second over ~5 years). */
const MAX_STEPS = 200_000;

/** The schedule, or a sentence saying what is wrong with the expression. */
export function parseCron(expression: string): CronSchedule | string {
  const parts = expression.trim().split(/\s+/).filter(Boolean);
  if (parts.length !== 5 && parts.length !== 6)
    return `has ${parts.length} field${parts.length === 1 ? '' : 's'}; expected 5 (minute hour day month weekday) or 6 (with seconds first)`;
  const texts = parts.length === 5 ? ['0', ...parts] : parts;
  const sets: Set<number>[] = [];
  for (let i = 0; i < FIELDS.length; i++) {
    const set = parseField(texts[i] as string, FIELDS[i] as Field);
    if (typeof set === 'string') return set;
    sets.push(set);
  }
  const [seconds, minutes, hours, days, months, weekdays] = sets as [
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
  ];
  if (weekdays.delete(7)) weekdays.add(0);
  const dayMatches = (d: Date) => days.has(d.getDate()) && weekdays.has(d.getDay());
  const matches = (d: Date) =>
    seconds.has(d.getSeconds()) &&
    minutes.has(d.getMinutes()) &&
    hours.has(d.getHours()) &&
    months.has(d.getMonth() + 1) &&
    dayMatches(d);
  return {
    matches,
    next(after: Date): Date {
      // Seconds, minutes and hours move forward in absolute time: the local
      // setters would resolve a repeated hour (the autumn DST change) to its
      // first occurrence and step back. Days and months move by the calendar.
      let t = Math.floor(after.getTime() / 1000) * 1000 + 1000;
      for (let step = 0; step < MAX_STEPS; step++) {
        const d = new Date(t);
        if (!months.has(d.getMonth() + 1)) {
          d.setMonth(d.getMonth() + 1, 1);
          d.setHours(0, 0, 0, 0);
          t = Math.max(d.getTime(), t + 1000);
        } else if (!dayMatches(d)) {
          d.setDate(d.getDate() + 1);
          d.setHours(0, 0, 0, 0);
          t = Math.max(d.getTime(), t + 1000);
        } else if (!hours.has(d.getHours())) {
          t += 3_600_000 - (d.getMinutes() * 60 + d.getSeconds()) * 1000;
        } else if (!minutes.has(d.getMinutes())) {
          t += 60_000 - d.getSeconds() * 1000;
        } else if (!seconds.has(d.getSeconds())) {
          t += 1000;
        } else return d;
      }
      // Only a date that never comes (e.g. 31 February) gets here.
      throw new RangeError(`cron expression ${JSON.stringify(expression)} never matches`);
    },
  };
}

/** A problem with the expression, or undefined when it is valid (including one that can never match). */
export function cronProblem(expression: string): string | undefined {
  const parsed = parseCron(expression);
  if (typeof parsed === 'string') return parsed;
  try {
    parsed.next(new Date());
    return undefined;
  } catch {
    return 'never matches a date';
  }
}

function parseField(text: string, field: Field): Set<number> | string {
  const set = new Set<number>();
  for (const item of text.split(',')) {
    const m = /^(\*|\?|[0-9a-z]+(?:-[0-9a-z]+)?)(?:\/([0-9]+))?$/i.exec(item);
    if (!m) return `${field.name} ${JSON.stringify(item)} is not a number, range, list or step`;
    const step = m[2] === undefined ? 1 : Number(m[2]);
    if (!(step >= 1)) return `${field.name} step ${JSON.stringify(m[2])} must be 1 or more`;
    let lo = field.min;
    let hi = field.name === 'day of week' ? 6 : field.max;
    if (m[1] !== '*' && m[1] !== '?') {
      const [a, b] = (m[1] as string).split('-');
      const from = value(a as string, field);
      if (typeof from === 'string') return from;
      lo = from;
      if (b !== undefined) {
        const to = value(b, field);
        if (typeof to === 'string') return to;
        if (to < from) return `${field.name} range ${JSON.stringify(m[1])} runs backwards`;
        hi = to;
      } else hi = m[2] === undefined ? from : field.max;
    }
    for (let v = lo; v <= hi; v += step) set.add(v);
  }
  return set;
}

function value(text: string, field: Field): number | string {
  const named = field.names?.indexOf(text.toLowerCase()) ?? -1;
  const v = named >= 0 ? named + (field.name === 'month' ? 1 : 0) : /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (Number.isNaN(v)) return `${field.name} ${JSON.stringify(text)} is not a number${field.names ? ' or a name' : ''}`;
  if (v < field.min || v > field.max) return `${field.name} ${v} is out of range ${field.min}-${field.max}`;
  return v;
}
