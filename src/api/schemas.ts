import { z } from '@hono/zod-openapi';
import { PHASES } from '../domain/batch-status.js';
import { batchHeaderSchema, batchPrioritySchema, labelsSchema } from '../domain/batch-spec.js';
import { MAX_SELECTOR_LENGTH } from '../domain/label-selector.js';

/** Response shapes, for the OpenAPI document and for tests that check answers against it. */

export const problemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string().optional(),
    errors: z.array(z.object({ pointer: z.string(), detail: z.string(), line: z.number().int().optional() })).optional(),
  })
  .meta({ id: 'Problem' });

export const conditionSchema = z
  .object({ type: z.string(), status: z.enum(['True', 'False']), reason: z.string(), message: z.string(), lastTransitionTime: z.string() })
  .meta({ id: 'Condition' });

export const countsSchema = z
  .object({ total: z.number().int(), pending: z.number().int(), running: z.number().int(), succeeded: z.number().int(), failed: z.number().int(), cancelled: z.number().int() })
  .meta({ id: 'ItemCounts' });

export const batchStatusSchema = z
  .object({
    phase: z.enum(PHASES),
    counts: countsSchema,
    completedIndexes: z.string(),
    failedIndexes: z.string(),
    conditions: z.array(conditionSchema),
    startTime: z.string().nullable(),
    completionTime: z.string().nullable(),
  })
  .meta({ id: 'BatchStatus' });

export const batchSchema = z
  .object({
    id: z.string(),
    name: z.string().nullable(),
    labels: labelsSchema,
    createdAt: z.string(),
    priority: z.number().int().meta({ description: 'The batch\'s priority now (spec.priority as submitted or as changed by PATCH; 0 when unset).' }),
    spec: batchHeaderSchema,
    status: batchStatusSchema,
  })
  .meta({ id: 'Batch' });

export const batchPatchSchema = z
  .object({ priority: batchPrioritySchema })
  .partial()
  .strict()
  .meta({ id: 'BatchPatch', description: 'Fields of a batch that may change while it runs.' });

export const batchListSchema = z.object({ items: z.array(batchSchema), nextCursor: z.string().nullable() }).meta({ id: 'BatchList' });

export const attemptSchema = z
  .object({
    attempt: z.number().int(),
    outcome: z.enum(['succeeded', 'failed']),
    exitCode: z.number().int().nullable(),
    httpStatus: z.number().int().nullable(),
    condition: z.string().nullable(),
    error: z.string().nullable(),
    decision: z.string().nullable(),
    worker: z.string().nullable(),
    startedAt: z.string().nullable(),
    finishedAt: z.string(),
  })
  .meta({ id: 'Attempt' });

export const itemSchema = z
  .object({
    index: z.number().int(),
    customId: z.string().nullable(),
    status: z.enum(['pending', 'running', 'succeeded', 'failed', 'cancelled']),
    result: z.unknown().optional(),
    resultTruncated: z.boolean().optional(),
    error: z.string().nullable(),
    reason: z.string().nullable(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
    attempts: z.array(attemptSchema),
    input: z.unknown().optional(),
  })
  .meta({ id: 'Item' });

export const itemListSchema = z.object({ items: z.array(itemSchema), nextCursor: z.string().nullable() }).meta({ id: 'ItemList' });

export const resultLineSchema = z
  .object({
    index: z.number().int(),
    customId: z.string().nullable(),
    status: z.string(),
    result: z.unknown(),
    error: z.string().nullable(),
    attempts: z.number().int(),
  })
  .meta({ id: 'ResultLine', description: 'One line of GET /v1/batches/{id}/results (NDJSON).' });

export const idParam = z.object({ id: z.string().min(1).openapi({ param: { name: 'id', in: 'path' }, example: 'b0mhz8x3k2a1b2c3d4e' }) });
/**
 * `{index}`: canonical decimal only (`0` or `[1-9][0-9]*`) up to 2^53−1, so `0x1`, `1e0`, `01` or a
 * blank are refused instead of being coerced into some other item. The parameter's OpenAPI schema
 * and `required` are stated here: the generator cannot derive an integer from the string check.
 */
export const ITEM_INDEX_PATTERN = /^(0|[1-9][0-9]*)$/;
export const itemParam = idParam.extend({
  index: z
    .string()
    .regex(ITEM_INDEX_PATTERN, 'an item index is a decimal integer without sign, leading zeros, exponent or spaces')
    .refine((s) => Number(s) <= Number.MAX_SAFE_INTEGER, `an item index is at most ${Number.MAX_SAFE_INTEGER}`)
    .transform(Number)
    .openapi({
      type: 'integer',
      minimum: 0,
      maximum: Number.MAX_SAFE_INTEGER,
      pattern: ITEM_INDEX_PATTERN.source,
      description: 'The item index: canonical decimal (`0` or `[1-9][0-9]*`), at most 2^53−1',
      param: { name: 'index', in: 'path', required: true },
      example: 0,
    }),
});

export const problemResponse = (description: string) => ({ description, content: { 'application/problem+json': { schema: problemSchema } } });

/** `cursor`: the previous page's nextCursor, unchanged; opaque base64url (see encodeCursor in views.ts). */
export const cursorQuery = z
  .string()
  .openapi({ pattern: '^[A-Za-z0-9_-]*$', description: 'The nextCursor of the previous page, unchanged (opaque, base64url)' })
  .optional();

/** `labelSelector` (parsed by parseLabelSelector; a bad or oversized one answers 400 /labelSelector). */
export const labelSelectorQuery = z.string().openapi({
  maxLength: MAX_SELECTOR_LENGTH,
  description: `A Kubernetes label selector (\`a=b\`, \`a!=b\`, \`a in (x,y)\`, \`a notin (x,y)\`, \`a\`, \`!a\`, comma-separated): at most 100 requirements and ${MAX_SELECTOR_LENGTH} characters`,
});
