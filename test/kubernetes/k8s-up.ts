/**
 * `npm run k8s:up`: the Kubernetes suite's environment for manual use (./environment.ts): a
 * redis-server, the control plane (built on first use) and the test kubelet. Prints how to reach
 * them and stays up until Ctrl-C (or SIGTERM), then stops everything and removes its files.
 */
import { TEST_IMAGES, startKubernetesEnvironment, type KubernetesEnvironment } from './environment.js';

const log = (line: string) => console.error(`[k8s] ${line}`);

let env: KubernetesEnvironment | undefined;
let stopping: Promise<void> | undefined;
const shutdown = (code: number) => {
  stopping ??= (async () => {
    log('stopping…');
    await env?.stop().catch((err) => log(`stop: ${(err as Error).message}`));
    log('stopped');
    process.exit(code);
  })();
  return stopping;
};
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

try {
  env = await startKubernetesEnvironment({ log });
} catch (err) {
  log(`failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
}

const { controlPlane: cp, kubelet, redis } = env;
console.log(`
Kubernetes ${cp.server} is up: node ${kubelet.nodeName}, whose pods run as local processes.

  export KUBECONFIG=${cp.kubeconfigPath}
  export REDIS_URL=${redis.url}

kubectl:        ${cp.kubectl}
control plane:  ${cp.dir} (logs in ${cp.logsDir})
pod logs:       ${kubelet.logDir}
images:         ${Object.entries(TEST_IMAGES)
  .map(([name, image]) => `${name} ${JSON.stringify(image)}`)
  .join(', ')}

Ctrl-C stops everything and removes ${cp.dir}.`);
