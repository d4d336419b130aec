import { z } from 'zod';

/**
 * Webhook rules that need no I/O: event types and filters, the target URL check, the thin
 * payloads, and the retry schedule with jitter (docs/api.md#webhooks; where they run:
 * docs/architecture.md#webhooks).
 */

export const BATCH_EVENT_TYPES = ['batch.succeeded', 'batch.failed', 'batch.cancelled'] as const;
export const EVENT_TYPES = [...BATCH_EVENT_TYPES, 'item.failed'] as const;
export type EventType = (typeof EVENT_TYPES)[number];
/** What a filter may name: an event type, or `batch.finished` for the three batch events. */
export const EVENT_FILTERS = [...EVENT_TYPES, 'batch.finished'] as const;
export type EventFilter = (typeof EVENT_FILTERS)[number];

/** The events a target gets when it names none: every final batch transition, no item events. */
export const DEFAULT_EVENTS: EventFilter[] = [...BATCH_EVENT_TYPES];

export const webhookUrlSchema = z
  .string()
  .max(2048)
  .refine((u) => {
    try {
      const url = new URL(u);
      return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '' && url.username === '' && url.password === '';
    } catch {
      return false;
    }
  }, 'a webhook URL is an absolute http:// or https:// URL without credentials')
  .meta({ example: 'https://example.com/hooks/fanout' });

export const eventFilterSchema = z
  .array(z.enum(EVENT_FILTERS))
  .min(1)
  .max(EVENT_FILTERS.length)
  .meta({ description: '`batch.succeeded`, `batch.failed`, `batch.cancelled`, `batch.finished` (all three) and the opt-in `item.failed`.' });

/** A batch's own webhook (`webhook` in the batch spec). */
export const batchWebhookSchema = z
  .object({ url: webhookUrlSchema, events: eventFilterSchema.optional() })
  .strict()
  .meta({ id: 'BatchWebhook', description: 'Called when the batch ends (and for failed items when `events` has `item.failed`), signed with the tenant\'s batch-webhook secret (GET /v1/batch-webhook-secret).' });
export type BatchWebhook = z.infer<typeof batchWebhookSchema>;

/** Whether a target with `filter` (none: the default) wants events of `type`. */
export function wantsEvent(filter: readonly string[] | undefined, type: EventType): boolean {
  const f = filter ?? DEFAULT_EVENTS;
  return f.includes(type) || (type.startsWith('batch.') && f.includes('batch.finished'));
}

/** The batch event of a final phase. */
export function batchEventOf(phase: string): EventType | null {
  if (phase === 'Succeeded') return 'batch.succeeded';
  if (phase === 'Failed') return 'batch.failed';
  if (phase === 'Cancelled') return 'batch.cancelled';
  return null;
}

export interface BatchEventData {
  batchId: string;
  phase: string;
  counts: { total: number; pending: number; running: number; succeeded: number; failed: number; cancelled: number };
  completedIndexes: string;
  failedIndexes: string;
  startTime: string | null;
  completionTime: string | null;
  links: { batch: string; results: string };
}

export interface ItemFailedData {
  batchId: string;
  index: number;
  customId: string | null;
  reason: string | null;
  error: string | null;
  links: { batch: string; item: string };
}

/** Longest error text an item.failed event carries (its tail: where the message usually is). */
export const EVENT_ERROR_EXCERPT = 1024;

export function batchLinks(batchId: string) {
  return { batch: `/v1/batches/${batchId}`, results: `/v1/batches/${batchId}/results` };
}

export function itemFailedData(batchId: string, index: number, customId: string | null, reason: string | null, error: string | null): ItemFailedData {
  return {
    batchId,
    index,
    customId,
    reason,
    error: error === null ? null : error.slice(-EVENT_ERROR_EXCERPT),
    links: { batch: `/v1/batches/${batchId}`, item: `/v1/batches/${batchId}/items/${index}` },
  };
}

/** The body sent: `{type, timestamp, data}`, serialised once and stored (the bytes signed). */
export function eventBody(type: EventType, timestamp: string, data: BatchEventData | ItemFailedData): string {
  return JSON.stringify({ type, timestamp, data });
}

/** About three days in all, like Svix's: 5s, 5m, 30m, 2h, 5h, 10h, 14h, 20h, 24h. */
export const DEFAULT_RETRY_SCHEDULE = '5s,5m,30m,2h,5h,10h,14h,20h,24h';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `5s,5m,30m,2h`: the waits before the 2nd, 3rd, … attempt. Throws on a bad entry. */
export function parseRetrySchedule(text: string): number[] {
  const out = text.split(',').map((part) => {
    const m = /^\s*(\d+(?:\.\d+)?)(ms|s|m|h|d)\s*$/.exec(part);
    if (!m) throw new Error(`${JSON.stringify(part.trim())} is not a duration like 500ms, 5s, 5m, 2h or 1d`);
    return Math.round(Number(m[1]) * UNIT_MS[m[2]]);
  });
  if (out.length === 0) throw new Error('the retry schedule needs at least one duration');
  return out;
}

/**
 * When to try again after failed attempt number `failedSoFar` (1-based) of the current run,
 * or null when the schedule is used up. `random` in [0, 1) spreads retries ±20% so receivers
 * coming back up are not hit by every delivery at once.
 */
export function nextRetryDelay(schedule: number[], failedSoFar: number, random: number): number | null {
  const base = schedule[failedSoFar - 1];
  if (base === undefined) return null;
  return Math.max(0, Math.round(base * (0.8 + 0.4 * random)));
}
