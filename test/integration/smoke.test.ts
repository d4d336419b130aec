import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';

describe('smoke: the reference Indexed Job example through the API', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ redisUrl: inject('redisUrl') });
  });
  afterAll(async () => svc?.close());

  it('reverses foo bar baz qux xyz with parallelism 3', async () => {
    const batch = await svc.client.createBatch({ task: 'rev', items: ['foo', 'bar', 'baz', 'qux', 'xyz'], parallelism: 3 });
    const done = await svc.client.waitForPhase(batch.id);
    expect(done.status.phase).toBe('Succeeded');
    expect(done.status.completedIndexes).toBe('0-4');
    const results = await svc.client.results(batch.id);
    expect(results.map((r) => r.result)).toEqual(['oof', 'rab', 'zab', 'xuq', 'zyx']);
    expect(results.every((r) => r.attempts === 1)).toBe(true);
  });
});
