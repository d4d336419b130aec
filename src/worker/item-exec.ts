import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { constants } from 'node:os';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ExecConfig } from '../config/config.js';
import { renderTemplate, TemplateError } from '../domain/template.js';
import { ApiUnavailableError, describeAnswer, withApiRetry, type ApiAnswer } from './api-retry.js';
import { stdinPayload } from './command-task.js';
import { describeError } from './errors.js';
import { ResultSpool } from './output-capture.js';
import { fileBody, lastByte, putStream } from './result-upload.js';

/**
 * `fanout exec -- CMD [ARGS...]`, the pod wrapper of the indexed-job runtime: one pod, one item.
 * It GETs item `FANOUT_INDEX_OFFSET + JOB_COMPLETION_INDEX` of its batch with the batch token,
 * fills `{{ field }}` placeholders of CMD and ARGS from it (no shell, no code: renderTemplate),
 * runs CMD with the item on stdin like a command task, passes stderr through, captures stdout
 * (in memory up to a limit, then in a temp file) and PUTs it as the item's result when CMD exits
 * 0. Its exit code is CMD's, so the Job's pod failure policy sees what the command did.
 */

/** Exit codes of the wrapper itself (CMD's own code is passed through otherwise). */
export const EXEC_EXIT = {
  /** the wrapper failed: input not read, command not filled, or result not stored */
  failed: 1,
  /** missing environment, no CMD */
  usage: 2,
  /** CMD could not be executed (permission) */
  notExecutable: 126,
  /** CMD was not found */
  notFound: 127,
} as const;

/** Results up to this size stay in memory before the PUT; larger ones are spooled to a temp file. */
const IN_MEMORY_RESULT_BYTES = 1024 * 1024;
const GET_TIMEOUT_MS = 30_000;
const FORWARDED_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT'] as const;

export interface ExecIo {
  /** one line for the pod's log; never given the token */
  say(line: string): void;
  /** the environment CMD inherits; default process.env */
  env?: NodeJS.ProcessEnv;
}

/** Runs one item; resolves with the exit code the process should end with. Never rejects. */
export async function execItem(config: ExecConfig, argv: string[], io: ExecIo): Promise<number> {
  const where = `item ${config.index} of batch ${config.batchId}`;
  const retry = { budgetMs: config.retryMs, onRetry: (reason: string, ms: number) => io.say(`${reason}; retrying in ${(ms / 1000).toFixed(1)} s`) };

  let input: { item: unknown; attempt?: string };
  try {
    input = await fetchInput(config, retry);
  } catch (error) {
    io.say(`could not read the input of ${where}: ${describeError(error)}`);
    return EXEC_EXIT.failed;
  }

  let command: string[];
  try {
    command = renderTemplate(argv, input.item, config.index) as string[];
  } catch (error) {
    if (!(error instanceof TemplateError)) throw error;
    io.say(`cannot fill the command for ${where}: ${error.message}`);
    return EXEC_EXIT.failed;
  }

  const run = await runCommand(command, input, config, io);
  if ('exitCode' in run) return run.exitCode;

  try {
    const recorded = await putResult(config, run.spool, input.attempt, retry);
    if (!recorded) io.say(`the result of ${where} was not recorded: its attempt is no longer current or the item is final`);
    return 0;
  } catch (error) {
    io.say(`could not store the result of ${where}: ${describeError(error)}`);
    return EXEC_EXIT.failed;
  } finally {
    await run.spool.cleanup();
  }
}

/** GET …/items/{index}/input: the item, and the attempt the API answered it for. */
async function fetchInput(config: ExecConfig, retry: Parameters<typeof withApiRetry>[2]): Promise<{ item: unknown; attempt?: string }> {
  const url = itemUrl(config, 'input');
  let attempt: string | undefined;
  const answer = await withApiRetry(
    `GET ${url.pathname}`,
    async (): Promise<ApiAnswer> => {
      const response = await fetch(url, {
        headers: { authorization: `Bearer ${config.token}`, accept: 'application/json' },
        signal: AbortSignal.timeout(GET_TIMEOUT_MS),
      });
      const body = await response.text();
      attempt = response.headers.get('fanout-attempt') ?? undefined;
      return { status: response.status, body, retryAfter: response.headers.get('retry-after') };
    },
    retry,
  );
  if (answer.status !== 200) throw new ApiUnavailableError(`GET ${url.pathname} answered ${describeAnswer(answer)}`);
  try {
    return { item: JSON.parse(answer.body) as unknown, attempt: attempt && /^\d+$/.test(attempt) ? attempt : undefined };
  } catch {
    throw new ApiUnavailableError(`GET ${url.pathname} answered 200 with a body that is not JSON`);
  }
}

type CommandRun = { exitCode: number } | { spool: ResultSpool };

/** Spawns CMD, forwards signals to it, and waits; a non-zero end is already an exit code. */
async function runCommand(command: string[], input: { item: unknown; attempt?: string }, config: ExecConfig, io: ExecIo): Promise<CommandRun> {
  const [file, ...args] = command;
  const env: NodeJS.ProcessEnv = { ...(io.env ?? process.env), FANOUT_ITEM_INDEX: String(config.index) };
  if (input.attempt) env.FANOUT_ATTEMPT = input.attempt;
  // CMD needs the item, not the right to read and write every item of the batch
  delete env.FANOUT_TOKEN;
  // The handlers go in before the spawn: a signal that reached this wrapper after CMD started
  // but before its handler was installed would end the wrapper and leave CMD running without it.
  // (JavaScript handlers run on the event loop, so `child` is set by the time one runs.)
  let child: ChildProcessByStdio<Writable, Readable, null> | undefined;
  const forward = (signal: NodeJS.Signals) => {
    try {
      child?.kill(signal);
    } catch {
      // already gone
    }
  };
  for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
  child = spawn(file, args, {
    env,
    stdio: ['pipe', 'pipe', 'inherit'],
    // its own process group: a Ctrl-C at a terminal reaches it once, through the forwarding above
    detached: true,
  });
  const started = child;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null } | { spawnError: NodeJS.ErrnoException }>((resolve) => {
    started.once('error', (spawnError) => resolve({ spawnError }));
    started.once('close', (code, signal) => resolve({ code, signal }));
  });

  const spool = new ResultSpool(IN_MEMORY_RESULT_BYTES);
  child.stdin.on('error', () => {}); // EPIPE: CMD did not read its stdin, which is fine
  child.stdin.end(stdinPayload(input.item));
  const captured = pipeline(child.stdout, spool).then(
    () => undefined,
    (error: unknown) => error,
  );
  const exit = await exited;
  for (const signal of FORWARDED_SIGNALS) process.off(signal, forward);

  if ('spawnError' in exit) {
    child.stdout.destroy();
    await captured;
    await spool.cleanup();
    const notFound = exit.spawnError.code === 'ENOENT';
    io.say(`cannot run ${JSON.stringify(file)}: ${notFound ? 'command not found' : describeError(exit.spawnError)}`);
    return { exitCode: notFound ? EXEC_EXIT.notFound : EXEC_EXIT.notExecutable };
  }
  const captureError = await captured;
  if (exit.signal || exit.code !== 0) {
    await spool.cleanup();
    return { exitCode: exit.signal ? 128 + (constants.signals[exit.signal] ?? 0) : (exit.code ?? 1) };
  }
  if (captureError) {
    await spool.cleanup();
    io.say(`could not capture the output of ${JSON.stringify(file)}: ${describeError(captureError)}`);
    return { exitCode: EXEC_EXIT.failed };
  }
  return { spool };
}

/** PUT …/items/{index}/result, streamed; resolves with the API's `recorded`. */
async function putResult(config: ExecConfig, spool: ResultSpool, attempt: string | undefined, retry: Parameters<typeof withApiRetry>[2]): Promise<boolean> {
  const url = itemUrl(config, 'result');
  const captured = spool.captured();
  // one trailing newline dropped, as for command tasks (`echo` output is the word, not the line)
  let open: () => Readable;
  let length: number;
  if (captured.kind === 'inline') {
    const { data: all } = captured;
    const data = all.length > 0 && all[all.length - 1] === 0x0a ? all.subarray(0, -1) : all;
    open = () => Readable.from([data]);
    length = data.length;
  } else {
    length = captured.bytes;
    if (length > 0 && (await lastByte(captured.path, length)) === 0x0a) length--;
    const path = captured.path;
    const bytes = length;
    open = () => fileBody(path, bytes);
  }
  const headers: Record<string, string> = {
    authorization: `Bearer ${config.token}`,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(length),
  };
  if (attempt) headers['fanout-attempt'] = attempt;
  const answer = await withApiRetry(
    `PUT ${url.pathname}`,
    async () => {
      const { status, body, headers: answerHeaders } = await putStream(url, open, headers);
      const retryAfter = answerHeaders['retry-after'];
      return { status, body, retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter };
    },
    retry,
  );
  if (answer.status < 200 || answer.status > 299) throw new ApiUnavailableError(`PUT ${url.pathname} answered ${describeAnswer(answer)}`);
  try {
    return (JSON.parse(answer.body) as { recorded?: unknown }).recorded === true;
  } catch {
    return false;
  }
}

/** `{apiUrl}/v1/batches/{batchId}/items/{index}/{leaf}` */
function itemUrl(config: ExecConfig, leaf: 'input' | 'result'): URL {
  const base = config.apiUrl.endsWith('/') ? config.apiUrl : `${config.apiUrl}/`;
  return new URL(`v1/batches/${encodeURIComponent(config.batchId)}/items/${config.index}/${leaf}`, base);
}
