import type { StoreHandle } from './db.js';

/**
 * Releasing items to workers. A release moves pending items to `running` with a new attempt
 * number and records the lease range they travel in, all in one transaction; only after it
 * commits does the dispatcher add the lease to Redis. A crash in between leaves a lease the
 * resync finds missing from Redis and releases again, so nothing is lost.
 * Leases and attempts: docs/architecture.md#leases-and-attempts.
 */

export interface ReleasedItem {
  index: number;
  attempt: number;
  input: string;
}

export interface ReleasedLease {
  leaseId: string;
  items: ReleasedItem[];
}

export interface LeaseRow {
  id: string;
  batchId: string;
  task: string;
  outstanding: string;
  createdAt: number;
  missingSince: number | null;
}

type PendingRow = { idx: number; attempt: number; input: string };

/** Lease ids are deterministic from what they carry, so adding one twice to BullMQ is a no-op. */
export function leaseIdFor(batchId: string, first: { index: number; attempt: number }): string {
  return `${batchId}.${first.index}.${first.attempt}`;
}

export class LeaseStore {
  private readonly retryReady;
  private readonly fresh;
  private readonly markRunning;
  private readonly markRangeRunning;
  private readonly insertLease;
  private readonly moveCounters;

  constructor(private readonly store: StoreHandle) {
    const s = store.sqlite;
    // Items that ran before (retries, returned items) wait in the partial index items_retry;
    // items never released sit at or after the batch's release cursor, in index order.
    this.retryReady = s.prepare(
      `SELECT idx, attempt, input FROM items INDEXED BY items_retry
        WHERE batch_id = ? AND status = 'pending' AND attempt > 0 AND not_before <= ? ORDER BY not_before, idx LIMIT ?`,
    );
    this.fresh = s.prepare(`SELECT idx, attempt, input FROM items WHERE batch_id = ? AND idx >= ? AND status = 'pending' ORDER BY idx LIMIT ?`);
    this.markRunning = s.prepare(`UPDATE items SET status = 'running', attempt = ?, lease_id = ?, started_at = ? WHERE batch_id = ? AND idx = ?`);
    this.markRangeRunning = s.prepare(`UPDATE items SET status = 'running', attempt = ?, lease_id = ?, started_at = ? WHERE batch_id = ? AND idx BETWEEN ? AND ?`);
    this.insertLease = s.prepare('INSERT INTO leases (id, batch_id, task, outstanding, created_at) VALUES (?, ?, ?, ?, ?)');
    this.moveCounters = s.prepare('UPDATE batches SET pending = pending - ?, running = running + ?, release_cursor = max(release_cursor, ?) WHERE id = ?');
  }

  /**
   * Releases up to `max` ready items of a batch in leases of at most `leaseSize` items.
   * Call only for an active batch that is neither halted nor suspended.
   */
  release(batchId: string, task: string, releaseCursor: number, max: number, leaseSize: number, now: number): ReleasedLease[] {
    return this.store.sqlite.transaction(() => {
      const rows = this.retryReady.all(batchId, now, max) as PendingRow[];
      let cursor = releaseCursor;
      if (rows.length < max) {
        const fresh = this.fresh.all(batchId, releaseCursor, max - rows.length) as PendingRow[];
        if (fresh.length > 0) cursor = fresh[fresh.length - 1].idx + 1;
        // not push(...fresh): spreading more than ~120,000 rows overflows the call stack
        for (const row of fresh) rows.push(row);
      }
      const out: ReleasedLease[] = [];
      for (let k = 0; k < rows.length; k += leaseSize) {
        const chunk = rows.slice(k, k + leaseSize).map((r) => ({ index: r.idx, attempt: r.attempt + 1, input: r.input }));
        const leaseId = leaseIdFor(batchId, chunk[0]);
        const first = chunk[0];
        const last = chunk[chunk.length - 1];
        // Consecutive indexes with one attempt number (fresh items: the usual case): one range
        // UPDATE. The rows between first and last are exactly the ones just read (idx is the key).
        if (last.index - first.index === chunk.length - 1 && chunk.every((c, j) => c.index === first.index + j && c.attempt === first.attempt)) {
          this.markRangeRunning.run(first.attempt, leaseId, now, batchId, first.index, last.index);
        } else {
          for (const item of chunk) this.markRunning.run(item.attempt, leaseId, now, batchId, item.index);
        }
        this.insertLease.run(leaseId, batchId, task, JSON.stringify(chunk.map((c) => [c.index, c.attempt])), now);
        out.push({ leaseId, items: chunk });
      }
      if (rows.length > 0) this.moveCounters.run(rows.length, rows.length, cursor, batchId);
      return out;
    })();
  }

  /** Earliest time a waiting retry becomes ready, or null. */
  nextRetryAt(batchId: string): number | null {
    const row = this.store.sqlite
      .prepare(`SELECT min(not_before) AS t FROM items INDEXED BY items_retry WHERE batch_id = ? AND status = 'pending' AND attempt > 0`)
      .get(batchId) as { t: number | null };
    return row.t;
  }

  /** Leases of the given batches (the resync's view of what should be in Redis). */
  leasesOf(batchId: string): LeaseRow[] {
    return this.store.sqlite
      .prepare('SELECT id, batch_id AS batchId, task, outstanding, created_at AS createdAt, missing_since AS missingSince FROM leases WHERE batch_id = ?')
      .all(batchId) as LeaseRow[];
  }

  markMissing(leaseId: string, since: number | null): void {
    this.store.sqlite.prepare('UPDATE leases SET missing_since = ? WHERE id = ?').run(since, leaseId);
  }

  /** Removes reported [index, attempt] pairs from a lease; deletes it once nothing is outstanding. */
  settle(leaseId: string, reported: Set<string>): void {
    const row = this.store.sqlite.prepare('SELECT outstanding FROM leases WHERE id = ?').get(leaseId) as { outstanding: string } | undefined;
    if (!row) return;
    const left = (JSON.parse(row.outstanding) as [number, number][]).filter(([i, a]) => !reported.has(`${i}.${a}`));
    if (left.length === 0) this.store.sqlite.prepare('DELETE FROM leases WHERE id = ?').run(leaseId);
    else this.store.sqlite.prepare('UPDATE leases SET outstanding = ? WHERE id = ?').run(JSON.stringify(left), leaseId);
  }
}
