import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { batchTokens } from '../../src/api/tokens.js';
import { findFreePort } from '../../src/main/local-redis.js';
import { serverSecret } from '../../src/store/tenants.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { expectProblem, registerTaskWithoutWorker, waitUntil } from './support.js';

/**
 * An S3 blob store that cannot be reached (nothing listens on its port): a large result's upload
 * fails with 503 and Retry-After, which a worker retries, and records nothing; inline results, reads and the
 * rest of the API keep working.
 */
describe('S3 blob store unreachable', () => {
  let svc: TestService;
  let batch: any;
  let token: string;
  beforeAll(async () => {
    const closedPort = await findFreePort();
    svc = await startTestService({
      redisUrl: inject('redisUrl'),
      workers: false,
      env: {
        FANOUT_INLINE_RESULT_BYTES: '1024',
        FANOUT_BLOB_URL: 's3://fanout-down/results',
        FANOUT_S3_ENDPOINT: `http://127.0.0.1:${closedPort}`,
        AWS_ACCESS_KEY_ID: 'FANOUTTESTKEY',
        AWS_SECRET_ACCESS_KEY: 'not-a-real-secret',
      },
    });
    await registerTaskWithoutWorker(svc, 'slow');
    batch = await svc.client.createBatch({ task: 'slow', items: ['big', 'small'] });
    token = batchTokens(await svc.service.store.write(serverSecret())).sign(batch.id);
    await waitUntil(async () => (await svc.client.getBatch(batch.id)).status.counts.running === 2, 'items to be released');
  });
  afterAll(async () => svc?.close());

  const put = (i: number, text: string) =>
    fetch(`${svc.url}/v1/batches/${batch.id}/items/${i}/result`, { method: 'PUT', body: text, headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' } });

  it('a large result answers 503 with Retry-After and records nothing; a small one is recorded', { timeout: 30_000 }, async () => {
    const refused = await put(0, 'x'.repeat(8000));
    expect(refused.headers.get('retry-after')).toBe('2');
    const problem = await expectProblem(refused, 503);
    expect(problem.detail).not.toContain('not-a-real-secret');
    const item = (await svc.client.json('GET', `/v1/batches/${batch.id}/items/0`)).body;
    expect(item.status).toBe('running');
    expect(item.result).toBeUndefined();

    const small = await put(1, 'fits inline');
    expect(small.status).toBe(200);
    expect(((await small.json()) as { recorded: boolean }).recorded).toBe(true);
    expect((await svc.client.json('GET', `/v1/batches/${batch.id}/items/1`)).body.result).toBe('fits inline');
  });
});
