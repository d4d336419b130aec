import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ApiMetrics } from '../contracts/api-metrics.js';
import type { ItemReport } from '../contracts/item-report.js';
import type { ApplyResult } from '../store/reports.js';
import type { TenantActivity } from '../store/quotas.js';

export interface MetricSources {
  batchesByPhase: () => Promise<{ phase: string; n: number }[]>;
  queueDepth: () => Promise<number>;
  /** rejects when Redis cannot say which leases workers hold */
  queueBacklog: () => Promise<{ task: string; items: number }[]>;
  /** the rate each rate-limited task is held to now; rejects when Redis cannot say */
  taskRates?: () => Promise<{ task: string; perSecond: number }[]>;
  /** 1 while this process leads the dispatchers, 0 while it stands by; undefined: it runs no dispatcher */
  dispatcherLeader?: () => number;
  /** today's activity of the busiest tenants and `other` (a bounded label set) */
  tenantActivity?: () => Promise<TenantActivity[]>;
}

/** HTTP request durations' buckets, in seconds: API calls answer in milliseconds, a big upload in seconds. */
const HTTP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * Prometheus metrics; every one is listed in docs/operations.md "Metrics". Gauges that describe
 * stored state (batches by phase, queue depth, backlog) are collected on scrape from the sources
 * of truth, not bumped by events.
 */
export class Metrics implements ApiMetrics {
  readonly registry = new Registry();
  private readonly finished: Counter<'outcome'>;
  private readonly duration: Histogram;
  readonly httpDuration: Histogram<'method' | 'route' | 'status'>;

  /**
   * `processMetrics`: also prom-client's default process metrics (CPU, memory, GC, and the
   * event-loop delay `nodejs_eventloop_lag_*_seconds`, sampled by perf_hooks' monitorEventLoopDelay
   * every 10 ms and reset on each scrape). Off only for a registry that is never scraped.
   */
  /**
   * Per-tenant gauges, labelled `tenant` (its id) for the busiest tenants of the day and `other`
   * for the rest, read once per scrape (the first gauge's collect reads, the others reuse it).
   */
  private tenantGauges(read: () => Promise<TenantActivity[]>, registers: Registry[]): void {
    let latest: Promise<TenantActivity[]> | null = null;
    const fields: [string, string, keyof Omit<TenantActivity, 'tenant'>][] = [
      ['fanout_tenant_batches_today', 'Batches submitted today (UTC), by tenant (the busiest by items run, the rest as other).', 'batches'],
      ['fanout_tenant_items_run_today', 'Item attempts run to an outcome today (UTC), by tenant.', 'itemsRun'],
      ['fanout_tenant_item_seconds_today', 'Execution time of those attempts today (UTC), in seconds, by tenant.', 'itemSeconds'],
      ['fanout_tenant_result_bytes_today', 'Bytes of results stored today (UTC), by tenant.', 'resultBytes'],
      ['fanout_tenant_running_items', 'Items released to workers now, by tenant (what the runningItems quota limits).', 'runningItems'],
    ];
    fields.forEach(([name, help, field], k) => {
      new Gauge({
        name,
        help,
        labelNames: ['tenant'],
        registers,
        async collect() {
          if (k === 0 || !latest) latest = read();
          let rows;
          try {
            rows = await latest;
          } catch {
            return; // the store unreachable: leave the last values
          }
          this.reset();
          for (const r of rows) this.set({ tenant: r.tenant }, r[field]);
        },
      });
    });
  }

  constructor(sources: MetricSources, options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 10 });
    new Gauge({
      name: 'fanout_batches',
      help: 'Batches by phase.',
      labelNames: ['phase'],
      registers,
      async collect() {
        const counts = await sources.batchesByPhase();
        this.reset();
        for (const { phase, n } of counts) this.set({ phase }, n);
      },
    });
    if (sources.dispatcherLeader) {
      const leader = sources.dispatcherLeader;
      new Gauge({
        name: 'fanout_dispatcher_leader',
        help: 'Whether this process leads the dispatchers (1) or stands by (0).',
        registers,
        collect() {
          this.set(leader());
        },
      });
    }
    if (sources.tenantActivity) this.tenantGauges(sources.tenantActivity, registers);
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
    new Gauge({
      name: 'fanout_queue_backlog',
      help: 'Items of queue-runtime batches no worker has taken yet (pending in the store, or in a lease still waiting in Redis), by task; what worker autoscaling scales on.',
      labelNames: ['task'],
      registers,
      async collect() {
        let backlog;
        try {
          backlog = await sources.queueBacklog();
        } catch {
          return; // Redis down: leave the last values; /readyz reports the outage.
        }
        this.reset();
        for (const { task, items } of backlog) this.set({ task }, items);
      },
    });
    if (sources.taskRates) {
      const rates = sources.taskRates;
      new Gauge({
        name: 'fanout_task_rate_per_second',
        help: 'Item starts per second a rate-limited task is held to now, across all its workers: its maxPerSecond, or less while the adaptive rate recovers from a 429/503 slow-down.',
        labelNames: ['task'],
        registers,
        async collect() {
          let now;
          try {
            now = await rates();
          } catch {
            return; // Redis down: leave the last values; /readyz reports the outage.
          }
          this.reset();
          for (const { task, perSecond } of now) this.set({ task }, perSecond);
        },
      });
    }
    this.httpDuration = new Histogram({
      name: 'fanout_http_request_duration_seconds',
      help: 'HTTP requests, from arrival until the response status and headers are ready (a streamed body, SSE or NDJSON, is not included), by method, route template and status.',
      labelNames: ['method', 'route', 'status'],
      buckets: HTTP_BUCKETS,
      registers,
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
