import type { Op } from './op.js';
import type { Store } from './store.js';

/**
 * A view of a store whose every write first runs `fence` in the same transaction: a leader's
 * writes carry its fencing token (checkFence in leadership.ts), so a deposed leader that has not
 * noticed yet cannot change anything. Reads are not fenced. Closing the view leaves the store open.
 */
export function fencedStore(store: Store, fence: () => Op<void>): Store {
  return {
    dialect: store.dialect,
    read: (op) => store.read(op),
    write: (op) => store.write(fenced(fence(), op)),
    appendItems: (batchId, firstIndex, rows) => store.appendItems(batchId, firstIndex, rows),
    ping: () => store.ping(),
    close: () => Promise.resolve(),
  };
}

function* fenced<T>(fence: Op<void>, op: Op<T>): Op<T> {
  yield* fence;
  return yield* op;
}
