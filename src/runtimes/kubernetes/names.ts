/**
 * Names and labels of the Kubernetes objects a batch owns. Every name derives from the batch id
 * alone, so creating an object twice (a restart between create and record) is a 409 on our own
 * object, never a duplicate, and every object carries BATCH_LABEL so one selector finds all of
 * them. See docs/architecture.md#kubernetes-runtimes.
 */

/** On every Job, pod, Secret and Service of a batch: the batch id. */
export const BATCH_LABEL = 'fanout.dev/batch';
/** On job-per-item Jobs and pods: the item index. */
export const ITEM_LABEL = 'fanout.dev/index';
/** On Jobs and pods: `item`, `indexed` or `worker`. */
export const ROLE_LABEL = 'fanout.dev/role';
/** On indexed-job Jobs and pods: the global index of completion index 0 (the shard's offset). */
export const OFFSET_LABEL = 'fanout.dev/offset';
/** The most indexes in one Job: Kubernetes caps completions at 10^5 with backoffLimitPerIndex. */
export const SHARD_SIZE = 100_000;
/** The name of the one container that runs an item, which pod failure policy rules refer to. */
export const CONTAINER = 'main';

export type Role = 'item' | 'indexed' | 'worker';

/**
 * The Job of one shard of an indexed-job batch. Always suffixed by the shard, so a batch's
 * names do not depend on how many shards it has. A 20-character batch id gives 34 characters
 * for shard 99,999, and pod hostnames `<job>-<completion index>` stay under 63.
 */
export function jobName(batchId: string, shard: number): string {
  return `fanout-${batchId}-${shard}`;
}

/** The Job of one item of a job-per-item batch. */
export function itemJobName(batchId: string, index: number): string {
  return `fanout-${batchId}-i${index}`;
}

/** The Job of a queue batch's Kubernetes workers. */
export function workerJobName(batchId: string): string {
  return `fanout-${batchId}-workers`;
}

/** The Secret holding the batch-scoped token pods present to the API. */
export function secretName(batchId: string): string {
  return `fanout-${batchId}`;
}

/** The headless Service of an indexed-job batch with `networking.headless`: a DNS-1035 label. */
export function serviceName(batchId: string): string {
  return `fanout-${batchId}`;
}

/**
 * Splits `total` items into consecutive shards of at most `shardSize`: shard `s` runs global
 * indexes `offset .. offset + count - 1` as completion indexes `0 .. count - 1`.
 */
export function shardsOf(total: number, shardSize = SHARD_SIZE): Array<{ shard: number; offset: number; count: number }> {
  if (!Number.isSafeInteger(total) || total < 0) throw new RangeError(`total must be a non-negative integer, got ${total}`);
  if (!Number.isSafeInteger(shardSize) || shardSize < 1) throw new RangeError(`shardSize must be a positive integer, got ${shardSize}`);
  const shards: Array<{ shard: number; offset: number; count: number }> = [];
  for (let offset = 0, shard = 0; offset < total; offset += shardSize, shard++) {
    shards.push({ shard, offset, count: Math.min(shardSize, total - offset) });
  }
  return shards;
}
