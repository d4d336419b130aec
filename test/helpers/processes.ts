import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Real `fanout` child processes (`node bin/fanout.js …`), for tests that kill them. */

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const FANOUT_BIN = path.join(REPO, 'bin/fanout.js');

export interface FanoutProcess {
  child: ChildProcess;
  /** everything the process wrote to stdout and stderr so far */
  output(): string;
  /** resolves with the first match of `re` in the output */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

export function spawnFanout(args: string[], env: Record<string, string | undefined> = {}): FanoutProcess {
  const child = spawn(process.execPath, [FANOUT_BIN, ...args], {
    cwd: REPO,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const l of listeners) l();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    waitFor(re, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = out.match(re);
          if (m) {
            listeners.delete(check);
            clearTimeout(timer);
            resolve(m);
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`timed out waiting for ${re} in output:\n${out.slice(-2000)}`));
        }, timeoutMs);
        listeners.add(check);
        check();
      });
    },
    async kill(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
}

/** Starts `fanout up` on a free port and waits until it listens; returns its URL. */
export async function startFanoutUp(env: Record<string, string | undefined>, args: string[] = []): Promise<FanoutProcess & { url: string }> {
  const p = spawnFanout(['up', '--port', '0', ...args], env);
  const m = await p.waitFor(/listening on (http:\/\/\S+)/);
  return Object.assign(p, { url: m[1] });
}

/** Whether a process with this pid exists (signal 0 checks without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
