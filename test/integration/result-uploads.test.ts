import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { S3Client } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { batchTokens } from '../../src/api/tokens.js';
import { createTenantForKey, serverSecret } from '../../src/store/tenants.js';
import { batchHeaderSchema } from '../../src/domain/batch-spec.js';
import { createBatch } from '../../src/store/batch-create.js';
import { ApiClient } from '../helpers/api-client.js';
import { epochKey } from '../../src/runtimes/queue/protocol.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { localBlobInspector, s3BlobInspector, type BlobInspector } from '../helpers/blob-inspectors.js';
import { startTestS3 } from '../helpers/s3.js';
import { registerTaskWithoutWorker, waitUntil } from './support.js';

/** A blob store the service is started with: its settings and a view of what it really holds. */
interface StoreUnderTest {
  name: string;
  start(dataDir: string): Promise<{ env: Record<string, string>; inspector: BlobInspector; stop(): Promise<void> }>;
}

const localStore: StoreUnderTest = {
  name: 'local directory',
  async start(dataDir) {
    return { env: {}, inspector: localBlobInspector(path.join(dataDir, 'blobs')), stop: async () => {} };
  },
};

const s3Store: StoreUnderTest = {
  name: 'S3 (SeaweedFS)',
  async start() {
    const s3 = await startTestS3();
    const client = new S3Client(s3.clientConfig());
    return {
      env: {
        FANOUT_BLOB_URL: `s3://${s3.bucket}/fanout/results`,
        FANOUT_S3_ENDPOINT: s3.endpoint,
        AWS_REGION: s3.region,
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      },
      inspector: s3BlobInspector(client, s3.bucket, 'fanout/results'),
      async stop() {
        client.destroy();
        await s3.stop();
      },
    };
  },
};

/**
 * Duplicate, concurrent, stale and aborted result uploads (PUT …/items/{i}/result) never remove,
 * replace or corrupt a recorded result, and leave no blob of their own behind, in either blob
 * store. The test acts as the worker: the task has no worker, so released items stay running
 * until a PUT records them.
 */
describe.each([localStore, s3Store])('result uploads that lose ($name)', (store) => {
  const INLINE = 1024;
  const BIG = 300 * 1024;
  let svc: TestService;
  let batch: any;
  let token: string;
  let blobs: BlobInspector;
  let stopStore = async () => {};
  beforeAll(async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-test-'));
    const started = await store.start(dataDir);
    blobs = started.inspector;
    stopStore = started.stop;
    svc = await startTestService({ redisUrl: inject('redisUrl'), workers: false, dataDir, env: { FANOUT_INLINE_RESULT_BYTES: String(INLINE), ...started.env } });
    await registerTaskWithoutWorker(svc, 'slow');
    batch = await svc.client.createBatch({ task: 'slow', items: ['dup', 'race', 'stale', 'cut', 'small'] });
    token = batchTokens(await svc.service.store.write(serverSecret())).sign(batch.id);
    await waitUntil(async () => (await svc.client.getBatch(batch.id)).status.counts.running === 5, 'items to be released');
    // S3: on a cold machine the first start builds SeaweedFS (test/s3/build.sh, 10-30 min).
  }, 40 * 60_000);
  afterAll(async () => {
    await svc?.close();
    await stopStore();
  });

  /** A distinct body of `bytes` bytes (text with a marker, so two bodies never match by chance). */
  const body = (marker: string, bytes = BIG) => (marker + ':' + randomBytes(bytes).toString('base64')).slice(0, bytes);
  const put = (i: number, text: string, attempt?: number) =>
    fetch(`${svc.url}/v1/batches/${batch.id}/items/${i}/result`, {
      method: 'PUT',
      body: text,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain', ...(attempt === undefined ? {} : { 'fanout-attempt': String(attempt) }) },
    });
  const recorded = async (res: Response) => {
    expect(res.status).toBe(200);
    return ((await res.json()) as { recorded: boolean }).recorded;
  };
  /** Published blobs of item `i` of a batch. */
  const blobsOf = async (i: number, batchId: string = batch.id) => (await blobs.published(batchId)).filter((f) => f.startsWith(`${i}.`));
  const resultLine = async (i: number) => {
    const res = await svc.client.request('GET', `/v1/batches/${batch.id}/results`);
    expect(res.status).toBe(200);
    const lines = (await res.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l));
    return lines.find((l) => l.index === i);
  };

  it('a repeated upload for the same attempt is not recorded and leaves the first result whole', async () => {
    const first = body('first');
    const second = body('second');
    expect(await recorded(await put(0, first, 1))).toBe(true);
    expect(await recorded(await put(0, second, 1))).toBe(false);
    const line = await resultLine(0);
    expect(line.status).toBe('succeeded');
    expect(line.result.length).toBe(first.length);
    expect(line.result === first).toBe(true);
    expect(await blobsOf(0)).toHaveLength(1);
  });

  it('of 8 concurrent uploads for one attempt exactly one is recorded, and only its blob remains', async () => {
    const bodies = Array.from({ length: 8 }, (_, k) => body(`racer-${k}`, BIG + k * 1000));
    const answers = await Promise.all(bodies.map(async (b) => recorded(await put(1, b, 1))));
    expect(answers.filter(Boolean)).toHaveLength(1);
    const winner = bodies[answers.indexOf(true)];
    const line = await resultLine(1);
    expect(line.result.length).toBe(winner.length);
    expect(line.result === winner).toBe(true);
    expect(await blobsOf(1)).toHaveLength(1);
    expect(await blobs.partials(batch.id)).toBe(0);
  });

  it('an upload that disconnects mid-body records nothing and leaves no blob', async () => {
    // Past one S3 part (5 MiB), so object storage holds a multipart upload with data when the client goes.
    const sent = 6 * 1024 * 1024;
    const declared = 2 * sent;
    const url = new URL(`${svc.url}/v1/batches/${batch.id}/items/3/result`);
    let sawPartial = false;
    await new Promise<void>((resolve) => {
      const req = http.request(
        { host: url.hostname, port: url.port, path: url.pathname, method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain', 'content-length': declared } },
        () => resolve(),
      );
      req.on('error', () => resolve());
      // More than the inline limit: once the server is writing its blob, the connection drops.
      req.write(body('cut', sent));
      waitUntil(async () => (await blobs.partials(batch.id)) > 0, 'the partial upload in the blob store', 10_000, 20).then(
        () => {
          sawPartial = true;
          req.destroy();
        },
        () => req.destroy(),
      );
    });
    expect(sawPartial).toBe(true);
    // The server notices the disconnect asynchronously: wait until nothing of item 3 is left.
    await waitUntil(async () => (await blobs.partials(batch.id)) === 0 && (await blobsOf(3)).length === 0, 'nothing left of the aborted upload', 10_000);
    const item = (await svc.client.json('GET', `/v1/batches/${batch.id}/items/3`)).body;
    expect(item.status).toBe('running');
    expect(item.result).toBeUndefined();
    // The item still takes its real result afterwards.
    const real = body('real');
    expect(await recorded(await put(3, real))).toBe(true);
    expect((await resultLine(3)).result === real).toBe(true);
    expect(await blobsOf(3)).toHaveLength(1);
  });

  it('an upload for an item already final leaves the recorded blob and adds none', async () => {
    const before = await blobs.published(batch.id);
    expect(before.length).toBeGreaterThan(0);
    expect(await recorded(await put(0, body('late'), 1))).toBe(false);
    expect(await recorded(await put(0, body('later')))).toBe(false);
    expect(await blobs.published(batch.id)).toEqual(before);
  });

  it("a stale attempt's upload after a newer attempt was recorded never touches the recorded one", async () => {
    // Redis "loses its data": the dispatcher hands every outstanding lease back and releases the
    // items again, so item 2 runs its attempt 2 while attempt 1's worker may still upload.
    const redis = new Redis(svc.redisUrl);
    try {
      await redis.del(epochKey(svc.prefix));
    } finally {
      redis.disconnect();
    }
    const input = () => fetch(`${svc.url}/v1/batches/${batch.id}/items/2/input`, { headers: { authorization: `Bearer ${token}` } });
    await waitUntil(async () => (await input()).headers.get('fanout-attempt') === '2', 'item 2 to run attempt 2');
    const fresh = body('attempt-2');
    expect(await recorded(await put(2, fresh, 2))).toBe(true);
    expect(await recorded(await put(2, body('attempt-1'), 1))).toBe(false);
    expect(await recorded(await put(2, body('attempt-2-again'), 2))).toBe(false);
    const line = await resultLine(2);
    expect(line.result === fresh).toBe(true);
    expect(await blobsOf(2)).toHaveLength(1);
  });

  it('Kubernetes runtime: the first result of an item is kept; later or concurrent uploads are refused and leave no blob', async () => {
    // A batch whose items run as pods of an Indexed Job. This service has no Kubernetes
    // configuration, so its dispatcher leaves the batch alone and the test plays the pods
    // (`fanout exec`), whose results take the API's Kubernetes path.
    const key = `key-${randomBytes(8).toString('hex')}`;
    const tenant = await svc.service.store.write(createTenantForKey(key, 'k8s'));
    const header = batchHeaderSchema.parse({ runtime: 'indexed-job', template: { image: 'registry.invalid/app:1' } });
    const k8sBatch = await svc.service.store.write(createBatch(tenant, header, [{ input: '"a"', customId: null }, { input: '"b"', customId: null }]));
    const k8sToken = batchTokens(await svc.service.store.write(serverSecret())).sign(k8sBatch);
    const podPut = (i: number, text: string) =>
      fetch(`${svc.url}/v1/batches/${k8sBatch}/items/${i}/result`, { method: 'PUT', body: text, headers: { authorization: `Bearer ${k8sToken}`, 'content-type': 'text/plain' } });
    const lines = async () => {
      const res = await new ApiClient(svc.url, key).request('GET', `/v1/batches/${k8sBatch}/results`);
      expect(res.status).toBe(200);
      return (await res.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l));
    };

    const first = body('pod-a');
    expect(await recorded(await podPut(0, first))).toBe(true);
    expect(await recorded(await podPut(0, body('pod-b')))).toBe(false);
    expect((await lines())[0].result === first).toBe(true);
    expect(await blobsOf(0, k8sBatch)).toHaveLength(1);

    const bodies = Array.from({ length: 6 }, (_, k) => body(`pod-${k}`, BIG + k));
    const answers = await Promise.all(bodies.map(async (b) => recorded(await podPut(1, b))));
    expect(answers.filter(Boolean)).toHaveLength(1);
    expect((await lines())[1].result === bodies[answers.indexOf(true)]).toBe(true);
    expect(await blobsOf(1, k8sBatch)).toHaveLength(1);
  });

  it('deleting a batch removes its blobs from the store, and only its own', async () => {
    const doomed = await svc.client.createBatch({ task: 'slow', items: ['a', 'b'] });
    const other = await svc.client.createBatch({ task: 'slow', items: ['kept'] });
    for (const b of [doomed, other]) {
      await waitUntil(async () => (await svc.client.getBatch(b.id)).status.counts.running === b.status.counts.total, 'the batch to run');
      const batchToken = batchTokens(await svc.service.store.write(serverSecret())).sign(b.id);
      for (let i = 0; i < b.status.counts.total; i++) {
        const res = await fetch(`${svc.url}/v1/batches/${b.id}/items/${i}/result`, {
          method: 'PUT',
          body: body(`${b.id}-${i}`),
          headers: { authorization: `Bearer ${batchToken}`, 'content-type': 'text/plain' },
        });
        expect(await recorded(res)).toBe(true);
      }
    }
    expect(await blobs.published(doomed.id)).toHaveLength(2);

    expect((await svc.client.request('DELETE', `/v1/batches/${doomed.id}`)).status).toBe(204);
    await waitUntil(async () => (await blobs.published(doomed.id)).length === 0, "the deleted batch's blobs to go", 10_000);
    expect(await blobs.published(other.id)).toHaveLength(1);
  });
});
