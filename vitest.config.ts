import { defineConfig } from 'vitest/config';
import { reporters } from './test/helpers/reporters.js';

/** The main suite: unit, integration, worker, CLI, end-to-end and fault tests on one Redis. */
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/kubernetes/**', '**/node_modules/**'],
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
    ...reporters('main'),
  },
});
