import path from 'node:path';
import { parseAllowlist, type Allowlist } from '../domain/address-policy.js';
import { DEFAULT_RETRY_SCHEDULE, parseRetrySchedule } from '../domain/webhooks.js';
import { JSON_DEPTH_CEILING } from '../domain/json-scan.js';
import { MAX_TIMER_MS } from '../domain/long-timeout.js';
import { databaseConfig, DatabaseConfigError, type DatabaseConfig } from './database.js';
import { parseTaskLimit, TaskLimitError, type TaskLimits } from '../domain/task-limits.js';
import type { Quotas } from '../domain/quotas.js';

export { JSON_DEPTH_CEILING };
export type { DatabaseConfig };
export { describeDatabase } from './database.js';

/**
 * The one place that reads the environment. Flags win over environment variables, which win
 * over defaults; the same names everywhere (docs/operations.md#configuration).
 */
export interface Config {
  port: number;
  host: string;
  dataDir: string;
  /** --database / DATABASE_URL: the SQLite file, or PostgreSQL with its pool settings */
  database: DatabaseConfig;
  /** unset: `fanout up` starts a local redis-server child */
  redisUrl?: string;
  prefix: string;
  tasks: string[];
  /** --task-limit / FANOUT_TASK_LIMITS: limits per task name, for all its workers together */
  taskLimits: Record<string, TaskLimits>;
  concurrency: number;
  apiUrl: string;
  leaseMs: number;
  apiKey?: string;
  /** FANOUT_ADMIN_KEY: the server-wide key of the admin API (/v1/admin); unset, that API refuses every call. Never logged */
  adminKey?: string;
  /** FANOUT_AUDIT_RETENTION_DAYS: audit events older than this are pruned by the leading dispatcher */
  auditRetentionMs: number;
  /** FANOUT_KEY_LAST_USED_FLUSH_SECONDS: how often an API process writes the keys' lastUsedAt it keeps in memory */
  keyUsageFlushMs: number;
  logLevel: string;
  resyncMs: number;
  /** the dispatcher's leader lease: a standby takes over within about this long after the leader dies */
  leaderLeaseMs: number;
  /** most items released to Redis at once per task queue, shared by tenants by weight (fair share) */
  releaseWindow: number;
  /** a waiting batch's priority rises by one point per this many ms (aging) */
  priorityAgingMs: number;
  /** largest lease range (items per BullMQ job) */
  maxLeaseSize: number;
  /** cancel, retry and delete of a batch go through its items this many at a time (one transaction each) */
  sweepChunkItems: number;
  /** rest between two such chunks (0: only let the event loop turn) */
  sweepPauseMs: number;
  limits: Limits;
  /** FANOUT_QUOTA_*: every tenant's quotas unless its own `quotas` override them; null (unset) is unlimited */
  quotas: Quotas;
  /** `fanout worker --batch`: the one batch this worker serves */
  batchId?: string;
  /** `fanout worker --exit-when-empty`: exit once the batch is done (needs batchId) */
  exitWhenEmpty: boolean;
  /** FANOUT_TOKEN: the batch-scoped token a batch's worker reads its batch with; never logged */
  batchToken?: string;
  /** set when Fanout can reach a Kubernetes cluster (kubeconfig or in-cluster) */
  kubernetes?: KubernetesConfig;
  webhooks: WebhookConfig;
  /** GET /v1/batches/{id}/events: how often a stream reads the batch row, and its heartbeat */
  events: { pollMs: number; heartbeatMs: number };
  /** how long slow or silent clients may hold a connection */
  http: HttpTimeouts;
  /** after SIGTERM/SIGINT the process is gone within this long, whatever its dependencies do */
  shutdownGraceMs: number;
  /** FANOUT_LOG_FORMAT: unset lets the process choose (pretty on a terminal, JSON otherwise) */
  logFormat?: 'json' | 'pretty';
  /** in a Kubernetes pod or a container that announces itself (`container=…`, as podman and systemd-nspawn set) */
  inContainer: boolean;
  /** where results over `limits.inlineResultBytes` go (FANOUT_BLOB_URL) */
  blobs: BlobConfig;
}

/** FANOUT_BLOB_URL unset: files under `<data-dir>/blobs`; `s3://bucket/prefix`: object storage. */
export type BlobConfig = { kind: 'local'; dir: string } | S3BlobConfig;

export interface S3BlobConfig {
  kind: 's3';
  bucket: string;
  /** object keys start with `<prefix>/`; empty: the bucket's root */
  prefix: string;
  /** FANOUT_S3_ENDPOINT, an S3-compatible server (addressed path-style); unset: AWS */
  endpoint?: string;
  /** AWS_REGION; unset with an endpoint: us-east-1; unset without: the SDK's own lookup (~/.aws/config) */
  region?: string;
  /**
   * AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN) when both are set; unset: the
   * SDK's default provider chain (profiles, web identity, instance roles). Never logged.
   */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

export interface HttpTimeouts {
  /** the request line and headers must arrive within this long (Node's headersTimeout) */
  headersTimeoutMs: number;
  /** the whole request, body included, must arrive within this long; 0: no limit (Node's requestTimeout) */
  requestTimeoutMs: number;
  /** a connection with no bytes in either direction for this long is closed */
  idleTimeoutMs: number;
}

export interface WebhookConfig {
  /** hosts and CIDRs webhooks may call although they are loopback, private or link-local (or, with onlyListed, the only ones) */
  allow: Allowlist;
  /** longest one delivery attempt may take */
  timeoutMs: number;
  /** waits before the 2nd, 3rd, … attempt (jittered ±20%) */
  retryScheduleMs: number[];
  /** how long the previous secret keeps signing after a rotation */
  secretOverlapMs: number;
}

export interface KubernetesConfig {
  /** a kubeconfig file; unset: in-cluster configuration */
  kubeconfig?: string;
  /** where Jobs go when a batch names no namespace */
  namespace: string;
  /** namespaces a batch may ask for (always includes `namespace`) */
  allowedNamespaces: string[];
  /** the API URL pods use to reach Fanout (`fanout exec`, Kubernetes workers); unset: this process's own API URL */
  publicUrl?: string;
  /** the Redis URL Kubernetes worker pods use; unset: the dispatcher's own */
  redisUrl?: string;
  /** kept on finished Jobs when a batch sets no ttlSecondsAfterFinished */
  ttlSecondsAfterFinished: number;
  /** most object creations per second against the API server (Jobs of job-per-item batches) */
  createQps: number;
  /** most indexes in one Indexed Job; bigger batches get one Job per shard */
  shardSize: number;
}

/** What `fanout exec` (the pod wrapper of the indexed-job runtime) reads from its environment. */
export interface ExecConfig {
  apiUrl: string;
  batchId: string;
  /** FANOUT_TOKEN, the batch-scoped `fbt_` token; never logged */
  token: string;
  /** FANOUT_INDEX_OFFSET + JOB_COMPLETION_INDEX: big batches are sharded into several Jobs */
  index: number;
  /** how long GET input / PUT result are retried on network errors, 5xx and 429 */
  retryMs: number;
}

export interface Limits {
  /** largest request body read whole (JSON specs and patches); NDJSON uploads and results stream */
  maxBodyBytes: number;
  /** deepest nesting of arrays and objects in a JSON body or NDJSON line */
  maxJsonDepth: number;
  /** largest single item (JSON text) */
  maxItemBytes: number;
  maxItemsPerBatch: number;
  /** results above this go to the blob directory */
  inlineResultBytes: number;
  /** largest result a worker may PUT */
  maxResultBytes: number;
}

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;
type Flags = Record<string, unknown>;

function pick(flags: Flags, flag: string, env: Env, name: string): string | undefined {
  const fromFlag = flags[flag];
  if (fromFlag !== undefined && fromFlag !== null && fromFlag !== '') return String(fromFlag);
  const fromEnv = env[name];
  return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
}

function integer(value: string | undefined, name: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  return n;
}

/**
 * A setting that becomes a timer (setTimeout, setInterval, a sleep): above 2^31-1 ms Node would
 * fire it after 1 ms, so a too-large value is refused here instead of looping.
 */
function timerMs(value: string | undefined, name: string, fallbackMs: number, minMs: number, unitMs: 1 | 1000): number {
  const ms = integer(value, name, fallbackMs / unitMs, minMs / unitMs) * unitMs;
  if (ms > MAX_TIMER_MS) throw new ConfigError(`${name} must be at most ${Math.floor(MAX_TIMER_MS / unitMs)}${unitMs === 1000 ? ' seconds' : ' ms'}, got ${value}`);
  return ms;
}

/** The admin key guards every tenant: a short one is refused rather than guessed. */
function adminKey(env: Env): string | undefined {
  const key = env.FANOUT_ADMIN_KEY;
  if (key === undefined || key === '') return undefined;
  if (key.length < 16) throw new ConfigError(`FANOUT_ADMIN_KEY must be at least 16 characters (it has ${key.length}); generate one with: openssl rand -base64 32`);
  return key;
}

function jsonDepth(value: string | undefined): number {
  const depth = integer(value, 'FANOUT_MAX_JSON_DEPTH', 64, 1);
  if (depth > JSON_DEPTH_CEILING) throw new ConfigError(`FANOUT_MAX_JSON_DEPTH must be at most ${JSON_DEPTH_CEILING}, got ${depth}`);
  return depth;
}

/** Resolves the configuration; throws {@link ConfigError} with one clear line when it is bad. */
export function loadConfig(flags: Flags = {}, env: Env = process.env): Config {
  const dataDir = path.resolve(pick(flags, 'dataDir', env, 'FANOUT_DATA_DIR') ?? './data');
  const database = databaseSettings(pick(flags, 'database', env, 'DATABASE_URL') ?? path.join(dataDir, 'fanout.db'), env);
  const port = integer(pick(flags, 'port', env, 'PORT'), 'PORT', 8080);
  if (port > 65535) throw new ConfigError(`PORT must be at most 65535, got ${port}`);
  const host = pick(flags, 'host', env, 'HOST') ?? '127.0.0.1';
  const worker = workerSettings(flags, env);
  const flagTasks = Array.isArray(flags.task) ? (flags.task as unknown[]).map(String) : flags.task ? [String(flags.task)] : [];
  const tasks = mergeTasks(parseTasksEnv(env.FANOUT_TASKS), flagTasks);
  const flagLimits = Array.isArray(flags.taskLimit) ? (flags.taskLimit as unknown[]).map(String) : flags.taskLimit ? [String(flags.taskLimit)] : [];
  const taskLimits = parseTaskLimits(env.FANOUT_TASK_LIMITS, flagLimits);
  const batchId = pick(flags, 'batch', env, 'FANOUT_BATCH_ID');
  const exitWhenEmpty = Boolean(flags.exitWhenEmpty);
  const apiKey = pick(flags, 'apiKey', env, 'FANOUT_API_KEY');
  const batchToken = pick(flags, 'token', env, 'FANOUT_TOKEN');
  if (exitWhenEmpty && !batchId) {
    throw new ConfigError('--exit-when-empty needs --batch ID (or FANOUT_BATCH_ID): only a worker of one batch can tell when its work is done');
  }
  const events = {
    pollMs: timerMs(env.FANOUT_EVENTS_POLL_MS, 'FANOUT_EVENTS_POLL_MS', 250, 10, 1),
    heartbeatMs: timerMs(env.FANOUT_EVENTS_HEARTBEAT_MS, 'FANOUT_EVENTS_HEARTBEAT_MS', 15_000, 10, 1),
  };
  const http = httpTimeouts(env);
  // an event stream is silent between heartbeats: the idle timeout would cut every one
  if (events.heartbeatMs >= http.idleTimeoutMs) {
    throw new ConfigError(`FANOUT_EVENTS_HEARTBEAT_MS (${events.heartbeatMs}) must be shorter than FANOUT_HTTP_IDLE_TIMEOUT_SECONDS (${http.idleTimeoutMs / 1000} s)`);
  }
  if (exitWhenEmpty && !batchToken && !apiKey) {
    throw new ConfigError('--exit-when-empty needs FANOUT_TOKEN (the batch token) or an API key to read the batch status');
  }
  return {
    port,
    host,
    dataDir,
    database,
    redisUrl: worker.redisUrl,
    prefix: worker.prefix,
    tasks,
    taskLimits,
    concurrency: worker.concurrency,
    apiUrl: pick(flags, 'apiUrl', env, 'FANOUT_API_URL') ?? `http://127.0.0.1:${port}`,
    leaseMs: worker.leaseMs,
    apiKey,
    adminKey: adminKey(env),
    auditRetentionMs: integer(env.FANOUT_AUDIT_RETENTION_DAYS, 'FANOUT_AUDIT_RETENTION_DAYS', 90, 1) * 24 * 3600 * 1000,
    keyUsageFlushMs: timerMs(env.FANOUT_KEY_LAST_USED_FLUSH_SECONDS, 'FANOUT_KEY_LAST_USED_FLUSH_SECONDS', 60_000, 1000, 1000),
    logLevel: worker.logLevel,
    resyncMs: timerMs(pick(flags, 'resyncSeconds', env, 'FANOUT_RESYNC_SECONDS'), 'FANOUT_RESYNC_SECONDS', 5000, 1000, 1000),
    leaderLeaseMs: timerMs(env.FANOUT_LEADER_LEASE_SECONDS, 'FANOUT_LEADER_LEASE_SECONDS', 15_000, 1000, 1000),
    releaseWindow: integer(env.FANOUT_RELEASE_WINDOW, 'FANOUT_RELEASE_WINDOW', 20_000, 1),
    maxLeaseSize: integer(env.FANOUT_MAX_LEASE_SIZE, 'FANOUT_MAX_LEASE_SIZE', 256, 1),
    sweepChunkItems: integer(env.FANOUT_SWEEP_CHUNK_ITEMS, 'FANOUT_SWEEP_CHUNK_ITEMS', 2000, 1),
    sweepPauseMs: integer(env.FANOUT_SWEEP_PAUSE_MS, 'FANOUT_SWEEP_PAUSE_MS', 0, 0),
    priorityAgingMs: timerMs(env.FANOUT_PRIORITY_AGING_SECONDS, 'FANOUT_PRIORITY_AGING_SECONDS', 10_000, 1000, 1000),
    limits: {
      maxBodyBytes: integer(env.FANOUT_MAX_BODY_BYTES, 'FANOUT_MAX_BODY_BYTES', 10 * 1024 * 1024, 1024),
      maxJsonDepth: jsonDepth(env.FANOUT_MAX_JSON_DEPTH),
      maxItemBytes: integer(env.FANOUT_MAX_ITEM_BYTES, 'FANOUT_MAX_ITEM_BYTES', 256 * 1024, 16),
      maxItemsPerBatch: integer(env.FANOUT_MAX_ITEMS, 'FANOUT_MAX_ITEMS', 10_000_000, 1),
      inlineResultBytes: worker.inlineResultBytes,
      maxResultBytes: integer(env.FANOUT_MAX_RESULT_BYTES, 'FANOUT_MAX_RESULT_BYTES', 1024 * 1024 * 1024, 1),
    },
    quotas: quotaDefaults(env),
    batchId,
    exitWhenEmpty,
    batchToken,
    kubernetes: kubernetesConfig(flags, env),
    webhooks: webhookConfig(flags, env),
    events,
    http,
    shutdownGraceMs: shutdownGraceMs(env),
    logFormat: logFormat(env),
    inContainer: Boolean(env.KUBERNETES_SERVICE_HOST || env.container),
    blobs: blobConfig(env, dataDir),
  };
}

/** The server-wide quota defaults; an unset setting leaves that quota unlimited. */
function quotaDefaults(env: Env): Quotas {
  const quota = (name: string) => (env[name] === undefined || env[name] === '' ? null : integer(env[name], name, 0, 0));
  return {
    batchesPerMinute: quota('FANOUT_QUOTA_BATCHES_PER_MINUTE'),
    itemsPerMinute: quota('FANOUT_QUOTA_ITEMS_PER_MINUTE'),
    storedItems: quota('FANOUT_QUOTA_STORED_ITEMS'),
    storedResultBytes: quota('FANOUT_QUOTA_STORED_RESULT_BYTES'),
    runningItems: quota('FANOUT_QUOTA_RUNNING_ITEMS'),
  };
}

function databaseSettings(value: string, env: Env): DatabaseConfig {
  try {
    return databaseConfig(value, env);
  } catch (err) {
    if (err instanceof DatabaseConfigError) throw new ConfigError(err.message);
    throw err;
  }
}

// Bucket names as S3 allows them; prefix segments as plain as blob key segments.
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PREFIX = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/;

/** FANOUT_BLOB_URL, FANOUT_S3_ENDPOINT and the standard AWS_* variables. */
function blobConfig(env: Env, dataDir: string): BlobConfig {
  const url = env.FANOUT_BLOB_URL || undefined;
  if (url === undefined) return { kind: 'local', dir: path.join(dataDir, 'blobs') };
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(url);
  if (!match) throw new ConfigError(`FANOUT_BLOB_URL must be s3://BUCKET or s3://BUCKET/PREFIX (unset: <data-dir>/blobs), got ${JSON.stringify(url)}`);
  const bucket = match[1]!;
  const prefix = (match[2] ?? '').replace(/\/+$/, '');
  if (!BUCKET.test(bucket)) throw new ConfigError(`FANOUT_BLOB_URL: ${JSON.stringify(bucket)} is not a valid bucket name (3-63 of a-z 0-9 . -)`);
  if (prefix !== '' && (!PREFIX.test(prefix) || prefix.split('/').includes('..'))) {
    throw new ConfigError(`FANOUT_BLOB_URL: prefix ${JSON.stringify(prefix)} must be /-separated names of A-Z a-z 0-9 . _ -`);
  }
  const endpoint = env.FANOUT_S3_ENDPOINT || undefined;
  if (endpoint !== undefined && !/^https?:\/\/[^\s/]+\/?$/.test(endpoint)) {
    throw new ConfigError(`FANOUT_S3_ENDPOINT must be an http(s)://HOST[:PORT] URL, got ${JSON.stringify(endpoint)}`);
  }
  const accessKeyId = env.AWS_ACCESS_KEY_ID || undefined;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY || undefined;
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    throw new ConfigError('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together (or neither, for the AWS default credential chain)');
  }
  return {
    kind: 's3',
    bucket,
    prefix,
    endpoint,
    region: env.AWS_REGION || (endpoint ? 'us-east-1' : undefined),
    credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey, sessionToken: env.AWS_SESSION_TOKEN || undefined } : undefined,
  };
}

/** FANOUT_HTTP_*_TIMEOUT_SECONDS: slow clients are cut, long streams that keep moving are not. */
function httpTimeouts(env: Env): HttpTimeouts {
  const headersTimeoutMs = timerMs(env.FANOUT_HTTP_HEADERS_TIMEOUT_SECONDS, 'FANOUT_HTTP_HEADERS_TIMEOUT_SECONDS', 10_000, 1000, 1000);
  const requestTimeoutMs = timerMs(env.FANOUT_HTTP_REQUEST_TIMEOUT_SECONDS, 'FANOUT_HTTP_REQUEST_TIMEOUT_SECONDS', 300_000, 0, 1000);
  const idleTimeoutMs = timerMs(env.FANOUT_HTTP_IDLE_TIMEOUT_SECONDS, 'FANOUT_HTTP_IDLE_TIMEOUT_SECONDS', 60_000, 1000, 1000);
  // Node refuses a headers timeout longer than the request timeout it belongs to.
  if (requestTimeoutMs > 0 && headersTimeoutMs > requestTimeoutMs) {
    throw new ConfigError(`FANOUT_HTTP_HEADERS_TIMEOUT_SECONDS (${headersTimeoutMs / 1000}) must not exceed FANOUT_HTTP_REQUEST_TIMEOUT_SECONDS (${requestTimeoutMs / 1000})`);
  }
  return { headersTimeoutMs, requestTimeoutMs, idleTimeoutMs };
}

/** Default 20 s: inside Kubernetes' 30 s terminationGracePeriodSeconds with room for a blocked SQLite statement. */
function shutdownGraceMs(env: Env): number {
  return timerMs(env.FANOUT_SHUTDOWN_GRACE_SECONDS, 'FANOUT_SHUTDOWN_GRACE_SECONDS', 20_000, 1000, 1000);
}

function logFormat(env: Env): 'json' | 'pretty' | undefined {
  const value = env.FANOUT_LOG_FORMAT;
  if (value === undefined || value === '') return undefined;
  if (value !== 'json' && value !== 'pretty') throw new ConfigError(`FANOUT_LOG_FORMAT must be json or pretty, got ${JSON.stringify(value)}`);
  return value;
}

/** FANOUT_WEBHOOK_*: the SSRF allowlist, the attempt timeout, the retry schedule, the rotation overlap. */
function webhookConfig(flags: Flags, env: Env): WebhookConfig {
  const allowText = pick(flags, 'webhookAllow', env, 'FANOUT_WEBHOOK_ALLOW');
  let allow: Allowlist;
  let retryScheduleMs: number[];
  const publicText = env.FANOUT_WEBHOOK_ALLOW_PUBLIC || 'true';
  if (publicText !== 'true' && publicText !== 'false') {
    throw new ConfigError(`FANOUT_WEBHOOK_ALLOW_PUBLIC must be true or false, got ${JSON.stringify(publicText)}`);
  }
  try {
    allow = parseAllowlist(allowText, publicText === 'false');
  } catch (err) {
    throw new ConfigError(`FANOUT_WEBHOOK_ALLOW (--webhook-allow): ${(err as Error).message}`);
  }
  try {
    retryScheduleMs = parseRetrySchedule(env.FANOUT_WEBHOOK_RETRY_SCHEDULE || DEFAULT_RETRY_SCHEDULE);
  } catch (err) {
    throw new ConfigError(`FANOUT_WEBHOOK_RETRY_SCHEDULE: ${(err as Error).message}`);
  }
  return {
    allow,
    timeoutMs: timerMs(env.FANOUT_WEBHOOK_TIMEOUT_SECONDS, 'FANOUT_WEBHOOK_TIMEOUT_SECONDS', 15_000, 1000, 1000),
    retryScheduleMs,
    secretOverlapMs: integer(env.FANOUT_WEBHOOK_SECRET_OVERLAP_SECONDS, 'FANOUT_WEBHOOK_SECRET_OVERLAP_SECONDS', 86_400, 0) * 1000,
  };
}

const TASK_FLAG = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}=.+/;

/**
 * FANOUT_TASKS: `;`-separated NAME=COMMAND|URL, like `--task` (so a worker image can bake its
 * tasks in). A command that itself contains `;` must come as a flag instead.
 */
export function parseTasksEnv(value: string | undefined): string[] {
  const tasks = (value ?? '').split(';').map((t) => t.trim()).filter(Boolean);
  for (const t of tasks) {
    if (!TASK_FLAG.test(t)) throw new ConfigError(`FANOUT_TASKS: each entry must be NAME=COMMAND|URL, got ${JSON.stringify(t)}`);
  }
  return tasks;
}

/**
 * FANOUT_TASK_LIMITS (`;`-separated) then `--task-limit` flags, each NAME:KEY=VALUE[,KEY=VALUE];
 * a flag replaces the environment's limits of the same task.
 */
export function parseTaskLimits(envValue: string | undefined, flagValues: string[]): Record<string, TaskLimits> {
  const out: Record<string, TaskLimits> = {};
  const entries: Array<[string, string]> = [
    ...(envValue ?? '').split(';').map((t) => t.trim()).filter(Boolean).map((t): [string, string] => ['FANOUT_TASK_LIMITS', t]),
    ...flagValues.map((t): [string, string] => ['--task-limit', t]),
  ];
  for (const [source, text] of entries) {
    try {
      const { task, limits } = parseTaskLimit(text);
      out[task] = limits;
    } catch (err) {
      if (err instanceof TaskLimitError) throw new ConfigError(`${source}: ${err.message}`);
      throw err;
    }
  }
  return out;
}

/** The environment's tasks, then the flags, which add to them; a flag replaces an env task of the same name. */
function mergeTasks(envTasks: string[], flagTasks: string[]): string[] {
  for (const t of flagTasks) {
    if (!TASK_FLAG.test(t)) throw new ConfigError(`--task must be NAME=COMMAND|URL, got ${JSON.stringify(t)}`);
  }
  const name = (t: string) => t.slice(0, t.indexOf('='));
  const fromFlags = new Set(flagTasks.map(name));
  return [...envTasks.filter((t) => !fromFlags.has(name(t))), ...flagTasks];
}

/**
 * Resolves `fanout exec`'s environment (set by the indexed-job runtime on each pod); throws
 * {@link ConfigError} naming every missing or bad variable in one line.
 */
export function loadExecConfig(env: Env = process.env): ExecConfig {
  const value = (name: string) => (env[name] === undefined || env[name] === '' ? undefined : env[name]);
  const missing = ['FANOUT_API_URL', 'FANOUT_BATCH_ID', 'FANOUT_TOKEN', 'JOB_COMPLETION_INDEX'].filter((name) => value(name) === undefined);
  if (missing.length > 0) throw new ConfigError(`missing environment: ${missing.join(', ')} (the indexed-job runtime sets them on its pods)`);
  const apiUrl = value('FANOUT_API_URL')!;
  if (!/^https?:\/\/\S+$/.test(apiUrl)) throw new ConfigError(`FANOUT_API_URL must be an http:// or https:// URL, got ${JSON.stringify(apiUrl)}`);
  const completionIndex = integer(value('JOB_COMPLETION_INDEX')!.trim(), 'JOB_COMPLETION_INDEX', 0);
  const offset = integer(value('FANOUT_INDEX_OFFSET')?.trim(), 'FANOUT_INDEX_OFFSET', 0);
  return {
    apiUrl,
    batchId: value('FANOUT_BATCH_ID')!,
    token: value('FANOUT_TOKEN')!,
    index: offset + completionIndex,
    retryMs: timerMs(value('FANOUT_EXEC_RETRY_SECONDS'), 'FANOUT_EXEC_RETRY_SECONDS', 60_000, 0, 1000),
  };
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * Kubernetes is on when a kubeconfig is given (`--kubeconfig`/KUBECONFIG) or Fanout runs in a
 * pod (KUBERNETES_SERVICE_HOST); FANOUT_KUBERNETES=off turns it off either way.
 */
function kubernetesConfig(flags: Flags, env: Env): KubernetesConfig | undefined {
  const kubeconfig = pick(flags, 'kubeconfig', env, 'KUBECONFIG');
  if (env.FANOUT_KUBERNETES === 'off' || (kubeconfig === undefined && !env.KUBERNETES_SERVICE_HOST)) return undefined;
  const namespace = pick(flags, 'namespace', env, 'FANOUT_NAMESPACE') ?? 'default';
  const allowed = (env.FANOUT_ALLOWED_NAMESPACES ?? '').split(',').map((n) => n.trim()).filter(Boolean);
  for (const ns of [namespace, ...allowed]) {
    if (!DNS_LABEL.test(ns)) throw new ConfigError(`namespace ${JSON.stringify(ns)} is not a valid Kubernetes namespace name`);
  }
  const publicUrl = pick(flags, 'publicUrl', env, 'FANOUT_PUBLIC_URL');
  if (publicUrl !== undefined && !/^https?:\/\//.test(publicUrl)) throw new ConfigError(`FANOUT_PUBLIC_URL must be an http(s) URL, got ${JSON.stringify(publicUrl)}`);
  const redisUrl = env.FANOUT_KUBERNETES_REDIS_URL || undefined;
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    throw new ConfigError(`FANOUT_KUBERNETES_REDIS_URL must start with redis:// or rediss://, got ${JSON.stringify(redisUrl)}`);
  }
  const shardSize = integer(env.FANOUT_KUBERNETES_SHARD_SIZE, 'FANOUT_KUBERNETES_SHARD_SIZE', 100_000, 1);
  // Kubernetes allows at most 10^5 completions in an Indexed Job with backoffLimitPerIndex.
  if (shardSize > 100_000) throw new ConfigError(`FANOUT_KUBERNETES_SHARD_SIZE must be at most 100000, got ${shardSize}`);
  return {
    kubeconfig,
    namespace,
    allowedNamespaces: [...new Set([namespace, ...allowed])],
    publicUrl: publicUrl?.replace(/\/+$/, ''),
    redisUrl,
    ttlSecondsAfterFinished: integer(env.FANOUT_KUBERNETES_TTL_SECONDS, 'FANOUT_KUBERNETES_TTL_SECONDS', 3600, 0),
    createQps: integer(env.FANOUT_KUBERNETES_CREATE_QPS, 'FANOUT_KUBERNETES_CREATE_QPS', 20, 1),
    shardSize,
  };
}

/** What a worker embedded in a TypeScript program (`createWorker`) takes from its environment. */
export interface WorkerEnv {
  redisUrl?: string;
  apiUrl: string;
  prefix: string;
  concurrency: number;
  leaseMs: number;
  inlineResultBytes: number;
  logLevel: string;
}

/**
 * The environment `createWorker` falls back on, with the names and defaults `fanout worker` uses
 * (REDIS_URL, FANOUT_API_URL, FANOUT_REDIS_PREFIX, FANOUT_CONCURRENCY, FANOUT_LEASE_SECONDS,
 * FANOUT_INLINE_RESULT_BYTES, LOG_LEVEL). Reads nothing a worker does not need, so a server-side
 * variable can never stop an embedded worker; throws {@link ConfigError} on a bad value.
 */
export function loadWorkerEnv(env: Env = process.env): WorkerEnv {
  const apiUrl = pick({}, 'apiUrl', env, 'FANOUT_API_URL');
  if (apiUrl !== undefined && !/^https?:\/\/\S+$/.test(apiUrl)) {
    throw new ConfigError(`FANOUT_API_URL must be an http:// or https:// URL, got ${JSON.stringify(apiUrl)}`);
  }
  return { ...workerSettings({}, env), apiUrl: apiUrl ?? 'http://127.0.0.1:8080' };
}

/** The settings `fanout worker` and `createWorker` share: one place for their names, defaults and checks. */
function workerSettings(flags: Flags, env: Env) {
  const redisUrl = pick(flags, 'redis', env, 'REDIS_URL');
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    throw new ConfigError(`REDIS_URL must start with redis:// or rediss://, got ${JSON.stringify(redisUrl)}`);
  }
  return {
    redisUrl,
    prefix: pick(flags, 'prefix', env, 'FANOUT_REDIS_PREFIX') ?? 'fanout',
    concurrency: integer(pick(flags, 'concurrency', env, 'FANOUT_CONCURRENCY'), 'FANOUT_CONCURRENCY', 4, 1),
    leaseMs: timerMs(pick(flags, 'leaseSeconds', env, 'FANOUT_LEASE_SECONDS'), 'FANOUT_LEASE_SECONDS', 30_000, 1000, 1000),
    inlineResultBytes: integer(pick(flags, 'inlineResultBytes', env, 'FANOUT_INLINE_RESULT_BYTES'), 'FANOUT_INLINE_RESULT_BYTES', 256 * 1024, 0),
    logLevel: pick(flags, 'logLevel', env, 'LOG_LEVEL') ?? 'info',
  };
}
