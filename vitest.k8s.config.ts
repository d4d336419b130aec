import { defineConfig } from 'vitest/config';
import { reporters } from './test/helpers/reporters.js';

/**
 * The Kubernetes suite: one real control plane (etcd, kube-apiserver, kube-controller-manager
 * built from Go modules) and a test kubelet for the whole run. Files run one at a time: they
 * share that control plane, and two cores are not enough for more.
 */
export default defineConfig({
  test: {
    include: ['test/kubernetes/**/*.test.ts'],
    globalSetup: ['test/kubernetes/global-setup.ts'],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
    ...reporters('kubernetes'),
  },
});
