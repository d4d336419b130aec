import fs from 'node:fs';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { formatDuration, formatTime, preview, previewJson, progressOf, tailLines, truncate } from '../../src/api/ui/format.js';

const counts = (total: number, succeeded = 0, failed = 0, cancelled = 0, running = 0) => ({
  total, pending: total - succeeded - failed - cancelled - running, running, succeeded, failed, cancelled,
});

const CASES: [string, ReturnType<typeof counts>, boolean, number, string][] = [
  ['nothing done', counts(4), false, 0, '0/4 (0%)'],
  ['half done', counts(4, 1, 1), false, 50, '2/4 (50%)'],
  ['floored, never 100 early', counts(3, 2, 0, 0, 1), false, 66, '2/3 (66%)'],
  ['one left of many', counts(1000, 999), false, 99, '999/1000 (99%)'],
  ['all final in mixed outcomes', counts(5, 3, 1, 1), true, 100, '5/5 (100%)'],
  ['empty running batch', counts(0), false, 0, '0/0 (0%)'],
  ['empty final batch', counts(0), true, 100, '0/0 (100%)'],
];

describe('progressOf', () => {
  it.each(CASES)('%s', (_name, c, final, percent, label) => {
    const p = progressOf(c, final);
    expect(p.percent).toBe(percent);
    expect(p.label).toBe(label);
  });

  it('segments are percentages of the total', () => {
    expect(progressOf(counts(8, 4, 2, 1, 1), false).segments).toEqual({ succeeded: 50, failed: 25, cancelled: 12.5, running: 12.5 });
  });

  it('the browser script computes the same as the server', () => {
    const script = fs.readFileSync(new URL('../../src/api/ui/assets/dashboard.js', import.meta.url), 'utf8');
    const ctx: Record<string, unknown> = {};
    vm.runInNewContext(script, ctx);
    const browserProgress = ctx.fanoutProgress as (c: unknown, f: boolean) => unknown;
    for (const [, c, final] of CASES) expect(browserProgress(c, final)).toEqual(progressOf(c, final));
    expect(browserProgress(counts(8, 4, 2, 1, 1), false)).toEqual(progressOf(counts(8, 4, 2, 1, 1), false));
  });
});

describe('text helpers', () => {
  it.each([
    ['short', 10, 'short'],
    ['exactly ten', 11, 'exactly ten'],
    ['a longer text', 8, 'a longe…'],
    ['😀😀😀😀', 3, '😀😀…'],
  ])('truncate(%j, %d)', (text, max, want) => {
    expect(truncate(text, max)).toBe(want);
  });

  it('preview shows strings raw and other values as JSON', () => {
    expect(preview('foo')).toBe('foo');
    expect(preview({ a: [1, 2] })).toBe('{"a":[1,2]}');
    expect(preview(null)).toBe('null');
    expect(preview(undefined)).toBe('');
    expect(preview('x'.repeat(100), 10)).toBe('xxxxxxxxx…');
  });

  it('previewJson reads stored JSON text, and keeps non-JSON text as it is', () => {
    expect(previewJson('"<script>"')).toBe('<script>');
    expect(previewJson('{"n":1}')).toBe('{"n":1}');
    expect(previewJson('not json')).toBe('not json');
    expect(previewJson(null)).toBe('');
  });

  it('formatTime and formatDuration', () => {
    expect(formatTime(Date.UTC(2026, 10, 29, 4, 5, 6))).toBe('2026-11-29 04:05:06');
    expect(formatTime('2026-11-29T04:05:06.789Z')).toBe('2026-11-29 04:05:06');
    expect(formatTime(null)).toBe('—');
    expect(formatTime('nonsense')).toBe('—');
    expect([850, 12_400, 184_000, 7_500_000, -1, null].map((ms) => formatDuration(ms))).toEqual(['850ms', '12s', '3m 4s', '2h 5m', '—', '—']);
  });

  it('tailLines keeps the last lines', () => {
    expect(tailLines('a\nb\nc\n', 5)).toBe('a\nb\nc');
    expect(tailLines('1\n2\n3\n4', 2)).toBe('…\n3\n4');
  });
});
