import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { batchTokens } from '../../src/api/tokens.js';
import { createTenantForKey, serverSecret } from '../../src/store/tenants.js';
import { batchHeaderSchema } from '../../src/domain/batch-spec.js';
import { createBatch } from '../../src/store/batch-create.js';
import { ApiClient } from '../helpers/api-client.js';
import { epochKey } from '../../src/runtimes/queue/protocol.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { registerTaskWithoutWorker, waitUntil } from './support.js';

/**
 * Duplicate, concurrent, stale and aborted result uploads (PUT …/items/{i}/result) never remove,
 * replace or corrupt a recorded result, and leave no file of their own behind. The test acts as
 * the worker: the task has no worker, so released items stay running until a PUT records them.
 */
describe('result uploads that lose', () => {
  const INLINE = 1024;
  const BIG = 300 * 1024;
  let svc: TestService;
  let batch: any;
  let token: string;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl'), workers: false, env: { FANOUT_INLINE_RESULT_BYTES: String(INLINE) } });
    await registerTaskWithoutWorker(svc, 'slow');
    batch = await svc.client.createBatch({ task: 'slow', items: ['dup', 'race', 'stale', 'cut', 'small'] });
    token = batchTokens(serverSecret(svc.service.store)).sign(batch.id);
    await waitUntil(async () => (await svc.client.getBatch(batch.id)).status.counts.running === 5, 'items to be released');
  });
  afterAll(async () => svc?.close());

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
  /** Files (published or temporary) of item `i` in the batch's blob directory. */
  const filesOf = (i: number) => {
    const dir = path.join(svc.dataDir, 'blobs', batch.id);
    return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.startsWith(`${i}.`)) : [];
  };
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
    expect(filesOf(0)).toHaveLength(1);
  });

  it('of 8 concurrent uploads for one attempt exactly one is recorded, and only its blob remains', async () => {
    const bodies = Array.from({ length: 8 }, (_, k) => body(`racer-${k}`, BIG + k * 1000));
    const answers = await Promise.all(bodies.map(async (b) => recorded(await put(1, b, 1))));
    expect(answers.filter(Boolean)).toHaveLength(1);
    const winner = bodies[answers.indexOf(true)];
    const line = await resultLine(1);
    expect(line.result.length).toBe(winner.length);
    expect(line.result === winner).toBe(true);
    const files = filesOf(1);
    expect(files).toHaveLength(1);
    expect(fs.statSync(path.join(svc.dataDir, 'blobs', batch.id, files[0])).size).toBe(winner.length);
  });

  it('an upload that disconnects mid-body records nothing and leaves no file', async () => {
    const declared = 2 * BIG;
    const url = new URL(`${svc.url}/v1/batches/${batch.id}/items/3/result`);
    let sawPartial = false;
    await new Promise<void>((resolve) => {
      const req = http.request(
        { host: url.hostname, port: url.port, path: url.pathname, method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain', 'content-length': declared } },
        () => resolve(),
      );
      req.on('error', () => resolve());
      // More than the inline limit: once the server is writing its blob, the connection drops.
      req.write(body('cut', BIG));
      waitUntil(async () => filesOf(3).length > 0, 'the partial upload on disk', 5000, 20).then(
        () => {
          sawPartial = true;
          req.destroy();
        },
        () => req.destroy(),
      );
    });
    expect(sawPartial).toBe(true);
    // The server notices the disconnect asynchronously: wait until no file of item 3 is left.
    await waitUntil(async () => filesOf(3).length === 0, 'no file of the aborted upload', 5000);
    const item = (await svc.client.json('GET', `/v1/batches/${batch.id}/items/3`)).body;
    expect(item.status).toBe('running');
    expect(item.result).toBeUndefined();
    // The item still takes its real result afterwards.
    const real = body('real');
    expect(await recorded(await put(3, real))).toBe(true);
    expect((await resultLine(3)).result === real).toBe(true);
    expect(filesOf(3)).toHaveLength(1);
  });

  it('an upload for an item already final leaves the recorded blob and adds none', async () => {
    const before = fs.readdirSync(path.join(svc.dataDir, 'blobs', batch.id)).sort();
    expect(await recorded(await put(0, body('late'), 1))).toBe(false);
    expect(await recorded(await put(0, body('later')))).toBe(false);
    expect(fs.readdirSync(path.join(svc.dataDir, 'blobs', batch.id)).sort()).toEqual(before);
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
    expect(filesOf(2)).toHaveLength(1);
  });

  it('Kubernetes runtime: the first result of an item is kept; later or concurrent uploads are refused and leave no blob', async () => {
    // A batch whose items run as pods of an Indexed Job. This service has no Kubernetes
    // configuration, so its dispatcher leaves the batch alone and the test plays the pods
    // (`fanout exec`), whose results take the API's Kubernetes path.
    const key = `key-${randomBytes(8).toString('hex')}`;
    const tenant = createTenantForKey(svc.service.store, key, 'k8s');
    const header = batchHeaderSchema.parse({ runtime: 'indexed-job', template: { image: 'registry.invalid/app:1' } });
    const k8sBatch = createBatch(svc.service.store, tenant, header, [{ input: '"a"', customId: null }, { input: '"b"', customId: null }]);
    const k8sToken = batchTokens(serverSecret(svc.service.store)).sign(k8sBatch);
    const podPut = (i: number, text: string) =>
      fetch(`${svc.url}/v1/batches/${k8sBatch}/items/${i}/result`, { method: 'PUT', body: text, headers: { authorization: `Bearer ${k8sToken}`, 'content-type': 'text/plain' } });
    const dir = path.join(svc.dataDir, 'blobs', k8sBatch);
    const filesOfPod = (i: number) => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.startsWith(`${i}.`)) : []);
    const lines = async () => {
      const res = await new ApiClient(svc.url, key).request('GET', `/v1/batches/${k8sBatch}/results`);
      expect(res.status).toBe(200);
      return (await res.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l));
    };

    const first = body('pod-a');
    expect(await recorded(await podPut(0, first))).toBe(true);
    expect(await recorded(await podPut(0, body('pod-b')))).toBe(false);
    expect((await lines())[0].result === first).toBe(true);
    expect(filesOfPod(0)).toHaveLength(1);

    const bodies = Array.from({ length: 6 }, (_, k) => body(`pod-${k}`, BIG + k));
    const answers = await Promise.all(bodies.map(async (b) => recorded(await podPut(1, b))));
    expect(answers.filter(Boolean)).toHaveLength(1);
    expect((await lines())[1].result === bodies[answers.indexOf(true)]).toBe(true);
    expect(filesOfPod(1)).toHaveLength(1);
  });
});
