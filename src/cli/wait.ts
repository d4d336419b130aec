import { setTimeout as sleep } from 'node:timers/promises';
import { FINAL_PHASES, type Batch } from './api-types.js';
import { ServerUnreachableError, type FanoutClient } from './client.js';
import { describeProgress } from './format.js';

/**
 * `fanout submit --wait`: polls the batch until its phase is final. On a terminal it draws a
 * progress bar (done/total, items/s, ETA); otherwise, for logs and CI, it prints one line each
 * time the phase changes. Everything goes to stderr so stdout keeps only the batch id.
 */

export interface WaitOptions {
  /** stream for progress output */
  out: NodeJS.WritableStream & { isTTY?: boolean };
  intervalMs?: number;
  /** how long the API may stay unreachable before giving up */
  unreachableGraceMs?: number;
}

/** A progress display: the bar on a terminal, phase-change lines elsewhere. */
interface ProgressView {
  update(batch: Batch, rate: RateSample): void;
  stop(): void;
}

/** Polls until the batch is Succeeded, Failed or Cancelled and answers its last state. */
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
