/**
 * `{{ field }}` placeholders in a batch template, filled from each item: the reference's
 * expansion pattern without sed or Jinja. Deliberately not a template engine: a placeholder is
 * a field path and nothing else, so no client input is ever evaluated.
 */

/** A template that cannot be filled; `path` is the JSON Pointer of the offending string. */
export class TemplateError extends Error {
  constructor(
    message: string,
    public path: string,
  ) {
    super(message);
    this.name = 'TemplateError';
  }
}

const PLACEHOLDER = /\{\{(.*?)\}\}/g;
const FIELD_PATH = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

function pointer(segments: readonly (string | number)[]): string {
  return segments.map((s) => '/' + String(s).replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

/** The field path inside one `{{ ... }}`, or a TemplateError saying why it is not one. */
function fieldPath(raw: string, at: string): string {
  const field = raw.trim();
  if (!FIELD_PATH.test(field)) {
    throw new TemplateError(
      `unsupported placeholder "{{${raw}}}" at ${at || '/'}: only field names joined by dots are allowed, like {{ item }}, {{ index }} or {{ a.b }}`,
      at,
    );
  }
  return field;
}

/** Calls `visit` on every placeholder of one string, after rejecting an unclosed `{{`. */
function scanString(s: string, at: string, visit: (field: string, raw: string) => string): string {
  const out = s.replace(PLACEHOLDER, (_whole, raw: string) => visit(fieldPath(raw, at), raw));
  // Whatever is left after removing complete placeholders must not open one: `{{ url }` is a typo.
  const rest = s.replace(PLACEHOLDER, '');
  const open = rest.indexOf('{{');
  if (open >= 0) {
    throw new TemplateError(`unclosed placeholder "${rest.slice(open, open + 20)}" at ${at || '/'}: missing "}}"`, at);
  }
  return out;
}

/** Rebuilds arrays and objects, applying `onString` to every string value (keys are left alone). */
function walk(value: unknown, segments: (string | number)[], onString: (s: string, at: string) => string): unknown {
  if (typeof value === 'string') return onString(value, pointer(segments));
  if (Array.isArray(value)) return value.map((v, i) => walk(v, [...segments, i], onString));
  if (value !== null && typeof value === 'object') {
    // fromEntries defines properties, so a "__proto__" key stays data and cannot swap the prototype.
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, [...segments, k], onString)]));
  }
  return value;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Looks a dotted path up on the item through own properties only, so nothing inherited leaks. */
function lookup(item: unknown, field: string): { found: true; value: unknown } | { found: false } {
  let current: unknown = item;
  for (const key of field.split('.')) {
    if (!isRecord(current) || !Object.hasOwn(current, key)) return { found: false };
    current = current[key];
  }
  return { found: true, value: current };
}

function asText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/**
 * Returns a copy of `template` with every `{{ ... }}` in its strings replaced for one item:
 * `{{ item }}` is the whole item (a string raw, anything else as JSON), `{{ index }}` the item's
 * index, and `{{ a.b }}` a field of an object item (a string raw, anything else as JSON).
 * Substituted text is never scanned again, so an item cannot inject placeholders. Throws a
 * TemplateError for a missing field, an unsupported or an unclosed placeholder.
 */
export function renderTemplate(template: unknown, item: unknown, index: number): unknown {
  return walk(template, [], (s, at) =>
    scanString(s, at, (field, raw) => {
      if (field === 'item') return asText(item);
      if (field === 'index') return String(index);
      const found = lookup(item, field);
      if (!found.found) {
        throw new TemplateError(`item ${index} has no field "${field}" for placeholder "{{${raw}}}" at ${at || '/'}`, at);
      }
      return asText(found.value);
    }),
  );
}

/**
 * Lists the distinct field paths a template's placeholders use, in order of first appearance
 * (`item` and `index` included). Useful at submission to reject a template before any item
 * runs; throws the same TemplateError as renderTemplate for malformed placeholders.
 */
export function templatePlaceholders(template: unknown): string[] {
  const fields = new Set<string>();
  walk(template, [], (s, at) =>
    scanString(s, at, (field) => {
      fields.add(field);
      return '';
    }),
  );
  return [...fields];
}
