import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { renderOpenApiYaml } from '../../src/api/openapi-document.js';
import { REPO } from '../helpers/processes.js';

/**
 * Generated clients name their methods after operationIds and group them by tag, so both are
 * part of the contract (docs/api.md, "Operation names"): every operation has a unique camelCase
 * verb-noun operationId and exactly one declared tag, and the table in docs/api.md lists them.
 */

type Operation = { operationId?: unknown; tags?: unknown };
type Doc = { tags?: Array<{ name: string; description?: string }>; paths: Record<string, Record<string, Operation>> };

/** The verbs an operationId may start with; a new kind of call adds its verb here. */
const VERBS = ['list', 'get', 'create', 'update', 'delete', 'put', 'stream', 'cancel', 'suspend', 'resume', 'retry', 'trigger', 'rotate', 'redeliver'];
const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);
const doc = YAML.parse(renderOpenApiYaml()) as Doc;
const operations = Object.entries(doc.paths).flatMap(([p, item]) =>
  Object.entries(item)
    .filter(([method]) => HTTP_METHODS.has(method))
    .map(([method, op]) => ({ call: `${method.toUpperCase()} ${p}`, operationId: op.operationId, tags: op.tags })),
);

/** The rows of the operationId table in docs/api.md: `| \`id\` | Tag | \`METHOD /path\` |`. */
function documentedOperations(): Array<{ operationId: string; tag: string; call: string }> {
  const md = fs.readFileSync(path.join(REPO, 'docs/api.md'), 'utf8');
  return [...md.matchAll(/^\| `([^`]+)` \| ([^|]+?) \| `([A-Z]+ [^`]+)` \|$/gm)].map((m) => ({ operationId: m[1], tag: m[2], call: m[3] }));
}

describe('operation names and tags', () => {
  it('covers every route (the document has operations to check)', () => {
    expect(operations.length).toBeGreaterThan(30);
  });

  it('gives every operation a camelCase operationId: a verb, then the resource', () => {
    const verbNoun = new RegExp(`^(?:${VERBS.join('|')})(?:[A-Z][a-z]+)+$`);
    const bad = operations.filter((o) => typeof o.operationId !== 'string' || !verbNoun.test(o.operationId));
    expect(bad).toEqual([]);
  });

  it('never gives two operations the same operationId', () => {
    const seen = new Map<unknown, string[]>();
    for (const o of operations) seen.set(o.operationId, [...(seen.get(o.operationId) ?? []), o.call]);
    expect([...seen.values()].filter((calls) => calls.length > 1)).toEqual([]);
  });

  it('declares each tag once, with a description, and uses every declared tag', () => {
    const names = (doc.tags ?? []).map((t) => t.name);
    expect(names.length).toBeGreaterThan(0);
    expect(new Set(names).size).toBe(names.length);
    for (const t of doc.tags ?? []) expect(t.description, t.name).toMatch(/\S/);
    const used = new Set(operations.flatMap((o) => (Array.isArray(o.tags) ? o.tags : [])));
    expect([...used].sort()).toEqual([...names].sort());
  });

  it('gives every operation exactly one tag, from the declared list', () => {
    const names = new Set((doc.tags ?? []).map((t) => t.name));
    const bad = operations.filter((o) => !Array.isArray(o.tags) || o.tags.length !== 1 || !names.has(o.tags[0] as string));
    expect(bad).toEqual([]);
  });

  it('lists exactly these operations, names and tags in the docs/api.md table', () => {
    const documented = documentedOperations();
    const actual = operations.map((o) => ({ operationId: o.operationId, tag: (o.tags as string[])[0], call: o.call }));
    const byId = (a: { operationId: unknown }, b: { operationId: unknown }) => String(a.operationId).localeCompare(String(b.operationId));
    expect([...documented].sort(byId)).toEqual([...actual].sort(byId));
  });
});
