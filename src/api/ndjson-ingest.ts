import type { Hash } from 'node:crypto';
import { customIdOf } from '../domain/batch-spec.js';
import type { NewItem } from '../store/store.js';
import { jsonTextProblem } from './json-body.js';
import { problem, type ProblemError } from './problems.js';

/**
 * Reads an NDJSON upload line by line from the request stream: the first line is the batch
 * spec, every further non-empty line one item. Items are handed over in chunks, so memory stays
 * flat whatever the upload's size (never `await c.req.text()` here).
 */
export interface IngestOptions {
  maxItemBytes: number;
  maxJsonDepth: number;
  maxItems: number;
  chunkSize?: number;
  /** also fed every raw byte, for Idempotency-Key comparison */
  hash?: Hash;
  /** validates the first line; returns nothing or throws a ProblemError */
  onHeader(line: string): Promise<void> | void;
  /** stores a chunk of items; the next chunk is read only once it resolved */
  onItems(firstIndex: number, rows: NewItem[]): Promise<void>;
}

export const lineProblem = (line: number, detail: string, status = 422): ProblemError =>
  problem(status, status === 413 ? 'too-large' : 'validation', status === 413 ? 'Payload Too Large' : 'Invalid request', `line ${line}: ${detail}`, {
    errors: [{ pointer: '', line, detail }],
  });

export async function ingestNdjson(body: ReadableStream<Uint8Array> | null, o: IngestOptions): Promise<{ total: number }> {
  if (!body) throw lineProblem(1, 'the body is empty: the first line must be the batch spec');
  const chunkSize = o.chunkSize ?? 5000;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let carry = '';
  let lineNo = 0;
  let total = 0;
  let headerSeen = false;
  let rows: NewItem[] = [];

  const flush = async () => {
    if (rows.length === 0) return;
    const chunk = rows;
    rows = [];
    await o.onItems(total - chunk.length, chunk);
  };

  const takeLine = async (raw: string) => {
    lineNo++;
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (!headerSeen) {
      headerSeen = true;
      await o.onHeader(line);
      return;
    }
    if (line.trim() === '') return;
    if (Buffer.byteLength(line) > o.maxItemBytes) throw lineProblem(lineNo, `item is larger than the ${o.maxItemBytes}-byte item limit`, 413);
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw lineProblem(lineNo, `invalid JSON: ${(err as Error).message}`);
    }
    // An item is stored as its line, exactly: a __proto__ key in it is kept, not dropped.
    const refused = jsonTextProblem(line, { maxDepth: o.maxJsonDepth, base: `/items/${total}`, line: lineNo, protoKeyAllowed: () => true });
    if (refused) throw refused;
    if (total >= o.maxItems) throw lineProblem(lineNo, `more than the ${o.maxItems}-item limit per batch`, 413);
    rows.push({ input: line, customId: customIdOf(value) });
    total++;
    if (rows.length >= chunkSize) await flush();
  };

  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    o.hash?.update(value);
    let text: string;
    try {
      text = carry + decoder.decode(value, { stream: true });
    } catch {
      throw lineProblem(lineNo + 1, 'the body is not valid UTF-8');
    }
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      await takeLine(text.slice(start, nl));
      start = nl + 1;
    }
    carry = text.slice(start);
    if (Buffer.byteLength(carry) > Math.max(o.maxItemBytes, 1024 * 1024)) {
      throw lineProblem(lineNo + 1, `line is longer than the ${o.maxItemBytes}-byte item limit`, 413);
    }
  }
  carry += decoder.decode();
  if (carry.length > 0) await takeLine(carry);
  if (!headerSeen) throw lineProblem(1, 'the body is empty: the first line must be the batch spec');
  if (total === 0) throw lineProblem(lineNo + 1, 'a batch needs at least one item after the spec line');
  await flush();
  return { total };
}
