/**
 * A non-recursive walk over JSON text, for the checks that must run before anything recursive
 * (JSON.stringify, zod, template rendering) touches a parsed value, and for the changes
 * JSON.parse makes silently: nesting deeper than a limit, numbers that overflow to ±Infinity
 * (`1e400` would be stored as `null`), and `__proto__` keys (an object schema drops them).
 * Pure: the text in, the first refusal and the `__proto__` key paths out.
 */

export type JsonPath = (string | number)[];

/**
 * The deepest nesting any part of Fanout lets through (FANOUT_MAX_JSON_DEPTH may not exceed it):
 * JSON.stringify and the schema checks recurse, and overflow the stack a few thousand levels down.
 */
export const JSON_DEPTH_CEILING = 1000;

export interface JsonRefusal {
  path: JsonPath;
  reason: 'too-deep' | 'number-overflow';
  detail: string;
}

export interface JsonScan {
  /** the first value that must be refused, if any */
  refusal?: JsonRefusal;
  /** where an object has a `__proto__` key (the key's own path) */
  protoKeys: JsonPath[];
}

interface Frame {
  array: boolean;
  /** the current member: an array index (-1 before the first) or an object key */
  at: string | number;
  expectKey: boolean;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** The index of the quote that closes the string opening at `open`, or -1 when the text ends first. */
function closingQuote(text: string, open: number): number {
  for (let q = text.indexOf('"', open + 1); q >= 0; q = text.indexOf('"', q + 1)) {
    let slashes = 0;
    while (text.charCodeAt(q - 1 - slashes) === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return q;
  }
  return -1;
}

function isNumberChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45;
}

const pathOf = (stack: Frame[]): JsonPath => stack.map((f) => f.at);

/**
 * Walks JSON text that JSON.parse accepts. With `prefix`, the text may stop anywhere (a body cut
 * where its bytes stop being UTF-8): {@link pathAtEnd} uses that to name where it stopped.
 */
function walk(text: string, maxDepth: number, prefix: boolean): JsonScan & { endPath: JsonPath } {
  const stack: Frame[] = [];
  const protoKeys: JsonPath[] = [];
  /** a value starts: in an array it is the next element */
  const valueStarts = () => {
    const top = stack[stack.length - 1];
    if (top?.array) top.at = (top.at as number) + 1;
  };
  const done = (refusal?: JsonRefusal) => ({ refusal, protoKeys, endPath: pathOf(stack) });
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b || c === 0x5b) {
      // `{` or `[`
      valueStarts();
      if (stack.length + 1 > maxDepth) {
        return done({ path: pathOf(stack), reason: 'too-deep', detail: `nested deeper than the ${maxDepth}-level limit` });
      }
      stack.push({ array: c === 0x5b, at: c === 0x5b ? -1 : '', expectKey: c === 0x7b });
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
    } else if (c === 0x2c) {
      const top = stack[stack.length - 1];
      if (top && !top.array) top.expectKey = true;
    } else if (c === 0x3a) {
      stack[stack.length - 1].expectKey = false;
    } else if (c === QUOTE) {
      const close = closingQuote(text, i);
      const top = stack[stack.length - 1];
      const isKey = top !== undefined && !top.array && top.expectKey;
      if (close < 0) {
        // Only in a prefix: the text stops inside this string (a key names its object).
        if (isKey) return { protoKeys, endPath: pathOf(stack.slice(0, -1)) };
        valueStarts();
        return done();
      }
      if (isKey) {
        const raw = text.slice(i + 1, close);
        top.at = raw.includes('\\') ? (JSON.parse(text.slice(i, close + 1)) as string) : raw;
        if (top.at === '__proto__') protoKeys.push(pathOf(stack));
      } else {
        valueStarts();
      }
      i = close;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      valueStarts();
      let end = i + 1;
      while (end < text.length && isNumberChar(text.charCodeAt(end))) end++;
      if (!Number.isFinite(Number(text.slice(i, end))) && !(prefix && end === text.length)) {
        return done({ path: pathOf(stack), reason: 'number-overflow', detail: `the number ${text.slice(i, end)} is too large to be represented (it would become null); send it as a string` });
      }
      i = end - 1;
    } else if (c === 0x74 || c === 0x66 || c === 0x6e) {
      // true, false, null
      valueStarts();
      i += c === 0x66 ? 4 : 3;
    }
  }
  return done();
}

/**
 * A number overflows only with an exponent of 3 digits or more, or with more than 209 digits
 * before its exponent (at most e99 then): text with neither holds no such number.
 */
const MAY_OVERFLOW = /\d{210}|[eE][+-]?\d{3}/;

/** How many times `char` occurs, counting no further than `limit + 1`. */
function countUpTo(text: string, char: string, limit: number): number {
  let n = 0;
  for (let i = text.indexOf(char); i >= 0 && n <= limit; i = text.indexOf(char, i + 1)) n++;
  return n;
}

/**
 * Whether the text could hold anything {@link walk} refuses or reports, by cheap native searches:
 * most NDJSON lines cannot, and the character-by-character walk is then skipped.
 */
function mayNeedWalk(text: string, maxDepth: number): boolean {
  if (text.includes('__proto__') || text.includes('\\u') || MAY_OVERFLOW.test(text)) return true;
  // Deeper than maxDepth needs more than maxDepth opening brackets in all.
  const arrays = countUpTo(text, '[', maxDepth);
  return arrays + countUpTo(text, '{', maxDepth - arrays) > maxDepth;
}

/** Checks valid JSON text (JSON.parse accepted it) for what must be refused; never recurses. */
export function scanJson(text: string, maxDepth: number): JsonScan {
  if (!mayNeedWalk(text, maxDepth)) return { protoKeys: [] };
  const { refusal, protoKeys } = walk(text, maxDepth, false);
  return { refusal, protoKeys };
}

/** Whether valid JSON text nests deeper than `maxDepth` (refusals other than depth do not count here). */
export function nestsDeeperThan(text: string, maxDepth: number): boolean {
  // Every level opens a bracket: text with at most maxDepth of them cannot exceed it.
  const arrays = countUpTo(text, '[', maxDepth);
  if (arrays + countUpTo(text, '{', maxDepth - arrays) <= maxDepth) return false;
  return walk(text, maxDepth, false).refusal?.reason === 'too-deep';
}

/** The path of the value a prefix of some JSON text stops in (for naming where bad bytes are). */
export function pathAtEnd(prefix: string): JsonPath {
  return walk(prefix, Number.MAX_SAFE_INTEGER, true).endPath;
}

/** The byte offset of the first byte that is not part of a valid UTF-8 sequence, or -1. */
export function invalidUtf8Offset(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    const length = b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (length === 0 || i + length > bytes.length) return i;
    const second = bytes[i + 1];
    // The second byte's range excludes overlong forms, surrogates and code points above U+10FFFF.
    const low = b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80;
    const high = b === 0xed ? 0x9f : b === 0xf4 ? 0x8f : 0xbf;
    if (second < low || second > high) return i;
    for (let k = 2; k < length; k++) if ((bytes[i + k] & 0xc0) !== 0x80) return i;
    i += length;
  }
  return -1;
}
