import { mkdir, rm } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CoreV1Api, V1Container, V1Pod } from '@kubernetes/client-node';
import { ConfigError, LOCAL_IP, containerArgv, lookPath, resolveContainerEnv, type TestImage } from './pod-env.js';
import { PodStatusState, StatusWriter, type ContainerState, type Terminated } from './pod-status.js';
import { isDir, runContainerProcess } from './container-process.js';
import type { ManagedProcess } from './processes.js';

/**
 * One pod on the test kubelet, from bind to its final delete: init containers in order, then all
 * containers at once, as local processes (each in its own process group), honouring
 * restartPolicy, activeDeadlineSeconds and deletion. Status goes through a StatusWriter.
 */

export interface PodRunDeps {
  core: CoreV1Api;
  /** prepended to PATH */
  binDirs: string[];
  images: Record<string, TestImage>;
  /** container logs go to <logDir>/<namespace>_<pod>_<container>.log */
  logDir: string;
  /** each pod gets <podsDir>/<uid>/ (its working dir and emptyDir volumes) */
  podsDir: string;
  /** KUBERNETES_SERVICE_HOST/PORT for the containers */
  apiHost: string;
  apiPort: string;
  log: (line: string) => void;
}

type AbortReason = 'deleted' | 'deadline' | 'stopped' | 'gone';

/** SIGTERM→SIGKILL wait on deletion is min(deletionGracePeriodSeconds, this) */
const MAX_GRACE_MS = 10_000;
const STOP_GRACE_MS = 2000;
const CONFIG_RETRY_MS = 1000;
const MAX_BACKOFF_MS = 10_000;

export class PodRun {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  /** resolves once the pod is terminal (and, when it was deleted, after the final delete) */
  readonly done: Promise<void>;
  private pod: V1Pod;
  private readonly state: PodStatusState;
  private readonly writer: StatusWriter;
  private readonly procs = new Set<ManagedProcess>();
  private readonly abort = new AbortController();
  private abortReason: AbortReason | undefined;
  private finished = false;
  private finalDeleteStarted = false;
  /** the kubelet is stopping: retry nothing */
  private halted = false;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private readonly dir: string;

  constructor(
    pod: V1Pod,
    private readonly deps: PodRunDeps,
  ) {
    this.pod = pod;
    this.uid = pod.metadata?.uid ?? '';
    this.namespace = pod.metadata?.namespace ?? '';
    this.name = pod.metadata?.name ?? '';
    this.dir = join(deps.podsDir, this.uid);
    const toState = (c: V1Container): ContainerState => ({ name: c.name, image: c.image ?? '', restartCount: 0 });
    this.state = new PodStatusState((pod.spec?.initContainers ?? []).map(toState), (pod.spec?.containers ?? []).map(toState));
    this.writer = new StatusWriter(
      { core: deps.core, namespace: this.namespace, name: this.name, log: deps.log, giveUp: () => this.halted || this.abortReason === 'gone' },
      () => this.state.toPatch(),
    );
    this.done = this.run();
  }

  /** A newer version of the pod from the API: a deletionTimestamp starts the termination. */
  update(pod: V1Pod): void {
    this.pod = pod;
    if (!pod.metadata?.deletionTimestamp) return;
    if (this.finished) void this.finalDelete();
    else this.stopWith('deleted');
  }

  /** The pod no longer exists: kill its processes, write nothing. */
  gone(): void {
    this.writer.gone = true;
    this.stopWith('gone');
  }

  /** The kubelet stops: kill the processes, try briefly to record the pod as Failed. */
  async stop(): Promise<void> {
    this.halted = true;
    this.stopWith('stopped');
    await this.done;
  }

  private stopWith(reason: AbortReason): void {
    if (this.abortReason) return;
    this.abortReason = reason;
    this.abort.abort();
    const graceMs =
      reason === 'gone' ? 0 : reason === 'stopped' ? STOP_GRACE_MS : Math.min(MAX_GRACE_MS, 1000 * (this.pod.metadata?.deletionGracePeriodSeconds ?? this.pod.spec?.terminationGracePeriodSeconds ?? 30));
    for (const p of this.procs) void p.stop(graceMs);
  }

  private async run(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true });
      const volumes = await this.makeVolumes();
      this.state.startTime = new Date().toISOString();
      this.state.setCondition('PodReadyToStartContainers', 'True');
      this.state.setCondition('Initialized', this.state.init.length ? 'False' : 'True', this.state.init.length ? 'ContainersNotInitialized' : undefined);
      this.state.setCondition('ContainersReady', 'False', 'ContainersNotReady');
      this.state.setCondition('Ready', 'False', 'ContainersNotReady');
      void this.writer.write();
      this.armDeadline();
      const initOk = await this.runInitContainers(volumes);
      if (initOk && !this.abortReason) {
        this.state.setCondition('Initialized', 'True');
        this.state.phase = 'Running';
        const specs = this.pod.spec?.containers ?? [];
        await Promise.all(specs.map((c, i) => this.runContainer(c, this.state.main[i], volumes, false)));
      }
    } catch (err) {
      this.deps.log(`ERROR pod ${this.namespace}/${this.name}: ${(err as Error).stack ?? err}`);
      this.state.message = `test kubelet: ${(err as Error).message}`;
    } finally {
      clearTimeout(this.deadlineTimer);
    }
    this.finish();
    if (this.abortReason !== 'gone') await this.writer.write();
    this.finished = true;
    await rm(this.dir, { recursive: true, force: true }).catch(() => {});
    if (this.abortReason === 'deleted' || this.pod.metadata?.deletionTimestamp) await this.finalDelete();
  }

  /** Sets the terminal phase from how the containers ended, as the kubelet's getPhase does. */
  private finish(): void {
    // A container that never started keeps its waiting state, as with the real kubelet.
    const allSucceeded = [...this.state.init, ...this.state.main].every((c) => c.terminated?.exitCode === 0);
    const policy = this.pod.spec?.restartPolicy ?? 'Always';
    if (this.abortReason === 'deadline') {
      this.state.phase = 'Failed';
      this.state.reason = 'DeadlineExceeded';
      this.state.message = 'Pod was active on the node longer than the specified deadline';
    } else {
      this.state.phase = allSucceeded && policy !== 'Always' ? 'Succeeded' : 'Failed';
    }
    this.state.setCondition('ContainersReady', 'False', 'PodCompleted');
    this.state.setCondition('Ready', 'False', 'PodCompleted');
  }

  private armDeadline(): void {
    const seconds = this.pod.spec?.activeDeadlineSeconds;
    if (!seconds) return;
    const elapsed = Date.now() - Date.parse(this.state.startTime ?? new Date().toISOString());
    this.deadlineTimer = setTimeout(() => this.stopWith('deadline'), Math.max(0, seconds * 1000 - elapsed));
  }

  /** The pod's last step on this node: delete it with grace 0 (finalizers, if any, keep it until their owners let go). */
  private async finalDelete(): Promise<void> {
    if (this.finalDeleteStarted || this.abortReason === 'gone') return;
    this.finalDeleteStarted = true;
    for (let delay = 200; ; delay = Math.min(delay * 2, 2000)) {
      try {
        await this.deps.core.deleteNamespacedPod({
          name: this.name,
          namespace: this.namespace,
          gracePeriodSeconds: 0,
          body: { gracePeriodSeconds: 0, preconditions: { uid: this.uid } },
        });
        return;
      } catch (err) {
        const code = (err as { code?: number }).code;
        if (code === 404 || code === 409 || this.halted) return;
        this.deps.log(`final delete of ${this.namespace}/${this.name} failed (${code ?? ''} ${(err as Error).message?.slice(0, 200)}); retrying`);
        await sleep(delay);
      }
    }
  }

  private async makeVolumes(): Promise<{ env: Record<string, string>; byName: Map<string, string> }> {
    const env: Record<string, string> = {};
    const byName = new Map<string, string>();
    for (const v of this.pod.spec?.volumes ?? []) {
      if (!v.emptyDir) continue;
      const path = join(this.dir, 'volumes', v.name);
      await mkdir(path, { recursive: true });
      byName.set(v.name, path);
      env[`FANOUT_TEST_VOLUME_${v.name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`] = path;
    }
    return { env, byName };
  }

  private async runInitContainers(volumes: Awaited<ReturnType<PodRun['makeVolumes']>>): Promise<boolean> {
    const specs = this.pod.spec?.initContainers ?? [];
    for (let i = 0; i < specs.length; i++) {
      const t = await this.runContainer(specs[i], this.state.init[i], volumes, true);
      if (this.abortReason || t?.exitCode !== 0) return false;
    }
    return true;
  }

  /** Runs a container until it is done for good under the pod's restartPolicy; answers its last termination. */
  private async runContainer(spec: V1Container, cs: ContainerState, volumes: Awaited<ReturnType<PodRun['makeVolumes']>>, init: boolean): Promise<Terminated | undefined> {
    const policy = this.pod.spec?.restartPolicy ?? 'Always';
    for (let backoff = 1000; ; backoff = Math.min(backoff * 2, MAX_BACKOFF_MS)) {
      const t = await this.runOnce(spec, cs, volumes);
      if (!t) return undefined;
      const restart = !this.abortReason && (init ? policy !== 'Never' && t.exitCode !== 0 : policy === 'Always' || (policy === 'OnFailure' && t.exitCode !== 0));
      if (!restart) return t;
      cs.lastTerminated = t;
      cs.terminated = undefined;
      cs.waiting = { reason: 'CrashLoopBackOff', message: `back-off ${backoff / 1000}s restarting failed container=${spec.name} pod=${this.name}` };
      cs.restartCount++;
      void this.writer.write();
      await sleep(backoff, undefined, { signal: this.abort.signal }).catch(() => {});
    }
  }

  /** One run of a container process; undefined when the pod was stopped before it started. */
  private async runOnce(spec: V1Container, cs: ContainerState, volumes: Awaited<ReturnType<PodRun['makeVolumes']>>): Promise<Terminated | undefined> {
    const image = this.deps.images[spec.image ?? ''];
    let vars: Record<string, string>;
    for (;;) {
      if (this.abortReason) return undefined;
      try {
        vars = await resolveContainerEnv({ pod: this.pod, container: spec, core: this.deps.core, base: this.baseEnv(volumes.env) });
        break;
      } catch (err) {
        const message = err instanceof ConfigError ? err.message : `reading env sources: ${(err as Error).message}`;
        if (cs.waiting?.message !== message) {
          cs.waiting = { reason: 'CreateContainerConfigError', message };
          void this.writer.write();
        }
        await sleep(CONFIG_RETRY_MS, undefined, { signal: this.abort.signal }).catch(() => {});
      }
    }
    const mounted = (spec.volumeMounts ?? []).find((m) => m.mountPath === spec.workingDir && volumes.byName.has(m.name));
    const cwd = mounted ? volumes.byName.get(mounted.name)! : spec.workingDir && (await isDir(spec.workingDir)) ? spec.workingDir : this.dir;
    const hostPath = [...this.deps.binDirs, vars.PATH ?? image?.env?.PATH ?? process.env.PATH ?? ''].join(delimiter);
    const env: Record<string, string> = { HOME: process.env.HOME ?? '/root', ...(image?.env ?? {}), ...vars, PATH: hostPath };
    const argv = containerArgv(spec, image, vars);
    const startedAt = new Date().toISOString();
    const startError = (message: string): Terminated => ({ exitCode: 128, reason: 'StartError', message, startedAt, finishedAt: startedAt });
    let t: Terminated;
    let running: ManagedProcess | undefined;
    const exe = argv.length ? await lookPath(argv[0], hostPath, cwd) : undefined;
    if (!argv.length) t = startError(`no command specified for container ${spec.name} (image ${spec.image} has no entrypoint in the test kubelet's images)`);
    else if (!exe) t = startError(`exec: "${argv[0]}": executable file not found in $PATH`);
    else if (this.abortReason) return undefined;
    else {
      const proc = runContainerProcess(
        {
          name: `${this.namespace}/${this.name}/${spec.name}`,
          exe,
          args: argv.slice(1),
          env,
          cwd,
          logFile: join(this.deps.logDir, `${this.namespace}_${this.name}_${spec.name}.log`),
          fallbackToLogsOnError: spec.terminationMessagePolicy === 'FallbackToLogsOnError',
          onStart: (p, containerID) => {
            running = p;
            this.procs.add(p);
            cs.containerID = containerID;
            cs.running = { startedAt };
            cs.waiting = undefined;
            this.updateReadiness();
            void this.writer.write();
          },
        },
        startedAt,
      );
      t = await proc;
      if (running) this.procs.delete(running);
    }
    cs.running = undefined;
    cs.waiting = undefined;
    cs.terminated = t;
    this.updateReadiness();
    void this.writer.write();
    return t;
  }

  private updateReadiness(): void {
    const ready = this.state.main.length > 0 && this.state.main.every((c) => !!c.running);
    this.state.setCondition('ContainersReady', ready ? 'True' : 'False', ready ? undefined : 'ContainersNotReady');
    this.state.setCondition('Ready', ready ? 'True' : 'False', ready ? undefined : 'ContainersNotReady');
  }

  private baseEnv(volumeEnv: Record<string, string>): Record<string, string> {
    return {
      HOSTNAME: this.name,
      KUBERNETES_SERVICE_HOST: this.deps.apiHost,
      KUBERNETES_SERVICE_PORT: this.deps.apiPort,
      KUBERNETES_SERVICE_PORT_HTTPS: this.deps.apiPort,
      FANOUT_TEST_POD_DIR: this.dir,
      FANOUT_TEST_POD_IP: LOCAL_IP,
      ...volumeEnv,
    };
  }
}
