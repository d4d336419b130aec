import type { Batch, Item, Schedule, WebhookDelivery, WebhookEndpoint } from './api.js';
import { formatAge, formatLabels, renderTable, type Column } from './format.js';

/**
 * The `fanout get` tables, one per resource, pure. `table` is laid out to fit 80 columns with
 * the long ids Fanout makes (20 characters for batches, 28 for webhooks); `wide` adds columns
 * after those and is never cut. Cells are strings; `-` stands for "none", as in kubectl.
 */

export interface ResourceTable<T> {
  columns: Column[];
  cells(object: T, now: number): string[];
  /** added by `-o wide`, after the table's own */
  wideColumns: Column[];
  wideCells(object: T, now: number): string[];
}

export interface TableOptions {
  wide: boolean;
  /** the width `table` output fits (ignored when wide) */
  width: number;
}

/** Renders `objects` as `table` (fitted to the width) or `wide` (nothing cut). */
export function renderResourceTable<T>(table: ResourceTable<T>, objects: T[], now: number, opts: TableOptions): string {
  if (!opts.wide) return renderTable(table.columns, objects.map((o) => table.cells(o, now)), opts.width);
  return renderTable(
    [...table.columns, ...table.wideColumns],
    objects.map((o) => [...table.cells(o, now), ...table.wideCells(o, now)]),
  );
}

/** `now - iso` as an age (`5m`, `2h`, `3d`), `-` for no or an unreadable time. */
export function ageOf(iso: string | null | undefined, now: number): string {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(t) ? '-' : formatAge(now - t);
}

/** An ISO time to the second (`2026-11-29T02:29:07Z`), for wide CREATED columns. */
export function timeOf(iso: string | null | undefined): string {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(t) ? '-' : new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A duration from `from` to `to` (or to now while it runs), in age units. */
export function durationOf(from: string | null | undefined, to: string | null | undefined, now: number): string {
  const start = from ? Date.parse(from) : NaN;
  if (Number.isNaN(start)) return '-';
  const end = to ? Date.parse(to) : now;
  return Number.isNaN(end) ? '-' : formatAge(end - start);
}

const text = (value: unknown): string => (value === null || value === undefined || value === '' ? '-' : String(value));
const bool = (value: boolean): string => (value ? 'True' : 'False');

/** The last non-empty line of an error (a stderr tail ends with what went wrong). */
export function lastLine(error: string | null | undefined): string {
  const lines = (error ?? '').split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.length > 0 ? lines[lines.length - 1]! : '-';
}

export const BATCH_TABLE: ResourceTable<Batch> = {
  columns: [
    { header: 'NAME', shrinkable: true, minWidth: 8 },
    { header: 'ID' },
    { header: 'PHASE' },
    { header: 'SUCCEEDED' },
    { header: 'FAILED' },
    { header: 'AGE' },
  ],
  cells(b, now) {
    const c = b.status?.counts;
    return [text(b.name), b.id, b.status?.phase ?? 'Unknown', c ? `${c.succeeded}/${c.total}` : '-', c ? String(c.failed) : '-', ageOf(b.createdAt, now)];
  },
  wideColumns: [
    { header: 'RUNNING' },
    { header: 'PENDING' },
    { header: 'RUNTIME' },
    { header: 'TASK/IMAGE' },
    { header: 'PARALLELISM' },
    { header: 'DURATION' },
    { header: 'CREATED' },
    { header: 'LABELS' },
  ],
  wideCells(b, now) {
    const c = b.status?.counts;
    // Kubernetes runtimes run an image rather than a registered task.
    const task = b.spec?.task ?? (b.spec?.template as { image?: string } | undefined)?.image;
    return [
      c ? String(c.running) : '-',
      c ? String(c.pending) : '-',
      text(b.spec?.runtime ?? 'queue'),
      text(task),
      text(b.spec?.parallelism),
      durationOf(b.status?.startTime, b.status?.completionTime, now),
      timeOf(b.createdAt),
      formatLabels(b.labels),
    ];
  },
};

export const ITEM_TABLE: ResourceTable<Item> = {
  columns: [
    { header: 'INDEX' },
    { header: 'CUSTOM ID', shrinkable: true, minWidth: 9 },
    { header: 'STATUS' },
    { header: 'ATTEMPTS' },
    { header: 'DURATION' },
    { header: 'ERROR', shrinkable: true, minWidth: 10 },
  ],
  cells(item, now) {
    return [String(item.index), text(item.customId), item.status, String(item.attempts?.length ?? 0), durationOf(item.startedAt, item.finishedAt, now), lastLine(item.error)];
  },
  wideColumns: [{ header: 'REASON' }, { header: 'EXIT CODE' }, { header: 'WORKER' }, { header: 'STARTED' }, { header: 'FINISHED' }],
  wideCells(item) {
    const last = item.attempts?.[item.attempts.length - 1];
    return [text(item.reason), text(last?.exitCode ?? last?.httpStatus), text(last?.worker), timeOf(item.startedAt), timeOf(item.finishedAt)];
  },
};

export const SCHEDULE_TABLE: ResourceTable<Schedule> = {
  columns: [
    { header: 'NAME', shrinkable: true, minWidth: 8 },
    { header: 'ID' },
    { header: 'SCHEDULE', shrinkable: true, minWidth: 9 },
    { header: 'SUSPEND' },
    { header: 'ACTIVE' },
    { header: 'LAST SCHEDULE' },
  ],
  // The API always answers suspend, timeZone and concurrencyPolicy; the generated types call
  // them optional because the same schema describes what a client may leave out when it sends.
  cells(s, now) {
    return [text(s.name), s.id, s.spec.schedule, bool(s.spec.suspend ?? false), String(s.status.active.length), ageOf(s.status.lastScheduleTime, now)];
  },
  wideColumns: [
    { header: 'TIMEZONE' },
    { header: 'NEXT SCHEDULE' },
    { header: 'CONCURRENCY' },
    { header: 'AGE' },
    { header: 'CREATED' },
    { header: 'LABELS' },
  ],
  wideCells(s, now) {
    const next = s.status.nextRunTime ? Date.parse(s.status.nextRunTime) : NaN;
    return [
      s.spec.timeZone ?? '-',
      Number.isNaN(next) ? '-' : `in ${formatAge(next - now)}`,
      s.spec.concurrencyPolicy ?? '-',
      ageOf(s.createdAt, now),
      timeOf(s.createdAt),
      formatLabels(s.labels),
    ];
  },
};

export const WEBHOOK_TABLE: ResourceTable<WebhookEndpoint> = {
  columns: [{ header: 'ID' }, { header: 'URL', shrinkable: true, minWidth: 16 }, { header: 'ENABLED' }, { header: 'AGE' }],
  cells(w, now) {
    return [w.id, w.url, bool(w.enabled), ageOf(w.createdAt, now)];
  },
  wideColumns: [{ header: 'EVENTS' }, { header: 'DESCRIPTION' }, { header: 'DISABLED REASON' }, { header: 'CREATED' }, { header: 'UPDATED' }],
  wideCells(w) {
    return [w.events.length > 0 ? w.events.join(',') : '-', text(w.description), text(w.disabledReason), timeOf(w.createdAt), timeOf(w.updatedAt)];
  },
};

export const DELIVERY_TABLE: ResourceTable<WebhookDelivery> = {
  columns: [
    { header: 'ID' },
    { header: 'EVENT', shrinkable: true, minWidth: 8 },
    { header: 'STATUS' },
    { header: 'ATTEMPTS' },
    { header: 'AGE' },
  ],
  cells(d, now) {
    return [d.id, d.type, d.status, String(d.attempts.length), ageOf(d.createdAt, now)];
  },
  wideColumns: [{ header: 'BATCH' }, { header: 'ENDPOINT' }, { header: 'LAST CODE' }, { header: 'NEXT ATTEMPT' }, { header: 'CREATED' }, { header: 'URL' }, { header: 'LAST ERROR' }],
  wideCells(d, now) {
    const last = d.attempts[d.attempts.length - 1];
    const next = d.nextAttemptAt ? Date.parse(d.nextAttemptAt) : NaN;
    return [
      d.batchId,
      d.endpointId ?? '(batch webhook)',
      text(last?.statusCode),
      Number.isNaN(next) ? '-' : next <= now ? 'now' : `in ${formatAge(next - now)}`,
      timeOf(d.createdAt),
      d.url,
      lastLine(d.lastError),
    ];
  },
};
