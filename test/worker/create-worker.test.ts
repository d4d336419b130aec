import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { allItems, expectAllSucceededOnce, waitUntil } from '../helpers/cluster.js';
import { REPO } from '../helpers/processes.js';
import { startTestService, type TestService } from '../helpers/service.js';

/**
 * `createWorker` from `fanout/worker`, end to end: a real service (API + dispatcher, no worker of
 * its own) and worker child processes running test/worker/fixtures/function-worker.ts, a small
 * program written against the public API. Batches go in over HTTP; what the tasks saw comes back
 * through the fixture's event file.
 */

const FIXTURE = path.join(REPO, 'test/worker/fixtures/function-worker.ts');

let svc: TestService;
let dir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  svc = await startTestService({ redisUrl: inject('redisUrl'), workers: false });
});
afterAll(async () => {
  await svc?.close();
});
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-create-worker-'));
});
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

interface TaskEvent {
  event: 'start' | 'abort' | 'finish';
  batchId: string;
  index: number;
  attempt: number;
  worker: string;
  at: number;
  reason?: string;
}

/**
 * Starts a worker process named `name`; resolves once it printed `ready`. Leases are short for
 * every worker of a queue: BullMQ's stalled check runs at most once per interval per queue, and
 * a killed worker's longer interval would hold back the rescuer's.
 */
async function spawnWorker(name: string, extra: Record<string, unknown> = {}): Promise<ChildProcess> {
  const config = { redisUrl: svc.redisUrl, prefix: svc.prefix, apiUrl: svc.url, events: path.join(dir, 'events.ndjson'), name, leaseMs: 1000, ...extra };
  const child = spawn(process.execPath, ['--conditions=fanout-source', '--import', 'tsx', FIXTURE, JSON.stringify(config)], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('ready\n')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`worker ${name} exited with ${code} before it was ready:\n${output}`)));
  });
  return child;
}

function events(batchId?: string): TaskEvent[] {
  const file = path.join(dir, 'events.ndjson');
  if (!fs.existsSync(file)) return [];
  const all = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as TaskEvent);
  return batchId ? all.filter((e) => e.batchId === batchId) : all;
}

describe('createWorker through a worker process', () => {
  it('runs a batch submitted over HTTP and records every result once', async () => {
    await spawnWorker('w1', { concurrency: 4 });
    const items = Array.from({ length: 25 }, (_, n) => ({ n }));
    const batch = await svc.client.createBatch({ task: 'double', items, parallelism: 8 });
    const done = await svc.client.waitForPhase(batch.id);
    expect(done.status.phase).toBe('Succeeded');
    const all = await expectAllSucceededOnce(svc.client, batch.id, items.map(({ n }) => ({ n: n * 2 })));
    for (const item of all) expect(item.attempts).toEqual([expect.objectContaining({ attempt: 1, outcome: 'succeeded', worker: 'w1' })]);
    // the function ran once per item, with the item's own context
    const starts = events(batch.id);
    expect(starts.map((e) => e.index).sort((a, b) => a - b)).toEqual(items.map((_, i) => i));
    expect(starts.every((e) => e.attempt === 1)).toBe(true);
  });

  it('NonRetriableError fails at once, RetryAfterError waits, other errors follow the retry policy', async () => {
    await spawnWorker('w1');
    const batch = await svc.client.createBatch({
      task: 'steer',
      items: [
        { mode: 'fatal', n: 7 },
        { mode: 'later', ms: 1500 },
        { mode: 'flaky', failUntil: 2 },
        { mode: 'flaky', failUntil: 99 },
      ],
      parallelism: 4,
      retry: { backoffLimitPerItem: 2, backoffSeconds: 0 },
    });
    const done = await svc.client.waitForPhase(batch.id);
    expect(done.status.phase).toBe('Failed');
    const [fatal, later, flaky, hopeless] = await allItems(svc.client, batch.id);

    expect(fatal).toMatchObject({ status: 'failed', error: expect.stringContaining('no such image: 7') });
    expect(fatal.attempts).toHaveLength(1);

    expect(later).toMatchObject({ status: 'succeeded', result: { attempt: 2 } });
    expect(later.attempts.map((a: any) => a.outcome)).toEqual(['failed', 'succeeded']);
    expect(later.attempts[0].error).toContain('rate limited');
    const [first, second] = events(batch.id).filter((e) => e.index === 1 && e.event === 'start');
    expect(second.at - first.at).toBeGreaterThanOrEqual(1400);

    expect(flaky).toMatchObject({ status: 'succeeded', result: { attempt: 3 } });
    expect(flaky.attempts.map((a: any) => a.outcome)).toEqual(['failed', 'failed', 'succeeded']);
    expect(flaky.attempts[1].error).toContain('flaky attempt 2');

    // backoffLimitPerItem 2: the first attempt and two retries, then the item fails
    expect(hopeless.status).toBe('failed');
    expect(hopeless.attempts.map((a: any) => a.attempt)).toEqual([1, 2, 3]);
  });

  it('aborts ctx.signal on the item timeout and on cancel', async () => {
    await spawnWorker('w1');
    const timed = await svc.client.createBatch({ task: 'steer', items: [{ mode: 'hang' }], itemTimeoutSeconds: 1, retry: { backoffLimitPerItem: 0 } });
    const cancelled = await svc.client.createBatch({ task: 'steer', items: [{ mode: 'hang' }] });

    await waitUntil('the second item running', () => events(cancelled.id).some((e) => e.event === 'start'), 20_000, 50);
    const cancel = await svc.client.json('POST', `/v1/batches/${cancelled.id}/cancel`);
    expect(cancel.status).toBeLessThan(300);
    const abort = await waitUntil('the cancelled item aborted', () => events(cancelled.id).find((e) => e.event === 'abort'), 20_000, 50);
    expect(abort.reason).toBe('BatchStoppedError');
    expect((await svc.client.waitForPhase(cancelled.id)).status.phase).toBe('Cancelled');

    expect((await svc.client.waitForPhase(timed.id)).status.phase).toBe('Failed');
    expect(events(timed.id).find((e) => e.event === 'abort')?.reason).toBe('ItemTimeoutError');
    const [item] = await allItems(svc.client, timed.id);
    expect(item.attempts).toEqual([expect.objectContaining({ outcome: 'failed', condition: 'Timeout' })]);
    // whatever the function returned after its signal aborted is not a result
    expect(item.result ?? null).toBeNull();
  });

  it('a worker SIGKILLed mid-item loses nothing: another one finishes it once the lease ends, each result once', async () => {
    const doomed = await spawnWorker('doomed', { concurrency: 2 });
    const items = [0, 1, 2].map((n) => ({ mode: 'stuckOn', worker: 'doomed', n }));
    const batch = await svc.client.createBatch({ task: 'steer', items, parallelism: 3, retry: { backoffLimitPerItem: 0 } });
    await waitUntil('doomed running two items', () => events(batch.id).filter((e) => e.worker === 'doomed').length === 2, 20_000, 25);
    doomed.kill('SIGKILL');
    await once(doomed, 'exit');
    const killedAt = Date.now();

    await spawnWorker('rescuer');
    expect((await svc.client.waitForPhase(batch.id)).status.phase).toBe('Succeeded');
    const all = await expectAllSucceededOnce(svc.client, batch.id, [{ n: 0 }, { n: 1 }, { n: 2 }]);
    for (const item of all) {
      expect(item.attempts).toEqual([expect.objectContaining({ attempt: 1, outcome: 'succeeded', worker: 'rescuer' })]);
      expect(Date.parse(item.attempts[0].finishedAt)).toBeGreaterThan(killedAt);
    }
    // picked up once the 1 s lease lapsed, not after some long timeout
    expect(Date.now() - killedAt).toBeLessThan(10_000);
    // the rescuer ran each item exactly once
    const rescued = events(batch.id).filter((e) => e.worker === 'rescuer');
    expect(rescued.map((e) => e.index).sort()).toEqual([0, 1, 2]);
  });

  it('SIGTERM stops gracefully: the running item finishes, unstarted ones go back uncounted', async () => {
    const graceful = await spawnWorker('graceful', { concurrency: 1 });
    const items = [0, 1, 2].map((n) => ({ mode: 'slow', ms: 800, n }));
    const batch = await svc.client.createBatch({ task: 'steer', items, parallelism: 3, retry: { backoffLimitPerItem: 0 } });
    await waitUntil('graceful running an item', () => events(batch.id).some((e) => e.event === 'start'), 20_000, 25);
    graceful.kill('SIGTERM');
    const [code] = await once(graceful, 'exit');
    expect(code).toBe(0);

    await spawnWorker('second');
    expect((await svc.client.waitForPhase(batch.id)).status.phase).toBe('Succeeded');
    const all = await expectAllSucceededOnce(svc.client, batch.id, [{ n: 0 }, { n: 1 }, { n: 2 }]);
    const onGraceful = events(batch.id).filter((e) => e.worker === 'graceful');
    expect(onGraceful.map((e) => e.event)).toEqual(['start', 'finish']);
    for (const item of all) {
      expect(item.attempts).toHaveLength(1);
      expect(item.attempts[0].worker).toBe(item.index === onGraceful[0].index ? 'graceful' : 'second');
    }
  });
});
