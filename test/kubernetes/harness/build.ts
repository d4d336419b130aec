import { fileURLToPath } from 'node:url';
import { runBuildScript } from '../../helpers/build-script.js';

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
  const dirs = await runBuildScript(BUILD_SCRIPT);
  const k8s = dirs['k8s-bin-dir'];
  const etcd = dirs['etcd-bin-dir'];
  if (!k8s || !etcd) throw new Error(`test/kubernetes/build.sh did not print its bin dirs; it printed: ${JSON.stringify(dirs)}`);
  return {
    kubeApiserver: `${k8s}/kube-apiserver`,
    kubeControllerManager: `${k8s}/kube-controller-manager`,
    kubectl: `${k8s}/kubectl`,
    etcd: `${etcd}/etcd`,
  };
}
