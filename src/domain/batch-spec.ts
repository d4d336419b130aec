import { z } from 'zod';
import { parseQuantity, quantityProblem } from './quantity.js';
import { batchWebhookSchema } from './webhooks.js';
import { MAX_BATCH_PRIORITY, MIN_BATCH_PRIORITY } from './fair-share.js';

/**
 * The batch spec a client sends (docs/api.md#create-post-v1batches). Pure validation: every rule
 * here is checked before anything is stored, and every failure names the field through its path.
 */

const LABEL_NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Kubernetes label key: optional `prefix/` (a DNS subdomain) and a name of at most 63 chars. */
export function isValidLabelKey(key: string): boolean {
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return false;
  return name.length > 0 && name.length <= 63 && LABEL_NAME.test(name);
}

/** Kubernetes label value: empty, or at most 63 alphanumerics, `-`, `_`, `.` starting and ending alphanumeric. */
export function isValidLabelValue(value: string): boolean {
  return value.length <= 63 && LABEL_NAME.test(value);
}

// The same rules as patterns, for the OpenAPI document only (validation is isValidLabelKey/Value,
// whose messages say what is wrong). The key pattern leaves the prefix's 253-character limit out.
const LABEL_NAME_PATTERN = '[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?';
const DNS_SUBDOMAIN_PATTERN = '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*';
/** A label key as a pattern; openApiDocument declares it as the Labels schema's propertyNames. */
export const LABEL_KEY_PATTERN = `^(${DNS_SUBDOMAIN_PATTERN}/)?${LABEL_NAME_PATTERN}$`;
const labelValueDoc = z.string().meta({ pattern: `^(${LABEL_NAME_PATTERN})?$`, maxLength: 63 });

export const labelsSchema = z
  .record(z.string(), labelValueDoc)
  .superRefine((labels, ctx) => {
    for (const [key, value] of Object.entries(labels)) {
      if (!isValidLabelKey(key)) {
        ctx.addIssue({ code: 'custom', path: [key], message: `invalid label key ${JSON.stringify(key)}: a name of at most 63 characters ([A-Za-z0-9-_.], alphanumeric at both ends), optionally prefixed by a DNS subdomain and "/"` });
      } else if (!isValidLabelValue(value)) {
        ctx.addIssue({ code: 'custom', path: [key], message: `invalid label value ${JSON.stringify(value)}: at most 63 characters ([A-Za-z0-9-_.], alphanumeric at both ends)` });
      }
    }
  })
  .meta({ id: 'Labels', description: 'Kubernetes-style labels.', example: { jobgroup: 'jobexample' } });

export const RUNTIMES = ['queue', 'indexed-job', 'job-per-item'] as const;
export type Runtime = (typeof RUNTIMES)[number];

export const RULE_ACTIONS = ['FailBatch', 'FailItem', 'Ignore', 'Count'] as const;
export type RuleAction = (typeof RULE_ACTIONS)[number];

/** Conditions an attempt can end with, besides an exit code or HTTP status. */
export const ATTEMPT_CONDITIONS = ['Disruption', 'Timeout'] as const;
export type AttemptCondition = (typeof ATTEMPT_CONDITIONS)[number];

const codeMatcher = z
  .object({
    operator: z.enum(['In', 'NotIn']),
    values: z.array(z.number().int()).min(1).max(255),
  })
  .strict();

export const ruleSchema = z
  .object({
    action: z.enum(RULE_ACTIONS),
    onExitCodes: codeMatcher.optional(),
    onHttpStatus: codeMatcher.optional(),
    onConditions: z.array(z.object({ type: z.enum(ATTEMPT_CONDITIONS) }).strict()).min(1).optional(),
  })
  .strict()
  .superRefine((rule, ctx) => {
    const set = [rule.onExitCodes, rule.onHttpStatus, rule.onConditions].filter((m) => m !== undefined).length;
    if (set !== 1) {
      ctx.addIssue({ code: 'custom', message: 'a rule needs exactly one of onExitCodes, onHttpStatus, onConditions' });
    }
  })
  .meta({ id: 'RetryRule' });
export type RetryRule = z.infer<typeof ruleSchema>;

export const retrySchema = z
  .object({
    backoffLimitPerItem: z.number().int().min(0).max(100).default(3),
    maxFailedItems: z.number().int().min(0).optional(),
    backoffSeconds: z.number().min(0).max(3600).default(1),
    maxBackoffSeconds: z.number().min(0).max(86_400).default(300),
    rules: z.array(ruleSchema).max(20).default([]),
  })
  .strict()
  .meta({ id: 'RetryPolicy' });
export type RetryPolicy = z.infer<typeof retrySchema>;

const envName = /^[A-Za-z_][A-Za-z0-9_]*$/;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A DNS-1123 label (namespaces, Job and Service names): at most 63 lowercase alphanumerics or `-`. */
export function isDnsLabel(s: string): boolean {
  return s.length <= 63 && DNS_LABEL.test(s);
}

/** A DNS-1123 subdomain (service account names): dot-separated DNS labels, at most 253 characters. */
export function isDnsSubdomain(s: string): boolean {
  return s.length <= 253 && DNS_SUBDOMAIN.test(s) && s.split('.').every((label) => label.length <= 63);
}

const serviceAccountNameSchema = z
  .string()
  .meta({ minLength: 1, maxLength: 253, pattern: `^${DNS_SUBDOMAIN_PATTERN}$` })
  .refine(isDnsSubdomain, { message: 'a service account name is a DNS subdomain: lowercase letters, digits, "-" and ".", at most 253 characters' });

/** Resource name → quantity, as in a container's `resources.requests` / `resources.limits`. */
const quantitiesSchema = z.record(z.string(), z.string().meta({ description: 'A Kubernetes quantity: "100m", "0.5", "2e3", "512Mi", "1Gi".' })).superRefine((quantities, ctx) => {
  for (const [name, value] of Object.entries(quantities)) {
    if (!isValidLabelKey(name)) {
      ctx.addIssue({ code: 'custom', path: [name], message: `invalid resource name ${JSON.stringify(name)}: like "cpu", "memory" or "nvidia.com/gpu"` });
      continue;
    }
    const problem = quantityProblem(value);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', path: [name], message: `${name}: ${problem}` });
  }
});

export const resourcesSchema = z
  .object({ requests: quantitiesSchema.optional(), limits: quantitiesSchema.optional() })
  .strict()
  .superRefine((resources, ctx) => {
    // Kubernetes refuses a container whose request exceeds its limit; say so before anything is stored.
    for (const [name, request] of Object.entries(resources.requests ?? {})) {
      const limit = resources.limits?.[name];
      if (limit === undefined) continue;
      const r = parseQuantity(request);
      const l = parseQuantity(limit);
      if (r !== null && l !== null && r > l) {
        ctx.addIssue({ code: 'custom', path: ['requests', name], message: `requests.${name} ${request} is more than limits.${name} ${limit}` });
      }
    }
  })
  .meta({ id: 'Resources', description: 'Container resource requests and limits, as Kubernetes quantities.', example: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '1Gi' } } });

export const tolerationSchema = z
  .object({
    key: z.string().optional(),
    operator: z.enum(['Exists', 'Equal']).optional(),
    value: z.string().optional(),
    effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
    tolerationSeconds: z.number().int().optional(),
  })
  .strict()
  .superRefine((t, ctx) => {
    // The same checks the API server makes (validateTolerations), so a bad toleration is a 422 here.
    if (t.key !== undefined && t.key !== '' && !isValidLabelKey(t.key)) {
      ctx.addIssue({ code: 'custom', path: ['key'], message: `invalid toleration key ${JSON.stringify(t.key)}: a label key` });
    }
    if ((t.key === undefined || t.key === '') && t.operator !== 'Exists') {
      ctx.addIssue({ code: 'custom', path: ['operator'], message: 'a toleration without a key must use operator "Exists"' });
    }
    if (t.operator === 'Exists' && t.value !== undefined && t.value !== '') {
      ctx.addIssue({ code: 'custom', path: ['value'], message: 'a toleration with operator "Exists" has no value' });
    } else if (t.value !== undefined && !isValidLabelValue(t.value)) {
      ctx.addIssue({ code: 'custom', path: ['value'], message: `invalid toleration value ${JSON.stringify(t.value)}: a label value` });
    }
    if (t.tolerationSeconds !== undefined && t.effect !== 'NoExecute') {
      ctx.addIssue({ code: 'custom', path: ['tolerationSeconds'], message: 'tolerationSeconds only applies to effect "NoExecute"' });
    }
  })
  .meta({ id: 'Toleration' });

export const templateSchema = z
  .object({
    image: z.string().min(1).optional(),
    command: z.array(z.string()).optional(),
    args: z.array(z.string()).optional(),
    env: z
      .record(z.string().regex(envName, 'environment variable names are letters, digits and _'), z.string())
      .optional(),
    resources: resourcesSchema.optional(),
    serviceAccountName: serviceAccountNameSchema.optional(),
    nodeSelector: labelsSchema.optional(),
    tolerations: z.array(tolerationSchema).max(50).optional(),
  })
  .strict()
  .meta({ id: 'Template', description: 'Strings may hold `{{ field }}` placeholders filled from each item.' });
export type Template = z.infer<typeof templateSchema>;

export const networkingSchema = z
  .object({ headless: z.boolean() })
  .strict()
  .meta({ id: 'Networking', description: 'indexed-job: a headless Service so pods reach each other as `<job>-<index>.<service>`.' });

export const workersSchema = z
  .object({
    kubernetes: z
      .object({
        image: z.string().min(1),
        parallelism: z.number().int().min(1).max(10_000),
        resources: resourcesSchema.optional(),
        serviceAccountName: serviceAccountNameSchema.optional(),
      })
      .strict(),
  })
  .strict()
  .meta({ id: 'Workers', description: 'queue: run the batch\'s workers as one Kubernetes Job of `parallelism` pods that exit when the queue is empty.' });

/**
 * The longest time a spec may set (a year, in seconds), for itemTimeoutSeconds,
 * activeDeadlineSeconds and a schedule's startingDeadlineSeconds: beyond it a deadline is no
 * deadline, and far beyond it one no longer fits a date.
 */
export const MAX_DURATION_SECONDS = 31_536_000;

/** Whole seconds from `min` to {@link MAX_DURATION_SECONDS}. */
export const durationSeconds = (min: number) =>
  z.number().int().min(min).max(MAX_DURATION_SECONDS, `at most ${MAX_DURATION_SECONDS} seconds (365 days)`);

/**
 * Order among the tenant's own batches on a task queue: higher runs first, and a waiting batch
 * climbs one point per FANOUT_PRIORITY_AGING_SECONDS so a low one is never starved (fair share
 * between tenants is by their weight, not by priority). Default 0.
 */
export const batchPrioritySchema = z
  .number()
  .int()
  .min(MIN_BATCH_PRIORITY)
  .max(MAX_BATCH_PRIORITY)
  .meta({ description: `Higher runs first among the tenant's batches of a task (${MIN_BATCH_PRIORITY}…${MAX_BATCH_PRIORITY}, default 0); a waiting batch gains one point per FANOUT_PRIORITY_AGING_SECONDS (10 s) up to the highest priority of the tenant's waiting batches, so a low priority is never starved. Changeable with PATCH /v1/batches/{id}.` });

/** The fields shared by JSON and NDJSON submissions (NDJSON sends items as further lines). */
export const batchSpecFields = {
  name: z.string().min(1).max(253).optional(),
  labels: labelsSchema.optional(),
  runtime: z.enum(RUNTIMES).default('queue'),
  task: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'a task name is 1-63 letters, digits, ".", "_" or "-"')
    // `fanout-work.batch.<id>` is the queue of one batch's own workers (batchWorkQueueName).
    .refine((t) => !t.startsWith('batch.'), 'task names starting with "batch." are reserved')
    .optional(),
  template: templateSchema.optional(),
  parallelism: z.number().int().min(1).max(1_000_000).default(100),
  priority: batchPrioritySchema.optional(),
  retry: retrySchema.default(() => retrySchema.parse({})),
  activeDeadlineSeconds: durationSeconds(1).optional(),
  itemTimeoutSeconds: durationSeconds(1).optional(),
  concurrencyKey: z
    .string()
    .min(1)
    .max(1024)
    .meta({ description: 'Queue runtime: a `{{ field }}` template rendered per item (e.g. `{{customer}}`); items with the same key never run more than maxConcurrentPerKey at once, across all workers.' })
    .optional(),
  maxConcurrentPerKey: z
    .number()
    .int()
    .min(1)
    .max(100_000)
    .meta({ description: 'With concurrencyKey: the most items with the same key running at once.' })
    .optional(),
  namespace: z
    .string()
    .meta({ minLength: 1, maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' })
    .refine(isDnsLabel, { message: 'a namespace is a DNS label: at most 63 lowercase letters, digits or "-", alphanumeric at both ends' })
    .meta({ description: 'Kubernetes runtimes: the namespace of the batch\'s Jobs (one the server allows); the server\'s own by default.' })
    .optional(),
  networking: networkingSchema.optional(),
  workers: workersSchema.optional(),
  ttlSecondsAfterFinished: z.number().int().min(0).meta({ description: 'Kubernetes runtimes: seconds a finished Job and its pods are kept; the server\'s default when unset.' }).optional(),
  webhook: batchWebhookSchema.optional(),
};

export const batchHeaderSchema = z.object(batchSpecFields).strict().meta({ id: 'BatchSpecHeader' });
export const batchSpecSchema = z
  .object({ ...batchSpecFields, items: z.array(z.unknown()).min(1, 'a batch needs at least one item') })
  .strict()
  .meta({ id: 'BatchSpec' });

/** A validated spec without its items (items are stored as rows, not in the spec). */
export type BatchHeader = z.infer<typeof batchHeaderSchema>;
export type BatchSpecInput = z.input<typeof batchSpecSchema>;

/** A client may name an item: an object item's string `customId` field becomes its customId. */
export function customIdOf(item: unknown): string | null {
  if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
    const id = (item as Record<string, unknown>).customId;
    if (typeof id === 'string') return id;
  }
  return null;
}

/** One cross-field problem: a JSON path into the spec and what is wrong there. */
export interface SpecProblem {
  path: (string | number)[];
  message: string;
}

/** The runtimes that run the batch's `template` as Kubernetes Jobs. */
export function isKubernetesRuntime(runtime: Runtime): boolean {
  return runtime === 'indexed-job' || runtime === 'job-per-item';
}

/** Kubernetes refuses `maxFailedIndexes` (and completions with backoffLimitPerIndex) above this. */
export const MAX_FAILED_INDEXES = 100_000;

/** Label keys Kubernetes or Fanout set on Jobs and pods; a batch label must not shadow them there. */
export function isReservedLabelKey(key: string): boolean {
  return key === 'job-name' || key === 'controller-uid' || key.startsWith('batch.kubernetes.io/') || key.startsWith('fanout.dev/');
}

/**
 * The rules a spec must follow that no single field can state: which fields each runtime needs
 * or forbids, and the parts of the retry policy Kubernetes cannot express (a pod failure policy
 * matches exit codes and pod conditions only). Pure; an empty list means the spec is coherent.
 */
export function runtimeProblems(header: BatchHeader): SpecProblem[] {
  const problems: SpecProblem[] = [];
  const add = (path: (string | number)[], message: string) => problems.push({ path, message });
  const { runtime } = header;
  const kubernetes = isKubernetesRuntime(runtime);

  if ((header.concurrencyKey === undefined) !== (header.maxConcurrentPerKey === undefined)) {
    const missing = header.concurrencyKey === undefined ? 'concurrencyKey' : 'maxConcurrentPerKey';
    add([missing], 'concurrencyKey and maxConcurrentPerKey go together: set both, or neither');
  }
  if (header.concurrencyKey !== undefined && kubernetes) {
    add(['concurrencyKey'], 'concurrency keys are enforced by queue workers sharing Redis: use runtime "queue"');
  }

  if (kubernetes) {
    if (header.template?.image === undefined) {
      add(['template', 'image'], `runtime "${runtime}" runs the batch's template as Kubernetes pods: set template.image`);
    }
    if (header.task !== undefined) {
      add(['task'], `runtime "${runtime}" runs template.image, not a worker task: drop task, or use runtime "queue"`);
    }
    for (const name of Object.keys(header.template?.env ?? {})) {
      if (name.startsWith('FANOUT_') || name === 'JOB_COMPLETION_INDEX') {
        add(['template', 'env', name], `environment variable ${name} is set by Fanout or Kubernetes in every pod; choose another name`);
      }
    }
  } else if (header.task === undefined) {
    add(['task'], 'a queue batch names the task to run: one that workers registered with --task NAME=…');
  }
  if (runtime === 'indexed-job' && header.template?.image?.includes('{{')) {
    add(['template', 'image'], 'every pod of an indexed-job runs the same image: placeholders are filled in command, args and env only (use runtime "job-per-item" for an image per item)');
  }
  if (header.workers !== undefined && runtime !== 'queue') {
    add(['workers'], `workers run the queue runtime's tasks; runtime "${runtime}" runs template.image instead`);
  }
  if (header.networking !== undefined && runtime !== 'indexed-job') {
    add(['networking'], `networking (a headless Service between pods) needs runtime "indexed-job", not "${runtime}"`);
  }
  if (kubernetes || header.workers !== undefined) {
    for (const key of Object.keys(header.labels ?? {})) {
      if (isReservedLabelKey(key)) add(['labels', key], `label ${key} is reserved for Kubernetes and Fanout on Jobs and pods`);
    }
  }

  if (kubernetes) {
    header.retry.rules.forEach((rule, i) => {
      if (rule.onHttpStatus !== undefined) {
        add(['retry', 'rules', i, 'onHttpStatus'], `Kubernetes cannot match onHttpStatus: a pod failure policy matches exit codes and conditions; runtime "${runtime}" needs onExitCodes or onConditions`);
      }
      rule.onConditions?.forEach((c, j) => {
        if (c.type === 'Timeout') {
          add(['retry', 'rules', i, 'onConditions', j, 'type'], 'Kubernetes cannot match the Timeout condition in a pod failure policy (a pod past itemTimeoutSeconds fails like any other); use Disruption or onExitCodes');
        }
      });
      if (rule.onExitCodes?.operator === 'In') {
        const zero = rule.onExitCodes.values.indexOf(0);
        if (zero >= 0) {
          add(['retry', 'rules', i, 'onExitCodes', 'values', zero], 'Kubernetes rejects exit code 0 in onExitCodes with operator "In": a successful exit never fails a pod');
        }
      }
    });
  }
  if (runtime === 'indexed-job' && header.retry.maxFailedItems !== undefined && header.retry.maxFailedItems > MAX_FAILED_INDEXES) {
    add(['retry', 'maxFailedItems'], `runtime "indexed-job" allows maxFailedItems up to ${MAX_FAILED_INDEXES} (the Kubernetes limit on maxFailedIndexes), got ${header.retry.maxFailedItems}`);
  }
  return problems;
}
