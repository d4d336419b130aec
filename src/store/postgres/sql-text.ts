/**
 * Pure text rules of the PostgreSQL adapter: the operations' `?` placeholders numbered as
 * PostgreSQL wants them, and rows in COPY's text format.
 */

/**
 * Rewrites each `?` placeholder as `$1`, `$2`, … in order. A `?` inside a quoted string
 * ('…', E'…' with backslash escapes, $tag$…$tag$), a quoted identifier ("…") or a comment is
 * text, not a placeholder, and stays. (So the shared SQL cannot use PostgreSQL's jsonb `?`
 * operators; it has no need to.)
 */
export function numberPlaceholders(text: string): string {
  let out = '';
  let n = 0;
  let k = 0;
  while (k < text.length) {
    const c = text[k];
    let end: number;
    if (c === '?') {
      out += `$${++n}`;
      k++;
      continue;
    } else if (c === "'") {
      end = endOfQuoted(text, k, "'", isEscapeString(text, k));
    } else if (c === '"') {
      end = endOfQuoted(text, k, '"', false);
    } else if (c === '-' && text[k + 1] === '-') {
      const newline = text.indexOf('\n', k);
      end = newline < 0 ? text.length : newline + 1;
    } else if (c === '/' && text[k + 1] === '*') {
      end = endOfBlockComment(text, k);
    } else if (c === '$' && (end = endOfDollarQuoted(text, k)) > k) {
      // end set by the condition
    } else {
      end = k + 1;
    }
    out += text.slice(k, end);
    k = end;
  }
  return out;
}

/** E'…' (or e'…'), not part of a longer word such as `name'`: the only strings with backslash escapes. */
function isEscapeString(text: string, quote: number): boolean {
  const prev = text[quote - 1];
  return (prev === 'E' || prev === 'e') && !/[A-Za-z0-9_$]/.test(text[quote - 2] ?? '');
}

/** The index after the closing quote; a doubled quote is an escaped one. Unterminated: the end. */
function endOfQuoted(text: string, open: number, quote: string, backslashEscapes: boolean): number {
  let k = open + 1;
  while (k < text.length) {
    const c = text[k];
    if (backslashEscapes && c === '\\') {
      k += 2;
    } else if (c === quote) {
      if (text[k + 1] === quote) k += 2;
      else return k + 1;
    } else {
      k++;
    }
  }
  return text.length;
}

/** Block comments nest in PostgreSQL. */
function endOfBlockComment(text: string, open: number): number {
  let depth = 0;
  let k = open;
  while (k < text.length) {
    if (text.startsWith('/*', k)) {
      depth++;
      k += 2;
    } else if (text.startsWith('*/', k)) {
      depth--;
      k += 2;
      if (depth === 0) return k;
    } else {
      k++;
    }
  }
  return text.length;
}

const DOLLAR_TAG = /\$([A-Za-z_][A-Za-z0-9_]*)?\$/y;

/** The index after `$tag$…$tag$` opening at `open`, or `open` when no dollar quote opens there ($1 is a parameter). */
function endOfDollarQuoted(text: string, open: number): number {
  if (/[A-Za-z0-9_]/.test(text[open - 1] ?? '')) return open; // part of an identifier such as a$b
  DOLLAR_TAG.lastIndex = open;
  const tag = DOLLAR_TAG.exec(text);
  if (!tag) return open;
  const close = text.indexOf(tag[0], open + tag[0].length);
  return close < 0 ? text.length : close + tag[0].length;
}

/**
 * One field in COPY's text format: backslash, tab, newline and carriage return escaped (tab
 * separates fields, newline ends the row), null as `\N`. Everything else, unicode included, is
 * taken literally.
 */
export function copyField(value: string | number | null): string {
  if (value === null) return '\\N';
  if (typeof value === 'number') return String(value);
  return value.replace(/[\\\t\n\r]/g, escapeCopyChar);
}

function escapeCopyChar(c: string): string {
  switch (c) {
    case '\\':
      return '\\\\';
    case '\t':
      return '\\t';
    case '\n':
      return '\\n';
    default:
      return '\\r';
  }
}

/** One row in COPY's text format, newline included. */
export function copyRow(fields: readonly (string | number | null)[]): string {
  return `${fields.map(copyField).join('\t')}\n`;
}
