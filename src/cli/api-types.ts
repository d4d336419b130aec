/**
 * The shapes the Fanout API answers with (docs/api.md, openapi.yaml), as the CLI reads them.
 * Only what the client commands use is typed; anything else passes through untouched. The
 * phase, counts and condition shapes are the domain's own.
 */

import { isFinalPhase, PHASES, type Condition, type ItemCounts, type Phase } from '../domain/batch-status.js';

export type BatchPhase = Phase;

export const FINAL_PHASES: ReadonlySet<string> = new Set(PHASES.filter(isFinalPhase));

export type BatchCounts = ItemCounts;

export type BatchCondition = Condition;

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

/** A schedule (GET /v1/schedules/{id}), as `fanout get schedules` reads it. */
export interface Schedule {
  id: string;
  name?: string | null;
  labels?: Record<string, string>;
  createdAt: string;
  spec: { schedule: string; timeZone: string; concurrencyPolicy: string; suspend: boolean; [field: string]: unknown };
  status: { lastScheduleTime: string | null; active: string[]; nextRunTime: string | null; [field: string]: unknown };
}

export interface ListQuery {
  labelSelector?: string;
  phase?: string;
  limit?: number;
}

/** One attempt of an item (GET /v1/batches/{id}/items/{index}); `error` is the stderr tail. */
export interface ItemAttempt {
  attempt: number;
  outcome: string;
  exitCode: number | null;
  httpStatus: number | null;
  condition: string | null;
  error: string | null;
  decision?: string | null;
  worker?: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

/** One item of a batch (GET /v1/batches/{id}/items[/{index}]), as `fanout get items` and `fanout logs` read it. */
export interface Item {
  index: number;
  customId?: string | null;
  status: string;
  error: string | null;
  reason?: string | null;
  startedAt?: string | null;
  finishedAt?: string | null;
  attempts: ItemAttempt[];
  [field: string]: unknown;
}

/** A tenant's webhook endpoint (GET /v1/webhook-endpoints[/{id}]); its secret is never listed. */
export interface WebhookEndpoint {
  id: string;
  url: string;
  description: string | null;
  events: string[];
  enabled: boolean;
  disabledReason: string | null;
  createdAt: string;
  updatedAt: string;
}

/** One webhook delivery with its attempts (GET …/webhook-deliveries). */
export interface WebhookDelivery {
  id: string;
  webhookId: string;
  eventId: string;
  type: string;
  batchId: string;
  endpointId: string | null;
  url: string;
  status: string;
  nextAttemptAt: string | null;
  lastError: string | null;
  createdAt: string;
  attempts: Array<{ attempt: number; at: string; statusCode: number | null; latencyMs: number; response: string | null; error: string | null }>;
}
