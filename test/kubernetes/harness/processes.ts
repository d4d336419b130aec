import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

/**
 * Long-running child processes for the test control plane (and the test kubelet's containers):
 * each in its own process group, so a stop reaches everything it started; its output appended
 * to a log file; and tied to this process, through a parent-death signal (`setpriv`, util-linux)
 * when this process is killed and through an `exit` hook when it exits normally.
 */
export interface ManagedProcess {
  name: string;
  pid: number;
  logFile: string;
  /** undefined while it runs; then "exited with code N" or "killed by SIGX" */
  exitInfo(): string | undefined;
  /** resolves with the exit code (null when killed by a signal) once it has exited */
  exited: Promise<number | null>;
  /** signal number of a kill, when it was killed by one */
  signal(): NodeJS.Signals | null;
  /** sends a signal to its whole process group */
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM to the group, SIGKILL after graceMs; resolves once it has exited */
  stop(graceMs?: number): Promise<void>;
}

export interface StartProcessOptions {
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) killGroup(child, 'SIGKILL');
  });
}

let setprivPath: string | null | undefined;

/** setpriv, if this is Linux and it is installed (Debian: util-linux, always there). */
function setpriv(): string | null {
  if (setprivPath === undefined) {
    const found = process.platform === 'linux' ? spawnSync('sh', ['-c', 'command -v setpriv'], { encoding: 'utf8' }) : undefined;
    setprivPath = found?.status === 0 ? found.stdout.trim() || null : null;
  }
  return setprivPath;
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // the group is already gone
  }
}

/** Starts `file` (an absolute path) with `args`; stdout and stderr go to opts.logFile. */
export function startProcess(name: string, file: string, args: string[], opts: StartProcessOptions): ManagedProcess {
  installExitHook();
  const fd = openSync(opts.logFile, 'a');
  const wrapper = setpriv();
  const child = wrapper
    ? spawn(wrapper, ['--pdeathsig', 'KILL', '--', file, ...args], { stdio: ['ignore', fd, fd], detached: true, env: opts.env, cwd: opts.cwd })
    : spawn(file, args, { stdio: ['ignore', fd, fd], detached: true, env: opts.env, cwd: opts.cwd });
  closeSync(fd);
  running.add(child);
  let info: string | undefined;
  let sig: NodeJS.Signals | null = null;
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      info = signal ? `killed by ${signal}` : `exited with code ${code}`;
      sig = signal;
      // Whatever the main process left behind in its group goes with it, as in a container.
      killGroup(child, 'SIGKILL');
      resolve(code);
    });
    child.once('error', (err) => {
      running.delete(child);
      info = `failed to start: ${err.message}`;
      resolve(127);
    });
  });
  const kill = (signal: NodeJS.Signals) => {
    if (info === undefined) killGroup(child, signal);
  };
  const stop = async (graceMs = 10_000) => {
    if (info !== undefined) return;
    kill('SIGTERM');
    const timer = setTimeout(() => kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  return { name, pid: child.pid ?? -1, logFile: opts.logFile, exitInfo: () => info, exited, signal: () => sig, kill, stop };
}

/** The last `lines` lines of a log file (empty if it cannot be read). */
export function tailFile(file: string, lines = 30): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.split('\n').slice(-lines - 1).join('\n').trimEnd();
  } catch {
    return '';
  }
}
