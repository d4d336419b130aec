import { open, stat } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import type { Terminated } from './pod-status.js';
import { startProcess, type ManagedProcess } from './processes.js';

/**
 * One run of one container of the test kubelet: a local process in its own process group, its
 * output appended to the container's log file, its end turned into a container termination the
 * way a container runtime reports it (128 + signal when killed; for FallbackToLogsOnError, the
 * end of this run's output as the message when it failed).
 */
export interface ContainerLaunch {
  /** for messages: namespace/pod/container */
  name: string;
  exe: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  logFile: string;
  fallbackToLogsOnError: boolean;
  /** called once the process runs (to track it and report it running) */
  onStart: (proc: ManagedProcess, containerID: string) => void;
}

/** FallbackToLogsOnError keeps at most this much of the output's end */
const MESSAGE_MAX_LINES = 80;
const MESSAGE_MAX_BYTES = 2048;

/** Runs the process to its end; answers its termination. */
export async function runContainerProcess(launch: ContainerLaunch, startedAt: string): Promise<Terminated> {
  const offset = await fileSize(launch.logFile);
  const proc = startProcess(launch.name, launch.exe, launch.args, { logFile: launch.logFile, env: launch.env, cwd: launch.cwd });
  const containerID = `fanout-test://${proc.pid}`;
  launch.onStart(proc, containerID);
  const code = await proc.exited;
  const signal = proc.signal();
  const signalNumber = signal ? (osConstants.signals[signal] ?? 9) : undefined;
  const exitCode = code ?? 128 + (signalNumber ?? 9);
  const t: Terminated = { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error', startedAt, finishedAt: new Date().toISOString(), containerID };
  if (signalNumber !== undefined) t.signal = signalNumber;
  if (exitCode !== 0 && launch.fallbackToLogsOnError) t.message = await outputTail(launch.logFile, offset);
  return t;
}

export async function isDir(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

async function fileSize(path: string): Promise<number> {
  return stat(path).then(
    (s) => s.size,
    () => 0,
  );
}

/** The end of what was written to `file` since `offset`: at most 80 lines and 2048 bytes. */
async function outputTail(file: string, offset: number): Promise<string> {
  const size = await fileSize(file);
  const start = Math.max(offset, size - MESSAGE_MAX_BYTES);
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(Math.max(0, size - start));
    await fh.read(buf, 0, buf.length, start);
    return buf.toString('utf8').split('\n').slice(-MESSAGE_MAX_LINES - 1).join('\n').trimEnd();
  } finally {
    await fh.close();
  }
}
