import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ADAPTIVE_RATE, type TaskLimits } from '../../domain/task-limits.js';

/**
 * Limits shared by every worker process of an installation, kept in Redis (one Lua script per
 * decision, so two workers never both take the last slot):
 *
 * - a task's `maxConcurrent`: a sorted set of holders scored by when their hold expires; a
 *   running item renews its hold, so the slots of a worker that died free themselves within
 *   {@link HOLD_MS};
 * - a batch's `maxConcurrentPerKey`: the same, one set per batch and key value;
 * - a task's rate, `maxPerSecond` or the adaptive rate: starts are spaced 1/rate apart (the
 *   generic cell rate algorithm: one "theoretical arrival time" per task);
 * - the adaptive rate's state (src/domain/task-limits.ts ADAPTIVE_RATE): the rate after the last
 *   decrease, when it happened, and until when every start waits (Retry-After).
 *
 * Keys: `<prefix>:limit:task:<task>` (hash), `<prefix>:limit:task:<task>:running` and
 * `<prefix>:limit:key:<batch>:<sha1 of the key value>` (sorted sets).
 */

/** How long a running item's slot is held without renewal (a dead worker's slots free after this). */
export const HOLD_MS = 60_000;
const RENEW_MS = HOLD_MS / 3;
/** Longest wait between two tries for a slot: a freed slot is found within this long. */
const MAX_WAIT_MS = 250;

// Shared by both scripts: the rate in force at `now`, or nil when the task has none.
const EFFECTIVE_RATE_LUA = `
local function effective_rate(state, now, ceiling)
  local base = tonumber(redis.call('HGET', state, 'rate') or '')
  local rate = nil
  if base then
    local since = tonumber(redis.call('HGET', state, 'since') or '0')
    local inc = tonumber(redis.call('HGET', state, 'inc') or '0')
    rate = base + inc * math.max(0, now - since) / 1000
  end
  if ceiling > 0 and (rate == nil or rate > ceiling) then rate = ceiling end
  return rate
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

/**
 * KEYS: task hash, task running set, key running set (any name when no key limit).
 * ARGV: holder, maxPerSecond (0: none), maxConcurrent (0: none), maxPerKey (0: none), hold ms, count starts (1/0).
 * Returns 0 when the start is granted (the holder is added to the sets that limit it), else the ms to wait.
 */
const ACQUIRE_LUA = `${EFFECTIVE_RATE_LUA}
local state, running, keyed = KEYS[1], KEYS[2], KEYS[3]
local holder, ceiling, max_running, max_keyed, hold, count = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local now = now_ms()
local paused = tonumber(redis.call('HGET', state, 'pausedUntil') or '0')
if paused > now then return paused - now end
if max_running > 0 then
  redis.call('ZREMRANGEBYSCORE', running, '-inf', now)
  if redis.call('ZCARD', running) >= max_running then return -1 end
end
if max_keyed > 0 then
  redis.call('ZREMRANGEBYSCORE', keyed, '-inf', now)
  if redis.call('ZCARD', keyed) >= max_keyed then return -1 end
end
local rate = effective_rate(state, now, ceiling)
if rate then
  local tat = tonumber(redis.call('HGET', state, 'tat') or '0')
  if tat > now then return math.ceil(tat - now) end
  redis.call('HSET', state, 'tat', string.format('%.3f', now + 1000 / rate))
end
if max_running > 0 then redis.call('ZADD', running, now + hold, holder); redis.call('PEXPIRE', running, hold * 2) end
if max_keyed > 0 then redis.call('ZADD', keyed, now + hold, holder); redis.call('PEXPIRE', keyed, hold * 2) end
if count == '1' then
  local second = math.floor(now / 1000)
  local window = tonumber(redis.call('HGET', state, 'window') or '0')
  if window == second then
    redis.call('HINCRBY', state, 'count', 1)
  else
    local previous = 0
    if window == second - 1 then previous = tonumber(redis.call('HGET', state, 'count') or '0') end
    redis.call('HSET', state, 'window', second, 'count', 1, 'previous', previous)
  end
end
return 0
`;

/**
 * KEYS: task hash. ARGV: when the answered request started (ms), Retry-After (ms), maxPerSecond (0: none),
 * then ADAPTIVE_RATE's decreaseFactor, minPerSecond, increaseFraction, minIncreasePerSecond.
 * Pauses the task until Retry-After has passed and halves its rate unless it was already halved
 * after the request started. Returns the new rate as a string ('' when it was not decreased).
 */
const CONGESTED_LUA = `${EFFECTIVE_RATE_LUA}
local state = KEYS[1]
local started, retry_after, ceiling = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local factor, min_rate, inc_fraction, min_inc = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local now = now_ms()
local paused = tonumber(redis.call('HGET', state, 'pausedUntil') or '0')
if now + retry_after > paused then redis.call('HSET', state, 'pausedUntil', now + retry_after) end
local since = tonumber(redis.call('HGET', state, 'since') or '0')
if started < since then return '' end
local rate = effective_rate(state, now, ceiling)
if rate == nil then
  local second = math.floor(now / 1000)
  local window = tonumber(redis.call('HGET', state, 'window') or '0')
  local count, previous = 0, 0
  if window == second then
    count = tonumber(redis.call('HGET', state, 'count') or '0')
    previous = tonumber(redis.call('HGET', state, 'previous') or '0')
  elseif window == second - 1 then
    previous = tonumber(redis.call('HGET', state, 'count') or '0')
  end
  rate = math.max(count, previous, 1)
end
local new_rate = math.max(min_rate, rate * factor)
redis.call('HSET', state, 'rate', string.format('%.3f', new_rate), 'since', now, 'inc', string.format('%.3f', math.max(min_inc, new_rate * inc_fraction)), 'tat', string.format('%.3f', now + retry_after))
return string.format('%.3f', new_rate)
`;

/** KEYS: a running set. ARGV: holder, hold ms. Extends the holder's hold (by Redis's clock, as the grant did). */
const RENEW_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[2]), ARGV[1])
`;

/** KEYS: task hash. ARGV: maxPerSecond (0: none). The rate in force now, '' when none. */
const RATE_LUA = `${EFFECTIVE_RATE_LUA}
local rate = effective_rate(KEYS[1], now_ms(), tonumber(ARGV[1]))
if rate == nil then return '' end
return string.format('%.3f', rate)
`;

type LimiterRedis = Redis & {
  fanoutLimitAcquire(state: string, running: string, keyed: string, ...argv: Array<string | number>): Promise<number>;
  fanoutLimitCongested(state: string, ...argv: Array<string | number>): Promise<string>;
  fanoutLimitRate(state: string, ceiling: number): Promise<string>;
  fanoutLimitRenew(set: string, holder: string, holdMs: number): Promise<number>;
};

function withScripts(redis: Redis): LimiterRedis {
  const r = redis as LimiterRedis;
  if (typeof r.fanoutLimitAcquire !== 'function') {
    redis.defineCommand('fanoutLimitAcquire', { numberOfKeys: 3, lua: ACQUIRE_LUA });
    redis.defineCommand('fanoutLimitCongested', { numberOfKeys: 1, lua: CONGESTED_LUA });
    redis.defineCommand('fanoutLimitRate', { numberOfKeys: 1, lua: RATE_LUA });
    redis.defineCommand('fanoutLimitRenew', { numberOfKeys: 1, lua: RENEW_LUA });
  }
  return r;
}

export function taskLimitKey(prefix: string, task: string): string {
  return `${prefix}:limit:task:${task}`;
}

function concurrencyKeySet(prefix: string, batchId: string, key: string): string {
  return `${prefix}:limit:key:${batchId}:${createHash('sha1').update(key).digest('hex')}`;
}

/** What one item start must respect: its task's limits and, when its batch sets one, its key's. */
export interface StartLimits {
  task: string;
  limits: TaskLimits;
  batchId: string;
  /** the item's rendered concurrency key, with its batch's maxConcurrentPerKey */
  key?: { value: string; max: number };
}

/** A granted start: renew keeps the slots while the item runs; release frees them. */
export interface StartPermit {
  release(): Promise<void>;
}

/** True when a start needs Redis at all (no limit: nothing to ask). */
export function isLimited(start: StartLimits): boolean {
  const { limits } = start;
  return limits.maxPerSecond !== undefined || limits.maxConcurrent !== undefined || limits.adaptive === true || start.key !== undefined;
}

export class TaskLimiter {
  private readonly redis: LimiterRedis;

  constructor(redis: Redis, private readonly prefix: string) {
    this.redis = withScripts(redis);
  }

  /**
   * One try for a start: a permit, or how long to wait before the next try. Callers wait
   * without holding anything (src/worker/lease-runner.ts gives its process slot back meanwhile).
   */
  async tryAcquire(start: StartLimits): Promise<{ permit: StartPermit } | { waitMs: number }> {
    const holder = randomBytes(8).toString('hex');
    const state = taskLimitKey(this.prefix, start.task);
    const running = `${state}:running`;
    const keyed = start.key ? concurrencyKeySet(this.prefix, start.batchId, start.key.value) : `${state}:nokey`;
    const { maxPerSecond = 0, maxConcurrent = 0, adaptive = false } = start.limits;
    const wait = Number(
      await this.redis.fanoutLimitAcquire(state, running, keyed, holder, maxPerSecond, maxConcurrent, start.key?.max ?? 0, HOLD_MS, adaptive ? 1 : 0),
    );
    // -1: every slot is taken and frees at an unknown time: look again soon, with jitter so that
    // waiting workers do not all ask at the same moment
    if (wait !== 0) return { waitMs: wait < 0 ? 20 + Math.random() * 80 : Math.min(wait, MAX_WAIT_MS) };
    const sets = [...(maxConcurrent > 0 ? [running] : []), ...(start.key ? [keyed] : [])];
    if (sets.length === 0) return { permit: { release: async () => {} } };
    const renew = setInterval(() => {
      for (const set of sets) this.redis.fanoutLimitRenew(set, holder, HOLD_MS).catch(() => {});
    }, RENEW_MS);
    renew.unref();
    return {
      permit: {
        release: async () => {
          clearInterval(renew);
          await Promise.all(sets.map((set) => this.redis.zrem(set, holder))).catch(() => {
            // Redis unreachable: the hold expires by itself within HOLD_MS
          });
        },
      },
    };
  }

  /**
   * A request of `task` that started at `startedAt` was answered 429 or 503 with Retry-After:
   * pause the task and decrease its rate (once per round of requests). Returns the new rate, or
   * undefined when this answer did not decrease it.
   */
  async congested(task: string, limits: TaskLimits, startedAt: number, retryAfterMs: number): Promise<number | undefined> {
    const rate = await this.redis.fanoutLimitCongested(
      taskLimitKey(this.prefix, task),
      startedAt,
      Math.max(0, Math.round(retryAfterMs)),
      limits.maxPerSecond ?? 0,
      ADAPTIVE_RATE.decreaseFactor,
      ADAPTIVE_RATE.minPerSecond,
      ADAPTIVE_RATE.increaseFraction,
      ADAPTIVE_RATE.minIncreasePerSecond,
    );
    return rate === '' ? undefined : Number(rate);
  }
}

/** The rate a task's starts are held to now (items/s), or undefined when none; for /metrics. */
export async function currentTaskRate(redis: Redis, prefix: string, task: string, maxPerSecond = 0): Promise<number | undefined> {
  const rate = await withScripts(redis).fanoutLimitRate(taskLimitKey(prefix, task), maxPerSecond);
  return rate === '' ? undefined : Number(rate);
}
