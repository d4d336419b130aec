import type { Context } from 'hono';
import type { Hook } from '@hono/zod-openapi';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { Store } from '../store/store.js';
import type { ApiMetrics } from '../contracts/api-metrics.js';
import type { HaltMode } from '../contracts/halt.js';
import type { DeletedBatch } from '../store/batch-queries.js';
import type { BatchHeader } from '../domain/batch-spec.js';
import type { BlobStore } from '../blobs/blob-store.js';
import type { RequestAuth } from './auth.js';
import type { KeyUsage } from './key-usage.js';

/** Variables the middleware puts on the context. */
export type ApiEnv = {
  Variables: {
    tenantId?: string;
    workerToken?: string;
    requestId: string;
    /** set by the auth middleware for an API key or the admin key (src/api/auth.ts) */
    auth?: RequestAuth;
    /** the tenant an admin call acted on when its path does not name it (tenant creation), for the audit log */
    auditTenantId?: string;
  };
};

/** Everything the API needs, built in src/main and injected (no module reads the environment). */
export interface ApiDeps {
  store: Store;
  config: Config;
  logger: Logger;
  metrics: ApiMetrics;
  /** results too large to keep inline */
  blobs: BlobStore;
  /** wakes the dispatcher for a batch (in-process; the outbox covers other processes) */
  notify(batchId: string): void;
  /**
   * task names registered by workers, or null when Redis cannot be asked right now; may be up to a
   * second old unless `fresh` (ask again before refusing a task as unknown)
   */
  knownTasks(o?: { fresh?: boolean }): Promise<Set<string> | null>;
  /** `stop`: abort running items too (cancel); `pause`: let them finish (suspend) */
  haltInRedis(batchIds: string[], mode: HaltMode): Promise<void>;
  /**
   * After a delete committed: drops the batches' results from the blob store and their work from
   * Redis, and wakes the dispatcher to clean up Kubernetes (never throws)
   */
  forgetDeleted(deleted: DeletedBatch[]): Promise<void>;
  /** store + Redis reachable */
  ready(): Promise<{ store: boolean; redis: boolean }>;
  tokens: { sign(batchId: string): string; verify(batchId: string, token: string): boolean };
  /** set when Kubernetes is configured: the API server's dry-run verdict on a batch's Job */
  kubernetesAdmission?: { refusal(header: BatchHeader): Promise<{ status: number; message: string } | null> };
  /** remembers when keys were used and writes it now and then (absent: lastUsedAt is not kept) */
  keyUsage?: Pick<KeyUsage, 'touch'>;
  /** the tenant of the request's API key; throws 401 when the request has none */
  tenantOf(c: Context<ApiEnv>): string;
  validationHook: Hook<any, any, any, any>;
}
