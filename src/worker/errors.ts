/**
 * Errors that tell the executor what to do with an attempt (the inngest-js habit), plus the one
 * function that turns anything thrown into a message. Every attempt ends in a recorded outcome,
 * whatever a task threw.
 */

/** Thrown by a function task when retrying cannot help: the item fails without another attempt. */
export class NonRetriableError extends Error {
  override name = 'NonRetriableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Thrown by a function task to fail this attempt and ask for the next one no sooner than `ms`. */
export class RetryAfterError extends Error {
  override name = 'RetryAfterError';
  readonly retryAfterMs: number;
  constructor(retryAfterMs: number, message = `retry after ${retryAfterMs} ms`, options?: { cause?: unknown }) {
    super(message, options);
    this.retryAfterMs = Math.max(0, Math.round(retryAfterMs));
  }
}

/** A `--task NAME=SPEC` flag that cannot be understood; the message is one line for the operator. */
export class TaskFlagError extends Error {
  override name = 'TaskFlagError';
}

/** One line describing anything thrown, including the code of a low-level cause (`ECONNREFUSED`). */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return typeof error === 'string' ? error : `non-error thrown: ${safeJson(error)}`;
  const cause = (error as { cause?: unknown }).cause;
  const code = errorCode(error) ?? errorCode(cause);
  let message = error.message || error.name;
  if (cause instanceof Error && cause.message && !message.includes(cause.message)) message += `: ${cause.message}`;
  if (code && !message.includes(code)) message += ` (${code})`;
  return message;
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

function safeJson(value: unknown): string {
  try {
    return String(JSON.stringify(value));
  } catch {
    return String(value);
  }
}
