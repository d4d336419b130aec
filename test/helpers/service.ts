import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { startService, type Service } from '../../src/main/service.js';
import { createTenantForKey } from '../../src/store/tenants.js';
import { ApiClient } from './api-client.js';
import { newDatabaseUrl } from './test-store.js';

/**
 * Fanout in this test process, the way `fanout up` builds it: the run's store (a SQLite file in
 * a temp dir, or a PostgreSQL database of its own: test/helpers/test-store.ts),
 * real Redis (an isolated key prefix per service), HTTP on 127.0.0.1 on a free port.
 */
export interface TestService {
  service: Service;
  url: string;
  apiKey: string;
  dataDir: string;
  /** the store's DATABASE_URL */
  databaseUrl: string;
  prefix: string;
  redisUrl: string;
  client: ApiClient;
  /** a second tenant's client, for isolation tests */
  newTenant(name?: string): Promise<ApiClient>;
  close(): Promise<void>;
}

export interface TestServiceOptions {
  redisUrl: string;
  /** in-process worker tasks (NAME=COMMAND|URL); default rev, echo */
  tasks?: string[];
  env?: Record<string, string>;
  dataDir?: string;
  prefix?: string;
  apiKey?: string;
  workers?: boolean;
}

export async function startTestService(o: TestServiceOptions): Promise<TestService> {
  const dataDir = o.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-test-'));
  const prefix = o.prefix ?? `t${randomBytes(4).toString('hex')}`;
  const apiKey = o.apiKey ?? `key-${randomBytes(8).toString('hex')}`;
  const databaseUrl = o.env?.DATABASE_URL ?? (await newDatabaseUrl(dataDir));
  const config = loadConfig(
    { port: 0, dataDir, redis: o.redisUrl, prefix },
    { FANOUT_API_KEY: apiKey, FANOUT_LEASE_SECONDS: '2', FANOUT_RESYNC_SECONDS: '1', FANOUT_LEADER_LEASE_SECONDS: '2', DATABASE_URL: databaseUrl, ...o.env },
  );
  const logger = pino({ level: process.env.FANOUT_TEST_LOG ?? 'silent' });
  const tasks = o.workers === false ? [] : (o.tasks ?? ['rev=rev', 'echo=cat']);
  const service = await startService({ config, redisUrl: o.redisUrl, logger, api: true, dispatcher: true, workerTasks: tasks });
  const url = service.url!;
  return {
    service,
    url,
    apiKey,
    dataDir,
    databaseUrl,
    prefix,
    redisUrl: o.redisUrl,
    client: new ApiClient(url, apiKey),
    async newTenant(name = 'other') {
      const key = `key-${randomBytes(8).toString('hex')}`;
      await service.store.write(createTenantForKey(key, name));
      return new ApiClient(url, key);
    },
    close: () => service.close(),
  };
}
