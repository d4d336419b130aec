import { NonRetriableError, RetryAfterError, describeError } from './errors.js';
import { abortedAttempt, type AttemptAbort } from './item-abort.js';
import type { FunctionTaskContext, FunctionTaskDefinition, TaskContext, TaskResult } from './tasks.js';

/**
 * A function task: an in-process TypeScript function gets the item and returns the result.
 * Whatever it throws becomes a recorded outcome; {@link NonRetriableError} and
 * {@link RetryAfterError} tell the dispatcher how to retry.
 */

/** Runs one attempt of a function task; resolves with its outcome, never rejects. */
export async function runFunctionTask(fn: FunctionTaskDefinition['fn'], ctx: TaskContext): Promise<TaskResult> {
  const context = new FunctionContext(ctx);
  // a synchronous throw becomes a rejection; a late rejection after an abort is ignored
  const run = Promise.resolve()
    .then(() => fn(ctx.input, context))
    .then((value) => ({ value }));
  run.catch(() => {});
  // the attempt ends when the signal aborts (timeout, stopped batch), even if the function
  // ignores it: its slot is free and whatever it returns later is dropped
  let stopListening = () => {};
  const aborted = new Promise<'aborted'>((resolve) => {
    stopListening = ctx.abort.onAbort(() => resolve('aborted'));
  });
  try {
    const settled = await Promise.race([run, aborted]);
    if (settled === 'aborted') return abortedAttempt(ctx.abort, describeError(ctx.abort.reason));
    return resultOf(settled.value);
  } catch (error) {
    return failureOf(error);
  } finally {
    stopListening();
  }
}

/**
 * What the function gets besides its item. `signal` is a getter on the prototype: the AbortSignal
 * is made only for functions that read it (an object literal's getter would cost a closure per item).
 */
class FunctionContext implements FunctionTaskContext {
  readonly batchId: string;
  readonly index: number;
  readonly attempt: number;
  readonly logger: TaskContext['logger'];
  readonly #abort: AttemptAbort;

  constructor(ctx: TaskContext) {
    this.batchId = ctx.batchId;
    this.index = ctx.index;
    this.attempt = ctx.attempt;
    this.logger = ctx.logger;
    this.#abort = ctx.abort;
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }
}

function resultOf(value: unknown): TaskResult {
  if (value === undefined) return { outcome: 'succeeded' };
  try {
    // reports travel as JSON: a value that cannot round-trip must fail here, not in the reporter
    const json = JSON.stringify(value);
    return { outcome: 'succeeded', result: json === undefined ? undefined : (JSON.parse(json) as unknown) };
  } catch (error) {
    return { outcome: 'failed', error: `the function's result is not JSON-serializable: ${describeError(error)}` };
  }
}

/** Maps anything a function threw to a failed outcome. */
export function failureOf(error: unknown): TaskResult {
  if (error instanceof NonRetriableError) {
    return { outcome: 'failed', nonRetriable: true, error: describeError(error) };
  }
  if (error instanceof RetryAfterError) {
    return { outcome: 'failed', retryAfterMs: error.retryAfterMs, error: describeError(error) };
  }
  return { outcome: 'failed', error: describeError(error) };
}
