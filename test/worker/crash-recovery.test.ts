import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { sleep, useWorkerHarness } from './harness.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..');
const fixture = join(here, 'fixtures', 'run-worker.ts');

// Registered first: its afterEach runs after this file's, which kills the workers it started.
const t = useWorkerHarness({ tempDirPrefix: 'fanout-crash-test-' });
let child: ChildProcess | undefined;
const strayGroups: number[] = [];

afterEach(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
  // the killed worker's commands run in their own process groups and outlive it
  for (const pgid of strayGroups.splice(0)) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Starts the fixture worker as a child process and waits for its `ready` line. */
async function spawnWorker(config: Record<string, unknown>): Promise<ChildProcess> {
  const proc = spawn(process.execPath, ['--import', 'tsx', fixture, JSON.stringify(config)], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('ready\n')) resolve();
    });
    proc.once('exit', (code) => reject(new Error(`worker child exited with ${code} before it was ready`)));
  });
  return proc;
}

async function lines(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean);
}

describe('a worker killed mid-lease', () => {
  it('loses its lease to another worker once the lock expires', async () => {
    const started = join(t.dir, 'started');
    child = await spawnWorker({
      connection: t.redis.url,
      prefix: t.h.prefix,
      name: 'doomed',
      leaseMs: 1000,
      concurrency: 2,
      tasks: [`mark=echo $$ >> ${started}; sleep 30; echo never`],
    });
    const lease = await t.h.lease('mark', ['a', 'b', 'c'], { attempt: 1 });
    const deadline = Date.now() + 15_000;
    while ((await lines(started)).length < 2) {
      if (Date.now() > deadline) throw new Error('the child worker never started the items');
      await sleep(25);
    }
    child.kill('SIGKILL');
    await once(child, 'exit');
    strayGroups.push(...(await lines(started)).map(Number));

    const killedAt = Date.now();
    await t.h.worker({
      name: 'rescuer',
      leaseMs: 1000,
      tasks: [{ kind: 'command', name: 'mark', command: 'echo "recovered $FANOUT_ITEM_INDEX"' }],
    });
    const items = await t.h.waitForItems(3, lease.leaseId, 30_000);
    expect(items.map((item) => [item.i, item.a, item.outcome, item.result, item.worker])).toEqual([
      [0, 1, 'succeeded', 'recovered 0', 'rescuer'],
      [1, 1, 'succeeded', 'recovered 1', 'rescuer'],
      [2, 1, 'succeeded', 'recovered 2', 'rescuer'],
    ]);
    // picked up after the 1 s lease lapsed and a stalled check or two, not after a long wait
    expect(Date.now() - killedAt).toBeLessThan(10_000);
  });

  it('on SIGTERM finishes the running item, returns the rest and exits 0', async () => {
    const started = join(t.dir, 'started');
    child = await spawnWorker({
      connection: t.redis.url,
      prefix: t.h.prefix,
      name: 'graceful',
      concurrency: 1,
      tasks: [`slow=echo $$ >> ${started}; sleep 1; echo done`],
    });
    const lease = await t.h.lease('slow', ['a', 'b', 'c']);
    while ((await lines(started)).length < 1) await sleep(25);
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    const items = await t.h.items(lease.leaseId);
    expect(items.map((item) => [item.i, item.outcome, item.result, item.worker])).toEqual([
      [0, 'succeeded', 'done', 'graceful'],
      [1, 'returned', undefined, 'graceful'],
      [2, 'returned', undefined, 'graceful'],
    ]);
  });
});
