import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A private redis-server for `fanout up` when no REDIS_URL is configured: bound to 127.0.0.1 on
 * a free port, its append-only file under `<dataDir>/redis`, and tied to this process so it
 * never outlives it (a SIGTERM on normal exit, and on Linux a parent-death signal through
 * `setpriv` so even a SIGKILLed parent takes it down).
 */

export interface LocalRedis {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  /** SIGTERM, then wait for exit (SIGKILL after a grace period); safe to call twice */
  stop(): Promise<void>;
}

export interface LocalRedisOptions {
  dataDir: string;
  logger?: { info(obj: object, msg?: string): void };
  /** how long to wait for the first PONG */
  startTimeoutMs?: number;
}

export const REDIS_NOT_FOUND = 'redis-server not found: install it with "apt-get install -y redis-server" or set REDIS_URL';

const STOP_GRACE_MS = 10_000;
/** A port found free can be taken before redis binds it: try again on a new one. */
const PORT_ATTEMPTS = 3;

/** Starts redis-server and resolves once it answers PING. */
export async function startLocalRedis(opts: LocalRedisOptions): Promise<LocalRedis> {
  const redisServer = await findOnPath('redis-server');
  if (!redisServer) throw new Error(REDIS_NOT_FOUND);
  // setpriv (util-linux) makes the kernel signal redis if this process dies without cleanup.
  const setpriv = process.platform === 'linux' ? await findOnPath('setpriv') : undefined;
  const dir = join(opts.dataDir, 'redis');
  await mkdir(dir, { recursive: true });

  let lastError: Error | undefined;
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const port = await findFreePort();
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--save', ''];
    // With a parent-death signal, redis gets its own process group: a Ctrl-C meant for fanout
    // then leaves it up while fanout drains its workers, and stop() ends it afterwards.
    const child = setpriv
      ? spawn(setpriv, ['--pdeathsig', 'TERM', '--', redisServer, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
      : spawn(redisServer, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const handle = superviseChild(child);
    try {
      await waitForPong(port, handle, opts.startTimeoutMs ?? 15_000);
    } catch (err) {
      await handle.stop();
      lastError = err as Error;
      if (handle.output().some((line) => /address already in use/i.test(line))) continue;
      throw lastError;
    }
    const url = `redis://127.0.0.1:${port}`;
    opts.logger?.info({ url, pid: child.pid, dir }, 'local redis started');
    return { url, stop: handle.stop };
  }
  throw lastError ?? new Error('redis-server did not start');
}

interface SupervisedChild {
  exited: () => boolean;
  /** one line describing why the child ended, from its last output line */
  exitReason: () => string;
  /** the child's last output lines */
  output: () => string[];
  stop: () => Promise<void>;
}

const KEPT_LINES = 20;

/**
 * Tracks the child's exit and last output, and kills it when this process exits. The child
 * and its pipes are unref'd: a running redis never keeps fanout alive by itself.
 */
function superviseChild(child: ChildProcess): SupervisedChild {
  const lines: string[] = [];
  let exitInfo: string | undefined;
  const remember = (chunk: Buffer): void => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim()) lines.push(line.trim());
    }
    lines.splice(0, Math.max(0, lines.length - KEPT_LINES));
  };
  // Keep draining both pipes, or redis blocks once a pipe buffer fills.
  for (const stream of [child.stdout, child.stderr]) {
    stream?.on('data', remember);
    (stream as unknown as { unref?: () => void } | null)?.unref?.();
  }
  child.unref();
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = signal ? `killed by ${signal}` : `exited with code ${code}`;
      resolve();
    });
    child.once('error', (err) => {
      exitInfo = err.message;
      resolve();
    });
  });
  const killOnExit = (): void => {
    child.kill('SIGTERM');
  };
  process.once('exit', killOnExit);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      process.removeListener('exit', killOnExit);
      if (exitInfo !== undefined) return;
      child.kill('SIGTERM');
      // This timer also keeps the event loop alive until redis is gone.
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    })();
    return stopping;
  };
  return {
    exited: () => exitInfo !== undefined,
    exitReason: () => {
      const last = lines[lines.length - 1]?.replace(/^\d+:[A-Z] .*?[#*.-] /, '');
      return `${exitInfo ?? 'running'}${last ? `: ${last}` : ''}`;
    },
    output: () => [...lines],
    stop,
  };
}

async function waitForPong(port: number, child: SupervisedChild, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exited()) throw new Error(`redis-server ${child.exitReason()}`);
    // LOADING replies (an append-only file being read) and refused connections mean "not yet".
    if ((await ping(port)) === '+PONG') return;
    if (Date.now() > deadline) throw new Error(`redis-server did not answer PING on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** One RESP PING on a fresh connection; answers the first reply line, or undefined. */
function ping(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const done = (value: string | undefined): void => {
      socket.destroy();
      resolve(value);
    };
    socket.setTimeout(1000, () => done(undefined));
    socket.once('error', () => done(undefined));
    socket.once('connect', () => socket.write('*1\r\n$4\r\nPING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      const end = reply.indexOf('\r\n');
      if (end >= 0) done(reply.slice(0, end));
    });
  });
}

/** A TCP port free on 127.0.0.1 right now (the caller must cope with losing a race for it). */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The first executable `name` on PATH. */
async function findOnPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}
