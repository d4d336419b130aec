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
 * Helpers are started on first use, up to two per core while commands overlap. It runs every command in its own
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
  /**
   * resolves with the process group id once the command has run for a moment (50 ms), or with
   * undefined when it ended before (or never ran)
   */
  pid: Promise<number | undefined>;
  /** resolves when the command exited and all its output was delivered */
  exited: Promise<CommandExit>;
  /** sends `signal` to the command's process group */
  kill(signal: NodeJS.Signals): void;
}

interface Run {
  stdout: PassThrough;
  stderr: PassThrough;
  /** stdout bytes written while `stdout` was full, acknowledged together at its next 'drain' */
  owed: number;
  setPid(pid: number | undefined): void;
  finish(exit: CommandExit): void;
}

type HelperMessage =
  | { t: 'pid'; id: number; pid: number }
  | { t: 'out' | 'err'; id: number; data: Uint8Array }
  | { t: 'exit'; id: number; code: number | null; signal: NodeJS.Signals | null; error?: { code?: string; message: string }; out?: Uint8Array; err?: Uint8Array };

/** `code` of the spawn error of commands cut short because the helper itself exited */
export const HELPER_EXITED = 'EHELPER';

/**
 * Most helpers per worker process: two per core, at most 8 (each is a node process of ~40 MB).
 * A helper spends most of an item waiting, not computing: `spawn` blocks its event loop from the
 * fork until the child has exec'd, and every step of an item (the request, the exit, the output)
 * is a wake-up that waits for a core on a busy machine. Measured with 2,000 `rev` items at 4 at
 * once on 2 cores under load: 1, 2 and 4 helpers gave 101, 146 and 237 items/s. A new helper
 * starts only when every existing one is busy.
 */
const MAX_HELPERS = Math.max(1, Math.min(8, 2 * availableParallelism()));

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
    // The commands' base environment: the worker's as it is now, sent once rather than copied
    // out of process.env for every item (a copy costs ~0.2 ms of the worker's event loop).
    this.child.send({ t: 'env', env: { ...process.env } }, () => {});
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
      const more = (bytes: number) => {
        if (this.runs.has(m.id) && this.child.connected) this.child.send({ t: 'more', id: m.id, bytes }, () => {});
      };
      const bytes = m.data.byteLength;
      const flowing = run.stdout.write(Buffer.from(m.data.buffer, m.data.byteOffset, bytes));
      if (run.owed === 0 && flowing) return more(bytes);
      // one 'drain' listener however many chunks arrive while stdout is full
      if (run.owed === 0) {
        run.stdout.once('drain', () => {
          const owed = run.owed;
          run.owed = 0;
          more(owed);
        });
      }
      run.owed += bytes;
    }
    else if (m.t === 'err') run.stderr.write(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
    else if (m.t === 'exit') {
      this.runs.delete(m.id);
      // what a command printed before it ended, if little, comes with its exit
      if (m.out) run.stdout.write(Buffer.from(m.out.buffer, m.out.byteOffset, m.out.byteLength));
      if (m.err) run.stderr.write(Buffer.from(m.err.buffer, m.err.byteOffset, m.err.byteLength));
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

/**
 * Runs `file args` with `stdin` written to it and closed, in its own process group. Its
 * environment is the worker's (as it was when the helper started) with `env` added.
 */
export function spawnCommand(file: string, args: string[], env: Record<string, string>, stdin: string): SpawnedCommand {
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
  runs.set(id, { stdout, stderr, owed: 0, setPid, finish });
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
