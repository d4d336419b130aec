import { describe, expect, test } from 'vitest';
import { checkCron, concurrencyDecision, historyToPrune, MAX_COUNTED_TICKS, nextTick, planDue, ScheduleError, ticksBetween } from '../../src/domain/schedule-time.js';
import { scheduleSpecSchema } from '../../src/domain/schedule-spec.js';

const t = (s: string) => Date.parse(s);
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

describe('nextTick', () => {
  test.each([
    { name: 'every 15 minutes, UTC', expr: '*/15 * * * *', tz: 'UTC', after: '2026-05-01T10:07:00Z', want: '2026-05-01T10:15:00.000Z' },
    { name: 'strictly after a tick', expr: '*/15 * * * *', tz: 'UTC', after: '2026-05-01T10:15:00Z', want: '2026-05-01T10:30:00.000Z' },
    { name: 'a millisecond before a tick', expr: '0 * * * *', tz: 'UTC', after: '2026-05-01T10:59:59.999Z', want: '2026-05-01T11:00:00.000Z' },
    { name: '@hourly', expr: '@hourly', tz: 'UTC', after: '2026-05-01T10:07:00Z', want: '2026-05-01T11:00:00.000Z' },
    { name: '@daily in Berlin (CEST, UTC+2)', expr: '@daily', tz: 'Europe/Berlin', after: '2026-05-01T10:00:00Z', want: '2026-05-01T22:00:00.000Z' },
    { name: '@midnight is @daily', expr: '@midnight', tz: 'UTC', after: '2026-05-01T10:00:00Z', want: '2026-05-02T00:00:00.000Z' },
    { name: '@weekly: Sunday midnight', expr: '@weekly', tz: 'UTC', after: '2026-05-01T10:00:00Z', want: '2026-05-03T00:00:00.000Z' },
    { name: '@monthly', expr: '@monthly', tz: 'UTC', after: '2026-05-01T10:00:00Z', want: '2026-06-01T00:00:00.000Z' },
    { name: '@yearly', expr: '@yearly', tz: 'UTC', after: '2026-05-01T10:00:00Z', want: '2027-01-01T00:00:00.000Z' },
    { name: '@annually', expr: '@annually', tz: 'UTC', after: '2026-05-01T10:00:00Z', want: '2027-01-01T00:00:00.000Z' },
    { name: '9:00 on weekdays in New York (EDT, UTC-4)', expr: '0 9 * * 1-5', tz: 'America/New_York', after: '2026-05-01T14:00:00Z', want: '2026-05-04T13:00:00.000Z' },
    { name: 'optional seconds field', expr: '*/10 * * * * *', tz: 'UTC', after: '2026-05-01T10:00:01Z', want: '2026-05-01T10:00:10.000Z' },
    // Europe/Berlin springs forward on 2026-03-29 at 02:00 CET → 03:00 CEST: 02:30 does not exist.
    { name: 'Berlin, spring forward: 02:30 runs once at 03:30 CEST', expr: '30 2 * * *', tz: 'Europe/Berlin', after: '2026-03-28T12:00:00Z', want: '2026-03-29T01:30:00.000Z' },
    { name: 'Berlin, the day after spring forward: back to 02:30 CEST', expr: '30 2 * * *', tz: 'Europe/Berlin', after: '2026-03-29T02:00:00Z', want: '2026-03-30T00:30:00.000Z' },
    // Europe/Berlin falls back on 2026-10-25 at 03:00 CEST → 02:00 CET: 02:30 happens twice.
    { name: 'Berlin, fall back: 02:30 runs at the first 02:30 (CEST)', expr: '30 2 * * *', tz: 'Europe/Berlin', after: '2026-10-24T12:00:00Z', want: '2026-10-25T00:30:00.000Z' },
    { name: 'Berlin, fall back: not again at the second 02:30 (CET)', expr: '30 2 * * *', tz: 'Europe/Berlin', after: '2026-10-25T00:30:00Z', want: '2026-10-26T01:30:00.000Z' },
    // America/New_York: 2026-03-08 02:00 EST → 03:00 EDT; 2026-11-01 02:00 EDT → 01:00 EST.
    { name: 'New York, spring forward: 02:00 runs at 03:00 EDT', expr: '0 2 * * *', tz: 'America/New_York', after: '2026-03-07T12:00:00Z', want: '2026-03-08T07:00:00.000Z' },
    { name: 'New York, fall back: hourly keeps real hours (01:00 EDT)', expr: '0 * * * *', tz: 'America/New_York', after: '2026-11-01T04:30:00Z', want: '2026-11-01T05:00:00.000Z' },
    { name: 'New York, fall back: hourly, the second 01:00 (EST)', expr: '0 * * * *', tz: 'America/New_York', after: '2026-11-01T05:00:00Z', want: '2026-11-01T06:00:00.000Z' },
  ])('$name', ({ expr, tz, after, want }) => {
    expect(iso(nextTick(expr, tz, t(after)))).toBe(want);
  });

  test('a daily schedule across the Berlin fall-back day has no duplicate and no gap', () => {
    const ticks = ticksBetween('30 2 * * *', 'Europe/Berlin', t('2026-10-23T00:00:00Z'), t('2026-10-28T00:00:00Z'));
    expect(ticks.count).toBe(5);
  });

  test('every 30 minutes through the New York fall-back: 2 ticks per real hour, 25 hours that day', () => {
    // 2026-11-01 local midnight EDT = 04:00Z; next local midnight EST = 2026-11-02T05:00Z.
    const ticks = ticksBetween('*/30 * * * *', 'America/New_York', t('2026-11-01T04:00:00Z'), t('2026-11-02T04:59:59Z'));
    expect(ticks.count).toBe(50);
  });
});

describe('checkCron', () => {
  test.each([
    { name: 'out of range minute', expr: '61 * * * *', tz: 'UTC', want: /invalid cron expression/ },
    { name: 'too few fields', expr: '* * *', tz: 'UTC', want: /5 fields/ },
    { name: 'too many fields', expr: '* * * * * * *', tz: 'UTC', want: /5 fields/ },
    { name: 'unknown macro', expr: '@every5m', tz: 'UTC', want: /unknown macro/ },
    { name: 'garbage', expr: 'every day', tz: 'UTC', want: /5 fields/ },
    { name: 'unknown time zone', expr: '* * * * *', tz: 'Mars/Olympus', want: /unknown time zone/ },
  ])('$name', ({ expr, tz, want }) => {
    expect(() => checkCron(expr, tz)).toThrow(ScheduleError);
    expect(() => checkCron(expr, tz)).toThrow(want);
  });

  test.each(['*/5 * * * *', '0 0 1,15 * *', '0 9 * * mon-fri', '@hourly', '@daily', '0 0 * * 0', '*/1 * * * * *'])('accepts %s', (expr) => {
    expect(() => checkCron(expr, 'Europe/Berlin')).not.toThrow();
  });
});

describe('planDue', () => {
  const base = { schedule: '*/5 * * * *', timeZone: 'UTC' };
  test.each([
    {
      name: 'on time: runs the due tick, nothing missed',
      nextRunAt: '2026-05-01T10:05:00Z', now: '2026-05-01T10:05:00.300Z', deadline: undefined,
      run: '2026-05-01T10:05:00.000Z', tooLate: null, missed: 0, first: null, last: null, next: '2026-05-01T10:10:00.000Z',
    },
    {
      name: 'down for 3 ticks: runs the latest, reports the 2 before it',
      nextRunAt: '2026-05-01T10:05:00Z', now: '2026-05-01T10:16:00Z', deadline: undefined,
      run: '2026-05-01T10:15:00.000Z', tooLate: null, missed: 2, first: '2026-05-01T10:05:00.000Z', last: '2026-05-01T10:10:00.000Z', next: '2026-05-01T10:20:00.000Z',
    },
    {
      name: 'latest tick within the starting deadline: runs it',
      nextRunAt: '2026-05-01T10:05:00Z', now: '2026-05-01T10:16:00Z', deadline: 120,
      run: '2026-05-01T10:15:00.000Z', tooLate: null, missed: 2, first: '2026-05-01T10:05:00.000Z', last: '2026-05-01T10:10:00.000Z', next: '2026-05-01T10:20:00.000Z',
    },
    {
      name: 'latest tick past the starting deadline: runs nothing',
      nextRunAt: '2026-05-01T10:05:00Z', now: '2026-05-01T10:18:00Z', deadline: 60,
      run: null, tooLate: '2026-05-01T10:15:00.000Z', missed: 2, first: '2026-05-01T10:05:00.000Z', last: '2026-05-01T10:10:00.000Z', next: '2026-05-01T10:20:00.000Z',
    },
    {
      name: 'deadline 0: only an exactly-on-time start counts',
      nextRunAt: '2026-05-01T10:05:00Z', now: '2026-05-01T10:05:01Z', deadline: 0,
      run: null, tooLate: '2026-05-01T10:05:00.000Z', missed: 0, first: null, last: null, next: '2026-05-01T10:10:00.000Z',
    },
    {
      name: 'not due yet',
      nextRunAt: '2026-05-01T10:05:00Z', now: '2026-05-01T10:04:00Z', deadline: undefined,
      run: null, tooLate: null, missed: 0, first: null, last: null, next: '2026-05-01T10:05:00.000Z',
    },
  ])('$name', (c) => {
    const plan = planDue({ ...base, nextRunAt: t(c.nextRunAt), now: t(c.now), startingDeadlineSeconds: c.deadline });
    expect(iso(plan.run)).toBe(c.run);
    expect(iso(plan.tooLate)).toBe(c.tooLate);
    expect(plan.missed.count).toBe(c.missed);
    expect(iso(plan.missed.first)).toBe(c.first);
    expect(iso(plan.missed.last)).toBe(c.last);
    expect(iso(plan.next)).toBe(c.next);
  });

  test('a seconds schedule down for days: counting stops at the cap, the latest tick is still exact', () => {
    const plan = planDue({ schedule: '* * * * * *', timeZone: 'UTC', nextRunAt: t('2026-05-01T00:00:00Z'), now: t('2026-05-03T00:00:00.500Z') });
    expect(plan.missed.capped).toBe(true);
    expect(plan.missed.count).toBe(MAX_COUNTED_TICKS);
    expect(iso(plan.run)).toBe('2026-05-03T00:00:00.000Z');
    expect(iso(plan.missed.last)).toBe('2026-05-02T23:59:59.000Z');
  });

  test('across a DST change: missed ticks are counted in real time (Berlin spring forward)', () => {
    // Hourly from 00:00 CET to 05:00 CEST on 2026-03-29: 00, 01, 03, 04, 05 local (02 does not exist).
    const plan = planDue({ schedule: '0 * * * *', timeZone: 'Europe/Berlin', nextRunAt: t('2026-03-28T23:00:00Z'), now: t('2026-03-29T03:00:10Z') });
    expect(iso(plan.run)).toBe('2026-03-29T03:00:00.000Z');
    expect(plan.missed.count).toBe(4);
  });
});

describe('concurrencyDecision', () => {
  test.each([
    { name: 'Allow, none active', policy: 'Allow' as const, active: [], want: 'start' },
    { name: 'Allow, one active', policy: 'Allow' as const, active: ['b1'], want: 'start' },
    { name: 'Forbid, none active', policy: 'Forbid' as const, active: [], want: 'start' },
    { name: 'Forbid, one active', policy: 'Forbid' as const, active: ['b1'], want: 'skip' },
    { name: 'Replace, none active', policy: 'Replace' as const, active: [], want: 'start' },
    { name: 'Replace, two active', policy: 'Replace' as const, active: ['b1', 'b2'], want: 'replace' },
  ])('$name', ({ policy, active, want }) => {
    const d = concurrencyDecision(policy, active);
    expect(d.action).toBe(want);
    if (d.action === 'replace') expect(d.cancel).toEqual(active);
    if (d.action === 'skip') expect(d.reason).toContain('b1');
  });
});

describe('historyToPrune', () => {
  const run = (id: string, phase: string) => ({ id, phase, order: id });
  test.each([
    { name: 'under the limits', runs: [run('a', 'Succeeded'), run('b', 'Failed')], ok: 3, bad: 1, want: [] },
    { name: 'keeps the newest successes', runs: ['a', 'b', 'c', 'd', 'e'].map((id) => run(id, 'Succeeded')), ok: 3, bad: 1, want: ['a', 'b'] },
    { name: 'keeps the newest failure; Cancelled counts as failed', runs: [run('a', 'Failed'), run('b', 'Cancelled'), run('c', 'Succeeded'), run('d', 'Failed')], ok: 3, bad: 1, want: ['a', 'b'] },
    { name: 'limit 0 keeps none', runs: [run('a', 'Succeeded'), run('b', 'Failed')], ok: 0, bad: 0, want: ['a', 'b'] },
    { name: 'input order does not matter', runs: [run('c', 'Succeeded'), run('a', 'Succeeded'), run('b', 'Succeeded')], ok: 1, bad: 1, want: ['a', 'b'] },
  ])('$name', ({ runs, ok, bad, want }) => {
    expect(historyToPrune(runs, { successfulHistoryLimit: ok, failedHistoryLimit: bad })).toEqual(want);
  });
});

describe('scheduleSpecSchema', () => {
  const template = { task: 'rev', items: ['a'] };
  test('defaults', () => {
    const s = scheduleSpecSchema.parse({ schedule: '@hourly', batchTemplate: template });
    expect(s).toMatchObject({ timeZone: 'UTC', concurrencyPolicy: 'Allow', suspend: false, successfulHistoryLimit: 3, failedHistoryLimit: 1 });
  });
  test.each([
    { name: 'invalid cron', spec: { schedule: '61 * * * *', batchTemplate: template }, pointer: ['schedule'] },
    { name: 'unknown zone', spec: { schedule: '@daily', timeZone: 'Nowhere/City', batchTemplate: template }, pointer: ['timeZone'] },
    { name: 'negative history limit', spec: { schedule: '@daily', successfulHistoryLimit: -1, batchTemplate: template }, pointer: ['successfulHistoryLimit'] },
    { name: 'negative deadline', spec: { schedule: '@daily', startingDeadlineSeconds: -5, batchTemplate: template }, pointer: ['startingDeadlineSeconds'] },
    { name: 'template without items', spec: { schedule: '@daily', batchTemplate: { task: 'rev', items: [] } }, pointer: ['batchTemplate', 'items'] },
    { name: 'unknown policy', spec: { schedule: '@daily', concurrencyPolicy: 'Sometimes', batchTemplate: template }, pointer: ['concurrencyPolicy'] },
  ])('refuses $name', ({ spec, pointer }) => {
    const r = scheduleSpecSchema.safeParse(spec);
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => i.path)).toContainEqual(pointer);
  });
});
