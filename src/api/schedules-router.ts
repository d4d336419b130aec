import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { parseLabelSelector } from '../domain/label-selector.js';
import { schedulePatchSchema, scheduleSpecSchema, type ScheduleSpec } from '../domain/schedule-spec.js';
import { getBatch } from '../store/batch-queries.js';
import { pruneHistory, triggerSchedule } from '../store/schedule-runs.js';
import type { Op } from '../store/op.js';
import { createSchedule, deleteSchedule, getSchedule, listSchedules, parseScheduleSpec, updateSchedule, type ScheduleListQuery, type ScheduleRow } from '../store/schedules.js';
import { prepareBatch } from './batch-submission.js';
import type { ApiDeps, ApiEnv } from './deps.js';
import { fieldErrors, notFound, requireJsonBody, validationProblem } from './problems.js';
import { loadScheduleView, loadScheduleViews, scheduleListSchema, scheduleSchema, type ScheduleView } from './schedule-views.js';
import { batchSchema, cursorQuery, labelSelectorQuery, problemResponse } from './schemas.js';
import { decodeCursor, encodeCursor, loadBatchView } from './views.js';

/** /v1/schedules: the CronJob of batches. Create, list, get, update, delete, trigger one now. */

const scheduleIdParam = z.object({ id: z.string().min(1).openapi({ param: { name: 'id', in: 'path' }, example: 's0mhz8x3k2a1b2c3d4e' }) });

const createDef = createRoute({
  method: 'post',
  path: '/v1/schedules',
  operationId: 'createSchedule',
  tags: ['Schedules'],
  summary: 'Create a schedule',
  description: 'A cron expression in a time zone, a concurrency policy, history limits and a batch template (any batch spec, items included, validated like POST /v1/batches).',
  request: { body: { required: true, content: { 'application/json': { schema: scheduleSpecSchema } } } },
  responses: {
    201: { description: 'Stored', headers: z.object({ Location: z.string() }), content: { 'application/json': { schema: scheduleSchema } } },
    400: problemResponse('Malformed JSON body'),
    413: problemResponse('The body is larger than FANOUT_MAX_BODY_BYTES, or the template has more items, or larger ones, than a batch may'),
    415: problemResponse('The body is not application/json'),
    422: problemResponse('Invalid schedule, time zone or batch template (pointers name the field, e.g. /batchTemplate/items)'),
  },
});

const listDef = createRoute({
  method: 'get',
  path: '/v1/schedules',
  operationId: 'listSchedules',
  tags: ['Schedules'],
  summary: 'List schedules, newest first',
  request: {
    query: z.object({
      labelSelector: labelSelectorQuery.optional().openapi({ example: 'team=data' }),
      limit: z.coerce.number().int().min(1).max(500).default(50),
      cursor: cursorQuery,
    }),
  },
  responses: { 200: { description: 'A page of schedules', content: { 'application/json': { schema: scheduleListSchema } } }, 400: problemResponse('Bad label selector'), 422: problemResponse('Bad query') },
});

const getDef = createRoute({
  method: 'get',
  path: '/v1/schedules/{id}',
  operationId: 'getSchedule',
  tags: ['Schedules'],
  summary: 'Get a schedule with its status',
  request: { params: scheduleIdParam },
  responses: { 200: { description: 'The schedule', content: { 'application/json': { schema: scheduleSchema } } }, 404: problemResponse('No such schedule') },
});

const patchDef = createRoute({
  method: 'patch',
  path: '/v1/schedules/{id}',
  operationId: 'updateSchedule',
  tags: ['Schedules'],
  summary: 'Update a schedule (any field; a changed cron, time zone or suspend recomputes the next run)',
  request: { params: scheduleIdParam, body: { required: true, content: { 'application/json': { schema: schedulePatchSchema } } } },
  responses: {
    200: { description: 'The schedule after the update', content: { 'application/json': { schema: scheduleSchema } } },
    400: problemResponse('Malformed JSON body'),
    404: problemResponse('No such schedule'),
    413: problemResponse('The body is larger than FANOUT_MAX_BODY_BYTES, or the template has more items, or larger ones, than a batch may'),
    415: problemResponse('The body is not application/json'),
    422: problemResponse('The updated schedule is invalid'),
  },
});

const deleteDef = createRoute({
  method: 'delete',
  path: '/v1/schedules/{id}',
  operationId: 'deleteSchedule',
  tags: ['Schedules'],
  summary: 'Delete a schedule (its batches stay; delete them with labelSelector=fanout.dev/schedule=<id>)',
  request: { params: scheduleIdParam },
  responses: { 204: { description: 'Deleted' }, 404: problemResponse('No such schedule') },
});

const triggerDef = createRoute({
  method: 'post',
  path: '/v1/schedules/{id}/trigger',
  operationId: 'triggerSchedule',
  tags: ['Schedules'],
  summary: 'Start one batch of the schedule now (concurrency policy and suspend do not apply)',
  request: { params: scheduleIdParam },
  responses: {
    202: { description: 'The batch it started', headers: z.object({ Location: z.string() }), content: { 'application/json': { schema: batchSchema } } },
    403: problemResponse('Over a storage quota of the tenant (the batch was not started)'),
    404: problemResponse('No such schedule'),
    429: problemResponse('Over a submission-rate quota of the tenant (the batch was not started)'),
  },
});

export function schedulesRouter(deps: ApiDeps) {
  const app = new OpenAPIHono<ApiEnv>({ defaultHook: deps.validationHook });
  app.use('/v1/schedules', requireJsonBody(['POST']));
  app.use('/v1/schedules/:id', requireJsonBody(['PATCH']));
  const { store } = deps;

  /** The checks POST /v1/batches runs beyond its schema, on the template, with its pointers. */
  const checkTemplate = (spec: ScheduleSpec) => prepareBatch(deps, spec.batchTemplate, '/batchTemplate');

  app.openapi(createDef, async (c) => {
    const spec = c.req.valid('json');
    await checkTemplate(spec);
    const tenantId = deps.tenantOf(c);
    const view = await store.write(createWithView(tenantId, spec));
    c.header('Location', `/v1/schedules/${view.id}`);
    return c.json(view as never, 201);
  });

  app.openapi(listDef, async (c) => {
    const q = c.req.valid('query');
    const query = { selector: parseLabelSelector(q.labelSelector ?? ''), limit: q.limit, after: decodeCursor(q.cursor, /^s[0-9a-z]+$/) };
    const { page, items } = await store.read(listWithViews(deps.tenantOf(c), query));
    const last = page.rows[page.rows.length - 1];
    return c.json({ items, nextCursor: page.more && last ? encodeCursor(last.id) : null } as never, 200);
  });

  app.openapi(getDef, async (c) => {
    const view = await store.read(viewOf(deps.tenantOf(c), c.req.valid('param').id));
    if (!view) throw notFound('schedule');
    return c.json(view as never, 200);
  });

  app.openapi(patchDef, async (c) => {
    const tenantId = deps.tenantOf(c);
    const id = c.req.valid('param').id;
    const row = await store.read(getSchedule(tenantId, id));
    if (!row) throw notFound('schedule');
    const patch = c.req.valid('json');
    const merged: Record<string, unknown> = { ...parseScheduleSpec(row), ...patch };
    if (merged.name === null) delete merged.name;
    const parsed = scheduleSpecSchema.safeParse(merged);
    if (!parsed.success) throw validationProblem(fieldErrors(parsed.error.issues));
    // A new template is checked like a submission; an unchanged one was checked when it was stored.
    if (patch.batchTemplate !== undefined) await checkTemplate(parsed.data);
    const view = await store.write(updateWithView(tenantId, id, parsed.data));
    if (!view) throw notFound('schedule');
    return c.json(view as never, 200);
  });

  app.openapi(deleteDef, async (c) => {
    if (!(await store.write(deleteSchedule(deps.tenantOf(c), c.req.valid('param').id)))) throw notFound('schedule');
    return c.body(null, 204);
  });

  app.openapi(triggerDef, async (c) => {
    const tenantId = deps.tenantOf(c);
    const outcome = await store.write(triggerSchedule(tenantId, c.req.valid('param').id, Date.now(), deps.config.quotas));
    if (!outcome?.started) throw notFound('schedule');
    deps.notify(outcome.started);
    await deps.forgetDeleted(await store.write(pruneHistory(outcome.scheduleId)));
    c.header('Location', `/v1/batches/${outcome.started}`);
    const row = (await store.read(getBatch(tenantId, outcome.started)))!;
    return c.json((await loadBatchView(store, row)) as never, 202);
  });

  return app;
}

/* Each answer's schedule and what its view needs, in one store operation. */

function* createWithView(tenantId: string, spec: ScheduleSpec): Op<ScheduleView> {
  return yield* loadScheduleView(yield* createSchedule(tenantId, spec));
}

function* listWithViews(tenantId: string, q: ScheduleListQuery): Op<{ page: { rows: ScheduleRow[]; more: boolean }; items: ScheduleView[] }> {
  const page = yield* listSchedules(tenantId, q);
  return { page, items: yield* loadScheduleViews(page.rows) };
}

function* viewOf(tenantId: string, id: string): Op<ScheduleView | undefined> {
  const row = yield* getSchedule(tenantId, id);
  return row ? yield* loadScheduleView(row) : undefined;
}

function* updateWithView(tenantId: string, id: string, spec: ScheduleSpec): Op<ScheduleView | undefined> {
  const updated = yield* updateSchedule(tenantId, id, spec);
  return updated ? yield* loadScheduleView(updated) : undefined;
}
