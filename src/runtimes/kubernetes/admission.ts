import { ApiException, BatchV1Api, type V1Job } from '@kubernetes/client-node';
import type { BatchHeader } from '../../domain/batch-spec.js';
import type { KubernetesConfig } from '../../config/config.js';
import { loadKubeConfig, runtimeSettings, serverMessage } from './client.js';
import { indexedJob, workerJob } from './manifests.js';

/** A batch id for objects that are validated and never stored. */
const DRY_RUN_ID = 'bdryrun0000000000000';

/**
 * Asks the API server whether it would accept the Job a batch becomes, before the batch is
 * stored: a server-side dry run with strict field validation, so what Kubernetes rejects (an
 * image name it refuses, a quantity, a namespace that does not exist or may not be used) is a
 * 422 at submission instead of a failed batch later. Per-item values are checked when the Jobs
 * are created; an unreachable API server does not block submission.
 */
export class KubernetesAdmission {
  private readonly api: BatchV1Api;

  constructor(
    private readonly config: KubernetesConfig,
    private readonly redisUrl: string,
  ) {
    this.api = loadKubeConfig(config).makeApiClient(BatchV1Api);
  }

  /** The API server's reason to refuse, or null when it accepts (or cannot be asked). */
  async refusal(header: BatchHeader): Promise<{ status: number; message: string } | null> {
    const settings = runtimeSettings(this.config, { url: this.redisUrl, prefix: 'fanout' }, 'http://fanout.invalid');
    const job: V1Job =
      header.runtime === 'queue'
        ? workerJob({ batchId: DRY_RUN_ID, header, suspend: true, settings })
        : indexedJob({ batchId: DRY_RUN_ID, header, shard: { shard: 0, offset: 0, count: 1 }, suspend: true, settings });
    const namespace = job.metadata?.namespace ?? this.config.namespace;
    try {
      await this.api.createNamespacedJob({ namespace, body: job, dryRun: 'All', fieldValidation: 'Strict' });
      return null;
    } catch (err) {
      if (!(err instanceof ApiException)) return null;
      if (err.code === 404) return { status: 422, message: `namespace "${namespace}" does not exist on the cluster` };
      if (err.code === 403) return { status: 403, message: `Kubernetes does not let Fanout create Jobs in namespace "${namespace}": ${serverMessage(err)}` };
      if (err.code === 400 || err.code === 422) return { status: 422, message: `Kubernetes rejects the batch's Job: ${serverMessage(err)}` };
      return null;
    }
  }
}
