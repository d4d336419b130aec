import type { Logger } from 'pino';
import type { ItemReport } from '../runtimes/queue/protocol.js';
import { TaskFlagError } from './errors.js';
import { commandLine, runCommandTask } from './command-task.js';
import { runFunctionTask } from './function-task.js';
import { runUrlTask } from './url-task.js';
import { checkTaskLimits, TaskLimitError, type TaskLimits } from '../domain/task-limits.js';
import type { AttemptAbort } from './item-abort.js';

/**
 * Task definitions: what a worker may run, declared by its operator (`--task NAME=SPEC`) or by
 * TypeScript code. Nothing a client sends is ever run as a command: an item only reaches a task
 * as stdin, an HTTP body or a function argument.
 */

/** Everything one attempt of one item needs; built by the lease runner. */
export interface TaskContext {
  batchId: string;
  index: number;
  attempt: number;
  input: unknown;
  /** per-item environment rendered from the batch template (command tasks only) */
  env: Record<string, string>;
  /** itemTimeoutSeconds * 1000 when the batch sets it; the runner enforces it through `signal` */
  timeoutMs?: number;
  /**
   * Aborted when the attempt must end now: its timeout passed (reason `ItemTimeoutError`)
   * or its batch was stopped (reason `BatchStoppedError`), or the worker's shutdown grace ran out
   * (reason `WorkerShutdownError`). A task kills or cancels what it runs and resolves promptly,
   * listening with `abort.onAbort`, or through `abort.signal` where an API wants an AbortSignal.
   */
  abort: AttemptAbort;
  /** batch-scoped bearer token for the API; never logged, never sent to a URL task */
  token: string;
  /** base URL of the Fanout API, for streaming results larger than the inline limit */
  apiUrl?: string;
  /** results larger than this many bytes are spooled to disk and PUT to the API */
  inlineResultLimit: number;
  logger: Logger;
}

/** How one attempt ended. `recordedByApi`: the API already recorded it (large result PUT). */
export type TaskResult = Pick<
  ItemReport,
  'result' | 'exitCode' | 'httpStatus' | 'condition' | 'error' | 'retryAfterMs' | 'nonRetriable' | 'networkError'
> & { outcome: 'succeeded' | 'failed'; recordedByApi?: boolean };

/** Runs one attempt; must resolve (never reject) with the attempt's outcome. */
export type TaskHandler = (ctx: TaskContext) => Promise<TaskResult>;

/** What a function task receives besides the item. */
export interface FunctionTaskContext {
  batchId: string;
  index: number;
  attempt: number;
  /**
   * Aborted when the item's timeout passes (reason `ItemTimeoutError`) or its batch is stopped:
   * cancelled, failed or deleted (reason `BatchStoppedError`), or the worker's shutdown grace
   * runs out (reason `WorkerShutdownError`: the item is handed back). The attempt ends at that moment
   * whatever the function does; pass the signal on to whatever it awaits.
   */
  signal: AbortSignal;
  logger: Logger;
}

/** `/bin/sh -c command` (or its program directly when it is plain words), the item on stdin, stdout the result. */
export interface CommandTaskDefinition {
  kind: 'command';
  name: string;
  command: string;
}

/** POST the item as JSON to `url`; the response body is the result. */
export interface UrlTaskDefinition {
  kind: 'url';
  name: string;
  url: string;
}

/** In-process TypeScript function; throw `NonRetriableError` or `RetryAfterError` to steer retries. */
export interface FunctionTaskDefinition {
  kind: 'function';
  name: string;
  /** may return the result or a promise of it; a synchronous throw is a failed attempt too */
  fn: (input: unknown, ctx: FunctionTaskContext) => unknown;
}

export type TaskDefinition = (CommandTaskDefinition | UrlTaskDefinition | FunctionTaskDefinition) & {
  /**
   * Limits for all workers of the installation together (kept in Redis): `maxPerSecond` starts,
   * `maxConcurrent` items at once, `adaptive` slow-down on 429/503 with Retry-After (on by
   * default for URL tasks). Every worker of a task should declare the same limits.
   */
  limits?: TaskLimits;
};

/** The limits a task runs under: its own, with `adaptive` on by default for URL tasks. */
export function effectiveTaskLimits(task: TaskDefinition): TaskLimits {
  const limits = { ...task.limits };
  if (limits.adaptive === undefined && task.kind === 'url') limits.adaptive = true;
  return limits;
}

/**
 * Gives each task the limits `--task-limit` / FANOUT_TASK_LIMITS declare for it; a limit naming
 * a task the process does not run is an error (a typo would otherwise limit nothing).
 */
export function withTaskLimits(tasks: TaskDefinition[], limits: Record<string, TaskLimits>): TaskDefinition[] {
  const names = new Set(tasks.map((t) => t.name));
  for (const name of Object.keys(limits)) {
    if (!names.has(name)) throw new TaskFlagError(`--task-limit names task ${JSON.stringify(name)}, which this process does not run (it runs ${[...names].join(', ')})`);
  }
  return tasks.map((task) => (limits[task.name] ? { ...task, limits: { ...task.limits, ...limits[task.name] } } : task));
}

/** Throws {@link TaskFlagError} when a task's limits given in code are out of range. */
export function assertTaskLimits(task: TaskDefinition): void {
  if (!task.limits) return;
  try {
    checkTaskLimits(task.name, task.limits);
  } catch (error) {
    if (error instanceof TaskLimitError) throw new TaskFlagError(error.message);
    throw error;
  }
}
export type TaskKind = TaskDefinition['kind'];

const TASK_NAME = /^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;

/** Throws {@link TaskFlagError} unless `name` can be a task name (and so part of a queue name). */
export function assertTaskName(name: string): void {
  if (!TASK_NAME.test(name)) {
    throw new TaskFlagError(
      `invalid task name ${JSON.stringify(name)}: 1-63 characters [A-Za-z0-9_.-], alphanumeric at both ends`,
    );
  }
}

/**
 * Parses one `--task NAME=SPEC` flag. A SPEC starting with `http://` or `https://` is a URL task;
 * anything else is a command run with `/bin/sh -c SPEC`, exactly as the operator wrote it.
 */
export function parseTaskFlag(flag: string): TaskDefinition {
  const eq = flag.indexOf('=');
  if (eq < 0) throw new TaskFlagError(`invalid --task ${JSON.stringify(flag)}: expected NAME=COMMAND or NAME=URL`);
  const name = flag.slice(0, eq).trim();
  const spec = flag.slice(eq + 1);
  assertTaskName(name);
  if (spec.trim() === '') throw new TaskFlagError(`invalid --task ${name}: the command or URL after "=" is empty`);
  if (/^https?:\/\//i.test(spec.trim())) {
    const url = spec.trim();
    try {
      new URL(url);
    } catch {
      throw new TaskFlagError(`invalid --task ${name}: ${JSON.stringify(url)} is not a valid URL`);
    }
    return { kind: 'url', name, url };
  }
  return { kind: 'command', name, command: spec };
}

/** The handler that runs attempts of `task`. */
export function createTaskHandler(task: TaskDefinition): TaskHandler {
  switch (task.kind) {
    case 'command': {
      const line = commandLine(task.command);
      return (ctx) => runCommandTask(line, ctx);
    }
    case 'url':
      return (ctx) => runUrlTask(task.url, ctx);
    case 'function':
      return (ctx) => runFunctionTask(task.fn, ctx);
  }
}
