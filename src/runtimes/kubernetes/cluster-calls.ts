import {
  ApiException,
  BatchV1Api,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1Job,
  type V1Secret,
  type V1Service,
} from '@kubernetes/client-node';
import { serverMessage } from './client.js';
import { CreateLimiter } from './create-limiter.js';

/** An API-server answer that retrying will not change: the batch fails with its message. */
export class PermanentError extends Error {}

/**
 * The writes Fanout makes to the cluster, each named for its error messages ("create Job x:
 * <the API server's message>"). Creating what exists already (a restart in between) and
 * deleting what is gone both succeed. A 4xx other than 408 and 429 is a {@link PermanentError};
 * anything else (5xx, a network error, 429) is an ordinary Error to retry later, and a 429 also
 * pauses creations for its `Retry-After`.
 */
export class ClusterCalls {
  private readonly batchApi: BatchV1Api;
  private readonly coreApi: CoreV1Api;
  private readonly limiter: CreateLimiter;

  constructor(kc: KubeConfig, createQps: number) {
    this.batchApi = kc.makeApiClient(BatchV1Api);
    this.coreApi = kc.makeApiClient(CoreV1Api);
    this.limiter = new CreateLimiter(createQps);
  }

  /** 0 when a paced creation may go now, else the ms to wait (see CreateLimiter). */
  creationDelay(): number {
    return this.limiter.take();
  }

  createJob(namespace: string, body: V1Job): Promise<void> {
    return this.create('Job', body.metadata!.name!, () => this.batchApi.createNamespacedJob({ namespace, body }));
  }

  createSecret(namespace: string, body: V1Secret): Promise<void> {
    return this.create('Secret', body.metadata!.name!, () => this.coreApi.createNamespacedSecret({ namespace, body }));
  }

  createService(namespace: string, body: V1Service): Promise<void> {
    return this.create('Service', body.metadata!.name!, () => this.coreApi.createNamespacedService({ namespace, body }));
  }

  /** Background propagation: the garbage collector deletes the pods, whose kubelet stops them. */
  deleteJob(namespace: string, name: string): Promise<void> {
    return this.delete('Job', name, () => this.batchApi.deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background' }));
  }

  deleteSecret(namespace: string, name: string): Promise<void> {
    return this.delete('Secret', name, () => this.coreApi.deleteNamespacedSecret({ name, namespace }));
  }

  deleteService(namespace: string, name: string): Promise<void> {
    return this.delete('Service', name, () => this.coreApi.deleteNamespacedService({ name, namespace }));
  }

  async suspendJob(namespace: string, name: string, suspend: boolean): Promise<void> {
    try {
      await this.call(`patch Job ${name}`, () =>
        this.batchApi.patchNamespacedJob({ name, namespace, body: { spec: { suspend } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)),
      );
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return; // deleted meanwhile: nothing to suspend
      throw err;
    }
  }

  private async create(kind: string, name: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await this.call(`create ${kind} ${name}`, fn);
      this.limiter.succeeded();
    } catch (err) {
      if (err instanceof ApiException && err.code === 409) return; // created before a restart
      // The namespace went away after the batch was accepted.
      if (err instanceof ApiException && err.code === 404) throw new PermanentError(`create ${kind} ${name}: ${serverMessage(err)}`);
      throw err;
    }
  }

  private async delete(kind: string, name: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await this.call(`delete ${kind} ${name}`, fn);
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return;
      throw err;
    }
  }

  /** One call; 404 and 409 come back as they are, for the callers above to judge. */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof ApiException)) throw new Error(`${what}: ${(err as Error).message}`);
      if (err.code === 429) this.limiter.throttle(err.headers?.['retry-after']);
      if (err.code === 404 || err.code === 409) throw err;
      const message = `${what}: ${serverMessage(err)}`;
      if (err.code >= 400 && err.code < 500 && err.code !== 429 && err.code !== 408) throw new PermanentError(message);
      throw new Error(message);
    }
  }
}
