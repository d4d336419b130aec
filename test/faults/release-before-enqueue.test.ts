import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { batchHeaderSchema } from '../../src/domain/batch-spec.js';
import { createBatch } from '../../src/store/batch-create.js';
import { releaseLeases } from '../../src/store/leases.js';
import { createTenantForKey } from '../../src/store/tenants.js';
import { putSetting } from '../../src/store/settings.js';
import { epochKey } from '../../src/runtimes/queue/protocol.js';
import { Redis } from 'ioredis';
import { startTestService, type TestService } from '../helpers/service.js';
import { newDatabaseUrl, openTestStore } from '../helpers/test-store.js';

/**
 * The dispatcher commits a release (items running, lease recorded) and dies before adding the
 * lease to Redis. The next dispatcher must release those items again without counting an
 * attempt against them: no worker ever saw them.
 */
describe('faults: a dispatcher that died between committing a release and queueing it', () => {
  let svc: TestService | undefined;
  afterEach(async () => svc?.close());

  it('releases the items again, uncounted, and the batch succeeds with backoffLimitPerItem 0', { timeout: 60_000 }, async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-crash-release-'));
    const apiKey = 'key-release-before-enqueue';
    const store = await openTestStore(await newDatabaseUrl(dataDir));
    const tenant = await store.write(createTenantForKey(apiKey, 'crash'));
    const header = batchHeaderSchema.parse({ task: 'echo', parallelism: 4, retry: { backoffLimitPerItem: 0 } });
    const items = ['a', 'b', 'c', 'd', 'e', 'f'];
    const id = await store.write(createBatch(tenant, header, items.map((v) => ({ input: JSON.stringify(v), customId: null }))));
    const released = await store.write(releaseLeases(id, 'echo', 4, 2, Date.now()));
    expect(released.flatMap((l) => l.items.map((it) => it.index))).toEqual([0, 1, 2, 3]);
    // Redis kept its data (the epoch it holds is the one the store remembers): only this lease is missing.
    const prefix = `t${Date.now().toString(36)}`;
    await store.write(putSetting('redis-epoch', 'epoch-1'));
    const redis = new Redis(inject('redisUrl'));
    await redis.set(epochKey(prefix), 'epoch-1');
    redis.disconnect();
    await store.close();

    svc = await startTestService({ redisUrl: inject('redisUrl'), dataDir, apiKey, prefix, tasks: ['echo=cat'] });
    const done = await svc.client.waitForPhase(id, undefined, 45_000);
    expect(done.status.phase).toBe('Succeeded');
    const results = await svc.client.results(id);
    expect(results.map((r) => r.result)).toEqual(items);
    for (const index of [0, 1, 2, 3]) {
      const item = (await svc.client.json('GET', `/v1/batches/${id}/items/${index}`)).body;
      // attempt 1 never reached a worker: the only recorded attempt is the re-release
      expect(item.attempts.map((a: any) => [a.attempt, a.outcome])).toEqual([[2, 'succeeded']]);
    }
  });
});
