import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';
import { startControlPlane, type ControlPlane } from './harness/control-plane.js';
import { startTestKubelet, type TestKubelet } from './harness/kubelet.js';
import type { TestImage } from './harness/pod-env.js';

/**
 * The Kubernetes suite's environment (global-setup.ts) and `npm run k8s:up`'s: a real
 * redis-server, the control plane (built on first use; a failed build throws) and one test
 * kubelet whose pods find the repo's `fanout` CLI on PATH.
 */
export interface KubernetesEnvironment {
  redis: TestRedis;
  controlPlane: ControlPlane;
  kubelet: TestKubelet;
  /** stops the kubelet, the control plane (removing its dir) and redis */
  stop(): Promise<void>;
}

const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** Images the test kubelet knows: what each bakes in (pods choose one by spec.containers[].image). */
export const TEST_IMAGES: Record<string, TestImage> = {
  'fanout-worker:test': { env: { FANOUT_TASKS: `rev=rev;failfirst=${join(REPO, 'test/kubernetes/fixtures/fail-first.sh')}` }, entrypoint: ['fanout'] },
};

export async function startKubernetesEnvironment(opts: { log?: (line: string) => void } = {}): Promise<KubernetesEnvironment> {
  let redis: TestRedis | undefined;
  let controlPlane: ControlPlane | undefined;
  let kubelet: TestKubelet | undefined;
  const stop = async () => {
    await kubelet?.stop();
    await controlPlane?.stop();
    await redis?.stop();
  };
  try {
    redis = await startTestRedis();
    controlPlane = await startControlPlane({ log: opts.log });
    // bin/ holds fanout.js; pods run `fanout …`, so give it its command name in a dir of our own.
    const shimDir = join(controlPlane.dir, 'bin');
    await mkdir(shimDir, { recursive: true });
    await symlink(join(REPO, 'bin', 'fanout.js'), join(shimDir, 'fanout'));
    kubelet = await startTestKubelet({
      kubeConfig: controlPlane.kubeConfig(),
      binDirs: [shimDir, join(REPO, 'bin')],
      images: TEST_IMAGES,
      dir: join(controlPlane.dir, 'kubelet'),
    });
    return { redis, controlPlane, kubelet, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
