import { createHash } from 'node:crypto';
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import { getBatch, type BatchRow } from '../store/batch-queries.js';
import type { Store } from '../store/store.js';
import type { ApiDeps, ApiEnv } from './deps.js';
import { notFound } from './problems.js';
import { idParam, problemResponse } from './schemas.js';
import { loadBatchView } from './views.js';

/**
 * GET /v1/batches/{id}/events: the batch's progress as Server-Sent Events. The stream polls the
 * batch row (cheap: one primary-key read) rather than subscribing to anything, because the
 * dispatcher that moves the counts may run in another process.
 */

/** What a client waits before reconnecting after the stream broke (the SSE `retry:` field). */
const RETRY_MS = 2000;

const sseEventSchema = z
  .object({
    event: z.enum(['progress', 'done']),
    data: z.string().openapi({
      description: 'JSON: `{phase, counts, completedIndexes, failedIndexes}` as in the batch status',
      example: '{"phase":"Running","counts":{"total":3,"pending":0,"running":1,"succeeded":2,"failed":0,"cancelled":0},"completedIndexes":"0-1","failedIndexes":""}',
    }),
    id: z.string().regex(/^[0-9]+$/),
    retry: z.number().int(),
  })
  .meta({ id: 'BatchEvent', description: 'One Server-Sent Event of the stream (`: ping` comments aside)' });

const eventsRoute = createRoute({
  method: 'get',
  path: '/v1/batches/{id}/events',
  operationId: 'streamBatchEvents',
  tags: ['Batches'],
  summary: 'Follow a batch: Server-Sent Events of its progress until it is final',
  description:
    'Events: `progress` (data: `{phase, counts, completedIndexes, failedIndexes}`) whenever the phase or counts change, at most a few per second; then `done` (the same data, final phase) and the server closes the stream. A `: ping` comment every 15 s keeps proxies from timing out. Every event has an `id:`; reconnect with `Last-Event-ID` to get the current state only if it changed since, and `done` if the batch is final.',
  request: { params: idParam, headers: z.object({ 'last-event-id': z.string().optional() }) },
  responses: {
    200: {
      description: 'The event stream',
      // One schema per event, as SSE tooling reads it: the fields of one event, `data` a JSON text.
      content: { 'text/event-stream': { schema: sseEventSchema } },
    },
    404: problemResponse('No such batch'),
  },
});

let openStreams = 0;
/** How many event streams are open in this process (tests check that closed streams leave nothing behind). */
export const openEventStreams = (): number => openStreams;

/** An event id: the observation time in ms, times 1000, plus a 3-digit digest of the state it carries. */
export function eventId(ms: number, stateKey: string): number {
  return ms * 1000 + (createHash('sha1').update(stateKey).digest().readUInt16BE(0) % 1000);
}

/**
 * Whether a client that last saw event `lastId` has already seen this state: nothing was written
 * to the row since, and the digest matches. (A digest collision only delays the next event to the
 * next change.)
 */
export function seenState(lastId: number, updatedAt: number, stateKey: string): boolean {
  const ms = Math.floor(lastId / 1000);
  return updatedAt <= ms && eventId(ms, stateKey) === lastId;
}

/** The data of a progress event: what a follower of a batch needs to draw its progress. */
export async function progressData(store: Store, row: BatchRow) {
  const view = (await loadBatchView(store, row)).status;
  return { phase: view.phase, counts: view.counts, completedIndexes: view.completedIndexes, failedIndexes: view.failedIndexes };
}

export function registerBatchEvents(app: OpenAPIHono<ApiEnv>, deps: ApiDeps): void {
  app.openapi(eventsRoute, (c) => streamBatchEvents(c, deps, deps.tenantOf(c), c.req.valid('param').id));
}

/**
 * The event stream of one of `tenantId`'s batches (404 when it has no such batch). Shared by
 * GET /v1/batches/{id}/events and the dashboard's /ui stream, which authenticates differently.
 */
export async function streamBatchEvents(c: Context, deps: ApiDeps, tenantId: string, id: string): Promise<Response> {
  const { store } = deps;
  if (!(await store.read(getBatch(tenantId, id)))) throw notFound('batch');
  const lastHeader = Number(c.req.header('last-event-id'));
  const { pollMs, heartbeatMs } = deps.config.events;
  const signal = c.req.raw.signal;
  return streamSSE(c, async (stream) => {
    openStreams++;
    let stopped = false;
    const wake: Array<() => void> = [];
    const stop = () => {
      stopped = true;
      for (const w of wake.splice(0)) w();
    };
    stream.onAbort(stop);
    signal.addEventListener('abort', stop);
    const heartbeat = setInterval(() => void stream.write(': ping\n\n'), heartbeatMs);
    let lastId = Number.isSafeInteger(lastHeader) && lastHeader > 0 ? lastHeader : 0;
    let lastKey: string | undefined;
    try {
      while (!stopped) {
        const row = await store.read(getBatch(tenantId, id));
        if (!row) break; // deleted while followed
        const final = row.state === 'final';
        const key = JSON.stringify(await progressData(store, row));
        const resumedUnchanged = lastKey === undefined && lastId > 0 && seenState(lastId, row.updatedAt, key);
        if (key !== lastKey && !resumedUnchanged) {
          lastId = Math.max(eventId(Date.now(), key), lastId + 1);
          // Monotonic even if the clock stepped back: bump the time part past the last id's.
          if (eventId(Math.floor(lastId / 1000), key) !== lastId) lastId = eventId(Math.floor(lastId / 1000) + 1, key);
          if (!final) await stream.writeSSE({ event: 'progress', data: key, id: String(lastId), retry: RETRY_MS });
        }
        lastKey = key;
        if (final) {
          await stream.writeSSE({ event: 'done', data: key, id: String(lastId), retry: RETRY_MS });
          break;
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, pollMs);
          wake.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
    } finally {
      clearInterval(heartbeat);
      signal.removeEventListener('abort', stop);
      openStreams--;
    }
  });
}
