import type { Queue } from 'bullmq';

/**
 * For workers that should exit when their work is done (a Kubernetes Job of workers per batch):
 * calls `onIdle` once every watched queue has had no waiting, active, delayed or prioritized job
 * for `checks` consecutive checks `intervalMs` apart. Active jobs include this worker's own, so
 * it never fires mid-lease.
 */
export function watchIdle(
  queues: Queue[],
  onIdle: () => void,
  opts: { intervalMs?: number; checks?: number; onError?: (error: unknown) => void } = {},
): { stop: () => void } {
  const intervalMs = opts.intervalMs ?? 1000;
  const needed = opts.checks ?? 2;
  let emptyChecks = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const check = async () => {
    try {
      const counts = await Promise.all(
        queues.map((queue) => queue.getJobCountByTypes('waiting', 'active', 'delayed', 'prioritized', 'waiting-children')),
      );
      emptyChecks = counts.every((count) => count === 0) ? emptyChecks + 1 : 0;
    } catch (error) {
      emptyChecks = 0;
      opts.onError?.(error);
    }
    if (stopped) return;
    if (emptyChecks >= needed) {
      stopped = true;
      onIdle();
      return;
    }
    timer = setTimeout(check, intervalMs);
  };
  timer = setTimeout(check, intervalMs);
  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
