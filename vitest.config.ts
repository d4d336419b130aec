import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';
import { reporters } from './test/helpers/reporters.js';

/** The main suite: unit, integration, worker, CLI, end-to-end and fault tests on one Redis. */
export default defineConfig({
  // Tests run the TypeScript sources: `fanout/worker` resolves to src/ through the package's
  // `fanout-source` export condition (package.json), for Vite's resolver here and for Node's in
  // the test processes (execArgv); without it the export is the compiled dist/. Vite's 'module'
  // condition is left out: it picks packages' bundler builds (the AWS SDK's dist-es, whose
  // extensionless imports Node cannot load) for modules Node itself then imports.
  ssr: { resolve: { conditions: ['fanout-source', ...defaultServerConditions.filter((c) => c !== 'module')] } },
  test: {
    execArgv: ['--conditions=fanout-source'],
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
