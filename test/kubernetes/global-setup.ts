import { createServer, type Server } from 'node:http';
import type { TestProject } from 'vitest/node';
import type { ControlPlane } from './harness/control-plane.js';
import { startKubernetesEnvironment } from './environment.js';

/**
 * vitest globalSetup of the Kubernetes suite: one redis-server, control plane and test kubelet
 * for the whole run (./environment.ts). Tests reach them through ./helpers.ts.
 */
export default async function setup(project: TestProject) {
  const t0 = Date.now();
  const log = (line: string) => console.log(`[k8s] ${line}`);
  const env = await startKubernetesEnvironment({ log });
  let control: Server;
  try {
    control = await startControlServer(env.controlPlane);
  } catch (err) {
    await env.stop();
    throw err;
  }
  const address = control.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const cp = env.controlPlane;
  project.provide('redisUrl', env.redis.url);
  project.provide('kubeconfigPath', cp.kubeconfigPath);
  project.provide('kubeToken', cp.token);
  project.provide('kubeServer', cp.server);
  project.provide('kubectlPath', cp.kubectl);
  project.provide('controlPlaneDir', cp.dir);
  project.provide('controlPlaneControlUrl', `http://127.0.0.1:${port}`);
  log(`control plane and test kubelet ready in ${Date.now() - t0} ms; logs in ${cp.logsDir} and ${env.kubelet.logDir}`);
  return async () => {
    await new Promise((resolve) => control.close(resolve));
    await env.stop();
  };
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
