import { CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { formatUsageError, reportError } from '../../src/cli/errors.js';
import { formatEta, formatRate, renderBar, renderProgressLine } from '../../src/cli/progress-line.js';
import { ageOf, durationOf, lastLine, timeOf } from '../../src/cli/tables.js';
import { displayWidth, oneLine, outputWidth, truncate, wrapLine } from '../../src/cli/text-width.js';

// The pure width rules behind "fits 80 columns": measuring, cutting, wrapping, the progress
// line, ages and durations, and usage errors in one line.

describe('outputWidth', () => {
  it.each([
    ['unset', undefined, 80],
    ['wider', '132', 132],
    ['narrower is not honoured', '60', 80],
    ['not a number', 'wide', 80],
    ['blank', '', 80],
  ])('%s', (_name, columns, expected) => {
    expect(outputWidth(columns)).toBe(expected);
  });
});

describe('displayWidth and oneLine', () => {
  it.each([
    ['ascii', 'hello', 5],
    ['wide CJK', '日本', 4],
    ['emoji (two code units, two columns)', '🚀x', 3],
    ['combining mark takes none', 'e\u0301', 1],
    ['the ellipsis', '…', 1],
  ])('%s', (_name, text, expected) => {
    expect(displayWidth(text)).toBe(expected);
  });

  it('turns newlines, tabs and escapes into single spaces', () => {
    expect(oneLine('  exit 3\n\tboom \x1b[31mred\x1b[0m  ')).toBe('exit 3 boom [31mred [0m');
  });
});

describe('truncate', () => {
  it.each([
    ['fits', 'abc', 3, 'abc'],
    ['cut with a mark', 'abcdef', 4, 'abc…'],
    ['wide characters are never split', '日本語', 4, '日…'],
    ['zero', 'abc', 0, ''],
  ])('%s', (_name, text, width, expected) => {
    const out = truncate(text, width);
    expect(out).toBe(expected);
    expect(displayWidth(out)).toBeLessThanOrEqual(width);
  });
});

describe('wrapLine', () => {
  it.each([
    ['fits: unchanged', 'error: short', 20, ['error: short']],
    ['at spaces, continuation indented', 'error: one two three four five', 16, ['error: one two', '  three four', '  five']],
    ['a word longer than the line is split', 'error: ' + 'x'.repeat(25), 12, ['error:', '  xxxxxxxxxx', '  xxxxxxxxxx', '  xxxxx']],
    ['keeps its own indent on the first line', '  /items/0: must be a string or an object', 20, ['  /items/0: must be', '  a string or an', '  object']],
  ])('%s', (_name, line, width, expected) => {
    const out = wrapLine(line, width);
    expect(out).toEqual(expected);
    for (const l of out) expect(displayWidth(l)).toBeLessThanOrEqual(width);
  });
});

describe('progress line', () => {
  const state = { done: 50, total: 100, perSecond: 12.34, etaSeconds: 4.2, phase: 'Running' };

  it('is a bar, done/total, rate, ETA and phase', () => {
    expect(renderProgressLine(state, 80)).toBe(`${'█'.repeat(15)}${'░'.repeat(15)} 50/100 | 12.3 items/s | ETA 4s | Running`);
  });

  it.each([
    ['a small batch', state, 80],
    ['big counts', { done: 1_234_567, total: 10_000_000, perSecond: 123_456.7, etaSeconds: 3_600_000, phase: 'Suspended' }, 80],
    ['unknown rate', { done: 0, total: 0, perSecond: 0, etaSeconds: undefined, phase: 'Pending' }, 80],
  ])('fits the width: %s', (_name, s, width) => {
    const line = renderProgressLine(s, width);
    expect(displayWidth(line)).toBeLessThanOrEqual(width);
    expect(line).toContain(s.phase.slice(0, 3));
  });

  it('cuts the text only when even that does not fit', () => {
    expect(renderProgressLine({ ...state, total: 10_000_000 }, 40)).toBe('50/10000000 | 12.3 items/s | ETA 4s | R…');
  });

  it('drops the bar before it cuts the text', () => {
    expect(renderProgressLine({ ...state, done: 5_000_000, total: 10_000_000 }, 50)).toBe('5000000/10000000 | 12.3 items/s | ETA 4s | Running');
  });

  it.each([
    [0, '0.0'],
    [12.34, '12.3'],
    [345.6, '346'],
    [12_345, '12.3k'],
    [1_234_567, '1235k'],
  ])('rate %d → %s', (n, expected) => expect(formatRate(n)).toBe(expected));

  it.each([
    [undefined, '--'],
    [45, '45s'],
    [307, '5m07s'],
    [3 * 3600 + 120, '3h02m'],
  ])('eta %s → %s', (s, expected) => expect(formatEta(s)).toBe(expected));

  it('fills the bar in proportion, never past its width', () => {
    expect(renderBar(1, 4, 8)).toBe('██░░░░░░');
    expect(renderBar(9, 4, 4)).toBe('████');
    expect(renderBar(0, 0, 3)).toBe('░░░');
  });
});

describe('ages, durations and times of the tables', () => {
  const now = Date.parse('2026-11-29T12:00:00Z');
  it.each([
    ['minutes', '2026-11-29T11:55:00Z', '5m'],
    ['hours', '2026-11-29T07:00:00Z', '5h'],
    ['days', '2026-11-26T12:00:00Z', '3d'],
    ['none', null, '-'],
    ['unreadable', 'yesterday', '-'],
  ])('age: %s', (_name, iso, expected) => expect(ageOf(iso, now)).toBe(expected));

  it('durations run to now while unfinished', () => {
    expect(durationOf('2026-11-29T11:59:30Z', '2026-11-29T11:59:45Z', now)).toBe('15s');
    expect(durationOf('2026-11-29T11:50:00Z', null, now)).toBe('10m');
    expect(durationOf(null, null, now)).toBe('-');
  });

  it('times to the second, errors by their last line', () => {
    expect(timeOf('2026-11-29T02:29:07.123Z')).toBe('2026-11-29T02:29:07Z');
    expect(lastLine('Traceback:\n  at x\nValueError: bad\n\n')).toBe('ValueError: bad');
    expect(lastLine(null)).toBe('-');
  });
});

describe('usage errors', () => {
  it('say the flag, the choices and the value in one line', () => {
    const err = new CommanderError(1, 'commander.invalidArgument', "error: option '-o, --output <format>' argument 'xml' is invalid. Allowed choices are table, wide, json, yaml, name.");
    expect(formatUsageError(err)).toEqual(['error: -o/--output: expected one of table|wide|json|yaml|name (got "xml")']);
    const long = new CommanderError(1, 'commander.invalidArgument', `error: option '-o, --output <format>' argument '${'x'.repeat(200)}' is invalid. Allowed choices are table, wide, json, yaml, name.`);
    const lines: string[] = [];
    expect(reportError(long, (t) => lines.push(t))).toBe(2);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.length).toBeLessThanOrEqual(81); // with its newline
    expect(lines[0]).toMatch(/^error: -o\/--output: expected one of table\|wide\|json\|yaml\|name \(got "x+…"\)\n$/);
  });

  it('point to --help otherwise, and exit 2', () => {
    const err = new CommanderError(1, 'commander.unknownOption', "error: unknown option '--colour'");
    const out: string[] = [];
    expect(reportError(err, (t) => out.push(t))).toBe(2);
    expect(out.join('')).toBe("error: unknown option '--colour'\n(run with --help for usage)\n");
  });
});

describe('the progress bar on a terminal', () => {
  it('redraws one line in place within the width and gives the cursor back', async () => {
    const { waitForBatch } = await import('../../src/cli/wait.js');
    const { connect } = await import('../../src/cli/api.js');
    let written = '';
    const out = Object.assign(new (await import('node:stream')).Writable({ write: (c, _e, cb) => ((written += String(c)), cb()) }), { isTTY: true });
    const M = 1_000_000;
    const batch = {
      id: 'b0mx18g4ib00021004a0',
      createdAt: new Date().toISOString(),
      spec: {},
      status: { phase: 'Succeeded' as const, counts: { total: 10 * M, pending: 0, running: 0, succeeded: 10 * M, failed: 0, cancelled: 0 } },
    };
    // already final: drawn once, no request made
    await waitForBatch(connect({ server: 'http://127.0.0.1:1' }), batch as Parameters<typeof waitForBatch>[1], { out, width: 80 });
    expect(written.startsWith('\x1b[?25l\r')).toBe(true);
    expect(written.endsWith('\x1b[K\n\x1b[?25h')).toBe(true);
    const line = written.slice('\x1b[?25l\r'.length, written.indexOf('\x1b[K'));
    expect(line).toMatch(/^█+ 10000000\/10000000 \| 0\.0 items\/s \| ETA 0s \| Succeeded$/);
    expect(displayWidth(line)).toBeLessThanOrEqual(80);
  });
});
