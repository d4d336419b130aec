import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { requestId } from 'hono/request-id';
import { clientWentAway } from '../domain/client-abort.js';
import YAML from 'yaml';
import { LABEL_KEY_PATTERN } from '../domain/batch-spec.js';
import { auditMutations } from './audit.js';
import { authenticate, unauthorized } from './auth.js';
import { adminRouter } from './admin-router.js';
import { apiKeysRouter } from './api-keys-router.js';
import { auditRouter } from './audit-router.js';
import { batchesRouter, isNdjson } from './batches-router.js';
import type { ApiDeps, ApiEnv } from './deps.js';
import { httpMetrics } from './http-metrics.js';
import { itemsRouter } from './items-router.js';
import { boundedBody } from './json-body.js';
import { fieldErrors, problem, respondProblem, toProblem, validationProblem } from './problems.js';
import { systemRouter } from './system-router.js';
import { webhooksRouter } from './webhooks-router.js';
import { schedulesRouter } from './schedules-router.js';
import { usageRouter } from './usage-router.js';
import { uiRouter } from './ui/ui-router.js';
import { methodsByPath } from '../domain/allowed-methods.js';

export type AppDeps = Omit<ApiDeps, 'tenantOf' | 'validationHook'>;

/**
 * The API app, without a server: tests call `app.request()` or serve it on 127.0.0.1.
 * Every response carries `x-request-id`; every error is problem+json.
 */
export function createApp(base: AppDeps) {
  const deps: ApiDeps = {
    ...base,
    tenantOf(c: Context<ApiEnv>) {
      const t = c.get('tenantId');
      if (!t) throw unauthorized('this call needs an API key: send Authorization: Bearer <key>');
      return t;
    },
    validationHook: (result) => {
      if (!result.success) {
        const target = (result as { target?: string }).target;
        const base = target === 'query' ? '/query' : target === 'param' ? '/path' : target === 'header' ? '/headers' : '';
        throw validationProblem(fieldErrors(result.error.issues, base));
      }
    },
  };
  const app = new OpenAPIHono<ApiEnv>({ defaultHook: deps.validationHook });
  app.use('*', httpMetrics(deps.metrics.httpDuration));
  app.use('*', requestId());
  app.use('*', async (c, next) => {
    await next();
    // Only answers built as a bare Response lack it. Setting a header on a finished answer makes
    // Hono rebuild it around its body as a stream, which @hono/node-server then sends the slow way
    // (read back chunk by chunk, a timer turn included): half the cost of a small GET.
    if (!c.res.headers.has('x-request-id')) c.header('x-request-id', c.get('requestId'));
  });
  // The audit log wraps authentication so that refusals after it (a missing scope) are recorded too.
  app.use('/v1/*', auditMutations(deps));
  app.use('/v1/*', authenticate(deps));
  // Every body a route reads whole: bounded while read, JSON checked once (docs/api.md "Limits").
  const { maxBodyBytes, maxJsonDepth } = deps.config.limits;
  app.use(
    '/v1/*',
    boundedBody({
      maxBytes: maxBodyBytes,
      maxJsonDepth,
      tooLargeDetail: `the body is larger than the ${maxBodyBytes}-byte limit (FANOUT_MAX_BODY_BYTES); send a big batch as application/x-ndjson, which is streamed`,
      streamed: (c) => isStreamedUpload(c.req.method, c.req.path, c.req.header('content-type')),
    }),
  );
  app.route('/', systemRouter(deps));
  app.route('/', batchesRouter(deps));
  app.route('/', itemsRouter(deps));
  app.route('/', webhooksRouter(deps));
  app.route('/', schedulesRouter(deps));
  app.route('/', adminRouter(deps));
  app.route('/', apiKeysRouter(deps));
  app.route('/', auditRouter(deps));
  app.route('/', usageRouter(deps));

  // The dashboard: a plain Hono app, so none of its routes enter the OpenAPI document.
  app.route('/ui', uiRouter(deps));
  app.get('/ui/', (c) => c.redirect('/ui/batches', 303));

  app.get('/openapi.yaml', (c) => c.body(openApiYaml(app), 200, { 'content-type': 'application/yaml' }));
  const allowedMethods = methodsByPath(app.routes);
  app.notFound((c) => {
    const allow = allowedMethods(c.req.path);
    if (allow.length === 0) return respondProblem(c, problem(404, 'not-found', 'Not Found', `no route for ${c.req.method} ${c.req.path}`));
    const detail = `${c.req.method} is not supported on ${c.req.path}; use ${allow.join(', ')}`;
    return respondProblem(c, Object.assign(problem(405, 'method-not-allowed', 'Method Not Allowed', detail), { headers: { allow: allow.join(', ') } }));
  });
  app.onError((err, c) => {
    if (clientWentAway(err, c.req.raw.signal.aborted)) {
      deps.logger.debug({ requestId: c.get('requestId'), method: c.req.method, path: c.req.path, err: err.message }, 'client went away before the request was read');
      // nobody is listening; the connection is already closed
      return c.body(null, 400);
    }
    // A StoreUnavailableError (the database unreachable) becomes 503 with Retry-After (toProblem).
    const p = toProblem(err);
    if (p.problem.status === 503) deps.logger.warn({ err: (err as Error).message, requestId: c.get('requestId') }, 'store unavailable: answered 503');
    else if (p.problem.status >= 500) deps.logger.error({ err, requestId: c.get('requestId') }, 'request failed');
    return respondProblem(c, p);
  });
  return app;
}

/**
 * The uploads their routes read as a stream, bounded per line or by their own limit: an NDJSON
 * batch and a worker's result. Everything else is read whole by {@link boundedBody}.
 */
export function isStreamedUpload(method: string, path: string, contentType: string | undefined): boolean {
  if (method === 'POST' && path === '/v1/batches') return isNdjson(contentType);
  return method === 'PUT' && /^\/v1\/batches\/[^/]+\/items\/[^/]+\/result$/.test(path);
}

/** The OpenAPI 3.1 document produced from the route definitions. */
export function openApiDocument(app: OpenAPIHono<ApiEnv>) {
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer' });
  const doc = app.getOpenAPI31Document({
    openapi: '3.1.0',
    info: {
      title: 'Fanout',
      version: '0.1.0',
      description: 'Submit batches of work over HTTP, fan them out to workers, and get every result back.',
    },
    security: [{ bearer: [] }],
    // One tag per resource; every operation carries exactly one (generators group methods by it).
    tags: [
      { name: 'Batches', description: 'Submit batches, follow them, and cancel, suspend, resume, retry or delete them.' },
      { name: 'Items', description: "A batch's items and their results; the input and result calls are the worker's side." },
      { name: 'Schedules', description: 'Cron schedules that start a batch from a template.' },
      { name: 'Webhooks', description: 'Webhook endpoints, their signing secrets, and the log of deliveries.' },
      { name: 'Tenants', description: 'The server admin\'s calls (FANOUT_ADMIN_KEY): tenants, their weight and quotas, and their API keys.' },
      { name: 'Keys', description: "A tenant's own API keys, managed with one of its admin-scoped keys." },
      { name: 'Audit', description: 'The audit log of mutating calls: who, what, when, from where, and the answer.' },
      { name: 'Usage', description: "The tenant's quotas with their limits and use, and its usage per day." },
      { name: 'System', description: 'Liveness, readiness and Prometheus metrics; no API key needed.' },
    ],
  });
  // Answers that shared middleware gives on many routes, declared once and referenced: the HTTP
  // server's 431 for an oversized request head and 408 for a slow one (src/main/client-error.ts)
  // everywhere; the auth middleware on every /v1 route; the JSON body reader (malformed JSON)
  // wherever a JSON body is read, and the 415 of a required body sent without one; the query
  // validator wherever a list takes `limit` (out of range); and 503 with Retry-After on every /v1
  // route while the database cannot be reached (StoreUnavailableError, see onError above).
  const problemContent = { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } };
  doc.components ??= {};
  doc.components.responses = {
    Unauthorized: { description: 'Missing, unknown, revoked or expired API key', content: problemContent },
    Forbidden: { description: "The API key lacks the scope the call needs (requiredScope names it), or its tenant is disabled", content: problemContent },
    MalformedJson: { description: 'The body is not valid JSON', content: problemContent },
    UnsupportedMediaType: { description: 'The body is missing or not application/json', content: problemContent },
    InvalidQuery: { description: 'A query parameter is out of range or malformed', content: problemContent },
    HeadersTooLarge: { description: 'The request line and headers are over 16 KiB (a very long query string)', content: problemContent },
    RequestTimeout: { description: 'The headers or body did not arrive within the HTTP timeouts (FANOUT_HTTP_*_TIMEOUT_SECONDS)', content: problemContent },
    ServiceUnavailable: {
      description: 'The database (or, for a large result, the object storage) cannot be reached right now: send the request again after Retry-After seconds',
      headers: { 'Retry-After': { description: 'Seconds to wait before retrying', schema: { type: 'integer' } } },
      content: problemContent,
    },
  };
  type Op = { responses?: Record<string, unknown>; requestBody?: { required?: boolean; content?: Record<string, unknown> }; parameters?: Array<{ in?: string; name?: string }> };
  // The create call's body is required (JSON or NDJSON). The route cannot say so itself:
  // @hono/zod-openapi would then validate NDJSON uploads against the JSON schema.
  const create = (doc.paths?.['/v1/batches'] as { post?: Op } | undefined)?.post;
  if (create?.requestBody) create.requestBody.required = true;
  // The generator cannot state a record's key rule (zod-openapi has no propertyNames).
  const labels = doc.components.schemas?.Labels as Record<string, unknown> | undefined;
  if (labels) labels.propertyNames = { type: 'string', pattern: LABEL_KEY_PATTERN };
  for (const [p, item] of Object.entries(doc.paths ?? {})) {
    for (const [method, op] of Object.entries(item as Record<string, Op>)) {
      if (!op || typeof op !== 'object' || !op.responses) continue;
      op.responses['408'] = { $ref: '#/components/responses/RequestTimeout' };
      op.responses['431'] = { $ref: '#/components/responses/HeadersTooLarge' };
      if (!p.startsWith('/v1/')) continue;
      op.responses['401'] = { $ref: '#/components/responses/Unauthorized' };
      op.responses['403'] ??= { $ref: '#/components/responses/Forbidden' };
      op.responses['503'] = { $ref: '#/components/responses/ServiceUnavailable' };
      if (op.parameters?.some((q) => q.in === 'query' && q.name === 'limit')) op.responses['422'] ??= { $ref: '#/components/responses/InvalidQuery' };
      if (isStreamedUpload(method.toUpperCase(), p.replace(/\{[^}]+\}/g, 'x'), undefined)) continue;
      if (op.requestBody?.content?.['application/json']) {
        op.responses['400'] ??= { $ref: '#/components/responses/MalformedJson' };
        if (op.requestBody.required) op.responses['415'] ??= { $ref: '#/components/responses/UnsupportedMediaType' };
      }
      if (['post', 'put', 'patch'].includes(method)) declareBodyAnswers(op.responses, problemContent);
    }
  }
  return doc;
}

/**
 * What boundedBody answers on every route whose body it reads, declared once for all of them
 * (a route's own description of the same status is kept).
 */
function declareBodyAnswers(responses: Record<string, unknown>, content: object): void {
  const problemAnswer = (description: string) => ({ description, content });
  responses['400'] ??= problemAnswer('Malformed JSON body');
  responses['413'] ??= problemAnswer('The body is larger than FANOUT_MAX_BODY_BYTES');
  responses['422'] ??= problemAnswer('A JSON body nested deeper than FANOUT_MAX_JSON_DEPTH, not UTF-8, with a number too large to represent, or with a "__proto__" key');
}

let cachedYaml: string | undefined;
export function openApiYaml(app: OpenAPIHono<ApiEnv>): string {
  cachedYaml ??= YAML.stringify(openApiDocument(app), { aliasDuplicateObjects: false });
  return cachedYaml;
}
