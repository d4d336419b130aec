import { CronExpressionParser, type CronExpression } from 'cron-parser';

/**
 * When a schedule runs: cron expressions in an IANA time zone, and what a scheduler that woke
 * up late does about the ticks it slept through. Pure (time comes in as epoch milliseconds);
 * cron-parser does the calendar arithmetic, including daylight-saving transitions: a wall-clock
 * time that does not exist that day (02:30 when clocks jump 02:00 → 03:00) runs at the shifted
 * time once, and a wall-clock time that happens twice (the hour clocks go back) runs once.
 */

/** The macros Kubernetes CronJobs accept, as the 5-field expressions they stand for. */
export const CRON_MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

export class ScheduleError extends Error {}

/** Expands a macro; checks the field count (5, or 6 with a leading seconds field). */
function normalize(expr: string): string {
  const trimmed = expr.trim();
  if (trimmed.startsWith('@')) {
    const macro = CRON_MACROS[trimmed.toLowerCase()];
    if (!macro) throw new ScheduleError(`unknown macro ${JSON.stringify(trimmed)}: use one of ${Object.keys(CRON_MACROS).join(', ')}`);
    return macro;
  }
  const fields = trimmed.split(/\s+/).filter(Boolean);
  if (fields.length !== 5 && fields.length !== 6) {
    throw new ScheduleError(`a cron expression has 5 fields (minute hour day-of-month month day-of-week), or 6 with a leading seconds field; got ${fields.length}`);
  }
  return fields.join(' ');
}

/** True when `tz` is an IANA time zone this runtime knows. */
export function isKnownTimeZone(tz: string): boolean {
  if (tz.length === 0) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

function iterator(expr: string, tz: string, fromMs: number): CronExpression {
  if (!isKnownTimeZone(tz)) throw new ScheduleError(`unknown time zone ${JSON.stringify(tz)}: use an IANA name such as "UTC" or "Europe/Berlin"`);
  try {
    return CronExpressionParser.parse(normalize(expr), { tz, currentDate: new Date(fromMs) });
  } catch (err) {
    if (err instanceof ScheduleError) throw err;
    throw new ScheduleError(`invalid cron expression ${JSON.stringify(expr)}: ${(err as Error).message}`);
  }
}

/** Throws a ScheduleError naming what is wrong with the expression or the zone; returns nothing. */
export function checkCron(expr: string, tz: string): void {
  const it = iterator(expr, tz, 0);
  // An expression that never matches (e.g. 30 February) is refused too.
  try {
    it.next();
  } catch (err) {
    throw new ScheduleError(`cron expression ${JSON.stringify(expr)} never matches a date: ${(err as Error).message}`);
  }
}

/** The first tick strictly after `afterMs`, or null when the expression has none. */
export function nextTick(expr: string, tz: string, afterMs: number): number | null {
  const it = iterator(expr, tz, afterMs);
  try {
    const t = it.next().getTime();
    // cron-parser starts from the next whole second; a tick equal to afterMs is not "after".
    return t > afterMs ? t : it.next().getTime();
  } catch {
    return null;
  }
}

/** Counting missed ticks stops here: a seconds schedule down for a week need not list them all. */
export const MAX_COUNTED_TICKS = 10_000;

/** The ticks in [fromMs, toMs], counted up to MAX_COUNTED_TICKS, with the first and the last. */
export function ticksBetween(expr: string, tz: string, fromMs: number, toMs: number): { count: number; capped: boolean; first: number | null; last: number | null } {
  let count = 0;
  let first: number | null = null;
  let last: number | null = null;
  // One iterator for the whole walk: re-parsing per tick costs ~0.2 ms.
  const it = iterator(expr, tz, fromMs - 1000);
  for (;;) {
    let t: number;
    try {
      t = it.next().getTime();
    } catch {
      break;
    }
    if (t < fromMs) continue;
    if (t > toMs) break;
    if (count === MAX_COUNTED_TICKS) {
      // Past the cap: the last tick is still exact (found backwards from toMs).
      const prev = iterator(expr, tz, toMs + 1).prev().getTime();
      return { count, capped: true, first, last: prev };
    }
    count++;
    first ??= t;
    last = t;
  }
  return { count, capped: false, first, last };
}

/** What to do with the ticks that are due: run at most one, report the rest. */
export interface DuePlan {
  /** the tick to start a batch for now, or null */
  run: number | null;
  /** the due tick that was not run because it is older than startingDeadlineSeconds */
  tooLate: number | null;
  /** earlier due ticks nobody ran (the scheduler was down or late); count 0 when none */
  missed: { count: number; capped: boolean; first: number | null; last: number | null };
  /** the next tick after now: the schedule's new next_run_at */
  next: number | null;
}

/**
 * A scheduler that finds a schedule due (`nextRunAt <= now`) starts at most ONE batch: for the
 * most recent due tick, and only if that tick is within `startingDeadlineSeconds` of now (no
 * deadline: always). Every earlier due tick is reported as missed, never silently dropped
 * (Kubernetes gives up after 100 missed start times; this counts them and carries on).
 */
export function planDue(o: { schedule: string; timeZone: string; nextRunAt: number; now: number; startingDeadlineSeconds?: number | null }): DuePlan {
  const due = ticksBetween(o.schedule, o.timeZone, o.nextRunAt, o.now);
  const next = nextTick(o.schedule, o.timeZone, o.now);
  const latest = due.last;
  const noneMissed = { count: 0, capped: false, first: null, last: null };
  if (latest === null) return { run: null, tooLate: null, missed: noneMissed, next };
  const earlier = due.count > 1 || due.capped ? { count: due.capped ? due.count : due.count - 1, capped: due.capped, first: due.first, last: previousOf(o, latest) } : noneMissed;
  const deadline = o.startingDeadlineSeconds;
  const late = deadline !== undefined && deadline !== null && o.now - latest > deadline * 1000;
  return { run: late ? null : latest, tooLate: late ? latest : null, missed: earlier, next };
}

function previousOf(o: { schedule: string; timeZone: string }, tick: number): number | null {
  try {
    return iterator(o.schedule, o.timeZone, tick).prev().getTime();
  } catch {
    return null;
  }
}

export const CONCURRENCY_POLICIES = ['Allow', 'Forbid', 'Replace'] as const;
export type ConcurrencyPolicy = (typeof CONCURRENCY_POLICIES)[number];

/** CronJob's concurrencyPolicy, given the schedule's unfinished batches. */
export function concurrencyDecision(policy: ConcurrencyPolicy, activeIds: readonly string[]): { action: 'start' } | { action: 'skip'; reason: string } | { action: 'replace'; cancel: string[] } {
  if (activeIds.length === 0 || policy === 'Allow') return { action: 'start' };
  if (policy === 'Forbid') return { action: 'skip', reason: `concurrencyPolicy Forbid: ${activeIds.length === 1 ? 'batch' : 'batches'} ${activeIds.join(', ')} still running` };
  return { action: 'replace', cancel: [...activeIds] };
}

/** A finished batch of a schedule, for history pruning. */
export interface FinishedRun {
  id: string;
  phase: string;
  /** sortable age: later is newer (batch ids sort by creation time) */
  order: string;
}

/**
 * The finished batches beyond the history limits, oldest first: the newest
 * `successfulHistoryLimit` Succeeded and the newest `failedHistoryLimit` Failed or Cancelled
 * batches are kept. Unfinished batches are never pruned.
 */
export function historyToPrune(finished: readonly FinishedRun[], limits: { successfulHistoryLimit: number; failedHistoryLimit: number }): string[] {
  const newestFirst = [...finished].sort((a, b) => (a.order < b.order ? 1 : a.order > b.order ? -1 : 0));
  const ok = newestFirst.filter((r) => r.phase === 'Succeeded');
  const bad = newestFirst.filter((r) => r.phase !== 'Succeeded');
  return [...ok.slice(limits.successfulHistoryLimit), ...bad.slice(limits.failedHistoryLimit)].sort((a, b) => (a.order < b.order ? -1 : 1)).map((r) => r.id);
}
