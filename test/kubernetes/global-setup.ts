import { mkdir, symlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { startTestRedis, type TestRedis } from '../helpers/redis.js';
import { startControlPlane, type ControlPlane } from './harness/control-plane.js';
import { startTestKubelet, type TestKubelet } from './harness/kubelet.js';
import type { TestImage } from './harness/pod-env.js';

/**
 * The Kubernetes suite's one environment: a real redis-server, a real control plane (built on
 * first use; a build failure fails the suite) and one test kubelet that runs pods as local
 * processes with the repo's `fanout` CLI on PATH. Tests reach it through ./helpers.ts.
 */

const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** Images the test kubelet knows: what each bakes in (pods choose by spec.containers[].image). */
export const TEST_IMAGES: Record<string, TestImage> = {
  'fanout-worker:test': { env: { FANOUT_TASKS: 'rev=rev' }, entrypoint: ['fanout'] },
};

export default async function setup(project: TestProject) {
  const t0 = Date.now();
  const log = (line: string) => console.log(`[k8s] ${line}`);
  let redis: TestRedis | undefined;
  let cp: ControlPlane | undefined;
  let kubelet: TestKubelet | undefined;
  let control: Server | undefined;
  const teardown = async () => {
    await new Promise((resolve) => (control ? control.close(resolve) : resolve(undefined)));
    await kubelet?.stop();
    await cp?.stop();
    await redis?.stop();
  };
  try {
    redis = await startTestRedis();
    cp = await startControlPlane({ log });
    // bin/ holds fanout.js; pods run `fanout …`, so give it its command name in a dir of our own.
    const shimDir = join(cp.dir, 'bin');
    await mkdir(shimDir, { recursive: true });
    await symlink(join(REPO, 'bin', 'fanout.js'), join(shimDir, 'fanout'));
    kubelet = await startTestKubelet({
      kubeConfig: cp.kubeConfig(),
      binDirs: [shimDir, join(REPO, 'bin')],
      images: TEST_IMAGES,
      dir: join(cp.dir, 'kubelet'),
    });
    control = await startControlServer(cp);
    const address = control.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    project.provide('redisUrl', redis.url);
    project.provide('kubeconfigPath', cp.kubeconfigPath);
    project.provide('kubeToken', cp.token);
    project.provide('kubeServer', cp.server);
    project.provide('kubectlPath', cp.kubectl);
    project.provide('controlPlaneDir', cp.dir);
    project.provide('controlPlaneControlUrl', `http://127.0.0.1:${port}`);
    log(`control plane and test kubelet ready in ${Date.now() - t0} ms; logs in ${cp.logsDir} and ${kubelet.logDir}`);
  } catch (err) {
    await teardown();
    throw err;
  }
  return teardown;
}

/**
 * Tests run in other processes: they ask for an API server restart over loopback HTTP
 * (POST /restart-apiserver answers 204 once it is ready again, or 500 with the error).
 */
function startControlServer(cp: ControlPlane): Promise<Server> {
  let queue: Promise<unknown> = Promise.resolve();
  const server = createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/restart-apiserver') {
      res.writeHead(404).end();
      return;
    }
    const restart = queue.then(() => cp.restartApiServer());
    queue = restart.catch(() => {});
    restart.then(
      () => res.writeHead(204).end(),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(err.stack ?? String(err)),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

declare module 'vitest' {
  export interface ProvidedContext {
    // redisUrl is declared by test/helpers/global-setup.ts
    kubeconfigPath: string;
    kubeToken: string;
    kubeServer: string;
    kubectlPath: string;
    controlPlaneDir: string;
    controlPlaneControlUrl: string;
  }
}
