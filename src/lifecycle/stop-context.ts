import type { Redis } from 'ioredis';

/**
 * What a part of the process gets when it is asked to stop within the shutdown grace period:
 * until `drain` aborts it may wait for its work to end (running items, in-flight requests);
 * then it cuts what is left, and says through `abandon` what it could not hand back, so that
 * the process logs one line about everything it left behind.
 */
export interface StopContext {
  /** aborts when the drain time is over */
  drain: AbortSignal;
  /** records what this part could not hand back (merged into the one "abandoned" log line) */
  abandon(what: Record<string, unknown>): void;
}

/** A stop with no deadline and nobody listening (tests, embedded workers). */
export function unboundedStop(): StopContext {
  return { drain: new AbortController().signal, abandon: () => {} };
}

/** Resolves true once `work` settles, false if `signal` aborts first; never rejects. */
export function settledBefore(work: Promise<unknown>, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => resolve(false);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      () => resolve(true),
      () => resolve(true),
    ).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** An AbortSignal that aborts after `ms` or when `parent` does, whichever comes first. */
export function soonerOf(parent: AbortSignal, ms: number): AbortSignal {
  return AbortSignal.any([parent, AbortSignal.timeout(ms)]);
}

/**
 * Ends an ioredis client without hanging on an unreachable server. A ready client sends QUIT
 * (pending replies arrive first), cut after `quitMs`; any other client is disconnected at once:
 * a QUIT queued behind offline commands would wait for a reconnection that may never come.
 * Answers whether the server was reachable.
 */
export async function closeRedis(client: Redis | undefined, quitMs = 1000): Promise<boolean> {
  if (!client || client.status === 'end') return true;
  if (client.status !== 'ready') {
    client.disconnect();
    return false;
  }
  const quit = client.quit().then(() => true, () => false);
  const quitInTime = await Promise.race([quit, new Promise<boolean>((r) => setTimeout(() => r(false), quitMs).unref())]);
  if (!quitInTime) client.disconnect();
  return quitInTime;
}
