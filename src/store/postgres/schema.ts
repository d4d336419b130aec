import { sql } from 'drizzle-orm';
import { bigint, index, integer, pgTable, primaryKey, text } from 'drizzle-orm/pg-core';

/**
 * The PostgreSQL schema: the mirror of src/store/sqlite/schema.ts, with the same table, column and
 * index names, so the operations in src/store run the same SQL on both. Changes go through
 * `npx drizzle-kit generate --config drizzle.postgres.config.ts` into migrations/postgres/, never by
 * hand-editing the database; a change to one schema is made to the other in the same commit.
 *
 * Every SQLite `integer` is a `bigint` here, read as a JS number (the adapter parses int8): epoch
 * milliseconds need 64 bits, and one integer type everywhere keeps the shared SQL free of casts.
 */

export const tenants = pgTable('tenants', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  /** share of worker capacity against other tenants with waiting work (fair share) */
  weight: bigint('weight', { mode: 'number' }).notNull().default(1),
  /** JSON object of this tenant's quota overrides (unset keys: the server-wide defaults) */
  quotas: text('quotas').notNull().default('{}'),
  /** a disabled tenant's keys are refused; its data stays */
  disabledAt: bigint('disabled_at', { mode: 'number' }),
  createdAt: bigint('created_at', { mode: 'number' }).notNull(),
  updatedAt: bigint('updated_at', { mode: 'number' }),
});

export const apiKeys = pgTable('api_keys', {
  id: text('id').primaryKey(),
  tenantId: text('tenant_id').notNull().references(() => tenants.id, { onDelete: 'cascade' }),
  /** sha256 of the key: keys are long random strings, so a fast hash is enough at rest */
  keyHash: text('key_hash').notNull().unique(),
  name: text('name'),
  /** the key's first characters, shown in listings to tell keys apart */
  prefix: text('prefix'),
  /** JSON array of scopes: read, write, admin */
  scopes: text('scopes').notNull().default('["read","write","admin"]'),
  createdAt: bigint('created_at', { mode: 'number' }).notNull(),
  lastUsedAt: bigint('last_used_at', { mode: 'number' }),
  expiresAt: bigint('expires_at', { mode: 'number' }),
  revokedAt: bigint('revoked_at', { mode: 'number' }),
});

export const settings = pgTable('settings', {
  key: text('key').primaryKey(),
  value: text('value').notNull(),
});

export const batches = pgTable(
  'batches',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id').notNull().references(() => tenants.id, { onDelete: 'cascade' }),
    name: text('name'),
    /** JSON object of labels, also kept row-per-label in batch_labels for selector queries */
    labels: text('labels').notNull().default('{}'),
    /** the validated spec without items, JSON */
    spec: text('spec').notNull(),
    task: text('task'),
    parallelism: bigint('parallelism', { mode: 'number' }).notNull(),
    /** higher runs first among the tenant's batches (aged so low priority is never starved) */
    priority: bigint('priority', { mode: 'number' }).notNull().default(0),
    /**
     * uploading: NDJSON still streaming, invisible; active: being worked; final: phase is final;
     * deleting: deleted by a client, invisible, its rows being removed in chunks (see `sweep`)
     */
    state: text('state', { enum: ['uploading', 'active', 'final', 'deleting'] }).notNull(),
    phase: text('phase').notNull(),
    /** JSON {halt, suspended}: facts decided by a request or a rule, input to deriveStatus */
    decisions: text('decisions').notNull(),
    /** JSON {conditions, startTime, completionTime, completedIndexes, failedIndexes, indexesKey} */
    status: text('status').notNull(),
    /** items with idx >= this were never released (fresh items are released in index order) */
    releaseCursor: bigint('release_cursor', { mode: 'number' }).notNull().default(0),
    total: bigint('total', { mode: 'number' }).notNull().default(0),
    pending: bigint('pending', { mode: 'number' }).notNull().default(0),
    running: bigint('running', { mode: 'number' }).notNull().default(0),
    succeeded: bigint('succeeded', { mode: 'number' }).notNull().default(0),
    failed: bigint('failed', { mode: 'number' }).notNull().default(0),
    cancelled: bigint('cancelled', { mode: 'number' }).notNull().default(0),
    /** bytes of the results its items stored (inline JSON text and blobs), for the storedResultBytes quota */
    resultBytes: bigint('result_bytes', { mode: 'number' }).notNull().default(0),
    /**
     * Work on the batch's items left to do in bounded chunks (src/store/sweeps.ts): cancel (open
     * items → cancelled), retry (failed and cancelled items → pending) or delete (rows removed);
     * null when none. The durable marker a restarted dispatcher resumes from.
     */
    sweep: text('sweep', { enum: ['cancel', 'retry', 'delete'] }),
    /** the index the next chunk of `sweep` starts at */
    sweepCursor: bigint('sweep_cursor', { mode: 'number' }).notNull().default(0),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    updatedAt: bigint('updated_at', { mode: 'number' }).notNull(),
  },
  (t) => [
    index('batches_tenant_created').on(t.tenantId, t.id),
    index('batches_state').on(t.state),
    index('batches_sweep').on(t.sweep).where(sql`sweep IS NOT NULL`),
  ],
);

export const batchLabels = pgTable(
  'batch_labels',
  {
    batchId: text('batch_id').notNull().references(() => batches.id, { onDelete: 'cascade' }),
    key: text('key').notNull(),
    value: text('value').notNull(),
  },
  (t) => [primaryKey({ columns: [t.batchId, t.key] }), index('batch_labels_key_value').on(t.key, t.value)],
);

export const items = pgTable(
  'items',
  {
    batchId: text('batch_id').notNull().references(() => batches.id, { onDelete: 'cascade' }),
    idx: bigint('idx', { mode: 'number' }).notNull(),
    customId: text('custom_id'),
    /** the item as JSON text */
    input: text('input').notNull(),
    status: text('status', { enum: ['pending', 'running', 'succeeded', 'failed', 'cancelled'] }).notNull(),
    /** lease generation: incremented each time the item is released; results must carry it */
    attempt: bigint('attempt', { mode: 'number' }).notNull().default(0),
    /** failed attempts that count against backoffLimitPerItem */
    failures: bigint('failures', { mode: 'number' }).notNull().default(0),
    leaseId: text('lease_id'),
    /** a pending item is not released before this time (retry backoff) */
    notBefore: bigint('not_before', { mode: 'number' }).notNull().default(0),
    /** JSON of an inline result */
    result: text('result'),
    /** path of a result in the blob directory, relative to it */
    resultBlob: text('result_blob'),
    error: text('error'),
    reason: text('reason'),
    startedAt: bigint('started_at', { mode: 'number' }),
    finishedAt: bigint('finished_at', { mode: 'number' }),
    // The attempt that succeeded, kept in the item row instead of an `attempts` row: a success is
    // the common case, and its row cost the write path a heap row and a key entry per item. The
    // attempt history adds it from here (src/store/item-queries.ts). Unset on other items.
    /** the worker (or pod) that ran the succeeded attempt */
    worker: text('worker'),
    exitCode: bigint('exit_code', { mode: 'number' }),
    httpStatus: bigint('http_status', { mode: 'number' }),
    /** when the succeeded attempt started and finished, by the worker's clock */
    attemptStartedAt: bigint('attempt_started_at', { mode: 'number' }),
    attemptFinishedAt: bigint('attempt_finished_at', { mode: 'number' }),
  },
  (t) => [
    primaryKey({ columns: [t.batchId, t.idx] }),
    // Partial, on the rare outcomes only: ingest and the pending → running → succeeded path of
    // every item pay nothing for it, while `?status=failed` and retries find their few rows fast.
    // Listing the common statuses scans the primary key, in index order, which they fill anyway.
    index('items_failed').on(t.batchId, t.status, t.idx).where(sql`status IN ('failed', 'cancelled')`),
    index('items_retry').on(t.batchId, t.notBefore).where(sql`status = 'pending' AND attempt > 0`),
  ],
);

export const attempts = pgTable(
  'attempts',
  {
    batchId: text('batch_id').notNull().references(() => batches.id, { onDelete: 'cascade' }),
    idx: bigint('idx', { mode: 'number' }).notNull(),
    attempt: bigint('attempt', { mode: 'number' }).notNull(),
    outcome: text('outcome', { enum: ['succeeded', 'failed'] }).notNull(),
    exitCode: bigint('exit_code', { mode: 'number' }),
    httpStatus: bigint('http_status', { mode: 'number' }),
    condition: text('condition'),
    error: text('error'),
    /** what the failure policy decided: Retrying, BackoffLimitExceeded, FailItemRule, … */
    decision: text('decision'),
    worker: text('worker'),
    startedAt: bigint('started_at', { mode: 'number' }),
    finishedAt: bigint('finished_at', { mode: 'number' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.batchId, t.idx, t.attempt] })],
);

/** Lease ranges released to Redis and not yet fully reported. */
export const leases = pgTable(
  'leases',
  {
    id: text('id').primaryKey(),
    batchId: text('batch_id').notNull().references(() => batches.id, { onDelete: 'cascade' }),
    task: text('task').notNull(),
    /** JSON array of [index, attempt] still outstanding */
    outstanding: text('outstanding').notNull(),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    /** first time a resync did not find the lease in Redis */
    missingSince: bigint('missing_since', { mode: 'number' }),
  },
  (t) => [index('leases_batch').on(t.batchId)],
);

/** Intents written in the same transaction as the change that causes them. */
export const outbox = pgTable('outbox', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
  kind: text('kind', { enum: ['dispatch'] }).notNull(),
  batchId: text('batch_id').notNull(),
  createdAt: bigint('created_at', { mode: 'number' }).notNull(),
});

export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    tenantId: text('tenant_id').notNull().references(() => tenants.id, { onDelete: 'cascade' }),
    key: text('key').notNull(),
    requestHash: text('request_hash').notNull(),
    batchId: text('batch_id').notNull().references(() => batches.id, { onDelete: 'cascade' }),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.key] })],
);

/**
 * Schedules: the CronJob of batches. `spec` holds the validated schedule (cron expression, time
 * zone, concurrency policy, suspend, starting deadline, history limits, batch template).
 */
export const schedules = pgTable(
  'schedules',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id').notNull().references(() => tenants.id, { onDelete: 'cascade' }),
    name: text('name'),
    /** JSON object of labels, also kept row-per-label in schedule_labels for selector queries */
    labels: text('labels').notNull().default('{}'),
    spec: text('spec').notNull(),
    /** JSON: lastScheduleTime, lastSuccessfulTime, what was skipped or missed and why */
    status: text('status').notNull().default('{}'),
    /** the next tick (epoch ms) the schedule is due; null while suspended */
    nextRunAt: bigint('next_run_at', { mode: 'number' }),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    updatedAt: bigint('updated_at', { mode: 'number' }).notNull(),
  },
  (t) => [index('schedules_tenant').on(t.tenantId, t.id), index('schedules_next_run').on(t.nextRunAt)],
);

export const scheduleLabels = pgTable(
  'schedule_labels',
  {
    scheduleId: text('schedule_id').notNull().references(() => schedules.id, { onDelete: 'cascade' }),
    key: text('key').notNull(),
    value: text('value').notNull(),
  },
  (t) => [primaryKey({ columns: [t.scheduleId, t.key] }), index('schedule_labels_key_value').on(t.key, t.value)],
);

/**
 * One row per tick a schedule handled: the primary key makes "one batch per tick" hold across
 * dispatchers and restarts (the row commits with the batch it started, or records the skip).
 */
export const scheduleRuns = pgTable(
  'schedule_runs',
  {
    scheduleId: text('schedule_id').notNull().references(() => schedules.id, { onDelete: 'cascade' }),
    /** the tick (epoch ms), or the time of a manual trigger */
    tickAt: bigint('tick_at', { mode: 'number' }).notNull(),
    /** started: a batch was created; skipped: Forbid with a run active, or missed past the starting deadline */
    outcome: text('outcome', { enum: ['started', 'skipped'] }).notNull(),
    batchId: text('batch_id'),
    reason: text('reason'),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.scheduleId, t.tickAt] }), index('schedule_runs_batch').on(t.batchId)],
);

/**
 * Tenant-wide webhook endpoints. `secret` signs every delivery; after a rotation the previous
 * secret also signs until `previousSecretExpiresAt` (both signatures in one header).
 */
export const webhookEndpoints = pgTable(
  'webhook_endpoints',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id').notNull().references(() => tenants.id, { onDelete: 'cascade' }),
    url: text('url').notNull(),
    description: text('description'),
    /** JSON array of event filters */
    events: text('events').notNull(),
    /**
     * 0/1, not a boolean: SQLite has no boolean type and the shared SQL says `enabled = 1`, which
     * PostgreSQL refuses for a boolean column (no boolean = integer operator).
     */
    enabled: integer('enabled').notNull().default(1),
    /** why the endpoint was disabled (a 410 from the receiver, a client request) */
    disabledReason: text('disabled_reason'),
    secret: text('secret').notNull(),
    previousSecret: text('previous_secret'),
    previousSecretExpiresAt: bigint('previous_secret_expires_at', { mode: 'number' }),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    updatedAt: bigint('updated_at', { mode: 'number' }).notNull(),
  },
  (t) => [index('webhook_endpoints_tenant').on(t.tenantId, t.id)],
);

/** The secret that signs the webhooks batches name in their spec: one per tenant, created on first use. */
export const webhookBatchSecrets = pgTable('webhook_batch_secrets', {
  tenantId: text('tenant_id').primaryKey().references(() => tenants.id, { onDelete: 'cascade' }),
  secret: text('secret').notNull(),
  previousSecret: text('previous_secret'),
  previousSecretExpiresAt: bigint('previous_secret_expires_at', { mode: 'number' }),
  createdAt: bigint('created_at', { mode: 'number' }).notNull(),
});

/** An event, written in the transaction of the change it reports; `payload` is the exact body sent. */
export const webhookEvents = pgTable(
  'webhook_events',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id').notNull().references(() => tenants.id, { onDelete: 'cascade' }),
    batchId: text('batch_id').notNull().references(() => batches.id, { onDelete: 'cascade' }),
    type: text('type').notNull(),
    payload: text('payload').notNull(),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
  },
  (t) => [index('webhook_events_batch').on(t.batchId)],
);

/**
 * One event to one target (a tenant endpoint, or the batch's own webhook when endpointId is
 * null). `pending` rows whose nextAttemptAt has come are enqueued by the dispatcher's poller.
 */
export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id').notNull().references(() => tenants.id, { onDelete: 'cascade' }),
    eventId: text('event_id').notNull().references(() => webhookEvents.id, { onDelete: 'cascade' }),
    batchId: text('batch_id').notNull().references(() => batches.id, { onDelete: 'cascade' }),
    endpointId: text('endpoint_id').references(() => webhookEndpoints.id, { onDelete: 'cascade' }),
    url: text('url').notNull(),
    status: text('status', { enum: ['pending', 'succeeded', 'failed'] }).notNull(),
    /** attempts made in all (numbers the attempt rows) */
    attempts: bigint('attempts', { mode: 'number' }).notNull().default(0),
    /** failed attempts since the delivery was (re)started: the position in the retry schedule */
    step: bigint('step', { mode: 'number' }).notNull().default(0),
    nextAttemptAt: bigint('next_attempt_at', { mode: 'number' }),
    /** when the poller last put it on the queue (it is put again if that attempt never ran) */
    queuedAt: bigint('queued_at', { mode: 'number' }),
    lastError: text('last_error'),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    updatedAt: bigint('updated_at', { mode: 'number' }).notNull(),
  },
  (t) => [
    index('webhook_deliveries_due').on(t.nextAttemptAt).where(sql`status = 'pending'`),
    index('webhook_deliveries_batch').on(t.batchId),
    index('webhook_deliveries_endpoint').on(t.endpointId, t.createdAt),
  ],
);

/** The delivery log: one row per HTTP attempt. */
export const webhookAttempts = pgTable(
  'webhook_attempts',
  {
    deliveryId: text('delivery_id').notNull().references(() => webhookDeliveries.id, { onDelete: 'cascade' }),
    tenantId: text('tenant_id').notNull().references(() => tenants.id, { onDelete: 'cascade' }),
    attempt: bigint('attempt', { mode: 'number' }).notNull(),
    at: bigint('at', { mode: 'number' }).notNull(),
    statusCode: bigint('status_code', { mode: 'number' }),
    latencyMs: bigint('latency_ms', { mode: 'number' }).notNull(),
    /** at most 1 KiB of the response body */
    response: text('response'),
    error: text('error'),
  },
  (t) => [primaryKey({ columns: [t.deliveryId, t.attempt] })],
);

/**
 * Leadership of a role that one process may hold at a time (the dispatcher). A holder renews
 * its lease before `expiresAt`; another process takes over once it lapses, and `token` goes up
 * by one with every new holder: the fencing token a deposed holder's writes are checked against.
 */
export const leaderLeases = pgTable('leader_leases', {
  name: text('name').primaryKey(),
  holder: text('holder').notNull(),
  token: bigint('token', { mode: 'number' }).notNull(),
  expiresAt: bigint('expires_at', { mode: 'number' }).notNull(),
});

/**
 * The audit log: one row per mutating API call made with an API key or the admin key (worker
 * tokens' result uploads are not audited). `tenant_id` is the tenant the call acted on (null for
 * an admin call on no tenant); no foreign key, so the log outlives what it describes. Never holds
 * a request body or a secret. Pruned after FANOUT_AUDIT_RETENTION_DAYS by the leading dispatcher.
 */
export const auditEvents = pgTable(
  'audit_events',
  {
    /** sortable by time (src/store/ids.ts): pages go newest first by id */
    id: text('id').primaryKey(),
    tenantId: text('tenant_id'),
    /** the API key's id; null for the admin key */
    keyId: text('key_id'),
    /** read, write, admin, or `server-admin` for FANOUT_ADMIN_KEY */
    scope: text('scope').notNull(),
    /** the route: `POST /v1/batches/{id}/cancel` */
    action: text('action').notNull(),
    /** the path called: `/v1/batches/b0…/cancel` (no query string) */
    target: text('target').notNull(),
    /** the HTTP status answered */
    status: bigint('status', { mode: 'number' }).notNull(),
    sourceAddress: text('source_address'),
    requestId: text('request_id'),
    at: bigint('at', { mode: 'number' }).notNull(),
  },
  (t) => [index('audit_events_tenant_idx').on(t.tenantId, t.id), index('audit_events_at_idx').on(t.at)],
);

/**
 * Usage per tenant per UTC day, added to in the transactions that submit batches and record
 * reports (GET /v1/usage reads it; nothing scans items for it).
 */
export const tenantUsageDays = pgTable(
  'tenant_usage_days',
  {
    tenantId: text('tenant_id').notNull().references(() => tenants.id, { onDelete: 'cascade' }),
    /** YYYY-MM-DD, UTC */
    day: text('day').notNull(),
    batches: bigint('batches', { mode: 'number' }).notNull().default(0),
    itemsSubmitted: bigint('items_submitted', { mode: 'number' }).notNull().default(0),
    /** attempts that ran to an outcome (succeeded or failed; items handed back unrun are not counted) */
    itemsRun: bigint('items_run', { mode: 'number' }).notNull().default(0),
    /** execution time of those attempts, from the workers' start and finish times */
    itemMs: bigint('item_ms', { mode: 'number' }).notNull().default(0),
    resultBytes: bigint('result_bytes', { mode: 'number' }).notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.day] })],
);

/**
 * Submissions per tenant per minute (fixed windows starting on the minute), for the
 * batchesPerMinute and itemsPerMinute quotas: in the store, so every API replica counts the same.
 * Windows older than the current one are deleted as new ones start.
 */
export const tenantRateWindows = pgTable(
  'tenant_rate_windows',
  {
    tenantId: text('tenant_id').notNull().references(() => tenants.id, { onDelete: 'cascade' }),
    /** epoch ms of the minute the window starts */
    windowStart: bigint('window_start', { mode: 'number' }).notNull(),
    batches: bigint('batches', { mode: 'number' }).notNull().default(0),
    items: bigint('items', { mode: 'number' }).notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.windowStart] })],
);
