import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Store } from '../store/store.js';
import { sweepChunk, unfinishedSweeps } from '../store/sweeps.js';

export interface SweeperOptions {
  store: Store;
  logger: Logger;
  /** most items per chunk (FANOUT_SWEEP_CHUNK_ITEMS) */
  chunkItems: number;
  /** rest between two chunks (FANOUT_SWEEP_PAUSE_MS); 0: just let the event loop turn */
  pauseMs: number;
  /** how often to look for sweeps recorded by another process (an API elsewhere) */
  pollMs?: number;
  /** after a retry's chunk (items to release) and a sweep's last one: the dispatcher looks at the batch again */
  onProgress(batchId: string): void;
}

/**
 * Drives the chunked work on batches (src/store/sweeps.ts) that the requests asking for it
 * only started: one chunk of each batch with work left in turn, each a transaction of its own,
 * with the event loop free between two chunks, so /healthz and every other request keep being
 * answered while millions of items are cancelled, put back or deleted. The leading dispatcher
 * runs it; at start it resumes what a previous leader left unfinished.
 */
/** What one chunk may take: on SQLite, how long it holds the event loop. */
const CHUNK_TARGET_MS = 20;
const MIN_CHUNK_ITEMS = 50;

export class Sweeper {
  private readonly queued = new Set<string>();
  /**
   * Items in the next chunk. On SQLite (a chunk holds the event loop): halved (or less) after a
   * chunk slower than CHUNK_TARGET_MS, doubled after one under half of it, within
   * [MIN_CHUNK_ITEMS, chunkItems]; a loaded machine or a slow disk gets smaller chunks instead of
   * longer stalls. On PostgreSQL always chunkItems.
   */
  private chunkSize: number;
  private running: Promise<void> | null = null;
  private stopped = false;
  private poll: NodeJS.Timeout | null = null;

  constructor(private readonly o: SweeperOptions) {
    this.chunkSize = o.store.dialect === 'sqlite' ? Math.min(o.chunkItems, 1000) : o.chunkItems;
  }

  async start(): Promise<void> {
    await this.lookForWork();
    this.poll = setInterval(() => void this.lookForWork(), this.o.pollMs ?? 1000);
    this.poll.unref();
  }

  /** A batch may have work left (a request just recorded some). */
  kick(batchId: string): void {
    if (this.stopped) return;
    this.queued.add(batchId);
    this.running ??= this.drain().finally(() => (this.running = null));
  }

  /** Stops after the chunk under way (the rest stays recorded for the next leader). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.poll) clearInterval(this.poll);
    await this.running;
  }

  private async lookForWork(): Promise<void> {
    if (this.stopped) return;
    try {
      for (const id of await this.o.store.read(unfinishedSweeps())) this.kick(id);
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, 'could not look for unfinished batch sweeps; looking again soon');
    }
  }

  private adjustChunkSize(ms: number): void {
    // PostgreSQL runs a chunk without holding the event loop: there its time is no stall, and
    // smaller chunks would only mean more commits.
    if (this.o.store.dialect !== 'sqlite') return;
    const max = this.o.chunkItems;
    const min = Math.min(MIN_CHUNK_ITEMS, max);
    if (ms > CHUNK_TARGET_MS) this.chunkSize = Math.max(min, Math.floor(this.chunkSize * Math.max(0.1, Math.min(0.5, CHUNK_TARGET_MS / ms))));
    else if (ms < CHUNK_TARGET_MS / 2) this.chunkSize = Math.min(max, this.chunkSize * 2);
  }

  private async drain(): Promise<void> {
    while (!this.stopped && this.queued.size > 0) {
      for (const id of [...this.queued]) {
        if (this.stopped) return;
        try {
          const started = performance.now();
          const { kind, left } = await this.o.store.write(sweepChunk(id, this.chunkSize, Date.now()));
          this.adjustChunkSize(performance.now() - started);
          if (left === 'done') this.queued.delete(id);
          if (kind !== null && (kind === 'retry' || left === 'done')) this.o.onProgress(id);
        } catch (err) {
          // Dropped for now: the poll finds it again within a second. A chunk that did not
          // commit changed nothing (the database unreachable, leadership lost).
          this.queued.delete(id);
          this.o.logger.warn({ batchId: id, err: (err as Error).message }, 'a chunk of batch work failed; retrying soon');
        }
        if (this.o.pauseMs > 0) await sleep(this.o.pauseMs);
        else await nextTurn();
      }
    }
  }
}
