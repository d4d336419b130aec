import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ItemReport } from '../runtimes/queue/protocol.js';
import type { ApplyResult } from '../store/reports.js';

/**
 * Prometheus metrics. Gauges that describe stored state (batches by phase, queue depth) are
 * collected on scrape from the sources of truth, not bumped by events.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly finished: Counter<'outcome'>;
  private readonly duration: Histogram;

  constructor(sources: { batchesByPhase: () => { phase: string; n: number }[]; queueDepth: () => Promise<number> }) {
    const registers = [this.registry];
    new Gauge({
      name: 'fanout_batches',
      help: 'Batches by phase.',
      labelNames: ['phase'],
      registers,
      collect() {
        this.reset();
        for (const { phase, n } of sources.batchesByPhase()) this.set({ phase }, n);
      },
    });
    new Gauge({
      name: 'fanout_queue_depth',
      help: 'Lease ranges waiting, delayed or active in Redis.',
      registers,
      async collect() {
        try {
          this.set(await sources.queueDepth());
        } catch {
          // Redis down: leave the last value; /readyz reports the outage.
        }
      },
    });
    this.finished = new Counter({ name: 'fanout_items_finished_total', help: 'Item attempts recorded, by outcome.', labelNames: ['outcome'], registers });
    this.duration = new Histogram({
      name: 'fanout_item_duration_seconds',
      help: 'Duration of recorded item attempts.',
      buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600],
      registers,
    });
  }

  observeReport(items: ItemReport[], result: ApplyResult): void {
    if (result.applied === 0) return;
    for (const it of items) {
      if (it.outcome === 'returned') continue;
      if (it.startedAt !== undefined && it.finishedAt !== undefined) this.duration.observe((it.finishedAt - it.startedAt) / 1000);
    }
    if (result.succeeded) this.finished.inc({ outcome: 'succeeded' }, result.succeeded);
    if (result.failed) this.finished.inc({ outcome: 'failed' }, result.failed);
    const retried = result.applied - result.succeeded - result.failed;
    if (retried > 0) this.finished.inc({ outcome: 'retried_or_returned' }, retried);
  }
}
