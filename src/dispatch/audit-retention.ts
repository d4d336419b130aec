import type { Logger } from 'pino';
import { pruneAuditEvents } from '../store/audit-events.js';
import type { Store } from '../store/store.js';

const PRUNE_EVERY_MS = 3600 * 1000;

/**
 * The leader's periodic pruning of the audit log: events older than the retention
 * (FANOUT_AUDIT_RETENTION_DAYS) are deleted once when it starts leading and then hourly. One
 * DELETE on the indexed `at` column; a failure is logged and tried again at the next round.
 * Returns the function that stops it.
 */
export function startAuditPruning(o: { store: Store; retentionMs: number; logger: Logger; everyMs?: number }): () => void {
  const prune = async () => {
    try {
      const deleted = await o.store.write(pruneAuditEvents(Date.now() - o.retentionMs));
      if (deleted > 0) o.logger.info({ deleted }, 'audit events past their retention pruned');
    } catch (err) {
      o.logger.warn({ err: (err as Error).message }, 'could not prune the audit log; will try again');
    }
  };
  void prune();
  const timer = setInterval(() => void prune(), o.everyMs ?? PRUNE_EVERY_MS);
  timer.unref();
  return () => clearInterval(timer);
}
