import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { closeServer, listenOnLoopback, sleep, useWorkerHarness } from './harness.js';
import { HALT_PAUSE, HALT_STOP, haltKey } from '../../src/runtimes/queue/protocol.js';
import { parseHaltMode } from '../../src/worker/halt-cache.js';
import { BatchStoppedError, parseTaskFlag } from '../../src/worker/index.js';

/** Running items of a stopped batch are aborted (their slots freed); a paused batch's finish. */

const t = useWorkerHarness({ tempDirPrefix: 'fanout-halt-test-' });

async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(25);
  }
}

/** The pid an item's shell wrote, once it has. */
async function pidOf(index: number): Promise<number> {
  let pid = NaN;
  await waitFor(async () => {
    pid = Number((await readFile(join(t.dir, `pid-${index}`), 'utf8').catch(() => '')).trim());
    return pid > 0;
  });
  return pid;
}

/** `process.kill(pid, 0)`'s error code: undefined while the process exists, ESRCH once gone. */
function probe(pid: number): string | undefined {
  try {
    process.kill(pid, 0);
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code;
  }
}

/** Writes its shell's pid, then holds its slot for a minute unless killed. */
const holdCommand = () => `echo $$ > ${t.dir}/pid-$FANOUT_ITEM_INDEX; sleep 60`;

describe('halt of running items', () => {
  it('stop kills the running commands of the batch, returns every item and frees the slots', async () => {
    await t.h.worker({
      concurrency: 2,
      tasks: [{ kind: 'command', name: 'hold', command: holdCommand() }, parseTaskFlag('rev=rev')],
    });
    const lease = await t.h.lease('hold', ['a', 'b', 'c'], { batchId: 'doomed' });
    const pids = [await pidOf(0), await pidOf(1)];
    expect(pids.map(probe)).toEqual([undefined, undefined]);

    const stoppedAt = Date.now();
    await t.h.redis.set(haltKey(t.h.prefix, 'doomed'), HALT_STOP);
    const items = await t.h.waitForItems(3, lease.leaseId, 6000);
    expect(Date.now() - stoppedAt).toBeLessThan(5000);
    expect(pids.map(probe)).toEqual(['ESRCH', 'ESRCH']);
    expect(items.map((item) => [item.i, item.outcome])).toEqual([
      [0, 'returned'],
      [1, 'returned'],
      [2, 'returned'],
    ]);
    for (const item of items.slice(0, 2)) {
      expect(item.error).toContain('stopped');
      expect(item.exitCode).toBeUndefined();
      expect(item.startedAt).toBeDefined();
    }
    // the third item waited for a slot and never started
    expect(items[2].startedAt).toBeUndefined();
    await expect(readFile(join(t.dir, 'pid-2'))).rejects.toThrow();

    // both slots are free again: a new lease runs at once
    const next = await t.h.lease('rev', ['ab', 'cd'], { batchId: 'next' });
    const after = await t.h.waitForItems(2, next.leaseId, 5000);
    expect(after.map((item) => [item.outcome, item.result])).toEqual([
      ['succeeded', 'ba'],
      ['succeeded', 'dc'],
    ]);
  }, 20_000);

  it('pause lets the running item finish and returns the ones not started', async () => {
    const command = `echo $$ > ${t.dir}/pid-$FANOUT_ITEM_INDEX; sleep 2; echo done-$FANOUT_ITEM_INDEX`;
    await t.h.worker({ concurrency: 1, tasks: [{ kind: 'command', name: 'finish', command }] });
    const lease = await t.h.lease('finish', ['a', 'b'], { batchId: 'paused' });
    const pid = await pidOf(0);
    await t.h.redis.set(haltKey(t.h.prefix, 'paused'), HALT_PAUSE);
    // longer than a halt check: a stop would have killed it by now
    await sleep(1500);
    expect(probe(pid)).toBeUndefined();
    const items = await t.h.waitForItems(2, lease.leaseId);
    expect(items.map((item) => [item.i, item.outcome, item.result])).toEqual([
      [0, 'succeeded', 'done-0'],
      [1, 'returned', undefined],
    ]);
  }, 20_000);

  it('stop aborts the signal of a running function of that batch only', async () => {
    const reasons = new Map<string, unknown>();
    const started = new Set<string>();
    let releaseKept: (() => void) | undefined;
    await t.h.worker({
      concurrency: 2,
      tasks: [
        {
          kind: 'function',
          name: 'wait',
          // never ends by itself in batch `stopme`; ends when the test says so in batch `kept`
          fn: (_input, ctx) =>
            new Promise((resolve) => {
              started.add(ctx.batchId);
              ctx.signal.addEventListener('abort', () => reasons.set(ctx.batchId, ctx.signal.reason));
              if (ctx.batchId === 'kept') releaseKept = () => resolve('kept');
            }),
        },
      ],
    });
    const stopped = await t.h.lease('wait', [1], { batchId: 'stopme' });
    const kept = await t.h.lease('wait', [2], { batchId: 'kept' });
    await waitFor(() => started.size === 2);

    await t.h.redis.set(haltKey(t.h.prefix, 'stopme'), HALT_STOP);
    const [item] = await t.h.waitForItems(1, stopped.leaseId, 5000);
    expect(item).toMatchObject({ outcome: 'returned', error: expect.stringContaining('stopped') });
    expect(reasons.get('stopme')).toBeInstanceOf(BatchStoppedError);

    await sleep(1200);
    expect(reasons.has('kept')).toBe(false);
    releaseKept!();
    const [keptItem] = await t.h.waitForItems(1, kept.leaseId);
    expect(keptItem).toMatchObject({ outcome: 'succeeded', result: 'kept' });
  }, 20_000);

  it('stop aborts the request of a running URL task', async () => {
    const arrived: string[] = [];
    const closed: string[] = [];
    const server: Server = createServer((req, res) => {
      // never answers; notes when the worker gives up on the request
      arrived.push(req.url ?? '');
      res.on('close', () => closed.push(req.url ?? ''));
    });
    const url = `${await listenOnLoopback(server)}/hang`;
    try {
      await t.h.worker({ tasks: [parseTaskFlag(`hang=${url}`)] });
      const lease = await t.h.lease('hang', ['x'], { batchId: 'url-stop' });
      await waitFor(() => arrived.length === 1);
      await t.h.redis.set(haltKey(t.h.prefix, 'url-stop'), HALT_STOP);
      const [item] = await t.h.waitForItems(1, lease.leaseId, 5000);
      expect(item).toMatchObject({ outcome: 'returned', error: expect.stringContaining('stopped') });
      await waitFor(() => closed.length === 1, 3000);
      expect(closed).toEqual(['/hang']);
    } finally {
      await closeServer(server);
    }
  }, 20_000);

  it('reads any halt value but pause as stop', () => {
    expect(parseHaltMode(null)).toBeNull();
    expect(parseHaltMode(HALT_PAUSE)).toBe(HALT_PAUSE);
    expect(parseHaltMode(HALT_STOP)).toBe(HALT_STOP);
    // values written before the stop/pause split
    expect(parseHaltMode('1')).toBe(HALT_STOP);
    expect(parseHaltMode('cancelled')).toBe(HALT_STOP);
  });
});
