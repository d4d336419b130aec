import type { TestProject } from 'vitest/node';
import { startTestRedis } from './redis.js';

/** One real redis-server for the whole run; each test isolates itself with its own key prefix. */
export default async function setup(project: TestProject) {
  const redis = await startTestRedis();
  project.provide('redisUrl', redis.url);
  return async () => {
    await redis.stop();
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}
