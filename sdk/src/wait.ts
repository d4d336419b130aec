import { parseEventStream } from './sse.js';
import type { Batch, BatchPhase, ItemCounts } from './types.js';

/** What `waitForBatch` reports while it waits: from an SSE `progress` event or a poll. */
export interface BatchProgress {
  phase: BatchPhase;
  counts: ItemCounts;
}

export interface WaitOptions {
  onProgress?: (progress: BatchProgress) => void;
  signal?: AbortSignal;
  /** polling interval when the event stream is unavailable; default 1000 ms */
  pollMs?: number;
}

/** The two calls waiting needs, from the client. */
export interface WaitCalls {
  getBatch(id: string, signal?: AbortSignal): Promise<Batch>;
  openEvents(id: string, o: { signal?: AbortSignal }): Promise<ReadableStream<Uint8Array>>;
}

const FINAL_PHASES: ReadonlySet<string> = new Set(['Succeeded', 'Failed', 'Cancelled']);

/** True for the phases a batch does not leave on its own. */
export function isFinalPhase(phase: string): boolean {
  return FINAL_PHASES.has(phase);
}

/**
 * Resolves with the batch once it is Succeeded, Failed or Cancelled. Follows the batch's event
 * stream when the server offers one; otherwise (or when it breaks) polls GET /v1/batches/{id}.
 */
export async function waitForBatch(calls: WaitCalls, id: string, o: WaitOptions = {}): Promise<Batch> {
  return (await waitWithEvents(calls, id, o)) ?? (await waitWithPolling(calls, id, o));
}

/** Follows `GET /v1/batches/{id}/events` to `done`; undefined when the stream is not there or breaks. */
async function waitWithEvents(calls: WaitCalls, id: string, o: WaitOptions): Promise<Batch | undefined> {
  try {
    const body = await calls.openEvents(id, { signal: o.signal });
    for await (const ev of parseEventStream(body)) {
      if (ev.event !== 'progress' && ev.event !== 'done') continue;
      let data: Partial<BatchProgress> = {};
      try {
        data = JSON.parse(ev.data) as Partial<BatchProgress>;
      } catch {
        // a malformed event: the next one or the final getBatch says more
      }
      if (data.phase && data.counts) o.onProgress?.({ phase: data.phase, counts: data.counts });
      if (ev.event === 'done') return await calls.getBatch(id, o.signal);
    }
  } catch (err) {
    if (o.signal?.aborted) throw err;
  }
  return undefined;
}

async function waitWithPolling(calls: WaitCalls, id: string, o: WaitOptions): Promise<Batch> {
  const pollMs = o.pollMs ?? 1000;
  let last = '';
  for (;;) {
    o.signal?.throwIfAborted();
    const batch = await calls.getBatch(id, o.signal);
    const seen = JSON.stringify([batch.status.phase, batch.status.counts]);
    if (seen !== last) {
      last = seen;
      o.onProgress?.({ phase: batch.status.phase, counts: batch.status.counts });
    }
    if (isFinalPhase(batch.status.phase)) return batch;
    await sleep(pollMs, o.signal);
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener('abort', aborted);
      resolve();
    }
    function aborted() {
      clearTimeout(timer);
      reject(signal!.reason);
    }
    signal?.addEventListener('abort', aborted, { once: true });
  });
}
