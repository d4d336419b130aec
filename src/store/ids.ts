import { randomBytes } from 'node:crypto';

/**
 * Sortable ids: creation time, then a per-process sequence within the same millisecond, then
 * randomness. Sorting by id is therefore sorting by age (cursor pages, newest first), even for
 * ids made in one millisecond.
 */

let lastMs = 0;
let sequence = 0;

/** The millisecond and sequence of an id made at `now` (never earlier than the last one made). */
function tick(now: number): { ms: number; seq: number } {
  if (now > lastMs) {
    lastMs = now;
    sequence = 0;
  } else {
    sequence++;
  }
  return { ms: lastMs, seq: sequence };
}

/**
 * `<letter><9 time><3 sequence><7 random>`, 20 characters of [0-9a-z]: batch ids ("b") are valid
 * in Kubernetes labels and BullMQ job ids; schedules ("s") look the same.
 */
export function compactId(letter: string, now = Date.now()): string {
  const { ms, seq } = tick(now);
  return `${letter}${ms.toString(36).padStart(9, '0')}${seq.toString(36).padStart(3, '0')}${randomBytes(4).toString('hex').slice(0, 7)}`;
}

/** `<prefix>_<time><4 sequence><16 hex>`: webhook events, deliveries and endpoints. */
export function prefixedId(prefix: string, now = Date.now()): string {
  const { ms, seq } = tick(now);
  return `${prefix}_${ms.toString(36)}${seq.toString(36).padStart(4, '0')}${randomBytes(8).toString('hex')}`;
}
