import { isFinalPhase, PHASES, type Phase } from '../domain/batch-status.js';

/**
 * For a worker that serves one batch and should exit when that batch is done (`fanout worker
 * --batch ID --exit-when-empty`, a Kubernetes Job of workers per batch). Redis cannot say whether
 * more work will come (items held back by `parallelism` or waiting out a retry backoff are not in
 * any queue yet), so the batch's own status is asked from the API instead: while this worker runs
 * nothing, it polls `GET {apiUrl}/v1/batches/{id}` and calls `onDone` once the batch is final or
 * has no pending and no running item left.
 */

/** The part of a batch's status the watch reads. */
export interface BatchProgress {
  phase: string;
  counts: { pending: number; running: number };
}

/** Whether a batch needs no more work from its workers: final, or nothing pending or running. */
export function batchIsDone(status: BatchProgress): boolean {
  if ((PHASES as readonly string[]).includes(status.phase) && isFinalPhase(status.phase as Phase)) return true;
  return status.counts.pending === 0 && status.counts.running === 0;
}

/** An answer that polling again cannot change (bad token, batch of another tenant). */
export class BatchWatchError extends Error {
  override name = 'BatchWatchError';
}

export interface BatchDoneWatchOptions {
  apiUrl: string;
  batchId: string;
  /** the batch token (`fbt_…`) or an API key; never logged */
  token: string;
  /** true while this worker runs items of the batch: no poll then */
  isBusy: () => boolean;
  /** called once: the batch is done, `why` says how it was seen */
  onDone: (why: string) => void;
  /** called once when polling cannot succeed (401, 403): the worker should stop and fail */
  onFatal: (error: BatchWatchError) => void;
  /** a poll failed (network, 5xx); the next one follows as usual */
  onError?: (error: unknown) => void;
  intervalMs?: number;
  /** per-request timeout; default 10 s */
  timeoutMs?: number;
}

/** The URL of one batch on the API. */
export function batchUrl(apiUrl: string, batchId: string): URL {
  const base = apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/`;
  return new URL(`v1/batches/${encodeURIComponent(batchId)}`, base);
}

/** Starts polling; `stop()` ends it. */
export function watchBatchDone(opts: BatchDoneWatchOptions): { stop: () => void } {
  const intervalMs = opts.intervalMs ?? 1000;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const url = batchUrl(opts.apiUrl, opts.batchId);
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const poll = async (): Promise<{ done: string } | { fatal: BatchWatchError } | undefined> => {
    const response = await fetch(url, {
      headers: { authorization: `Bearer ${opts.token}`, accept: 'application/json' },
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    if (response.status === 404) return { done: 'the batch no longer exists' };
    if (response.status === 401 || response.status === 403) {
      return { fatal: new BatchWatchError(`GET ${url.pathname} answered ${response.status}: ${problemDetail(text)} (check FANOUT_TOKEN)`) };
    }
    if (response.status !== 200) throw new Error(`GET ${url.pathname} answered ${response.status}: ${problemDetail(text)}`);
    const status = (JSON.parse(text) as { status?: BatchProgress }).status;
    if (!status || typeof status.phase !== 'string' || !status.counts) throw new Error(`GET ${url.pathname}: no status in the answer`);
    if (!batchIsDone(status)) return undefined;
    return { done: isFinalPhase(status.phase as Phase) ? `the batch is ${status.phase}` : 'no item of the batch is pending or running' };
  };

  const tick = async () => {
    if (stopped) return;
    if (!opts.isBusy()) {
      try {
        const answer = await poll();
        if (stopped) return;
        if (answer && 'done' in answer) {
          stopped = true;
          opts.onDone(answer.done);
          return;
        }
        if (answer && 'fatal' in answer) {
          stopped = true;
          opts.onFatal(answer.fatal);
          return;
        }
      } catch (error) {
        if (stopped) return;
        opts.onError?.(error);
      }
    }
    timer = setTimeout(() => void tick(), intervalMs);
  };
  timer = setTimeout(() => void tick(), intervalMs);
  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

function problemDetail(text: string): string {
  try {
    const body = JSON.parse(text) as { detail?: unknown; title?: unknown };
    const detail = body.detail ?? body.title;
    if (typeof detail === 'string') return detail;
  } catch {
    // not problem+json
  }
  return text.replace(/\s+/g, ' ').slice(0, 200) || 'no body';
}
