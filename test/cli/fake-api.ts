import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Batch } from '../../src/cli/api.js';

/**
 * fakeApi: a NAMED FAKE of the Fanout API, for the CLI's formatting and exit-code tests only.
 * It imitates the public shapes of docs/api.md (Batch, List with nextCursor, problem+json) on a
 * real node:http server on 127.0.0.1, keeps batches in memory and runs nothing. Each GET of a
 * batch advances it one step (Pending → Running → final), so `submit --wait` sees progress.
 * A batch whose items include the string "fail" ends Failed; otherwise Succeeded. The real
 * API's behaviour is tested with the API, not here.
 */

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface FakeApi {
  url: string;
  batches: Map<string, Batch & { items: unknown[] }>;
  requests: RecordedRequest[];
  /** adds a batch directly, as if submitted earlier */
  seed(batch: Partial<Batch> & { items?: unknown[] }): Batch;
  close(): Promise<void>;
}

const PAGE_SIZE = 2;

export async function fakeApi(opts: { apiKey: string }): Promise<FakeApi> {
  const batches = new Map<string, Batch & { items: unknown[] }>();
  const requests: RecordedRequest[] = [];
  let nextId = 1;

  const create = (spec: Record<string, unknown>, items: unknown[], createdAt = new Date().toISOString()) => {
    const id = `b-${String(nextId++).padStart(4, '0')}`;
    const { name, labels, items: _items, ...rest } = spec;
    const batch = {
      id,
      name: typeof name === 'string' ? name : null,
      labels: (labels as Record<string, string>) ?? {},
      createdAt,
      priority: typeof rest.priority === 'number' ? rest.priority : 0,
      spec: { parallelism: 1, ...rest },
      status: {
        phase: 'Pending' as Batch['status']['phase'],
        counts: { total: items.length, pending: items.length, running: 0, succeeded: 0, failed: 0, cancelled: 0 },
        completedIndexes: '',
        failedIndexes: '',
        conditions: [],
        startTime: null,
        completionTime: null,
      },
      items,
    };
    batches.set(id, batch);
    return batch;
  };

  const server = createServer(async (req, res) => {
    const body = await readBody(req);
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
    const url = new URL(req.url ?? '/', 'http://fake');
    if (req.headers.authorization !== `Bearer ${opts.apiKey}`) {
      return problem(res, 401, 'Unauthorized', 'missing or unknown API key');
    }
    const parts = url.pathname.split('/').filter(Boolean); // ['v1', 'batches', id?, action?]
    if (parts[0] !== 'v1' || parts[1] !== 'batches') return problem(res, 404, 'Not Found', `no route ${url.pathname}`);
    const id = parts[2];

    if (req.method === 'POST' && !id) {
      let spec: Record<string, unknown>;
      let items: unknown;
      if ((req.headers['content-type'] ?? '').startsWith('application/x-ndjson')) {
        const lines = body.split('\n').filter((l) => l.trim());
        spec = JSON.parse(lines[0] ?? '{}');
        items = lines.slice(1).map((l) => JSON.parse(l));
      } else {
        spec = JSON.parse(body);
        items = spec.items;
      }
      const errors = validate(spec, items);
      if (errors.length > 0) {
        return problem(res, 422, 'Invalid batch spec', `${errors.length} problems in the request body`, errors);
      }
      const batch = create(spec, items as unknown[]);
      return json(res, 202, publicView(batch), { location: `/v1/batches/${batch.id}` });
    }
    if (req.method === 'GET' && !id) {
      const selector = url.searchParams.get('labelSelector');
      const phase = url.searchParams.get('phase');
      const all = [...batches.values()].filter(
        (b) => matches(b.labels ?? {}, selector) && (!phase || b.status.phase === phase),
      );
      const start = Number(url.searchParams.get('cursor') ?? '0');
      const page = all.slice(start, start + PAGE_SIZE);
      const nextCursor = start + PAGE_SIZE < all.length ? String(start + PAGE_SIZE) : null;
      return json(res, 200, { items: page.map(publicView), nextCursor });
    }
    if (req.method === 'DELETE' && !id) {
      const selector = url.searchParams.get('labelSelector') ?? '';
      let deleted = 0;
      for (const b of [...batches.values()]) {
        if (matches(b.labels ?? {}, selector)) {
          batches.delete(b.id);
          deleted++;
        }
      }
      return json(res, 200, { deleted });
    }

    const batch = id ? batches.get(id) : undefined;
    if (!batch) return problem(res, 404, 'Not Found', `batch ${id} does not exist`);
    const action = parts[3];
    if (req.method === 'GET' && !action) {
      advance(batch);
      return json(res, 200, publicView(batch));
    }
    if (req.method === 'GET' && action === 'results') {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      batch.items.forEach((item, index) => {
        const failed = item === 'fail';
        res.write(
          `${JSON.stringify({ index, customId: null, status: failed ? 'Failed' : 'Succeeded', result: failed ? null : `done ${JSON.stringify(item)}`, error: failed ? 'exit code 1' : null, attempts: 1 })}\n`,
        );
      });
      return res.end();
    }
    if (req.method === 'POST' && action === 'cancel') {
      batch.status.phase = 'Cancelled';
      return json(res, 200, publicView(batch));
    }
    if (req.method === 'DELETE' && !action) {
      batches.delete(batch.id);
      res.writeHead(204);
      return res.end();
    }
    return problem(res, 405, 'Method Not Allowed', `${req.method} ${url.pathname}`);
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    batches,
    requests,
    seed: ({ items = ['a'], createdAt, status, ...fields }) => {
      const batch = create({ task: 'rev', ...fields }, items, createdAt);
      if (status) Object.assign(batch.status, status);
      return publicView(batch);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** One step of progress per GET: Pending → Running (half done) → Succeeded or Failed. */
function advance(batch: Batch & { items: unknown[] }): void {
  const s = batch.status;
  const total = s.counts.total;
  if (s.phase === 'Pending') {
    const half = Math.floor(total / 2);
    s.phase = 'Running';
    s.startTime = new Date().toISOString();
    s.counts = { ...s.counts, pending: total - half - 1, running: 1, succeeded: half };
  } else if (s.phase === 'Running') {
    const failed = batch.items.filter((i) => i === 'fail').length;
    s.phase = failed > 0 ? 'Failed' : 'Succeeded';
    s.completionTime = new Date().toISOString();
    s.counts = { total, pending: 0, running: 0, succeeded: total - failed, failed, cancelled: 0 };
    s.conditions = [
      failed > 0
        ? { type: 'Failed', status: 'True', reason: 'MaxFailedItemsExceeded', message: `${failed} items failed`, lastTransitionTime: s.completionTime }
        : { type: 'Complete', status: 'True', reason: 'AllItemsSucceeded', message: 'all items succeeded', lastTransitionTime: s.completionTime },
    ];
  }
}

function validate(spec: Record<string, unknown>, items: unknown): Array<{ pointer: string; detail: string }> {
  const errors: Array<{ pointer: string; detail: string }> = [];
  if (typeof spec.task !== 'string') errors.push({ pointer: '/task', detail: 'required: the name of a task workers registered' });
  if (!Array.isArray(items) || items.length === 0) errors.push({ pointer: '/items', detail: 'must be a non-empty array' });
  else items.forEach((item, i) => item === null && errors.push({ pointer: `/items/${i}`, detail: 'must not be null' }));
  return errors;
}

/** Equality-only label selectors (`k=v,k2=v2`): enough for the CLI tests. */
function matches(labels: Record<string, string>, selector: string | null): boolean {
  if (!selector) return true;
  return selector.split(',').every((term) => {
    const [k, v] = term.split('=');
    return labels[k!.trim()] === v?.trim();
  });
}

function publicView(batch: Batch & { items?: unknown[] }): Batch {
  const { items: _items, ...rest } = batch;
  return structuredClone(rest);
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function problem(
  res: ServerResponse,
  status: number,
  title: string,
  detail: string,
  errors?: Array<{ pointer: string; detail: string }>,
): void {
  res.writeHead(status, { 'content-type': 'application/problem+json' });
  res.end(JSON.stringify({ type: 'about:blank', title, status, detail, ...(errors ? { errors } : {}) }));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
