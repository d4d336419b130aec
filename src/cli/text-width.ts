/**
 * Terminal text width, pure: how many columns a string takes, cutting it to a width with `…`,
 * wrapping a line of prose, and the width the CLI fits its output to. Tables, progress lines and
 * errors all go through these, so "fits 80 columns" is one rule checked in one place.
 */

/** What human output is fitted to unless COLUMNS asks for more. */
export const DEFAULT_WIDTH = 80;

/**
 * The width to fit to: 80, or COLUMNS when it is a number above 80. Narrower is not honoured:
 * the tables are laid out for 80 columns at the least.
 */
export function outputWidth(columns: string | undefined): number {
  const n = columns !== undefined && /^\d+$/.test(columns.trim()) ? Number(columns) : NaN;
  return Number.isFinite(n) && n > DEFAULT_WIDTH ? n : DEFAULT_WIDTH;
}

/** Columns one code point takes: 0 for combining marks, 2 for East Asian wide and emoji, else 1. */
export function charWidth(cp: number): number {
  if ((cp >= 0x0300 && cp <= 0x036f) || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0xfe00 && cp <= 0xfe0f)) return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf && cp !== 0x303f) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  ) {
    return 2;
  }
  return 1;
}

/** Columns `text` takes on a terminal (one line, no control characters). */
export function displayWidth(text: string): number {
  let width = 0;
  for (const ch of text) width += charWidth(ch.codePointAt(0)!);
  return width;
}

/** One line for a table cell: control characters (newlines, tabs, escapes) become spaces, runs collapse. */
export function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').replace(/ {2,}/g, ' ').trim();
}

/** Cut to at most `width` columns, marking the cut with `…`; never splits a wide character. */
export function truncate(text: string, width: number): string {
  if (displayWidth(text) <= width) return text;
  if (width <= 0) return '';
  let out = '';
  let used = 0;
  const room = width - 1; // the `…`
  for (const ch of text) {
    const w = charWidth(ch.codePointAt(0)!);
    if (used + w > room) break;
    out += ch;
    used += w;
  }
  return `${out}…`;
}

/** Pads with spaces to `width` columns (by display width, unlike String#padEnd). */
export function padEnd(text: string, width: number): string {
  const gap = width - displayWidth(text);
  return gap > 0 ? text + ' '.repeat(gap) : text;
}

/**
 * Wraps one line of prose to `width` columns at spaces; continuation lines start with `indent`.
 * A word longer than the room left is cut into pieces, so every line fits whatever the text.
 */
export function wrapLine(line: string, width: number, indent = '  '): string[] {
  if (displayWidth(line) <= width) return [line];
  const lead = /^ */.exec(line)![0];
  const words = line.slice(lead.length).split(/ +/);
  const lines: string[] = [];
  let current = lead;
  let first = true;
  const prefix = () => (first ? lead : indent);
  const flush = () => {
    lines.push(current.trimEnd());
    first = false;
    current = prefix();
  };
  for (let word of words) {
    const sep = current.trim() === '' ? '' : ' ';
    if (displayWidth(current + sep + word) <= width) {
      current += sep + word;
      continue;
    }
    if (current.trim() !== '') flush();
    // Too long even on a line of its own: hard-split it.
    while (displayWidth(current + word) > width) {
      const room = Math.max(1, width - displayWidth(current));
      const [head, rest] = splitAt(word, room);
      current += head;
      word = rest;
      flush();
    }
    current += word;
  }
  if (current.trim() !== '') lines.push(current.trimEnd());
  return lines;
}

/** The first `columns` columns of `text` and the rest. */
function splitAt(text: string, columns: number): [string, string] {
  let used = 0;
  let i = 0;
  const chars = Array.from(text);
  while (i < chars.length && used + charWidth(chars[i]!.codePointAt(0)!) <= columns) used += charWidth(chars[i++]!.codePointAt(0)!);
  if (i === 0) i = 1; // a wide character in a one-column room: take it anyway rather than loop
  return [chars.slice(0, i).join(''), chars.slice(i).join('')];
}
