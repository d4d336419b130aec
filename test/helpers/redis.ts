import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { findFreePort as freePort } from '../../src/main/local-redis.js';

/**
 * A real redis-server for tests (Debian's package; .ci/run installs it). Fault tests restart
 * it on the same port, so the port is kept across stop()/start().
 */
export interface TestRedis {
  url: string;
  port: number;
  start(): Promise<void>;
  /** SIGKILL: an abrupt crash, no save */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export { freePort };

async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.write('PING\r\n');
      });
      s.once('data', (d) => {
        s.destroy();
        resolve(d.toString().startsWith('+PONG'));
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`redis on port ${port} did not answer PING within ${timeoutMs} ms`);
}

export async function startTestRedis(opts: { persist?: boolean } = {}): Promise<TestRedis> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-redis-'));
  let child: ChildProcess | undefined;
  const start = async () => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', opts.persist ? 'yes' : 'no'];
    child = spawn('redis-server', args, { stdio: 'ignore' });
    await waitForPort(port);
  };
  const end = async (signal: NodeJS.Signals) => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill(signal);
    await exited;
  };
  await start();
  return { url: `redis://127.0.0.1:${port}`, port, start, kill: () => end('SIGKILL'), stop: () => end('SIGTERM') };
}
