import { createHash } from 'node:crypto';
import { batchHeaderSchema, batchSpecSchema, customIdOf, runtimeProblems, type BatchHeader } from '../domain/batch-spec.js';
import type { z } from 'zod';

type BatchSpec = z.infer<typeof batchSpecSchema>;
import { renderTemplate, templatePlaceholders, TemplateError } from '../domain/template.js';
import { abortUpload, beginUpload, createBatch, findIdempotentBatch, finishUpload, type IdempotencyRecord, type NewItem } from '../store/batch-create.js';
import type { ApiDeps } from './deps.js';
import { jsonTextProblem } from './json-body.js';
import { ingestNdjson, lineProblem } from './ndjson-ingest.js';
import { fieldErrors, pointerOf, problem, validationProblem } from './problems.js';
import { targetRefusal } from '../webhooks/target-check.js';
import { checkSubmission } from '../store/quotas.js';
import { UploadGarbage } from './upload-garbage.js';

/**
 * Turning a create request into a stored batch: validation beyond the schema (runtime, task,
 * templates, limits), Idempotency-Key replays, and the JSON and streamed NDJSON paths. Every
 * check runs before anything is committed, so a refused request changes nothing.
 */

/** Checks what a spec needs from this server: a runtime it runs, a task some worker has. */
async function checkRunnable(deps: ApiDeps, header: BatchHeader, linePrefix?: number, base = ''): Promise<void> {
  const at = (pointer: string, detail: string) =>
    validationProblem([{ pointer: base + pointer, detail, ...(linePrefix ? { line: linePrefix } : {}) }]);
  const problems = runtimeProblems(header);
  if (problems.length > 0) {
    throw validationProblem(problems.map((p) => ({ pointer: pointerOf(p.path, base), detail: p.message, ...(linePrefix ? { line: linePrefix } : {}) })));
  }
  const onKubernetes = header.runtime !== 'queue' || header.workers?.kubernetes !== undefined;
  const kubernetes = deps.config.kubernetes;
  if (onKubernetes && !kubernetes) {
    const pointer = header.runtime !== 'queue' ? '/runtime' : '/workers/kubernetes';
    throw at(pointer, `${header.runtime !== 'queue' ? `runtime "${header.runtime}"` : 'workers.kubernetes'} needs Kubernetes, which this server is not configured for (set KUBECONFIG or run it in a cluster); use the "queue" runtime with your own workers`);
  }
  if (onKubernetes && kubernetes) {
    const namespace = header.namespace ?? kubernetes.namespace;
    if (!kubernetes.allowedNamespaces.includes(namespace)) {
      throw problem(403, 'namespace-forbidden', 'Forbidden', `this server may not run batches in namespace "${namespace}" (allowed: ${kubernetes.allowedNamespaces.join(', ')})`, {
        errors: [{ pointer: `${base}/namespace`, detail: `not one of ${kubernetes.allowedNamespaces.join(', ')}`, ...(linePrefix ? { line: linePrefix } : {}) }],
      });
    }
    const refusal = await deps.kubernetesAdmission?.refusal(header);
    if (refusal) {
      const pointer = header.runtime === 'queue' ? '/workers/kubernetes' : '/template';
      if (refusal.status === 403) throw problem(403, 'namespace-forbidden', 'Forbidden', refusal.message, { errors: [{ pointer: `${base}/namespace`, detail: refusal.message }] });
      throw at(pointer, refusal.message);
    }
  }
  if (header.template) {
    // A malformed placeholder is wrong whatever the items are: name the template field, not an item.
    try {
      templatePlaceholders(header.template);
    } catch (err) {
      if (err instanceof TemplateError) throw at(`/template${err.path}`, err.message);
      throw err;
    }
    if (header.runtime === 'indexed-job' && header.template.env && templatePlaceholders(header.template.env).length > 0) {
      throw at('/template/env', 'in an indexed-job, every pod gets the same environment: placeholders are filled per item in command and args (by `fanout exec`); use runtime "job-per-item" for a per-item environment');
    }
  }
  if (header.concurrencyKey !== undefined) {
    try {
      templatePlaceholders(header.concurrencyKey);
    } catch (err) {
      if (err instanceof TemplateError) throw at('/concurrencyKey', err.message);
      throw err;
    }
  }
  if (header.webhook) {
    // A target that resolves to a private, loopback or link-local address is refused now, not at delivery.
    const refusal = await targetRefusal(header.webhook.url, deps.config.webhooks.allow);
    if (refusal) throw at('/webhook/url', refusal);
  }
  if (header.runtime !== 'queue') return;
  if (header.workers?.kubernetes) return; // its workers start with the batch; none registered yet
  let known = await deps.knownTasks();
  if (known && !known.has(header.task!)) known = await deps.knownTasks({ fresh: true });
  if (known && !known.has(header.task!)) {
    const list = [...known].sort().join(', ') || 'none';
    throw at('/task', `unknown task "${header.task}": no worker has registered it (registered: ${list})`);
  }
}

/**
 * The parts of the template each item fills: the whole template for job-per-item (a Job per
 * item) and indexed-job (`fanout exec` fills command and args in the pod), env for the queue.
 */
function itemTemplate(header: BatchHeader): unknown {
  if (!header.template) return undefined;
  if (header.runtime === 'queue') return header.template.env;
  if (header.runtime === 'indexed-job') return { command: header.template.command, args: header.template.args };
  return header.template;
}

/** Renders the template for each item at submission, so a missing field is a 422 now, not a failure later. */
function checkTemplate(header: BatchHeader, item: unknown, index: number, pointerBase: string): void {
  const template = itemTemplate(header);
  if (template === undefined && header.concurrencyKey === undefined) return;
  try {
    if (template !== undefined) renderTemplate(template, item, index);
    if (header.concurrencyKey !== undefined) renderTemplate(header.concurrencyKey, item, index);
  } catch (err) {
    if (err instanceof TemplateError) throw validationProblem([{ pointer: `${pointerBase}`, detail: err.message }]);
    throw err;
  }
}

async function idempotentReplay(deps: ApiDeps, tenantId: string, key: string | undefined, requestHash: string): Promise<string | undefined> {
  if (!key) return undefined;
  const found = await deps.store.read(findIdempotentBatch(tenantId, key));
  if (!found) return undefined;
  if (found.requestHash !== requestHash) {
    throw problem(422, 'idempotency-key-reused', 'Idempotency-Key reused', `Idempotency-Key ${JSON.stringify(key)} was already used with a different request body`);
  }
  return found.batchId;
}

/**
 * A JSON create: `raw` is the body as sent (its hash identifies the request for Idempotency-Key),
 * `spec` the same body as the route's validator parsed and checked it against batchSpecSchema
 * (parsing and checking it again here cost a third of a create's own CPU).
 */
export async function createFromJson(deps: ApiDeps, tenantId: string, raw: string, spec: BatchSpec, key: string | undefined): Promise<string> {
  const requestHash = createHash('sha256').update(raw).digest('hex');
  const replay = await idempotentReplay(deps, tenantId, key, requestHash);
  if (replay) return replay;
  const { header, rows } = await prepareBatch(deps, spec);
  const idem: IdempotencyRecord | undefined = key ? { key, requestHash } : undefined;
  return withIdempotencyRace(deps, tenantId, key, requestHash, () => deps.store.write(createBatch(tenantId, header, rows, idem, Date.now(), deps.config.quotas)));
}

/**
 * The checks of a JSON batch after its schema (item limits, runtime and task, templates), and
 * its item rows. `base` prefixes every pointer: a schedule's template is checked at `/batchTemplate`.
 */
export async function prepareBatch(deps: ApiDeps, spec: BatchSpec, base = ''): Promise<{ header: BatchHeader; rows: NewItem[] }> {
  const { items, ...header } = spec;
  const limits = deps.config.limits;
  if (items.length > limits.maxItemsPerBatch) {
    throw problem(413, 'too-large', 'Payload Too Large', `${items.length} items is more than the ${limits.maxItemsPerBatch}-item limit per batch`, {
      errors: [{ pointer: `${base}/items`, detail: `at most ${limits.maxItemsPerBatch} items` }],
    });
  }
  await checkRunnable(deps, header, undefined, base);
  const rows: NewItem[] = items.map((item, i) => {
    const input = JSON.stringify(item === undefined ? null : item);
    if (Buffer.byteLength(input) > limits.maxItemBytes) {
      throw problem(413, 'too-large', 'Payload Too Large', `item ${i} is larger than the ${limits.maxItemBytes}-byte item limit`, {
        errors: [{ pointer: `${base}/items/${i}`, detail: `larger than ${limits.maxItemBytes} bytes` }],
      });
    }
    checkTemplate(header, item, i, `${base}/items/${i}`);
    return { input, customId: customIdOf(item) };
  });
  return { header, rows };
}

export async function createFromNdjson(deps: ApiDeps, tenantId: string, body: ReadableStream<Uint8Array> | null, key: string | undefined): Promise<string> {
  const hash = createHash('sha256');
  if (key && (await deps.store.read(findIdempotentBatch(tenantId, key)))) {
    // Compare the whole body's hash without storing it, then answer as the first time.
    const reader = body?.getReader();
    for (;;) {
      const r = await reader?.read();
      if (!r || r.done) break;
      hash.update(r.value);
    }
    return (await idempotentReplay(deps, tenantId, key, hash.digest('hex')))!;
  }
  let header: BatchHeader | undefined;
  let id: string | undefined;
  const garbage = new UploadGarbage();
  try {
    const { total } = await ingestNdjson(body, {
      maxItemBytes: deps.config.limits.maxItemBytes,
      maxJsonDepth: deps.config.limits.maxJsonDepth,
      maxItems: deps.config.limits.maxItemsPerBatch,
      hash,
      onHeader: async (line) => {
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch (err) {
          throw lineProblem(1, `the first line must be the batch spec as JSON: ${(err as Error).message}`);
        }
        const refused = jsonTextProblem(line, { maxDepth: deps.config.limits.maxJsonDepth, line: 1 });
        if (refused) throw refused;
        const parsed = batchHeaderSchema.safeParse(value);
        if (!parsed.success) {
          const errors = fieldErrors(parsed.error.issues).map((e) => ({ ...e, line: 1 }));
          throw validationProblem(errors, `line 1: ${errors[0].pointer}: ${errors[0].detail}`);
        }
        header = parsed.data;
        await checkRunnable(deps, header, 1);
        // Refused before any item is read when the tenant cannot submit a batch now; the items
        // themselves are counted against the quotas once the stream ends (finishUpload).
        const refusal = await deps.store.read(checkSubmission(tenantId, deps.config.quotas, { batches: 1, items: 0, storedItems: 0 }, Date.now()));
        if (refusal) throw refusal;
        id = await deps.store.write(beginUpload(tenantId, header));
      },
      onItems: async (first, rows) => {
        if (header && (itemTemplate(header) !== undefined || header.concurrencyKey !== undefined)) rows.forEach((r, k) => checkTemplate(header!, JSON.parse(r.input), first + k, `/items/${first + k}`));
        await deps.store.appendItems(id!, first, rows);
        garbage.stored(rows.reduce((sum, r) => sum + r.input.length, 0));
      },
    });
    const requestHash = hash.digest('hex');
    const idem = key ? { key, requestHash } : undefined;
    const created = await withIdempotencyRace(deps, tenantId, key, requestHash, async () => {
      await deps.store.write(finishUpload(tenantId, id!, total, idem, Date.now(), deps.config.quotas));
      return id!;
    });
    if (created !== id) await deps.store.write(abortUpload(id!));
    return created;
  } catch (err) {
    if (id) await discardUpload(deps, id);
    throw err;
  }
}

/**
 * Removes a failed upload's rows. If the store cannot do it now, the request's own error is still
 * the answer: the rows stay invisible (`uploading`) and are swept at the next start-up.
 */
async function discardUpload(deps: ApiDeps, id: string): Promise<void> {
  try {
    await deps.store.write(abortUpload(id));
  } catch (err) {
    deps.logger.warn({ batchId: id, err: (err as Error).message }, 'could not remove a failed upload; it is swept at start-up');
  }
}

/** Two requests with one new key at once: the loser answers with the winner's batch. */
async function withIdempotencyRace(deps: ApiDeps, tenantId: string, key: string | undefined, requestHash: string, create: () => Promise<string>): Promise<string> {
  try {
    return await create();
  } catch (err) {
    if (key && isIdempotencyKeyConflict(err)) {
      const replay = await idempotentReplay(deps, tenantId, key, requestHash);
      if (replay) return replay;
      throw problem(409, 'conflict', 'Conflict', `a request with Idempotency-Key ${JSON.stringify(key)} is in progress`);
    }
    throw err;
  }
}

/** The unique key of idempotency_keys refused a second insert (SQLite's message; PostgreSQL's 23505 on that table). */
function isIdempotencyKeyConflict(err: unknown): boolean {
  const e = err as { message?: string; code?: string; table?: string };
  return /UNIQUE constraint failed: idempotency_keys/.test(e.message ?? '') || (e.code === '23505' && e.table === 'idempotency_keys');
}
