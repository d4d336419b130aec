/**
 * The shapes the Fanout API answers with (DESIGN.md "Public contract"), as the CLI reads them.
 * Only what the client commands use is typed; anything else passes through untouched.
 */

export type BatchPhase = 'Pending' | 'Running' | 'Suspended' | 'Succeeded' | 'Failed' | 'Cancelled';

export const FINAL_PHASES: ReadonlySet<string> = new Set(['Succeeded', 'Failed', 'Cancelled']);

export interface BatchCounts {
  total: number;
  pending: number;
  running: number;
  succeeded: number;
  failed: number;
  cancelled: number;
}

export interface BatchCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

export interface BatchStatus {
  phase: BatchPhase;
  counts: BatchCounts;
  completedIndexes?: string;
  failedIndexes?: string;
  conditions?: BatchCondition[];
  startTime?: string | null;
  completionTime?: string | null;
}

export interface Batch {
  id: string;
  name?: string | null;
  labels?: Record<string, string>;
  createdAt: string;
  spec: { runtime?: string; task?: string; parallelism?: number; [field: string]: unknown };
  status: BatchStatus;
}

export interface BatchList {
  items: Batch[];
  nextCursor: string | null;
}

export interface ListQuery {
  labelSelector?: string;
  phase?: string;
  limit?: number;
}
