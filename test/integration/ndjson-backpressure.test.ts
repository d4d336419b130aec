import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import type { NewItem } from '../../src/store/store.js';
import { expectProblem, NDJSON, queryDb, registerTaskWithoutWorker } from './support.js';

/**
 * An NDJSON upload is read only as fast as the store takes its items: while the store holds a
 * chunk, the request body is not read on (TCP backpressure reaches the client), so the server
 * never holds more than a read of the body and one chunk of rows, whatever the upload's size.
 * And a refused line after chunks were already stored leaves nothing behind.
 */

/** Lines of about 40 bytes; counts the bytes the client has handed to the connection. */
function countedBody(items: number, counter: { bytes: number }, badLineAt?: number): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  let n = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (n > items) return controller.close();
      let chunk = '';
      for (let k = 0; k < 1000 && n <= items; k++, n++) {
        if (n === 0) chunk += `${JSON.stringify({ task: 'later' })}\n`;
        else if (n === badLineAt) chunk += '{"customId": not json}\n';
        else chunk += `${JSON.stringify({ customId: `c${n - 1}`, v: 'x'.repeat(12) })}\n`;
      }
      const bytes = enc.encode(chunk);
      counter.bytes += bytes.byteLength;
      controller.enqueue(bytes);
    },
  });
}

describe('NDJSON upload backpressure', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl'), workers: false });
    await registerTaskWithoutWorker(svc, 'later');
  });
  afterAll(async () => svc?.close());

  it('a store that does not take a chunk stops the upload; released, every item is stored in order', { timeout: 180_000 }, async () => {
    const ITEMS = 2_000_000; // about 80 MB of body
    const store = svc.service.store;
    const appendItems = store.appendItems.bind(store);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const chunksTaken: number[] = [];
    store.appendItems = async (batchId: string, firstIndex: number, rows: readonly NewItem[]) => {
      chunksTaken.push(firstIndex);
      // The second chunk waits until the test lets it through: a store that has stopped taking items.
      if (chunksTaken.length === 2) await released;
      return appendItems(batchId, firstIndex, rows);
    };
    try {
      const sent = { bytes: 0 };
      const response = svc.client.request('POST', '/v1/batches', countedBody(ITEMS, sent), NDJSON);
      // Wait until the client can send no more: its byte count stays the same over many checks.
      let stalledAt = -1;
      for (let unchanged = 0; unchanged < 20; ) {
        await sleep(100);
        if (sent.bytes === stalledAt && chunksTaken.length === 2) unchanged++;
        else {
          stalledAt = sent.bytes;
          unchanged = 0;
        }
      }
      // The body is about 80 MB; what left the client is what the socket buffers and one read hold.
      expect(chunksTaken).toEqual([0, 5000]);
      expect(stalledAt).toBeLessThan(32 * 1024 * 1024);
      expect(stalledAt).toBeGreaterThan(0);

      release();
      const res = await response;
      const created = await res.json();
      expect(res.status, JSON.stringify(created)).toBe(202);
      expect(created.status.counts.total).toBe(ITEMS);
      expect(sent.bytes).toBeGreaterThan(64 * 1024 * 1024);
      const [stored] = await queryDb<{ n: number; first: string; last: string }>(
        svc,
        'SELECT count(*) AS n, min(custom_id) AS first, max(idx) AS last FROM items WHERE batch_id = ?',
        created.id,
      );
      expect(Number(stored.n)).toBe(ITEMS);
      expect(Number(stored.last)).toBe(ITEMS - 1);
      const at = await svc.client.json('GET', `/v1/batches/${created.id}/items/123456`);
      expect(at.body.input).toEqual({ customId: 'c123456', v: 'x'.repeat(12) });
      expect(at.body.customId).toBe('c123456');
    } finally {
      release();
      store.appendItems = appendItems;
    }
  });

  it('a bad line after chunks were stored → 422 problem+json naming the line; nothing of the upload is left', async () => {
    const before = await queryDb<{ n: number }>(svc, 'SELECT count(*) AS n FROM items');
    const BAD_LINE = 12_346; // line 12,346 of the body: two chunks of 5,000 items are stored before it
    const res = await svc.client.request('POST', '/v1/batches', countedBody(20_000, { bytes: 0 }, BAD_LINE - 1), NDJSON);
    const p = await expectProblem(res, 422);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(p.detail).toMatch(new RegExp(`^line ${BAD_LINE}: invalid JSON`));
    const after = await queryDb<{ n: number }>(svc, 'SELECT count(*) AS n FROM items');
    expect(Number(after[0].n)).toBe(Number(before[0].n));
    const uploading = await queryDb<{ n: number }>(svc, "SELECT count(*) AS n FROM batches WHERE state = 'uploading'");
    expect(Number(uploading[0].n)).toBe(0);
  });
});
