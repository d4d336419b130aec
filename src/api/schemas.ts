import { z } from '@hono/zod-openapi';
import { PHASES } from '../domain/batch-status.js';
import { batchHeaderSchema, labelsSchema } from '../domain/batch-spec.js';

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
    spec: batchHeaderSchema,
    status: batchStatusSchema,
  })
  .meta({ id: 'Batch' });

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
// A coerced number accepts any input, so the generator would call the path parameter optional and
// nullable (`required: false`, `[integer, null]`), which OpenAPI forbids for a path parameter and
// client generators refuse: the parameter's schema and `required` are stated here.
export const itemParam = idParam.extend({
  index: z.coerce
    .number()
    .int()
    .min(0)
    .openapi({ type: 'integer', minimum: 0, param: { name: 'index', in: 'path', required: true }, example: 0 }),
});

export const problemResponse = (description: string) => ({ description, content: { 'application/problem+json': { schema: problemSchema } } });
