import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { PassThrough } from 'node:stream';
import { SPAWNER_HELPER_SOURCE } from './spawner-helper-source.js';

/**
 * Starts command processes from a small helper process instead of from the worker itself.
 *
 * Why: `spawn` forks the calling process and blocks its event loop until the child has exec'd;
 * the fork's cost grows with the caller's memory. Measured with `--cpu-prof` on `fanout up`
 * (API, dispatcher, store and worker in one process) running short command items, 42% of its
 * CPU was in `ChildProcess.spawn`, about 12 ms per item with everything else waiting; a bare
 * node process of ~50 MB spawns in about 5 ms. The helper is such a process, does nothing else,
 * and runs on the other core while the worker goes on.
 *
 * Helpers are started on first use, up to one per core while commands overlap. It runs every command in its own
 * process group, as the worker did; when the worker process exits, even by SIGKILL, the
 * helper's IPC channel closes and it SIGKILLs every group it still has, then exits. If the
 * helper itself dies, the commands it was running fail (their output is gone) and the next
 * command starts a new helper.
 */

export type CommandExit =
  | { code: number | null; signal: NodeJS.Signals | null }
  | { spawnError: Error & { code?: string } };

export interface SpawnedCommand {
  /** the command's stdout */
  stdout: PassThrough;
  /** the command's stderr */
  stderr: PassThrough;
  /** resolves with the process group id once the command runs (undefined if it never ran) */
  pid: Promise<number | undefined>;
  /** resolves when the command exited and all its output was delivered */
  exited: Promise<CommandExit>;
  /** sends `signal` to the command's process group */
  kill(signal: NodeJS.Signals): void;
}

interface Run {
  stdout: PassThrough;
  stderr: PassThrough;
  setPid(pid: number | undefined): void;
  finish(exit: CommandExit): void;
}

type HelperMessage =
  | { t: 'pid'; id: number; pid: number }
  | { t: 'out' | 'err'; id: number; data: Uint8Array }
  | { t: 'exit'; id: number; code: number | null; signal: NodeJS.Signals | null; error?: { code?: string; message: string } };

/** `code` of the spawn error of commands cut short because the helper itself exited */
export const HELPER_EXITED = 'EHELPER';

/**
 * Most helpers per worker process: spawning is CPU work in the helper (~5 ms each), so one per
 * core lets spawns proceed in parallel. A new helper starts only when every existing one is busy.
 */
const MAX_HELPERS = Math.max(1, Math.min(4, availableParallelism()));

let nextId = 1;

/** One helper process and the commands it runs. */
class Helper {
  readonly runs = new Map<number, Run>();
  readonly child: ChildProcess;

  constructor(private readonly onExit: (helper: Helper) => void) {
    this.child = spawn(process.execPath, ['--max-old-space-size=64', '-e', SPAWNER_HELPER_SOURCE], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
      // its own process group: a Ctrl-C aimed at the worker must not cut the commands it drains
      detached: true,
      // the helper must not load hooks meant for the worker (NODE_OPTIONS=--import …)
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    this.child.on('message', (m: HelperMessage) => this.onMessage(m));
    this.child.on('error', () => {}); // seen as 'exit' below, or by the send that failed
    this.child.once('exit', (code, signal) => {
      this.onExit(this);
      const error = Object.assign(new Error(`the command spawner helper exited (${signal ?? `code ${code}`})`), { code: HELPER_EXITED });
      for (const run of this.runs.values()) run.finish({ spawnError: error });
      this.runs.clear();
    });
  }

  private onMessage(m: HelperMessage): void {
    const run = this.runs.get(m.id);
    if (!run) return;
    if (m.t === 'pid') run.setPid(m.pid);
    // 'more' tells the helper how much was taken; past 1 MiB untaken it pauses the command's
    // stdout, so a command writing faster than the result spool stores it waits, as on a pipe
    else if (m.t === 'out') {
      const bytes = m.data.byteLength;
      const more = () => {
        if (this.runs.has(m.id) && this.child.connected) this.child.send({ t: 'more', id: m.id, bytes }, () => {});
      };
      if (run.stdout.write(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength))) more();
      else run.stdout.once('drain', more);
    }
    else if (m.t === 'err') run.stderr.write(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
    else if (m.t === 'exit') {
      this.runs.delete(m.id);
      run.finish(m.error ? { spawnError: Object.assign(new Error(m.error.message), { code: m.error.code }) } : { code: m.code, signal: m.signal });
      this.refWhileBusy();
    }
  }

  /** A helper keeps the worker's event loop alive only while it runs commands. */
  refWhileBusy(): void {
    const channel = this.child.channel as { ref(): void; unref(): void } | undefined;
    if (this.runs.size > 0) {
      this.child.ref();
      channel?.ref();
    } else {
      this.child.unref();
      channel?.unref();
    }
  }
}

const helpers: Helper[] = [];

/** The least busy helper; a new one when all are busy and the pool has room. */
function pickHelper(): Helper {
  let best: Helper | undefined;
  for (const h of helpers) if (!best || h.runs.size < best.runs.size) best = h;
  if (best && (best.runs.size === 0 || helpers.length >= MAX_HELPERS)) return best;
  const helper = new Helper((gone) => {
    const k = helpers.indexOf(gone);
    if (k >= 0) helpers.splice(k, 1);
  });
  helpers.push(helper);
  return helper;
}

/** Runs `file args` with `env`, `stdin` written to it and closed, in its own process group. */
export function spawnCommand(file: string, args: string[], env: NodeJS.ProcessEnv, stdin: string): SpawnedCommand {
  const helper = pickHelper();
  const id = nextId++;
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let setPid!: (pid: number | undefined) => void;
  const pid = new Promise<number | undefined>((resolve) => (setPid = resolve));
  let finish!: (exit: CommandExit) => void;
  const exited = new Promise<CommandExit>((resolve) => (finish = resolve)).then((exit) => {
    setPid(undefined); // no-op when the pid came
    stdout.end();
    stderr.end();
    return exit;
  });
  const { runs, child: target } = helper;
  runs.set(id, { stdout, stderr, setPid, finish });
  target.send({ t: 'run', id, file, args, env, stdin }, (error) => {
    if (error && runs.delete(id)) finish({ spawnError: error });
  });
  helper.refWhileBusy();
  return {
    stdout,
    stderr,
    pid,
    exited,
    kill(signal) {
      if (runs.has(id) && target.connected) target.send({ t: 'kill', id, signal }, () => {});
    },
  };
}
