import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REDIS_NOT_FOUND, startLocalRedis, type LocalRedis } from '../../src/main/local-redis.js';
import { isAlive } from '../helpers/processes.js';

// startLocalRedis against the real /usr/bin/redis-server.

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const LOCAL_REDIS = fileURLToPath(new URL('../../src/main/local-redis.ts', import.meta.url));

let dataDir: string;
let started: LocalRedis[] = [];

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'fanout-redis-'));
});
afterEach(async () => {
  await Promise.all(started.map((r) => r.stop()));
  started = [];
  await rm(dataDir, { recursive: true, force: true });
});

/** Sends one RESP command and answers the first reply line. */
function command(url: string, ...args: string[]): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: hostname, port: Number(port) });
    let reply = '';
    socket.once('error', reject);
    socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (reply.includes('\r\n')) {
        socket.destroy();
        resolve(reply.split('\r\n', 1)[0]!);
      }
    });
  });
}

async function waitUntilDead(pid: number, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(50);
  }
  return !isAlive(pid);
}

async function serverPid(url: string): Promise<number> {
  // INFO's first line is a header; process_id comes a few lines later, so ask with CLIENT-free INFO server.
  const { hostname, port } = new URL(url);
  const info = await new Promise<string>((resolve, reject) => {
    const socket = createConnection({ host: hostname, port: Number(port) });
    let reply = '';
    socket.once('error', reject);
    socket.write('*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n');
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (/process_id:\d+\r\n/.test(reply)) {
        socket.destroy();
        resolve(reply);
      }
    });
  });
  return Number(/process_id:(\d+)/.exec(info)![1]);
}

describe('startLocalRedis', () => {
  it('starts a redis on 127.0.0.1 with an append-only file under <dataDir>/redis, and stops it', async () => {
    const infos: Array<{ obj: object; msg?: string }> = [];
    const redis = await startLocalRedis({ dataDir, logger: { info: (obj, msg) => infos.push({ obj, msg }) } });
    started.push(redis);
    expect(redis.url).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
    expect(await command(redis.url, 'PING')).toBe('+PONG');
    expect(await command(redis.url, 'SET', 'k', 'v')).toBe('+OK');
    expect(await command(redis.url, 'CONFIG', 'GET', 'appendonly')).toBe('*2');
    expect((await stat(join(dataDir, 'redis', 'appendonlydir'))).isDirectory()).toBe(true);
    expect(infos[0]).toMatchObject({ msg: 'local redis started', obj: { url: redis.url } });

    const pid = await serverPid(redis.url);
    await redis.stop();
    expect(isAlive(pid)).toBe(false);
    await redis.stop(); // twice is fine
  });

  it('keeps data across a restart on the same data dir (append-only file)', async () => {
    const first = await startLocalRedis({ dataDir });
    await command(first.url, 'SET', 'survives', 'yes');
    await first.stop();
    const second = await startLocalRedis({ dataDir });
    started.push(second);
    expect(await command(second.url, 'GET', 'survives')).toBe('$3');
  });

  it('runs two side by side on different ports', async () => {
    const [a, b] = await Promise.all([startLocalRedis({ dataDir: join(dataDir, 'a') }), startLocalRedis({ dataDir: join(dataDir, 'b') })]);
    started.push(a!, b!);
    expect(a!.url).not.toBe(b!.url);
  });

  it('fails with one line when redis-server is not on PATH', async () => {
    const path = process.env.PATH;
    process.env.PATH = dataDir; // an empty directory
    try {
      const err = await startLocalRedis({ dataDir }).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toBe(REDIS_NOT_FOUND);
      expect((err as Error).message).not.toContain('\n');
    } finally {
      process.env.PATH = path;
    }
  });

  it.each([
    ['exits normally without calling stop()', 'process.exit(0)'],
    ['is killed with SIGKILL', 'process.kill(process.pid, "SIGKILL")'],
  ])('does not outlive a parent that %s', async (_name, ending) => {
    const script = `
      const { startLocalRedis } = await import(${JSON.stringify(LOCAL_REDIS)});
      const redis = await startLocalRedis({ dataDir: ${JSON.stringify(dataDir)} });
      process.stdout.write(redis.url + '\\n');
      process.stdin.once('data', () => { ${ending}; });
    `;
    const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: REPO,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const url = await new Promise<string>((resolve, reject) => {
      parent.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString('utf8').trim()));
      parent.once('exit', (code) => reject(new Error(`parent exited early with ${code}`)));
    });
    const pid = await serverPid(url);
    expect(isAlive(pid)).toBe(true);
    const exited = new Promise((resolve) => parent.once('exit', resolve));
    parent.stdin.write('go\n');
    await exited;
    expect(await waitUntilDead(pid)).toBe(true);
  });
});
