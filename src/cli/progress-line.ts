import { displayWidth, truncate } from './text-width.js';

/**
 * The one-line progress display of `fanout wait` and `submit --wait`, pure: a bar, done/total,
 * the rate, the time left and the phase, fitted to the terminal width. The bar takes what the
 * text leaves (at most 30 columns) and goes when fewer than 5 are left, so the line fits
 * whatever the counts.
 */

export interface ProgressState {
  done: number;
  total: number;
  /** items finished per second */
  perSecond: number;
  /** seconds left; undefined while unknown */
  etaSeconds: number | undefined;
  phase: string;
}

const BAR_MAX = 30;
const BAR_MIN = 5;

/** `12.5`, `340`, `12.3k`: a rate in at most 5 characters up to 99999k/s. */
export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond) || perSecond <= 0) return '0.0';
  if (perSecond < 100) return perSecond.toFixed(1);
  if (perSecond < 10_000) return String(Math.round(perSecond));
  return `${(perSecond / 1000).toFixed(perSecond < 100_000 ? 1 : 0)}k`;
}

/** Time left: `45s`, `5m07s`, `3h02m`, `--` while unknown. */
export function formatEta(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '--';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** `█████░░░░░`: `width` cells, filled in proportion to done/total. */
export function renderBar(done: number, total: number, width: number): string {
  const ratio = total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
  const filled = Math.round(ratio * width);
  return '█'.repeat(filled) + '░'.repeat(width - filled);
}

/** The whole progress line, at most `width` columns. */
export function renderProgressLine(state: ProgressState, width: number): string {
  const text = `${state.done}/${state.total} | ${formatRate(state.perSecond)} items/s | ETA ${formatEta(state.etaSeconds)} | ${state.phase}`;
  const room = width - displayWidth(text) - 1;
  const line = room >= BAR_MIN ? `${renderBar(state.done, state.total, Math.min(BAR_MAX, room))} ${text}` : text;
  return truncate(line, width);
}
