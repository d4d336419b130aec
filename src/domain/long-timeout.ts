/**
 * A timeout for any delay. Node's setTimeout holds at most 2^31-1 ms (24.8 days): a longer delay
 * is replaced by 1 ms, so a long item timeout fired at once. This one waits in steps no longer
 * than that, each measured against the clock, until the whole delay has passed.
 */

/** The longest delay setTimeout honours. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface LongTimeout {
  cancel(): void;
}

export function setLongTimeout(fire: () => void, delayMs: number, clock: () => number = Date.now): LongTimeout {
  const due = clock() + Math.max(0, delayMs);
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    timer = setTimeout(step, Math.min(Math.max(0, due - clock()), MAX_TIMER_MS));
  };
  const step = () => {
    if (due - clock() > 0) return schedule();
    timer = undefined;
    fire();
  };
  // Never fires synchronously; a non-finite delay never fires at all.
  if (Number.isFinite(due)) schedule();
  return {
    cancel() {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}
