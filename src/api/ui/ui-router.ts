import fs from 'node:fs';
import { Readable } from 'node:stream';
import { Hono, type Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { checkTransition, isFinalPhase, PHASES, type Phase } from '../../domain/batch-status.js';
import { LabelSelectorError, parseLabelSelector } from '../../domain/label-selector.js';
import { getBatch, listBatches, type BatchRow } from '../../store/batch-queries.js';
import { parseHeader } from '../../store/batch-state.js';
import type { ItemStatus } from '../../store/item-queries.js';
import { listSchedules, type ScheduleListQuery } from '../../store/schedules.js';
import { getSetting } from '../../store/settings.js';
import { identifyApiKey, identifyApiKeyById, type KeyIdentity } from '../../store/api-keys.js';
import { attemptsOf, listRecentDeliveries } from '../../store/webhook-deliveries.js';
import { progressData, streamBatchEvents } from '../batch-events.js';
import { boundedBody } from '../json-body.js';
import { runBatchAction } from '../batches-router.js';
import type { ApiDeps } from '../deps.js';
import { itemPage, resultLines } from '../items-router.js';
import { notFound, problem, respondProblem, toProblem, validationProblem } from '../problems.js';
import { loadScheduleViews } from '../schedule-views.js';
import { loadBatchView, loadBatchViews } from '../views.js';
import { ACTION_BUTTONS, batchPage, ITEM_STATUSES, noticeFor, PAGE_ACTIONS, type PageAction } from './batch-page.js';
import { batchesPage } from './batches-page.js';
import { DELIVERY_STATUSES, deliveriesPage } from './deliveries-page.js';
import { errorPage } from './error-page.js';
import { loginPage } from './login-page.js';
import { schedulesPage } from './schedules-page.js';
import { usagePage } from './usage-page.js';
import { readUsage } from '../usage-router.js';
import { isSameOrigin, SESSION_COOKIE, SESSION_TTL_MS, signSession, verifySession, type Session } from './session.js';

/**
 * The dashboard at /ui: server-rendered pages over the same store functions as the /v1 routers.
 * Auth is a signed session cookie (Path=/ui) made from an API key at login; state-changing
 * requests must come from this origin. Not part of openapi.yaml (a plain Hono app).
 * See docs/architecture.md#dashboard.
 */

type UiEnv = { Variables: { requestId: string; session?: Session; key?: KeyIdentity } };

const PAGE_SIZE = 25;
const ITEM_PAGE_SIZE = 50;
const MAX_PROGRESS_IDS = 100;
const BATCH_ID = /^b[0-9a-z]{1,40}$/;

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const asset = (name: string) => fs.readFileSync(new URL(`./assets/${name}`, import.meta.url), 'utf8');

/** JSON, SSE and download endpoints answer 401/4xx as problem+json; pages redirect or render. */
const isApiPath = (path: string) => path.startsWith('/ui/api/') || /^\/ui\/batches\/[^/]+\/(events|results)$/.test(path);

/** Where to go after login: a dashboard path only (never another site). */
export function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/ui(\/[^\\\s]*)?$/.test(next) && !next.startsWith('//') ? next : '/ui/batches';
}

/** Whether the state machine allows `action` now (the buttons shown; the POST checks again). */
function allowed(action: PageAction, phase: string, failed: number): boolean {
  try {
    checkTransition(action, phase as Phase, failed);
    return true;
  } catch {
    return false;
  }
}

const DASHBOARD_FORM_BYTES = 16 * 1024;

export function uiRouter(deps: ApiDeps) {
  const { store } = deps;
  const ui = new Hono<UiEnv>();
  const secret = serverSecretReader(deps);
  // A form holds a key, a page path or a button: far less than an API body, by the same reader.
  const dashboardBody = boundedBody({
    maxBytes: Math.min(DASHBOARD_FORM_BYTES, deps.config.limits.maxBodyBytes),
    maxJsonDepth: deps.config.limits.maxJsonDepth,
    tooLargeDetail: `a dashboard form is at most ${Math.min(DASHBOARD_FORM_BYTES, deps.config.limits.maxBodyBytes)} bytes`,
  });
  const assets: Record<string, [string, string]> = {
    'dashboard.css': [asset('dashboard.css'), 'text/css; charset=utf-8'],
    'dashboard.js': [asset('dashboard.js'), 'text/javascript; charset=utf-8'],
  };
  const tenant = (c: Context<UiEnv>) => c.get('session')!.tenantId;

  ui.use('*', async (c, next) => {
    await next();
    c.header('content-security-policy', CSP);
    c.header('x-frame-options', 'DENY');
    c.header('x-content-type-options', 'nosniff');
    c.header('referrer-policy', 'same-origin');
    if (!c.req.path.startsWith('/ui/assets/')) c.header('cache-control', 'no-store');
  });

  // CSRF: every state-changing request must say it comes from this origin; checked before anything else.
  ui.use('*', async (c, next) => {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    if (!isSameOrigin({ origin: c.req.header('origin'), secFetchSite: c.req.header('sec-fetch-site'), host: c.req.header('host') })) {
      throw problem(403, 'forbidden', 'Forbidden', 'cross-origin request refused: dashboard actions must come from the dashboard page itself (Origin or Sec-Fetch-Site must say same origin)');
    }
    return dashboardBody(c, next);
  });

  ui.get('/assets/:name', (c) => {
    const a = assets[c.req.param('name')];
    if (!a) throw notFound('asset');
    return c.body(a[0], 200, { 'content-type': a[1], 'cache-control': 'public, max-age=300' });
  });

  /** The session of the request, if its key may still be used (not revoked, not expired, tenant enabled). */
  const liveSession = async (c: Context<UiEnv>): Promise<{ session: Session; key: KeyIdentity } | null> => {
    const session = verifySession(await secret(), getCookie(c, SESSION_COOKIE), Date.now());
    if (!session) return null;
    const key = await store.read(identifyApiKeyById(session.keyId));
    if (!key || 'refused' in key || key.tenantId !== session.tenantId || !key.scopes.includes('read')) return null;
    return { session, key };
  };

  ui.get('/login', async (c) => {
    if (await liveSession(c)) return c.redirect(safeNext(c.req.query('next')), 303);
    return c.html(loginPage({ next: safeNext(c.req.query('next')) }));
  });

  ui.post('/login', async (c) => {
    const form = await c.req.parseBody();
    const key = typeof form.key === 'string' ? form.key.trim() : '';
    const next = safeNext(form.next);
    const found = key ? await store.read(identifyApiKey(key)) : null;
    if (!found || 'refused' in found) return c.html(loginPage({ error: key ? 'That API key is not valid.' : 'Paste an API key.', next }), 401);
    if (!found.scopes.includes('read')) return c.html(loginPage({ error: 'That API key has no "read" scope: the dashboard needs it.', next }), 403);
    const expiresAt = Date.now() + SESSION_TTL_MS;
    const secure = new URL(c.req.url).protocol === 'https:' || c.req.header('x-forwarded-proto') === 'https';
    setCookie(c, SESSION_COOKIE, signSession(await secret(), { tenantId: found.tenantId, keyId: found.keyId, expiresAt }), {
      httpOnly: true, sameSite: 'Strict', path: '/ui', secure, maxAge: Math.floor(SESSION_TTL_MS / 1000),
    });
    return c.redirect(next, 303);
  });

  ui.post('/logout', (c) => {
    deleteCookie(c, SESSION_COOKIE, { path: '/ui' });
    return c.redirect('/ui/login', 303);
  });

  // Everything below needs a session.
  ui.use('*', async (c, next) => {
    const live = await liveSession(c);
    if (live) {
      c.set('session', live.session);
      c.set('key', live.key);
      return next();
    }
    if (isApiPath(c.req.path)) throw problem(401, 'unauthorized', 'Unauthorized', 'no valid dashboard session: log in at /ui/login');
    const url = new URL(c.req.url);
    const back = c.req.method === 'GET' ? `?next=${encodeURIComponent(url.pathname + url.search)}` : '';
    return c.redirect(`/ui/login${back}`, 303);
  });

  ui.get('/', (c) => c.redirect('/ui/batches', 303));

  ui.get('/batches', async (c) => {
    const q = c.req.query();
    const labelSelector = q.labelSelector ?? '';
    const phase = (PHASES as readonly string[]).includes(q.phase ?? '') ? q.phase! : '';
    const after = q.after && BATCH_ID.test(q.after) ? q.after : undefined;
    let error: string | undefined;
    let page: { rows: BatchRow[]; more: boolean } = { rows: [], more: false };
    try {
      page = await store.read(listBatches(tenant(c), { selector: parseLabelSelector(labelSelector), phase: phase || undefined, limit: PAGE_SIZE, after }));
    } catch (err) {
      if (!(err instanceof LabelSelectorError)) throw err;
      error = `Invalid label selector: ${err.message}`;
    }
    const last = page.rows[page.rows.length - 1];
    const body = batchesPage({
      batches: await loadBatchViews(store, page.rows), labelSelector, phase, nextAfter: page.more && last ? last.id : null, onFirst: !after, error,
    });
    return c.html(body, error ? 400 : 200);
  });

  /** Progress of several batches at once, for the list page's bars (one poll instead of a stream per row). */
  ui.get('/api/progress', async (c) => {
    const raw = c.req.query('ids') ?? '';
    const ids = raw === '' ? [] : raw.split(',');
    if (ids.length > MAX_PROGRESS_IDS) throw validationProblem([{ pointer: '/query/ids', detail: `at most ${MAX_PROGRESS_IDS} batch ids` }]);
    const bad = ids.find((id) => !BATCH_ID.test(id));
    if (bad !== undefined) throw validationProblem([{ pointer: '/query/ids', detail: `${JSON.stringify(bad.slice(0, 50))} is not a batch id` }]);
    const items = [];
    for (const id of ids) {
      const row = await store.read(getBatch(tenant(c), id));
      if (row) items.push({ id, ...(await progressData(store, row)) });
    }
    return c.json({ items });
  });

  ui.get('/batches/:id', async (c) => c.html(await renderBatch(c, c.req.param('id'), tenant(c))));

  /** The batch page (404 when the tenant has no such batch); `notice` for the answer of an action that was refused. */
  const renderBatch = async (c: Context<UiEnv>, id: string, tenantId: string, notice?: { text: string; error?: boolean }) => {
    const row = await store.read(getBatch(tenantId, id));
    if (!row) throw notFound('batch');
    const q = c.req.query();
    const status = (ITEM_STATUSES as readonly string[]).includes(q.status ?? '') ? (q.status as ItemStatus) : undefined;
    const after = q.after && /^\d{1,10}$/.test(q.after) ? Number(q.after) : undefined;
    const { page: items, attempts } = await store.read(itemPage(row.id, { status, limit: ITEM_PAGE_SIZE, afterIndex: after }));
    const last = items.rows[items.rows.length - 1];
    return batchPage({
      batch: await loadBatchView(store, row),
      final: row.state === 'final' && isFinalPhase(row.phase as Phase),
      items: items.rows.map((r) => ({ row: r, attempts: attempts.filter((a) => a.idx === r.idx) })),
      status: status ?? '',
      nextAfter: items.more && last ? last.idx : null,
      onFirst: after === undefined,
      // Kubernetes batches cannot be retried in place (runBatchAction says why): no button for them.
      actions: PAGE_ACTIONS.filter((a) => allowed(a, row.phase, row.failed) && (a !== 'retry' || parseHeader(row).runtime === 'queue')),
      notice: notice ?? noticeFor(q.done),
    });
  };

  ui.get('/batches/:id/events', (c) => streamBatchEvents(c, deps, tenant(c), c.req.param('id')));

  ui.get('/batches/:id/results', async (c) => {
    const row = await store.read(getBatch(tenant(c), c.req.param('id')));
    if (!row) throw notFound('batch');
    return new Response(Readable.toWeb(Readable.from(resultLines(deps, row.id))) as ReadableStream, {
      status: 200,
      headers: { 'content-type': 'application/x-ndjson', 'content-disposition': `attachment; filename="${row.id}-results.ndjson"` },
    });
  });

  for (const action of PAGE_ACTIONS) {
    ui.post(`/batches/:id/${action}`, async (c) => {
      const tenantId = tenant(c);
      if (!c.get('key')!.scopes.includes('write')) throw problem(403, 'insufficient-scope', 'Forbidden', `this dashboard session's API key has no "write" scope: it cannot ${action} batches`, { requiredScope: 'write' });
      const id = c.req.param('id');
      try {
        await runBatchAction(deps, tenantId, id, action);
      } catch (err) {
        const p = toProblem(err);
        if (p.problem.status !== 409) throw err;
        // Refused by the state machine (someone else acted first): show the page as it is now, and why.
        return c.html(await renderBatch(c, id, tenantId, { text: p.problem.detail, error: true }), 409);
      }
      return c.redirect(`/ui/batches/${id}?done=${ACTION_BUTTONS[action].done}`, 303);
    });
  }

  ui.get('/schedules', async (c) => {
    const after = c.req.query('after');
    const { page, schedules } = await store.read(schedulePage(tenant(c), { selector: [], limit: PAGE_SIZE, after: after && /^s[0-9a-z]{1,40}$/.test(after) ? after : undefined }));
    const last = page.rows[page.rows.length - 1];
    return c.html(schedulesPage({ schedules, nextAfter: page.more && last ? last.id : null, onFirst: !after }));
  });

  ui.get('/webhooks', async (c) => {
    const q = c.req.query();
    const status = (DELIVERY_STATUSES as readonly string[]).includes(q.status ?? '') ? (q.status as (typeof DELIVERY_STATUSES)[number]) : undefined;
    const before = q.after && /^whd_[0-9a-z]{1,60}$/.test(q.after) ? q.after : undefined;
    const { rows, shown, attempts } = await store.read(deliveryPage(tenant(c), { status, limit: PAGE_SIZE + 1, before }));
    return c.html(
      deliveriesPage({
        deliveries: shown.map((row) => ({ row, attempts: attempts.get(row.id) ?? [] })),
        status: status ?? '',
        nextAfter: rows.length > PAGE_SIZE ? shown[shown.length - 1].id : null,
        onFirst: !before,
      }),
    );
  });

  ui.get('/usage', async (c) => {
    // the last 14 days, today included
    const now = Date.now();
    const today = now - (now % 86_400_000);
    return c.html(usagePage(await store.read(readUsage(tenant(c), deps.config.quotas, { from: today - 13 * 86_400_000, to: today }, now))));
  });

  ui.onError((err, c) => {
    const p = toProblem(err);
    if (p.problem.status >= 500) deps.logger.error({ err, requestId: c.get('requestId'), path: c.req.path }, 'dashboard request failed');
    if (isApiPath(c.req.path) || c.req.method !== 'GET') return respondProblem(c, p);
    return c.html(errorPage(p.problem, !!c.get('session')), p.problem.status as 400, p.headers);
  });

  return ui;
}

/**
 * The server secret that signs sessions, read once it is needed and kept. The service creates it
 * at start-up (it signs worker tokens too), so the dashboard only reads it: a GET never writes.
 */
function serverSecretReader(deps: ApiDeps): () => Promise<string> {
  let secret: string | undefined;
  return async () => {
    if (secret !== undefined) return secret;
    const stored = await deps.store.read(getSetting('server-secret'));
    if (stored === null) throw new Error('the server secret is not in the store: the service creates it at start-up');
    secret = stored;
    return secret;
  };
}

/** A page of schedules with their views, in one read. */
function* schedulePage(tenantId: string, q: ScheduleListQuery) {
  const page = yield* listSchedules(tenantId, q);
  return { page, schedules: yield* loadScheduleViews(page.rows) };
}

/** Recent deliveries (one more than shown, to know whether a next page exists) and the shown ones' attempts. */
function* deliveryPage(tenantId: string, q: Parameters<typeof listRecentDeliveries>[1]) {
  const rows = yield* listRecentDeliveries(tenantId, q);
  const shown = rows.slice(0, PAGE_SIZE);
  return { rows, shown, attempts: yield* attemptsOf(shown.map((r) => r.id)) };
}
