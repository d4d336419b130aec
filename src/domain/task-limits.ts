/**
 * Limits a task's operator declares for all of its workers together (enforced in Redis by
 * src/worker/task-limiter.ts): at most `maxPerSecond` item starts per second and `maxConcurrent`
 * items running at once, across every worker process of the installation.
 *
 * `adaptive` (default on for URL tasks): a 429 or 503 answer with Retry-After slows the whole task
 * down instead of failing the item (additive increase, multiplicative decrease: see
 * {@link ADAPTIVE_RATE}).
 */
export interface TaskLimits {
  maxPerSecond?: number;
  maxConcurrent?: number;
  adaptive?: boolean;
}

export class TaskLimitError extends Error {}

/** The largest values a limit may have: beyond them a limit is no limit. */
export const MAX_PER_SECOND = 100_000;
export const MAX_CONCURRENT = 100_000;

/**
 * The adaptive rate (AIMD, as TCP's congestion control and client-side throttling do):
 * - on a 429 or 503 answer carrying Retry-After, every start of the task waits until that time,
 *   and the task's rate is halved (from its current rate, or from the starts of the last second
 *   when it had none), but never below `minPerSecond`; answers to requests that started before
 *   the last decrease do not halve it again (they were sent at the old rate);
 * - after a decrease to r items/s, the rate grows by max(`minIncreasePerSecond`, r ×
 *   `increaseFraction`) items/s every second without another decrease, up to `maxPerSecond`
 *   (when set; without one it grows on, and the limit fades out as it passes what workers start);
 * - an item that was answered so is not failed: it waits its turn and is sent again, in the
 *   same attempt, up to `maxResends` times; after that the answer fails it as before.
 */
export const ADAPTIVE_RATE = {
  decreaseFactor: 0.5,
  minPerSecond: 0.2,
  increaseFraction: 0.1,
  minIncreasePerSecond: 0.5,
  maxResends: 50,
} as const;

const LIMIT_KEYS = ['maxPerSecond', 'maxConcurrent', 'adaptive'] as const;

/**
 * Parses one `--task-limit NAME:KEY=VALUE[,KEY=VALUE…]` (e.g. `api:maxPerSecond=10,maxConcurrent=4`).
 * Returns the task name and its limits; throws {@link TaskLimitError} naming what is wrong.
 */
export function parseTaskLimit(flag: string): { task: string; limits: TaskLimits } {
  const colon = flag.indexOf(':');
  if (colon <= 0) throw new TaskLimitError(`invalid task limit ${JSON.stringify(flag)}: expected NAME:KEY=VALUE[,KEY=VALUE], e.g. api:maxPerSecond=10,maxConcurrent=4`);
  const task = flag.slice(0, colon).trim();
  const limits: TaskLimits = {};
  const body = flag.slice(colon + 1).trim();
  if (body === '') throw new TaskLimitError(`invalid task limit for ${task}: no KEY=VALUE after ":"`);
  for (const part of body.split(',')) {
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).trim();
    const text = eq < 0 ? '' : part.slice(eq + 1).trim();
    if (!(LIMIT_KEYS as readonly string[]).includes(key)) {
      throw new TaskLimitError(`invalid task limit for ${task}: unknown key ${JSON.stringify(key)} (known: ${LIMIT_KEYS.join(', ')})`);
    }
    if (key in limits) throw new TaskLimitError(`invalid task limit for ${task}: ${key} given twice`);
    if (key === 'adaptive') {
      if (text !== 'true' && text !== 'false') throw new TaskLimitError(`invalid task limit for ${task}: adaptive must be true or false, got ${JSON.stringify(text)}`);
      limits.adaptive = text === 'true';
    } else if (key === 'maxPerSecond') {
      const n = Number(text);
      if (text === '' || !Number.isFinite(n) || n <= 0 || n > MAX_PER_SECOND) {
        throw new TaskLimitError(`invalid task limit for ${task}: maxPerSecond must be a number above 0 and at most ${MAX_PER_SECOND}, got ${JSON.stringify(text)}`);
      }
      limits.maxPerSecond = n;
    } else {
      const n = Number(text);
      if (!/^\d+$/.test(text) || n < 1 || n > MAX_CONCURRENT) {
        throw new TaskLimitError(`invalid task limit for ${task}: maxConcurrent must be a whole number from 1 to ${MAX_CONCURRENT}, got ${JSON.stringify(text)}`);
      }
      limits.maxConcurrent = n;
    }
  }
  return { task, limits };
}

/** Checks limits given in code (a function or URL task definition); throws {@link TaskLimitError}. */
export function checkTaskLimits(task: string, limits: TaskLimits): void {
  const { maxPerSecond, maxConcurrent, adaptive } = limits;
  if (maxPerSecond !== undefined && !(Number.isFinite(maxPerSecond) && maxPerSecond > 0 && maxPerSecond <= MAX_PER_SECOND)) {
    throw new TaskLimitError(`task ${task}: maxPerSecond must be a number above 0 and at most ${MAX_PER_SECOND}, got ${maxPerSecond}`);
  }
  if (maxConcurrent !== undefined && !(Number.isInteger(maxConcurrent) && maxConcurrent >= 1 && maxConcurrent <= MAX_CONCURRENT)) {
    throw new TaskLimitError(`task ${task}: maxConcurrent must be a whole number from 1 to ${MAX_CONCURRENT}, got ${maxConcurrent}`);
  }
  if (adaptive !== undefined && typeof adaptive !== 'boolean') throw new TaskLimitError(`task ${task}: adaptive must be true or false`);
}
