import {
  ApiException,
  BatchV1Api,
  CoreV1Api,
  KubeConfig,
  ListWatch,
  makeInformer,
  Watch,
  PatchStrategy,
  setHeaderOptions,
  type Informer,
  type ObjectCache,
  type CoreV1Event,
  type V1Job,
  type V1Pod,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { BatchHeader } from '../../domain/batch-spec.js';
import type { BatchDecisions } from '../../domain/batch-status.js';
import { mergeIndexRanges, type IndexRange } from '../../domain/index-ranges.js';
import type { KubernetesConfig } from '../../config/config.js';
import type { StoreHandle } from '../../store/db.js';
import type { BatchRow } from '../../store/batch-queries.js';
import { getBatchById } from '../../store/batch-queries.js';
import { haltBatch, parseDecisions, parseHeader, refreshStatus } from '../../store/batch-state.js';
import { KubernetesSync, setRuntimeCondition, type JobObservation, type ObservedAttempt } from '../../store/kubernetes-sync.js';
import { loadKubeConfig, runtimeSettings, serverMessage } from './client.js';
import { CreateLimiter } from './create-limiter.js';
import {
  BATCH_LABEL,
  headlessService,
  indexedJob,
  itemJob,
  itemJobName,
  jobName,
  secretName,
  serviceName,
  shardsOf,
  tokenSecret,
  workerJob,
  workerJobName,
  type RuntimeSettings,
} from './manifests.js';
import {
  completionIndexOf,
  FAILURE_COUNT_ANNOTATION,
  IGNORED_FAILURE_COUNT_ANNOTATION,
  isPodActive,
  jobView,
  offsetOf,
  podAttempt,
} from './observe.js';

/**
 * The Kubernetes side of the dispatcher: turns a batch into Jobs (one Indexed Job per shard, one
 * Job per item, or a Job of queue workers), follows them with informers (a watch with re-list,
 * restarted after errors, `410 Gone` and API-server restarts) and mirrors what the job
 * controller reports into the store through {@link KubernetesSync}. Level-triggered like the
 * rest of the dispatcher: `reconcile` reads the batch and the cached cluster state and converges
 * one on the other, whatever woke it.
 */

/** Condition a batch carries while the API server cannot be reached or refuses transiently. */
const UNAVAILABLE = 'KubernetesUnavailable';

/**
 * Condition a batch carries while the job controller cannot create its pods (an invalid pod for
 * one item, a quota): Kubernetes keeps retrying, so the batch keeps running, but says why.
 */
const PODS_NOT_CREATED = 'PodCreationFailed';

/** How long a created Job may stay out of the watch cache before it stops counting as running. */
const UNSEEN_FOR_MS = 60_000;

export interface KubernetesRuntimeOptions {
  config: KubernetesConfig;
  store: StoreHandle;
  logger: Logger;
  /** the Redis URL worker pods get when the configuration names none, and the key prefix */
  redisUrl: string;
  redisPrefix: string;
  tokenFor(batchId: string): string;
  /** wakes the dispatcher for a batch */
  notify(batchId: string): void;
}

type Cache<T extends { metadata?: { name?: string } }> = Informer<T> & ObjectCache<T>;

/** An API-server answer that retrying will not change (the batch fails with its message). */
class PermanentError extends Error {}

export class KubernetesRuntime {
  private readonly kc: KubeConfig;
  private readonly batchApi: BatchV1Api;
  private readonly coreApi: CoreV1Api;
  private readonly sync: KubernetesSync;
  private readonly limiter: CreateLimiter;
  private readonly jobs = new Map<string, Cache<V1Job>>();
  private readonly pods = new Map<string, Cache<V1Pod>>();
  /** the job controller's FailedCreate events, by namespace */
  private readonly failedCreates = new Map<string, ListWatch<CoreV1Event>>();
  /** attempts seen in pods that were deleted before a reconcile read them */
  private readonly tombstones = new Map<string, ObservedAttempt[]>();
  /** batches whose objects were cleaned up after they finished (no repeated deletes) */
  private readonly finalized = new Set<string>();
  /** per batch, item Jobs created by this process and not yet in the watch cache, with when */
  private readonly unseen = new Map<string, Map<string, number>>();
  /** Secrets and Services already created, by `${kind} ${namespace}/${name}` */
  private readonly ensured = new Set<string>();
  private stopped = false;

  constructor(private readonly o: KubernetesRuntimeOptions) {
    this.kc = loadKubeConfig(o.config);
    this.batchApi = this.kc.makeApiClient(BatchV1Api);
    this.coreApi = this.kc.makeApiClient(CoreV1Api);
    this.sync = new KubernetesSync(o.store);
    this.limiter = new CreateLimiter(o.config.createQps);
  }

  /** Starts one Job and one Pod informer per namespace Fanout may use. */
  async start(): Promise<void> {
    for (const namespace of this.o.config.allowedNamespaces) {
      const jobs = makeInformer<V1Job>(
        this.kc,
        `/apis/batch/v1/namespaces/${namespace}/jobs`,
        () => this.batchApi.listNamespacedJob({ namespace, labelSelector: BATCH_LABEL }),
        BATCH_LABEL,
      );
      const pods = makeInformer<V1Pod>(
        this.kc,
        `/api/v1/namespaces/${namespace}/pods`,
        () => this.coreApi.listNamespacedPod({ namespace, labelSelector: BATCH_LABEL }),
        BATCH_LABEL,
      );
      const wake = (obj: V1Job | V1Pod) => {
        const id = obj.metadata?.labels?.[BATCH_LABEL];
        if (id) this.o.notify(id);
      };
      jobs.on('add', wake);
      jobs.on('update', wake);
      jobs.on('delete', wake);
      pods.on('add', wake);
      pods.on('update', wake);
      pods.on('delete', (pod) => {
        // A pod deleted right after it ended (an eviction, a cancel) may be gone before the next
        // reconcile lists the cache: keep its attempt.
        const id = pod.metadata?.labels?.[BATCH_LABEL];
        const offset = offsetOf(pod);
        const attempt = offset === null ? null : podAttempt(pod, offset);
        if (id && attempt) this.tombstones.set(id, [...(this.tombstones.get(id) ?? []), attempt]);
        wake(pod);
      });
      const events = new ListWatch<CoreV1Event>(
        `/api/v1/namespaces/${namespace}/events`,
        new Watch(this.kc),
        () => this.coreApi.listNamespacedEvent({ namespace, fieldSelector: 'reason=FailedCreate' }),
        false,
        undefined,
        'reason=FailedCreate',
      );
      const wakeJob = (e: CoreV1Event) => {
        const job = e.involvedObject?.kind === 'Job' ? jobs.get(e.involvedObject.name ?? '', namespace) : undefined;
        if (job) wake(job);
      };
      events.on('add', wakeJob);
      events.on('update', wakeJob);
      this.jobs.set(namespace, jobs);
      this.pods.set(namespace, pods);
      this.failedCreates.set(namespace, events);
      this.keepRunning(`jobs in ${namespace}`, jobs);
      this.keepRunning(`pods in ${namespace}`, pods);
      this.keepRunning(`events in ${namespace}`, events);
      await Promise.all([this.startInformer(jobs), this.startInformer(pods), this.startInformer(events)]);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const i of [...this.jobs.values(), ...this.pods.values(), ...this.failedCreates.values()]) await i.stop().catch(() => {});
  }

  /**
   * client-node's informer stops for good after an error (a dropped watch, an API server that
   * restarted); start it again, with a re-list when its resource version is too old (410).
   */
  private keepRunning(what: string, informer: Informer<V1Job> | Informer<V1Pod> | Informer<CoreV1Event>): void {
    informer.on('error', (err: unknown) => {
      if (this.stopped) return;
      this.o.logger.debug({ err: (err as Error)?.message, what }, 'kubernetes watch ended; restarting');
      setTimeout(() => void this.startInformer(informer), 1000).unref();
    });
    // Each (re)connection: with no resource version (first start, or after 410 Gone) it lists
    // everything again; otherwise it resumes the watch where it left off.
    informer.on('connect', () => {
      const resourceVersion = (informer as unknown as ListWatch<V1Job>).latestResourceVersion?.() ?? '';
      this.o.logger.debug({ what, relist: resourceVersion === '', resourceVersion }, 'kubernetes watch connecting');
    });
  }

  private async startInformer(informer: Informer<V1Job> | Informer<V1Pod> | Informer<CoreV1Event>): Promise<void> {
    if (this.stopped) return;
    try {
      await informer.start();
    } catch (err) {
      // The list failed (API server down): the error callback was called too, which retries.
      this.o.logger.debug({ err: (err as Error).message }, 'kubernetes informer could not start');
    }
  }

  /** Whether a batch has objects on the cluster, or needs them. */
  handles(header: BatchHeader): boolean {
    return header.runtime !== 'queue' || header.workers?.kubernetes !== undefined;
  }

  /**
   * Converges the cluster on one batch and the batch on what the cluster reports. Returns the
   * time the dispatcher should look again (null: only when something changes).
   */
  async reconcile(row: BatchRow): Promise<number | null> {
    const header = parseHeader(row);
    const namespace = header.namespace ?? this.o.config.namespace;
    if (row.state === 'final') {
      await this.finish(row, header, namespace);
      return null;
    }
    this.finalized.delete(row.id);
    const decisions = parseDecisions(row);
    let wake: number | null = null;
    try {
      await this.ensureSecret(row, header, namespace);
      if (header.runtime === 'queue') {
        await this.ensureWorkers(row, header, namespace, decisions);
      } else {
        if (header.runtime === 'indexed-job') {
          if (header.networking?.headless) await this.ensureService(row, header, namespace);
          await this.ensureShards(row, header, namespace, decisions);
        } else {
          wake = await this.ensureItemJobs(row, header, namespace, decisions);
        }
        this.observe(row.id, namespace);
      }
      setRuntimeCondition(this.o.store, row.id, UNAVAILABLE, null);
      // What the Jobs reported may have ended the batch: clean up now, nothing else will wake it.
      const after = getBatchById(this.o.store, row.id);
      if (after?.state === 'final') await this.finish(after, header, namespace);
    } catch (err) {
      this.onApiError(row.id, err);
    }
    return wake;
  }

  /** A batch that no longer exists (deleted): remove everything it had on the cluster. */
  async forget(batchId: string): Promise<void> {
    for (const namespace of this.o.config.allowedNamespaces) {
      if (this.jobsOf(namespace, batchId).length === 0 && !this.ensured.has(`Secret ${namespace}/${secretName(batchId)}`)) continue;
      await this.deleteAll(batchId, namespace);
    }
    this.tombstones.delete(batchId);
    this.finalized.delete(batchId);
    this.unseen.delete(batchId);
  }

  /** Batch ids that have Jobs on the cluster (the dispatcher removes those of deleted batches). */
  batchesOnCluster(): Set<string> {
    const ids = new Set<string>();
    for (const cache of this.jobs.values()) {
      for (const job of cache.list()) {
        const id = job.metadata?.labels?.[BATCH_LABEL];
        if (id) ids.add(id);
      }
    }
    return ids;
  }

  // ---- converging -------------------------------------------------------------------------

  private settings(): RuntimeSettings {
    return runtimeSettings(this.o.config, { url: this.o.redisUrl, prefix: this.o.redisPrefix }, 'http://127.0.0.1:8080');
  }

  private async ensureSecret(row: BatchRow, header: BatchHeader, namespace: string): Promise<void> {
    const key = `Secret ${namespace}/${secretName(row.id)}`;
    if (this.ensured.has(key)) return;
    await this.create('Secret', secretName(row.id), () =>
      this.coreApi.createNamespacedSecret({ namespace, body: tokenSecret(row.id, this.o.tokenFor(row.id), header.labels ?? {}, { ...this.settings(), namespace }) }),
    );
    this.ensured.add(key);
  }

  private async ensureService(row: BatchRow, header: BatchHeader, namespace: string): Promise<void> {
    const key = `Service ${namespace}/${serviceName(row.id)}`;
    if (this.ensured.has(key)) return;
    await this.create('Service', serviceName(row.id), () =>
      this.coreApi.createNamespacedService({ namespace, body: headlessService({ batchId: row.id, header, settings: this.settings() }) }),
    );
    this.ensured.add(key);
  }

  /**
   * One Indexed Job per shard, created one after the other: a shard starts when the ones before
   * it have finished, so the batch never runs more than `parallelism` pods at once. A shard's
   * failure budget is what earlier shards left of `maxFailedItems`.
   */
  private async ensureShards(row: BatchRow, header: BatchHeader, namespace: string, decisions: BatchDecisions): Promise<void> {
    const shards = shardsOf(row.total, this.o.config.shardSize);
    for (const shard of shards) {
      const name = jobName(row.id, shard.shard);
      const existing = this.jobs.get(namespace)?.get(name, namespace);
      if (existing) {
        await this.setSuspended(existing, namespace, decisions.suspended);
        if (!jobView(existing, shard.offset).finished) return;
        continue;
      }
      const max = header.retry.maxFailedItems;
      const job = indexedJob({
        batchId: row.id,
        header,
        shard,
        suspend: decisions.suspended,
        maxFailedIndexes: max === undefined ? undefined : Math.max(0, Math.min(shard.count, max - row.failed)),
        settings: this.settings(),
      });
      await this.create('Job', name, () => this.batchApi.createNamespacedJob({ namespace, body: job }));
      return;
    }
  }

  /**
   * The expansion pattern: a Job per item, rendered from the template, created in index order
   * while fewer than `parallelism` of them are unfinished, at the configured rate. The release
   * cursor remembers how far creation got, across restarts.
   */
  private async ensureItemJobs(row: BatchRow, header: BatchHeader, namespace: string, decisions: BatchDecisions): Promise<number | null> {
    const jobs = this.jobsOf(namespace, row.id);
    let unfinished = 0;
    for (const job of jobs) {
      if (jobView(job, 0).finished) continue;
      unfinished++;
      await this.setSuspended(job, namespace, decisions.suspended);
    }
    // Jobs this process created that the watch has not shown yet are unfinished too: without
    // them a reconcile right after a creation would start more than `parallelism` items.
    const seen = new Set(jobs.map((j) => j.metadata?.name));
    const unseen = this.unseen.get(row.id) ?? new Map<string, number>();
    this.unseen.set(row.id, unseen);
    for (const [name, at] of unseen) {
      if (seen.has(name) || Date.now() - at > UNSEEN_FOR_MS) unseen.delete(name);
      else unfinished++;
    }
    if (decisions.suspended) return null;
    let cursor = row.releaseCursor;
    const input = this.o.store.sqlite.prepare('SELECT input FROM items WHERE batch_id = ? AND idx = ?').pluck();
    const advance = this.o.store.sqlite.prepare('UPDATE batches SET release_cursor = ? WHERE id = ? AND release_cursor < ?');
    while (cursor < row.total && unfinished < row.parallelism) {
      const waitMs = this.limiter.take();
      if (waitMs > 0) return Date.now() + waitMs;
      const index = cursor;
      const item = JSON.parse(input.get(row.id, index) as string) as unknown;
      const job = itemJob({ batchId: row.id, header, index, item, suspend: false, settings: this.settings() });
      await this.create('Job', itemJobName(row.id, index), () => this.batchApi.createNamespacedJob({ namespace, body: job }));
      unseen.set(itemJobName(row.id, index), Date.now());
      cursor++;
      unfinished++;
      advance.run(cursor, row.id, cursor);
    }
    return null;
  }

  /** The fine-parallel pattern: a Job of `fanout worker --batch ID --exit-when-empty` pods. */
  private async ensureWorkers(row: BatchRow, header: BatchHeader, namespace: string, decisions: BatchDecisions): Promise<void> {
    const name = workerJobName(row.id);
    const existing = this.jobs.get(namespace)?.get(name, namespace);
    const finished = existing && jobView(existing, 0).finished;
    if (finished?.type === 'Failed') {
      // No worker can run (an image that never starts, workers crashing): nothing else will.
      return this.failBatch(row.id, 'WorkersFailed', `worker Job ${name} failed (${finished.reason}): ${finished.message}`);
    }
    if (finished && row.pending + row.running > 0) {
      // A retry reopened the batch after its workers exited: replace the finished Job (the
      // creation below is refused until the old one is gone, then goes through).
      await this.deleteJob(name, namespace);
      return;
    }
    if (existing) return this.setSuspended(existing, namespace, decisions.suspended);
    const job = workerJob({ batchId: row.id, header, suspend: decisions.suspended, settings: this.settings() });
    await this.create('Job', name, () => this.batchApi.createNamespacedJob({ namespace, body: job }));
  }

  private async setSuspended(job: V1Job, namespace: string, suspend: boolean): Promise<void> {
    if ((job.spec?.suspend ?? false) === suspend || jobView(job, 0).finished) return;
    const name = job.metadata!.name!;
    await this.call(`patch Job ${name}`, () =>
      this.batchApi.patchNamespacedJob({ name, namespace, body: { spec: { suspend } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)),
    );
  }

  /**
   * A final batch. When it was halted (cancel, the deadline, a FailBatch rule, a refused object)
   * its unfinished Jobs are deleted with their pods; finished Jobs (one that failed by its own pod
   * failure policy, say) stay for ttlSecondsAfterFinished, for their logs, and so does the Job of
   * queue workers of a batch that ran to the end (they exit 0 on their own, completing it). The
   * token Secret and the Service go either way: no new pod needs them.
   */
  private async finish(row: BatchRow, header: BatchHeader, namespace: string): Promise<void> {
    if (this.finalized.has(row.id) || !this.handles(header)) return;
    try {
      if (parseDecisions(row).halt) {
        for (const job of this.jobsOf(namespace, row.id)) {
          if (!jobView(job, 0).finished) await this.deleteJob(job.metadata!.name!, namespace);
        }
      }
      await this.deleteObject('Secret', secretName(row.id), () => this.coreApi.deleteNamespacedSecret({ name: secretName(row.id), namespace }));
      if (header.networking?.headless) {
        await this.deleteObject('Service', serviceName(row.id), () => this.coreApi.deleteNamespacedService({ name: serviceName(row.id), namespace }));
      }
      this.ensured.delete(`Secret ${namespace}/${secretName(row.id)}`);
      this.ensured.delete(`Service ${namespace}/${serviceName(row.id)}`);
      this.finalized.add(row.id);
      this.tombstones.delete(row.id);
      this.unseen.delete(row.id);
    } catch (err) {
      this.o.logger.warn({ batchId: row.id, err: describe(err) }, 'could not clean up a finished batch on Kubernetes; retrying');
      throw err;
    }
  }

  private async deleteAll(batchId: string, namespace: string): Promise<void> {
    for (const job of this.jobsOf(namespace, batchId)) await this.deleteJob(job.metadata!.name!, namespace);
    await this.deleteObject('Secret', secretName(batchId), () => this.coreApi.deleteNamespacedSecret({ name: secretName(batchId), namespace }));
    await this.deleteObject('Service', serviceName(batchId), () => this.coreApi.deleteNamespacedService({ name: serviceName(batchId), namespace }));
    this.ensured.delete(`Secret ${namespace}/${secretName(batchId)}`);
    this.ensured.delete(`Service ${namespace}/${serviceName(batchId)}`);
  }

  private deleteJob(name: string, namespace: string): Promise<void> {
    // Background propagation: the garbage collector deletes the pods, and the test kubelet (or a
    // real one) stops their processes.
    return this.deleteObject('Job', name, () => this.batchApi.deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background' }));
  }

  // ---- observing --------------------------------------------------------------------------

  private jobsOf(namespace: string, batchId: string): V1Job[] {
    return (this.jobs.get(namespace)?.list(namespace) ?? []).filter((j) => j.metadata?.labels?.[BATCH_LABEL] === batchId);
  }

  /** The item index of a Job's completion index 0 (Jobs carry the same labels as their pods). */
  private offsetOf(job: V1Job): number {
    return offsetOf({ metadata: { labels: job.metadata?.labels } }) ?? 0;
  }

  /** Reads the batch's Jobs and pods from the informer caches and records them in the store. */
  private observe(batchId: string, namespace: string): void {
    const obs: JobObservation = { completed: [], failed: [], running: new Map(), attempts: [...(this.tombstones.get(batchId) ?? [])] };
    for (const job of this.jobsOf(namespace, batchId)) {
      const view = jobView(job, this.offsetOf(job));
      obs.completed = mergeIndexRanges(obs.completed, toRanges(view.completed));
      obs.failed = mergeIndexRanges(obs.failed, toRanges(view.failed));
      // FailedIndexes: the Job ran every index and some failed; those items are failed, the
      // batch is not halted (later shards still run). Any other failure ends the batch.
      if (view.finished?.type === 'Failed' && view.finished.reason !== 'FailedIndexes' && !obs.jobFailed) {
        obs.jobFailed = { reason: view.finished.reason, message: view.finished.message };
      }
    }
    const pods = (this.pods.get(namespace)?.list(namespace) ?? []).filter((p) => p.metadata?.labels?.[BATCH_LABEL] === batchId);
    for (const pod of pods) {
      const offset = offsetOf(pod);
      if (offset === null) continue;
      if (isPodActive(pod)) {
        const completion = completionIndexOf(pod);
        if (completion !== null && !pod.metadata?.deletionTimestamp) obs.running.set(offset + completion, runningAttempt(pod));
        continue;
      }
      const attempt = podAttempt(pod, offset);
      if (attempt) obs.attempts.push(attempt);
    }
    this.sync.apply(batchId, obs);
    this.tombstones.delete(batchId);
    setRuntimeCondition(this.o.store, batchId, PODS_NOT_CREATED, this.podCreationFailure(namespace, batchId, pods), {
      reason: 'PodsCreated',
      message: 'the job controller creates pods again',
    });
  }

  /**
   * Why the job controller cannot create a pod of an unfinished Job that has none running: its
   * latest FailedCreate event (the API server's message), or null when nothing is wrong.
   */
  private podCreationFailure(namespace: string, batchId: string, pods: V1Pod[]): { reason: string; message: string } | null {
    const events = this.failedCreates.get(namespace)?.list(namespace) ?? [];
    if (events.length === 0) return null;
    for (const job of this.jobsOf(namespace, batchId)) {
      const name = job.metadata?.name;
      if (jobView(job, 0).finished || job.spec?.suspend) continue;
      if (pods.some((p) => p.metadata?.labels?.['batch.kubernetes.io/job-name'] === name && isPodActive(p))) continue;
      const created = job.metadata?.creationTimestamp ? new Date(job.metadata.creationTimestamp).getTime() : 0;
      const latest = events
        .filter((e) => e.involvedObject?.kind === 'Job' && e.involvedObject.name === name && e.involvedObject.uid === job.metadata?.uid)
        .sort((a, b) => eventTime(b) - eventTime(a))[0];
      if (latest && eventTime(latest) >= created) return { reason: 'FailedCreate', message: `Job ${name}: ${latest.message ?? 'the job controller could not create a pod'}` };
    }
    return null;
  }

  // ---- calling the API server -------------------------------------------------------------

  private async create(kind: string, name: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await this.call(`create ${kind} ${name}`, fn);
      this.limiter.succeeded();
    } catch (err) {
      if (err instanceof ApiException && err.code === 409) return; // already there: created before a restart
      // The namespace went away after the batch was accepted.
      if (err instanceof ApiException && err.code === 404) throw new PermanentError(`create ${kind} ${name}: ${serverMessage(err)}`);
      throw err;
    }
  }

  private async deleteObject(kind: string, name: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await this.call(`delete ${kind} ${name}`, fn);
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return;
      throw err;
    }
  }

  /** Runs one API call; sorts its failure into retry-later and give-up, with the server's message. */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ApiException) {
        if (err.code === 429) this.limiter.throttle(err.headers?.['retry-after']);
        if (err.code === 404 || err.code === 409) throw err;
        const message = `${what}: ${serverMessage(err)}`;
        if (err.code >= 400 && err.code < 500 && err.code !== 429 && err.code !== 408) throw new PermanentError(message);
        throw new Error(message);
      }
      throw new Error(`${what}: ${(err as Error).message}`);
    }
  }

  /** Ends an active batch as Failed (its open items cancelled); the next reconcile cleans up. */
  private failBatch(batchId: string, reason: string, message: string): void {
    const store = this.o.store;
    const now = Date.now();
    store.sqlite.transaction(() => {
      const row = getBatchById(store, batchId);
      if (!row || row.state !== 'active') return;
      haltBatch(store, row, { phase: 'Failed', reason, message, at: new Date(now).toISOString() }, now);
      refreshStatus(store, batchId, now);
    })();
    this.o.notify(batchId);
  }

  /** A refusal ends the batch with the server's message; anything else is retried and shown meanwhile. */
  private onApiError(batchId: string, err: unknown): never | void {
    const store = this.o.store;
    if (err instanceof PermanentError) {
      this.o.logger.warn({ batchId, err: err.message }, 'kubernetes refused a batch object; failing the batch');
      this.failBatch(batchId, 'KubernetesError', err.message);
      return;
    }
    setRuntimeCondition(store, batchId, UNAVAILABLE, { reason: 'APIServerError', message: describe(err) });
    throw err;
  }
}

function eventTime(e: CoreV1Event): number {
  const t = e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp;
  return t ? new Date(t as unknown as string).getTime() : 0;
}

/** The attempt a live pod is: one more than the failures of its index before it. */
function runningAttempt(pod: V1Pod): number {
  const count = (key: string) => Number(pod.metadata?.annotations?.[key] ?? 0) || 0;
  return 1 + count(FAILURE_COUNT_ANNOTATION) + count(IGNORED_FAILURE_COUNT_ANNOTATION);
}

function toRanges(indexes: number[]): IndexRange[] {
  const out: IndexRange[] = [];
  for (const i of [...indexes].sort((a, b) => a - b)) {
    const last = out[out.length - 1];
    if (last && last.last + 1 === i) last.last = i;
    else if (!last || last.last < i) out.push({ first: i, last: i });
  }
  return out;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
