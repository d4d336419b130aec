import type { ItemCounts } from '../../domain/batch-status.js';

/** Pure view-model helpers for the dashboard: progress, truncation, previews, times. */

export interface Progress {
  /** finished items (succeeded, failed or cancelled) as a whole percent of the total, floored */
  percent: number;
  /** segment widths in percent of the total, for the stacked bar */
  segments: { succeeded: number; failed: number; cancelled: number; running: number };
  label: string;
}

const pct = (n: number, total: number) => (total > 0 ? Math.round((n / total) * 10000) / 100 : 0);

/**
 * A batch's progress. Floored, so 100 means every item is final; an empty batch is at 100 once
 * it is final. The browser script has the same function (checked by a test).
 */
export function progressOf(counts: ItemCounts, final: boolean): Progress {
  const done = counts.succeeded + counts.failed + counts.cancelled;
  const percent = counts.total > 0 ? Math.min(100, Math.floor((done * 100) / counts.total)) : final ? 100 : 0;
  return {
    percent,
    segments: {
      succeeded: pct(counts.succeeded, counts.total),
      failed: pct(counts.failed, counts.total),
      cancelled: pct(counts.cancelled, counts.total),
      running: pct(counts.running, counts.total),
    },
    label: `${done}/${counts.total} (${percent}%)`,
  };
}

/** At most `max` characters (code points), with `…` when cut. */
export function truncate(text: string, max: number): string {
  const chars = Array.from(text);
  return chars.length <= max ? text : chars.slice(0, Math.max(0, max - 1)).join('') + '…';
}

/** A short text of a JSON value: strings as they are, anything else as compact JSON. */
export function preview(value: unknown, max = 80): string {
  if (value === undefined) return '';
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return truncate(text ?? String(value), max);
}

/** The stored JSON text of an input or result as a preview (stored text that is not JSON is shown raw). */
export function previewJson(text: string | null, max = 80): string {
  if (text === null) return '';
  try {
    return preview(JSON.parse(text), max);
  } catch {
    return truncate(text, max);
  }
}

/** `2026-11-29 04:05:06` (UTC), or `—`. */
export function formatTime(t: number | string | null | undefined): string {
  if (t === null || t === undefined || t === '') return '—';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return '—';
  return d.toISOString().slice(0, 19).replace('T', ' ');
}

/** `850ms`, `12s`, `3m 4s`, `2h 5m`, or `—`. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

/** The last `maxLines` lines of a text (an attempt's stderr tail is already short; this keeps the table readable). */
export function tailLines(text: string, maxLines: number): string {
  const lines = text.replace(/\n$/, '').split('\n');
  return lines.length <= maxLines ? lines.join('\n') : '…\n' + lines.slice(-maxLines).join('\n');
}
