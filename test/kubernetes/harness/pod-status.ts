import { PatchStrategy, setHeaderOptions, type CoreV1Api } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Pod status as the test kubelet tracks it, and the writer that sends it: one strategic-merge
 * PATCH of pods/{name}/status at a time, always with the latest state (a change made while a
 * write is in flight is sent right after it), retried with backoff across API server restarts.
 * Strategic merge keeps conditions others own (PodScheduled, DisruptionTarget) by their type.
 */

export type Phase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

export interface Terminated {
  exitCode: number;
  signal?: number;
  reason: string;
  message?: string;
  startedAt?: string;
  finishedAt: string;
  containerID?: string;
}

export interface ContainerState {
  name: string;
  image: string;
  restartCount: number;
  containerID?: string;
  waiting?: { reason: string; message?: string };
  running?: { startedAt: string };
  terminated?: Terminated;
  lastTerminated?: Terminated;
}

interface Condition {
  status: 'True' | 'False';
  reason?: string;
  lastTransitionTime: string;
}

export class PodStatusState {
  phase: Phase = 'Pending';
  reason?: string;
  message?: string;
  startTime?: string;
  readonly init: ContainerState[];
  readonly main: ContainerState[];
  private readonly conditions = new Map<string, Condition>();

  constructor(init: ContainerState[], main: ContainerState[]) {
    this.init = init;
    this.main = main;
  }

  /** Sets a condition; its lastTransitionTime moves only when its status changes. */
  setCondition(type: string, status: 'True' | 'False', reason?: string): void {
    const prev = this.conditions.get(type);
    if (prev && prev.status === status && prev.reason === reason) return;
    this.conditions.set(type, { status, reason, lastTransitionTime: prev && prev.status === status ? prev.lastTransitionTime : new Date().toISOString() });
  }

  toPatch(): object {
    const status: Record<string, unknown> = {
      phase: this.phase,
      hostIP: '127.0.0.1',
      hostIPs: [{ ip: '127.0.0.1' }],
      podIP: '127.0.0.1',
      podIPs: [{ ip: '127.0.0.1' }],
      conditions: [...this.conditions].map(([type, c]) => ({ type, status: c.status, reason: c.reason, lastTransitionTime: c.lastTransitionTime, lastProbeTime: null })),
      containerStatuses: this.main.map(toContainerStatus),
    };
    if (this.startTime) status.startTime = this.startTime;
    if (this.init.length) status.initContainerStatuses = this.init.map(toContainerStatus);
    if (this.reason) status.reason = this.reason;
    if (this.message) status.message = this.message;
    return { status };
  }
}

function toContainerStatus(c: ContainerState): object {
  const state = c.terminated ? { terminated: c.terminated } : c.running ? { running: c.running } : { waiting: c.waiting ?? { reason: 'ContainerCreating' } };
  return {
    name: c.name,
    image: c.image,
    imageID: `fanout-test://${c.image}`,
    containerID: c.containerID,
    ready: !!c.running,
    started: !!c.running,
    restartCount: c.restartCount,
    state,
    lastState: c.lastTerminated ? { terminated: c.lastTerminated } : {},
  };
}

export interface StatusWriterOptions {
  core: CoreV1Api;
  namespace: string;
  name: string;
  log: (line: string) => void;
  /** stop retrying (e.g. the kubelet is stopping and can wait only so long) */
  giveUp: () => boolean;
}

const PATCH_OPTIONS = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);

export class StatusWriter {
  private dirty = false;
  private writing: Promise<void> | undefined;
  /** the pod no longer exists (404): nothing more will be written */
  gone = false;

  constructor(
    private readonly opts: StatusWriterOptions,
    private readonly snapshot: () => object,
  ) {}

  /** Resolves once a write that includes the state as it is now has finished (or was given up). */
  write(): Promise<void> {
    this.dirty = true;
    this.writing ??= this.loop().finally(() => {
      this.writing = undefined;
    });
    return this.writing;
  }

  private async loop(): Promise<void> {
    while (this.dirty && !this.gone) {
      this.dirty = false;
      const body = this.snapshot();
      let delay = 200;
      for (;;) {
        try {
          await this.opts.core.patchNamespacedPodStatus({ name: this.opts.name, namespace: this.opts.namespace, body }, PATCH_OPTIONS);
          break;
        } catch (err) {
          const code = (err as { code?: number }).code;
          if (code === 404) {
            this.gone = true;
            return;
          }
          const what = `status of ${this.opts.namespace}/${this.opts.name}: ${code ?? ''} ${String((err as Error).message ?? err).slice(0, 600)}`;
          if (code === 422 || code === 400) {
            // Invalid: retrying the same body cannot help; say so loudly and move on.
            this.opts.log(`ERROR rejected ${what}`);
            break;
          }
          if (this.opts.giveUp()) {
            this.opts.log(`gave up writing ${what}`);
            return;
          }
          await sleep(delay);
          delay = Math.min(delay * 2, 2000);
        }
      }
    }
  }
}
