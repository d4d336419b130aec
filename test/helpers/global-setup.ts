import type { TestProject } from 'vitest/node';
import { startTestPostgres } from './postgres.js';
import { startTestRedis } from './redis.js';

/**
 * One real redis-server for the whole run; each test isolates itself with its own key prefix.
 * With FANOUT_TEST_STORE=postgres also one PostgreSQL cluster, in which every service gets a
 * database of its own (test/helpers/test-store.ts).
 */
export default async function setup(project: TestProject) {
  const store = process.env.FANOUT_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite';
  const [redis, postgres] = await Promise.all([startTestRedis(), store === 'postgres' ? startTestPostgres() : undefined]);
  project.provide('redisUrl', redis.url);
  project.provide('testStore', store);
  project.provide('postgresAdminUrl', postgres?.urlFor('postgres') ?? '');
  return async () => {
    await Promise.all([redis.stop(), postgres?.stop()]);
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    testStore: 'sqlite' | 'postgres';
    /** the cluster's `postgres` database as its superuser ('' on a SQLite run) */
    postgresAdminUrl: string;
  }
}
