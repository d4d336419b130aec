import { z } from 'zod';

/**
 * The batch spec a client sends (DESIGN.md "Batch spec"). Pure validation: every rule here is
 * checked before anything is stored, and every failure names the field through its path.
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

export const labelsSchema = z
  .record(z.string(), z.string())
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

export const templateSchema = z
  .object({
    image: z.string().min(1).optional(),
    command: z.array(z.string()).optional(),
    args: z.array(z.string()).optional(),
    env: z
      .record(z.string().regex(envName, 'environment variable names are letters, digits and _'), z.string())
      .optional(),
  })
  .passthrough()
  .meta({ id: 'Template', description: 'Strings may hold `{{ field }}` placeholders filled from each item.' });
export type Template = z.infer<typeof templateSchema>;

/** The fields shared by JSON and NDJSON submissions (NDJSON sends items as further lines). */
export const batchSpecFields = {
  name: z.string().min(1).max(253).optional(),
  labels: labelsSchema.optional(),
  runtime: z.enum(RUNTIMES).default('queue'),
  task: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'a task name is 1-63 letters, digits, ".", "_" or "-"').optional(),
  template: templateSchema.optional(),
  parallelism: z.number().int().min(1).max(1_000_000).default(100),
  retry: retrySchema.default(() => retrySchema.parse({})),
  activeDeadlineSeconds: z.number().int().min(1).optional(),
  itemTimeoutSeconds: z.number().int().min(1).optional(),
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
