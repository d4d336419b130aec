import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { connect, type BatchSpec, type ClientOptions, type ItemAttempt } from './api.js';
import { CliError } from './errors.js';
import { readSpecSource } from './spec-file.js';
import { outputWidth, wrapLine } from './text-width.js';
import { describeOutcome, waitForBatch } from './wait.js';

/**
 * The client-side `fanout` commands: each takes its parsed options, talks to the API through
 * the SDK client ({@link connect}) and answers the process exit code. Errors are thrown and
 * printed by the caller (errors.ts), so these stay straight-line.
 */

export interface Io {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  stdin: NodeJS.ReadableStream;
  /** columns human output fits: 80, or COLUMNS when wider (see text-width.ts) */
  width: number;
}

export const processIo: Io = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, width: outputWidth(process.env.COLUMNS) };

/** Writes human lines to `out`, each wrapped to the output width. */
function writeLines(out: NodeJS.WritableStream, lines: string[], width: number): void {
  for (const line of lines) for (const part of wrapLine(line, width)) out.write(`${part}\n`);
}

export async function submitCommand(
  opts: ClientOptions & { file: string; wait?: boolean; idempotencyKey?: string },
  io: Io = processIo,
): Promise<number> {
  const client = connect(opts);
  const source = await readSpecSource(opts.file, io.stdin);
  const idempotency = { idempotencyKey: opts.idempotencyKey };
  // NDJSON is streamed from the file as it is read, never held whole; the server checks the spec.
  const batch =
    source.kind === 'ndjson'
      ? await client.createBatchFromNdjson(Readable.toWeb(createReadStream(source.path)) as ReadableStream<Uint8Array>, idempotency)
      : await client.createBatch(source.spec as BatchSpec, idempotency);
  io.stdout.write(`${batch.id}\n`);
  if (!opts.wait) return 0;

  const final = await waitForBatch(client, batch, { out: io.stderr, width: io.width });
  writeLines(io.stderr, describeOutcome(final), io.width);
  return final.status.phase === 'Succeeded' ? 0 : 1;
}

/** `fanout wait ID`: follows a submitted batch like `submit --wait`; exit 0 only if it Succeeded. */
export async function waitCommand(id: string, opts: ClientOptions, io: Io = processIo): Promise<number> {
  const client = connect(opts);
  const final = await waitForBatch(client, await client.getBatch(id), { out: io.stderr, width: io.width });
  writeLines(io.stderr, describeOutcome(final), io.width);
  return final.status.phase === 'Succeeded' ? 0 : 1;
}

/** Streams the results NDJSON to stdout byte for byte. */
export async function resultsCommand(id: string, opts: ClientOptions, io: Io = processIo): Promise<number> {
  const body = await connect(opts).openResults(id);
  try {
    await pipeline(Readable.fromWeb(body as import('node:stream/web').ReadableStream<Uint8Array>), io.stdout);
  } catch (err) {
    // `fanout results ID | head` closes the pipe early: that is not a failure.
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') return 0;
    throw err;
  }
  return 0;
}

export async function cancelCommand(id: string, opts: ClientOptions, io: Io = processIo): Promise<number> {
  const batch = await connect(opts).cancel(id);
  const phase = batch?.status?.phase;
  writeLines(io.stdout, [phase && phase !== 'Cancelled' ? `batch ${id} cancel requested (phase ${phase})` : `batch ${id} cancelled`], io.width);
  return 0;
}

/** `fanout retry ID`: re-runs the failed items of a finished batch (a 409 problem when the phase does not allow it). */
export async function retryCommand(id: string, opts: ClientOptions, io: Io = processIo): Promise<number> {
  const batch = await connect(opts).retry(id);
  const phase = batch?.status?.phase;
  writeLines(io.stdout, [phase ? `batch ${id} retry requested (phase ${phase})` : `batch ${id} retry requested`], io.width);
  return 0;
}

/** The header line of one attempt: `attempt 2 · failed · exit 3 · 2026-…`. */
export function attemptHeader(a: ItemAttempt): string {
  const parts = [`attempt ${a.attempt}`, a.outcome];
  if (a.exitCode !== null && a.exitCode !== undefined) parts.push(`exit ${a.exitCode}`);
  if (a.httpStatus !== null && a.httpStatus !== undefined) parts.push(`HTTP ${a.httpStatus}`);
  if (a.condition) parts.push(a.condition);
  const at = a.finishedAt ?? a.startedAt;
  if (at) parts.push(at);
  return parts.join(' · ');
}

/** `fanout logs ID --index N [--attempt K]`: each attempt's header and its stderr tail. */
export async function logsCommand(id: string, opts: ClientOptions & { index: number; attempt?: number }, io: Io = processIo): Promise<number> {
  const item = await connect(opts).getItem(id, opts.index);
  let attempts = item.attempts ?? [];
  if (opts.attempt !== undefined) {
    attempts = attempts.filter((a) => a.attempt === opts.attempt);
    if (attempts.length === 0) throw new CliError(`item ${opts.index} of batch ${id} has no attempt ${opts.attempt}`);
  }
  if (attempts.length === 0) {
    writeLines(io.stderr, [`item ${opts.index} of batch ${id} has no attempts yet (status ${item.status})`], io.width);
    return 0;
  }
  for (const a of attempts) {
    writeLines(io.stdout, [attemptHeader(a)], io.width);
    // The stderr tail is the task's own output: printed as it is, not re-wrapped.
    if (a.error) io.stdout.write(a.error.endsWith('\n') ? a.error : `${a.error}\n`);
  }
  return 0;
}

const BATCH_RESOURCES = new Set(['batch', 'batches', 'b']);

export async function deleteCommand(
  args: string[],
  opts: ClientOptions & { selector?: string },
  io: Io = processIo,
): Promise<number> {
  // Accept kubectl's `delete batch ID` as well as `delete ID`.
  const ids = args.length > 0 && BATCH_RESOURCES.has(args[0]!) ? args.slice(1) : args;
  const client = connect(opts);
  if (opts.selector !== undefined) {
    if (ids.length > 0) throw new CliError('give either batch IDs or -l SELECTOR, not both');
    if (opts.selector.trim() === '') throw new CliError('-l needs a label selector, e.g. -l jobgroup=jobexample');
    const deleted = await client.deleteBatches(opts.selector);
    io.stdout.write(`deleted ${deleted} batches\n`);
    return 0;
  }
  if (ids.length === 0) throw new CliError('give a batch ID or -l SELECTOR');
  for (const id of ids) {
    await client.deleteBatch(id);
    writeLines(io.stdout, [`batch ${id} deleted`], io.width);
  }
  return 0;
}
