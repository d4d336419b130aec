import { sql } from 'drizzle-orm';
import { index, integer, primaryKey, sqliteTable, text } from 'drizzle-orm/sqlite-core';

/**
 * The SQLite schema. Changes go through `npx drizzle-kit generate --config drizzle.sqlite.config.ts` into migrations/sqlite/, never by
 * hand-editing the database. Timestamps are epoch milliseconds.
 */

export const tenants = sqliteTable('tenants', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  /** share of worker capacity against other tenants with waiting work (fair share) */
  weight: integer('weight').notNull().default(1),
  /** JSON object of this tenant's quota overrides (unset keys: the server-wide defaults) */
  quotas: text('quotas').notNull().default('{}'),
  /** a disabled tenant's keys are refused; its data stays */
  disabledAt: integer('disabled_at'),
  createdAt: integer('created_at').notNull(),
  updatedAt: integer('updated_at'),
});

export const apiKeys = sqliteTable('api_keys', {
  id: text('id').primaryKey(),
  tenantId: text('tenant_id').notNull().references(() => tenants.id, { onDelete: 'cascade' }),
  /** sha256 of the key: keys are long random strings, so a fast hash is enough at rest */
  keyHash: text('key_hash').notNull().unique(),
  name: text('name'),
  /** the key's first characters, shown in listings to tell keys apart */
  prefix: text('prefix'),
  /** JSON array of scopes: read, write, admin */
  scopes: text('scopes').notNull().default('["read","write","admin"]'),
  createdAt: integer('created_at').notNull(),
  lastUsedAt: integer('last_used_at'),
  expiresAt: integer('expires_at'),
  revokedAt: integer('revoked_at'),
});

export const settings = sqliteTable('settings', {
  key: text('key').primaryKey(),
  value: text('value').notNull(),
});

export const batches = sqliteTable(
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
    parallelism: integer('parallelism').notNull(),
    /** higher runs first among the tenant's batches (aged so low priority is never starved) */
    priority: integer('priority').notNull().default(0),
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
    releaseCursor: integer('release_cursor').notNull().default(0),
    total: integer('total').notNull().default(0),
    pending: integer('pending').notNull().default(0),
    running: integer('running').notNull().default(0),
    succeeded: integer('succeeded').notNull().default(0),
    failed: integer('failed').notNull().default(0),
    cancelled: integer('cancelled').notNull().default(0),
    /** bytes of the results its items stored (inline JSON text and blobs), for the storedResultBytes quota */
    resultBytes: integer('result_bytes').notNull().default(0),
    /**
     * Work on the batch's items left to do in bounded chunks (src/store/sweeps.ts): cancel (open
     * items → cancelled), retry (failed and cancelled items → pending) or delete (rows removed);
     * null when none. The durable marker a restarted dispatcher resumes from.
     */
    sweep: text('sweep', { enum: ['cancel', 'retry', 'delete'] }),
    /** the index the next chunk of `sweep` starts at */
    sweepCursor: integer('sweep_cursor').notNull().default(0),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [
    index('batches_tenant_created').on(t.tenantId, t.id),
    index('batches_state').on(t.state),
    index('batches_sweep').on(t.sweep).where(sql`sweep IS NOT NULL`),
  ],
);

export const batchLabels = sqliteTable(
  'batch_labels',
  {
    batchId: text('batch_id').notNull().references(() => batches.id, { onDelete: 'cascade' }),
    key: text('key').notNull(),
    value: text('value').notNull(),
  },
  (t) => [primaryKey({ columns: [t.batchId, t.key] }), index('batch_labels_key_value').on(t.key, t.value)],
);

export const items = sqliteTable(
  'items',
  {
    batchId: text('batch_id').notNull().references(() => batches.id, { onDelete: 'cascade' }),
    idx: integer('idx').notNull(),
    customId: text('custom_id'),
    /** the item as JSON text */
    input: text('input').notNull(),
    status: text('status', { enum: ['pending', 'running', 'succeeded', 'failed', 'cancelled'] }).notNull(),
    /** lease generation: incremented each time the item is released; results must carry it */
    attempt: integer('attempt').notNull().default(0),
    /** failed attempts that count against backoffLimitPerItem */
    failures: integer('failures').notNull().default(0),
    leaseId: text('lease_id'),
    /** a pending item is not released before this time (retry backoff) */
    notBefore: integer('not_before').notNull().default(0),
    /** JSON of an inline result */
    result: text('result'),
    /** path of a result in the blob directory, relative to it */
    resultBlob: text('result_blob'),
    error: text('error'),
    reason: text('reason'),
    startedAt: integer('started_at'),
    finishedAt: integer('finished_at'),
    // The attempt that succeeded, kept in the item row instead of an `attempts` row: a success is
    // the common case, and its row cost the write path a heap row and a key entry per item. The
    // attempt history adds it from here (src/store/item-queries.ts). Unset on other items.
    /** the worker (or pod) that ran the succeeded attempt */
    worker: text('worker'),
    exitCode: integer('exit_code'),
    httpStatus: integer('http_status'),
    /** when the succeeded attempt started and finished, by the worker's clock */
    attemptStartedAt: integer('attempt_started_at'),
    attemptFinishedAt: integer('attempt_finished_at'),
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

export const attempts = sqliteTable(
  'attempts',
  {
    batchId: text('batch_id').notNull().references(() => batches.id, { onDelete: 'cascade' }),
    idx: integer('idx').notNull(),
    attempt: integer('attempt').notNull(),
    outcome: text('outcome', { enum: ['succeeded', 'failed'] }).notNull(),
    exitCode: integer('exit_code'),
    httpStatus: integer('http_status'),
    condition: text('condition'),
    error: text('error'),
    /** what the failure policy decided: Retrying, BackoffLimitExceeded, FailItemRule, … */
    decision: text('decision'),
    worker: text('worker'),
    startedAt: integer('started_at'),
    finishedAt: integer('finished_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.batchId, t.idx, t.attempt] })],
);

/** Lease ranges released to Redis and not yet fully reported. */
export const leases = sqliteTable(
  'leases',
  {
    id: text('id').primaryKey(),
    batchId: text('batch_id').notNull().references(() => batches.id, { onDelete: 'cascade' }),
    task: text('task').notNull(),
    /** JSON array of [index, attempt] still outstanding */
    outstanding: text('outstanding').notNull(),
    createdAt: integer('created_at').notNull(),
    /** first time a resync did not find the lease in Redis */
    missingSince: integer('missing_since'),
  },
  (t) => [index('leases_batch').on(t.batchId)],
);

/** Intents written in the same transaction as the change that causes them. */
export const outbox = sqliteTable('outbox', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  kind: text('kind', { enum: ['dispatch'] }).notNull(),
  batchId: text('batch_id').notNull(),
  createdAt: integer('created_at').notNull(),
});

export const idempotencyKeys = sqliteTable(
  'idempotency_keys',
  {
    tenantId: text('tenant_id').notNull().references(() => tenants.id, { onDelete: 'cascade' }),
    key: text('key').notNull(),
    requestHash: text('request_hash').notNull(),
    batchId: text('batch_id').notNull().references(() => batches.id, { onDelete: 'cascade' }),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.key] })],
);

/**
 * Schedules: the CronJob of batches. `spec` holds the validated schedule (cron expression, time
 * zone, concurrency policy, suspend, starting deadline, history limits, batch template).
 */
export const schedules = sqliteTable(
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
    nextRunAt: integer('next_run_at'),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [index('schedules_tenant').on(t.tenantId, t.id), index('schedules_next_run').on(t.nextRunAt)],
);

export const scheduleLabels = sqliteTable(
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
export const scheduleRuns = sqliteTable(
  'schedule_runs',
  {
    scheduleId: text('schedule_id').notNull().references(() => schedules.id, { onDelete: 'cascade' }),
    /** the tick (epoch ms), or the time of a manual trigger */
    tickAt: integer('tick_at').notNull(),
    /** started: a batch was created; skipped: Forbid with a run active, or missed past the starting deadline */
    outcome: text('outcome', { enum: ['started', 'skipped'] }).notNull(),
    batchId: text('batch_id'),
    reason: text('reason'),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.scheduleId, t.tickAt] }), index('schedule_runs_batch').on(t.batchId)],
);

/**
 * Tenant-wide webhook endpoints. `secret` signs every delivery; after a rotation the previous
 * secret also signs until `previousSecretExpiresAt` (both signatures in one header).
 */
export const webhookEndpoints = sqliteTable(
  'webhook_endpoints',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id').notNull().references(() => tenants.id, { onDelete: 'cascade' }),
    url: text('url').notNull(),
    description: text('description'),
    /** JSON array of event filters */
    events: text('events').notNull(),
    enabled: integer('enabled', { mode: 'boolean' }).notNull().default(true),
    /** why the endpoint was disabled (a 410 from the receiver, a client request) */
    disabledReason: text('disabled_reason'),
    secret: text('secret').notNull(),
    previousSecret: text('previous_secret'),
    previousSecretExpiresAt: integer('previous_secret_expires_at'),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [index('webhook_endpoints_tenant').on(t.tenantId, t.id)],
);

/** The secret that signs the webhooks batches name in their spec: one per tenant, created on first use. */
export const webhookBatchSecrets = sqliteTable('webhook_batch_secrets', {
  tenantId: text('tenant_id').primaryKey().references(() => tenants.id, { onDelete: 'cascade' }),
  secret: text('secret').notNull(),
  previousSecret: text('previous_secret'),
  previousSecretExpiresAt: integer('previous_secret_expires_at'),
  createdAt: integer('created_at').notNull(),
});

/** An event, written in the transaction of the change it reports; `payload` is the exact body sent. */
export const webhookEvents = sqliteTable(
  'webhook_events',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id').notNull().references(() => tenants.id, { onDelete: 'cascade' }),
    batchId: text('batch_id').notNull().references(() => batches.id, { onDelete: 'cascade' }),
    type: text('type').notNull(),
    payload: text('payload').notNull(),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [index('webhook_events_batch').on(t.batchId)],
);

/**
 * One event to one target (a tenant endpoint, or the batch's own webhook when endpointId is
 * null). `pending` rows whose nextAttemptAt has come are enqueued by the dispatcher's poller.
 */
export const webhookDeliveries = sqliteTable(
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
    attempts: integer('attempts').notNull().default(0),
    /** failed attempts since the delivery was (re)started: the position in the retry schedule */
    step: integer('step').notNull().default(0),
    nextAttemptAt: integer('next_attempt_at'),
    /** when the poller last put it on the queue (it is put again if that attempt never ran) */
    queuedAt: integer('queued_at'),
    lastError: text('last_error'),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [
    index('webhook_deliveries_due').on(t.nextAttemptAt).where(sql`status = 'pending'`),
    index('webhook_deliveries_batch').on(t.batchId),
    index('webhook_deliveries_endpoint').on(t.endpointId, t.createdAt),
  ],
);

/** The delivery log: one row per HTTP attempt. */
export const webhookAttempts = sqliteTable(
  'webhook_attempts',
  {
    deliveryId: text('delivery_id').notNull().references(() => webhookDeliveries.id, { onDelete: 'cascade' }),
    tenantId: text('tenant_id').notNull().references(() => tenants.id, { onDelete: 'cascade' }),
    attempt: integer('attempt').notNull(),
    at: integer('at').notNull(),
    statusCode: integer('status_code'),
    latencyMs: integer('latency_ms').notNull(),
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
export const leaderLeases = sqliteTable('leader_leases', {
  name: text('name').primaryKey(),
  holder: text('holder').notNull(),
  token: integer('token').notNull(),
  expiresAt: integer('expires_at').notNull(),
});

/**
 * The audit log: one row per mutating API call made with an API key or the admin key (worker
 * tokens' result uploads are not audited). `tenant_id` is the tenant the call acted on (null for
 * an admin call on no tenant); no foreign key, so the log outlives what it describes. Never holds
 * a request body or a secret. Pruned after FANOUT_AUDIT_RETENTION_DAYS by the leading dispatcher.
 */
export const auditEvents = sqliteTable(
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
    status: integer('status').notNull(),
    sourceAddress: text('source_address'),
    requestId: text('request_id'),
    at: integer('at').notNull(),
  },
  (t) => [index('audit_events_tenant_idx').on(t.tenantId, t.id), index('audit_events_at_idx').on(t.at)],
);

/**
 * Usage per tenant per UTC day, added to in the transactions that submit batches and record
 * reports (GET /v1/usage reads it; nothing scans items for it).
 */
export const tenantUsageDays = sqliteTable(
  'tenant_usage_days',
  {
    tenantId: text('tenant_id').notNull().references(() => tenants.id, { onDelete: 'cascade' }),
    /** YYYY-MM-DD, UTC */
    day: text('day').notNull(),
    batches: integer('batches').notNull().default(0),
    itemsSubmitted: integer('items_submitted').notNull().default(0),
    /** attempts that ran to an outcome (succeeded or failed; items handed back unrun are not counted) */
    itemsRun: integer('items_run').notNull().default(0),
    /** execution time of those attempts, from the workers' start and finish times */
    itemMs: integer('item_ms').notNull().default(0),
    resultBytes: integer('result_bytes').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.day] })],
);

/**
 * Submissions per tenant per minute (fixed windows starting on the minute), for the
 * batchesPerMinute and itemsPerMinute quotas: in the store, so every API replica counts the same.
 * Windows older than the current one are deleted as new ones start.
 */
export const tenantRateWindows = sqliteTable(
  'tenant_rate_windows',
  {
    tenantId: text('tenant_id').notNull().references(() => tenants.id, { onDelete: 'cascade' }),
    /** epoch ms of the minute the window starts */
    windowStart: integer('window_start').notNull(),
    batches: integer('batches').notNull().default(0),
    items: integer('items').notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.windowStart] })],
);
