import type { Batch } from './api.js';
import { displayWidth, oneLine, padEnd, truncate } from './text-width.js';

export { truncate } from './text-width.js';

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
  /** may be cut (with a trailing `…`) down to `minWidth` to fit the line */
  shrinkable?: boolean;
  minWidth?: number;
}

const GAP = '   ';

/**
 * Column widths for `natural` (each column's widest cell or header) within `maxWidth`. The
 * widest shrinkable column gives up one column at a time, so long names and long labels share
 * the cut instead of one of them vanishing; shrinkable columns stop at their `minWidth`, then
 * at their headers. If that is not enough, the other columns are cut the same way, down to
 * their headers: a cut id beats a line that wraps. The caller still cuts each line to
 * `maxWidth`, so the result fits whatever the data.
 */
export function fitWidths(columns: Column[], natural: number[], maxWidth: number): number[] {
  const widths = [...natural];
  let excess = widths.reduce((a, b) => a + b, 0) + GAP.length * (columns.length - 1) - maxWidth;
  const shrink = (eligible: (i: number) => boolean, floor: (i: number) => number): void => {
    while (excess > 0) {
      let widest = -1;
      for (let i = 0; i < columns.length; i++) {
        if (eligible(i) && widths[i]! > floor(i) && (widest < 0 || widths[i]! > widths[widest]!)) widest = i;
      }
      if (widest < 0) return;
      widths[widest]!--;
      excess--;
    }
  };
  const header = (i: number): number => displayWidth(columns[i]!.header);
  const shrinkable = (i: number): boolean => columns[i]!.shrinkable === true;
  shrink(shrinkable, (i) => Math.max(columns[i]!.minWidth ?? 1, header(i)));
  shrink(shrinkable, header);
  shrink(() => true, header);
  return widths;
}

/**
 * Left-aligned columns separated by three spaces under uppercase headers, like kubectl. Cells
 * are made one line (control characters become spaces). With `maxWidth`, columns are fitted
 * by {@link fitWidths} and every line is at most `maxWidth` columns; without it nothing is cut.
 */
export function renderTable(columns: Column[], rows: string[][], maxWidth?: number): string {
  const cells = rows.map((r) => columns.map((_, i) => oneLine(r[i] ?? '')));
  const natural = columns.map((c, i) => Math.max(displayWidth(c.header), ...cells.map((r) => displayWidth(r[i]!))));
  const widths = maxWidth === undefined ? natural : fitWidths(columns, natural, maxWidth);
  const line = (row: string[]): string => {
    const text = row
      .map((cell, i) => {
        const fitted = truncate(cell, widths[i]!);
        return i === row.length - 1 ? fitted : padEnd(fitted, widths[i]!);
      })
      .join(GAP)
      .trimEnd();
    return maxWidth === undefined ? text : truncate(text, maxWidth);
  };
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join('\n');
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
