import { isValidLabelKey, isValidLabelValue } from './batch-spec.js';

/**
 * Kubernetes label selectors (`env=prod,tier in (web,api),!canary`) for listing and deleting
 * batches. A small lexer plus a recursive-descent parser, so every error can name the exact
 * token and position instead of "invalid selector".
 */

/** One AND-ed term; `=`/`==` become In and `!=` becomes NotIn, each with a single value. */
export type LabelRequirement = {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values: string[];
};

/**
 * Size limits. Each requirement becomes one EXISTS clause in SQL, and SQLite refuses a WHERE
 * clause nested about 1000 deep ("Expression tree is too large"); every `in` value is one bound
 * parameter (SQLite allows 32766). 100 requirements and 8192 characters stay far below both and
 * far above any selector a person writes. Documented in docs/api.md.
 */
export const MAX_SELECTOR_TERMS = 100;
export const MAX_SELECTOR_LENGTH = 8192;

/** A selector that cannot be parsed; the message names the offending token and its position. */
export class LabelSelectorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LabelSelectorError';
  }
}

type TokenKind = 'ident' | '!' | '=' | '==' | '!=' | '(' | ')' | ',' | '<' | '>' | 'end';
type Token = { kind: TokenKind; text: string; pos: number };

// Characters that end an identifier: everything else (including "/" and ".") is part of a
// key or value and left to isValidLabelKey/isValidLabelValue to judge.
const SPECIAL = new Set(['!', '=', '(', ')', ',', '<', '>']);

function lex(s: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (/\s/.test(c)) {
      i++;
    } else if ((c === '!' || c === '=') && s[i + 1] === '=') {
      tokens.push({ kind: c === '!' ? '!=' : '==', text: c + '=', pos: i });
      i += 2;
    } else if (SPECIAL.has(c)) {
      tokens.push({ kind: c as TokenKind, text: c, pos: i });
      i++;
    } else {
      const start = i;
      while (i < s.length && !SPECIAL.has(s[i]) && !/\s/.test(s[i])) i++;
      tokens.push({ kind: 'ident', text: s.slice(start, i), pos: start });
    }
  }
  tokens.push({ kind: 'end', text: '', pos: s.length });
  return tokens;
}

class Parser {
  private at = 0;
  constructor(private readonly tokens: Token[]) {}

  peek(): Token {
    return this.tokens[this.at];
  }

  next(): Token {
    return this.tokens[this.at++];
  }

  fail(token: Token, expected: string): never {
    const what = token.kind === 'end' ? 'end of selector' : JSON.stringify(token.text);
    throw new LabelSelectorError(`unexpected ${what} at position ${token.pos}: expected ${expected}`);
  }

  key(): string {
    const t = this.next();
    if (t.kind !== 'ident') this.fail(t, 'a label key');
    if (!isValidLabelKey(t.text)) {
      throw new LabelSelectorError(
        `invalid label key ${JSON.stringify(t.text)} at position ${t.pos}: a name of at most 63 characters ([A-Za-z0-9-_.], alphanumeric at both ends), optionally prefixed by a DNS subdomain and "/"`,
      );
    }
    return t.text;
  }

  value(t: Token): string {
    if (!isValidLabelValue(t.text)) {
      throw new LabelSelectorError(
        `invalid label value ${JSON.stringify(t.text)} at position ${t.pos}: at most 63 characters ([A-Za-z0-9-_.], alphanumeric at both ends)`,
      );
    }
    return t.text;
  }

  /** `(v1, v2, ...)`: at least one value, as Kubernetes rejects an empty set. */
  valueList(): string[] {
    const open = this.next();
    if (open.kind !== '(') this.fail(open, '"(" to start a list of values');
    const values: string[] = [];
    for (;;) {
      const t = this.next();
      if (t.kind !== 'ident') this.fail(t, 'a label value');
      values.push(this.value(t));
      const sep = this.next();
      if (sep.kind === ')') break;
      if (sep.kind !== ',') this.fail(sep, '"," or ")"');
    }
    // Sorted and deduplicated, as Kubernetes does, so equal selectors compare equal.
    return [...new Set(values)].sort();
  }

  requirement(): LabelRequirement {
    if (this.peek().kind === '!') {
      this.next();
      return { key: this.key(), operator: 'DoesNotExist', values: [] };
    }
    const key = this.key();
    const op = this.peek();
    switch (op.kind) {
      case 'end':
      case ',':
        return { key, operator: 'Exists', values: [] };
      case '=':
      case '==':
      case '!=': {
        this.next();
        // `env=` selects an empty value, as in Kubernetes.
        const t = this.peek();
        const value = t.kind === 'ident' ? this.value(this.next()) : '';
        if (t.kind !== 'ident' && t.kind !== 'end' && t.kind !== ',') this.fail(t, 'a label value');
        return { key, operator: op.kind === '!=' ? 'NotIn' : 'In', values: [value] };
      }
      case 'ident':
        if (op.text === 'in' || op.text === 'notin') {
          this.next();
          return { key, operator: op.text === 'in' ? 'In' : 'NotIn', values: this.valueList() };
        }
        return this.fail(op, 'an operator (=, ==, !=, in, notin), "," or end of selector');
      default:
        return this.fail(op, 'an operator (=, ==, !=, in, notin), "," or end of selector');
    }
  }

  selector(): LabelRequirement[] {
    const reqs: LabelRequirement[] = [];
    if (this.peek().kind === 'end') return reqs;
    for (;;) {
      if (reqs.length === MAX_SELECTOR_TERMS) {
        throw new LabelSelectorError(`too many requirements: a selector has at most ${MAX_SELECTOR_TERMS} requirements (comma-separated terms)`);
      }
      reqs.push(this.requirement());
      const t = this.next();
      if (t.kind === 'end') return reqs;
      if (t.kind !== ',') this.fail(t, '"," or end of selector');
    }
  }
}

/**
 * Parses a Kubernetes label selector into requirements that are AND-ed together. The empty (or
 * all-whitespace) selector yields `[]`, which matches every batch. Throws LabelSelectorError
 * naming the first bad token and its zero-based position, or the size limit it is over.
 */
export function parseLabelSelector(s: string): LabelRequirement[] {
  if (s.length > MAX_SELECTOR_LENGTH) {
    throw new LabelSelectorError(`selector too long: ${s.length} characters, at most ${MAX_SELECTOR_LENGTH} characters`);
  }
  return new Parser(lex(s)).selector();
}

/**
 * Whether labels satisfy every requirement. As in Kubernetes, NotIn (and so `!=`) also matches
 * labels that lack the key: `env!=prod` selects batches with no `env` label at all.
 */
export function matchesLabels(reqs: readonly LabelRequirement[], labels: Record<string, string>): boolean {
  return reqs.every((r) => {
    // Own properties only: "constructor" is a valid label key and must not hit the prototype.
    const has = Object.hasOwn(labels, r.key);
    switch (r.operator) {
      case 'Exists':
        return has;
      case 'DoesNotExist':
        return !has;
      case 'In':
        return has && r.values.includes(labels[r.key]);
      case 'NotIn':
        return !has || !r.values.includes(labels[r.key]);
    }
  });
}
