import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { createApp } from '../api/app.js';
import { openBlobStore } from '../blobs/open-blob-store.js';
import { startStaleBlobSweeps } from '../blobs/stale-sweep.js';
import { batchTokens } from '../api/tokens.js';
import type { Config, KubernetesConfig } from '../config/config.js';
import type { KubernetesAdmission } from '../runtimes/kubernetes/admission.js';
import { Dispatcher } from '../dispatch/dispatcher.js';
import { RedisSide } from '../runtimes/queue/redis-side.js';
import { forgetBatches } from '../dispatch/forget-batches.js';
import { countBatchesByPhase, knownBatchTasks } from '../store/batch-queries.js';
import { sweepAbandonedUploads } from '../store/batch-create.js';
import { openStore } from '../store/open-store.js';
import type { Store } from '../store/store.js';
import { queueBacklogByTask } from '../store/queue-backlog.js';
import { ensureApiKey, serverSecret } from '../store/tenants.js';
import { tenantActivityToday } from '../store/quotas.js';
import { backfillBatchWebhookSecrets } from '../store/webhook-endpoints.js';
import { parseTaskFlag, startWorker, withTaskLimits, type RunningWorker } from '../worker/index.js';
import { Metrics } from './metrics.js';
import { WebhookDeliverer } from '../webhooks/deliverer.js';
import { LeaderElection } from '../lifecycle/leader-election.js';
import { startAuditPruning } from '../dispatch/audit-retention.js';
import { KeyUsage } from '../api/key-usage.js';
import type { Server as HttpServer } from 'node:http';
import { closeHttpServer, listen } from './http-server.js';
import { closeRedis, settledBefore, soonerOf, unboundedStop, type StopContext } from '../lifecycle/stop-context.js';

/**
 * Builds and starts the parts of Fanout one process runs: the API (HTTP on host:port), the
 * dispatcher, and for `fanout up` in-process workers. Clients are built here and handed to
 * constructors; tests start a service the same way the CLI does.
 * Which process runs what: docs/architecture.md#parts-and-processes.
 */
export interface ServiceOptions {
  config: Config;
  redisUrl: string;
  logger: Logger;
  api: boolean;
  dispatcher: boolean;
  /** task flags for in-process workers (`fanout up`); none: no workers */
  workerTasks?: string[];
}

export interface Service {
  store: Store;
  url: string | null;
  /** the dispatcher while this process leads (null while it stands by, or runs none) */
  readonly dispatcher: Dispatcher | null;
  /** Stops every part within `ctx`'s drain time (unbounded without one); see docs/operations.md "Stopping". */
  close(ctx?: StopContext): Promise<void>;
}

/** Tasks `fanout up` registers when none are given, so the README's example runs at once. */
export const EXAMPLE_TASKS = ['rev=rev', 'echo=cat', 'shout=tr a-z A-Z'];

const TASK_REGISTRY_MAX_AGE_MS = 24 * 3600 * 1000;
/**
 * The registry read by one create serves the creates of the next second: under load a Redis
 * round trip per create was 6% of its CPU. A task missing from it is looked up again (fresh)
 * before a create is refused, so a task a worker has just registered is never refused.
 */
const KNOWN_TASKS_CACHE_MS = 1000;

/** Tenants with a label of their own in the per-tenant metrics; the rest are summed as `other`. */
const METRICS_TOP_TENANTS = 20;

export async function startService(o: ServiceOptions): Promise<Service> {
  const { config, logger } = o;
  const store: Store = await openStore(config.database, { logger });
  const swept = await store.write(sweepAbandonedUploads());
  if (swept > 0) logger.warn({ swept }, 'removed uploads left unfinished by a previous run');
  if (config.apiKey) await store.write(ensureApiKey(config.apiKey));
  await store.write(backfillBatchWebhookSecrets());
  const tokens = batchTokens(await store.write(serverSecret()));

  // The API must answer while Redis is down: no offline queue, fail fast.
  const redis = new Redis(o.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true });
  redis.on('error', (err) => logger.debug({ err: err.message }, 'api redis error'));
  await redis.connect().catch((err) => logger.warn({ err: err.message }, 'redis not reachable yet'));
  const side = new RedisSide(redis, config.prefix);
  const { blobs, close: closeBlobs } = openBlobStore(config.blobs);

  const metrics = new Metrics({
    batchesByPhase: () => store.read(countBatchesByPhase()),
    queueDepth: async () => side.queueDepth(await store.read(knownBatchTasks())),
    async queueBacklog() {
      // The leases workers hold: BullMQ's active jobs (a lease's job id is the lease id).
      const tasks = await store.read(knownBatchTasks());
      const held = await Promise.all(tasks.map((task) => side.workQueue(task).getRanges(['active'], 0, -1)));
      return store.read(queueBacklogByTask(held.flat()));
    },
    taskRates: () => side.taskRates(TASK_REGISTRY_MAX_AGE_MS),
    dispatcherLeader: o.dispatcher ? () => (election?.leading ? 1 : 0) : undefined,
    tenantActivity: () => store.read(tenantActivityToday(Date.now(), METRICS_TOP_TENANTS)),
  });

  let dispatcher: Dispatcher | null = null;
  let server: HttpServer | null = null;
  let url: string | null = null;
  let stopBlobSweeps = () => {};
  const keyUsage = new KeyUsage({ store, flushMs: config.keyUsageFlushMs, logger });
  if (o.api) {
    keyUsage.start();
    // The task registry as last read, for every create within KNOWN_TASKS_CACHE_MS (see knownTasks).
    let tasksRead: { at: number; tasks: Set<string> } | undefined;
    stopBlobSweeps = startStaleBlobSweeps(blobs, logger);
    const app = createApp({
      store,
      config,
      logger,
      metrics,
      blobs,
      tokens,
      keyUsage,
      kubernetesAdmission: config.kubernetes ? await kubernetesAdmission(config.kubernetes, o.redisUrl) : undefined,
      notify: (id) => dispatcher?.notify(id),
      async knownTasks(o) {
        const now = Date.now();
        if (!o?.fresh && tasksRead && now - tasksRead.at < KNOWN_TASKS_CACHE_MS) return tasksRead.tasks;
        try {
          const tasks = new Set((await side.registeredTasks(TASK_REGISTRY_MAX_AGE_MS, now)).keys());
          tasksRead = { at: now, tasks };
          return tasks;
        } catch {
          return null;
        }
      },
      haltInRedis: (ids, mode) => side.halt(ids, mode).catch((err) => logger.warn({ err: err.message }, 'could not halt in redis; the dispatcher will')),
      forgetDeleted: (deleted) => forgetBatches({ blobs, notify: (id) => dispatcher?.notify(id), forgetInRedis: (gone) => side.forgetDeleted(gone, logger) }, deleted),
      async ready() {
        const storeOk = await store.ping().then(() => true, () => false);
        const redisOk = await Promise.race([redis.ping().then(() => true, () => false), new Promise<boolean>((r) => setTimeout(() => r(false), 1000))]);
        return { store: storeOk, redis: redisOk };
      },
    });
    server = await listen(app.fetch, config.host, config.port, config.http);
    const port = (server.address() as AddressInfo).port;
    url = `http://${config.host}:${port}`;
  }

  // Started after the API so that pods can be told this process's own URL when no
  // FANOUT_PUBLIC_URL is set (`fanout up` on a free port).
  const kubernetes = config.kubernetes && { ...config.kubernetes, publicUrl: config.kubernetes.publicUrl ?? url ?? config.apiUrl };
  // One dispatcher leads at a time (docs/architecture.md#leader-election); the others stand by.
  // The leader also delivers webhooks. Both write through a store fenced by its leadership.
  let deliverer: WebhookDeliverer | null = null;
  let stopAuditPruning = () => {};
  let stopping: StopContext = unboundedStop();
  const election = o.dispatcher
    ? new LeaderElection({
        store,
        name: 'dispatcher',
        leaseMs: config.leaderLeaseMs,
        logger,
        async lead(fenced) {
          dispatcher = new Dispatcher({ store: fenced, redisUrl: o.redisUrl, prefix: config.prefix, logger, metrics, tokenFor: tokens.sign, leaseMs: config.leaseMs, resyncMs: config.resyncMs, window: config.releaseWindow, maxLeaseSize: config.maxLeaseSize, kubernetes, blobs, quotaDefaults: config.quotas, sweepChunkItems: config.sweepChunkItems, sweepPauseMs: config.sweepPauseMs, priorityAgingMs: config.priorityAgingMs });
          await dispatcher.start();
          deliverer = new WebhookDeliverer({ store: fenced, redisUrl: o.redisUrl, prefix: config.prefix, logger, config: config.webhooks });
          await deliverer.start();
          stopAuditPruning = startAuditPruning({ store: fenced, retentionMs: config.auditRetentionMs, logger });
        },
        async stand() {
          const [d, w] = [dispatcher, deliverer];
          dispatcher = null;
          deliverer = null;
          stopAuditPruning();
          await w?.stop(stopping);
          await d?.stop(stopping);
        },
      })
    : null;
  await election?.start();
  if (election && !election.leading) logger.info('another dispatcher leads; standing by');


  const workers: RunningWorker[] = [];
  if (o.workerTasks && o.workerTasks.length > 0) {
    workers.push(
      await startWorker({
        connection: o.redisUrl,
        prefix: config.prefix,
        tasks: withTaskLimits(o.workerTasks.map(parseTaskFlag), config.taskLimits),
        concurrency: config.concurrency,
        apiUrl: url ?? config.apiUrl,
        leaseMs: config.leaseMs,
        inlineResultLimit: config.limits.inlineResultBytes,
        logger,
      }),
    );
  }

  return {
    store,
    url,
    get dispatcher() {
      return dispatcher;
    },
    async close(ctx: StopContext = unboundedStop()) {
      stopBlobSweeps();
      // No more lease renewals from here: each is a write, which could wait on a locked database.
      election?.pause();
      // Workers first: while they drain, the API still takes their large results.
      await Promise.all(workers.map((w) => w.close(ctx)));
      if (server) await closeHttpServer(server, ctx);
      await settledBefore(keyUsage.stop(), soonerOf(ctx.drain, 1000));
      stopping = ctx;
      await election?.stop();
      await settledBefore(side.close(), soonerOf(ctx.drain, 1000));
      if (!(await closeRedis(redis))) ctx.abandon({ redis: 'unreachable' });
      closeBlobs();
      await store.close();
    },
  };
}

/**
 * The Kubernetes client is loaded only when Kubernetes is configured: importing it puts tens of
 * MB of code in the heap of every server, and a larger old generation made V8 promote and keep
 * much more of an NDJSON upload's short-lived garbage (docs/operations.md, "What the server's memory depends on").
 */
async function kubernetesAdmission(config: KubernetesConfig, redisUrl: string): Promise<KubernetesAdmission> {
  const { KubernetesAdmission } = await import('../runtimes/kubernetes/admission.js');
  return new KubernetesAdmission(config, redisUrl);
}
