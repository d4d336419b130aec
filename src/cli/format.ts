import type { Batch, Schedule } from './api-types.js';

/**
 * Pure text formatting for the client commands: kubectl-like ages and tables. No I/O here, so
 * every rule is checked by table-driven tests.
 */

/**
 * A duration the way kubectl prints an AGE: two units while the first one is small, one unit
 * after (`45s`, `5m30s`, `45m`, `3h20m`, `30h`, `2d5h`, `300d`, `2y45d`).
 */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const m = Math.floor(s / 60);
  const h = Math.floor(s / 3600);
  const d = Math.floor(s / 86400);
  if (s < 120) return `${s}s`;
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (h < 3) return `${m}m`;
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  if (d < 8) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  if (d < 730) return `${d}d`;
  const y = Math.floor(d / 365);
  return d % 365 === 0 ? `${y}y` : `${y}y${d % 365}d`;
}

/** Labels as a selector-like `k=v,k2=v2`, sorted by key; kubectl's `<none>` when empty. */
export function formatLabels(labels: Record<string, string> | undefined): string {
  const entries = Object.entries(labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return entries.length === 0 ? '<none>' : entries.map(([k, v]) => `${k}=${v}`).join(',');
}

export interface Column {
  header: string;
  /** may be shortened (with a trailing `…`) down to `minWidth` to fit the line */
  shrinkable?: boolean;
  minWidth?: number;
}

const GAP = '   ';

/**
 * Left-aligned columns separated by three spaces, like kubectl. With `maxWidth`, shrinkable
 * columns are cut until each line fits; the others never are.
 */
export function renderTable(columns: Column[], rows: string[][], maxWidth?: number): string {
  const widths = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => (r[i] ?? '').length)));
  if (maxWidth !== undefined) {
    let excess = widths.reduce((a, b) => a + b, 0) + GAP.length * (columns.length - 1) - maxWidth;
    const floor = (i: number): number => Math.max(columns[i]!.minWidth ?? 1, columns[i]!.header.length);
    // Take one character at a time from the widest shrinkable column, so long names and long
    // labels share the cut instead of one of them vanishing.
    while (excess > 0) {
      let widest = -1;
      columns.forEach((col, i) => {
        if (col.shrinkable && widths[i]! > floor(i) && (widest < 0 || widths[i]! > widths[widest]!)) widest = i;
      });
      if (widest < 0) break;
      widths[widest] = widths[widest]! - 1;
      excess--;
    }
  }
  const line = (cells: string[]): string =>
    cells
      .map((cell, i) => {
        const last = i === cells.length - 1;
        const fitted = truncate(cell, widths[i]!);
        return last ? fitted : fitted.padEnd(widths[i]!);
      })
      .join(GAP)
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...rows.map(line)].join('\n');
}

/** Cut to `width` characters, marking the cut with `…`. */
export function truncate(text: string, width: number): string {
  if (text.length <= width) return text;
  if (width <= 1) return text.slice(0, width);
  return `${text.slice(0, width - 1)}…`;
}

const BATCH_COLUMNS: Column[] = [
  { header: 'NAME', shrinkable: true, minWidth: 8 },
  { header: 'ID' },
  { header: 'PHASE' },
  { header: 'SUCCEEDED' },
  { header: 'FAILED' },
  { header: 'AGE' },
  { header: 'LABELS', shrinkable: true, minWidth: 10 },
];

/** The `fanout get batches` table. `maxWidth` undefined means never cut (`-o wide`). */
export function renderBatchTable(batches: Batch[], now: number, maxWidth?: number): string {
  const rows = batches.map((b) => {
    const counts = b.status?.counts;
    const created = Date.parse(b.createdAt);
    return [
      b.name || '-',
      b.id,
      b.status?.phase ?? 'Unknown',
      counts ? `${counts.succeeded}/${counts.total}` : '-',
      counts ? String(counts.failed) : '-',
      Number.isNaN(created) ? '-' : formatAge(now - created),
      formatLabels(b.labels),
    ];
  });
  return renderTable(BATCH_COLUMNS, rows, maxWidth);
}

const SCHEDULE_COLUMNS: Column[] = [
  { header: 'NAME', shrinkable: true, minWidth: 8 },
  { header: 'ID' },
  { header: 'SCHEDULE' },
  { header: 'TIMEZONE' },
  { header: 'SUSPEND' },
  { header: 'ACTIVE' },
  { header: 'LAST SCHEDULE' },
  { header: 'AGE' },
];

/** The `fanout get schedules` table, like `kubectl get cronjobs`. */
export function renderScheduleTable(schedules: Schedule[], now: number, maxWidth?: number): string {
  const ago = (iso: string | null | undefined) => {
    const t = iso ? Date.parse(iso) : NaN;
    return Number.isNaN(t) ? '-' : formatAge(now - t);
  };
  const rows = schedules.map((s) => [
    s.name || '-',
    s.id,
    s.spec.schedule,
    s.spec.timeZone,
    String(s.spec.suspend),
    String(s.status.active.length),
    ago(s.status.lastScheduleTime),
    ago(s.createdAt),
  ]);
  return renderTable(SCHEDULE_COLUMNS, rows, maxWidth);
}

/** One line summing up where a batch is, for logs and the end of `submit --wait`. */
export function describeProgress(batch: Batch): string {
  const c = batch.status.counts;
  const done = c.succeeded + c.failed + c.cancelled;
  const parts = [`${done}/${c.total} done`, `${c.succeeded} succeeded`];
  if (c.failed > 0) parts.push(`${c.failed} failed`);
  if (c.cancelled > 0) parts.push(`${c.cancelled} cancelled`);
  if (c.running > 0) parts.push(`${c.running} running`);
  return `batch ${batch.id} ${batch.status.phase}: ${parts.join(', ')}`;
}
