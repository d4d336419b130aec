import { constants } from 'node:os';
import { pipeline } from 'node:stream/promises';
import { plainCommandWords } from '../domain/command-words.js';
import { HELPER_EXITED, spawnCommand } from './command-spawner.js';
import { describeError } from './errors.js';
import { abortedAttempt } from './item-abort.js';
import { ResultSpool, TailBuffer, stripOneNewline } from './output-capture.js';
import { settleSpooledResult } from './result-upload.js';
import type { TaskContext, TaskResult } from './tasks.js';

/**
 * A command task: `/bin/sh -c COMMAND` exactly as the operator wrote it, or, when the command is
 * only plain words (see {@link plainCommandWords}), its program run directly: the same meaning
 * without a second exec per item. The item goes on stdin (a string raw, anything else as JSON)
 * and is never interpolated into the command; stdout is the result; the exit code feeds the
 * batch's failure rules.
 */

/** Milliseconds between SIGTERM and SIGKILL when an item is aborted (timeout, batch stopped). */
export const KILL_GRACE_MS = 2000;
const STDERR_TAIL_BYTES = 4096;

/**
 * Process groups of commands still running. Each runs detached (its own group), so nothing
 * ends it when this process exits: a forced exit at the end of the shutdown grace period, with
 * a command that ignored SIGTERM, would leave it running. The exit hook kills what is left at
 * once; the spawner helpers do the same when they see this process gone (also after a SIGKILL,
 * where no hook runs).
 */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function trackGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  liveGroups.add(pid);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const group of liveGroups) killGroup(group, 'SIGKILL');
    });
  }
}

/** What to exec for a command: the shell, or the program itself when no shell is needed. */
export interface CommandLine {
  file: string;
  args: string[];
  viaShell: boolean;
}

export function commandLine(command: string): CommandLine {
  const words = plainCommandWords(command);
  if (words) return { file: words[0], args: words.slice(1), viaShell: false };
  return { file: '/bin/sh', args: ['-c', command], viaShell: true };
}

/** Runs one attempt of a command task; resolves with its outcome, never rejects. */
export async function runCommandTask(command: string | CommandLine, ctx: TaskContext): Promise<TaskResult> {
  const line = typeof command === 'string' ? commandLine(command) : command;
  // its own process group (started by the helper): an abort kills the command and everything it
  // started, and a Ctrl-C or SIGTERM aimed at the worker does not interrupt items it is draining
  const child = spawnCommand(line.file, line.args, commandEnv(ctx), stdinPayload(ctx.input));
  void child.pid.then(trackGroup);
  const exited = child.exited.finally(() => {
    void child.pid.then((pid) => pid !== undefined && liveGroups.delete(pid));
  });
  const spool = new ResultSpool(ctx.inlineResultLimit);
  const stderr = new TailBuffer(STDERR_TAIL_BYTES);
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  const captured = pipeline(child.stdout, spool).then(
    () => undefined,
    (error: unknown) => error,
  );

  // timeout or stopped batch: SIGTERM to the group, SIGKILL for whatever ignores it
  let killed = false;
  let killTimer: NodeJS.Timeout | undefined;
  const stopListening = ctx.abort.onAbort(() => {
    killed = true;
    child.kill('SIGTERM');
    killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
  });

  const exit = await exited;
  stopListening();
  clearTimeout(killTimer);
  if ('spawnError' in exit) {
    child.stdout.destroy();
    await captured;
    await spool.cleanup();
    return spawnFailure(line, exit.spawnError);
  }
  const captureError = await captured;
  const tail = stderr.text();
  if (killed) {
    await spool.cleanup();
    return abortedAttempt(ctx.abort, describeError(ctx.abort.reason) + (tail ? `\n${tail}` : ''));
  }
  if (exit.signal) {
    await spool.cleanup();
    const exitCode = 128 + (constants.signals[exit.signal] ?? 0);
    return { outcome: 'failed', exitCode, error: tail || `killed by ${exit.signal}` };
  }
  const exitCode = exit.code ?? 1;
  if (exitCode !== 0) {
    await spool.cleanup();
    return { outcome: 'failed', exitCode, error: tail || `exited with code ${exitCode}` };
  }
  if (captureError) {
    await spool.cleanup();
    return { outcome: 'failed', exitCode, error: `could not capture stdout: ${describeError(captureError)}` };
  }
  const result = await settleSpooledResult(spool, ctx, (data) => stripOneNewline(data.toString('utf8')), true);
  return result.outcome === 'succeeded' ? { ...result, exitCode } : result;
}

/**
 * A program that could not be started fails the item as sh would have: exit code 127 when it is
 * not found, 126 when it cannot be executed, so failure rules on exit codes read the same.
 */
function spawnFailure(line: CommandLine, error: Error): TaskResult {
  if ((error as NodeJS.ErrnoException).code === HELPER_EXITED) return { outcome: 'failed', error: describeError(error) };
  if (line.viaShell) return { outcome: 'failed', error: `could not start /bin/sh: ${describeError(error)}` };
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return { outcome: 'failed', exitCode: 127, error: `${line.file}: command not found` };
  if (code === 'EACCES') return { outcome: 'failed', exitCode: 126, error: `${line.file}: permission denied` };
  return { outcome: 'failed', exitCode: 126, error: `could not start ${line.file}: ${describeError(error)}` };
}

/**
 * What an item adds to the worker's environment (which the spawner puts first): the item's
 * rendered template env, then the FANOUT_* variables, which the item env can never override.
 */
export function commandEnv(ctx: TaskContext): Record<string, string> {
  return {
    ...ctx.env,
    FANOUT_BATCH_ID: ctx.batchId,
    FANOUT_ITEM_INDEX: String(ctx.index),
    JOB_COMPLETION_INDEX: String(ctx.index),
    FANOUT_ATTEMPT: String(ctx.attempt),
  };
}

/** A string item goes to stdin as is; any other value as JSON. */
export function stdinPayload(input: unknown): string {
  if (typeof input === 'string') return input;
  return JSON.stringify(input) ?? 'null';
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}
