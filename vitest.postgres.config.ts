import { defineConfig } from 'vitest/config';
import main from './vitest.config.js';
import { reporters } from './test/helpers/reporters.js';

/**
 * The suites that drive a store, again on PostgreSQL: integration, end-to-end, fault, webhook,
 * schedule and dashboard tests, each service in a database of its own in one PostgreSQL cluster
 * (global-setup.ts with FANOUT_TEST_STORE=postgres; scripts/test.sh sets it). Left out: tests of
 * SQLite itself, tests that start PostgreSQL themselves (run once, in the main suite) and static
 * checks of files.
 */
export default defineConfig({
  ...main,
  test: {
    ...main.test,
    include: ['test/{integration,e2e,faults,webhooks,schedules,ui}/**/*.test.ts'],
    exclude: [
      '**/node_modules/**',
      'test/integration/migration-race.test.ts',
      'test/integration/store-adapters.test.ts',
      'test/integration/postgres-new-batch-reads.test.ts',
      'test/integration/leadership.test.ts',
      'test/integration/openapi-file.test.ts',
      'test/integration/openapi-operations.test.ts',
      'test/faults/postgres.test.ts',
      'test/e2e/ha.test.ts',
    ],
    ...reporters('postgres'),
  },
});
