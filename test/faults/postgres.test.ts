import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { allItems, expectAllSucceededOnce, newCluster, waitUntil, type Cluster } from '../helpers/cluster.js';
import { spawnFanout } from '../helpers/processes.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { startTestService, type TestService } from '../helpers/service.js';

/**
 * Faults of PostgreSQL under a running Fanout (DATABASE_URL=postgres://…): the database
 * restarted or stopped mid-batch, connections killed mid-transaction, the pool exhausted behind
 * a row lock. The API answers 503 problem+json with Retry-After while it cannot reach the
 * database (never a 500, never a hang), and once the database is back every batch completes by
 * itself with every item run and recorded exactly once.
 *
 * One cluster for the file, a fresh database and an in-process service per test. Items run a
 * shell task that appends its input to a log before answering, so a run repeated because a
 * report was lost shows up as a second line even when the store records one attempt.
 */

/** Any answer later than this is a hang: the service gives up on the database after 2 s. */
const REQUEST_BOUND_MS = 10_000;

let cluster: TestPostgres;
let svc: TestService | undefined;
let databases = 0;
let processes: Cluster | undefined;
const lockHolders: pg.Client[] = [];

beforeAll(async () => {
  cluster = await startTestPostgres();
});

afterEach(async () => {
  await processes?.stopAll();
  processes = undefined;
  for (const c of lockHolders.splice(0)) await c.end().catch(() => {});
  // a failed test may have left the server stopped: the next one needs it
  await cluster.startServer();
  await svc?.close();
  svc = undefined;
});

afterAll(async () => {
  await cluster?.stop();
});

interface Logged {
  svc: TestService;
  /** every run of an item appends its input here, one line a run */
  executions: () => string[];
}

/** Fanout on a new database of the cluster, with the `logged` task (input reversed, after `delay` s). */
async function serviceOnFreshDatabase(env: Record<string, string> = {}, delay = '0.05'): Promise<Logged> {
  const url = await cluster.createDatabase(`faults_${++databases}`);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-pg-faults-'));
  const log = path.join(scratch, 'executions.log');
  // one printf: one write(2) with O_APPEND, whole lines even with items running side by side
  const task = `logged=x=$(cat); sleep ${delay}; printf '%s\\n' "$x" >> ${log}; printf '%s' "$x" | rev`;
  svc = await startTestService({
    redisUrl: inject('redisUrl'),
    tasks: [task],
    env: { DATABASE_URL: url, FANOUT_DB_CONNECT_TIMEOUT_SECONDS: '2', ...env },
  });
  return { svc, executions: () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean) : []) };
}

interface Answer {
  status: number;
  contentType: string;
  retryAfter: string | null;
  body: any;
}

/** One request that must be answered: a hang fails the test instead of waiting for the test timeout. */
async function call(s: TestService, method: string, p: string, body?: unknown, extraHeaders: Record<string, string> = {}): Promise<Answer> {
  const headers: Record<string, string> = { authorization: `Bearer ${s.apiKey}`, ...extraHeaders };
  if (body !== undefined) headers['content-type'] ??= 'application/json';
  let res: Response;
  try {
    res = await fetch(s.url + p, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_BOUND_MS),
    });
  } catch (err) {
    throw new Error(`${method} ${p} was not answered: ${(err as Error).message}`);
  }
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: kept as text for the assertion message
  }
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', retryAfter: res.headers.get('retry-after'), body: parsed };
}

/** The answer of a request the database could not serve: 503 problem+json with Retry-After. */
function expectUnavailable(a: Answer, what: string): void {
  expect(a.status, `${what}: ${JSON.stringify(a.body)}`).toBe(503);
  expect(a.contentType, what).toMatch(/^application\/problem\+json/);
  expect(a.retryAfter, what).toMatch(/^[1-9]\d*$/);
  expect(a.body, what).toMatchObject({ status: 503, type: expect.stringMatching(/service-unavailable$/) });
}

/** Either served (`ok` statuses) or refused as unavailable; anything else (a 500) fails. */
function expectServedOrUnavailable(a: Answer, what: string, ok: number[] = [200]): void {
  if (a.status === 503) expectUnavailable(a, what);
  else expect(ok, `${what}: ${a.status} ${JSON.stringify(a.body)}`).toContain(a.status);
}

/** Polls GET batch, the batch list and /readyz until stopped; checks every answer. Returns the statuses seen. */
function startPolling(s: TestService, batchId: string): { stop: () => Promise<number[]> } {
  let stopped = false;
  const seen: number[] = [];
  // an assertion that fails in the loop is thrown from stop(), not left as an unhandled rejection
  const loop = (async () => {
    while (!stopped) {
      const [one, list, ready] = await Promise.all([
        call(s, 'GET', `/v1/batches/${batchId}`),
        call(s, 'GET', '/v1/batches?limit=5'),
        call(s, 'GET', '/readyz'),
      ]);
      expectServedOrUnavailable(one, 'GET batch');
      expectServedOrUnavailable(list, 'GET batches');
      expect([200, 503]).toContain(ready.status);
      seen.push(one.status, list.status);
      await sleep(50);
    }
  })().then(
    () => undefined,
    (err: unknown) => err,
  );
  return {
    stop: async () => {
      stopped = true;
      const failure = await loop;
      if (failure) throw failure;
      return seen;
    },
  };
}

const itemsOf = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag}-${i}`);
const reversed = (s: string) => [...s].reverse().join('');

/**
 * Every item of the batch succeeded with its input reversed, with exactly one attempt recorded
 * (a succeeded one), and ran exactly once: one line in the execution log.
 */
async function expectEveryItemOnce(l: Logged, batchId: string, items: string[], executions = l.executions()): Promise<void> {
  const results = await l.svc.client.results(batchId);
  expect(results.map((r) => r.index)).toEqual(items.map((_, i) => i));
  expect(results.filter((r) => r.status !== 'succeeded'), 'items that did not succeed').toEqual([]);
  expect(results.map((r) => r.result)).toEqual(items.map(reversed));
  const stored = await allItems(l.svc.client, batchId);
  expect(stored.length).toBe(items.length);
  for (const item of stored) {
    expect(item.attempts.map((a: any) => a.outcome), `attempts of item ${item.index}: ${JSON.stringify(item.attempts)}`).toEqual(['succeeded']);
  }
  const runs = new Map<string, number>();
  for (const line of executions) runs.set(line, (runs.get(line) ?? 0) + 1);
  const ranTwice = [...runs].filter(([input, n]) => items.includes(input) && n > 1);
  expect(ranTwice, 'items run more than once').toEqual([]);
  expect(items.filter((i) => !runs.has(i)), 'items never run').toEqual([]);
}

async function succeededCount(s: TestService, batchId: string): Promise<number> {
  const r = await call(s, 'GET', `/v1/batches/${batchId}`);
  return r.status === 200 ? r.body.status.counts.succeeded : 0;
}

/** Every batch of the tenant (GET /v1/batches, all pages). */
async function listAllBatches(s: TestService): Promise<any[]> {
  const out: any[] = [];
  let cursor: string | null = null;
  do {
    const r = await call(s, 'GET', `/v1/batches?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    out.push(...r.body.items);
    cursor = r.body.nextCursor;
  } while (cursor);
  return out;
}

/**
 * POST /v1/batches with an Idempotency-Key, sent again after every 503 (checked as such) until
 * it is accepted, as a client following Retry-After would (sooner: the test has no time to
 * lose). Returns the batch id and how many 503s came first.
 */
async function createRetrying(s: TestService, key: string, body: unknown, contentType: string): Promise<{ id: string; refused: number }> {
  for (let refused = 0; refused < 50; refused++) {
    const a = await call(s, 'POST', '/v1/batches', body, { 'idempotency-key': key, 'content-type': contentType });
    if (a.status === 202) return { id: a.body.id, refused };
    expectUnavailable(a, `create ${key}`);
    await sleep(100);
  }
  throw new Error(`create ${key} was refused 50 times`);
}

describe('faults: PostgreSQL', () => {
  it('restarted mid-batch (fast): every request is served or refused with 503, and the batch completes by itself, each item once', { timeout: 90_000 }, async () => {
    const l = await serviceOnFreshDatabase();
    const items = itemsOf(200, 'restart');
    const batch = await l.svc.client.createBatch({ task: 'logged', items, parallelism: 8 });
    await waitUntil('some items done', async () => (await succeededCount(l.svc, batch.id)) >= 20, 30_000, 50);

    const polling = startPolling(l.svc, batch.id);
    await cluster.restart('fast');
    const done = await l.svc.client.waitForPhase(batch.id, undefined, 60_000);
    await polling.stop();

    expect(done.status.phase).toBe('Succeeded');
    expect((await call(l.svc, 'GET', '/readyz')).status).toBe(200);
    await expectEveryItemOnce(l, batch.id, items);
  });

  it('stopped for longer than a report\'s retries: 503 with Retry-After while down, not ready; after the start the batch completes by itself, each item once', { timeout: 120_000 }, async () => {
    // A long leader lease keeps the dispatcher leading (and taking reports) through the whole
    // outage, as a default 15 s lease does through most of a shorter one.
    const l = await serviceOnFreshDatabase({ FANOUT_LEADER_LEASE_SECONDS: '60' });
    const items = itemsOf(200, 'stop');
    const batch = await l.svc.client.createBatch({ task: 'logged', items, parallelism: 8 });
    await waitUntil('some items done', async () => (await succeededCount(l.svc, batch.id)) >= 20, 30_000, 50);

    await cluster.stopServer('fast');
    const downSince = Date.now();
    expectUnavailable(await call(l.svc, 'GET', `/v1/batches/${batch.id}`), 'GET batch while down');
    expectUnavailable(await call(l.svc, 'GET', '/v1/batches'), 'GET batches while down');
    expectUnavailable(await call(l.svc, 'POST', '/v1/batches', { task: 'logged', items: ['while-down'] }), 'POST batch while down');
    expectUnavailable(await call(l.svc, 'GET', `/v1/batches/${batch.id}/items?limit=10`), 'GET items while down');
    const notReady = await call(l.svc, 'GET', '/readyz');
    expect(notReady.status).toBe(503);
    expect(notReady.body).toMatchObject({ status: 'unavailable', store: false });
    // Report jobs are tried 5 times, 1 + 2 + 4 + 8 s apart: stay down past the last try.
    await sleep(Math.max(0, 18_000 - (Date.now() - downSince)));
    expectUnavailable(await call(l.svc, 'GET', `/v1/batches/${batch.id}`), 'GET batch still down');
    await cluster.startServer();

    await waitUntil('ready again', async () => (await call(l.svc, 'GET', '/readyz')).status === 200, 30_000, 200);
    const done = await l.svc.client.waitForPhase(batch.id, undefined, 60_000);
    expect(done.status.phase).toBe('Succeeded');
    await expectEveryItemOnce(l, batch.id, items);
    // the create refused while down left nothing behind
    const names = (await call(l.svc, 'GET', '/v1/batches?limit=100')).body.items.map((b: any) => b.id);
    expect(names).toEqual([batch.id]);
  });
  it('connections killed again and again while a batch runs and batches are created: no half-created batch, every item once', { timeout: 120_000 }, async () => {
    const l = await serviceOnFreshDatabase({}, '0.1');
    const database = `faults_${databases}`;
    const items = itemsOf(200, 'killed');
    const batch = await l.svc.client.createBatch({ task: 'logged', items, parallelism: 8 });

    let storming = true;
    let killed = 0;
    const storm = (async () => {
      while (storming) {
        killed += await cluster.terminateBackends(database);
        await sleep(100);
      }
    })();
    // Creates side by side with the kills: JSON bodies (one transaction) and NDJSON uploads
    // (items appended in transactions of their own, made visible by a last one).
    const creates = Array.from({ length: 12 }, (_, k) => {
      const n = 5 + k;
      const own = itemsOf(n, `create${k}`);
      const name = `create-${k}`;
      const ndjson = k % 2 === 1;
      const body = ndjson
        ? [JSON.stringify({ task: 'logged', name, parallelism: 4 }), ...own.map((i) => JSON.stringify(i))].join('\n') + '\n'
        : { task: 'logged', name, parallelism: 4, items: own };
      return { name, items: own, body, contentType: ndjson ? 'application/x-ndjson' : 'application/json' };
    });
    const created: { id: string; refused: number }[] = [];
    for (let k = 0; k < creates.length; k += 3) {
      created.push(...(await Promise.all(creates.slice(k, k + 3).map((c) => createRetrying(l.svc, `key-${c.name}`, c.body, c.contentType)))));
    }
    await sleep(2000);
    storming = false;
    await storm;
    // the storm hit Fanout's connections, not just idle ones the pool replaces quietly
    expect(killed).toBeGreaterThan(10);

    const done = await l.svc.client.waitForPhase(batch.id, undefined, 60_000);
    expect(done.status.phase).toBe('Succeeded');
    // Exactly the batches asked for: a create answered 503 and sent again under its key was
    // stored once, and no upload cut short is visible, even partly.
    const listed = await listAllBatches(l.svc);
    expect(listed.map((b) => b.id).sort()).toEqual([batch.id, ...created.map((c) => c.id)].sort());
    for (const [k, c] of creates.entries()) {
      const b = listed.find((x) => x.id === created[k].id);
      expect({ name: b.name, total: b.status.counts.total }).toEqual({ name: c.name, total: c.items.length });
    }
    const executions = l.executions();
    await expectEveryItemOnce(l, batch.id, items, executions);
    for (const [k, c] of creates.entries()) {
      const finished = await l.svc.client.waitForPhase(created[k].id, undefined, 60_000);
      expect(finished.status.phase).toBe('Succeeded');
      await expectEveryItemOnce(l, created[k].id, c.items);
    }
  });

  it('pool exhausted (2 connections) while a lock holds the batch row: requests are served or refused with 503, none hangs; after the lock goes everything completes', { timeout: 120_000 }, async () => {
    const l = await serviceOnFreshDatabase({ FANOUT_DB_POOL_SIZE: '2' });
    const items = itemsOf(100, 'pool');
    const batch = await l.svc.client.createBatch({ task: 'logged', items, parallelism: 4 });
    await waitUntil('some items done', async () => (await succeededCount(l.svc, batch.id)) >= 10, 30_000, 50);

    // Another client locks the batch row in an open transaction: every write of Fanout that
    // moves the batch's items (reports, releases) waits for it, holding its pooled connection.
    const holder = new pg.Client({ connectionString: cluster.urlFor(`faults_${databases}`) });
    holder.on('error', () => {});
    await holder.connect();
    lockHolders.push(holder);
    await holder.query('BEGIN');
    await holder.query('SELECT id FROM batches WHERE id = $1 FOR UPDATE', [batch.id]);

    // Two suspends of the batch wait for that lock, each holding one of the two connections (a
    // report of the batch may already hold one: reports of a batch share one write at a time).
    const suspends = [call(l.svc, 'POST', `/v1/batches/${batch.id}/suspend`), call(l.svc, 'POST', `/v1/batches/${batch.id}/suspend`)];
    // Both connections wait on the lock: a read needs a third and gets a 503 after the connect timeout.
    const refused = await waitUntil(
      'a request refused for want of a connection',
      async () => {
        const a = await call(l.svc, 'GET', `/v1/batches/${batch.id}`);
        expectServedOrUnavailable(a, 'GET batch');
        return a.status === 503 ? a : undefined;
      },
      30_000,
      50,
    );
    expectUnavailable(refused, 'GET batch with the pool exhausted');

    // Many requests at once, all answered (never a hang, never a 500).
    const requests = Array.from({ length: 24 }, (_, k) => {
      switch (k % 4) {
        case 0:
          return call(l.svc, 'GET', `/v1/batches/${batch.id}`).then((a) => ({ what: 'GET batch', a, ok: [200] }));
        case 1:
          return call(l.svc, 'GET', '/v1/batches').then((a) => ({ what: 'GET batches', a, ok: [200] }));
        case 2:
          return call(l.svc, 'GET', `/v1/batches/${batch.id}/items?limit=10`).then((a) => ({ what: 'GET items', a, ok: [200] }));
        default:
          return call(l.svc, 'POST', '/v1/batches', { task: 'logged', name: `during-${k}`, items: itemsOf(3, `during${k}`) }).then((a) => ({ what: 'POST batch', a, ok: [202] }));
      }
    });
    const answers = await Promise.all(requests);
    for (const { what, a, ok } of answers) expectServedOrUnavailable(a, what, ok);
    expect(answers.some(({ a }) => a.status === 503)).toBe(true);

    await holder.query('ROLLBACK');
    await waitUntil('ready again', async () => (await call(l.svc, 'GET', '/readyz')).status === 200, 30_000, 200);
    // The suspends that waited were served or refused; whichever got through is undone.
    for (const a of await Promise.all(suspends)) expectServedOrUnavailable(a, 'POST suspend', [200, 409]);
    const resumed = await call(l.svc, 'POST', `/v1/batches/${batch.id}/resume`);
    expectServedOrUnavailable(resumed, 'POST resume', [200, 409]);
    const done = await l.svc.client.waitForPhase(batch.id, undefined, 60_000);
    expect(done.status.phase).toBe('Succeeded');
    const executions = l.executions();
    await expectEveryItemOnce(l, batch.id, items, executions);

    // A create that was accepted runs; one refused left nothing behind.
    const accepted = answers.filter(({ what, a }) => what === 'POST batch' && a.status === 202).map(({ a }) => a.body.id as string);
    const listed = await listAllBatches(l.svc);
    expect(listed.map((b) => b.id).sort()).toEqual([batch.id, ...accepted].sort());
    for (const id of accepted) expect((await l.svc.client.waitForPhase(id, undefined, 60_000)).status.phase).toBe('Succeeded');
  });
  it('stopped while workers upload results too large to inline: no attempt fails for it, each item once', { timeout: 90_000 }, async () => {
    // Results over 16 bytes go to the API (PUT …/result) instead of through Redis: while the
    // database is down the API answers those uploads 503 too.
    const l = await serviceOnFreshDatabase({ FANOUT_INLINE_RESULT_BYTES: '16' }, '0.2');
    const items = itemsOf(40, 'a-result-longer-than-the-inline-limit');
    // no retries: an attempt failed because of the outage would fail its item for good
    const batch = await l.svc.client.createBatch({ task: 'logged', items, parallelism: 4, retry: { backoffLimitPerItem: 0 } });
    await waitUntil('some items done', async () => (await succeededCount(l.svc, batch.id)) >= 4, 30_000, 50);

    await cluster.stopServer('fast');
    await sleep(5000);
    await cluster.startServer();

    const done = await l.svc.client.waitForPhase(batch.id, undefined, 60_000);
    expect(done.status.phase).toBe('Succeeded');
    await expectEveryItemOnce(l, batch.id, items);
  });
  it('fanout up killed while PostgreSQL is down: started again while it is still down, it exits 1 with one line and no password; started once it is back, the batch completes, each item recorded once', { timeout: 120_000 }, async () => {
    const database = `faults_${++databases}`;
    await cluster.createDatabase(database);
    // trust authentication ignores the password: it is here to be kept out of every output
    const password = 'pg-secret-never-logged';
    const env = { DATABASE_URL: cluster.urlFor(database).replace('postgres@', `postgres:${password}@`), FANOUT_DB_CONNECT_TIMEOUT_SECONDS: '2' };
    const c = (processes = newCluster(inject('redisUrl')));
    const task = ['--task', 'slowrev=sleep 0.1; rev'];
    const first = await c.up(task, env);
    const items = itemsOf(60, 'revived');
    const batch = await c.client.createBatch({ task: 'slowrev', items, parallelism: 4 });
    await waitUntil('some items done', async () => (await c.client.getBatch(batch.id)).status.counts.succeeded >= 10, 60_000, 50);

    await cluster.stopServer('fast');
    await first.kill('SIGKILL');
    const second = spawnFanout(['up', '--port', '0', ...task], { ...c.env, ...env });
    const code = await new Promise<number | null>((resolve) => second.child.once('exit', resolve));
    expect(code, second.output()).toBe(1);
    const lines = second.output().split('\n').filter(Boolean);
    expect(lines.filter((l) => l.startsWith('fanout: ')), second.output()).toHaveLength(1);
    expect(second.output()).not.toContain(password);

    await cluster.startServer();
    const third = await c.up(task, env);
    const done = await c.client.waitForPhase(batch.id, undefined, 90_000);
    expect(done.status.phase).toBe('Succeeded');
    // The killed process's items in flight ran again after their leases expired (execution is
    // at least once when a worker dies); each is recorded once all the same.
    await expectAllSucceededOnce(c.client, batch.id, items.map(reversed));
    expect(first.output() + third.output()).not.toContain(password);
  });
});
