import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { requestId } from 'hono/request-id';
import YAML from 'yaml';
import { LABEL_KEY_PATTERN } from '../domain/batch-spec.js';
import { authenticateApiKey } from '../store/tenants.js';
import { batchesRouter } from './batches-router.js';
import type { ApiDeps, ApiEnv } from './deps.js';
import { itemsRouter } from './items-router.js';
import { fieldErrors, problem, respondProblem, toProblem, validationProblem } from './problems.js';
import { systemRouter } from './system-router.js';
import { webhooksRouter } from './webhooks-router.js';
import { schedulesRouter } from './schedules-router.js';
import { uiRouter } from './ui/ui-router.js';
import { methodsByPath } from '../domain/allowed-methods.js';

export type AppDeps = Omit<ApiDeps, 'tenantOf' | 'validationHook'>;

const unauthorized = (detail: string) => {
  const err = problem(401, 'unauthorized', 'Unauthorized', detail);
  return Object.assign(err, { headers: { 'www-authenticate': 'Bearer realm="fanout"' } });
};

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
  app.use('*', requestId());
  app.use('*', async (c, next) => {
    await next();
    c.header('x-request-id', c.get('requestId'));
  });
  app.use('/v1/*', async (c, next) => {
    const auth = c.req.header('authorization');
    const m = auth ? /^Bearer\s+(\S+)$/i.exec(auth) : null;
    if (!m) throw unauthorized('missing or malformed Authorization header: send Authorization: Bearer <key>');
    if (m[1].startsWith('fbt_')) c.set('workerToken', m[1]);
    else {
      const tenantId = authenticateApiKey(deps.store, m[1]);
      if (!tenantId) throw unauthorized('the API key is not valid');
      c.set('tenantId', tenantId);
    }
    await next();
  });
  app.route('/', systemRouter(deps));
  app.route('/', batchesRouter(deps));
  app.route('/', itemsRouter(deps));
  app.route('/', webhooksRouter(deps));
  app.route('/', schedulesRouter(deps));

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
    const p = toProblem(err);
    if (p.problem.status >= 500) deps.logger.error({ err, requestId: c.get('requestId') }, 'request failed');
    return respondProblem(c, p);
  });
  return app;
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
  });
  // Answers that shared middleware gives on many routes, declared once and referenced: the HTTP
  // server's 431 for an oversized request head (src/main/client-error.ts) everywhere; the auth
  // middleware on every /v1 route; the JSON body reader (malformed JSON) wherever a JSON body is
  // read, and the 415 of a required body sent without one; the query validator wherever a list
  // takes `limit` (out of range).
  const problemContent = { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } };
  doc.components ??= {};
  doc.components.responses = {
    Unauthorized: { description: 'Missing or invalid API key', content: problemContent },
    MalformedJson: { description: 'The body is not valid JSON', content: problemContent },
    UnsupportedMediaType: { description: 'The body is missing or not application/json', content: problemContent },
    InvalidQuery: { description: 'A query parameter is out of range or malformed', content: problemContent },
    HeadersTooLarge: { description: 'The request line and headers are over 16 KiB (a very long query string)', content: problemContent },
  };
  // The generator cannot state a record's key rule (zod-openapi has no propertyNames).
  const labels = doc.components.schemas?.Labels as Record<string, unknown> | undefined;
  if (labels) labels.propertyNames = { type: 'string', pattern: LABEL_KEY_PATTERN };
  type Op = { responses?: Record<string, unknown>; requestBody?: { required?: boolean; content?: Record<string, unknown> }; parameters?: Array<{ in?: string; name?: string }> };
  for (const [p, item] of Object.entries(doc.paths ?? {})) {
    for (const op of Object.values(item as Record<string, Op>)) {
      if (!op || typeof op !== 'object' || !op.responses) continue;
      if (p.startsWith('/v1/')) op.responses['401'] = { $ref: '#/components/responses/Unauthorized' };
      op.responses['431'] = { $ref: '#/components/responses/HeadersTooLarge' };
      if (op.requestBody?.content?.['application/json']) {
        op.responses['400'] ??= { $ref: '#/components/responses/MalformedJson' };
        if (op.requestBody.required) op.responses['415'] ??= { $ref: '#/components/responses/UnsupportedMediaType' };
      }
      if (op.parameters?.some((q) => q.in === 'query' && q.name === 'limit')) op.responses['422'] ??= { $ref: '#/components/responses/InvalidQuery' };
    }
  }
  return doc;
}

let cachedYaml: string | undefined;
export function openApiYaml(app: OpenAPIHono<ApiEnv>): string {
  cachedYaml ??= YAML.stringify(openApiDocument(app), { aliasDuplicateObjects: false });
  return cachedYaml;
}
