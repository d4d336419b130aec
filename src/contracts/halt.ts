/**
 * How a batch is halted for the runtimes running its items. The API halts a batch it cancels or
 * suspends, the dispatcher every halted or final one; on the queue runtime the mode is the value
 * of the batch's halt key in Redis (`haltKey` in src/runtimes/queue/protocol.ts), which workers read.
 *
 * {@link HALT_STOP} (cancelled, failed, deleted): abort running items, nothing they return is
 * recorded. {@link HALT_PAUSE} (suspended): start nothing new, let running items finish.
 */
export const HALT_STOP = 'stop';
export const HALT_PAUSE = 'pause';
export type HaltMode = typeof HALT_STOP | typeof HALT_PAUSE;
