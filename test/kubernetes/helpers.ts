import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { inject } from 'vitest';

/**
 * What Kubernetes tests need from the suite's environment (test/kubernetes/global-setup.ts):
 * a KubeConfig for the shared control plane, a namespace of their own, bounded waits with
 * useful messages, and an API server restart.
 */

/** A KubeConfig (admin token) for the suite's control plane. */
export function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(inject('kubeconfigPath'));
  return kc;
}

/** `prefix-<random>`: a namespace name no other test uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

/**
 * Creates a namespace and waits for its ServiceAccount `default`: until it exists, the API
 * server rejects pods there (and the job controller's pod creations fail). Answers the name.
 */
export async function createNamespace(name: string): Promise<string> {
  const core = kubeConfig().makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name, labels: { 'fanout.dev/test': 'true' } } } });
  await waitFor(() => core.readNamespacedServiceAccount({ name: 'default', namespace: name }).then(() => true), {
    what: `ServiceAccount default in namespace ${name}`,
    timeoutMs: 30_000,
  });
  return name;
}

/** Deletes a namespace; with wait, until it is gone (its pods' processes stopped, finalizers done). */
export async function deleteNamespace(name: string, opts: { wait?: boolean; timeoutMs?: number } = {}): Promise<void> {
  const core = kubeConfig().makeApiClient(CoreV1Api);
  try {
    await core.deleteNamespace({ name });
  } catch (err) {
    if ((err as { code?: number }).code === 404) return;
    throw err;
  }
  if (!opts.wait) return;
  await waitFor(
    () =>
      core.readNamespace({ name }).then(
        () => false,
        (err: { code?: number }) => {
          if (err.code === 404) return true;
          throw err;
        },
      ),
    { what: `namespace ${name} to be deleted`, timeoutMs: opts.timeoutMs ?? 60_000 },
  );
}

export interface WaitOptions {
  /** default 60 s */
  timeoutMs?: number;
  /** default 200 ms */
  intervalMs?: number;
  /** what is awaited, for the error message */
  what: string;
  /** more context for the timeout error (e.g. describePods) */
  describe?: () => Promise<string> | string;
}

/**
 * Calls fn until it answers a truthy value, then answers it. A throw counts as "not yet" (the
 * API server may be restarting). On timeout the error names `what`, the last value or error,
 * and `describe()`.
 */
export async function waitFor<T>(fn: () => Promise<T> | T, opts: WaitOptions): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    try {
      const value = await fn();
      if (value) return value as NonNullable<T>;
      last = `last answer: ${JSON.stringify(value)}`;
    } catch (err) {
      last = `last error: ${(err as Error).message ?? err}`.slice(0, 1000);
    }
    if (Date.now() >= deadline) {
      let context = '';
      if (opts.describe) {
        try {
          context = `\n${await opts.describe()}`;
        } catch (err) {
          context = `\n(describe failed: ${(err as Error).message})`;
        }
      }
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what} (${last})${context}`);
    }
    await sleep(opts.intervalMs ?? 200);
  }
}

/** One line per pod in a namespace: name, phase, node, conditions and container states (for error messages). */
export async function describePods(namespace: string): Promise<string> {
  const core = kubeConfig().makeApiClient(CoreV1Api);
  const pods = await core.listNamespacedPod({ namespace });
  if (!pods.items.length) return `no pods in ${namespace}`;
  return pods.items.map(describePod).join('\n');
}

export function describePod(pod: V1Pod): string {
  const conditions = (pod.status?.conditions ?? []).filter((c) => c.status === 'True').map((c) => c.type);
  const containers = (pod.status?.containerStatuses ?? []).map((c) => {
    const s = c.state ?? {};
    const state = s.terminated ? `terminated(${s.terminated.exitCode} ${s.terminated.reason})` : s.running ? 'running' : `waiting(${s.waiting?.reason ?? ''} ${s.waiting?.message ?? ''})`;
    return `${c.name}=${state}`;
  });
  const deleting = pod.metadata?.deletionTimestamp ? ' deleting' : '';
  return `${pod.metadata?.name}: ${pod.status?.phase}${deleting} node=${pod.spec?.nodeName ?? '-'} [${conditions.join(',')}] ${containers.join(' ')}`;
}

/**
 * Restarts kube-apiserver (SIGTERM, start on the same port, wait for /readyz) through
 * global-setup's control server; resolves once it is ready again.
 */
export async function restartApiServer(): Promise<void> {
  const res = await fetch(`${inject('controlPlaneControlUrl')}/restart-apiserver`, { method: 'POST' });
  if (res.status !== 204) throw new Error(`API server restart failed: HTTP ${res.status}: ${await res.text()}`);
}
