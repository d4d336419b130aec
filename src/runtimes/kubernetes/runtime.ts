import type { V1Job } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { BatchHeader } from '../../domain/batch-spec.js';
import type { BatchDecisions } from '../../domain/batch-status.js';
import type { KubernetesConfig } from '../../config/config.js';
import { settledBefore, type StopContext } from '../../lifecycle/stop-context.js';
import type { Store } from '../../store/store.js';
import { getBatchById, type BatchRow } from '../../store/batch-queries.js';
import { failBatch, parseDecisions, parseHeader } from '../../store/batch-state.js';
import {
  advanceReleaseCursor,
  applyKubernetesObservation,
  itemInput,
  openItemsBefore,
  openItemsInRange,
  setRuntimeCondition,
} from '../../store/kubernetes-sync.js';
import { loadKubeConfig, runtimeSettings } from './client.js';
import { ClusterCache } from './cluster-cache.js';
import { ClusterCalls, PermanentError } from './cluster-calls.js';
import {
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
import { jobView, observeBatch, podCreationFailure } from './observe.js';
import type { Runtime } from '../runtime.js';

/**
 * The Kubernetes side of the dispatcher: turns a batch into Jobs (one Indexed Job per shard, one
 * Job per item, or a Job of queue workers) and mirrors what the job controller reports about
 * them into the store. Level-triggered like the rest of the dispatcher: `reconcile` reads the
 * batch and the watched cluster state ({@link ClusterCache}) and converges one on the other,
 * whatever woke it.
 * See docs/architecture.md#kubernetes-runtimes.
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
  store: Store;
  logger: Logger;
  /** the Redis URL worker pods get when the configuration names none, and the key prefix */
  redisUrl: string;
  redisPrefix: string;
  tokenFor(batchId: string): string;
  /** wakes the dispatcher for a batch */
  notify(batchId: string): void;
}

export class KubernetesRuntime implements Runtime {
  readonly kind = 'kubernetes';
  private readonly cluster: ClusterCache;
  private readonly calls: ClusterCalls;
  /** batches whose objects were cleaned up after they finished (no repeated deletes) */
  private readonly finalized = new Set<string>();
  /** per batch, item Jobs created by this process and not yet in the watch cache, with when */
  private readonly unseen = new Map<string, Map<string, number>>();
  /** Secrets and Services already created, by `${kind} ${namespace}/${name}` */
  private readonly ensured = new Set<string>();

  constructor(private readonly o: KubernetesRuntimeOptions) {
    const kc = loadKubeConfig(o.config);
    this.cluster = new ClusterCache(kc, o.config.allowedNamespaces, o.logger, o.notify);
    this.calls = new ClusterCalls(kc, o.config.createQps);
  }

  start(): Promise<void> {
    return this.cluster.start();
  }

  async stop(ctx: StopContext): Promise<void> {
    await settledBefore(this.cluster.stop(), ctx.drain);
  }

  /** Whether a batch has objects on the cluster, or needs them. */
  handles(header: BatchHeader): boolean {
    return header.runtime !== 'queue' || header.workers?.kubernetes !== undefined;
  }

  /** Batches with Jobs on the cluster that the store no longer has: deleted by an API process that could not reach the cluster itself. */
  async resync(): Promise<Iterable<string>> {
    const gone: string[] = [];
    for (const id of this.cluster.batchesOnCluster()) if (!(await this.o.store.read(getBatchById(id)))) gone.push(id);
    return gone;
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
        await this.observe(row.id, namespace);
      }
      await this.o.store.write(setRuntimeCondition(row.id, UNAVAILABLE, null));
      // What the Jobs reported may have ended the batch: clean up now, nothing else will wake it.
      const after = await this.o.store.read(getBatchById(row.id));
      if (after?.state === 'final') await this.finish(after, header, namespace);
    } catch (err) {
      await this.onApiError(row.id, err);
    }
    return wake;
  }

  /** A batch that no longer exists (deleted): remove everything it had on the cluster. */
  async forget(batchId: string): Promise<void> {
    for (const namespace of this.o.config.allowedNamespaces) {
      if (this.cluster.jobsOf(namespace, batchId).length === 0 && !this.ensured.has(`Secret ${namespace}/${secretName(batchId)}`)) continue;
      for (const job of this.cluster.jobsOf(namespace, batchId)) await this.calls.deleteJob(namespace, job.metadata!.name!);
      await this.removeSecretAndService(batchId, namespace);
    }
    this.cluster.takeTombstones(batchId);
    this.finalized.delete(batchId);
    this.unseen.delete(batchId);
  }

  // ---- converging -------------------------------------------------------------------------

  private settings(namespace?: string): RuntimeSettings {
    const settings = runtimeSettings(this.o.config, { url: this.o.redisUrl, prefix: this.o.redisPrefix }, 'http://127.0.0.1:8080');
    return namespace === undefined ? settings : { ...settings, namespace };
  }

  private async ensureSecret(row: BatchRow, header: BatchHeader, namespace: string): Promise<void> {
    const key = `Secret ${namespace}/${secretName(row.id)}`;
    if (this.ensured.has(key)) return;
    await this.calls.createSecret(namespace, tokenSecret(row.id, this.o.tokenFor(row.id), header.labels ?? {}, this.settings(namespace)));
    this.ensured.add(key);
  }

  private async ensureService(row: BatchRow, header: BatchHeader, namespace: string): Promise<void> {
    const key = `Service ${namespace}/${serviceName(row.id)}`;
    if (this.ensured.has(key)) return;
    await this.calls.createService(namespace, headlessService({ batchId: row.id, header, settings: this.settings() }));
    this.ensured.add(key);
  }

  /**
   * One Indexed Job per shard, created one after the other: a shard starts when the ones before
   * it have finished, so the batch never runs more than `parallelism` pods at once. A shard's
   * failure budget is what earlier shards left of `maxFailedItems`.
   */
  private async ensureShards(row: BatchRow, header: BatchHeader, namespace: string, decisions: BatchDecisions): Promise<void> {
    for (const shard of shardsOf(row.total, this.o.config.shardSize)) {
      const existing = this.cluster.job(namespace, jobName(row.id, shard.shard));
      if (existing) {
        await this.setSuspended(existing, namespace, decisions.suspended);
        if (!jobView(existing, shard.offset).finished) return;
        continue;
      }
      // Done, and its Job since removed by its TTL: not again. A shard with open items and no
      // Job was never created, or its Job was lost (deleted by hand, or by its TTL while this
      // dispatcher was down): create it (again).
      if ((await this.o.store.read(openItemsInRange(row.id, shard.offset, shard.offset + shard.count - 1))) === 0) continue;
      const max = header.retry.maxFailedItems;
      const maxFailedIndexes = max === undefined ? undefined : Math.max(0, Math.min(shard.count, max - row.failed));
      await this.calls.createJob(namespace, indexedJob({ batchId: row.id, header, shard, suspend: decisions.suspended, maxFailedIndexes, settings: this.settings() }));
      return;
    }
  }

  /**
   * The expansion pattern: a Job per item, rendered from the template, created in index order
   * while fewer than `parallelism` of them are unfinished, at the configured rate. The release
   * cursor remembers how far creation got, across restarts.
   */
  private async ensureItemJobs(row: BatchRow, header: BatchHeader, namespace: string, decisions: BatchDecisions): Promise<number | null> {
    const jobs = this.cluster.jobsOf(namespace, row.id);
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
    const input = async (index: number) => JSON.parse((await this.o.store.read(itemInput(row.id, index)))!) as unknown;
    // An open item whose Job is gone though it was created (deleted by hand, or by its TTL while
    // this dispatcher was down, before its end was seen) gets its Job again.
    const lost = (await this.o.store.read(openItemsBefore(row.id, row.releaseCursor))).filter((index) => !seen.has(itemJobName(row.id, index)) && !unseen.has(itemJobName(row.id, index)));
    for (const index of lost) {
      const waitMs = this.calls.creationDelay();
      if (waitMs > 0) return Date.now() + waitMs;
      this.o.logger.warn({ batchId: row.id, index }, 'the Job of an unfinished item is gone; creating it again');
      const item = await input(index);
      await this.calls.createJob(namespace, itemJob({ batchId: row.id, header, index, item, suspend: false, settings: this.settings() }));
      unseen.set(itemJobName(row.id, index), Date.now());
      unfinished++;
    }
    for (let index = row.releaseCursor; index < row.total && unfinished < row.parallelism; index++) {
      const waitMs = this.calls.creationDelay();
      if (waitMs > 0) return Date.now() + waitMs;
      const item = await input(index);
      await this.calls.createJob(namespace, itemJob({ batchId: row.id, header, index, item, suspend: false, settings: this.settings() }));
      unseen.set(itemJobName(row.id, index), Date.now());
      unfinished++;
      await this.o.store.write(advanceReleaseCursor(row.id, index + 1));
    }
    return null;
  }

  /** The fine-parallel pattern: a Job of `fanout worker --batch ID --exit-when-empty` pods. */
  private async ensureWorkers(row: BatchRow, header: BatchHeader, namespace: string, decisions: BatchDecisions): Promise<void> {
    const name = workerJobName(row.id);
    const existing = this.cluster.job(namespace, name);
    const finished = existing && jobView(existing, 0).finished;
    if (finished?.type === 'Failed') {
      // No worker can run (an image that never starts, workers crashing): nothing else will.
      return this.failBatch(row.id, 'WorkersFailed', `worker Job ${name} failed (${finished.reason}): ${finished.message}`);
    }
    if (finished && row.pending + row.running > 0) {
      // A retry reopened the batch after its workers exited: replace the finished Job (the
      // creation below answers "exists" until the old one is gone, then goes through).
      return this.calls.deleteJob(namespace, name);
    }
    if (existing) return this.setSuspended(existing, namespace, decisions.suspended);
    await this.calls.createJob(namespace, workerJob({ batchId: row.id, header, suspend: decisions.suspended, settings: this.settings() }));
  }

  private async setSuspended(job: V1Job, namespace: string, suspend: boolean): Promise<void> {
    if ((job.spec?.suspend ?? false) === suspend || jobView(job, 0).finished) return;
    await this.calls.suspendJob(namespace, job.metadata!.name!, suspend);
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
        for (const job of this.cluster.jobsOf(namespace, row.id)) {
          if (!jobView(job, 0).finished) await this.calls.deleteJob(namespace, job.metadata!.name!);
        }
      }
      await this.removeSecretAndService(row.id, namespace);
      this.finalized.add(row.id);
      this.cluster.takeTombstones(row.id);
      this.unseen.delete(row.id);
    } catch (err) {
      this.o.logger.warn({ batchId: row.id, err: describe(err) }, 'could not clean up a finished batch on Kubernetes; retrying');
      throw err;
    }
  }

  private async removeSecretAndService(batchId: string, namespace: string): Promise<void> {
    await this.calls.deleteSecret(namespace, secretName(batchId));
    await this.calls.deleteService(namespace, serviceName(batchId));
    this.ensured.delete(`Secret ${namespace}/${secretName(batchId)}`);
    this.ensured.delete(`Service ${namespace}/${serviceName(batchId)}`);
  }

  // ---- observing --------------------------------------------------------------------------

  /** Records what the batch's Jobs and pods report (from the watch caches) in the store. */
  private async observe(batchId: string, namespace: string): Promise<void> {
    const jobs = this.cluster.jobsOf(namespace, batchId);
    const pods = this.cluster.podsOf(namespace, batchId);
    const observation = observeBatch(jobs, pods);
    observation.attempts.push(...this.cluster.takeTombstones(batchId));
    await this.o.store.write(applyKubernetesObservation(batchId, observation));
    const failure = podCreationFailure(jobs, pods, this.cluster.failedCreatesIn(namespace));
    await this.o.store.write(setRuntimeCondition(batchId, PODS_NOT_CREATED, failure, { reason: 'PodsCreated', message: 'the job controller creates pods again' }));
  }

  // ---- failures ---------------------------------------------------------------------------

  /** Ends an active batch as Failed (its open items cancelled); the next reconcile cleans up. */
  private async failBatch(batchId: string, reason: string, message: string): Promise<void> {
    await this.o.store.write(failBatch(batchId, reason, message, Date.now()));
    this.o.notify(batchId);
  }

  /** A refusal ends the batch with the server's message; anything else is shown and retried. */
  private async onApiError(batchId: string, err: unknown): Promise<void> {
    if (err instanceof PermanentError) {
      this.o.logger.warn({ batchId, err: err.message }, 'kubernetes refused a batch object; failing the batch');
      await this.failBatch(batchId, 'KubernetesError', err.message);
      return;
    }
    await this.o.store.write(setRuntimeCondition(batchId, UNAVAILABLE, { reason: 'APIServerError', message: describe(err) }));
    throw err;
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
