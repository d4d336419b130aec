import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { closeServer, listenOnLoopback, sleep, TOKEN, useWorkerHarness } from './harness.js';

const SIZE = 20_000_000;
const command = [
  `case $FANOUT_ITEM_INDEX in`,
  `0) head -c ${SIZE} /dev/zero | tr '\\0' a; echo ;;`,
  `2) head -c 4096 /dev/zero | tr '\\0' w ;;`,
  `*) echo small ;;`,
  `esac`,
].join('\n');

// A temp dir of this file's own (test files run in separate processes): other files' workers
// spool large outputs too, and must not show up as leftovers here.
const ownTmp = mkdtempSync(join(tmpdir(), 'fanout-large-result-test-'));
process.env.TMPDIR = ownTmp;

const t = useWorkerHarness();
let server: Server;
let base: string;
let status = 200;
/** answered 503 with Retry-After: 1 before `status` is, as an API whose database is down does */
let unavailableFor = 0;
/** when set, the server pauses the upload after this many bytes until `resume` is called */
let pause: { at: number; reached: (resume: () => void) => void } | undefined;
const uploads: Array<{ method: string; url: string; headers: IncomingHttpHeaders; bytes: number; sha256: string }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    // count and hash the body as it streams by: the test server holds none of it either
    const hash = createHash('sha256');
    let bytes = 0;
    let paused = false;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
      if (pause && !paused && bytes >= pause.at) {
        paused = true;
        req.pause();
        pause.reached(() => req.resume());
      }
    });
    req.on('end', () => {
      uploads.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, bytes, sha256: hash.digest('hex') });
      if (unavailableFor > 0) {
        unavailableFor--;
        res.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '1' });
        res.end('{"title":"Service Unavailable","status":503}');
        return;
      }
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(status === 200 ? JSON.stringify({ recorded: true }) : '{"title":"refused"}');
    });
  });
  base = await listenOnLoopback(server);
});
afterAll(async () => {
  await closeServer(server);
  rmSync(ownTmp, { recursive: true, force: true });
});
beforeEach(() => {
  uploads.length = 0;
  status = 200;
  unavailableFor = 0;
  pause = undefined;
});

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Bytes of heap and buffers still reachable after a full collection. */
async function retainedBytes(): Promise<number> {
  gc();
  await sleep(100); // V8 frees the memory of dead ArrayBuffers in the background
  gc();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

async function spoolDirs(): Promise<string[]> {
  return (await readdir(ownTmp)).filter((name) => name.startsWith('fanout-result-'));
}

/** Waits until the lease job is done (completed and removed), so every report is in. */
async function leaseDone(task: string): Promise<void> {
  for (;;) {
    const counts = await t.h.queue(task).getJobCounts('active', 'waiting');
    if (counts.active + counts.waiting === 0) return;
    await sleep(50);
  }
}

describe('results larger than the inline limit', () => {
  it('streams the result to PUT …/result and leaves the item out of the report', async () => {
    const dirsBefore = await spoolDirs();
    await t.h.worker({ apiUrl: `${base}/`, inlineResultLimit: 1024, tasks: [{ kind: 'command', name: 'big', command }] });
    // warm up every code path (spawn, spool to file, upload, report) so the baseline includes it
    const warmUp = await t.h.lease('big', ['w', 'w'], { batchId: 'b-big', first: 1 });
    await t.h.waitForItems(1, warmUp.leaseId);
    await leaseDone('big');
    expect(await t.h.items(warmUp.leaseId)).toMatchObject([{ i: 1, result: 'small' }]);
    expect(uploads.map((u) => [u.url, u.bytes])).toEqual([['/v1/batches/b-big/items/2/result', 4096]]);
    uploads.length = 0;

    const baseline = await retainedBytes();
    const halfway = new Promise<() => void>((resolve) => (pause = { at: SIZE / 2, reached: resolve }));
    const lease = await t.h.lease('big', ['x', 'y'], { batchId: 'b-big', attempt: 4 });
    // with the upload stalled halfway, the worker (this process) must not be holding the result
    const resume = await halfway;
    const heldMidUpload = (await retainedBytes()) - baseline;
    // the result is spooled to a file meanwhile, in this file's temp dir
    expect((await spoolDirs()).length).toBe(dirsBefore.length + 1);
    resume();
    await t.h.waitForItems(1, lease.leaseId);
    await leaseDone('big');

    const items = await t.h.items(lease.leaseId);
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ i: 1, a: 4, outcome: 'succeeded', result: 'small' });

    expect(uploads).toHaveLength(1);
    const [upload] = uploads;
    expect(upload.method).toBe('PUT');
    expect(upload.url).toBe('/v1/batches/b-big/items/0/result');
    expect(upload.headers).toMatchObject({
      authorization: `Bearer ${TOKEN}`,
      'fanout-attempt': '4',
      'content-type': 'text/plain; charset=utf-8',
      'content-length': String(SIZE),
    });
    expect(upload.bytes).toBe(SIZE); // the one trailing newline is not part of the result
    expect(upload.sha256).toBe(createHash('sha256').update(Buffer.alloc(SIZE, 'a')).digest('hex'));
    // Buffering the whole result would hold all 20 MB here (measured 20.3 MB); streaming holds a few
    // MB of pipe and socket buffers, which vary with GC timing on a loaded machine.
    expect(heldMidUpload).toBeLessThan(SIZE / 2);
    expect(await spoolDirs()).toEqual(dirsBefore);
  });

  it('fails the item, saying so, when the upload is refused for good', async () => {
    status = 413;
    await t.h.worker({ apiUrl: base, tasks: [{ kind: 'command', name: 'big', command }] });
    const lease = await t.h.lease('big', ['x', 'y']);
    const items = await t.h.waitForItems(2, lease.leaseId);
    expect(items[0]).toMatchObject({ i: 0, outcome: 'failed' });
    expect(items[0].error).toContain('could not be uploaded to the API: HTTP 413');
    expect(items[0].exitCode).toBeUndefined();
    expect(items[1]).toMatchObject({ i: 1, outcome: 'succeeded', result: 'small' });
    expect(uploads).toHaveLength(1);
  });

  it('sends the upload again after a 503 (the API cannot reach its database) until it is taken', async () => {
    unavailableFor = 2;
    await t.h.worker({ apiUrl: base, inlineResultLimit: 1024, tasks: [{ kind: 'command', name: 'big', command }] });
    const lease = await t.h.lease('big', ['w', 'w'], { batchId: 'b-retry', first: 1 });
    await t.h.waitForItems(1, lease.leaseId);
    await leaseDone('big');
    // item 2 was recorded by the API: it is left out of the report, as after a first-time success
    expect(await t.h.items(lease.leaseId)).toMatchObject([{ i: 1, outcome: 'succeeded', result: 'small' }]);
    expect(uploads.map((u) => [u.url, u.bytes])).toEqual(Array(3).fill(['/v1/batches/b-retry/items/2/result', 4096]));
  });

  it('fails the item when no API URL is configured, keeping small results inline', async () => {
    await t.h.worker({ inlineResultLimit: 1024, tasks: [{ kind: 'command', name: 'big', command }] });
    const lease = await t.h.lease('big', ['x', 'y']);
    const items = await t.h.waitForItems(2, lease.leaseId);
    expect(items[0].outcome).toBe('failed');
    expect(items[0].error).toContain('no API URL configured');
    expect(items[1].result).toBe('small');
    expect(uploads).toHaveLength(0);
  });
});
