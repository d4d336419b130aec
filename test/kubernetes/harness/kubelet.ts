import { appendFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, PatchStrategy, Watch, setHeaderOptions, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { TestImage } from './pod-env.js';
import { PodRun } from './pod-run.js';

/**
 * A test kubelet in TypeScript: registers a Ready Node, binds pending pods to it (it is also the
 * scheduler), and runs each pod's containers as local child processes: init containers in order,
 * then all containers, `command`+`args` with `command[0]` looked up on PATH (binDirs first).
 * Images are not pulled: an image name only selects what `images` says it bakes in (ENV,
 * ENTRYPOINT, CMD). Pod status is written like the real kubelet's (phases, container states,
 * exit codes, FallbackToLogsOnError messages, activeDeadlineSeconds → DeadlineExceeded), and a
 * deleted or evicted pod gets SIGTERM, then SIGKILL after its grace period (capped at 10 s), is
 * marked Failed unless it already ended, then deleted with grace 0. So the real job controller
 * sees what it would see on a node, DisruptionTarget included.
 *
 * Local processes cannot see mount paths: an emptyDir volume is a temp dir whose path is in the
 * env var FANOUT_TEST_VOLUME_<NAME> (upper case, non-alphanumerics → _); a container whose
 * workingDir is an emptyDir mount path runs in that dir; otherwise in workingDir if it exists on
 * this machine, else in the pod's own temp dir (FANOUT_TEST_POD_DIR). Other volume types,
 * probes, resources and sidecar init containers are ignored. Container output goes to
 * <dir>/logs/<namespace>_<pod>_<container>.log and this kubelet's own log to <dir>/logs/kubelet.log.
 */
export interface TestKubelet {
  nodeName: string;
  /** container logs and kubelet.log */
  logDir: string;
  /** kills every running pod's processes (recording the pods Failed when it can), deletes the Node */
  stop(): Promise<void>;
}

export interface TestKubeletOptions {
  kubeConfig: KubeConfig;
  /** default `fanout-test-node` */
  nodeName?: string;
  /** prepended to PATH for the containers, and where command[0] is looked up first */
  binDirs?: string[];
  /** what an image bakes in, by image name (e.g. `fanout-worker:test`) */
  images?: Record<string, TestImage>;
  /** run only pods in these namespaces (default: all) */
  namespaces?: string[];
  /** logs and pod dirs (default: a new temp dir, removed by stop() unless FANOUT_K8S_KEEP=1) */
  dir?: string;
}

const HEARTBEAT_MS = 10_000;
/** the API server ends each watch after this long; the loop then lists again (a periodic resync) */
const WATCH_SECONDS = 60;
const STATUS_PATCH = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);

export async function startTestKubelet(opts: TestKubeletOptions): Promise<TestKubelet> {
  const nodeName = opts.nodeName ?? 'fanout-test-node';
  const ownDir = !opts.dir;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'fanout-kubelet-')));
  const logDir = join(dir, 'logs');
  const podsDir = join(dir, 'pods');
  await mkdir(logDir, { recursive: true });
  await mkdir(podsDir, { recursive: true });
  const kubeletLog = join(logDir, 'kubelet.log');
  const log = (line: string) => appendFileSync(kubeletLog, `${new Date().toISOString()} ${line}\n`);
  const core = opts.kubeConfig.makeApiClient(CoreV1Api);
  const server = new URL(opts.kubeConfig.getCurrentCluster()?.server ?? 'https://127.0.0.1:443');
  const inScope = (pod: V1Pod) => !opts.namespaces || opts.namespaces.includes(pod.metadata?.namespace ?? '');

  const runs = new Map<string, PodRun>();
  const binding = new Set<string>();
  let stopped = false;
  const stopSignal = new AbortController();
  const deps = {
    core,
    binDirs: opts.binDirs ?? [],
    images: opts.images ?? {},
    logDir,
    podsDir,
    apiHost: server.hostname,
    apiPort: server.port || '443',
    log,
  };

  await registerNode(core, nodeName);
  log(`node ${nodeName} registered`);

  const heartbeat = setInterval(() => {
    patchNodeReady(core, nodeName).catch((err) => log(`heartbeat failed: ${(err as Error).message?.slice(0, 200)}`));
  }, HEARTBEAT_MS);

  const bind = async (pod: V1Pod) => {
    const { name = '', namespace = '', uid = '' } = pod.metadata ?? {};
    if (binding.has(uid)) return;
    binding.add(uid);
    try {
      await core.createNamespacedPodBinding({
        name,
        namespace,
        body: { apiVersion: 'v1', kind: 'Binding', metadata: { name, namespace, uid }, target: { apiVersion: 'v1', kind: 'Node', name: nodeName } },
      });
      log(`bound ${namespace}/${name}`);
    } catch (err) {
      const code = (err as { code?: number }).code;
      // 409: bound meanwhile; 404: gone. Anything else: the next list tries again.
      if (code !== 409 && code !== 404) log(`binding ${namespace}/${name} failed: ${code ?? ''} ${(err as Error).message?.slice(0, 300)}`);
    } finally {
      binding.delete(uid);
    }
  };

  /** Level-triggered: whatever the event, look at the pod as it is now. */
  const handle = (pod: V1Pod) => {
    if (stopped || !inScope(pod)) return;
    const uid = pod.metadata?.uid ?? '';
    if (!pod.spec?.nodeName) {
      if (!pod.metadata?.deletionTimestamp && (pod.status?.phase ?? 'Pending') === 'Pending') void bind(pod);
      return;
    }
    if (pod.spec.nodeName !== nodeName) return;
    let run = runs.get(uid);
    if (!run) {
      const phase = pod.status?.phase;
      // Ended before this kubelet saw it. Nothing is left to do: the API server deletes a
      // terminal pod without waiting for a kubelet.
      if (phase === 'Succeeded' || phase === 'Failed') return;
      run = new PodRun(pod, deps);
      runs.set(uid, run);
      log(`running ${pod.metadata?.namespace}/${pod.metadata?.name} (${uid})`);
    }
    run.update(pod);
  };

  const forget = (uid: string) => {
    const run = runs.get(uid);
    if (!run) return;
    runs.delete(uid);
    run.gone();
  };

  const listWatch = async () => {
    let delay = 200;
    while (!stopped) {
      try {
        const list = await core.listPodForAllNamespaces();
        const seen = new Set<string>();
        for (const pod of list.items) {
          seen.add(pod.metadata?.uid ?? '');
          handle(pod);
        }
        for (const uid of [...runs.keys()]) if (!seen.has(uid)) forget(uid);
        delay = 200;
        await watchPods(list.metadata?.resourceVersion ?? '');
      } catch (err) {
        if (stopped) return;
        log(`list/watch: ${(err as Error).message?.slice(0, 300) ?? err}; retrying in ${delay} ms`);
        await sleep(delay, undefined, { signal: stopSignal.signal }).catch(() => {});
        delay = Math.min(delay * 2, 5000);
      }
    }
  };

  /** One watch from `resourceVersion`; resolves when it ends for any reason (410 Gone, timeout, API server restart). */
  const watchPods = async (resourceVersion: string) => {
    let ended!: () => void;
    const over = new Promise<void>((resolve) => {
      ended = resolve;
    });
    const req = await new Watch(opts.kubeConfig).watch(
      '/api/v1/pods',
      { resourceVersion, allowWatchBookmarks: true, timeoutSeconds: WATCH_SECONDS },
      (type, obj: V1Pod & { code?: number; message?: string }) => {
        if (type === 'ERROR') {
          log(`watch error ${obj.code ?? ''} ${obj.message ?? ''}; listing again`);
          ended();
        } else if (type === 'DELETED') forget(obj.metadata?.uid ?? '');
        else if (type === 'ADDED' || type === 'MODIFIED') handle(obj);
      },
      (err) => {
        if (err && !stopped) log(`watch ended: ${(err as Error).message ?? err}`);
        ended();
      },
    );
    // A connection that dies silently would never end by itself.
    const guard = setTimeout(ended, (WATCH_SECONDS + 15) * 1000);
    const onStop = () => ended();
    stopSignal.signal.addEventListener('abort', onStop);
    await over;
    clearTimeout(guard);
    stopSignal.signal.removeEventListener('abort', onStop);
    req.abort();
  };

  const loop = listWatch();

  return {
    nodeName,
    logDir,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      stopSignal.abort();
      clearInterval(heartbeat);
      await loop;
      await Promise.all([...runs.values()].map((r) => r.stop()));
      await core.deleteNode({ name: nodeName }).catch(() => {});
      log('stopped');
      if (ownDir && process.env.FANOUT_K8S_KEEP !== '1') await rm(dir, { recursive: true, force: true });
    },
  };
}

async function registerNode(core: CoreV1Api, name: string): Promise<void> {
  try {
    await core.createNode({
      body: {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', 'fanout.dev/test-kubelet': 'true' } },
      },
    });
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
  }
  await patchNodeReady(core, name, true);
}

/** The Ready condition with a fresh lastHeartbeatTime; the node lifecycle controller watches it. */
async function patchNodeReady(core: CoreV1Api, name: string, full = false): Promise<void> {
  const now = new Date().toISOString();
  const condition = (type: string, status: string, reason: string, message: string) => ({ type, status, reason, message, lastHeartbeatTime: now, ...(full ? { lastTransitionTime: now } : {}) });
  const status: Record<string, unknown> = {
    conditions: [
      condition('Ready', 'True', 'KubeletReady', 'test kubelet is posting ready status'),
      condition('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'test kubelet'),
      condition('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'test kubelet'),
      condition('PIDPressure', 'False', 'KubeletHasSufficientPID', 'test kubelet'),
    ],
  };
  if (full) {
    const resources = { cpu: '8', memory: '16Gi', pods: '110', 'ephemeral-storage': '100Gi' };
    Object.assign(status, {
      capacity: resources,
      allocatable: resources,
      addresses: [
        { type: 'InternalIP', address: '127.0.0.1' },
        { type: 'Hostname', address: name },
      ],
      nodeInfo: { kubeletVersion: 'v1.36.3-fanout-test', kubeProxyVersion: '', operatingSystem: 'linux', architecture: 'amd64', containerRuntimeVersion: 'fanout-test://1', osImage: 'local processes', kernelVersion: '', machineID: '', systemUUID: '', bootID: '' },
    });
  }
  await core.patchNodeStatus({ name, body: { status } }, STATUS_PATCH);
}
