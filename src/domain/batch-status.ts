/**
 * The batch phase state machine. As in the Kubernetes job controller, status is never bumped
 * by event handlers: it is derived from stored facts (decisions and item counts) on every
 * reconcile and written only when `statusChanged` says so, which keeps reconciles idempotent
 * and stops duplicate webhooks.
 * The state machine and where each transition is made: docs/architecture.md#batch-state-machine.
 */

export const PHASES = ['Pending', 'Running', 'Suspended', 'Succeeded', 'Failed', 'Cancelled'] as const;
export type Phase = (typeof PHASES)[number];

/** Whether a phase is terminal; only `retry` can reopen a Failed or Succeeded batch. */
export function isFinalPhase(p: Phase): boolean {
  return p === 'Succeeded' || p === 'Failed' || p === 'Cancelled';
}

export interface ItemCounts {
  total: number;
  pending: number;
  running: number;
  succeeded: number;
  failed: number;
  cancelled: number;
}

export interface Condition {
  type: string;
  status: 'True' | 'False';
  reason: string;
  message: string;
  lastTransitionTime: string;
}

/** Facts stored by the dispatcher or the API that items alone cannot show. */
export interface BatchDecisions {
  halt: null | { phase: 'Failed' | 'Cancelled'; reason: string; message: string; at: string };
  suspended: boolean;
  /**
   * Set by the dispatcher while a quota of the batch's tenant (runningItems) keeps items of it
   * from being released; cleared once they are. Absent on rows written before quotas existed.
   */
  quotaHold?: { quota: string; message: string } | null;
}

export interface DerivedStatus {
  phase: Phase;
  conditions: Condition[];
  startTime: string | null;
  completionTime: string | null;
}

export interface DeriveInput {
  decisions: BatchDecisions;
  counts: ItemCounts;
  previous: DerivedStatus;
  now: string;
}

type Wanted = Omit<Condition, 'lastTransitionTime'>;

// Condition types this module owns; others in `previous` (if any) are carried over untouched.
const MANAGED = ['Suspended', 'Complete', 'Failed', 'Cancelled', 'QuotaExceeded'];

function checkCounts(c: ItemCounts): void {
  const parts = [c.total, c.pending, c.running, c.succeeded, c.failed, c.cancelled];
  if (parts.some((n) => !Number.isSafeInteger(n) || n < 0)) {
    throw new RangeError(`item counts must be non-negative integers: ${JSON.stringify(c)}`);
  }
  // Counts come from one query; if they do not add up, deriving a phase from them would lie.
  if (c.pending + c.running + c.succeeded + c.failed + c.cancelled !== c.total) {
    throw new RangeError(`item counts do not add up to total: ${JSON.stringify(c)}`);
  }
}

function desired(decisions: BatchDecisions, counts: ItemCounts, startTime: string | null): { phase: Phase; wanted: Wanted[] } {
  const { halt } = decisions;
  if (halt !== null) {
    const type = halt.phase === 'Failed' ? 'Failed' : 'Cancelled';
    return { phase: halt.phase, wanted: [{ type, status: 'True', reason: halt.reason, message: halt.message }] };
  }
  if (decisions.suspended) {
    return {
      phase: 'Suspended',
      wanted: [{ type: 'Suspended', status: 'True', reason: 'BatchSuspended', message: 'batch is suspended' }],
    };
  }
  if (counts.pending + counts.running === 0) {
    if (counts.failed > 0) {
      const message = `${counts.failed} of ${counts.total} items failed`;
      return { phase: 'Failed', wanted: [{ type: 'Failed', status: 'True', reason: 'ItemsFailed', message }] };
    }
    const message = `${counts.succeeded} of ${counts.total} items succeeded`;
    return { phase: 'Succeeded', wanted: [{ type: 'Complete', status: 'True', reason: 'Completed', message }] };
  }
  const started = startTime !== null || counts.running + counts.succeeded + counts.failed + counts.cancelled > 0;
  // Admitted but waiting for its tenant's quota, as a Kueue workload waits with QuotaReserved False.
  const wanted: Wanted[] = decisions.quotaHold && counts.pending > 0 ? [{ type: 'QuotaExceeded', status: 'True', reason: 'QuotaExceeded', message: decisions.quotaHold.message }] : [];
  return { phase: started ? 'Running' : 'Pending', wanted };
}

/** The False form of a managed condition that no longer holds, with why it stopped holding. */
function retired(c: Condition, phase: Phase): Wanted {
  if (c.type === 'Suspended') {
    return isFinalPhase(phase)
      ? { type: c.type, status: 'False', reason: 'BatchFinished', message: `batch finished as ${phase} while suspended` }
      : { type: c.type, status: 'False', reason: 'BatchResumed', message: 'batch resumed' };
  }
  if (c.type === 'QuotaExceeded') return { type: c.type, status: 'False', reason: 'QuotaAvailable', message: 'no item of the batch waits for a quota' };
  return { type: c.type, status: 'False', reason: 'BatchRetried', message: `batch reopened by retry, now ${phase}` };
}

/**
 * Derives a batch's phase, conditions and times from stored decisions and item counts. A halt
 * (FailBatch rule, deadline, maxFailedItems, cancel) wins, then suspension, then the items: all
 * final means Failed if any failed, else Succeeded; otherwise Running once anything started,
 * else Pending. Conditions keep their lastTransitionTime while type and status are unchanged,
 * and conditions that stop holding turn False rather than vanish, as Job conditions do.
 */
export function deriveStatus(input: DeriveInput): DerivedStatus {
  const { decisions, counts, previous, now } = input;
  checkCounts(counts);
  const { phase, wanted } = desired(decisions, counts, previous.startTime);

  const conditions: Condition[] = [];
  const byType = new Map(wanted.map((w) => [w.type, w]));
  for (const old of previous.conditions) {
    const w = byType.get(old.type) ?? (MANAGED.includes(old.type) && old.status === 'True' ? retired(old, phase) : undefined);
    byType.delete(old.type);
    if (w === undefined) {
      conditions.push({ ...old });
    } else {
      const time = w.status === old.status ? old.lastTransitionTime : now;
      conditions.push({ ...w, lastTransitionTime: time });
    }
  }
  for (const w of byType.values()) conditions.push({ ...w, lastTransitionTime: now });

  const final = isFinalPhase(phase);
  // Items that finished between two reconciles still ran, so a batch can start and end at once.
  const ran = phase === 'Running' || (final && counts.running + counts.succeeded + counts.failed > 0);
  const startTime = previous.startTime ?? (ran ? now : null);
  // Re-deriving a finished batch must not move its completionTime; reopening clears it.
  const completionTime = final ? (previous.phase === phase ? previous.completionTime ?? now : now) : null;
  return { phase, conditions, startTime, completionTime };
}

/** Whether two statuses differ in anything worth writing (and announcing); order of conditions counts. */
export function statusChanged(a: DerivedStatus, b: DerivedStatus): boolean {
  if (a.phase !== b.phase || a.startTime !== b.startTime || a.completionTime !== b.completionTime) return true;
  if (a.conditions.length !== b.conditions.length) return true;
  return a.conditions.some((c, i) => {
    const d = b.conditions[i];
    return (
      c.type !== d.type ||
      c.status !== d.status ||
      c.reason !== d.reason ||
      c.message !== d.message ||
      c.lastTransitionTime !== d.lastTransitionTime
    );
  });
}

/** A user action that the batch's phase does not allow (maps to 409 Conflict). */
export class TransitionError extends Error {
  constructor(
    public action: string,
    public phase: Phase,
    message: string,
  ) {
    super(message);
    this.name = 'TransitionError';
  }
}

const ALLOWED: Record<'cancel' | 'suspend' | 'resume', readonly Phase[]> = {
  cancel: ['Pending', 'Running', 'Suspended'],
  suspend: ['Pending', 'Running'],
  resume: ['Suspended'],
};

/**
 * Throws a TransitionError unless `action` is allowed in `phase`: cancel before the batch is
 * final, suspend while Pending or Running, resume only while Suspended, and retry only on a
 * Failed or Succeeded batch that has failed items (never on a Cancelled one).
 */
export function checkTransition(action: 'cancel' | 'suspend' | 'resume' | 'retry', phase: Phase, failedCount: number): void {
  const refuse = (why?: string): never => {
    throw new TransitionError(action, phase, `cannot ${action} a batch that is ${phase}${why === undefined ? '' : `: ${why}`}`);
  };
  if (action !== 'retry') {
    if (ALLOWED[action].includes(phase)) return;
    if (action === 'resume') refuse('it is not suspended');
    if (isFinalPhase(phase)) refuse('it has already finished');
    refuse();
  }
  if (phase === 'Cancelled') refuse('a cancelled batch cannot be re-run');
  if (phase !== 'Failed' && phase !== 'Succeeded') refuse('only finished batches can be retried');
  if (failedCount <= 0) refuse('it has no failed items');
}
