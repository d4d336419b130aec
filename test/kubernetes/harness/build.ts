import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Where build.sh put the binaries. */
export interface ControlPlaneBinaries {
  kubeApiserver: string;
  kubeControllerManager: string;
  kubectl: string;
  etcd: string;
}

const BUILD_SCRIPT = fileURLToPath(new URL('../build.sh', import.meta.url));

/**
 * Runs test/kubernetes/build.sh (a no-op in well under a second when the cache is warm; about
 * ten minutes cold) and answers the binaries' paths. Its progress is passed through to stderr.
 * Any failure throws: the Kubernetes suite must fail, never skip, when it cannot build.
 */
export async function buildControlPlane(): Promise<ControlPlaneBinaries> {
  const child = spawn('sh', [BUILD_SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-8000);
    process.stderr.write(chunk);
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) {
    throw new Error(`test/kubernetes/build.sh failed (exit ${code}):\n${stderr.split('\n').slice(-30).join('\n')}`);
  }
  const dirs = Object.fromEntries(
    stdout
      .split('\n')
      .map((line) => line.trim().split('='))
      .filter((kv) => kv.length === 2),
  ) as Record<string, string>;
  const k8s = dirs['k8s-bin-dir'];
  const etcd = dirs['etcd-bin-dir'];
  if (!k8s || !etcd) throw new Error(`test/kubernetes/build.sh did not print its bin dirs; stdout was: ${stdout}`);
  return {
    kubeApiserver: `${k8s}/kube-apiserver`,
    kubeControllerManager: `${k8s}/kube-controller-manager`,
    kubectl: `${k8s}/kubectl`,
    etcd: `${etcd}/etcd`,
  };
}
