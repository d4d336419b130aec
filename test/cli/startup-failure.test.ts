import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { spawnFanout } from '../helpers/processes.js';

/**
 * A server command that cannot start (its port is taken) says so in one line and exits 1 at
 * once, instead of an unhandled 'error' stack trace or a process that stays up half-started.
 */
describe('fanout up/api: start-up failure', () => {
  let dataDir: string;
  let blocker: Server;
  let port: number;
  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'fanout-startup-'));
    blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    port = (blocker.address() as { port: number }).port;
  });
  afterEach(async () => {
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
    await rm(dataDir, { recursive: true, force: true });
  });

  const waitExit = (p: ReturnType<typeof spawnFanout>) =>
    new Promise<number | null>((resolve) => {
      if (p.child.exitCode !== null) resolve(p.child.exitCode);
      else p.child.once('exit', (code) => resolve(code));
    });

  it.each([
    ['api with REDIS_URL', ['api'], () => ({ REDIS_URL: inject('redisUrl') })],
    ['up with its own local redis-server', ['up'], () => ({ REDIS_URL: '' })],
  ])('%s on a port in use: one line, exit 1, nothing left running', async (_name, role, env) => {
    const started = Date.now();
    const p = spawnFanout([...role, '--port', String(port), '--data-dir', dataDir, '--database', join(dataDir, 'fanout.db')], { ...env(), FANOUT_API_KEY: 'k' });
    const code = await waitExit(p);
    expect(code, p.output()).toBe(1);
    expect(Date.now() - started).toBeLessThan(20_000);
    const plain = p.output().split('\n').filter((l) => l.startsWith('fanout:'));
    expect(plain).toEqual([`fanout: cannot listen on 127.0.0.1:${port}: the address is already in use`]);
    expect(p.output()).not.toMatch(/Unhandled 'error' event|Node\.js v\d/);
    // nothing of it left running: no redis-server with its files under the data directory
    await expect.poll(() => spawnSync('pgrep', ['-f', dataDir]).status, { timeout: 5000 }).toBe(1);
  }, 60_000);
});
