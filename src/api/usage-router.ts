import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { QUOTA_NAMES, type QuotaName } from '../domain/quotas.js';
import { quotaUse, tenantQuotas, usageByDay, usageDay } from '../store/quotas.js';
import type { Op } from '../store/op.js';
import type { ApiDeps, ApiEnv } from './deps.js';
import { notFound, validationProblem } from './problems.js';
import { getTenant } from '../store/tenants.js';
import { problemResponse } from './schemas.js';

/**
 * GET /v1/usage: the tenant's quotas with their limits and current use, and with `from`/`to`
 * its usage per UTC day (the server admin key: any tenant's, named with `?tenant=`), read from the counters submissions and reports keep (never from the
 * items). A read never writes.
 */

/** Longest range one request may ask for, in days. */
const MAX_DAYS = 366;

const DAY_MS = 86_400_000;

const quotaSchema = z.object({
  limit: z.number().int().nullable().openapi({ description: 'null: unlimited' }),
  used: z.number().int(),
});

const usageDaySchema = z
  .object({
    day: z.string().openapi({ example: '2026-12-03' }),
    batches: z.number().int().openapi({ description: 'batches submitted' }),
    itemsSubmitted: z.number().int(),
    itemsRun: z.number().int().openapi({ description: 'attempts that ran to an outcome (succeeded or failed)' }),
    itemSeconds: z.number().openapi({ description: 'execution time of those attempts, in seconds' }),
    resultBytes: z.number().int().openapi({ description: 'bytes of the results stored' }),
  })
  .openapi('UsageDay');

const usageSchema = z
  .object({
    tenantId: z.string(),
    quotas: z.object(Object.fromEntries(QUOTA_NAMES.map((name) => [name, quotaSchema])) as Record<QuotaName, typeof quotaSchema>),
    from: z.string().nullable().openapi({ description: 'first day of `days` (UTC), when asked for' }),
    to: z.string().nullable(),
    days: z.array(usageDaySchema).nullable().openapi({ description: 'usage per UTC day from `from` to `to`, every day listed (zeros included); null without `from`' }),
  })
  .openapi('Usage');

const dayOrTime = z.string().openapi({ description: 'a UTC day (YYYY-MM-DD) or an RFC 3339 date-time (its UTC day is used)', example: '2026-12-01' });

const getUsageRoute = createRoute({
  method: 'get',
  path: '/v1/usage',
  operationId: 'getUsage',
  tags: ['Usage'],
  summary: "The tenant's quotas with their use; with from/to, its usage per day",
  request: {
    query: z.object({
      from: dayOrTime.optional(),
      to: dayOrTime.optional().openapi({ description: 'last day, inclusive (default: today)' }),
      groupBy: z.enum(['day']).optional().openapi({ description: 'the only grouping: per UTC day (the default)' }),
      tenant: z.string().min(1).max(100).optional().openapi({ description: 'Server admin key (FANOUT_ADMIN_KEY) only, and needed with it: the tenant to read' }),
    }),
  },
  responses: {
    200: { description: "The tenant's quotas and usage", content: { 'application/json': { schema: usageSchema } } },
    404: problemResponse("`tenant` names a tenant that does not exist, or another tenant than the key's"),
    422: problemResponse('Bad from, to or groupBy (the pointer names which), or the admin key without tenant'),
  },
});

/** A query date as the UTC day it falls on, or a 422 naming the parameter. */
function parseDay(value: string, name: 'from' | 'to'): number {
  const ms = /^\d{4}-\d{2}-\d{2}$/.test(value) ? Date.parse(`${value}T00:00:00Z`) : /^\d{4}-\d{2}-\d{2}T/.test(value) ? Date.parse(value) : NaN;
  if (Number.isNaN(ms)) throw validationProblem([{ pointer: `/query/${name}`, detail: `not a day (YYYY-MM-DD) or an RFC 3339 date-time: ${JSON.stringify(value)}` }]);
  return ms - (((ms % DAY_MS) + DAY_MS) % DAY_MS);
}

export function usageRouter(deps: ApiDeps) {
  const app = new OpenAPIHono<ApiEnv>({ defaultHook: deps.validationHook });

  app.openapi(getUsageRoute, async (c) => {
    const q = c.req.valid('query');
    let tenantId: string;
    if (c.get('auth')?.kind === 'admin') {
      if (q.tenant === undefined) throw validationProblem([{ pointer: '/query/tenant', detail: 'the admin key reads one tenant\'s usage: name it with tenant' }]);
      if (!(await deps.store.read(getTenant(q.tenant)))) throw notFound('tenant');
      tenantId = q.tenant;
    } else {
      tenantId = deps.tenantOf(c);
      // Another tenant does not exist for a tenant's key: the same 404 as its batches.
      if (q.tenant !== undefined && q.tenant !== tenantId) throw notFound('tenant');
    }
    if (q.to !== undefined && q.from === undefined) throw validationProblem([{ pointer: '/query/from', detail: 'to needs from' }]);
    if (q.groupBy !== undefined && q.from === undefined) throw validationProblem([{ pointer: '/query/from', detail: 'groupBy needs from' }]);
    const now = Date.now();
    let range: { from: number; to: number } | null = null;
    if (q.from !== undefined) {
      const from = parseDay(q.from, 'from');
      const to = q.to === undefined ? parseDay(usageDay(now), 'to') : parseDay(q.to, 'to');
      if (to < from) throw validationProblem([{ pointer: '/query/to', detail: `${usageDay(to)} is before from (${usageDay(from)})` }]);
      if ((to - from) / DAY_MS + 1 > MAX_DAYS) throw validationProblem([{ pointer: '/query/to', detail: `at most ${MAX_DAYS} days per request` }]);
      range = { from, to };
    }
    return c.json((await deps.store.read(readUsage(tenantId, deps.config.quotas, range, now))) as never, 200);
  });

  return app;
}

/** The usage document of one tenant: the caller's, or the one the admin key names with `?tenant=`. */
export function* readUsage(tenantId: string, quotaDefaults: Parameters<typeof tenantQuotas>[1], range: { from: number; to: number } | null, now: number): Op<z.infer<typeof usageSchema>> {
  const limits = yield* tenantQuotas(tenantId, quotaDefaults);
  const used = yield* quotaUse(tenantId, now);
  const quotas = Object.fromEntries(QUOTA_NAMES.map((name) => [name, { limit: limits[name], used: used[name] }])) as Record<QuotaName, { limit: number | null; used: number }>;
  if (!range) return { tenantId, quotas, from: null, to: null, days: null };
  const stored = new Map((yield* usageByDay(tenantId, usageDay(range.from), usageDay(range.to))).map((d) => [d.day, d]));
  const days = [];
  for (let t = range.from; t <= range.to; t += DAY_MS) {
    const day = usageDay(t);
    days.push(stored.get(day) ?? { day, batches: 0, itemsSubmitted: 0, itemsRun: 0, itemSeconds: 0, resultBytes: 0 });
  }
  return { tenantId, quotas, from: usageDay(range.from), to: usageDay(range.to), days };
}
