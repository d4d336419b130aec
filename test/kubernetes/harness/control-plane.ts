import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { findFreePort } from '../../../src/main/local-redis.js';
import { buildControlPlane } from './build.js';
import { generateSecrets } from './certs.js';
import { startProcess, tailFile, type ManagedProcess } from './processes.js';
import { waitHealthy } from './probe.js';

/**
 * A real Kubernetes control plane on 127.0.0.1 for tests: etcd, kube-apiserver and
 * kube-controller-manager (every default controller: job, ttl-after-finished, garbage collector,
 * serviceaccount, namespace, deployment, replicaset, …) built from Go modules by build.sh. There
 * is no scheduler and no kubelet: pair it with startTestKubelet (./kubelet.ts).
 */
export interface ControlPlane {
  /** a kubeconfig file with the admin token and the CA */
  kubeconfigPath: string;
  /** `https://127.0.0.1:<port>` */
  server: string;
  /** admin bearer token (system:masters) */
  token: string;
  /** the CA that signed the API server's serving cert */
  caFile: string;
  /** path of the kubectl binary of the same version */
  kubectl: string;
  /** the control plane's files (certs, etcd data, logs); removed by stop() */
  dir: string;
  /** etcd.log, kube-apiserver.log, kube-controller-manager.log */
  logsDir: string;
  /** stops everything (SIGTERM, then SIGKILL) and removes dir (kept when FANOUT_K8S_KEEP=1) */
  stop(): Promise<void>;
  /** SIGTERM kube-apiserver, start it again on the same port, wait until /readyz answers */
  restartApiServer(): Promise<void>;
  /** a KubeConfig loaded from kubeconfigPath */
  kubeConfig(): KubeConfig;
}

export interface ControlPlaneOptions {
  /** where to put certs, etcd data and logs (default: a new temp dir) */
  dir?: string;
  /** progress lines (default: none) */
  log?: (line: string) => void;
}

const ETCD_TIMEOUT_MS = 30_000;
const APISERVER_TIMEOUT_MS = 90_000;
const KCM_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 10_000;
/** a port found free can be taken before the server binds it: try new ports this many times */
const PORT_ATTEMPTS = 3;

/** Builds (if needed) and starts the control plane; resolves once the API server is ready and the controller manager healthy. */
export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const log = opts.log ?? (() => {});
  const t0 = Date.now();
  const bins = await buildControlPlane();
  log(`binaries ready in ${Date.now() - t0} ms`);

  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'fanout-k8s-')));
  await mkdir(dir, { recursive: true });
  const logsDir = join(dir, 'logs');
  await mkdir(logsDir, { recursive: true });
  const secrets = await generateSecrets(dir);
  const ca = await readFile(secrets.caFile, 'utf8');
  const procs: ManagedProcess[] = [];
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: process.env.TMPDIR };

  const stopAll = async () => {
    for (const p of [...procs].reverse()) await p.stop(STOP_GRACE_MS);
  };

  try {
    // etcd
    let etcdUrl = '';
    let etcd: ManagedProcess | undefined;
    for (let attempt = 1; !etcd; attempt++) {
      const [clientPort, peerPort] = [await findFreePort(), await findFreePort()];
      etcdUrl = `http://127.0.0.1:${clientPort}`;
      const peerUrl = `http://127.0.0.1:${peerPort}`;
      const p = startProcess('etcd', bins.etcd, [
        '--name=fanout-test',
        `--data-dir=${join(dir, 'etcd-data')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=fanout-test=${peerUrl}`,
        '--initial-cluster-state=new',
        '--log-level=warn',
      ], { logFile: join(logsDir, 'etcd.log'), env });
      try {
        const ms = await waitHealthy(p, `${etcdUrl}/health`, { timeoutMs: ETCD_TIMEOUT_MS, accept: (b) => b.includes('"health":"true"') });
        log(`etcd healthy in ${ms} ms`);
        etcd = p;
        procs.push(p);
      } catch (err) {
        await p.stop(1000);
        if (attempt >= PORT_ATTEMPTS || !/address already in use/i.test(tailFile(p.logFile))) throw err;
      }
    }

    // kube-apiserver
    let apiPort = 0;
    let apiArgs: string[] = [];
    let apiserver: ManagedProcess | undefined;
    const apiLog = join(logsDir, 'kube-apiserver.log');
    const startApiServer = () => startProcess('kube-apiserver', bins.kubeApiserver, apiArgs, { logFile: apiLog, env });
    const waitApiServer = (p: ManagedProcess) =>
      waitHealthy(p, `https://127.0.0.1:${apiPort}/readyz`, {
        ca,
        token: secrets.token,
        timeoutMs: APISERVER_TIMEOUT_MS,
        verboseUrl: `https://127.0.0.1:${apiPort}/readyz?verbose`,
      });
    for (let attempt = 1; !apiserver; attempt++) {
      apiPort = await findFreePort();
      apiArgs = [
        `--etcd-servers=${etcdUrl}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${apiPort}`,
        '--advertise-address=127.0.0.1',
        // Endpoints may not hold loopback IPs: write none for the kubernetes Service.
        '--endpoint-reconciler-type=none',
        `--tls-cert-file=${secrets.serverCertFile}`,
        `--tls-private-key-file=${secrets.serverKeyFile}`,
        `--client-ca-file=${secrets.caFile}`,
        // Without a request-header CA the controller manager logs "missing content for CA bundle" every few seconds.
        `--requestheader-client-ca-file=${secrets.caFile}`,
        '--requestheader-allowed-names=front-proxy-client',
        '--requestheader-username-headers=X-Remote-User',
        '--requestheader-group-headers=X-Remote-Group',
        '--requestheader-extra-headers-prefix=X-Remote-Extra-',
        `--token-auth-file=${secrets.tokenFile}`,
        '--authorization-mode=RBAC',
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${secrets.serviceAccountPubFile}`,
        `--service-account-signing-key-file=${secrets.serviceAccountKeyFile}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        '--enable-priority-and-fairness=false',
        '--shutdown-watch-termination-grace-period=2s',
        '--profiling=false',
        '--v=1',
      ];
      const p = startApiServer();
      try {
        const ms = await waitApiServer(p);
        log(`kube-apiserver ready in ${ms} ms on port ${apiPort}`);
        apiserver = p;
        procs.push(p);
      } catch (err) {
        await p.stop(1000);
        if (attempt >= PORT_ATTEMPTS || !/address already in use/i.test(tailFile(p.logFile))) throw err;
      }
    }

    const server = `https://127.0.0.1:${apiPort}`;
    const kubeconfigPath = join(dir, 'kubeconfig');
    await writeFile(kubeconfigPath, kubeconfigYaml(server, secrets.caFile, secrets.token), { mode: 0o600 });

    // kube-controller-manager
    let kcm: ManagedProcess | undefined;
    for (let attempt = 1; !kcm; attempt++) {
      const kcmPort = await findFreePort();
      const p = startProcess('kube-controller-manager', bins.kubeControllerManager, [
        `--kubeconfig=${kubeconfigPath}`,
        `--authentication-kubeconfig=${kubeconfigPath}`,
        `--authorization-kubeconfig=${kubeconfigPath}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${kcmPort}`,
        '--leader-elect=false',
        '--controllers=*',
        `--service-account-private-key-file=${secrets.serviceAccountKeyFile}`,
        `--root-ca-file=${secrets.caFile}`,
        '--use-service-account-credentials=false',
        '--profiling=false',
        '--v=1',
      ], { logFile: join(logsDir, 'kube-controller-manager.log'), env });
      try {
        // Its serving cert is self-signed in memory: not checked (loopback only).
        const ms = await waitHealthy(p, `https://127.0.0.1:${kcmPort}/healthz`, { timeoutMs: KCM_TIMEOUT_MS });
        log(`kube-controller-manager healthy in ${ms} ms`);
        kcm = p;
        procs.push(p);
      } catch (err) {
        await p.stop(1000);
        if (attempt >= PORT_ATTEMPTS || !/address already in use/i.test(tailFile(p.logFile))) throw err;
      }
    }
    log(`control plane up in ${Date.now() - t0} ms (${dir})`);

    let current = apiserver;
    let stopped = false;
    const restartApiServer = async () => {
      if (stopped) throw new Error('control plane is stopped');
      const t = Date.now();
      await current.stop(STOP_GRACE_MS);
      const stoppedMs = Date.now() - t;
      const next = startApiServer();
      procs.splice(procs.indexOf(current), 1, next);
      current = next;
      await waitApiServer(next);
      log(`kube-apiserver restarted in ${Date.now() - t} ms (stopped in ${stoppedMs} ms)`);
    };

    return {
      kubeconfigPath,
      server,
      token: secrets.token,
      caFile: secrets.caFile,
      kubectl: bins.kubectl,
      dir,
      logsDir,
      restartApiServer,
      kubeConfig: () => {
        const kc = new KubeConfig();
        kc.loadFromFile(kubeconfigPath);
        return kc;
      },
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await stopAll();
        if (process.env.FANOUT_K8S_KEEP === '1') log(`kept ${dir}`);
        else await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await stopAll();
    if (process.env.FANOUT_K8S_KEEP !== '1') await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

function kubeconfigYaml(server: string, caFile: string, token: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: fanout-test',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority: ${caFile}`,
    'users:',
    '- name: admin',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: fanout-test',
    '  context:',
    '    cluster: fanout-test',
    '    user: admin',
    '    namespace: default',
    'current-context: fanout-test',
    '',
  ].join('\n');
}
