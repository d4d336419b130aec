import { setTimeout as sleep } from 'node:timers/promises';
import { isFinalPhase, ServerUnreachableError, SseParser, type Batch, type FanoutClient } from './api.js';
import { describeProgress } from './format.js';
import { renderProgressLine } from './progress-line.js';
import { DEFAULT_WIDTH, wrapLine } from './text-width.js';

/**
 * `fanout submit --wait` and `fanout wait ID`: follow the batch's events stream until its phase
 * is final, polling GET /v1/batches/{id} instead when the stream is unavailable or breaks. On a terminal it draws a
 * progress bar (done/total, items/s, ETA); otherwise, for logs and CI, it prints one line each
 * time the phase changes. Everything goes to stderr so stdout keeps only the batch id.
 */

export interface WaitOptions {
  /** stream for progress output */
  out: NodeJS.WritableStream & { isTTY?: boolean };
  /** columns the bar and the lines fit (default 80) */
  width?: number;
  intervalMs?: number;
  /** no byte on the events stream for this long (heartbeats are every 15 s) means it stalled: poll instead */
  eventsIdleMs?: number;
  /** how long the API may stay unreachable before giving up */
  unreachableGraceMs?: number;
}

/** A progress display: the bar on a terminal, phase-change lines elsewhere. */
interface ProgressView {
  update(batch: Batch, rate: RateSample): void;
  stop(): void;
}

/** Follows the batch until it is Succeeded, Failed or Cancelled and answers its last state. */
export async function waitForBatch(client: FanoutClient, submitted: Batch, options: WaitOptions): Promise<Batch> {
  const intervalMs = options.intervalMs ?? 500;
  const grace = options.unreachableGraceMs ?? 30_000;
  const meter = new RateMeter();
  const width = options.width ?? DEFAULT_WIDTH;
  const view = options.out.isTTY ? createBarView(options.out, width) : createLineView(options.out, width);
  let batch = submitted;
  let unreachableSince: number | undefined;
  // Ctrl-C stops waiting, not the batch: restore the terminal and say how to follow it up.
  const onInterrupt = (): void => {
    view.stop();
    options.out.write(`\n${wrapLine(`stopped waiting; batch ${submitted.id} keeps running (fanout get batch ${submitted.id})`, width).join('\n')}\n`);
    process.exit(130);
  };
  process.once('SIGINT', onInterrupt);
  try {
    view.update(batch, meter.add(Date.now(), doneOf(batch), batch.status.counts.total));
    if (!isFinalPhase(batch.status.phase)) {
      batch = await followEvents(client, batch, options.eventsIdleMs ?? 60_000, (b) => view.update(b, meter.add(Date.now(), doneOf(b), b.status.counts.total)));
    }
    while (!isFinalPhase(batch.status.phase)) {
      await sleep(intervalMs);
      try {
        batch = await client.getBatch(submitted.id);
        unreachableSince = undefined;
      } catch (err) {
        // Ride out an API restart; a problem answer (the batch was deleted…) ends the wait.
        if (!(err instanceof ServerUnreachableError)) throw err;
        unreachableSince ??= Date.now();
        if (Date.now() - unreachableSince > grace) throw err;
        continue;
      }
      view.update(batch, meter.add(Date.now(), doneOf(batch), batch.status.counts.total));
    }
  } finally {
    process.removeListener('SIGINT', onInterrupt);
    view.stop();
  }
  return batch;
}

/** The status fields of an events stream's `progress` and `done` data. */
type ProgressData = Pick<Batch['status'], 'phase' | 'counts' | 'completedIndexes' | 'failedIndexes'>;

/**
 * Reads GET /v1/batches/{id}/events until `done`, reporting each state. Any failure (not 200,
 * network error, stream ended early or stalled) just ends the following: it answers the latest
 * state it saw and the caller polls from there.
 */
async function followEvents(client: FanoutClient, start: Batch, idleMs: number, onUpdate: (b: Batch) => void): Promise<Batch> {
  let batch = start;
  const controller = new AbortController();
  let idle = setTimeout(() => controller.abort(), idleMs);
  try {
    const body = await client.openEvents(start.id, { signal: controller.signal });
    const reader = body.getReader();
    const decoder = new TextDecoder();
    const parser = new SseParser();
    try {
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) return batch;
        clearTimeout(idle);
        idle = setTimeout(() => controller.abort(), idleMs);
        for (const message of parser.push(decoder.decode(chunk.value, { stream: true }))) {
          if (!('event' in message) || (message.event !== 'progress' && message.event !== 'done')) continue;
          const data = JSON.parse(message.data) as ProgressData;
          batch = { ...batch, status: { ...batch.status, ...data } };
          onUpdate(batch);
          // The full final state carries the conditions that say why a batch failed.
          if (message.event === 'done') return await client.getBatch(start.id).catch(() => batch);
        }
      }
    } finally {
      controller.abort();
      await reader.cancel().catch(() => {});
    }
  } catch {
    return batch;
  } finally {
    clearTimeout(idle);
  }
}

/** The final summary lines: the counts and, unless it succeeded, why the batch ended. */
export function describeOutcome(batch: Batch): string[] {
  const lines = [describeProgress(batch)];
  if (batch.status.phase !== 'Succeeded') {
    const condition = batch.status.conditions?.find(
      (c) => c.status === 'True' && (c.type === batch.status.phase || c.type === 'Failed' || c.type === 'Cancelled'),
    );
    const why = [condition?.reason, condition?.message].filter(Boolean).join(': ');
    if (why) lines.push(`  ${why}`);
  }
  return lines;
}

function doneOf(batch: Batch): number {
  const c = batch.status.counts;
  return c.succeeded + c.failed + c.cancelled;
}

export interface RateSample {
  /** items finished per second over the recent window */
  perSecond: number;
  /** seconds until every item is done at that rate; undefined while unknown */
  etaSeconds: number | undefined;
}

/** Items per second over a sliding window of observations, and the ETA it implies. */
export class RateMeter {
  private readonly samples: Array<{ t: number; done: number }> = [];
  constructor(private readonly windowMs = 10_000) {}

  add(t: number, done: number, total: number): RateSample {
    this.samples.push({ t, done });
    while (this.samples.length > 2 && t - this.samples[0]!.t > this.windowMs) this.samples.shift();
    const first = this.samples[0]!;
    const elapsed = (t - first.t) / 1000;
    const perSecond = elapsed > 0 ? Math.max(0, (done - first.done) / elapsed) : 0;
    const remaining = Math.max(0, total - done);
    const etaSeconds = remaining === 0 ? 0 : perSecond > 0 ? remaining / perSecond : undefined;
    return { perSecond, etaSeconds };
  }
}

function createLineView(out: NodeJS.WritableStream, width: number): ProgressView {
  let lastPhase: string | undefined;
  return {
    update(batch) {
      // The final phase is left to describeOutcome, which the caller prints once.
      if (batch.status.phase === lastPhase || isFinalPhase(batch.status.phase)) return;
      lastPhase = batch.status.phase;
      for (const line of wrapLine(describeProgress(batch), width)) out.write(`${line}\n`);
    },
    stop() {},
  };
}

/**
 * The bar on a terminal: the line is redrawn in place (carriage return, then erase to the end
 * of the line), and the cursor is hidden while it is drawn.
 */
function createBarView(out: NodeJS.WritableStream, width: number): ProgressView {
  let started = false;
  return {
    update(batch, rate) {
      const c = batch.status.counts;
      const line = renderProgressLine({ done: doneOf(batch), total: c.total, perSecond: rate.perSecond, etaSeconds: rate.etaSeconds, phase: batch.status.phase }, width);
      out.write(`${started ? '' : '\x1b[?25l'}\r${line}\x1b[K`);
      started = true;
    },
    stop() {
      if (started) out.write('\n\x1b[?25h');
      started = false;
    },
  };
}
