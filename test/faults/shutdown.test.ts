import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { expectAllSucceededOnce, newCluster, scratchFiles, waitUntil, type Cluster } from '../helpers/cluster.js';
import type { FanoutProcess } from '../helpers/processes.js';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';

/**
 * Bounded shutdown: after SIGTERM every process is gone within FANOUT_SHUTDOWN_GRACE_SECONDS
 * whatever its dependencies do (Redis stopped, the database locked by another connection), says
 * in one line what it abandoned, and loses nothing: once the dependency and a new process are
 * back, the batch completes exactly once. This file has its own redis-server, since it stops it.
 */

const GRACE_S = 4;
/** start-up of a child and scheduling on a loaded machine */
const MARGIN_MS = 2500;
/** better-sqlite3 blocks the event loop for up to busy_timeout (src/store/sqlite/sqlite-store.ts) on a locked database */
const BUSY_TIMEOUT_MS = 5000;
const TASK = ['--task', 'work=sleep 1; cat'];

/** SIGTERM; resolves with the exit code, the time to exit and the process's final log line. */
async function sigterm(p: FanoutProcess): Promise<{ code: number | null; ms: number; last: any }> {
  const started = Date.now();
  const code = await p.kill('SIGTERM');
  const ms = Date.now() - started;
  const lines = p.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  const last = lines.filter((l) => l.msg === 'stopped' || l.msg === 'shutdown grace period over: exiting with work left');
  expect(last, `one final line in:\n${p.output().slice(-3000)}`).toHaveLength(1);
  return { code, ms, last: last[0] };
}

/**
 * Takes the store's write lock from another connection until the returned function is called:
 * SQLite's exclusive lock on the file, or on PostgreSQL an EXCLUSIVE table lock on batches and
 * items (reads go on, every write waits).
 */
async function holdWriteLock(databaseUrl: string): Promise<() => Promise<void>> {
  if (!/^postgres(ql)?:/.test(databaseUrl)) {
    const db = new Database(databaseUrl);
    db.exec('BEGIN EXCLUSIVE');
    return async () => {
      db.exec('ROLLBACK');
      db.close();
    };
  }
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  await client.query('BEGIN');
  await client.query('LOCK TABLE batches, items IN EXCLUSIVE MODE');
  return async () => {
    await client.query('ROLLBACK');
    await client.end();
  };
}

describe('faults: bounded shutdown', () => {
  let redis: TestRedis;
  let c: Cluster;
  let down = false;
  beforeAll(async () => {
    redis = await startTestRedis({ persist: true });
  });
  afterEach(async () => {
    await c?.stopAll();
    if (down) await redis.start();
    down = false;
  });
  afterAll(async () => redis?.stop());

  const env = { FANOUT_SHUTDOWN_GRACE_SECONDS: String(GRACE_S), LOG_LEVEL: 'info' };

  it('SIGTERM to fanout up mid-batch while Redis is stopped: gone within the grace, says so, and the batch completes exactly once later', { timeout: 180_000 }, async () => {
    c = newCluster(redis.url);
    const up = await c.up(TASK, env);
    const items = Array.from({ length: 16 }, (_, i) => `item-${i}`);
    const batch = await c.client.createBatch({ task: 'work', items, parallelism: 4, retry: { backoffLimitPerItem: 0 } });
    await waitUntil('items running', async () => (await c.client.getBatch(batch.id)).status.counts.running >= 1, 60_000, 50);
    await redis.stop();
    down = true;

    const { code, ms, last } = await sigterm(up);
    expect(ms).toBeLessThan(GRACE_S * 1000 + MARGIN_MS);
    expect(code).toBe(0);
    expect(last.abandoned.redis).toBe('unreachable');

    await redis.start();
    down = false;
    await c.up(TASK, env);
    const done = await c.client.waitForPhase(batch.id, undefined, 120_000);
    expect(done.status.phase).toBe('Succeeded');
    // nothing was lost, nothing ran twice in the record, and no attempt was spent by the shutdown
    const all = await expectAllSucceededOnce(c.client, batch.id, items);
    for (const item of all) expect(item.attempts.map((a: any) => a.outcome)).toEqual(['succeeded']);
  });

  it('SIGTERM to a worker whose items outlast the grace (Redis up): they are cut and handed back, no attempt spent', { timeout: 180_000 }, async () => {
    c = newCluster(redis.url);
    await c.up(['--task', 'other=true'], env);
    const slow = await c.worker(['work=touch "$SCRATCH/started.$FANOUT_ITEM_INDEX"; sleep 60'], env);
    const items = Array.from({ length: 3 }, (_, i) => `item-${i}`);
    const batch = await c.client.createBatch({ task: 'work', items, parallelism: 3, retry: { backoffLimitPerItem: 0 } });
    await waitUntil('all items started on the worker', () => scratchFiles(c, 'started.').length === 3, 60_000, 50);

    const { code, ms, last } = await sigterm(slow);
    expect(ms).toBeLessThan(GRACE_S * 1000 + MARGIN_MS);
    expect(code).toBe(0);
    // cut and reported `returned`: nothing left behind
    expect(last.abandoned).toEqual({});
    expect(slow.output()).toMatch(/"runningItems":3,"handedBack":true,"msg":"shutdown grace over: running items cut"/);

    await c.worker(['work=cat'], env);
    const done = await c.client.waitForPhase(batch.id, undefined, 120_000);
    expect(done.status.phase).toBe('Succeeded');
    // backoffLimitPerItem 0: a cut counted as a failed attempt would have failed the batch
    await expectAllSucceededOnce(c.client, batch.id, items);
  });

  it('a command that ignores SIGTERM does not outlive its worker: the grace runs out, the worker exits, the command is killed with it', { timeout: 180_000 }, async () => {
    c = newCluster(redis.url);
    await c.up(['--task', 'other=true'], env);
    // SIG_IGN is inherited through exec: sleep ignores SIGTERM too, so only a SIGKILL ends it
    const stubborn = await c.worker(['work=trap "" TERM; echo $$ > "$SCRATCH/pid.$FANOUT_ITEM_INDEX"; sleep 60'], env);
    await c.client.createBatch({ task: 'work', items: ['a'], parallelism: 1, retry: { backoffLimitPerItem: 0 } });
    await waitUntil('the command started', () => scratchFiles(c, 'pid.').length === 1, 60_000, 50);
    const pid = Number(fs.readFileSync(path.join(c.scratch, scratchFiles(c, 'pid.')[0]), 'utf8'));
    expect(isAlive(pid)).toBe(true);

    const { ms } = await sigterm(stubborn);
    expect(ms).toBeLessThan(GRACE_S * 1000 + MARGIN_MS);
    await waitUntil('the command is gone', () => !isAlive(pid), 5000, 50);
  });

  it('SIGTERM to fanout api, dispatcher and worker while Redis is stopped: each is gone within the grace', { timeout: 180_000 }, async () => {
    c = newCluster(redis.url);
    const procs = [await c.api(env), await c.dispatcher(env), await c.worker([TASK[1]], env)];
    await redis.stop();
    down = true;
    // let every client see the connection drop: a QUIT sent just before that counts as a clean close
    await sleep(1000);
    const stops = await Promise.all(procs.map((p) => sigterm(p)));
    for (const [i, { code, ms, last }] of stops.entries()) {
      const role = ['api', 'dispatcher', 'worker'][i];
      expect(ms, role).toBeLessThan(GRACE_S * 1000 + MARGIN_MS);
      expect(code, role).toBe(0);
      expect(last.abandoned.redis, `${role}: ${procs[i].output().slice(-1500)}`).toBe('unreachable');
    }
  });

  it('SIGTERM while another connection holds the database write lock past the grace, items still running: gone in time, the batch completes exactly once later', { timeout: 180_000 }, async () => {
    c = newCluster(redis.url);
    const up = await c.up(['--task', 'work=touch "$SCRATCH/started.$FANOUT_ITEM_INDEX"; sleep 30; cat'], env);
    const items = Array.from({ length: 6 }, (_, i) => `item-${i}`);
    const batch = await c.client.createBatch({ task: 'work', items, parallelism: 3, retry: { backoffLimitPerItem: 0 } });
    await waitUntil('items started', () => scratchFiles(c, 'started.').length === 3, 60_000, 50);

    const release = await holdWriteLock(c.env.DATABASE_URL!);
    let stop: Awaited<ReturnType<typeof sigterm>>;
    try {
      // the dispatcher is now stuck in statements that wait for the lock
      await sleep(1500);
      stop = await sigterm(up);
    } finally {
      await release();
    }
    // the hard deadline may fire late by one blocked statement, never later
    expect(stop.ms).toBeLessThan(GRACE_S * 1000 + BUSY_TIMEOUT_MS + MARGIN_MS);
    expect([0, 1]).toContain(stop.code);
    // the cut items were handed back through Redis, which is up
    expect(up.output()).toMatch(/"runningItems":3,"handedBack":true/);

    await c.up(['--task', 'work=cat'], env);
    const done = await c.client.waitForPhase(batch.id, undefined, 120_000);
    expect(done.status.phase).toBe('Succeeded');
    await expectAllSucceededOnce(c.client, batch.id, items);
  });
});

/** Whether a process (or process group leader) still exists. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
