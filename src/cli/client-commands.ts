import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Batch, ItemAttempt, Schedule } from './api-types.js';
import { FanoutClient, type ClientOptions } from './client.js';
import { CliError } from './errors.js';
import { renderBatchTable, renderScheduleTable } from './format.js';
import { readSpecSource } from './spec-file.js';
import { describeOutcome, waitForBatch } from './wait.js';

/**
 * The client-side `fanout` commands: each takes its parsed options, talks to the API through
 * {@link FanoutClient} and answers the process exit code. Errors are thrown and printed by the
 * caller (errors.ts), so these stay straight-line.
 */

export interface Io {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  stdin: NodeJS.ReadableStream;
}

export const processIo: Io = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin };

/** Width tables are fitted to when the output is not a terminal. */
const DEFAULT_WIDTH = 80;

export async function submitCommand(
  opts: ClientOptions & { file: string; wait?: boolean; idempotencyKey?: string },
  io: Io = processIo,
): Promise<number> {
  const client = new FanoutClient(opts);
  const source = await readSpecSource(opts.file, io.stdin);
  const batch =
    source.kind === 'ndjson'
      ? await client.submitBatchNdjson(source.path, opts.idempotencyKey)
      : await client.submitBatch(source.spec, opts.idempotencyKey);
  io.stdout.write(`${batch.id}\n`);
  if (!opts.wait) return 0;

  const final = await waitForBatch(client, batch, { out: io.stderr });
  for (const line of describeOutcome(final)) io.stderr.write(`${line}\n`);
  return final.status.phase === 'Succeeded' ? 0 : 1;
}

/** `fanout wait ID`: follows a submitted batch like `submit --wait`; exit 0 only if it Succeeded. */
export async function waitCommand(id: string, opts: ClientOptions, io: Io = processIo): Promise<number> {
  const client = new FanoutClient(opts);
  const final = await waitForBatch(client, await client.getBatch(id), { out: io.stderr });
  for (const line of describeOutcome(final)) io.stderr.write(`${line}\n`);
  return final.status.phase === 'Succeeded' ? 0 : 1;
}

export type OutputFormat = 'table' | 'wide' | 'json' | 'yaml' | 'name';

const BATCH_RESOURCES = new Set(['batch', 'batches', 'b']);
const SCHEDULE_RESOURCES = new Set(['schedule', 'schedules', 'sched']);

export async function getCommand(
  resource: string,
  id: string | undefined,
  opts: ClientOptions & { selector?: string; phase?: string; output?: OutputFormat },
  io: Io = processIo,
): Promise<number> {
  if (SCHEDULE_RESOURCES.has(resource)) return getSchedules(id, opts, io);
  if (!BATCH_RESOURCES.has(resource)) throw new CliError(`unknown resource "${resource}": use "batches", "batch ID", "schedules" or "schedule ID"`);
  const client = new FanoutClient(opts);
  if (id !== undefined) {
    if (opts.selector || opts.phase) throw new CliError('-l/--selector and --phase apply to a list: drop the ID or the filters');
    const batch = await client.getBatch(id);
    await printBatches([batch], opts.output ?? 'yaml', io, batch);
    return 0;
  }
  const batches: Batch[] = [];
  for await (const batch of client.listAllBatches({ labelSelector: opts.selector, phase: opts.phase })) batches.push(batch);
  await printBatches(batches, opts.output ?? 'table', io);
  return 0;
}

/** `fanout get schedules [-l SELECTOR]` and `fanout get schedule ID`. */
async function getSchedules(id: string | undefined, opts: ClientOptions & { selector?: string; phase?: string; output?: OutputFormat }, io: Io): Promise<number> {
  if (opts.phase) throw new CliError('--phase applies to batches; schedules have no phase');
  const client = new FanoutClient(opts);
  if (id !== undefined && opts.selector) throw new CliError('-l/--selector applies to a list: drop the ID or the selector');
  const schedules: Schedule[] = [];
  if (id !== undefined) schedules.push(await client.getSchedule(id));
  else for await (const s of client.listAllSchedules(opts.selector)) schedules.push(s);
  const format = opts.output ?? (id !== undefined ? 'yaml' : 'table');
  const document = id !== undefined ? schedules[0] : { items: schedules };
  if (format === 'json') io.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
  else if (format === 'yaml') io.stdout.write((await import('yaml')).stringify(document));
  else if (format === 'name') for (const s of schedules) io.stdout.write(`${s.id}\n`);
  else if (schedules.length === 0) io.stderr.write('No schedules found.\n');
  else {
    const width = format === 'wide' ? undefined : io.stdout.isTTY && io.stdout.columns ? io.stdout.columns : DEFAULT_WIDTH;
    io.stdout.write(`${renderScheduleTable(schedules, Date.now(), width)}\n`);
  }
  return 0;
}

/** Prints batches in `format`; `single` is set when one batch was asked for by id. */
async function printBatches(batches: Batch[], format: OutputFormat, io: Io, single?: Batch): Promise<void> {
  const document = single ?? { items: batches };
  switch (format) {
    case 'json':
      io.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
      return;
    case 'yaml': {
      const { stringify } = await import('yaml');
      io.stdout.write(stringify(document));
      return;
    }
    case 'name':
      for (const b of batches) io.stdout.write(`${b.id}\n`);
      return;
    case 'table':
    case 'wide': {
      if (batches.length === 0) {
        io.stderr.write('No batches found.\n');
        return;
      }
      const width = format === 'wide' ? undefined : io.stdout.isTTY && io.stdout.columns ? io.stdout.columns : DEFAULT_WIDTH;
      io.stdout.write(`${renderBatchTable(batches, Date.now(), width)}\n`);
      return;
    }
  }
}

/** Streams the results NDJSON to stdout byte for byte. */
export async function resultsCommand(id: string, opts: ClientOptions, io: Io = processIo): Promise<number> {
  const client = new FanoutClient(opts);
  const body = await client.openResults(id);
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
  const batch = await new FanoutClient(opts).cancelBatch(id);
  const phase = batch?.status?.phase;
  io.stdout.write(phase && phase !== 'Cancelled' ? `batch ${id} cancel requested (phase ${phase})\n` : `batch ${id} cancelled\n`);
  return 0;
}

/** `fanout retry ID`: re-runs the failed items of a finished batch (a 409 problem when the phase does not allow it). */
export async function retryCommand(id: string, opts: ClientOptions, io: Io = processIo): Promise<number> {
  const batch = await new FanoutClient(opts).retryBatch(id);
  const phase = batch?.status?.phase;
  io.stdout.write(phase ? `batch ${id} retry requested (phase ${phase})\n` : `batch ${id} retry requested\n`);
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
  const item = await new FanoutClient(opts).getItem(id, opts.index);
  let attempts = item.attempts ?? [];
  if (opts.attempt !== undefined) {
    attempts = attempts.filter((a) => a.attempt === opts.attempt);
    if (attempts.length === 0) throw new CliError(`item ${opts.index} of batch ${id} has no attempt ${opts.attempt}`);
  }
  if (attempts.length === 0) {
    io.stderr.write(`item ${opts.index} of batch ${id} has no attempts yet (status ${item.status})\n`);
    return 0;
  }
  for (const a of attempts) {
    io.stdout.write(`${attemptHeader(a)}\n`);
    if (a.error) io.stdout.write(a.error.endsWith('\n') ? a.error : `${a.error}\n`);
  }
  return 0;
}

export async function deleteCommand(
  args: string[],
  opts: ClientOptions & { selector?: string },
  io: Io = processIo,
): Promise<number> {
  // Accept kubectl's `delete batch ID` as well as `delete ID`.
  const ids = args.length > 0 && BATCH_RESOURCES.has(args[0]!) ? args.slice(1) : args;
  const client = new FanoutClient(opts);
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
    io.stdout.write(`batch ${id} deleted\n`);
  }
  return 0;
}
