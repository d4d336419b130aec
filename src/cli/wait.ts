import { setTimeout as sleep } from 'node:timers/promises';
import { FINAL_PHASES, type Batch } from './api-types.js';
import { ServerUnreachableError, type FanoutClient } from './client.js';
import { describeProgress } from './format.js';
import { SseParser } from './sse-parser.js';

/**
 * `fanout submit --wait` and `fanout wait ID`: follow the batch's events stream until its phase
 * is final, polling GET /v1/batches/{id} instead when the stream is unavailable or breaks. On a terminal it draws a
 * progress bar (done/total, items/s, ETA); otherwise, for logs and CI, it prints one line each
 * time the phase changes. Everything goes to stderr so stdout keeps only the batch id.
 */

export interface WaitOptions {
  /** stream for progress output */
  out: NodeJS.WritableStream & { isTTY?: boolean };
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
  const view = options.out.isTTY ? await createBarView(options.out) : createLineView(options.out);
  let batch = submitted;
  let unreachableSince: number | undefined;
  // Ctrl-C stops waiting, not the batch: restore the terminal and say how to follow it up.
  const onInterrupt = (): void => {
    view.stop();
    options.out.write(`\nstopped waiting; batch ${submitted.id} keeps running (fanout get batch ${submitted.id})\n`);
    process.exit(130);
  };
  process.once('SIGINT', onInterrupt);
  try {
    view.update(batch, meter.add(Date.now(), doneOf(batch), batch.status.counts.total));
    if (!FINAL_PHASES.has(batch.status.phase)) {
      batch = await followEvents(client, batch, options.eventsIdleMs ?? 60_000, (b) => view.update(b, meter.add(Date.now(), doneOf(b), b.status.counts.total)));
    }
    while (!FINAL_PHASES.has(batch.status.phase)) {
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
    const body = await client.openEvents(start.id, controller.signal);
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

function createLineView(out: NodeJS.WritableStream): ProgressView {
  let lastPhase: string | undefined;
  return {
    update(batch) {
      // The final phase is left to describeOutcome, which the caller prints once.
      if (batch.status.phase === lastPhase || FINAL_PHASES.has(batch.status.phase)) return;
      lastPhase = batch.status.phase;
      out.write(`${describeProgress(batch)}\n`);
    },
    stop() {},
  };
}

async function createBarView(out: NodeJS.WritableStream): Promise<ProgressView> {
  // cli-progress is loaded only for an interactive wait.
  const { default: cliProgress } = await import('cli-progress');
  const bar = new cliProgress.SingleBar({
    stream: out,
    format: '{bar} {value}/{total} | {rate} items/s | ETA {etaText} | {phase}',
    barsize: 30,
    hideCursor: true,
    clearOnComplete: false,
  });
  let started = false;
  return {
    update(batch, rate) {
      const total = Math.max(batch.status.counts.total, 1);
      const payload = { rate: rate.perSecond.toFixed(1), etaText: formatEta(rate.etaSeconds), phase: batch.status.phase };
      if (!started) {
        bar.start(total, doneOf(batch), payload);
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(doneOf(batch), payload);
      }
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}

function formatEta(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '--';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
